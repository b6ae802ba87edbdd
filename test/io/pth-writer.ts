/**
 * Test helper: a tiny pickle + zip WRITER that produces what `torch.save` writes (torch >= 1.6
 * zip format, pickle protocol 2, see torch/serialization.py `_save`): an OrderedDict built by
 * REDUCE, tensors as REDUCE(torch._utils._rebuild_tensor_v2, (BINPERSID(('storage', torch.XStorage,
 * key, 'cpu', numel)), offset, size, stride, False, OrderedDict())), BINPUT after every object,
 * BINGET for repeated globals/strings, `_metadata` attached by BUILD, and the storages as stored zip
 * entries `<archive>/data/<key>` aligned to 64 bytes with an 'FB' padding extra field like
 * PyTorch's inline_container.cc. It is independent of the reader under test.
 */
import { crc32 as zlibCrc32 } from '../../src/io/zip.ts';
import { deflateRawSync } from 'node:zlib';

/** A storage to save: raw little-endian bytes of `numel` elements of torch type `type`. */
export interface StorageSpec { key: string; type: string; itemsize: number; bytes: Uint8Array }
export interface TensorSpec { tensor: true; storage: StorageSpec; offset: number; size: number[]; stride: number[]; parameter?: boolean }
export type SaveValue = number | string | boolean | null | TensorSpec | SaveValue[] | Map<string, SaveValue> | { float: number };

export function f32Storage(key: string, values: number[] | Float32Array): StorageSpec {
  const f = Float32Array.from(values);
  return { key, type: 'FloatStorage', itemsize: 4, bytes: new Uint8Array(f.buffer) };
}

/** Contiguous tensor over a whole storage. */
export function contiguous(storage: StorageSpec, size: number[]): TensorSpec {
  const stride = size.map((_, i) => size.slice(i + 1).reduce((a, b) => a * b, 1));
  return { tensor: true, storage, offset: 0, size, stride };
}

function isTensor(v: SaveValue): v is TensorSpec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && 'tensor' in v;
}

export class PickleWriter {
  private out: number[] = [];
  private memoCount = 0;
  private memoByName = new Map<string, number>();
  get memoSize(): number { return this.memoCount; }
  op(...bytes: number[]): this { this.out.push(...bytes); return this; }
  raw(b: Uint8Array): this { for (const x of b) this.out.push(x); return this; }
  u32(n: number): this { return this.op(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff); }
  put(): this {
    const i = this.memoCount++;
    return i < 256 ? this.op(0x71, i) : this.op(0x72).u32(i);
  }
  get(i: number): this { return i < 256 ? this.op(0x68, i) : this.op(0x6a).u32(i); }
  /** GLOBAL with memo reuse, like pickle's memoize of repeated globals. */
  global(module: string, name: string): this {
    const k = `g:${module}.${name}`;
    const m = this.memoByName.get(k);
    if (m !== undefined) return this.get(m);
    this.op(0x63).raw(new TextEncoder().encode(`${module}\n${name}\n`));
    this.memoByName.set(k, this.memoCount);
    return this.put();
  }
  str(s: string): this {
    const k = `s:${s}`;
    const m = this.memoByName.get(k);
    if (m !== undefined) return this.get(m);
    const b = new TextEncoder().encode(s);
    this.op(0x58).u32(b.length).raw(b);
    this.memoByName.set(k, this.memoCount);
    return this.put();
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a).u32(n >>> 0);
    // LONG1: minimal little-endian two's complement.
    let v = BigInt(n);
    const bytes: number[] = [];
    while (true) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
      if ((v === 0n && !(bytes[bytes.length - 1] & 0x80)) || (v === -1n && bytes[bytes.length - 1] & 0x80)) break;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(0x47).raw(b);
  }
  bytes(): Uint8Array { return Uint8Array.from(this.out); }
}

