/**
 * Absolute-win position embeddings (Bolya et al., "Window Attention is Bugged", ICLR 2024, Sec. 4):
 * `pos = interpolate(global → H×W) + tile(window)`, pure float64 references.
 *
 * Official code: sam2 `sam2/modeling/backbones/hieradet.py` `Hiera._get_pos_embed` (and timm's
 * `HieraDet._pos_embed`): `F.interpolate(pos_embed, (h, w), 'bicubic')` (align_corners=False,
 * antialias=False) + `pos_embed_window.tile(h // wh, w // ww)`. Floor division with no crop makes it
 * raise when the grid is not a multiple of the window. We follow the paper instead: tile
 * `ceil(H/wh) × ceil(W/ww)` times and crop to the top-left `H × W` (identical to sam2 at multiples).
 * timm's classification `hiera_*_abswin_*` resamples the global part with antialiased bicubic: pass
 * `globalMode: 'bicubic_aa'` for that.
 */
import { resampleMatrix, applySeparable, resample2d, transposeMatrix, type ResampleMode, type ResampleMatrix } from './resample.ts';
import { tileCrop, tileCropAdjoint, type Grid } from './reference.ts';
import { nearestMultiplesText } from '../util/sizes.ts';

export interface AbsWinOptions {
  /** Resize of the global embedding. Default 'bicubic' (sam2 / hieradet). */
  globalMode?: ResampleMode;
  /**
   * 'paper' (default): tile ceil(H/wh)×ceil(W/ww) and crop. 'official': reproduce sam2 exactly,
   * which rejects grids that are not multiples of the window.
   */
  cropRule?: 'paper' | 'official';
}

/**
 * `absWinEmbed(global [C,gh,gw], window [C,wh,ww], H, W)` → `[C, H, W]`:
 * `out[c,i,j] = resize(global)[c,i,j] + window[c, i mod wh, j mod ww]`.
 *
 * @example
 * const pos = absWinEmbed(global7x7, window8x8, 60, 60); // paper crop rule; sam2 would raise
 * // NHWC like sam2's _get_pos_embed: gridToTokens(pos.data, pos.C, 60, 60)
 */
export function absWinEmbed(global: Grid, window: Grid, H: number, W: number, opts: AbsWinOptions = {}): Grid {
  if (global.C !== window.C) {
    throw new Error(`absWinEmbed: global has ${global.C} channels but window has ${window.C}; they must match`);
  }
  if (!Number.isInteger(H) || !Number.isInteger(W) || H < 1 || W < 1) {
    throw new Error(`absWinEmbed: grid must be positive integers, got ${H}x${W}`);
  }
  if ((opts.cropRule ?? 'paper') === 'official' && (H % window.H !== 0 || W % window.W !== 0)) {
    throw new Error(
      `absWinEmbed(official sam2 rule): grid ${H}x${W} is not a multiple of the window ${window.H}x${window.W} ` +
      `(sam2 raises here); use ${nearestMultiplesText(H, window.H)} x ${nearestMultiplesText(W, window.W)}, or cropRule 'paper'`);
  }
  const C = global.C;
  const g = resample2d(global.data, C, global.H, global.W, H, W, opts.globalMode ?? 'bicubic');
  const t = tileCrop(window.data, C, window.H, window.W, H, W);
  for (let i = 0; i < g.length; i++) g[i]! += t[i]!;
  return { data: g, C, H, W };
}

/**
 * Gradients of `L = Σ absWinEmbed(global, window, H, W) · R` (R `[C, H, W]`): the global part gets
 * `M_hᵀ R M_w`, the window part gets R summed over its (cropped) tiles. The graph engine derives the
 * same by transposing its matmuls; this is the reference the `grad_abswin_*` fixtures check.
 */
export function absWinEmbedGrad(
  R: ArrayLike<number>, C: number, globalHW: readonly [number, number], windowHW: readonly [number, number],
  H: number, W: number, opts: AbsWinOptions = {},
): { global: Grid; window: Grid } {
  const mode = opts.globalMode ?? 'bicubic';
  const [gh, gw] = globalHW;
  const [wh, ww] = windowHW;
  const gGlobal = applySeparable(R, C, transposeMatrix(resampleMatrix(gh, H, mode)), transposeMatrix(resampleMatrix(gw, W, mode)));
  const gWindow = tileCropAdjoint(R, C, wh, ww, H, W);
  return { global: { data: gGlobal, C, H: gh, W: gw }, window: { data: gWindow, C, H: wh, W: ww } };
}

