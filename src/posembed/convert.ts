/**
 * Position-embedding conversions between checkpoints, on plain weight maps (pure TS, no graph):
 *
 * - `interpolatePosEmbed`: a learned absolute embedding `[1, prefix + h·w, C]` resampled to a new
 *   grid and STORED there (timm `resample_abs_pos_embed` as checkpoint_filter_fn uses it when
 *   fine-tuning at a new resolution; prefix tokens pass through).
 * - `tilePosEmbed`: plain ViT → windowed backbone ("Window Attention is Bugged", Bolya et al. 2024,
 *   Sec. 4.2 / ViTDet): the pretrained grid becomes the WINDOW embedding `[1, C, wh, ww]` (resampled
 *   when the window differs from the grid), with an optional zero global embedding, so the new model
 *   starts exactly as "pretrained pattern tiled per window".
 * - `absWinFromLearnedPosEmbed`: a learned absolute embedding split into abs-win parts (global +
 *   window) with `absWinFromLearned` (src/posembed/abswin.ts).
 *
 * Every function returns a new map (inputs untouched) and names the bad values in its errors.
 */
import { absWinFromLearned } from './abswin.ts';
import { type ResampleMode, resample2d } from './resample.ts';

export type WeightsMap = Map<string, { data: Float32Array; shape: number[] }>;

export interface LearnedGrid {
  /** Parameter name (default 'pos_embed'). */
  name?: string;
  /** Prefix tokens (cls, registers) kept as they are. */
  prefix: number;
  /** The stored grid [h, w]. */
  grid: [number, number];
}

function getLearned(w: WeightsMap, g: LearnedGrid, op: string): { name: string; C: number; tokens: Float32Array; gridCHW: Float64Array } {
  const name = g.name ?? 'pos_embed';
  const t = w.get(name);
  if (!t) throw new Error(`${op}: no '${name}' in the weights (has ${[...w.keys()].slice(0, 6).join(', ')}...)`);
  const [h, gw] = g.grid;
  const n = g.prefix + h * gw;
  if (t.data.length % n !== 0 || t.shape[t.shape.length - 2] !== n) {
    throw new Error(`${op}: '${name}' has shape [${t.shape}], not [1, ${g.prefix} + ${h}x${gw}, C]`);
  }
  const C = t.data.length / n;
  // [h*w, C] token-major → [C, h, w]
  const gridCHW = new Float64Array(C * h * gw);
  for (let i = 0; i < h * gw; i++) for (let c = 0; c < C; c++) gridCHW[c * h * gw + i] = t.data[(g.prefix + i) * C + c]!;
  return { name, C, tokens: t.data, gridCHW };
}

/** Learned `[1, prefix + h·w, C]` → `[1, prefix + H·W, C]` by `mode` (timm default: bicubic with antialias). */
export function interpolatePosEmbed(w: WeightsMap, from: LearnedGrid, to: [number, number], mode: ResampleMode = 'bicubic_aa'): WeightsMap {
  const { name, C, tokens, gridCHW } = getLearned(w, from, 'interpolatePosEmbed');
  const [h, gw] = from.grid;
  const [H, W] = to;
  if (!(Number.isInteger(H) && Number.isInteger(W) && H > 0 && W > 0)) throw new Error(`interpolatePosEmbed: target grid must be positive integers, got [${to}]`);
  const res = resample2d(gridCHW, C, h, gw, H, W, mode);
  const out = new Float32Array((from.prefix + H * W) * C);
  out.set(tokens.subarray(0, from.prefix * C));
  for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) out[(from.prefix + i) * C + c] = res[c * H * W + i]!;
  const next = new Map(w);
  next.set(name, { data: out, shape: [1, from.prefix + H * W, C] });
  return next;
}

export interface TileTarget {
  /** Window embedding name (sam2 / official Hiera: 'pos_embed_window'; timm: 'pos_embed_win'). */
  windowName: string;
  window: [number, number];
  /** Optional global embedding (zeros) name and grid. */
  globalName?: string;
  global?: [number, number];
  /** Remove the learned source entry (default true). */
  dropSource?: boolean;
}

/** Plain ViT → windowed backbone: the pretrained grid becomes the window embedding (NCHW). */
export function tilePosEmbed(w: WeightsMap, from: LearnedGrid, to: TileTarget, mode: ResampleMode = 'bicubic'): WeightsMap {
  const { name, C, gridCHW } = getLearned(w, from, 'tilePosEmbed');
  const [h, gw] = from.grid;
  const [wh, ww] = to.window;
  const win = wh === h && ww === gw ? gridCHW : resample2d(gridCHW, C, h, gw, wh, ww, mode);
  const next = new Map(w);
  if (to.dropSource ?? true) next.delete(name);
  next.set(to.windowName, { data: Float32Array.from(win), shape: [1, C, wh, ww] });
  if (to.globalName) {
    const [gh, gg] = to.global ?? [1, 1];
    next.set(to.globalName, { data: new Float32Array(C * gh * gg), shape: [1, C, gh, gg] });
  }
  return next;
}

/** Learned absolute → abs-win (global `[1,C,gh,gw]` + window `[1,C,wh,ww]`) by least squares. */
export function absWinFromLearnedPosEmbed(
  w: WeightsMap,
  from: LearnedGrid,
  to: { globalName: string; global: [number, number]; windowName: string; window: [number, number] },
): { weights: WeightsMap; relResidual: number } {
  const { name, C, gridCHW } = getLearned(w, from, 'absWinFromLearnedPosEmbed');
  const [h, gw] = from.grid;
  const r = absWinFromLearned({ data: gridCHW, C, H: h, W: gw }, to.window, to.global);
  const next = new Map(w);
  next.delete(name);
  next.set(to.globalName, { data: Float32Array.from(r.global.data), shape: [1, C, r.global.H, r.global.W] });
  next.set(to.windowName, { data: Float32Array.from(r.window.data), shape: [1, C, r.window.H, r.window.W] });
  return { weights: next, relResidual: r.relResidual };
}
