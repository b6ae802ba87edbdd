/**
 * Layout helpers shared by the pure-TypeScript position-embedding references.
 *
 * Convention (stated once): a "grid" is `[C, H, W]` row-major (NCHW without the batch axis), the
 * layout of every `pos_embed` parameter in hiera / sam2 / timm. "Tokens" are `[H·W, C]` with the
 * tokens in row-major (h, w) order, the layout a ViT adds to its patch tokens; sam2's
 * `_get_pos_embed` returns NHWC `[H, W, C]`, which is the same buffer as tokens.
 */

/** `[C, H, W]` → `[H·W, C]` (= NHWC without the batch axis). */
export function gridToTokens(grid: ArrayLike<number>, C: number, H: number, W: number): Float64Array {
  checkLen('gridToTokens', grid.length, C, H, W);
  const out = new Float64Array(C * H * W);
  const hw = H * W;
  for (let c = 0; c < C; c++) for (let t = 0; t < hw; t++) out[t * C + c] = grid[c * hw + t]!;
  return out;
}

/** `[H·W, C]` (or NHWC) → `[C, H, W]`. */
export function tokensToGrid(tokens: ArrayLike<number>, C: number, H: number, W: number): Float64Array {
  checkLen('tokensToGrid', tokens.length, C, H, W);
  const out = new Float64Array(C * H * W);
  const hw = H * W;
  for (let t = 0; t < hw; t++) for (let c = 0; c < C; c++) out[c * hw + t] = tokens[t * C + c]!;
  return out;
}

/**
 * Tile a `[C, wh, ww]` window `ceil(H/wh) × ceil(W/ww)` times and crop to the top-left `H × W`:
 * `out[c, i, j] = win[c, i mod wh, j mod ww]`. This is the paper's crop rule (Bolya et al. 2024,
 * Sec. 4); at multiples of the window it equals sam2's `window_embed.tile(h//wh, w//ww)`.
 */
export function tileCrop(win: ArrayLike<number>, C: number, wh: number, ww: number, H: number, W: number): Float64Array {
  checkLen('tileCrop(window)', win.length, C, wh, ww);
  const out = new Float64Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < H; i++) {
      const src = c * wh * ww + (i % wh) * ww;
      const dst = c * H * W + i * W;
      for (let j = 0; j < W; j++) out[dst + j] = win[src + (j % ww)]!;
    }
  }
  return out;
}

/**
 * Adjoint of `tileCrop`: `g[c, a, b] = Σ_{i ≡ a (mod wh), j ≡ b (mod ww), i < H, j < W} R[c, i, j]`,
 * i.e. the gradient of the window embedding is the output gradient summed over its (cropped) tiles.
 */
export function tileCropAdjoint(grad: ArrayLike<number>, C: number, wh: number, ww: number, H: number, W: number): Float64Array {
  checkLen('tileCropAdjoint(grad)', grad.length, C, H, W);
  const out = new Float64Array(C * wh * ww);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < H; i++) {
      const dst = c * wh * ww + (i % wh) * ww;
      const src = c * H * W + i * W;
      for (let j = 0; j < W; j++) out[dst + (j % ww)]! += grad[src + j]!;
    }
  }
  return out;
}

export function checkLen(op: string, len: number, C: number, H: number, W: number): void {
  if (len !== C * H * W) {
    throw new Error(`${op}: expected [C,H,W] = [${C},${H},${W}] = ${C * H * W} values, got ${len}`);
  }
}

/** A `[C, H, W]` grid with its shape. */
export interface Grid {
  data: Float64Array;
  C: number;
  H: number;
  W: number;
}

/** Wrap (and copy to float64) a `[C, H, W]` buffer, checking its length. */
export function grid(data: ArrayLike<number>, C: number, H: number, W: number): Grid {
  checkLen('grid', data.length, C, H, W);
  return { data: Float64Array.from(data), C, H, W };
}