export interface RecursiveAbsWinInner {
  /** The pretrained model's global embedding `[C, gh, gw]`. */
  global: Grid;
  /** The pretrained model's window embedding `[C, wh, ww]`. */
  window: Grid;
  /** The pretrained model's token grid (e.g. 14×14 for 224 px at stride 16). */
  gridHW: readonly [number, number];
  globalMode?: ResampleMode;
}

/**
 * The window embedding of recursive absolute win: the pretrained embedding
 * (`resize(global) + tile(window)`) evaluated at the pretrained model's own grid `[C, ih, iw]`
 * (paper crop rule). The one implementation; src/models/hieradet.ts `recursiveAbsWinInit` uses it.
 */
export function recursiveAbsWinWindow(inner: RecursiveAbsWinInner): Grid {
  const [ih, iw] = inner.gridHW;
  const innerOpts: AbsWinOptions = { cropRule: 'paper' };
  if (inner.globalMode !== undefined) innerOpts.globalMode = inner.globalMode;
  return absWinEmbed(inner.global, inner.window, ih, iw, innerOpts);
}

/**
 * Recursive absolute win for detection (Bolya et al. 2024, Sec. 5 / Tab. 6): the pretrained
 * embedding, evaluated at the pretrained model's own grid, is used as the *window* embedding of the
 * bigger model, tiled over the detection grid; a new (coarse) global embedding is interpolated on
 * top. `outerGlobal = null` means the outer global term is zero (a zero-initialised new parameter).
 * Returns the final embedding and the derived window embedding (the new model's window parameter).
 *
 * @example
 * // timm hiera_small_abswin_256: global [C,16,16], window [C,8,8], 64x64 tokens at 256 px.
 * // At 1024 px (256x256 tokens) the 64x64 pretrained embedding becomes the window:
 * const { embed, window: win64 } = recursiveAbsWin({ global, window, gridHW: [64, 64] }, null, 256, 256);
 */
export function recursiveAbsWin(
  inner: RecursiveAbsWinInner, outerGlobal: Grid | null, H: number, W: number, opts: AbsWinOptions = {},
): { embed: Grid; window: Grid } {
  const window = recursiveAbsWinWindow(inner);
  const C = window.C;
  const outer = outerGlobal ?? { data: new Float64Array(C), C, H: 1, W: 1 };
  if (outer.C !== C) throw new Error(`recursiveAbsWin: outer global has ${outer.C} channels, the pretrained embedding ${C}`);
  return { embed: absWinEmbed(outer, window, H, W, opts), window };
}

export interface FromLearnedOptions {
  /** Resize used to take the initial global part from the learned grid. Default 'bicubic_aa'. */
  downsampleMode?: ResampleMode;
  /** Resize the abs-win model will use to bring the global part back up. Default 'bicubic'. */
  globalMode?: ResampleMode;
  /**
   * Alternating least-squares refinements after the initial split. 0 gives the plain rule
   * (global = downsample(learned); window = tile-mean of learned − upsample(global)). Default 50.
   */
  iterations?: number;
}

/**
 * Split a learned absolute embedding `[C, H, W]` into abs-win parts (window `[C, wh, ww]`, global
 * `[C, gh, gw]`) such that `absWinEmbed(global, window, H, W)` reproduces it as well as possible.
 *
 * Assumptions (say them, since the split is not unique): the learned embedding is a smooth field
 * (representable by resizing a `gh × gw` grid) plus a pattern periodic in the window, which is what
 * Bolya et al. observe in window-attention models (Sec. 3, Fig. 4). The constant per channel is put in
 * the global part (the window has zero mean per channel), so the split is unique up to patterns that
 * are both smooth and periodic (numerically tiny). Grids that are not multiples of the window use the
 * crop rule: each window cell averages every position that maps onto it.
 *
 * Algorithm: initial split = the plain rule (global = antialiased downsample; window = mean over
 * tiles of the residual); then block-coordinate least squares: global ← argmin given the window
 * (normal equations of the two 1-D resize matrices), window ← tile-mean of the residual. Each step
 * cannot increase the squared error, so `relResidual` (‖learned − reconstruction‖ / ‖learned‖) only
 * drops with more iterations, and is ~0 when the input is an exact abs-win embedding.
 */
