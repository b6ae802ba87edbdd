/**
 * 1-D resampling matrices that reproduce PyTorch's `F.interpolate(..., align_corners=False)`
 * exactly (up to float32 rounding of torch's own coordinate arithmetic), and the separable 2-D
 * application built from them.
 *
 * Every resize used for position embeddings is linear and separable: per channel,
 * `y = M_h · x · M_wᵀ` with one `[out, in]` matrix per axis. The graph engine applies these
 * matrices by matmul, so the backward pass is simply the transposed product
 * (`dL/dx = M_hᵀ · R · M_w`), and edge-replicated taps scatter back to the edge automatically.
 *
 * Sources (PyTorch 1.13, aten/src/ATen/native/UpSample.h and cpu/UpSampleKernel.cpp):
 * - `area_pixel_compute_source_index`: `src = scale·(i + 0.5) − 0.5`; linear clamps it at 0,
 *   cubic does not.
 * - `upsample_bicubic2d`: taps `floor(src)−1 … floor(src)+2`, indices clamped into `[0, in−1]`
 *   (edge replication), weights from the cubic convolution kernel with A = −0.75.
 * - `_upsample_bicubic2d_aa` / `_upsample_bilinear2d_aa` (`_compute_indices_min_size_weights_aa`):
 *   PIL-style filter: `support = (interp_size/2)·max(scale, 1)`, `center = scale·(i + 0.5)`,
 *   taps `[max(trunc(center − support + 0.5), 0), min(trunc(center + support + 0.5), in))`,
 *   weight `filter((j − center + 0.5) / max(scale, 1))`, renormalised to sum 1; out-of-range taps
 *   are dropped (no replication). The bicubic aa filter uses A = −0.5.
 * - `upsample_nearest` (legacy 'nearest'): `src = min(floor(i·scale), in−1)` in float32.
 *
 * With `size` given (no `scale_factor`), torch uses `scale = in/out`.
 */

/** A dense 1-D resampling matrix, `[out, in]` row-major: `y[o] = Σ_i data[o·in + i] · x[i]`. */
export interface ResampleMatrix {
  data: Float64Array;
  out: number;
  in: number;
}

export type ResampleMode = 'bicubic' | 'bicubic_aa' | 'bilinear' | 'bilinear_aa' | 'nearest';

export const RESAMPLE_MODES: readonly ResampleMode[] = ['bicubic', 'bicubic_aa', 'bilinear', 'bilinear_aa', 'nearest'];

export interface ResampleOptions {
  /**
   * Source-per-destination step. Defaults to torch's rule for `size=`: `in / out`. Pass
   * `1 / scale_factor` to mimic `F.interpolate(scale_factor=s)` without `recompute_scale_factor`.
   */
  scale?: number;
}

/** Cubic convolution kernel (Keys 1981) with parameter A; torch's `cubic_convolution1/2`. */
function cubicKernel(x: number, a: number): number {
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

/** Triangle filter of torch's `_upsample_bilinear2d_aa`. */
function triangleKernel(x: number): number {
  const t = Math.abs(x);
  return t < 1 ? 1 - t : 0;
}

function checkSizes(op: string, inSize: number, outSize: number): void {
  if (!Number.isInteger(inSize) || inSize < 1 || !Number.isInteger(outSize) || outSize < 1) {
    throw new Error(`${op}: sizes must be positive integers, got in=${inSize}, out=${outSize}`);
  }
}

/**
 * The `[out, in]` matrix of torch's 1-D resize along one axis with `align_corners=False`.
 *
 * @example
 * const m = resampleMatrix(7, 9, 'bicubic');      // F.interpolate(x, size=9, mode='bicubic') along one axis
 * const aa = resampleMatrix(14, 8, 'bicubic_aa'); // ... antialias=True
 */
export function resampleMatrix(inSize: number, outSize: number, mode: ResampleMode, opts: ResampleOptions = {}): ResampleMatrix {
  checkSizes(`resampleMatrix(${mode})`, inSize, outSize);
  const scale = opts.scale ?? inSize / outSize;
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new Error(`resampleMatrix: scale must be a positive finite number, got ${scale}`);
  }
  const data = new Float64Array(outSize * inSize);
  const clampIdx = (j: number): number => (j < 0 ? 0 : j > inSize - 1 ? inSize - 1 : j);
  switch (mode) {
    case 'bicubic': {
      const A = -0.75;
      for (let o = 0; o < outSize; o++) {
        const src = scale * (o + 0.5) - 0.5; // NOT clamped for cubic
        const i0 = Math.floor(src);
        const t = src - i0;
        const w = [cubicKernel(t + 1, A), cubicKernel(t, A), cubicKernel(1 - t, A), cubicKernel(2 - t, A)];
        for (let k = 0; k < 4; k++) data[o * inSize + clampIdx(i0 - 1 + k)] += w[k]!; // edge taps accumulate
      }
      break;
    }
    case 'bilinear': {
      for (let o = 0; o < outSize; o++) {
        const src = Math.max(scale * (o + 0.5) - 0.5, 0); // linear clamps the source index at 0
        const i0 = Math.floor(src);
        const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
        const l1 = src - i0;
        data[o * inSize + i0] += 1 - l1;
        data[o * inSize + i1] += l1;
      }
      break;
    }
    case 'bicubic_aa':
    case 'bilinear_aa': {
      const interpSize = mode === 'bicubic_aa' ? 4 : 2;
      const filter = mode === 'bicubic_aa' ? (x: number) => cubicKernel(x, -0.5) : triangleKernel;
      const support = scale >= 1 ? (interpSize / 2) * scale : interpSize / 2;
      const invscale = scale >= 1 ? 1 / scale : 1;
      for (let o = 0; o < outSize; o++) {
        const center = scale * (o + 0.5);
        // C++ static_cast<int64_t> truncates toward zero; the max with 0 makes that equal to floor here.
        const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
        const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
        let total = 0;
        for (let j = xmin; j < xmax; j++) {
          const w = filter((j - center + 0.5) * invscale);
          data[o * inSize + j] = w;
          total += w;
        }
        if (total !== 0) for (let j = xmin; j < xmax; j++) data[o * inSize + j]! /= total;
      }
      break;
    }
    case 'nearest': {
      // torch computes the scale and the product in float32 (compute_scales_value<float>).
      const s32 = Math.fround(opts.scale ?? Math.fround(inSize) / outSize);
      for (let o = 0; o < outSize; o++) {
        const src = outSize === inSize ? o : Math.min(Math.floor(Math.fround(o * s32)), inSize - 1);
        data[o * inSize + src] = 1;
      }
      break;
    }
    default: {
      const never: never = mode;
      throw new Error(`resampleMatrix: unknown mode ${String(never)}; use one of ${RESAMPLE_MODES.join(', ')}`);
    }
  }
  return { data, out: outSize, in: inSize };
}

