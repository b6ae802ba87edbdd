/**
 * A torch.save WRITER, so that what anyres converts or trains goes back to PyTorch code:
 * `torch.load(path, weights_only=True)` reads the files (tested against torch 1.13).
 *
 * Zip format (torch >= 1.6, torch/serialization.py `_save`, caffe2/serialize/inline_container.cc):
 * `archive/data.pkl` (pickle protocol 2), `archive/data/<key>` raw little-endian storage bytes,
 * stored uncompressed at 64-byte aligned offsets, `archive/byteorder` and `archive/version`.
 * A tensor is pickled as
 *
 *   REDUCE(torch._utils._rebuild_tensor_v2,
 *          (BINPERSID(('storage', torch.<T>Storage, key, 'cpu', numel)), 0, size, stride, False, OrderedDict()))
 *
 * with one storage per tensor, contiguous strides. The legacy format (`_legacy_save`: magic number,
 * protocol 1001, sys_info, the object, the sorted storage keys, then per storage an int64 element
 * count and its bytes) is written too, for old code that reads only that.
 *
 * Dicts whose values are all tensors become `collections.OrderedDict` (what `state_dict()` returns);
 * other dicts are plain dicts; arrays become lists.
 */
import { crc32 } from './zip.ts';
import { writeFileAtomic } from './atomic.ts';
import { type Dtype, DTYPE_ITEMSIZE, type NamedTensor } from './safetensors.ts';

export type TorchSaveValue = null | boolean | number | string | NamedTensor | TorchSaveValue[] | Map<string, TorchSaveValue>;

export interface PthWriteOptions {
  /** Keep each tensor's stored dtype (`dtype` + `raw`) instead of float32. Default false. */
  keepDtypes?: boolean;
  /** The zip's top folder (torch uses the file's stem). Default 'archive'. */
  archive?: string;
}

const STORAGE_OF: Record<Dtype, string> = {
  F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', F64: 'DoubleStorage', I64: 'LongStorage',
  I32: 'IntStorage', I16: 'ShortStorage', I8: 'CharStorage', U8: 'ByteStorage', BOOL: 'BoolStorage',
};

const hostLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isTensor(v: TorchSaveValue): v is NamedTensor {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && 'shape' in v && 'data' in v;
}

/** The bytes and dtype a tensor is written with. */
function tensorBytes(name: string, t: NamedTensor, keep: boolean): { dtype: Dtype; bytes: Uint8Array } {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) throw new Error(`savePth: tensor '${name}' has shape [${t.shape.join(', ')}] (${numel} elements) but ${t.data.length} values`);
  if (keep && t.dtype !== undefined && t.raw !== undefined && t.dtype !== 'F32') {
    if (t.raw.length !== numel * DTYPE_ITEMSIZE[t.dtype]) throw new Error(`savePth: tensor '${name}' has ${t.raw.length} raw bytes, not ${numel} × ${DTYPE_ITEMSIZE[t.dtype]}`);
    return { dtype: t.dtype, bytes: t.raw };
  }
  if (hostLE) return { dtype: 'F32', bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
  const b = new Uint8Array(numel * 4);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < numel; i++) dv.setFloat32(4 * i, t.data[i]!, true);
  return { dtype: 'F32', bytes: b };
}

