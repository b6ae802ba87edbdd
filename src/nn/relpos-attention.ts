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
import { type Tensor, add, fmtShape, linear as linOp, matmul, mul, reshape, slice, softmax, swapAxes, transpose } from '../graph/index.ts';
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
 * Adds the decomposed rel-pos terms to attention logits.
 * `logits [N, h*w, kh*kw]`, `q [N, h, w, d]` (unscaled), `Rh [h, kh, d]`, `Rw [w, kw, d]`.
 */
export function addDecomposedRelPos(logits: Tensor, q: Tensor, Rh: Tensor, Rw: Tensor): Tensor {
  const [N, h, w, d] = q.shape as [number, number, number, number];
  const kh = Rh.shape[1]!;
  const kw = Rw.shape[1]!;
  if (Rh.shape[0] !== h || Rw.shape[0] !== w || Rh.shape[2] !== d || Rw.shape[2] !== d || logits.shape[2] !== kh * kw) {
    throw new Error(
      `addDecomposedRelPos: q ${fmtShape(q.shape)}, Rh ${fmtShape(Rh.shape)}, Rw ${fmtShape(Rw.shape)} and logits ${fmtShape(logits.shape)} do not fit`);
  }
  // rel_h[n, y, x, ky] = Σ_c q[n, y, x, c] Rh[y, ky, c]: batch over (n, y) by broadcasting Rh's y.
  const relH = matmul(q, swapAxes(Rh, 1, 2)); // [N, h, w, d] @ [h, d, kh] -> [N, h, w, kh]
  // rel_w[n, y, x, kx] = Σ_c q[n, y, x, c] Rw[x, kx, c]: move x next to n so Rw's x broadcasts.
  const qT = transpose(q, [0, 2, 1, 3]); // [N, w, h, d]
  const relW = transpose(matmul(qT, swapAxes(Rw, 1, 2)), [0, 2, 1, 3]); // [N, w, h, kw] -> [N, h, w, kw]
  // [N, h, w, kh, kw] + rel_h[..., None] + rel_w[..., None, :]
  const l5 = reshape(logits, [N, h, w, kh, kw]);
  const sum = add(add(l5, reshape(relH, [N, h, w, kh, 1])), reshape(relW, [N, h, w, 1, kw]));
  return reshape(sum, [N, h * w, kh * kw]);
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
  const qkvW = p.param('qkv.weight', [3 * dim, dim], truncNormal(0.02));
  const qkvB = opts.qkvBias === false ? null : p.param('qkv.bias', [3 * dim], zeros);
  // [B, h, w, 3C] -> [B, N, 3, heads, d] -> [3, B, heads, N, d]
  const qkv = transpose(reshape(linOp(x, qkvW, qkvB), [B, N, 3, heads, d]), [2, 0, 3, 1, 4]);
  const part = (i: number): Tensor => reshape(slice(qkv, 0, i, i + 1), [B * heads, N, d]);
  const q = part(0);
  const k = part(1);
  const v = part(2);
  let logits = matmul(mul(q, d ** -0.5), swapAxes(k, 1, 2)); // [B*heads, N, N]
  const out: RelPosAttentionOutput = { out: x };
  if (opts.relPosInput) {
    const [sh, sw] = opts.relPosInput;
    // detectron2 Attention.__init__: zeros unless rel_pos_zero_init=False (then trunc_normal 0.02).
    const tableH = p.param('rel_pos_h', [2 * sh - 1, d], zeros, { decay: false });
    const tableW = p.param('rel_pos_w', [2 * sw - 1, d], zeros, { decay: false });
    out.Rh = relPosOnGraph(tableH, h, h);
    out.Rw = relPosOnGraph(tableW, w, w);
    logits = addDecomposedRelPos(logits, reshape(q, [B * heads, h, w, d]), out.Rh, out.Rw);
  }
  const o = matmul(softmax(logits, -1), v); // [B*heads, N, d]
  // [B, heads, h, w, d] -> [B, h, w, heads, d] -> [B, h, w, C]
  const merged = reshape(transpose(reshape(o, [B, heads, h, w, d]), [0, 2, 3, 1, 4]), [B, h, w, dim]);
  out.out = linOp(merged, p.param('proj.weight', [dim, dim], truncNormal(0.02)), p.param('proj.bias', [dim], zeros));
  return out;
}
