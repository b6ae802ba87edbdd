/**
 * IDX file format (Y. LeCun, http://yann.lecun.com/exdb/mnist/ "THE IDX FILE FORMAT"),
 * used by MNIST and Fashion-MNIST:
 *
 *   bytes 0-1  zero
 *   byte  2    dtype: 0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
 *   byte  3    number of dimensions
 *   then one big-endian uint32 per dimension, then the data, big-endian, row-major.
 *
 * The parser trusts nothing: every field is checked against the buffer before use and
 * the data length must match the dimensions exactly, so truncated, padded and forged
 * files fail with a `DataFormatError` instead of reading out of bounds or allocating
 * gigabytes. Gzip input (magic 1f 8b) is inflated with a size cap.
 */
import { gunzipSync } from 'node:zlib';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';

/** A malformed data file: names the file (when known) and what was wrong. */
export class DataFormatError extends Error {
  readonly file: string | undefined;
  constructor(message: string, file?: string, options?: { cause?: unknown }) {
    super(file ? `${file}: ${message}` : message, options);
    this.name = 'DataFormatError';
    this.file = file;
  }
}

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  data: IdxData;
}

const DTYPE_BY_CODE: Record<number, { dtype: IdxDtype; size: number }> = {
  0x08: { dtype: 'uint8', size: 1 },
  0x09: { dtype: 'int8', size: 1 },
  0x0b: { dtype: 'int16', size: 2 },
  0x0c: { dtype: 'int32', size: 4 },
  0x0d: { dtype: 'float32', size: 4 },
  0x0e: { dtype: 'float64', size: 8 },
};
const CODE_BY_DTYPE: Record<IdxDtype, number> = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e };

/** Largest inflated size accepted by default (1 GiB; the Fashion-MNIST train images are 47 MB). */
export const DEFAULT_MAX_BYTES = 1 << 30;
const MAX_DIMS = 16;

export interface ParseIdxOptions {
  /** For error messages. */
  file?: string;
  /** Cap on the (inflated) size in bytes; default 1 GiB. */
  maxBytes?: number;
}

function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Parse an IDX buffer (raw or gzip-compressed). Throws `DataFormatError` on any inconsistency. */
export function parseIdx(input: Uint8Array, opts: ParseIdxOptions = {}): IdxArray {
  const file = opts.file;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let buf = input;
  if (isGzip(buf)) {
    try {
      buf = gunzipSync(buf, { maxOutputLength: maxBytes });
    } catch (err) {
      throw new DataFormatError(`gzip stream could not be inflated (${(err as Error).message}); the file is corrupt or larger than ${maxBytes} bytes`, file, { cause: err });
    }
  }
  if (buf.length < 4) throw new DataFormatError(`IDX header needs 4 bytes, file has ${buf.length}`, file);
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new DataFormatError(`bad IDX magic: first two bytes must be 0, got 0x${buf[0]!.toString(16)} 0x${buf[1]!.toString(16)}`, file);
  }
  const code = buf[2]!;
  const dt = DTYPE_BY_CODE[code];
  if (!dt) throw new DataFormatError(`unknown IDX dtype code 0x${code.toString(16)} (known: 08 09 0B 0C 0D 0E)`, file);
  const ndim = buf[3]!;
  if (ndim < 1 || ndim > MAX_DIMS) throw new DataFormatError(`IDX rank must be in [1, ${MAX_DIMS}], got ${ndim}`, file);
  const headerBytes = 4 + 4 * ndim;
  if (buf.length < headerBytes) {
    throw new DataFormatError(`truncated IDX header: rank ${ndim} needs ${headerBytes} bytes, file has ${buf.length}`, file);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let k = 0; k < ndim; k++) {
    const d = view.getUint32(4 + 4 * k, false);
    dims.push(d);
    count *= d; // exact in float64 while below 2^53; checked against the buffer next
    if (count * dt.size > buf.length) {
      throw new DataFormatError(`IDX dims [${dims.join(', ')}${k + 1 < ndim ? ', ...' : ''}] of ${dt.dtype} need more bytes than the file's ${buf.length}`, file);
    }
  }
  const dataBytes = count * dt.size;
  const have = buf.length - headerBytes;
  if (have !== dataBytes) {
    throw new DataFormatError(
      `IDX data length mismatch: dims [${dims.join(', ')}] of ${dt.dtype} need ${dataBytes} bytes after the ${headerBytes}-byte header, found ${have} (${have < dataBytes ? 'truncated' : 'trailing bytes'})`,
      file,
    );
  }
  const body = buf.subarray(headerBytes);
  let data: IdxData;
  switch (dt.dtype) {
    case 'uint8':
      data = new Uint8Array(body); // copy: detach from a possibly huge input buffer
      break;
    case 'int8':
      data = new Int8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
      break;
    default: {
      data = readBigEndian(dt.dtype, new DataView(body.buffer, body.byteOffset, body.byteLength), count);
    }
  }
  return { dtype: dt.dtype, dims, data };
}

function readBigEndian(dtype: IdxDtype, v: DataView, n: number): IdxData {
  switch (dtype) {
    case 'int16': {
      const a = new Int16Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getInt16(2 * i, false);
      return a;
    }
    case 'int32': {
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getInt32(4 * i, false);
      return a;
    }
    case 'float32': {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getFloat32(4 * i, false);
      return a;
    }
    case 'float64': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = v.getFloat64(8 * i, false);
      return a;
    }
    default:
      throw new Error(`readBigEndian: ${dtype} is a one-byte type`);
  }
}

/** Serialise to IDX bytes (uncompressed). Inverse of `parseIdx`. */
export function encodeIdx(arr: IdxArray): Uint8Array {
  const count = arr.dims.reduce((a, b) => a * b, 1);
  if (arr.dims.length < 1 || arr.dims.length > MAX_DIMS) throw new RangeError(`encodeIdx: rank must be in [1, ${MAX_DIMS}], got ${arr.dims.length}`);
  if (!arr.dims.every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 32)) throw new RangeError(`encodeIdx: dims must be uint32, got [${arr.dims.join(', ')}]`);
  if (count !== arr.data.length) throw new RangeError(`encodeIdx: dims [${arr.dims.join(', ')}] hold ${count} values but data has ${arr.data.length}`);
  const size = DTYPE_BY_CODE[CODE_BY_DTYPE[arr.dtype]]!.size;
  const header = 4 + 4 * arr.dims.length;
  const out = new Uint8Array(header + count * size);
  const v = new DataView(out.buffer);
  out[2] = CODE_BY_DTYPE[arr.dtype];
  out[3] = arr.dims.length;
  arr.dims.forEach((d, k) => v.setUint32(4 + 4 * k, d, false));
  for (let i = 0; i < count; i++) {
    const x = arr.data[i]!;
    const o = header + i * size;
    switch (arr.dtype) {
      case 'uint8': v.setUint8(o, x); break;
      case 'int8': v.setInt8(o, x); break;
      case 'int16': v.setInt16(o, x, false); break;
      case 'int32': v.setInt32(o, x, false); break;
      case 'float32': v.setFloat32(o, x, false); break;
      case 'float64': v.setFloat64(o, x, false); break;
    }
  }
  return out;
}

export function readIdxFile(path: string, opts: Omit<ParseIdxOptions, 'file'> = {}): IdxArray {
  return parseIdx(readFileSync(path), { ...opts, file: path });
}

/** Write IDX bytes atomically (temp file then rename). */
export function writeIdxFile(path: string, arr: IdxArray): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, encodeIdx(arr));
  renameSync(tmp, path);
}
