/**
 * A browser-side safetensors reader (format: huggingface/safetensors README, "Format"): an
 * 8-byte little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets}}`
 * with an optional `__metadata__` string map, then the data section.
 *
 * The Node reader (src/io/safetensors.ts) imports node:fs for file loading, which must stay out of
 * the page bundle; this one parses an ArrayBuffer the page already has (a fetch or a dropped
 * file) and decodes the float types a position embedding is stored in (F32, F16, BF16, F64).
 */

export interface PageTensor {
  shape: number[];
  data: Float32Array;
}

export interface PageSafetensors {
  tensors: Map<string, PageTensor>;
  metadata: Record<string, string>;
}

const ITEMSIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function decode(bytes: Uint8Array, dtype: string, n: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'F32': out[i] = dv.getFloat32(4 * i, true); break;
      case 'F64': out[i] = dv.getFloat64(8 * i, true); break;
      case 'F16': out[i] = halfToFloat(dv.getUint16(2 * i, true)); break;
      // bfloat16 is the top half of a float32.
      case 'BF16': out[i] = new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0]!; break;
    }
  }
  return out;
}

/**
 * Parses safetensors bytes; tensors of other dtypes (integer buffers, masks) are skipped since the
 * explorer only draws float embeddings. `wanted` limits decoding to the names it accepts.
 */
export function parseSafetensors(buf: ArrayBuffer | Uint8Array, wanted: (name: string) => boolean = () => true): PageSafetensors {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  if (bytes.length < 8) throw new Error(`safetensors: ${bytes.length} bytes is shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.length - 8) throw new Error(`safetensors: header length ${n} exceeds the ${bytes.length - 8} bytes after it (not a safetensors file, or truncated)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`safetensors: header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error('safetensors: header must be a JSON object');
  const start = 8 + n;
  const tensors = new Map<string, PageTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = String(e.dtype);
    const size = ITEMSIZE[dtype];
    if (size === undefined || !wanted(name)) continue;
    const shape = e.shape as number[];
    const [b, en] = e.data_offsets as [number, number];
    const numel = shape.reduce((a, d) => a * d, 1);
    if (!Array.isArray(shape) || en - b !== numel * size || start + en > bytes.length) {
      throw new Error(`safetensors: tensor '${name}' shape [${String(shape)}] ${dtype} does not match its data_offsets [${b}, ${en}]`);
    }
    tensors.set(name, { shape: [...shape], data: decode(bytes.subarray(start + b, start + en), dtype, numel) });
  }
  return { tensors, metadata };
}