/** Pickle `root` the way torch.save does and return data.pkl's bytes plus the storages it references. */
export function torchPickle(root: SaveValue): { pkl: Uint8Array; storages: StorageSpec[] } {
  const w = new PickleWriter();
  const storages = new Map<string, StorageSpec>();
  const emitted = new Map<string, number>();
  const value = (v: SaveValue): void => {
    if (v === null) { w.op(0x4e); return; }
    if (typeof v === 'boolean') { w.op(v ? 0x88 : 0x89); return; }
    if (typeof v === 'number') { w.int(v); return; }
    if (typeof v === 'string') { w.str(v); return; }
    if (v instanceof Map) {
      w.global('collections', 'OrderedDict').op(0x29).put().op(0x52).put();
      if (v.size) {
        w.op(0x28);
        for (const [k, x] of v) { w.str(k); value(x); }
        w.op(0x75);
      }
      // `state_dict._metadata = {'': {'version': 1}}` set through BUILD, as torch does.
      w.op(0x7d).put().str('_metadata').op(0x7d).put().str('').op(0x7d).put().str('version').int(1).op(0x73).op(0x73).op(0x73).op(0x62);
      return;
    }
    if (Array.isArray(v)) {
      w.op(0x5d).put();
      if (v.length) { w.op(0x28); for (const x of v) value(x); w.op(0x65); }
      return;
    }
    if (isTensor(v)) {
      if (v.parameter) w.global('torch._utils', '_rebuild_parameter');
      w.global('torch._utils', '_rebuild_tensor_v2');
      w.op(0x28); // MARK for the args tuple
      const s = v.storage;
      storages.set(s.key, s);
      const seen = emitted.get(s.key);
      if (seen !== undefined) {
        w.get(seen);
      } else {
        w.op(0x28).str('storage').global('torch', s.type).str(s.key).str('cpu').int(s.bytes.length / s.itemsize).op(0x74).put().op(0x51);
        // The pickler memoizes the persistent-load result; a second view of the storage BINGETs it.
        const slot = w.memoSize;
        w.put();
        emitted.set(s.key, slot);
      }
      w.int(v.offset);
      w.op(0x28); for (const d of v.size) w.int(d); w.op(0x74).put();
      w.op(0x28); for (const d of v.stride) w.int(d); w.op(0x74).put();
      w.op(0x89); // requires_grad False
      w.global('collections', 'OrderedDict').op(0x29).put().op(0x52).put(); // backward_hooks
      w.op(0x74).put().op(0x52).put();
      if (v.parameter) w.op(0x88).global('collections', 'OrderedDict').op(0x29).put().op(0x52).put().op(0x87).put().op(0x52).put();
      return;
    }
    w.float(v.float);
  };
  w.op(0x80, 0x02);
  value(root);
  w.op(0x2e);
  return { pkl: w.bytes(), storages: [...storages.values()] };
}

export interface ZipFileSpec { name: string; data: Uint8Array }

