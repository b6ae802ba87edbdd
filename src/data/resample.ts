/**
 * Separable image resampling of a CHW region, one function for every resize in the
 * data layer (Fashion-MNIST upsampling, random-resized-crop, resize + center crop).
 *
 * Semantics follow PIL's `Image.resize(size, filter, box)` (Pillow
 * `src/libImaging/Resample.c`, `precompute_coeffs`), which is what torchvision
 * transforms on PIL images (and therefore timm's ImageNet pipeline) use:
 *  - pixel centres at half-integers (align_corners = false);
 *  - when shrinking by a factor s > 1 the filter support is widened by s (antialias),
 *    so downscaled images are area-filtered rather than aliased;
 *  - bicubic uses a = -0.5 (Pillow's value; PyTorch's tensor bicubic uses -0.75).
 * Weights are normalised to sum to 1 per output pixel, and taps outside the source are
 * dropped (edge handling of Pillow), not clamped.
 */
import type { Image } from './image.ts';

export type Interpolation = 'bilinear' | 'bicubic' | 'nearest';

/** Source-space region `[x0, x0+w) x [y0, y0+h)`, fractional allowed. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

function bilinearKernel(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

const CUBIC_A = -0.5;
function bicubicKernel(x: number): number {
  const a = Math.abs(x);
  if (a < 1) return ((CUBIC_A + 2) * a - (CUBIC_A + 3)) * a * a + 1;
  if (a < 2) return (((a - 5) * a + 8) * a - 4) * CUBIC_A;
  return 0;
}

interface Coeffs {
  start: Int32Array;
  count: Int32Array;
  /** weights, `maxTaps` per output index. */
  w: Float32Array;
  maxTaps: number;
}

/** Tap positions and weights for mapping `inSize` source samples over [lo, lo+len) to `outSize`. */
function precompute(inSize: number, lo: number, len: number, outSize: number, interp: Interpolation, antialias: boolean): Coeffs {
  const scale = len / outSize;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  if (interp === 'nearest') {
    const w = new Float32Array(outSize).fill(1);
    for (let i = 0; i < outSize; i++) {
      const c = Math.min(inSize - 1, Math.max(0, Math.floor(lo + (i + 0.5) * scale)));
      start[i] = c;
      count[i] = 1;
    }
    return { start, count, w, maxTaps: 1 };
  }
  const kernel = interp === 'bilinear' ? bilinearKernel : bicubicKernel;
  const support0 = interp === 'bilinear' ? 1 : 2;
  const fscale = antialias ? Math.max(scale, 1) : 1;
  const support = support0 * fscale;
  const maxTaps = Math.ceil(support) * 2 + 1;
  const w = new Float32Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const center = lo + (i + 0.5) * scale;
    let xmin = Math.floor(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.floor(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    let n = xmax - xmin;
    if (n > maxTaps) n = maxTaps;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const v = kernel((xmin + k - center + 0.5) / fscale);
      w[i * maxTaps + k] = v;
      sum += v;
    }
    if (sum === 0) {
      // The region lies entirely outside the source: fall back to the nearest edge pixel.
      xmin = Math.min(inSize - 1, Math.max(0, Math.floor(center)));
      n = 1;
      w[i * maxTaps] = 1;
    } else {
      for (let k = 0; k < n; k++) w[i * maxTaps + k]! /= sum;
    }
    start[i] = xmin;
    count[i] = n;
  }
  return { start, count, w, maxTaps };
}

export interface ResampleOptions {
  interpolation?: Interpolation;
  /** Widen the filter when shrinking (Pillow behaviour). Default true. */
  antialias?: boolean;
  /** Source region to resample; default the whole image. */
  box?: Box;
  /** Clamp the result to [0, 1] (bicubic overshoots). Default true. */
  clamp?: boolean;
}

/**
 * Resample `src` (CHW) to `outHeight x outWidth`, optionally from a sub-box.
 * @example resize(img, 224, 224, { interpolation: 'bicubic' })
 */
export function resize(src: Image, outHeight: number, outWidth: number, opts: ResampleOptions = {}): Image {
  if (!Number.isInteger(outHeight) || !Number.isInteger(outWidth) || outHeight < 1 || outWidth < 1) {
    throw new RangeError(`resize: output size must be positive integers, got ${outHeight}x${outWidth}`);
  }
  const interp = opts.interpolation ?? 'bilinear';
  const antialias = opts.antialias ?? true;
  const clamp = opts.clamp ?? true;
  const box = opts.box ?? { x: 0, y: 0, width: src.width, height: src.height };
  if (!(box.width > 0 && box.height > 0)) {
    throw new RangeError(`resize: box must have positive size, got ${box.width}x${box.height}`);
  }
  const { channels: C, height: H, width: W } = src;
  const cx = precompute(W, box.x, box.width, outWidth, interp, antialias);
  const cy = precompute(H, box.y, box.height, outHeight, interp, antialias);
  // Horizontal pass over only the source rows the vertical pass will read.
  let rowLo = H;
  let rowHi = 0;
  for (let i = 0; i < outHeight; i++) {
    rowLo = Math.min(rowLo, cy.start[i]!);
    rowHi = Math.max(rowHi, cy.start[i]! + cy.count[i]!);
  }
  const rows = rowHi - rowLo;
  const tmp = new Float32Array(rows * outWidth);
  const out = new Float32Array(C * outHeight * outWidth);
  for (let c = 0; c < C; c++) {
    const plane = c * H * W;
    // [rows, W] -> [rows, outWidth]
    for (let r = 0; r < rows; r++) {
      const rowOff = plane + (r + rowLo) * W;
      for (let j = 0; j < outWidth; j++) {
        const s = cx.start[j]!;
        const n = cx.count[j]!;
        const wo = j * cx.maxTaps;
        let acc = 0;
        for (let k = 0; k < n; k++) acc += cx.w[wo + k]! * src.data[rowOff + s + k]!;
        tmp[r * outWidth + j] = acc;
      }
    }
    // [rows, outWidth] -> [outHeight, outWidth]
    const outOff = c * outHeight * outWidth;
    for (let i = 0; i < outHeight; i++) {
      const s = cy.start[i]! - rowLo;
      const n = cy.count[i]!;
      const wo = i * cy.maxTaps;
      for (let j = 0; j < outWidth; j++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += cy.w[wo + k]! * tmp[(s + k) * outWidth + j]!;
        out[outOff + i * outWidth + j] = clamp ? (acc < 0 ? 0 : acc > 1 ? 1 : acc) : acc;
      }
    }
  }
  return { data: out, channels: C, height: outHeight, width: outWidth };
}

/** Integer-aligned crop (no resampling). The box must lie inside the image. */
export function crop(src: Image, top: number, left: number, height: number, width: number): Image {
  if (![top, left, height, width].every(Number.isInteger) || top < 0 || left < 0 || height < 1 || width < 1 || top + height > src.height || left + width > src.width) {
    throw new RangeError(`crop: box top=${top} left=${left} ${height}x${width} does not fit inside ${src.height}x${src.width}`);
  }
  const { channels: C, height: H, width: W } = src;
  const out = new Float32Array(C * height * width);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < height; y++) {
      const so = c * H * W + (top + y) * W + left;
      out.set(src.data.subarray(so, so + width), (c * height + y) * width);
    }
  }
  return { data: out, channels: C, height, width };
}