export function absWinFromLearned(
  learned: Grid, windowHW: readonly [number, number], globalHW: readonly [number, number], opts: FromLearnedOptions = {},
): { global: Grid; window: Grid; relResidual: number } {
  const { C, H, W } = learned;
  const [wh, ww] = windowHW;
  const [gh, gw] = globalHW;
  if (wh > H || ww > W) throw new Error(`absWinFromLearned: window ${wh}x${ww} is larger than the grid ${H}x${W}`);
  const up = opts.globalMode ?? 'bicubic';
  const iterations = opts.iterations ?? 50;
  const mh = resampleMatrix(gh, H, up);
  const mw = resampleMatrix(gw, W, up);
  const phInv = leftPseudoInverse(mh);
  const pwInv = leftPseudoInverse(mw);

  let gData: Float64Array = resample2d(learned.data, C, H, W, gh, gw, opts.downsampleMode ?? 'bicubic_aa');
  let wData: Float64Array = new Float64Array(C * wh * ww);
  const residualAfterGlobal = (): Float64Array => {
    const smooth = applySeparable(gData, C, mh, mw);
    for (let i = 0; i < smooth.length; i++) smooth[i] = learned.data[i]! - smooth[i]!;
    return smooth;
  };
  const windowStep = (): void => {
    wData = tileMean(residualAfterGlobal(), C, wh, ww, H, W);
    // Gauge: move each channel's window mean into the global part (resize rows sum to 1, so a
    // constant in the global grid is the same constant on the output grid).
    for (let c = 0; c < C; c++) {
      let m = 0;
      for (let k = 0; k < wh * ww; k++) m += wData[c * wh * ww + k]!;
      m /= wh * ww;
      for (let k = 0; k < wh * ww; k++) wData[c * wh * ww + k]! -= m;
      for (let k = 0; k < gh * gw; k++) gData[c * gh * gw + k]! += m;
    }
  };
  windowStep();
  for (let it = 0; it < iterations; it++) {
    const target = tileCrop(wData, C, wh, ww, H, W);
    for (let i = 0; i < target.length; i++) target[i] = learned.data[i]! - target[i]!;
    gData = applySeparable(target, C, phInv, pwInv); // G = M_h⁺ (L − T) (M_w⁺)ᵀ
    windowStep();
  }
  const global: Grid = { data: gData, C, H: gh, W: gw };
  const window: Grid = { data: wData, C, H: wh, W: ww };
  const rec = absWinEmbed(global, window, H, W, { globalMode: up });
  let num = 0, den = 0;
  for (let i = 0; i < rec.data.length; i++) {
    num += (rec.data[i]! - learned.data[i]!) ** 2;
    den += learned.data[i]! ** 2;
  }
  return { global, window, relResidual: den === 0 ? Math.sqrt(num) : Math.sqrt(num / den) };
}

/** Per window cell, the mean of every grid position that maps onto it (crop rule). */
function tileMean(x: Float64Array, C: number, wh: number, ww: number, H: number, W: number): Float64Array {
  const sums = tileCropAdjoint(x, C, wh, ww, H, W);
  for (let a = 0; a < wh; a++) {
    const na = Math.ceil((H - a) / wh);
    for (let b = 0; b < ww; b++) {
      const n = na * Math.ceil((W - b) / ww);
      for (let c = 0; c < C; c++) sums[c * wh * ww + a * ww + b]! /= n;
    }
  }
  return sums;
}

/**
 * `M⁺ = (MᵀM + εI)⁻¹ Mᵀ` for a tall `[out, in]` resize matrix, returned as a `[in, out]` matrix
 * (so `applySeparable` with it solves the least-squares problem). ε = 1e-12·trace keeps it defined
 * when a downsampling matrix is rank-deficient.
 */
function leftPseudoInverse(m: ResampleMatrix): ResampleMatrix {
  const n = m.in, k = m.out;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let r = 0; r < k; r++) s += m.data[r * n + i]! * m.data[r * n + j]!;
      a[i * n + j] = s;
    }
  }
  let tr = 0;
  for (let i = 0; i < n; i++) tr += a[i * n + i]!;
  for (let i = 0; i < n; i++) a[i * n + i]! += 1e-12 * tr;
  // Solve A X = Mᵀ by Gauss-Jordan with partial pivoting (A is SPD and tiny: n ≤ a few dozen).
  const x = transposeMatrix(m).data; // [n, k]
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r * n + col]!) > Math.abs(a[piv * n + col]!)) piv = r;
    if (piv !== col) {
      for (let j = 0; j < n; j++) { const t = a[col * n + j]!; a[col * n + j] = a[piv * n + j]!; a[piv * n + j] = t; }
      for (let j = 0; j < k; j++) { const t = x[col * k + j]!; x[col * k + j] = x[piv * k + j]!; x[piv * k + j] = t; }
    }
    const d = a[col * n + col]!;
    for (let j = 0; j < n; j++) a[col * n + j]! /= d;
    for (let j = 0; j < k; j++) x[col * k + j]! /= d;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r * n + col]!;
      if (f === 0) continue;
      for (let j = 0; j < n; j++) a[r * n + j]! -= f * a[col * n + j]!;
      for (let j = 0; j < k; j++) x[r * k + j]! -= f * x[col * k + j]!;
    }
  }
  return { data: x, out: n, in: k };
}
