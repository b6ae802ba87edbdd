/**
 * Position embeddings on the graph, so they train: every resize is the exact
 * PyTorch interpolation matrix (resample.ts) applied by matmul, so its gradient
 * is the transposed product and nothing here needs a custom VJP.
 *
 * Layout conventions: grids are NCHW `[N, C, h, w]`; token sequences are
 * `[N, prefix + h*w, C]` row-major over (y, x) as timm and Hiera flatten them.
 */
import { type Tensor, add, concat, gather, matmul, reshape, slice, swapAxes, tile, transpose } from '../graph/index.ts';
import { type ResampleMode, resampleMatrix } from './resample.ts';
import { getRelPosIndex, relPosLength, relPosResizeMatrix } from './relpos.ts';
import { resformerSincos } from './sincos.ts';

function matrixConst(like: Tensor, data: Float64Array, rows: number, cols: number): Tensor {
  const d = like.dtype === 'float64' ? data : Float32Array.from(data);
  return like.graph.constant(d, [rows, cols], like.dtype);
}

/**
 * Resizes a grid `[N, C, h, w]` to `[N, C, H, W]` with torch's F.interpolate semantics
 * (align_corners=False) for `mode`. Same size returns the input unchanged (identity).
 */
export function resampleGrid(x: Tensor, H: number, W: number, mode: ResampleMode = 'bicubic'): Tensor {
  if (x.rank !== 4) throw new Error(`resampleGrid: expected [N, C, h, w], got [${x.shape}]`);
  const [N, C, h, w] = x.shape as [number, number, number, number];
  if (h === H && w === W) return x;
  let y = reshape(x, [N * C, h, w]);
  if (h !== H) {
    const mh = resampleMatrix(h, H, mode);
    y = matmul(matrixConst(x, mh.data, H, h), y); // [H,h] @ [NC,h,w] -> [NC,H,w]
  }
  if (w !== W) {
    const mw = resampleMatrix(w, W, mode);
    y = matmul(y, swapAxes(matrixConst(x, mw.data, W, w), 0, 1)); // [NC,H,w] @ [w,W]
  }
  return reshape(y, [N, C, H, W]);
}

/** [N, h*w, C] tokens -> [N, C, h, w] grid. */
export function tokensToGrid(t: Tensor, h: number, w: number): Tensor {
  const [N, L, C] = t.shape as [number, number, number];
  if (L !== h * w) throw new Error(`tokensToGrid: ${L} tokens do not form a ${h}x${w} grid`);
  return reshape(transpose(t, [0, 2, 1]), [N, C, h, w]);
}

/** [N, C, h, w] grid -> [N, h*w, C] tokens. */
export function gridToTokens(g: Tensor): Tensor {
  const [N, C, h, w] = g.shape as [number, number, number, number];
  return transpose(reshape(g, [N, C, h * w]), [0, 2, 1]);
}

/**
 * timm `resample_abs_pos_embed` traced on the graph (differentiable; the host version is
 * `resampleAbsPosEmbed` of src/posembed/resample.ts): a learned `[1, prefix + h*w, C]` embedding
 * resized to `newSize`, prefix (class) tokens kept as they are. timm returns early only when the
 * token count matches AND the new grid is square (README of the fixtures).
 */
export function resampleAbsPosEmbedOnGraph(
  pos: Tensor,
  newSize: [number, number],
  oldSize: [number, number],
  numPrefixTokens: number,
  mode: ResampleMode = 'bicubic_aa',
): Tensor {
  const [, L] = pos.shape as [number, number, number];
  const [H, W] = newSize;
  if (L - numPrefixTokens !== oldSize[0] * oldSize[1]) {
    throw new Error(`resampleAbsPosEmbedOnGraph: ${L - numPrefixTokens} grid tokens do not form the old grid ${oldSize[0]}x${oldSize[1]}`);
  }
  if (H * W + numPrefixTokens === L && H === W) return pos;
  const prefix = numPrefixTokens ? slice(pos, 1, 0, numPrefixTokens) : null;
  const grid = tokensToGrid(slice(pos, 1, numPrefixTokens), oldSize[0], oldSize[1]);
  const out = gridToTokens(resampleGrid(grid, H, W, mode));
  return prefix ? concat([prefix, out], 1) : out;
}

/**
 * Tiles a window embedding `[N, C, wh, ww]` over an `H x W` grid: `ceil(H/wh) x ceil(W/ww)`
 * copies cropped to the top-left `H x W` (the paper's rule for grids that are not a
 * multiple of the window; on multiples it is exactly sam2's `tile`).
 */
export function tileWindow(win: Tensor, H: number, W: number): Tensor {
  const [, , wh, ww] = win.shape as [number, number, number, number];
  const t = tile(win, [1, 1, Math.ceil(H / wh), Math.ceil(W / ww)]);
  return slice(slice(t, 2, 0, H), 3, 0, W);
}

export interface AbsWinGraphOptions {
  /** Resampling of the global part: sam2/hiera use bicubic; timm's abs-win Hiera uses antialiased bicubic. */
  globalMode?: ResampleMode;
}

/**
 * Absolute win (Bolya et al. 2024, Sec. 4): `pos = interpolate(global, H x W) + tile(window)`.
 * Inputs NCHW (`[1, C, gh, gw]` and `[1, C, wh, ww]`), output `[1, C, H, W]`.
 */
export function absWin(global: Tensor, window: Tensor, H: number, W: number, opts: AbsWinGraphOptions = {}): Tensor {
  if (global.shape[1] !== window.shape[1]) throw new Error(`absWin: global has ${global.shape[1]} channels, window ${window.shape[1]}`);
  return add(resampleGrid(global, H, W, opts.globalMode ?? 'bicubic'), tileWindow(window, H, W));
}

/**
 * detectron2 `get_rel_pos` on the graph: a `[L, C]` table resized (linear) to
 * `2*max(q,k)-1` rows and gathered to `[q, k, C]`.
 */
export function relPosOnGraph(table: Tensor, q: number, k: number): Tensor {
  const [L, C] = table.shape as [number, number];
  const Lp = relPosLength(q, k);
  let t = table;
  if (L !== Lp) {
    const m = relPosResizeMatrix(L, q, k);
    t = matmul(matrixConst(table, m.data, Lp, L), table);
  }
  const idx = Array.from(getRelPosIndex(q, k));
  void C;
  return gather(t, 0, idx, [q, k]); // [q, k, C]
}

/** The ResFormer sin-cos table `[1, C, gh, gw]` as a constant (no parameters). */
export function resformerSincosConst(like: Tensor, gh: number, gw: number, C: number): Tensor {
  const g = resformerSincos(gh, gw, C);
  const d = like.dtype === 'float64' ? Float64Array.from(g.data) : Float32Array.from(g.data);
  return like.graph.constant(d, [1, C, gh, gw], like.dtype);
}