/** Pickle protocol 2 opcodes (CPython Lib/pickletools.py), with a memo for repeated globals and strings. */
class Pickler {
  private out: number[] = [];
  private memo = 0;
  private memoOf = new Map<string, number>();
  op(...b: number[]): this { for (const x of b) this.out.push(x); return this; }
  private u32(n: number): this { return this.op(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff); }
  private utf8(s: string): number[] { return [...new TextEncoder().encode(s)]; }
  put(): this {
    const i = this.memo++;
    return i < 256 ? this.op(0x71, i) : this.op(0x72).u32(i); // BINPUT / LONG_BINPUT
  }
  private get(i: number): this { return i < 256 ? this.op(0x68, i) : this.op(0x6a).u32(i); }
  global(module: string, name: string): this {
    const k = `g:${module}.${name}`;
    const m = this.memoOf.get(k);
    if (m !== undefined) return this.get(m);
    this.op(0x63, ...this.utf8(`${module}\n${name}\n`)); // GLOBAL
    this.memoOf.set(k, this.memo);
    return this.put();
  }
  str(s: string): this {
    const k = `s:${s}`;
    const m = this.memoOf.get(k);
    if (m !== undefined) return this.get(m);
    const b = this.utf8(s);
    this.op(0x58).u32(b.length).op(...b); // BINUNICODE
    this.memoOf.set(k, this.memo);
    return this.put();
  }
  int(n: number | bigint): this {
    if (typeof n === 'number' && Number.isInteger(n)) {
      if (n >= 0 && n < 256) return this.op(0x4b, n); // BININT1
      if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8); // BININT2
      if (n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a).u32(n >>> 0); // BININT
    }
    // LONG1: minimal little-endian two's complement.
    let v = BigInt(n);
    const bytes: number[] = [];
    for (;;) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
      const last = bytes[bytes.length - 1]!;
      if ((v === 0n && !(last & 0x80)) || (v === -1n && last & 0x80)) break;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(0x47, ...b); // BINFLOAT, big-endian
  }
  tuple(items: (() => void)[]): this {
    if (items.length === 0) return this.op(0x29); // EMPTY_TUPLE
    this.op(0x28); // MARK
    for (const f of items) f();
    return this.op(0x74); // TUPLE
  }
  bytes(): Uint8Array { return Uint8Array.from(this.out); }
}

interface Storage { key: string; dtype: Dtype; bytes: Uint8Array }

/** Pickles `root` as torch.save does; `pid` writes a storage's persistent id. */
function pickleObject(root: TorchSaveValue, keep: boolean, legacy: boolean): { pkl: Uint8Array; storages: Storage[] } {
  const w = new Pickler();
  const storages: Storage[] = [];
  const emptyOrderedDict = (): void => { w.global('collections', 'OrderedDict').op(0x29).put().op(0x52).put(); };
  const value = (v: TorchSaveValue, name: string): void => {
    if (v === null) { w.op(0x4e); return; }
    if (typeof v === 'boolean') { w.op(v ? 0x88 : 0x89); return; }
    if (typeof v === 'number') { if (Number.isInteger(v)) w.int(v); else w.float(v); return; }
    if (typeof v === 'string') { w.str(v); return; }
    if (isTensor(v)) {
      const { dtype, bytes } = tensorBytes(name, v, keep);
      const key = String(storages.length);
      storages.push({ key, dtype, bytes });
      const numel = v.data.length;
      const stride = v.shape.map((_, i) => v.shape.slice(i + 1).reduce((a, b) => a * b, 1));
      w.global('torch._utils', '_rebuild_tensor_v2');
      w.op(0x28); // MARK: the argument tuple
      // Persistent id ('storage', torch.<T>Storage, key, 'cpu', numel[, view_metadata=None in the legacy format]).
      w.op(0x28).str('storage').global('torch', STORAGE_OF[dtype]).str(key).str('cpu').int(numel);
      if (legacy) w.op(0x4e);
      w.op(0x74).put().op(0x51).put(); // TUPLE, BINPERSID
      w.int(0); // storage offset
      w.tuple(v.shape.map((d) => () => { w.int(d); })).put();
      w.tuple(stride.map((d) => () => { w.int(d); })).put();
      w.op(0x89); // requires_grad False
      emptyOrderedDict(); // backward_hooks
      w.op(0x74).put().op(0x52).put(); // TUPLE, REDUCE
      return;
    }
    if (v instanceof Map) {
      const tensorsOnly = v.size > 0 && [...v.values()].every(isTensor);
      if (tensorsOnly) emptyOrderedDict();
      else w.op(0x7d).put(); // EMPTY_DICT
      if (v.size) {
        w.op(0x28);
        for (const [k, x] of v) { w.str(k); value(x, name ? `${name}.${k}` : k); }
        w.op(0x75); // SETITEMS
      }
      return;
    }
    if (Array.isArray(v)) {
      w.op(0x5d).put(); // EMPTY_LIST
      if (v.length) { w.op(0x28); v.forEach((x, i) => value(x, `${name}.${i}`)); w.op(0x65); }
      return;
    }
    throw new Error(`savePth: '${name}' is a ${typeof v}, which torch.save checkpoints here do not hold`);
  };
  w.op(0x80, 0x02); // PROTO 2
  value(root, '');
  w.op(0x2e); // STOP
  return { pkl: w.bytes(), storages };
}

