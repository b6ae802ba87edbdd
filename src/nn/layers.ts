/**
 * Layers shared by every model family, written against `Params` so that the
 * parameter names are the official state-dict names.
 */
import { type Tensor, add, attentionFused, gelu, layerNorm as lnOp, linear as linOp, matmul, mul, reshape, slice, softmax, swapAxes, transpose } from '../graph/index.ts';
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
 * Multi-head attention on tokens in the hidden layout: q [B, Sq, heads*dk], k [B, Sk, heads*dk],
 * v [B, Sk, heads*dv] -> [B, Sq, heads*dv], softmax(q_h k_h^T * scale + bias) v_h per head.
 * Traced as one fused node or as the explicit chain according to `q.graph.attention`
 * (src/graph/tensor.ts AttentionForm); both compute the same function.
 */
export function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, heads: number, scale: number, bias?: Tensor | null): Tensor {
  if (q.graph.attention === 'fused') return attentionFused(q, k, v, { heads, scale, bias: bias ?? null });
  return mergeHeads(sdpa(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), scale, bias ?? undefined));
}

/**
 * q, k, v of a torch `qkv` Linear (weight [3C, C], rows q | k | v) as three products on the row
 * blocks of its weight, so each comes out contiguous as [..., C] with no slicing of activations.
 */
export function qkvProjections(p: Params, name: string, x: Tensor, inF: number, C: number, bias = true): [Tensor, Tensor, Tensor] {
  const w = p.param(`${name}.weight`, [3 * C, inF], truncNormal(0.02));
  const b = bias ? p.param(`${name}.bias`, [3 * C], zeros) : null;
  return [0, 1, 2].map((i) => linOp(x, slice(w, 0, i * C, (i + 1) * C), b ? slice(b, 0, i * C, (i + 1) * C) : null)) as [Tensor, Tensor, Tensor];
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
