/**
 * ResFormer's position embeddings (Tian et al., "ResFormer: Scaling ViTs with Multi-Resolution
 * Training", CVPR 2023, Sec. 3.2; official code ruitian12/resformer
 * `image_classification/models.py`, classes `GlobalPosEmbed` and `Attention.get_local_pos_embed`).
 *
 * - GPE (global): a parameter-free sin-cos table computed for the current grid with normalised
 *   coordinates, then a depthwise 3x3 conv (zero padding, bias). The prefix (class) token gets 0.
 * - LPE (local): one depthwise 3x3 conv over the head_dim channels of V, shared by all heads,
 *   added to the attention output (`attn @ v + conv(v)`). The prefix rows get 0.
 *
 * Both take the grid as (gh, gw) = (H/p, W/p). The official code reads `g = int(sqrt(N-1))`, which
 * only works for square grids (non-square inputs raise, or silently use the wrong layout when N-1
 * happens to be a square, see `probe_non_square_input` in the fixtures); on square grids the two
 * agree exactly.
 */
import { type Tensor, add, conv2d, padAxis, reshape, slice, transpose } from '../graph/index.ts';
import { gridToTokens, resformerSincosConst } from '../posembed/graph.ts';
import { type Params, zeros } from './params.ts';

/**
 * torch's default Conv2d init (kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fanIn)) for weight and
 * bias); a depthwise 3x3 conv has fanIn 9.
 */
const depthwiseInit = { kind: 'fanIn', fanIn: 9 } as const;

export interface GlobalPosEmbedResult {
  /** The embedding to add to the tokens, `[1, prefix + gh*gw, C]` (prefix rows are 0). */
  pos: Tensor;
  /** The sin-cos table fed to the conv, `[1, C, gh, gw]` (channels `[PE_y; PE_x]`). */
  sincos: Tensor;
}

/**
 * ResFormer GPE at parameter `name` (official: `pos_embed.embed_layer.{weight,bias}`,
 * `Conv2d(C, C, 3, padding=1, groups=C)`). `like` supplies graph and dtype. With `conv` false it
 * returns the bare sin-cos table (the parameter-free 'sincos' variant, no parameters declared).
 */
export function globalPosEmbed(
  p: Params,
  name: string,
  like: Tensor,
  C: number,
  gh: number,
  gw: number,
  numPrefixTokens: number,
  conv = true,
): GlobalPosEmbedResult {
  const sincos = resformerSincosConst(like, gh, gw, C); // [1, C, gh, gw]
  let grid = sincos;
  if (conv) {
    // The conv weight follows timm's default decay grouping (ndim 4, not a bias, and not one of
    // the exact names `pos_embed`/`cls_token` in `no_weight_decay`), so it is decayed.
    const w = p.param(`${name}.weight`, [C, 1, 3, 3], depthwiseInit);
    const b = p.param(`${name}.bias`, [C], depthwiseInit);
    grid = conv2d(sincos, w, b, { padding: 1, groups: C });
  }
  // [1, C, gh, gw] -> [1, gh*gw, C], then a zero row per prefix token: [1, prefix + gh*gw, C]
  const pos = padAxis(gridToTokens(grid), 1, numPrefixTokens, 0);
  return { pos, sincos };
}

/**
 * ResFormer LPE at parameter `name` (official: `blocks.N.attn.get_v.{weight,bias}`,
 * `Conv2d(hd, hd, 3, padding=1, groups=hd)`), applied to `v` `[B, heads, prefix + gh*gw, hd]`.
 * Returns a tensor of v's shape whose prefix rows are 0. The official init zeroes the conv, so the
 * LPE is a no-op until trained.
 */
export function localPosEmbed(p: Params, name: string, v: Tensor, gh: number, gw: number, numPrefixTokens: number): Tensor {
  const [B, heads, N, hd] = v.shape as [number, number, number, number];
  if (N - numPrefixTokens !== gh * gw) {
    throw new Error(`localPosEmbed: v has ${N} tokens, expected ${numPrefixTokens} prefix + ${gh}x${gw} grid = ${numPrefixTokens + gh * gw}`);
  }
  const w = p.param(`${name}.weight`, [hd, 1, 3, 3], zeros);
  const b = p.param(`${name}.bias`, [hd], zeros);
  const patches = slice(v, 2, numPrefixTokens); // [B, heads, gh*gw, hd]
  // [B, heads, gh*gw, hd] -> [B, heads, hd, gh*gw] -> [B*heads, hd, gh, gw]: heads share one conv
  const grid = reshape(transpose(patches, [0, 1, 3, 2]), [B * heads, hd, gh, gw]);
  const y = conv2d(grid, w, b, { padding: 1, groups: hd });
  // [B*heads, hd, gh, gw] -> [B, heads, hd, gh*gw] -> [B, heads, gh*gw, hd]
  const back = transpose(reshape(y, [B, heads, hd, gh * gw]), [0, 1, 3, 2]);
  return padAxis(back, 2, numPrefixTokens, 0);
}

/** `attn_out + LPE(v)`: the ResFormer attention output before the head merge. */
export function addLocalPosEmbed(p: Params, name: string, attnOut: Tensor, v: Tensor, gh: number, gw: number, numPrefixTokens: number): Tensor {
  return add(attnOut, localPosEmbed(p, name, v, gh, gw, numPrefixTokens));
}
