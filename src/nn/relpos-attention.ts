/**
 * Multi-head self-attention on a 2-D token map with optional decomposed relative position
 * embeddings: detectron2 `modeling/backbone/vit.py` `Attention` and `utils.py`
 * `add_decomposed_rel_pos` (MViTv2, Li et al. 2022, Sec. 4.1; ViTDet, Li et al. 2022).
 *
 *   logits[i, j] = (q_i · scale) · k_j + q_i · Rh[y_i, y_j] + q_i · Rw[x_i, x_j]
 *
 * The relative terms use the UNSCALED q (detectron2 passes `q`, not `q * scale`; the fixtures
 * README checks this). Rh / Rw come from the `[2·S − 1, head_dim]` tables `rel_pos_h` / `rel_pos_w`,
 * linearly resized when the map differs from the size they were made for (`get_rel_pos`,
 * `relPosOnGraph` in src/posembed/graph.ts). No mask: callers that pad windows let the padded
 * tokens attend and be attended to, as detectron2 does.
 */
import { type Tensor, add, fmtShape, linear as linOp, matmul, reshape, swapAxes, transpose } from '../graph/index.ts';
import { multiHeadAttention, qkvProjections, splitHeads } from './layers.ts';
import { relPosOnGraph } from '../posembed/graph.ts';
import type { Params } from './params.ts';
import { truncNormal, zeros } from './params.ts';

export interface RelPosAttentionOptions {
  dim: number;
  heads: number;
  qkvBias?: boolean;
  /**
   * The map size `[S_h, S_w]` the rel-pos tables were made for (detectron2 `input_size`): tables
   * `rel_pos_h [2·S_h − 1, d]` and `rel_pos_w [2·S_w − 1, d]`. null = no relative positions
   * (and no such parameters).
   */
  relPosInput?: readonly [number, number] | null;
}

export interface RelPosAttentionOutput {
  /** `[B, h, w, dim]` */
  out: Tensor;
  /** `[h, h, d]` and `[w, w, d]` (`get_rel_pos` results) when rel-pos is on; for tests and pictures. */
  Rh?: Tensor;
  Rw?: Tensor;
}

/**
 * The decomposed rel-pos terms as an additive logits bias: `q [N, h, w, d]` (unscaled),
 * `Rh [h, kh, d]`, `Rw [w, kw, d]` -> `[N, h*w, kh*kw]` with
 * bias[n, (y, x), (ky, kx)] = q[n, y, x] · Rh[y, ky] + q[n, y, x] · Rw[x, kx].
 */
export function decomposedRelPosBias(q: Tensor, Rh: Tensor, Rw: Tensor): Tensor {
  const [N, h, w, d] = q.shape as [number, number, number, number];
  const kh = Rh.shape[1]!;
  const kw = Rw.shape[1]!;
  if (Rh.shape[0] !== h || Rw.shape[0] !== w || Rh.shape[2] !== d || Rw.shape[2] !== d) {
    throw new Error(`decomposedRelPosBias: q ${fmtShape(q.shape)}, Rh ${fmtShape(Rh.shape)} and Rw ${fmtShape(Rw.shape)} do not fit`);
  }
  // rel_h[n, y, x, ky] = Σ_c q[n, y, x, c] Rh[y, ky, c]: batch over (n, y) by broadcasting Rh's y.
  const relH = matmul(q, swapAxes(Rh, 1, 2)); // [N, h, w, d] @ [h, d, kh] -> [N, h, w, kh]
  // rel_w[n, y, x, kx] = Σ_c q[n, y, x, c] Rw[x, kx, c]: move x next to n so Rw's x broadcasts.
  const qT = transpose(q, [0, 2, 1, 3]); // [N, w, h, d]
  const relW = transpose(matmul(qT, swapAxes(Rw, 1, 2)), [0, 2, 1, 3]); // [N, w, h, kw] -> [N, h, w, kw]
  // rel_h[..., None] + rel_w[..., None, :]: [N, h, w, kh, kw] -> [N, h*w, kh*kw]
  return reshape(add(reshape(relH, [N, h, w, kh, 1]), reshape(relW, [N, h, w, 1, kw])), [N, h * w, kh * kw]);
}

/**
 * detectron2 `Attention.forward` on `x [B, h, w, dim]` with parameters under `p` (use a scope such
 * as `p.scope('blocks.0.attn.')`): `qkv`, `proj`, and `rel_pos_h` / `rel_pos_w` when
 * `relPosInput` is given.
 */
export function relPosAttention(p: Params, x: Tensor, opts: RelPosAttentionOptions): RelPosAttentionOutput {
  const { dim, heads } = opts;
  if (x.rank !== 4 || x.shape[3] !== dim) throw new Error(`relPosAttention: expected [B, h, w, ${dim}], got ${fmtShape(x.shape)}`);
  if (dim % heads !== 0) throw new Error(`relPosAttention: dim ${dim} is not divisible by ${heads} heads`);
  const [B, h, w] = x.shape as [number, number, number, number];
  const d = dim / heads;
  const N = h * w;
  // q, k, v [B, h, w, C] as three products on the row blocks of detectron2's one `qkv` Linear.
  const [q, k, v] = qkvProjections(p, 'qkv', x, dim, dim, opts.qkvBias !== false).map((t) => reshape(t, [B, N, dim])) as [Tensor, Tensor, Tensor];
  const out: RelPosAttentionOutput = { out: x };
  let bias: Tensor | null = null;
  if (opts.relPosInput) {
    const [sh, sw] = opts.relPosInput;
    // detectron2 Attention.__init__: zeros unless rel_pos_zero_init=False (then trunc_normal 0.02).
    const tableH = p.param('rel_pos_h', [2 * sh - 1, d], zeros, { decay: false });
    const tableW = p.param('rel_pos_w', [2 * sw - 1, d], zeros, { decay: false });
    out.Rh = relPosOnGraph(tableH, h, h);
    out.Rw = relPosOnGraph(tableW, w, w);
    // The relative terms need q per head: [B, N, C] -> [B, heads, N, d] -> [B*heads, h, w, d]
    const qh = reshape(splitHeads(q, heads), [B * heads, h, w, d]);
    // [B*heads, N, N] -> [B, heads, N, N]: the additive bias of the attention logits
    bias = reshape(decomposedRelPosBias(qh, out.Rh, out.Rw), [B, heads, N, N]);
  }
  // [B, N, C] -> [B, h, w, C]
  const merged = reshape(multiHeadAttention(q, k, v, heads, d ** -0.5, bias), [B, h, w, dim]);
  out.out = linOp(merged, p.param('proj.weight', [dim, dim], truncNormal(0.02)), p.param('proj.bias', [dim], zeros));
  return out;
}
