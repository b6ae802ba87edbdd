/**
 * How "window-tiled" a position embedding is: the diagnostic behind Bolya et al. 2024, Sec. 3 /
 * Fig. 4, where learned embeddings of window-attention models (Hiera, ViTDet) are shown to repeat a
 * per-window pattern, which bicubic interpolation then misaligns with the windows.
 *
 * Both measures use FULL windows only: on a grid that is not a multiple of the window, the
 * `floor(H/wh) × floor(W/ww)` windows anchored at the top-left are used, and the cropped remainder
 * (bottom rows / right columns) is ignored, because a partial window has no counterpart to compare.
 */
import { checkLen, type Grid } from './reference.ts';

function fullWindows(op: string, pos: Grid, wh: number, ww: number): { nh: number; nw: number } {
  checkLen(op, pos.data.length, pos.C, pos.H, pos.W);
  if (!Number.isInteger(wh) || !Number.isInteger(ww) || wh < 1 || ww < 1) {
    throw new Error(`${op}: window must be positive integers, got ${wh}x${ww}`);
  }
  const nh = Math.floor(pos.H / wh), nw = Math.floor(pos.W / ww);
  if (nh * nw < 2) {
    throw new Error(`${op}: grid ${pos.H}x${pos.W} holds ${nh * nw} full ${wh}x${ww} window(s); at least 2 are needed ` +
      `(use a grid of at least ${wh}x${2 * ww} or ${2 * wh}x${ww})`);
  }
  return { nh, nw };
}

/** The full windows as vectors `[nWin, C·wh·ww]` (window-major, then c, then (a, b) row-major). */
function windowVectors(pos: Grid, wh: number, ww: number, nh: number, nw: number): Float64Array[] {
  const { C, H, W } = pos;
  const out: Float64Array[] = [];
  for (let p = 0; p < nh; p++) {
    for (let q = 0; q < nw; q++) {
      const v = new Float64Array(C * wh * ww);
      let n = 0;
      for (let c = 0; c < C; c++) {
        for (let a = 0; a < wh; a++) {
          const row = c * H * W + (p * wh + a) * W + q * ww;
          for (let b = 0; b < ww; b++) v[n++] = pos.data[row + b]!;
        }
      }
      out.push(v);
    }
  }
  return out;
}

/**
 * Window similarity: the mean cosine similarity over all unordered pairs of distinct full windows,
 * each window flattened to a `C·wh·ww` vector (no centering). A perfectly tiled embedding scores 1;
 * i.i.d. random values score ≈ 0 (each pair is ≈ N(0, 1/(C·wh·ww))). An all-zero window has no
 * direction; pairs involving one count as 0.
 *
 * @example
 * windowSimilarity(grid(posEmbed, 96, 56, 56), 8, 8); // Hiera-B at 224: one number per model
 */
export function windowSimilarity(pos: Grid, wh: number, ww: number): number {
  const { nh, nw } = fullWindows('windowSimilarity', pos, wh, ww);
  const vs = windowVectors(pos, wh, ww, nh, nw);
  // Σ_{a≠b} cos(v_a, v_b) = ‖Σ u‖² − Σ‖u‖² with u = v/‖v‖ (u = 0 for a zero window): O(n) instead
  // of O(n²) pairs, which matters at detection grids (1,024 windows at 256×256 tokens).
  const len = vs[0]!.length;
  const sumU = new Float64Array(len);
  let selfTerms = 0;
  for (const v of vs) {
    let nrm = 0;
    for (let i = 0; i < len; i++) nrm += v[i]! * v[i]!;
    if (nrm === 0) continue;
    const inv = 1 / Math.sqrt(nrm);
    for (let i = 0; i < len; i++) sumU[i]! += v[i]! * inv;
    selfTerms += 1;
  }
  let sq = 0;
  for (let i = 0; i < len; i++) sq += sumU[i]! * sumU[i]!;
  const n = vs.length;
  return (sq - selfTerms) / (n * (n - 1));
}

/**
 * Tiled energy share: ‖tile(mean window)‖² / ‖pos‖² over the full-window region, where the mean
 * window is the average of the full windows. It is the fraction of the embedding's energy explained
 * by one pattern repeated per window: 1 for a perfectly tiled embedding, ≈ 1/nWindows for i.i.d.
 * noise (the mean of n noise windows keeps 1/n of the energy per window). Returns 0 for an all-zero
 * embedding.
 */
export function tiledEnergyShare(pos: Grid, wh: number, ww: number): number {
  const { nh, nw } = fullWindows('tiledEnergyShare', pos, wh, ww);
  const vs = windowVectors(pos, wh, ww, nh, nw);
  const n = vs.length, len = vs[0]!.length;
  const mean = new Float64Array(len);
  let total = 0;
  for (const v of vs) {
    for (let i = 0; i < len; i++) {
      mean[i]! += v[i]! / n;
      total += v[i]! * v[i]!;
    }
  }
  if (total === 0) return 0;
  let tiled = 0;
  for (let i = 0; i < len; i++) tiled += mean[i]! * mean[i]!;
  return (n * tiled) / total;
}

export interface SimilarityReport {
  grid: Grid;
  window: [number, number];
  /** Mean pairwise cosine similarity of the full windows (1 = perfectly tiled, ~0 = noise). */
  similarity: number;
  tiledEnergy: number;
  /** The same per channel. */
  perChannel: number[];
}

/** Window similarity of a `[C, h, w]` embedding, overall and per channel (src/posembed/similarity.ts). */
export function similarityOf(grid: Grid, window: [number, number]): SimilarityReport {
  const [wh, ww] = window;
  const hw = grid.H * grid.W;
  const perChannel = Array.from({ length: grid.C }, (_, c) =>
    windowSimilarity({ data: grid.data.subarray(c * hw, (c + 1) * hw), C: 1, H: grid.H, W: grid.W }, wh, ww));
  return { grid, window, similarity: windowSimilarity(grid, wh, ww), tiledEnergy: tiledEnergyShare(grid, wh, ww), perChannel };
}
