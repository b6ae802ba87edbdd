/**
 * Layers shared by every model family, written against `Params` so that the
 * parameter names are the official state-dict names.
 */
import { type Tensor, add, gelu, layerNorm as lnOp, linear as linOp, matmul, mul, reshape, softmax, swapAxes, transpose } from '../graph/index.ts';
import { type Params, ones, truncNormal, zeros } from './params.ts';

/** torch.nn.Linear at `name` (weight [out, in], bias [out]); timm's trunc_normal(0.02) init. */
export function linear(p: Params, name: string, x: Tensor, inF: number, outF: number, bias = true): Tensor {
  const w = p.param(`${name}.weight`, [outF, inF], truncNormal(0.02));
  const b = bias ? p.param(`${name}.bias`, [outF], zeros) : null;
  return linOp(x, w, b);
}

/** torch.nn.LayerNorm over the last axis at `name`. */
export function layerNorm(p: Params, name: string, x: Tensor, eps: number): Tensor {
  const C = x.shape[x.rank - 1]!;
  return lnOp(x, p.param(`${name}.weight`, [C], ones), p.param(`${name}.bias`, [C], zeros), eps);
}

/** timm Mlp: fc1 -> GELU (erf) -> fc2. */
export function mlp(p: Params, name: string, x: Tensor, dim: number, hidden: number, outDim = dim): Tensor {
  const h = gelu(linear(p, `${name}.fc1`, x, dim, hidden));
  return linear(p, `${name}.fc2`, h, hidden, outDim);
}

/** [B, N, heads*d] -> [B, heads, N, d] */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, N, C] = x.shape as [number, number, number];
  return transpose(reshape(x, [B, N, heads, C / heads]), [0, 2, 1, 3]);
}

/** [B, heads, N, d] -> [B, N, heads*d] */
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, N, d] = x.shape as [number, number, number, number];
  return reshape(transpose(x, [0, 2, 1, 3]), [B, N, H * d]);
}

/**
 * Scaled dot-product attention on [..., N, d] tensors: softmax(q k^T * scale + bias) v.
 * `bias` (e.g. decomposed relative positions) broadcasts against [..., Nq, Nk].
 */
export function sdpa(q: Tensor, k: Tensor, v: Tensor, scale: number, bias?: Tensor): Tensor {
  let logits = matmul(mul(q, scale), swapAxes(k, -1, -2));
  if (bias) logits = add(logits, bias);
  return matmul(softmax(logits, -1), v);
}

/**
 * Stochastic depth: x * mask / keep with a per-sample mask fed as a graph input
 * (drawn from the seeded generator in TypeScript, so runs are reproducible).
 * `mask` is [B, 1, ..., 1] of 0/1; `keep` = 1 - drop rate.
 */
export function dropPath(x: Tensor, mask: Tensor | undefined, keep: number): Tensor {
  if (!mask || keep >= 1) return x;
  return mul(x, mul(mask, 1 / keep));
}
