/**
 * GroupNorm (Wu & He, "Group Normalization", ECCV 2018; torch `nn.GroupNorm`) on NCHW, as a graph
 * function: the channels are split into `groups` groups and each (sample, group) is normalised
 * over its C/G·H·W values (biased variance, eps inside the square root), then a per-channel
 * affine. It is the engine's LayerNorm op over the last axis of `[B, G, C/G·H·W]`, so the VJP is
 * LayerNorm's (and float64 graphs lower to primitives for gradient checks).
 */
import { type Tensor, add, fmtShape, layerNorm, mul, reshape } from '../graph/index.ts';

export function groupNorm(x: Tensor, groups: number, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  if (x.rank !== 4) throw new Error(`groupNorm: expected NCHW input, got ${fmtShape(x.shape)}`);
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (!Number.isInteger(groups) || groups < 1 || C % groups) {
    throw new Error(`groupNorm: ${C} channels cannot be split into ${groups} groups (use a divisor of ${C})`);
  }
  // [B, C, H, W] -> [B, G, C/G·H·W]: each row is one (sample, group)
  const y = reshape(layerNorm(reshape(x, [B, groups, (C / groups) * H * W]), null, null, eps), [B, C, H, W]);
  let out = y;
  if (weight) out = mul(out, reshape(weight, [1, C, 1, 1]));
  if (bias) out = add(out, reshape(bias, [1, C, 1, 1]));
  return out;
}