/** `Mᵀ` as a new matrix (`[in, out]`, reported with `out`/`in` swapped). */
export function transposeMatrix(m: ResampleMatrix): ResampleMatrix {
  const t = new Float64Array(m.in * m.out);
  for (let o = 0; o < m.out; o++) for (let i = 0; i < m.in; i++) t[i * m.out + o] = m.data[o * m.in + i]!;
  return { data: t, out: m.in, in: m.out };
}

/**
 * Apply per channel `Y = M_h · X · M_wᵀ` to a `[C, h, w]` grid; returns `[C, M_h.out, M_w.out]`.
 * This is the separable 2-D resize; `applySeparable(R, C, H, W, Mhᵀ, Mwᵀ)` is its adjoint.
 */
export function applySeparable(src: ArrayLike<number>, C: number, mh: ResampleMatrix, mw: ResampleMatrix): Float64Array {
  const h = mh.in, w = mw.in, H = mh.out, W = mw.out;
  if (src.length !== C * h * w) {
    throw new Error(`applySeparable: source has ${src.length} values, expected C*h*w = ${C}*${h}*${w} = ${C * h * w}`);
  }
  const tmp = new Float64Array(h * W); // rows resized along w: [h, W]
  const out = new Float64Array(C * H * W);
  for (let c = 0; c < C; c++) {
    const base = c * h * w;
    tmp.fill(0);
    for (let y = 0; y < h; y++) {
      for (let X = 0; X < W; X++) {
        let s = 0;
        for (let x = 0; x < w; x++) s += mw.data[X * w + x]! * src[base + y * w + x]!;
        tmp[y * W + X] = s;
      }
    }
    const ob = c * H * W;
    for (let Y = 0; Y < H; Y++) {
      for (let y = 0; y < h; y++) {
        const m = mh.data[Y * h + y]!;
        if (m === 0) continue;
        for (let X = 0; X < W; X++) out[ob + Y * W + X]! += m * tmp[y * W + X]!;
      }
    }
  }
  return out;
}

/**
 * Separable 2-D resize of a `[C, h, w]` grid to `[C, H, W]`, exactly `F.interpolate(x[None],
 * size=(H, W), mode, align_corners=False, antialias)` for the matching mode.
 */
export function resample2d(
  src: ArrayLike<number>, C: number, h: number, w: number, H: number, W: number, mode: ResampleMode,
): Float64Array {
  if (src.length !== C * h * w) {
    throw new Error(`resample2d: source has ${src.length} values, expected [C,h,w] = [${C},${h},${w}] = ${C * h * w}`);
  }
  return applySeparable(src, C, resampleMatrix(h, H, mode), resampleMatrix(w, W, mode));
}

/**
 * Adjoint of `resample2d`: given `R = dL/dY` `[C, H, W]`, returns `dL/dX = M_hᵀ · R · M_w`
 * `[C, h, w]` per channel.
 */
