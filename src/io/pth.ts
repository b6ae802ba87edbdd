/**
 * PyTorch `.pth` / `.pt` reader for the zip format `torch.save` writes since torch 1.6
 * (`torch/serialization.py: _save`, `caffe2/serialize/inline_container.cc`):
 *
 *   <archive>/data.pkl      pickle (protocol 2) of the saved object; tensors are
 *                           REDUCE(torch._utils._rebuild_tensor_v2, (BINPERSID(pid), offset, size, stride, ...))
 *   <archive>/data/<key>    raw little-endian bytes of storage <key>
 *   <archive>/byteorder     'little' | 'big' (torch >= 2.1; absent means little)
 *   <archive>/version       format version
 *
 * The persistent id of a storage is `('storage', torch.<Type>Storage, key, location, numel)`.
 * The legacy (pre-1.6) format is read too ({@link readLegacyPth}). The pickle is read by the
 * restricted unpickler in `pickle.ts`: only the globals of {@link torchGlobals} resolve, nothing
 * is executed; every tensor gives float32 values plus its stored dtype and raw bytes.
 */
import * as fs from 'node:fs';
import { CheckpointFormatError } from './errors.ts';
import { openZip } from './zip.ts';
import { PyExtension, PyGlobal, type PyValue, isTuple, unpickle, unpickleFrom } from './pickle.ts';
import { type Dtype, DTYPE_ITEMSIZE, type NamedTensor, decodeToFloat32 } from './safetensors.ts';

/**
 * A storage reference from a persistent id; decoded lazily and cached per key. `bytes()` gives the
 * raw little-endian elements (what a dtype-keeping conversion writes back), `values()` them as float32.
 */
export class TorchStorage extends PyExtension {
  readonly kind = 'torch storage';
  readonly bytes: () => Uint8Array;
  constructor(readonly key: string, readonly dtype: Dtype, readonly numel: number, readonly values: () => Float32Array, bytes?: () => Uint8Array) {
    super();
    this.bytes = bytes ?? (() => {
      if (dtype !== 'F32') throw new Error(`TorchStorage '${key}': raw bytes of a ${dtype} storage need a bytes() source`);
      const v = values();
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    });
  }
}

/**
 * An array value of a checkpoint (a torch tensor, a numpy array): shape, dtype, float32 values and
 * the raw little-endian contiguous bytes in the stored dtype. Values are computed on first access.
 */
export abstract class ArrayValue extends PyExtension implements NamedTensor {
  abstract readonly shape: number[];
  abstract readonly dtype: Dtype;
  abstract get data(): Float32Array;
  abstract get raw(): Uint8Array;
}

/** A tensor rebuilt from a storage view; gathered into contiguous order when first read. */
export class TorchTensor extends ArrayValue {
  readonly kind = 'torch tensor';
  private cache?: { data: Float32Array; raw: Uint8Array };
  constructor(readonly shape: number[], readonly dtype: Dtype, private readonly gather: () => { data: Float32Array; raw: Uint8Array }) { super(); }
  private get values(): { data: Float32Array; raw: Uint8Array } {
    this.cache ??= this.gather();
    return this.cache;
  }
  get data(): Float32Array { return this.values.data; }
  get raw(): Uint8Array { return this.values.raw; }
}

/** Marker for a storage class such as `torch.FloatStorage` (never called, only named in persistent ids). */
class StorageType extends PyGlobal {
  constructor(name: string, readonly dtype: Dtype) { super('torch', name); }
}

/** torch storage classes → our dtype names. */
const STORAGE_TYPES: [string, Dtype][] = [
  ['FloatStorage', 'F32'], ['HalfStorage', 'F16'], ['BFloat16Storage', 'BF16'], ['DoubleStorage', 'F64'],
  ['LongStorage', 'I64'], ['IntStorage', 'I32'], ['ShortStorage', 'I16'], ['CharStorage', 'I8'],
  ['ByteStorage', 'U8'], ['BoolStorage', 'BOOL'],
];
/** dtype objects (`torch.float32`) appear when a checkpoint stores a dtype value; they are inert markers. */
const DTYPE_NAMES = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'float', 'half', 'double', 'long', 'int'];