/** Build a zip: stored (or deflated) entries, data 64-byte aligned, optional zip64 records. */
export function buildZip(files: ZipFileSpec[], opts: { deflate?: boolean; zip64?: boolean } = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const push = (b: Uint8Array): void => { chunks.push(b); offset += b.length; };
  const central: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const f of files) {
    const name = enc.encode(f.name);
    const crc = zlibCrc32(f.data);
    const body = opts.deflate ? new Uint8Array(deflateRawSync(f.data)) : f.data;
    const method = opts.deflate ? 8 : 0;
    const headerOffset = offset;
    // Pad with an 'FB' extra field so the data starts at a multiple of 64 (inline_container.cc).
    const base = offset + 30 + name.length;
    const pad = (64 - ((base + 4) % 64)) % 64;
    const local = new Uint8Array(30 + name.length + 4 + pad);
    const dv = new DataView(local.buffer);
    dv.setUint32(0, 0x04034b50, true);
    dv.setUint16(4, 20, true);
    dv.setUint16(8, method, true);
    dv.setUint32(14, crc, true);
    dv.setUint32(18, body.length, true);
    dv.setUint32(22, f.data.length, true);
    dv.setUint16(26, name.length, true);
    dv.setUint16(28, 4 + pad, true);
    local.set(name, 30);
    dv.setUint16(30 + name.length, 0x4246, true);
    dv.setUint16(32 + name.length, pad, true);
    push(local);
    push(body);
    const x64 = opts.zip64 ? 28 : 0;
    const c = new Uint8Array(46 + name.length + x64);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, 45, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, opts.zip64 ? 0xffffffff : body.length, true);
    cv.setUint32(24, opts.zip64 ? 0xffffffff : f.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, x64, true);
    cv.setUint32(42, opts.zip64 ? 0xffffffff : headerOffset, true);
    c.set(name, 46);
    if (opts.zip64) {
      const p = 46 + name.length;
      cv.setUint16(p, 1, true);
      cv.setUint16(p + 2, 24, true);
      cv.setBigUint64(p + 4, BigInt(f.data.length), true);
      cv.setBigUint64(p + 12, BigInt(body.length), true);
      cv.setBigUint64(p + 20, BigInt(headerOffset), true);
    }
    central.push(c);
  }
  const cdOffset = offset;
  for (const c of central) push(c);
  const cdSize = offset - cdOffset;
  if (opts.zip64) {
    const z = new Uint8Array(56);
    const zv = new DataView(z.buffer);
    zv.setUint32(0, 0x06064b50, true);
    zv.setBigUint64(4, 44n, true);
    zv.setUint16(12, 45, true);
    zv.setUint16(14, 45, true);
    zv.setBigUint64(24, BigInt(files.length), true);
    zv.setBigUint64(32, BigInt(files.length), true);
    zv.setBigUint64(40, BigInt(cdSize), true);
    zv.setBigUint64(48, BigInt(cdOffset), true);
    const zOffset = offset;
    push(z);
    const loc = new Uint8Array(20);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, 0x07064b50, true);
    lv.setBigUint64(8, BigInt(zOffset), true);
    lv.setUint32(16, 1, true);
    push(loc);
  }
  const e = new Uint8Array(22);
  const ev = new DataView(e.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, opts.zip64 ? 0xffff : files.length, true);
  ev.setUint16(10, opts.zip64 ? 0xffff : files.length, true);
  ev.setUint32(12, opts.zip64 ? 0xffffffff : cdSize, true);
  ev.setUint32(16, opts.zip64 ? 0xffffffff : cdOffset, true);
  push(e);
  const out = new Uint8Array(offset);
  let p = 0;
  for (const ch of chunks) { out.set(ch, p); p += ch.length; }
  return out;
}

/** Bytes of a torch.save-style .pth file holding `root`. */
export function torchSave(root: SaveValue, opts: { archive?: string; deflate?: boolean; zip64?: boolean; byteorder?: 'little' | 'big'; pkl?: Uint8Array } = {}): Uint8Array {
  const archive = opts.archive ?? 'archive';
  const { pkl, storages } = torchPickle(root);
  const files: ZipFileSpec[] = [{ name: `${archive}/data.pkl`, data: opts.pkl ?? pkl }];
  if (opts.byteorder) files.push({ name: `${archive}/byteorder`, data: new TextEncoder().encode(opts.byteorder) });
  for (const s of storages) {
    let bytes = s.bytes;
    if (opts.byteorder === 'big') {
      bytes = bytes.slice();
      for (let i = 0; i < bytes.length; i += s.itemsize) bytes.subarray(i, i + s.itemsize).reverse();
    }
    files.push({ name: `${archive}/data/${s.key}`, data: bytes });
  }
  files.push({ name: `${archive}/version`, data: new TextEncoder().encode('3\n') });
  return buildZip(files, opts);
}
