/**
 * Window partition / unpartition for window attention (ViTDet, HieraDet), NHWC.
 *
 * Semantics of detectron2 `modeling/backbone/utils.py` `window_partition` / `window_unpartition`
 * (sam2 `modeling/backbones/utils.py` is the same): the map is zero-padded at the bottom/right to a
 * multiple of the window, cut into non-overlapping windows in row-major window order, and after
 * attention the windows are stitched back and the padding is cropped. The padding is applied to
 * whatever the caller passes (both models pass `norm1(x)`), and no attention mask is used: padded
 * tokens take part in attention as zero vectors (fixtures README, "ViTDet").
 */
import { type Tensor, fmtShape, pad, reshape, slice, transpose } from '../graph/index.ts';

export interface Partitioned {
  /** `[B * nh * nw, ws, ws, C]`, windows in row-major order per image. */
  windows: Tensor;
  /** Windows per column and per row: `[nh, nw] = [ceil(H/ws), ceil(W/ws)]`. */
  grid: [number, number];
  /** The original map size `[H, W]` (what unpartition crops back to). */
  hw: [number, number];
}

/**
 * Zero-pads `x [B, H, W, C]` at the bottom/right to multiples of `ws` and cuts it into windows.
 *
 * @example
 * const { windows, grid } = windowPartition(x, 14); // x [1,20,20,96] -> windows [4,14,14,96], grid [2,2]
 */
export function windowPartition(x: Tensor, ws: number): Partitioned {
  if (x.rank !== 4) throw new Error(`windowPartition: expected NHWC [B, H, W, C], got ${fmtShape(x.shape)}`);
  if (!Number.isInteger(ws) || ws < 1) throw new Error(`windowPartition: window size must be a positive integer, got ${ws}`);
  const [B, H, W, C] = x.shape as [number, number, number, number];
  const nh = Math.ceil(H / ws);
  const nw = Math.ceil(W / ws);
  const xp = pad(x, [0, 0, 0, 0, 0, nh * ws - H, nw * ws - W, 0]);
  // [B, nh*ws, nw*ws, C] -> [B, nh, ws, nw, ws, C] -> [B, nh, nw, ws, ws, C] -> [B*nh*nw, ws, ws, C]
  const t = transpose(reshape(xp, [B, nh, ws, nw, ws, C]), [0, 1, 3, 2, 4, 5]);
  return { windows: reshape(t, [B * nh * nw, ws, ws, C]), grid: [nh, nw], hw: [H, W] };
}

/**
 * Stitches windows `[B * nh * nw, s, s, C]` laid out on an `nh x nw` grid back into a map and crops
 * it to `H x W` (top-left). `s` may differ from the partition's window size: HieraDet's q-pooling
 * blocks partition with window `ws` and stitch windows of `ws / 2` (sam2 `MultiScaleBlock.forward`).
 */
export function windowUnpartition(windows: Tensor, grid: readonly [number, number], hw: readonly [number, number]): Tensor {
  if (windows.rank !== 4) throw new Error(`windowUnpartition: expected [B*nW, s, s, C], got ${fmtShape(windows.shape)}`);
  const [nh, nw] = grid;
  const [H, W] = hw;
  const [Bn, sh, sw, C] = windows.shape as [number, number, number, number];
  if (Bn % (nh * nw) !== 0) {
    throw new Error(`windowUnpartition: ${Bn} windows are not a whole number of ${nh}x${nw} grids`);
  }
  if (nh * sh < H || nw * sw < W) {
    throw new Error(`windowUnpartition: ${nh}x${nw} windows of ${sh}x${sw} cover ${nh * sh}x${nw * sw}, less than the ${H}x${W} to crop`);
  }
  const B = Bn / (nh * nw);
  // [B*nh*nw, sh, sw, C] -> [B, nh, nw, sh, sw, C] -> [B, nh, sh, nw, sw, C] -> [B, nh*sh, nw*sw, C]
  const t = transpose(reshape(windows, [B, nh, nw, sh, sw, C]), [0, 1, 3, 2, 4, 5]);
  const full = reshape(t, [B, nh * sh, nw * sw, C]);
  return slice(slice(full, 1, 0, H), 2, 0, W);
}