function toIntList(v: PyValue, what: string, source: string): number[] {
  if (!Array.isArray(v)) throw new CheckpointFormatError(source, `${what} must be a tuple of integers, got ${typeof v}`);
  const out: number[] = [];
  for (const x of v as readonly PyValue[]) {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
      throw new CheckpointFormatError(source, `${what} must hold non-negative integers, got ${JSON.stringify((v as readonly PyValue[]).map(String))}`);
    }
    out.push(x);
  }
  return out;
}

/**
 * `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`:
 * element (i0, i1, ...) is `storage[offset + Σ i_k · stride_k]` (strides in elements), so
 * non-contiguous views (transposes, slices) are gathered into a contiguous array here.
 */
function rebuildTensor(args: readonly PyValue[], source: string): TorchTensor {
  if (args.length < 4) throw new CheckpointFormatError(source, `_rebuild_tensor_v2 expects at least 4 arguments (storage, offset, size, stride), got ${args.length}`);
  const [storage, offset, sizeV, strideV] = args;
  if (!(storage instanceof TorchStorage)) throw new CheckpointFormatError(source, `_rebuild_tensor_v2: first argument must be a storage, got ${storage instanceof PyExtension ? storage.kind : typeof storage}`);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new CheckpointFormatError(source, `_rebuild_tensor_v2: storage offset must be a non-negative integer, got ${String(offset)}`);
  const size = toIntList(sizeV, '_rebuild_tensor_v2 size', source);
  const stride = toIntList(strideV, '_rebuild_tensor_v2 stride', source);
  if (size.length !== stride.length) throw new CheckpointFormatError(source, `_rebuild_tensor_v2: size [${size.join(', ')}] and stride [${stride.join(', ')}] differ in rank`);
  let numel = 1;
  for (const d of size) numel *= d;
  const where = `tensor of size [${size.join(', ')}], stride [${stride.join(', ')}], offset ${offset} on storage '${storage.key}' (${storage.numel} ${storage.dtype} elements)`;
  if (numel === 0) return new TorchTensor(size, storage.dtype, () => ({ data: new Float32Array(0), raw: new Uint8Array(0) }));
  let maxIndex = offset;
  for (let k = 0; k < size.length; k++) maxIndex += (size[k] - 1) * stride[k];
  if (maxIndex >= storage.numel) throw new CheckpointFormatError(source, `${where} reads element ${maxIndex}, past the end of its storage`);
  // A view can only repeat storage elements (stride 0, e.g. expand()); refusing views larger than
  // their storage keeps a forged size from allocating more than the file holds.
  if (numel > storage.numel) {
    throw new CheckpointFormatError(source, `${where} has more elements than its storage; views that repeat elements (expand()) are not supported, save t.contiguous() instead`);
  }
  return new TorchTensor(size, storage.dtype, () => gatherView(storage, offset, size, stride, numel));
}

/** Element (i0, i1, ...) of the view is storage[offset + Σ i_k · stride_k]: copied out in row-major order. */
function gatherView(storage: TorchStorage, offset: number, size: number[], stride: number[], numel: number): { data: Float32Array; raw: Uint8Array } {
  const src = storage.values();
  const srcRaw = storage.bytes();
  const isz = DTYPE_ITEMSIZE[storage.dtype];
  const rank = size.length;
  let contiguous = true;
  for (let k = rank - 1, expect = 1; k >= 0; k--) {
    if (size[k] !== 1 && stride[k] !== expect) { contiguous = false; break; }
    expect *= size[k];
  }
  // float32 on a little-endian host: the raw bytes are the values' own bytes (no second copy).
  const f32 = storage.dtype === 'F32' && new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (contiguous) {
    const data = src.slice(offset, offset + numel);
    return { data, raw: f32 ? new Uint8Array(data.buffer) : srcRaw.slice(offset * isz, (offset + numel) * isz) };
  }
  const data = new Float32Array(numel);
  const raw = f32 ? new Uint8Array(data.buffer) : new Uint8Array(numel * isz);
  // Odometer over the multi-index; `idx` tracks the storage position incrementally.
  const counter = new Array<number>(rank).fill(0);
  let idx = offset;
  for (let i = 0; i < numel; i++) {
    data[i] = src[idx];
    if (!f32) raw.set(srcRaw.subarray(idx * isz, (idx + 1) * isz), i * isz);
    for (let k = rank - 1; k >= 0; k--) {
      counter[k]++;
      idx += stride[k];
      if (counter[k] < size[k]) break;
      idx -= stride[k] * size[k];
      counter[k] = 0;
    }
  }
  return { data, raw };
}

