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
 * The pickle is read by the restricted unpickler in `pickle.ts`: only the globals listed in
 * {@link TORCH_GLOBALS} resolve, nothing is executed, every tensor comes back as float32.
 */
import * as fs from 'node:fs';
import { CheckpointFormatError } from './errors.ts';
import { openZip } from './zip.ts';
import { PyExtension, PyGlobal, type PyValue, isTuple, unpickle } from './pickle.ts';
import { type Dtype, DTYPE_ITEMSIZE, type NamedTensor, decodeToFloat32 } from './safetensors.ts';

/** A storage reference from a persistent id; decoded lazily and cached per key. */
export class TorchStorage extends PyExtension {
  readonly kind = 'torch storage';
  constructor(readonly key: string, readonly dtype: Dtype, readonly numel: number, readonly values: () => Float32Array) { super(); }
}

/** A tensor rebuilt from a storage view, already converted to contiguous float32. */
export class TorchTensor extends PyExtension implements NamedTensor {
  readonly kind = 'torch tensor';
  constructor(readonly shape: number[], readonly data: Float32Array) { super(); }
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
  if (numel === 0) return new TorchTensor(size, new Float32Array(0));
  let maxIndex = offset;
  for (let k = 0; k < size.length; k++) maxIndex += (size[k] - 1) * stride[k];
  if (maxIndex >= storage.numel) throw new CheckpointFormatError(source, `${where} reads element ${maxIndex}, past the end of its storage`);
  // A view can only repeat storage elements (stride 0, e.g. expand()); refusing views larger than
  // their storage keeps a forged size from allocating more than the file holds.
  if (numel > storage.numel) {
    throw new CheckpointFormatError(source, `${where} has more elements than its storage; views that repeat elements (expand()) are not supported, save t.contiguous() instead`);
  }
  const src = storage.values();
  const out = new Float32Array(numel);
  const rank = size.length;
  let contiguous = true;
  for (let k = rank - 1, expect = 1; k >= 0; k--) {
    if (size[k] !== 1 && stride[k] !== expect) { contiguous = false; break; }
    expect *= size[k];
  }
  if (contiguous) {
    out.set(src.subarray(offset, offset + numel));
  } else {
    // Odometer over the multi-index; `idx` tracks the storage position incrementally.
    const counter = new Array<number>(rank).fill(0);
    let idx = offset;
    for (let i = 0; i < numel; i++) {
      out[i] = src[idx];
      for (let k = rank - 1; k >= 0; k--) {
        counter[k]++;
        idx += stride[k];
        if (counter[k] < size[k]) break;
        idx -= stride[k] * size[k];
        counter[k] = 0;
      }
    }
  }
  return new TorchTensor(size, out);
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

/**
 * Parse a torch.save zip checkpoint held in memory and return the unpickled top-level object
 * (usually a Map: a state dict or a checkpoint dict such as `{'model': sd, 'epoch': 5}`).
 */
export function readPth(bytes: Uint8Array, source = '<bytes>'): PyValue {
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
    throw new CheckpointFormatError(source, 'this is a legacy (pre-1.6, non-zip) torch.save file, which this reader does not support; re-save it with torch>=1.6: torch.save(torch.load(path), new_path)');
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b || bytes[2] !== 0x03 || bytes[3] !== 0x04) {
    throw new CheckpointFormatError(source, 'not a torch.save zip archive (missing the PK\\x03\\x04 signature)');
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
    if (!isTuple(pid) || pid.length < 5 || pid[0] !== 'storage') {
      throw new CheckpointFormatError(source, `persistent id must be ('storage', type, key, location, numel), got ${Array.isArray(pid) ? `a ${pid.length}-tuple` : typeof pid}`);
    }
    const [, type, key, , numelV] = pid;
    if (!(type instanceof StorageType)) throw new CheckpointFormatError(source, `persistent id names storage type ${type instanceof PyGlobal ? type.qualname : typeof type}, not a torch.*Storage`);
    if (typeof key !== 'string') throw new CheckpointFormatError(source, `storage key must be a string, got ${typeof key}`);
    const cached = storages.get(key);
    if (cached) return cached;
    if (typeof numelV !== 'number' || !Number.isSafeInteger(numelV) || numelV < 0) throw new CheckpointFormatError(source, `storage '${key}' numel must be a non-negative integer, got ${String(numelV)}`);
    const entry = `${prefix}data/${key}`;
    const e = zip.entry(entry);
    if (!e) throw new CheckpointFormatError(source, `storage '${key}' has no '${entry}' entry in the archive`);
    const itemsize = DTYPE_ITEMSIZE[type.dtype];
    if (e.uncompressedSize < numelV * itemsize) {
      throw new CheckpointFormatError(source, `storage '${key}' (${type.name}) needs ${numelV} × ${itemsize} = ${numelV * itemsize} bytes, but '${entry}' holds ${e.uncompressedSize}`);
    }
    let decoded: Float32Array | undefined;
    const values = (): Float32Array => {
      if (!decoded) {
        let raw = zip.read(entry).subarray(0, numelV * itemsize);
        if (bigEndian && itemsize > 1) {
          raw = raw.slice();
          for (let i = 0; i < raw.length; i += itemsize) raw.subarray(i, i + itemsize).reverse();
        }
        decoded = decodeToFloat32(raw, type.dtype);
      }
      return decoded;
    };
    const s = new TorchStorage(key, type.dtype, numelV, values);
    storages.set(key, s);
    return s;
  };
  return unpickle(zip.read(pkl), { source: `${source}:${pkl}`, globals: torchGlobals(source), persistentLoad });
}

/** Read a torch.save zip checkpoint from disk (see {@link readPth}). */
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
    if (v instanceof TorchTensor) {
      tensors.set(key, { shape: v.shape, data: v.data });
      return;
    }
    if (v instanceof Map || Array.isArray(v)) {
      if (onPath.has(v)) throw new CheckpointFormatError(source, `checkpoint value '${key}' contains itself (cyclic reference)`);
      const entries: [PyValue, PyValue][] = v instanceof Map ? [...v.entries()] : (v as readonly PyValue[]).map((x, i) => [i, x]);
      // A sequence of plain scalars stays one extra (e.g. an `args.lr_steps` list).
      if (Array.isArray(v) && entries.every(([, x]) => !(x instanceof Map) && !Array.isArray(x) && !(x instanceof TorchTensor))) {
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