export function resample2dAdjoint(
  grad: ArrayLike<number>, C: number, h: number, w: number, H: number, W: number, mode: ResampleMode,
): Float64Array {
  if (grad.length !== C * H * W) {
    throw new Error(`resample2dAdjoint: gradient has ${grad.length} values, expected [C,H,W] = [${C},${H},${W}] = ${C * H * W}`);
  }
  return applySeparable(grad, C, transposeMatrix(resampleMatrix(h, H, mode)), transposeMatrix(resampleMatrix(w, W, mode)));
}

export type TimmInterpolation = 'bicubic' | 'bilinear' | 'nearest';

export interface TimmResampleOptions {
  /** timm's `interpolation`; default 'bicubic'. */
  interpolation?: TimmInterpolation;
  /** timm's `antialias`; default true, as in timm (and ViT `dynamic_img_size`). Ignored for 'nearest'. */
  antialias?: boolean;
  /**
   * Embedding width C. Needed only when `oldHW` is omitted: then, as in timm, the old grid is
   * taken to be square with side `floor(sqrt(tokens − prefix))`.
   */
  dim?: number;
}

/** Map timm's (interpolation, antialias) pair onto a `ResampleMode`. */
export function timmMode(interpolation: TimmInterpolation, antialias: boolean): ResampleMode {
  if (interpolation === 'nearest') return 'nearest';
  return antialias ? `${interpolation}_aa` : interpolation;
}

/**
 * timm `resample_abs_pos_embed` (timm/layers/pos_embed.py): `posemb` is `[1, prefix + oh·ow, C]`
 * (tokens row-major); the prefix tokens pass through unchanged, the grid is resized to
 * `newHW` and flattened row-major again. Returns `[1, prefix + nh·nw, C]` as `data` with its
 * token count, width and whether a resize happened.
 *
 * timm's early return is reproduced: the input comes back unchanged (as a float64 copy) when the
 * token count already matches AND the new grid is square, whatever `oldHW` says. So 14×14 → 14×14
 * returns early, while 12×16 → 16×12 (same count, not square) is resized. timm always resizes in
 * float32; we compute in float64 (well inside the fixtures' tolerance).
 *
 * @example
 * // ViT-B/16 at 224 (1 cls + 14x14) to 320x240 px
 * const { data } = resampleAbsPosEmbed(posemb, [20, 15], [14, 14], 1, { interpolation: 'bicubic', antialias: true });
 */
export function resampleAbsPosEmbed(
  posemb: ArrayLike<number>, newHW: readonly [number, number], oldHW: readonly [number, number] | undefined,
  numPrefixTokens: number, opts: TimmResampleOptions = {},
): { data: Float64Array; tokens: number; C: number; resampled: boolean } {
  const [nh, nw] = newHW;
  const interpolation = opts.interpolation ?? 'bicubic';
  const antialias = opts.antialias ?? true;
  let old: readonly [number, number];
  if (oldHW !== undefined) {
    old = oldHW;
  } else {
    if (opts.dim === undefined || posemb.length % opts.dim !== 0) {
      throw new Error(`resampleAbsPosEmbed: without oldHW the width must be given as opts.dim and divide the ${posemb.length} values (got dim=${opts.dim})`);
    }
    const side = Math.floor(Math.sqrt(posemb.length / opts.dim - numPrefixTokens));
    old = [side, side];
  }
  const oldTokens = numPrefixTokens + old[0] * old[1];
  if (posemb.length % oldTokens !== 0 || (opts.dim !== undefined && posemb.length !== oldTokens * opts.dim)) {
    throw new Error(`resampleAbsPosEmbed: ${posemb.length} values do not split into ${numPrefixTokens} prefix + ${old[0]}x${old[1]} tokens` +
      (opts.dim !== undefined ? ` of width ${opts.dim}` : ''));
  }
  const C = posemb.length / oldTokens;
  const newTokens = numPrefixTokens + nh * nw;
  if (newTokens === oldTokens && nh === nw) return { data: Float64Array.from(posemb), tokens: oldTokens, C, resampled: false };
  const [oh, ow] = old;
  // [oh*ow, C] token-major -> [C, oh, ow]
  const grid = new Float64Array(C * oh * ow);
  for (let t = 0; t < oh * ow; t++) for (let c = 0; c < C; c++) grid[c * oh * ow + t] = posemb[(numPrefixTokens + t) * C + c]!;
  const res = resample2d(grid, C, oh, ow, nh, nw, timmMode(interpolation, antialias));
  const out = new Float64Array(newTokens * C);
  for (let i = 0; i < numPrefixTokens * C; i++) out[i] = posemb[i]!;
  // [C, nh, nw] -> [nh*nw, C] after the prefix
  for (let t = 0; t < nh * nw; t++) for (let c = 0; c < C; c++) out[(numPrefixTokens + t) * C + c] = res[c * nh * nw + t]!;
  return { data: out, tokens: newTokens, C, resampled: true };
}