/** A stored zip with 64-byte aligned entry data (inline_container.cc pads with an 'FB' extra field). */
function storedZip(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    if (f.data.length >= 0xffffffff || offset >= 0xffffffff) throw new Error(`savePth: '${f.name}' would pass 4 GiB, which needs zip64 (not written here); save as safetensors instead`);
    const name = enc.encode(f.name);
    const crc = crc32(f.data);
    const pad = (64 - ((offset + 30 + name.length + 4) % 64)) % 64;
    const local = new Uint8Array(30 + name.length + 4 + pad);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, f.data.length, true);
    lv.setUint32(22, f.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, 4 + pad, true);
    local.set(name, 30);
    lv.setUint16(30 + name.length, 0x4246, true); // 'FB'
    lv.setUint16(32 + name.length, pad, true);
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, f.data.length, true);
    cv.setUint32(24, f.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    c.set(name, 46);
    central.push(c);
    parts.push(local, f.data);
    offset += local.length + f.data.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, cdOffset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const b of [...parts, ...central, end]) { out.set(b, p); p += b.length; }
  return out;
}

/** Bytes of a torch.save zip file holding `root`. */
export function serializePth(root: TorchSaveValue, opts: PthWriteOptions = {}): Uint8Array {
  const archive = opts.archive ?? 'archive';
  if (!/^[A-Za-z0-9_.-]+$/.test(archive)) throw new Error(`savePth: archive name '${archive}' must be a plain folder name`);
  const { pkl, storages } = pickleObject(root, opts.keepDtypes ?? false, false);
  const enc = new TextEncoder();
  return storedZip([
    { name: `${archive}/data.pkl`, data: pkl },
    { name: `${archive}/byteorder`, data: enc.encode('little') },
    ...storages.map((s) => ({ name: `${archive}/data/${s.key}`, data: s.bytes })),
    { name: `${archive}/version`, data: enc.encode('3\n') },
  ]);
}

/** Bytes of a legacy (pre-1.6 layout) torch.save file holding `root`. */
export function serializeLegacyPth(root: TorchSaveValue, opts: PthWriteOptions = {}): Uint8Array {
  const small = (f: (w: Pickler) => void): Uint8Array => { const w = new Pickler(); w.op(0x80, 0x02); f(w); w.op(0x2e); return w.bytes(); };
  const magic = small((w) => w.int(0x1950a86a20f9469cfc6cn));
  const proto = small((w) => w.int(1001));
  const sys = small((w) => {
    w.op(0x7d).put().op(0x28).str('protocol_version').int(1001).str('little_endian').op(0x88).str('type_sizes');
    w.op(0x7d).put().op(0x28).str('short').int(2).str('int').int(4).str('long').int(8).op(0x75).op(0x75);
  });
  const { pkl, storages } = pickleObject(root, opts.keepDtypes ?? false, true);
  // torch writes the keys sorted as strings; ours are '0', '1', ... so sort the same way.
  const sorted = [...storages].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const keys = small((w) => { w.op(0x5d).put(); if (sorted.length) { w.op(0x28); for (const s of sorted) w.str(s.key); w.op(0x65); } });
  const parts: Uint8Array[] = [magic, proto, sys, pkl, keys];
  for (const s of sorted) {
    const n = new Uint8Array(8);
    new DataView(n.buffer).setBigInt64(0, BigInt(s.bytes.length / DTYPE_ITEMSIZE[s.dtype]), true);
    parts.push(n, s.bytes);
  }
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let p = 0;
  for (const b of parts) { out.set(b, p); p += b.length; }
  return out;
}

/** Writes `root` as a torch.save zip file, atomically. */
export function savePth(path: string, root: TorchSaveValue, opts: PthWriteOptions = {}): void {
  writeFileAtomic(path, serializePth(root, opts));
}