/** The allow-list: every global a torch.save'd state dict or training checkpoint needs, and nothing else. */
export function torchGlobals(source: string): Map<string, PyGlobal> {
  const g = new Map<string, PyGlobal>();
  const add = (x: PyGlobal): void => { g.set(x.qualname, x); };
  add(new PyGlobal('collections', 'OrderedDict', (args) => {
    const d = new Map<PyValue, PyValue>();
    if (args.length > 0 && Array.isArray(args[0])) {
      for (const kv of args[0] as readonly PyValue[]) {
        if (!Array.isArray(kv) || kv.length !== 2) throw new CheckpointFormatError(source, 'OrderedDict(items): each item must be a (key, value) pair');
        d.set((kv as readonly PyValue[])[0], (kv as readonly PyValue[])[1]);
      }
    }
    return d;
  }));
  add(new PyGlobal('torch._utils', '_rebuild_tensor_v2', (args) => rebuildTensor(args, source)));
  add(new PyGlobal('torch._utils', '_rebuild_tensor', (args) => rebuildTensor(args, source)));
  // `_rebuild_parameter(data, requires_grad, backward_hooks)`: an nn.Parameter is its data here.
  const rebuildParameter = (args: readonly PyValue[]): PyValue => {
    if (!(args[0] instanceof TorchTensor)) throw new CheckpointFormatError(source, '_rebuild_parameter: first argument must be a tensor');
    return args[0];
  };
  add(new PyGlobal('torch._utils', '_rebuild_parameter', rebuildParameter));
  add(new PyGlobal('torch._utils', '_rebuild_parameter_with_state', rebuildParameter));
  add(new PyGlobal('torch', 'Size', (args) => {
    const dims = args.length === 0 ? [] : toIntList(args[0], 'torch.Size', source);
    return Object.freeze(dims);
  }));
  for (const [name, dtype] of STORAGE_TYPES) add(new StorageType(name, dtype));
  for (const name of DTYPE_NAMES) add(new PyGlobal('torch', name));
  return g;
}

/** `bytes` of `numel` elements of `dtype` (byte-swapped first when the writer was big-endian) as a lazy storage. */
function lazyStorage(key: string, dtype: Dtype, numel: number, read: () => Uint8Array, bigEndian: boolean): TorchStorage {
  const itemsize = DTYPE_ITEMSIZE[dtype];
  let le: Uint8Array | undefined;
  let decoded: Float32Array | undefined;
  const bytes = (): Uint8Array => {
    if (!le) {
      let raw = read().subarray(0, numel * itemsize);
      if (bigEndian && itemsize > 1) {
        raw = raw.slice();
        for (let i = 0; i < raw.length; i += itemsize) raw.subarray(i, i + itemsize).reverse();
      }
      le = raw;
    }
    return le;
  };
  const values = (): Float32Array => (decoded ??= decodeToFloat32(bytes(), dtype));
  return new TorchStorage(key, dtype, numel, values, bytes);
}

