/**
 * What the position-embedding panel computes, kept free of the DOM so Node tests can check it.
 *
 * The picture is the paper's Fig. 1 (Bolya et al. 2024, "Window Attention is Bugged"): a
 * learned embedding of a window-attention model repeats one pattern per window. Resampling it
 * to another grid with bicubic interpolation ("naive", what timm/ViTDet do) stretches that
 * pattern, so the tiles no longer line up with the windows the attention uses; absolute win
 * (Sec. 4) tiles the window part and interpolates only the global part, so every window sees
 * the same pattern at any grid. `windowSimilarity` (mean cosine between windows) measures it.
 */
import { absWinEmbed, absWinFromLearned } from '../../src/posembed/abswin.ts';
import { resample2d, type ResampleMode } from '../../src/posembed/resample.ts';
import type { Grid } from '../../src/posembed/reference.ts';
import { windowSimilarity } from '../../src/posembed/similarity.ts';
import { Rng } from '../../src/util/rng.ts';

/** A position embedding split the abs-win way, plus the learned grid it stands for. */
export interface EmbeddingSource {
  label: string;
  /** The embedding at its training grid `[C, H0, W0]` (what a naive resize starts from). */
  learned: Grid;
  /** Abs-win parts: global `[C, gh, gw]` (interpolated) and window `[C, wh, ww]` (tiled). */
  global: Grid;
  window: Grid;
  /** How well global+tile(window) reproduces `learned` (0 when it was built that way). */
  relResidual: number;
}

/**
 * A constructed example of what window-attention models learn (Bolya et al. Fig. 4): a smooth
 * global field plus a per-window pattern, at `base` tokens with `win`-token windows.
 */
export function tiledExample(opts: { channels?: number; base?: number; win?: number; seed?: number } = {}): EmbeddingSource {
  const C = opts.channels ?? 4;
  const base = opts.base ?? 16;
  const win = opts.win ?? 4;
  const rng = new Rng(opts.seed ?? 0);
  // Window part: per channel a random mix of the window's lowest Fourier modes (zero mean).
  const w = new Float64Array(C * win * win);
  for (let c = 0; c < C; c++) {
    const modes = [...Array(3)].map(() => ({ fy: 1 + rng.int(2), fx: 1 + rng.int(2), ph: rng.uniform(0, 2 * Math.PI), a: rng.uniform(0.5, 1) }));
    for (let a = 0; a < win; a++) {
      for (let b = 0; b < win; b++) {
        let v = 0;
        for (const m of modes) v += m.a * Math.cos((2 * Math.PI * (m.fy * a + m.fx * b)) / win + m.ph);
        w[c * win * win + a * win + b] = v;
      }
    }
  }
  // Global part: a coarse random field, weaker than the window pattern as in trained models.
  const g = 3;
  const gd = new Float64Array(C * g * g);
  for (let i = 0; i < gd.length; i++) gd[i] = 0.6 * rng.normal();
  const global: Grid = { data: gd, C, H: g, W: g };
  const window: Grid = { data: w, C, H: win, W: win };
  return { label: `constructed ${base}×${base} embedding, ${win}×${win} windows`, learned: absWinEmbed(global, window, base, base), global, window, relResidual: 0 };
}

/**
 * A learned `[C, H, W]` embedding from a checkpoint, split into abs-win parts by least squares
 * (absWinFromLearned, the conversion the paper applies to pretrained models).
 */
export function fromLearned(label: string, learned: Grid, win: [number, number], globalHW: [number, number]): EmbeddingSource {
  const split = absWinFromLearned(learned, win, globalHW, { iterations: 20 });
  return { label, learned, global: split.global, window: split.window, relResidual: split.relResidual };
}

/** A checkpoint's abs-win parts as they are (global + window), shown at `base` tokens. */
export function fromAbsWin(label: string, global: Grid, window: Grid, base: [number, number]): EmbeddingSource {
  return { label, learned: absWinEmbed(global, window, base[0], base[1]), global, window, relResidual: 0 };
}

export interface Comparison {
  H: number;
  W: number;
  naive: Grid;
  abswin: Grid;
  /** Window similarity at this grid (null when fewer than 2 full windows fit). */
  simNaive: number | null;
  simAbswin: number | null;
}

function sim(g: Grid, wh: number, ww: number): number | null {
  return Math.floor(g.H / wh) * Math.floor(g.W / ww) >= 2 ? windowSimilarity(g, wh, ww) : null;
}

/** Naive interpolation vs absolute win of `src` at an `H × W` token grid. */
export function compareAt(src: EmbeddingSource, H: number, W: number, mode: ResampleMode = 'bicubic'): Comparison {
  const { learned: L, window: win } = src;
  const naive: Grid = { data: resample2d(L.data, L.C, L.H, L.W, H, W, mode), C: L.C, H, W };
  const abswin = absWinEmbed(src.global, win, H, W);
  return { H, W, naive, abswin, simNaive: sim(naive, win.H, win.W), simAbswin: sim(abswin, win.H, win.W) };
}

/** Reads a checkpoint tensor as a `[C, H, W]` grid: `[1,C,H,W]`, or tokens `[1,(P+)N,C]` with N square. */
export function tensorToGrid(shape: readonly number[], data: Float32Array): { grid: Grid; prefix: number } {
  const s = shape[0] === 1 ? shape.slice(1) : [...shape];
  if (s.length === 3) return { grid: { data: Float64Array.from(data), C: s[0]!, H: s[1]!, W: s[2]! }, prefix: 0 };
  if (s.length === 2) {
    const [n, C] = s as [number, number];
    for (const prefix of [0, 1, 2, 4, 8]) {
      const side = Math.round(Math.sqrt(n - prefix));
      if (n - prefix > 0 && side * side === n - prefix) {
        const g = new Float64Array(C * side * side);
        for (let t = 0; t < side * side; t++) for (let c = 0; c < C; c++) g[c * side * side + t] = data[(prefix + t) * C + c]!;
        return { grid: { data: g, C, H: side, W: side }, prefix };
      }
    }
    throw new Error(`position embedding [${shape.join(', ')}]: ${n} tokens is not a square grid plus 0, 1, 2, 4 or 8 prefix tokens`);
  }
  throw new Error(`position embedding [${shape.join(', ')}]: expected [1, C, H, W] or [1, N, C]`);
}
