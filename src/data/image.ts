/**
 * In-memory image and batch types shared by the data layer.
 *
 * Convention (stated once, loudly): images are planar CHW Float32Array, channel-major,
 * row-major inside a channel: `data[c*H*W + y*W + x]`, values in [0, 1] before
 * normalisation. Batches are NCHW `[B, 3, H, W]`.
 */

export interface Image {
  /** CHW, length channels*height*width. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** One labelled example, as returned by `Dataset.get`. */
export interface Sample {
  image: Image;
  label: number;
}

/** A batch at one resolution. `x` is NCHW `[B, 3, H, W]`. */
export interface Batch {
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
}

export function makeImage(channels: number, height: number, width: number, data?: Float32Array): Image {
  for (const [name, v] of [['channels', channels], ['height', height], ['width', width]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`makeImage: ${name} must be a positive integer, got ${v}`);
  }
  const n = channels * height * width;
  if (data && data.length !== n) {
    throw new RangeError(`makeImage: data has ${data.length} values, expected ${channels}x${height}x${width} = ${n}`);
  }
  return { data: data ?? new Float32Array(n), channels, height, width };
}

/** Grey [H,W] → 3-channel CHW by repetition. */
export function greyTo3(grey: Image): Image {
  if (grey.channels !== 1) throw new RangeError(`greyTo3: expected 1 channel, got ${grey.channels}`);
  const n = grey.height * grey.width;
  const out = new Float32Array(3 * n);
  out.set(grey.data, 0);
  out.set(grey.data, n);
  out.set(grey.data, 2 * n);
  return { data: out, channels: 3, height: grey.height, width: grey.width };
}

/** Interleaved HWC uint8 (sharp's raw output) → CHW float in [0, 1]. */
export function hwcU8ToChw(buf: Uint8Array, height: number, width: number, channels: number): Image {
  const n = height * width;
  if (buf.length !== n * channels) {
    throw new RangeError(`hwcU8ToChw: buffer has ${buf.length} bytes, expected ${height}x${width}x${channels}`);
  }
  const out = new Float32Array(n * channels);
  for (let c = 0; c < channels; c++) {
    const base = c * n;
    for (let i = 0; i < n; i++) out[base + i] = buf[i * channels + c]! / 255;
  }
  return { data: out, channels, height, width };
}