/** The `(type, key, numel)` of a storage persistent id `('storage', torch.<T>Storage, key, location, numel[, view_metadata])`. */
function storagePid(pid: PyValue, source: string): { type: StorageType; key: string; numel: number; view: PyValue } {
  if (!isTuple(pid) || pid.length < 5 || pid[0] !== 'storage') {
    const what = isTuple(pid) && pid.length > 0 && typeof pid[0] === 'string' ? ` '${pid[0].slice(0, 20)}' id` : Array.isArray(pid) ? ` ${pid.length}-tuple` : ` ${typeof pid}`;
    throw new CheckpointFormatError(source, `persistent id must be ('storage', type, key, location, numel), got a${what}` +
      (isTuple(pid) && pid[0] === 'module' ? ' (a pickled nn.Module class with its source code: save model.state_dict() instead)' : ''));
  }
  const [, type, key, , numel] = pid;
  if (!(type instanceof StorageType)) throw new CheckpointFormatError(source, `persistent id names storage type ${type instanceof PyGlobal ? type.qualname : typeof type}, not a torch.*Storage`);
  if (typeof key !== 'string') throw new CheckpointFormatError(source, `storage key must be a string, got ${typeof key}`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new CheckpointFormatError(source, `storage '${key}' numel must be a non-negative integer, got ${String(numel)}`);
  return { type, key, numel, view: pid.length > 5 ? pid[5]! : null };
}

/** torch.save's legacy magic number (torch/serialization.py MAGIC_NUMBER) and format version (PROTOCOL_VERSION). */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** Whether `bytes` start with the pickled legacy magic number (`\x80\x02\x8a\x0a` + its 10 bytes). */
export function isLegacyTorch(bytes: Uint8Array): boolean {
  if (bytes.length < 15 || bytes[0] !== 0x80 || bytes[2] !== 0x8a || bytes[3] !== 0x0a) return false;
  let v = 0n;
  for (let i = 9; i >= 0; i--) v = (v << 8n) | BigInt(bytes[4 + i]!);
  return v === LEGACY_MAGIC;
}

/**
 * Parse a torch.save checkpoint held in memory, zip (torch >= 1.6) or legacy (see
 * {@link readLegacyPth}), and return the unpickled top-level object (usually a Map: a state dict
 * or a checkpoint dict such as `{'model': sd, 'epoch': 5}`).
 */
export function readPth(bytes: Uint8Array, source = '<bytes>'): PyValue {
  if (bytes.length >= 2 && bytes[0] === 0x80) {
    if (isLegacyTorch(bytes)) return readLegacyPth(bytes, source);
    throw new CheckpointFormatError(source, 'a plain pickle, not a torch.save file (no legacy magic number, not a zip); numpy pickles such as detectron2 .pkl files are read by readPicklePlain / readCheckpoint');
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b || bytes[2] !== 0x03 || bytes[3] !== 0x04) {
    throw new CheckpointFormatError(source, 'not a torch.save file (neither a zip archive starting PK\\x03\\x04 nor a legacy pickle starting \\x80)');
  }
  const zip = openZip(bytes, source);
  const pkl = zip.names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new CheckpointFormatError(source, `no '<archive>/data.pkl' entry; entries are: ${zip.names.slice(0, 8).join(', ')}`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  let bigEndian = false;
  if (zip.has(prefix + 'byteorder')) {
    const order = new TextDecoder().decode(zip.read(prefix + 'byteorder')).trim();
    if (order !== 'little' && order !== 'big') throw new CheckpointFormatError(source, `byteorder entry says '${order.slice(0, 20)}', expected 'little' or 'big'`);
    bigEndian = order === 'big';
  }

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: PyValue): PyValue => {
    const { type, key, numel } = storagePid(pid, source);
    const cached = storages.get(key);
    if (cached) return cached;
    const entry = `${prefix}data/${key}`;
    const e = zip.entry(entry);
    if (!e) throw new CheckpointFormatError(source, `storage '${key}' has no '${entry}' entry in the archive`);
    const itemsize = DTYPE_ITEMSIZE[type.dtype];
    if (e.uncompressedSize < numel * itemsize) {
      throw new CheckpointFormatError(source, `storage '${key}' (${type.name}) needs ${numel} × ${itemsize} = ${numel * itemsize} bytes, but '${entry}' holds ${e.uncompressedSize}`);
    }
    const s = lazyStorage(key, type.dtype, numel, () => zip.read(entry), bigEndian);
    storages.set(key, s);
    return s;
  };
  const root = unpickle(zip.read(pkl), { source: `${source}:${pkl}`, globals: torchGlobals(source), persistentLoad });
  // Read (and CRC-check) every storage now, so a damaged file fails here rather than at first use.
  for (const s of storages.values()) s.bytes();
  return root;
}

/**
 * The legacy torch.save format (torch < 1.6 and `_use_new_zipfile_serialization=False`;
 * torch/serialization.py `_legacy_save` / `_legacy_load`): five things back to back,
 *
 *   pickle(MAGIC_NUMBER)  pickle(PROTOCOL_VERSION = 1001)  pickle(sys_info)
 *   pickle(obj)           tensors as in the zip format; persistent ids
 *                         ('storage', torch.<T>Storage, key, location, numel, view_metadata)
 *   pickle(sorted storage keys)
 *   for each key: int64 element count, then count × itemsize raw bytes (`_write_file`)
 *
 * `sys_info.little_endian` gives the byte order of the counts and elements. A view_metadata
 * `(view_key, offset, size)` names a slice of the root storage (elements).
 */
export function readLegacyPth(bytes: Uint8Array, source = '<bytes>'): PyValue {
  const plain = { source, globals: new Map<string, PyGlobal>() };
  const magic = unpickleFrom(bytes, 0, plain);
  if (magic.value !== LEGACY_MAGIC) throw new CheckpointFormatError(source, 'legacy torch file: the first pickle is not the torch.save magic number');
  const proto = unpickleFrom(bytes, magic.end, plain);
  if (proto.value !== LEGACY_PROTOCOL) throw new CheckpointFormatError(source, `legacy torch file: format version ${String(proto.value)}, expected ${LEGACY_PROTOCOL}`);
  const sys = unpickleFrom(bytes, proto.end, plain);
  if (!(sys.value instanceof Map)) throw new CheckpointFormatError(source, 'legacy torch file: the third pickle (sys_info) is not a dict');
  const little = sys.value.get('little_endian');
  if (typeof little !== 'boolean') throw new CheckpointFormatError(source, 'legacy torch file: sys_info has no boolean little_endian');

  // Storages are read after the object; the tensors built meanwhile gather their data lazily.
  const roots = new Map<string, { dtype: Dtype; numel: number; data?: Uint8Array }>();
  const storages = new Map<string, TorchStorage>();
  const rootBytes = (key: string): Uint8Array => {
    const r = roots.get(key)!;
    if (!r.data) throw new CheckpointFormatError(source, `legacy torch file: storage '${key}' is used by a tensor but its bytes are not in the file`);
    return r.data;
  };
  const persistentLoad = (pid: PyValue): PyValue => {
    const { type, key, numel, view } = storagePid(pid, source);
    const itemsize = DTYPE_ITEMSIZE[type.dtype];
    if (numel * itemsize > bytes.length) throw new CheckpointFormatError(source, `storage '${key}' claims ${numel} elements, more than the ${bytes.length}-byte file holds`);
    const root = roots.get(key);
    if (root && (root.dtype !== type.dtype || root.numel !== numel)) throw new CheckpointFormatError(source, `storage '${key}' is named with two types or sizes`);
    if (!root) roots.set(key, { dtype: type.dtype, numel });
    if (view === null) {
      let s = storages.get(key);
      if (!s) { s = lazyStorage(key, type.dtype, numel, () => rootBytes(key), !little); storages.set(key, s); }
      return s;
    }
    if (!isTuple(view) || view.length !== 3 || typeof view[0] !== 'string' || typeof view[1] !== 'number' || typeof view[2] !== 'number') {
      throw new CheckpointFormatError(source, `storage '${key}': view metadata must be (view_key, offset, size)`);
    }
    const [vkey, off, size] = view as readonly [string, number, number];
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(size) || off < 0 || size < 0 || off + size > numel) {
      throw new CheckpointFormatError(source, `storage view '${vkey}' [${off}, ${off}+${size}) is outside root storage '${key}' of ${numel} elements`);
    }
    const vid = `view:${vkey}`;
    let s = storages.get(vid);
    if (!s) {
      s = lazyStorage(vkey, type.dtype, size, () => rootBytes(key).subarray(off * itemsize, (off + size) * itemsize), !little);
      storages.set(vid, s);
    }
    return s;
  };
  const obj = unpickleFrom(bytes, sys.end, { source, globals: torchGlobals(source), persistentLoad });
  const keysV = unpickleFrom(bytes, obj.end, plain);
  if (!Array.isArray(keysV.value)) throw new CheckpointFormatError(source, 'legacy torch file: the storage key list after the object is not a list');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keysV.end;
  for (const key of keysV.value as readonly PyValue[]) {
    if (typeof key !== 'string') throw new CheckpointFormatError(source, `legacy torch file: storage key ${String(key)} is not a string`);
    const r = roots.get(key);
    if (!r) throw new CheckpointFormatError(source, `legacy torch file: storage '${key.slice(0, 30)}' is listed but no tensor names it, so its element size is unknown`);
    if (r.data) throw new CheckpointFormatError(source, `legacy torch file: storage '${key.slice(0, 30)}' is listed twice`);
    if (pos + 8 > bytes.length) throw new CheckpointFormatError(source, `legacy torch file: storage '${key}' element count at byte ${pos} is past the end (truncated?)`);
    const count = dv.getBigInt64(pos, little);
    if (count !== BigInt(r.numel)) throw new CheckpointFormatError(source, `legacy torch file: storage '${key}' holds ${count} elements, its persistent id says ${r.numel}`);
    pos += 8;
    const n = r.numel * DTYPE_ITEMSIZE[r.dtype];
    if (pos + n > bytes.length) throw new CheckpointFormatError(source, `legacy torch file: storage '${key}' needs ${n} bytes at ${pos}, the file ends at ${bytes.length} (truncated?)`);
    r.data = bytes.subarray(pos, pos + n);
    pos += n;
  }
  for (const [key, r] of roots) if (!r.data) throw new CheckpointFormatError(source, `legacy torch file: storage '${key.slice(0, 30)}' is used by a tensor but not in the storage key list`);
  return obj.value;
}

