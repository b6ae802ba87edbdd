/**
 * safetensors reader/writer (format: https://github.com/huggingface/safetensors, README "Format"):
 * `u64` little-endian header length N, N bytes of JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }`,
 * then the data section; offsets are relative to its start. Every tensor is converted to
 * float32 on read; we always write F32.
 *
 * The validation follows the reference Rust implementation (`safetensors/src/tensor.rs`,
 * `Metadata::validate`): offsets must tile the data section exactly (no gaps, no overlaps,
 * nothing past the end), and each byte length must equal prod(shape) * itemsize.
 */
import * as fs from 'node:fs';
import { CheckpointFormatError } from './errors.ts';
import { writeFileAtomic } from './atomic.ts';

/**
 * A tensor as the checkpoint readers return it: row-major float32 data and its shape. Readers also
 * give the stored dtype and its raw little-endian bytes (row-major), so a format conversion can
 * keep float16 / bfloat16 / integer tensors as they were; code that computes uses `data`.
 */
export type NamedTensor = { shape: number[]; data: Float32Array; dtype?: Dtype; raw?: Uint8Array };

/** Element types we can convert to float32, with their size in bytes. */
export const DTYPE_ITEMSIZE = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
} as const;
export type Dtype = keyof typeof DTYPE_ITEMSIZE;

export function isDtype(s: string): s is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_ITEMSIZE, s);
}

/** Headers above this are refused before parsing (the reference reader uses the same 100 MB cap). */
export const MAX_HEADER_BYTES = 100_000_000;

// IEEE half -> float32 for all 65536 bit patterns, built once. Every half value (including
// subnormals, infinities and NaN payloads) is exactly representable in float32, so the table is exact.
let halfTable: Float32Array | undefined;
function getHalfTable(): Float32Array {
  if (halfTable) return halfTable;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      if (mant === 0) { bits[h] = sign; continue; }
      // Subnormal half: value = mant * 2^-24. Normalise the mantissa for float32.
      let e = -1;
      let m = mant;
      while ((m & 0x400) === 0) { m <<= 1; e++; }
      bits[h] = sign | ((127 - 15 - e) << 23) | ((m & 0x3ff) << 13);
    } else if (exp === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mant << 13); // inf / NaN (payload kept)
    } else {
      bits[h] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
  }
  halfTable = new Float32Array(bits.buffer);
  return halfTable;
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Convert little-endian raw elements of `dtype` to float32. F32/F16/BF16/BOOL/U8/I8/I16 are exact;
 * F64, I32 and I64 round to the nearest float32 (int64 goes through a double first).
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const size = DTYPE_ITEMSIZE[dtype];
  const n = Math.floor(bytes.length / size);
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      if (hostIsLittleEndian) {
        new Uint8Array(out.buffer).set(bytes.subarray(0, n * 4));
      } else {
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      }
      break;
    case 'F16': {
      const t = getHalfTable();
      for (let i = 0; i < n; i++) out[i] = t[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
      break;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the 16 bits up, exact by construction.
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = (bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16;
      break;
    }
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case 'U8':
      for (let i = 0; i < n; i++) out[i] = bytes[i];
      break;
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = bytes[i] !== 0 ? 1 : 0;
      break;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parse a safetensors file held in memory. `source` names the file in error messages.
 * @throws CheckpointFormatError for any malformed or unsupported content.
 */
export function readSafetensors(
  bytes: Uint8Array,
  source = '<bytes>',
): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const fail = (msg: string): never => { throw new CheckpointFormatError(source, `safetensors: ${msg}`); };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length field (truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = dv.getBigUint64(0, true);
  const maxHeader = BigInt(Math.min(bytes.length - 8, MAX_HEADER_BYTES - 1));
  if (headerLen > maxHeader) {
    fail(`header length ${headerLen} exceeds ${bytes.length - 8 < MAX_HEADER_BYTES
      ? `the ${bytes.length - 8} bytes after the length field (truncated or corrupt file)`
      : `the ${MAX_HEADER_BYTES}-byte header limit`}`);
  }
  const n = Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header (${n} bytes) is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(header)) fail(`header must be a JSON object, got ${Array.isArray(header) ? 'an array' : typeof header}`);
  const hdr = header as Record<string, unknown>;
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const rawMeta = hdr['__metadata__'];
  if (rawMeta !== undefined) {
    if (!isPlainObject(rawMeta)) fail(`"__metadata__" must be an object of strings, got ${JSON.stringify(rawMeta)?.slice(0, 80)}`);
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`"__metadata__"."${k}" must be a string, got ${typeof v}`);
      metadata[k] = v as string;
    }
  }

  type Entry = { name: string; dtype: Dtype; shape: number[]; begin: number; end: number };
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(hdr)) {
    if (name === '__metadata__') continue;
    const where = `tensor '${name}'`;
    if (!isPlainObject(raw)) fail(`${where}: entry must be an object {dtype, shape, data_offsets}`);
    const e = raw as Record<string, unknown>;
    const dtype = e['dtype'];
    if (typeof dtype !== 'string') fail(`${where}: missing string "dtype"`);
    if (!isDtype(dtype as string)) {
      fail(`${where}: dtype '${String(dtype)}' is not supported; supported: ${Object.keys(DTYPE_ITEMSIZE).join(', ')}`);
    }
    const shape = e['shape'];
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      fail(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)?.slice(0, 80)}`);
    }
    const offs = e['data_offsets'];
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt)) {
      fail(`${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offs)?.slice(0, 80)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before begin`);
    if (end > dataLen) fail(`${where}: data_offsets [${begin}, ${end}] run past the data section of ${dataLen} bytes (truncated file?)`);
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const itemsize = DTYPE_ITEMSIZE[dtype as Dtype];
    if (numel * itemsize !== end - begin) {
      fail(`${where}: shape [${(shape as number[]).join(', ')}] with ${dtype} needs ${numel * itemsize} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as Dtype, shape: (shape as number[]).slice(), begin, end });
  }

  // Offsets must tile [0, dataLen) exactly, as in the reference implementation.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = '';
  for (const e of sorted) {
    if (e.begin < cursor) fail(`tensor '${e.name}' [${e.begin}, ${e.end}] overlaps tensor '${prev}' which ends at ${cursor}`);
    if (e.begin > cursor) fail(`gap in the data section: bytes [${cursor}, ${e.begin}) belong to no tensor (before '${e.name}')`);
    cursor = e.end;
    prev = e.name;
  }
  if (cursor !== dataLen) fail(`data section is ${dataLen} bytes but the tensors cover only ${cursor}; trailing bytes are not allowed`);

  const tensors = new Map<string, NamedTensor>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    const data = decodeToFloat32(raw, e.dtype);
    tensors.set(e.name, { shape: e.shape, data, dtype: e.dtype, raw: e.dtype === 'F32' && hostIsLittleEndian ? new Uint8Array(data.buffer) : raw.slice() });
  }
  return { tensors, metadata };
}

