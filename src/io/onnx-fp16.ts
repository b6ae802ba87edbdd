/**
 * `--fp16` exports: every float32 weight of at least `minElements` elements is stored as IEEE
 * float16 (half the file) and cast back to float32 by a `Cast` node where the graph reads it, so
 * the arithmetic stays float32 and runs on every execution provider. The only change in the
 * results is the rounding of the weights to float16 (relative 2^-11, values beyond 65504 saturate
 * to ±inf, which is refused).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;

/** float32 -> float16 bits, round to nearest even (IEEE 754). */
export function toHalfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // Subnormal half: shift the mantissa (with the implicit 1) right, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // may carry into the exponent (up to inf), which is right
  return sign | h;
}

/** Stores float32 initializers of >= minElements elements as float16 with a Cast back to float32. */
export function weightsToFp16(bytes: Uint8Array, minElements = 16): { bytes: Uint8Array; converted: number; savedBytes: number } {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph!;
  const casts: onnxProto.onnx.INodeProto[] = [];
  let converted = 0;
  let saved = 0;
  g.initializer = (g.initializer ?? []).map((t) => {
    const n = (t.dims ?? []).reduce((a: number, b) => a * Number(b), 1);
    if (t.dataType !== FLOAT || n < minElements || !t.rawData) return t;
    const raw = t.rawData;
    const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const h = new Uint16Array(f.length);
    for (let i = 0; i < f.length; i++) {
      h[i] = toHalfBits(f[i]!);
      if ((h[i]! & 0x7c00) === 0x7c00 && Number.isFinite(f[i]!)) throw new Error(`export --fp16: weight '${t.name}' holds ${f[i]}, beyond float16's ±65504; export without --fp16`);
    }
    const halfName = `${t.name}__fp16`;
    casts.push({ opType: 'Cast', input: [halfName], output: [t.name!], name: `${t.name}__to_f32`, attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }] });
    converted++;
    saved += raw.byteLength / 2;
    return onnx.TensorProto.create({ name: halfName, dims: t.dims, dataType: FLOAT16, rawData: new Uint8Array(h.buffer) });
  });
  g.node = [...casts, ...(g.node ?? [])];
  return { bytes: onnx.ModelProto.encode(m).finish(), converted, savedBytes: saved };
}
