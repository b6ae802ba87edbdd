/**
 * Fused multi-head scaled dot-product attention on tokens in the hidden layout:
 *
 *   out = merge_heads(softmax(q_h k_h^T * scale + bias) v_h)
 *
 * with q [B, Sq, heads*dk], k [B, Sk, heads*dk], v [B, Sk, heads*dv] -> out [B, Sq, heads*dv] and
 * an optional additive bias broadcasting as [1 or B, 1 or heads, Sq, Sk] (decomposed relative
 * positions, Li et al. 2022). The hidden layout is what ONNX Runtime's contrib
 * `com.microsoft.MultiHeadAttention` takes (its CPU kernel rejects the packed [B, S, N, 3, H] qkv
 * form; measured with ORT 1.30), so a model that computes q, k and v with three products on the
 * row blocks of its qkv weight needs no head transposes at all.
 *
 * Lowering: float32 -> one MultiHeadAttention node (ORT's CPU kernel computes softmax(QK^T) V per
 * head without materialising the [B, heads, Sq, Sk] probabilities as a graph value; it takes the
 * bias as its `attention_bias` input). float64 (gradient checks) -> the explicit chain in double,
 * because the contrib kernel is float only.
 *
 * VJP (flash-style, Dao et al. 2022, Sec. 3.1 / Alg. 4): the probabilities are recomputed from q
 * and k with explicit ops, then
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),  dQ = dS K * scale,  dK = dS^T Q * scale,
 * and d(bias) = dS summed to the bias shape. rowsum(dO * O) equals rowsum(dP * P) and costs
 * Sq*dv instead of Sq*Sk.
 */
import { type OpDef, Tensor, fmtShape } from '../tensor.ts';
import { add, mul, sub, sumTo } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { softmax } from './nn.ts';
import { reduceSum } from './reduce.ts';
import { reshape, swapAxes, transpose } from './shape.ts';