/** Read a torch.save checkpoint (zip or legacy) from disk (see {@link readPth}). */
export function loadPth(path: string): PyValue {
  return readPth(fs.readFileSync(path), path);
}

/** JSON-like non-tensor values of a checkpoint (epoch numbers, config strings, ...). */
export type PthExtra = null | boolean | number | bigint | string | Uint8Array | PthExtra[] | { global: string } | { opaque: string };

/** Visits beyond this many nodes mean a pickle built to explode through shared references. */
const MAX_FLATTEN_NODES = 250_000;

/**
 * Flatten nested dicts/lists into dotted keys: `{'model': {'blocks.0.attn.qkv.weight': T}, 'epoch': 5}`
 * gives tensor `model.blocks.0.attn.qkv.weight` and extra `epoch`. The top-level key structure is
 * kept, so the key maps in `keymaps.ts` can recognise the source (`model.`, `model_state.` ...).
 */
export function flattenCheckpoint(root: PyValue, source = '<bytes>'): { tensors: Map<string, NamedTensor>; extras: Map<string, PthExtra> } {
  const tensors = new Map<string, NamedTensor>();
  const extras = new Map<string, PthExtra>();
  const onPath = new Set<PyValue>();
  let visits = 0;
  const scalar = (v: PyValue): PthExtra => {
    if (v instanceof PyGlobal) return { global: v.qualname };
    if (v instanceof PyExtension) return { opaque: v.kind };
    if (v instanceof Map) return { opaque: 'dict' };
    if (Array.isArray(v)) return { opaque: 'sequence' };
    return v as PthExtra;
  };
  const walk = (v: PyValue, key: string): void => {
    if (++visits > MAX_FLATTEN_NODES) throw new CheckpointFormatError(source, `checkpoint has more than ${MAX_FLATTEN_NODES} nested values (shared references exploding?)`);
    if (v instanceof ArrayValue) {
      tensors.set(key, { shape: v.shape, data: v.data, dtype: v.dtype, raw: v.raw });
      return;
    }
    if (v instanceof Map || Array.isArray(v)) {
      if (onPath.has(v)) throw new CheckpointFormatError(source, `checkpoint value '${key}' contains itself (cyclic reference)`);
      const entries: [PyValue, PyValue][] = v instanceof Map ? [...v.entries()] : (v as readonly PyValue[]).map((x, i) => [i, x]);
      // A sequence of plain scalars stays one extra (e.g. an `args.lr_steps` list).
      if (Array.isArray(v) && entries.every(([, x]) => !(x instanceof Map) && !Array.isArray(x) && !(x instanceof ArrayValue))) {
        extras.set(key, (v as readonly PyValue[]).map(scalar));
        return;
      }
      onPath.add(v);
      for (const [k, x] of entries) {
        const ks = typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean' ? String(k) : null;
        if (ks === null) throw new CheckpointFormatError(source, `checkpoint key under '${key}' is not a string or integer`);
        walk(x, key === '' ? ks : `${key}.${ks}`);
      }
      onPath.delete(v);
      return;
    }
    extras.set(key, scalar(v));
  };
  walk(root, '');
  return { tensors, extras };
}

/**
 * Load a .pth/.pt checkpoint and return its tensors flattened to dotted keys plus the non-tensor
 * entries. @example
 * ```ts
 * const { tensors, extras } = loadStateDict('deit_tiny.pth'); // tensors.get('model.pos_embed')
 * ```
 */
export function loadStateDict(path: string): { tensors: Map<string, NamedTensor>; extras: Map<string, PthExtra> } {
  return flattenCheckpoint(loadPth(path), path);
}

export { StorageType as TorchStorageType };