/** Read and parse a safetensors file. */
export function loadSafetensors(path: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  return readSafetensors(fs.readFileSync(path), path);
}

/** How {@link serializeSafetensors} stores each tensor. */
export interface SerializeOptions {
  /**
   * Keep each tensor's stored dtype (`dtype` + `raw` from a reader) instead of writing float32:
   * a format conversion that changes nothing but the container. Default false (everything F32).
   */
  keepDtypes?: boolean;
}

/**
 * Serialise tensors as safetensors bytes (F32, or the tensors' own dtypes with `keepDtypes`).
 * Keys keep the iteration order of `tensors`; the header is padded with spaces to a multiple of 8
 * so the data section is 8-byte aligned.
 */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, NamedTensor>,
  metadata?: Record<string, string>,
  opts: SerializeOptions = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error(`saveSafetensors: tensor name '__metadata__' is reserved by the format`);
    let numel = 1;
    for (const d of t.shape) {
      if (!isNonNegInt(d)) throw new Error(`saveSafetensors: tensor '${name}' has shape [${t.shape.join(', ')}]; dimensions must be non-negative integers`);
      numel *= d;
    }
    if (numel !== t.data.length) {
      throw new Error(`saveSafetensors: tensor '${name}' has shape [${t.shape.join(', ')}] (${numel} elements) but ${t.data.length} values`);
    }
    const keep = opts.keepDtypes && t.dtype !== undefined && t.raw !== undefined && t.dtype !== 'F32';
    let bytes: Uint8Array;
    if (keep) {
      if (t.raw!.length !== numel * DTYPE_ITEMSIZE[t.dtype!]) throw new Error(`saveSafetensors: tensor '${name}' has ${t.raw!.length} raw bytes, ${t.dtype} [${t.shape.join(', ')}] needs ${numel * DTYPE_ITEMSIZE[t.dtype!]}`);
      bytes = t.raw!;
    } else if (hostIsLittleEndian) {
      bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    } else {
      bytes = new Uint8Array(numel * 4);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < numel; i++) dv.setFloat32(4 * i, t.data[i]!, true);
    }
    header[name] = { dtype: keep ? t.dtype : 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    parts.push(bytes);
  }
  let json = JSON.stringify(header);
  let jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - (jsonBytes.length % 8)) % 8;
  if (pad) { json += ' '.repeat(pad); jsonBytes = new TextEncoder().encode(json); }
  const out = new Uint8Array(8 + jsonBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  let p = 8 + jsonBytes.length;
  for (const b of parts) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

/** Write tensors to `path` as safetensors (see {@link serializeSafetensors}), atomically (temp file + rename). */
export function saveSafetensors(
  path: string,
  tensors: ReadonlyMap<string, NamedTensor>,
  metadata?: Record<string, string>,
  opts: SerializeOptions = {},
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata, opts));
}