function check(inputs: readonly Tensor[], heads: number): void {
  const [q, k, v, bias] = inputs as [Tensor, Tensor, Tensor, Tensor | undefined];
  const where = 'attention';
  if (!q || !k || !v) throw new Error(`${where}: needs q, k and v`);
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3) {
    throw new Error(`${where}: q, k, v must be [B, S, heads*d], got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`);
  }
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`${where}: heads must be a positive integer, got ${heads}`);
  const [B, Sq, Ck] = q.shape as [number, number, number];
  if (k.shape[0] !== B || v.shape[0] !== B) throw new Error(`${where}: batch sizes differ: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  if (k.shape[2] !== Ck) throw new Error(`${where}: q ${fmtShape(q.shape)} and k ${fmtShape(k.shape)} must have the same hidden size`);
  if (k.shape[1] !== v.shape[1]) throw new Error(`${where}: k ${fmtShape(k.shape)} and v ${fmtShape(v.shape)} must have the same number of tokens`);
  if (Ck % heads !== 0 || v.shape[2]! % heads !== 0) {
    throw new Error(`${where}: hidden sizes ${Ck} (q, k) and ${v.shape[2]} (v) must be divisible by ${heads} heads`);
  }
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new Error(`${where}: dtypes differ (q ${q.dtype}, k ${k.dtype}, v ${v.dtype})`);
  if (bias) {
    const Sk = k.shape[1]!;
    const ok = bias.rank === 4 && (bias.shape[0] === 1 || bias.shape[0] === B) && (bias.shape[1] === 1 || bias.shape[1] === heads) && bias.shape[2] === Sq && bias.shape[3] === Sk;
    if (!ok) throw new Error(`${where}: bias ${fmtShape(bias.shape)} must be [1 or ${B}, 1 or ${heads}, ${Sq}, ${Sk}]`);
    if (bias.dtype !== q.dtype) throw new Error(`${where}: bias is ${bias.dtype} but q is ${q.dtype}`);
  }
}

/** [B, S, heads*d] -> [B, heads, S, d] */
function heads4(x: Tensor, heads: number): Tensor {
  const [B, S, C] = x.shape as [number, number, number];
  return transpose(reshape(x, [B, S, heads, C / heads]), [0, 2, 1, 3]);
}

/** [B, heads, S, d] -> [B, S, heads*d] */
function merge3(x: Tensor): Tensor {
  const [B, H, S, d] = x.shape as [number, number, number, number];
  return reshape(transpose(x, [0, 2, 1, 3]), [B, S, H * d]);
}

export const AttentionOp: OpDef = {
  name: 'attention',
  infer: (inputs, attrs) => {
    check(inputs, attrs.heads as number);
    const [q, , v] = inputs as [Tensor, Tensor, Tensor];
    return [{ shape: [q.shape[0]!, q.shape[1]!, v.shape[2]!], dtype: q.dtype }];
  },
  lower: (ctx, n) => {
    const [q, k, v, bias] = n.inputs as [Tensor, Tensor, Tensor, Tensor | undefined];
    const heads = n.attrs.heads as number;
    const scale = n.attrs.scale as number;
    const out = ctx.name(n.outputs[0]!);
    if (q.dtype === 'float32') {
      // MultiHeadAttention inputs: query, key, value, bias (of the projections), key_padding_mask,
      // attention_bias; empty names skip the optional ones.
      const ins = [ctx.name(q), ctx.name(k), ctx.name(v)];
      if (bias) ins.push('', '', ctx.name(bias));
      ctx.emit('MultiHeadAttention', ins, [out], { num_heads: heads, scale }, 'com.microsoft');
      return;
    }
    // float64: the explicit definition in double.
    const [B, Sq, Ck] = q.shape as [number, number, number];
    const Sk = k.shape[1]!;
    const dk = Ck / heads;
    const dv = v.shape[2]! / heads;
    const split = (t: Tensor, S: number, d: number, perm: number[], hint: string): string => {
      const r = ctx.fresh(`${hint}_r`);
      const o = ctx.fresh(`${hint}_h`);
      ctx.emit('Reshape', [ctx.name(t), ctx.int64([B, S, heads, d])], [r]);
      ctx.emit('Transpose', [r], [o], { perm });
      return o;
    };
    const qh = split(q, Sq, dk, [0, 2, 1, 3], 'attn_q'); // [B, heads, Sq, dk]
    const kt = split(k, Sk, dk, [0, 2, 3, 1], 'attn_k'); // [B, heads, dk, Sk]
    const vh = split(v, Sk, dv, [0, 2, 1, 3], 'attn_v'); // [B, heads, Sk, dv]
    const qs = ctx.fresh('attn_qs');
    const logits = ctx.fresh('attn_logits');
    const probs = ctx.fresh('attn_probs');
    const oh = ctx.fresh('attn_oh');
    const ot = ctx.fresh('attn_ot');
    ctx.emit('Mul', [qh, ctx.scalar(scale, q.dtype)], [qs]);
    ctx.emit('MatMul', [qs, kt], [logits]);
    let l = logits;
    if (bias) {
      l = ctx.fresh('attn_biased');
      ctx.emit('Add', [logits, ctx.name(bias)], [l]);
    }
    ctx.emit('Softmax', [l], [probs], { axis: -1 });
    ctx.emit('MatMul', [probs, vh], [oh]);
    ctx.emit('Transpose', [oh], [ot], { perm: [0, 2, 1, 3] }); // [B, Sq, heads, dv]
    ctx.emit('Reshape', [ot, ctx.int64([B, Sq, heads * dv])], [out]);
  },
  vjp: (n, gs) => {
    const [q, k, v, bias] = n.inputs as [Tensor, Tensor, Tensor, Tensor | undefined];
    const heads = n.attrs.heads as number;
    const scale = n.attrs.scale as number;
    const g = gs[0]!;
    const qh = heads4(q, heads); // [B, H, Sq, dk]
    const kh = heads4(k, heads); // [B, H, Sk, dk]
    const vh = heads4(v, heads); // [B, H, Sk, dv]
    const gh = heads4(g, heads); // [B, H, Sq, dv]
    const oh = heads4(n.outputs[0]!, heads); // [B, H, Sq, dv]
    let logits = matmul(mul(qh, scale), swapAxes(kh, -1, -2)); // [B, H, Sq, Sk]
    if (bias) logits = add(logits, bias);
    const P = softmax(logits, -1);
    const dV = matmul(swapAxes(P, -1, -2), gh); // [B, H, Sk, dv]
    const dP = matmul(gh, swapAxes(vh, -1, -2)); // [B, H, Sq, Sk]
    const D = reduceSum(mul(gh, oh), -1, true); // [B, H, Sq, 1] = rowsum(dP * P)
    const dS = mul(P, sub(dP, D));
    const dQ = mul(matmul(dS, kh), scale); // [B, H, Sq, dk]
    const dK = mul(matmul(swapAxes(dS, -1, -2), qh), scale); // [B, H, Sk, dk]
    const out: (Tensor | null)[] = [merge3(dQ), merge3(dK), merge3(dV)];
    if (bias) out.push(sumTo(dS, bias.shape));
    return out;
  },
};

export interface AttentionOptions {
  heads: number;
  /** Multiplies q k^T (default 1/sqrt(head dim)). */
  scale?: number;
  /** Additive logits bias, [1 or B, 1 or heads, Sq, Sk]. */
  bias?: Tensor | null;
}

/**
 * Multi-head attention on q [B, Sq, heads*dk], k [B, Sk, heads*dk], v [B, Sk, heads*dv] as ONE
 * fused node (see the file comment) -> [B, Sq, heads*dv].
 *
 * @example
 * const o = attentionFused(q, k, v, { heads: 3 }); // q, k, v [8, 197, 192] -> [8, 197, 192]
 */
export function attentionFused(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const heads = opts.heads;
  const scale = opts.scale ?? (q.shape[2]! / heads) ** -0.5;
  const inputs = opts.bias ? [q, k, v, opts.bias] : [q, k, v];
  return q.graph.apply(AttentionOp, inputs, { heads, scale })[0]!;
}
