/**
 * ViT / DeiT / ResFormer by config: one `VitConfig`, one preset table, one factory.
 *
 * - ViT (Dosovitskiy et al. 2021) and DeiT (Touvron et al. 2021) exactly as timm's
 *   `VisionTransformer` (timm/models/vision_transformer.py) with `dynamic_img_size=True`: the
 *   learned position embedding is stored at the grid of `imgSize` and resampled to the input's
 *   grid with timm's `resample_abs_pos_embed` defaults (bicubic, antialias=True).
 * - ResFormer (Tian et al. 2023) exactly as ruitian12/resformer `image_classification/models.py`:
 *   a global position embedding (sin-cos table per grid + depthwise 3x3 conv, `src/nn/resformer.ts`)
 *   and a local one in every attention (`attn @ v + conv(v)`).
 *
 * Any input whose sides are multiples of the patch size works, non-square included. The grid is
 * taken as (H/p) x (W/p) (the official ResFormer assumes a square grid; we do not).
 *
 * Parameter names are the official state-dict names (timm ViT / ResFormer), so checkpoints load as
 * they are.
 *
 * @example
 * const model = createVit('vit-mini-p4', { numClasses: 10 });
 * const weights = initWeights(model.paramInfos(), new Rng(0));
 * const out = await rt.run((i, g) => ({ logits: model.forward(new Params(g, weights), i.x!).logits }), { x });
 */
import {
  type Tensor, add, concat, conv2d, expandTo, reduceMean, reshape, slice,
} from '../graph/index.ts';
import { type Init, type ParamInfo, type Params, collectParams, truncNormal } from '../nn/params.ts';
import { dropPath, layerNorm, linear, mergeHeads, mlp, multiHeadAttention, qkvProjections, splitHeads } from '../nn/layers.ts';
import { globalPosEmbed, localPosEmbed } from '../nn/resformer.ts';
import { gridToTokens, resampleGrid, tokensToGrid } from '../posembed/graph.ts';
import type { ResampleMode } from '../posembed/resample.ts';
import { type ForwardOptions, type ForwardOutput, type Model, nearestMultiples } from './types.ts';
import { presetOrConfig } from './preset.ts';

/**
 * How positions enter the model.
 * - 'learned': timm's `pos_embed` [1, prefix + gh0*gw0, C] stored at the grid of `imgSize`,
 *   resampled (mode `posEmbedResample`) to other grids. The class token has its own row.
 * - 'sincos': ResFormer's normalised sin-cos table recomputed for every grid, with no parameters
 *   (the GPE without its conv; ResFormer's ablation baseline). Class row 0.
 * - 'resformer': ResFormer's GPE: that table through a depthwise 3x3 conv (`pos_embed.embed_layer`).
 */
export type VitPosEmbed = 'learned' | 'sincos' | 'resformer';

export interface VitConfig {
  /** Square patch side in pixels (conv kernel = stride). */
  patchSize: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  /** MLP hidden = floor(embedDim * mlpRatio) (timm `int(dim * mlp_ratio)`). */
  mlpRatio: number;
  qkvBias: boolean;
  /** Prepend a class token (timm `class_token`). */
  classToken: boolean;
  /** 0 = no head (logits are the pooled features). */
  numClasses: number;
  inChans: number;
  /** [H, W] the model is built for; a learned pos embed is stored at (H/p) x (W/p). */
  imgSize: [number, number];
  posEmbed: VitPosEmbed;
  /** ResFormer's local position embedding in every attention block (`blocks.N.attn.get_v`). */
  lpe: boolean;
  /** Resampling of a learned pos embed to other grids. timm's dynamic_img_size default: 'bicubic_aa'. */
  posEmbedResample: ResampleMode;
  /** LayerNorm epsilon (timm ViT and ResFormer: 1e-6). */
  layerNormEps: number;
  /**
   * 'token': pre-logits = norm(x)[:, 0]. 'avg': timm's avg pool, which makes `norm` the identity
   * and applies `fc_norm` after the mean over the patch tokens (timm `use_fc_norm`).
   */
  globalPool: 'token' | 'avg';
  /** Stochastic depth: block i drops with rate dropPathRate * i / (depth - 1) (timm linspace). */
  dropPathRate: number;
}

const base: VitConfig = {
  patchSize: 16,
  embedDim: 192,
  depth: 12,
  numHeads: 3,
  mlpRatio: 4,
  qkvBias: true,
  classToken: true,
  numClasses: 1000,
  inChans: 3,
  imgSize: [224, 224],
  posEmbed: 'learned',
  lpe: false,
  posEmbedResample: 'bicubic_aa',
  layerNormEps: 1e-6,
  globalPool: 'token',
  dropPathRate: 0,
};

const resformer: Partial<VitConfig> = { posEmbed: 'resformer', lpe: true };

/**
 * Every named size. Sources: ViT-Ti/S/B = timm `vit_{tiny,small,base}_patch16_224`
 * (Dosovitskiy et al. 2021 Table 1; Ti and S are DeiT's layouts, Touvron et al. 2021 Table 1:
 * 5.7M / 22.1M / 86.6M parameters at 1000 classes). ResFormer-T/S/B use the DeiT layouts with GPE +
 * LPE (ruitian12/resformer models.py `resformer_{tiny,small,base}_patch16`). Drop path is 0 in every preset; training recipes set it.
 *
 * Presets for small images (our own, for CPU experiments):
 * - `vit-tiny-p8`, `vit-small-p8`: the Ti/S layouts with 8 px patches at 64 px (8x8 tokens).
 * - `vit-mini-p4`: 96 wide, 4 blocks, 3 heads, 4 px patches at 32 px (8x8 tokens), 10 classes.
 * - `vit-mini-p8`: 192 wide, 6 blocks, 3 heads, 8 px patches at 64 px (8x8 tokens), 10 classes.
 * - `resformer-mini-p4`, `resformer-mini-p8`: the same with ResFormer's GPE and LPE.
 */
export const vitPresets: Record<string, VitConfig> = {
  'vit-tiny': { ...base },
  'vit-small': { ...base, embedDim: 384, numHeads: 6 },
  'vit-base': { ...base, embedDim: 768, numHeads: 12 },
  'vit-tiny-p8': { ...base, patchSize: 8, imgSize: [64, 64] },
  'vit-small-p8': { ...base, patchSize: 8, embedDim: 384, numHeads: 6, imgSize: [64, 64] },
  'vit-mini-p4': { ...base, patchSize: 4, embedDim: 96, depth: 4, numHeads: 3, imgSize: [32, 32], numClasses: 10 },
  'vit-mini-p8': { ...base, patchSize: 8, embedDim: 192, depth: 6, numHeads: 3, imgSize: [64, 64], numClasses: 10 },
  'resformer-tiny': { ...base, ...resformer },
  'resformer-small': { ...base, ...resformer, embedDim: 384, numHeads: 6 },
  'resformer-base': { ...base, ...resformer, embedDim: 768, numHeads: 12 },
  'resformer-mini-p4': { ...base, ...resformer, patchSize: 4, embedDim: 96, depth: 4, numHeads: 3, imgSize: [32, 32], numClasses: 10 },
  'resformer-mini-p8': { ...base, ...resformer, patchSize: 8, embedDim: 192, depth: 6, numHeads: 3, imgSize: [64, 64], numClasses: 10 },
};

/** torch's default conv init U(±1/sqrt(fanIn)) (timm leaves `patch_embed.proj` at it). */
const fanIn = (n: number): Init => ({ kind: 'fanIn', fanIn: n });

/** Per-block keep probabilities of stochastic depth (timm: `dpr = linspace(0, rate, depth)`). */
export function dropPathKeep(cfg: VitConfig): number[] {
  const d = cfg.depth;
  return Array.from({ length: d }, (_, i) => 1 - (d > 1 ? (cfg.dropPathRate * i) / (d - 1) : 0));
}

function validate(cfg: VitConfig): void {
  const bad = (m: string): never => {
    throw new Error(`createVit: ${m}`);
  };
  for (const k of ['patchSize', 'embedDim', 'numHeads', 'inChans'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) bad(`${k} must be a positive integer, got ${cfg[k]}`);
  }
  if (!Number.isInteger(cfg.depth) || cfg.depth < 0) bad(`depth must be a non-negative integer, got ${cfg.depth}`);
  if (!Number.isInteger(cfg.numClasses) || cfg.numClasses < 0) bad(`numClasses must be a non-negative integer, got ${cfg.numClasses}`);
  if (cfg.embedDim % cfg.numHeads !== 0) bad(`embedDim ${cfg.embedDim} is not divisible by numHeads ${cfg.numHeads}`);
  if (cfg.posEmbed !== 'learned' && cfg.embedDim % 4 !== 0) {
    bad(`posEmbed '${cfg.posEmbed}' needs embedDim divisible by 4 (sin/cos pairs per axis), got ${cfg.embedDim}`);
  }
  const [H, W] = cfg.imgSize;
  if (H % cfg.patchSize || W % cfg.patchSize || H < cfg.patchSize || W < cfg.patchSize) {
    bad(`imgSize ${H}x${W} must be a multiple of patchSize ${cfg.patchSize}`);
  }
  if (!(cfg.dropPathRate >= 0 && cfg.dropPathRate < 1)) bad(`dropPathRate must be in [0, 1), got ${cfg.dropPathRate}`);
  if (!(cfg.mlpRatio > 0)) bad(`mlpRatio must be positive, got ${cfg.mlpRatio}`);
}

/**
 * timm `Attention`: softmax((q * scale) @ k^T) @ v (fused or explicit by `graph.attention`), plus
 * ResFormer's LPE (`attn @ v + get_v(v)`) when `lpe` gives the grid. x: [B, N, C] -> [B, N, C].
 */
function attention(p: Params, x: Tensor, heads: number, qkvBias: boolean, lpe: { gh: number; gw: number; prefix: number } | null): Tensor {
  const C = x.shape[2]!;
  const hd = C / heads;
  const [q, k, v] = qkvProjections(p, 'qkv', x, C, C, qkvBias); // each [B, N, C]
  let o = multiHeadAttention(q, k, v, heads, hd ** -0.5); // [B, N, C]
  // LPE works on v per head: [B, N, C] -> [B, heads, N, hd], its output merged back to [B, N, C].
  if (lpe) o = add(o, mergeHeads(localPosEmbed(p, 'get_v', splitHeads(v, heads), lpe.gh, lpe.gw, lpe.prefix)));
  return linear(p, 'proj', o, C, C);
}

export class VitModel implements Model<VitConfig> {
  readonly family: string;
  readonly defaultRes: [number, number];
  private infos?: Map<string, ParamInfo>;

  constructor(readonly config: VitConfig) {
    validate(config);
    this.family = config.posEmbed === 'resformer' || config.lpe ? 'resformer' : 'vit';
    this.defaultRes = [...config.imgSize];
  }

  /** The token grid (H/p, W/p) of an input size. */
  grid(H: number, W: number): [number, number] {
    this.checkInputSize(H, W);
    return [H / this.config.patchSize, W / this.config.patchSize];
  }

  checkInputSize(H: number, W: number): void {
    const P = this.config.patchSize;
    if (Number.isInteger(H) && Number.isInteger(W) && H >= P && W >= P && H % P === 0 && W % P === 0) return;
    const [h0, h1] = nearestMultiples(H, P);
    const [w0, w1] = nearestMultiples(W, P);
    throw new Error(
      `${this.family} (patch ${P}): input ${H}x${W} does not split into ${P}x${P} patches; ` +
        `sides must be multiples of ${P}: nearest sizes that work are H ${h0} or ${h1}, W ${w0} or ${w1}`,
    );
  }

  paramInfos(): Map<string, ParamInfo> {
    this.infos ??= collectParams((p, g) => {
      this.forward(p, g.input('x', [1, this.config.inChans, ...this.defaultRes]));
    });
    return this.infos;
  }

  /**
   * Traces the forward pass for x [B, inChans, H, W]. aux: `tokens` (timm forward_features: the
   * normed tokens [B, prefix + gh*gw, C]), `pos_embed` (the patch grid's embedding [1, C, gh, gw]), `pos_embed_tokens` (the embedding added, [1, prefix + gh*gw, C]),
   * `block.i` (tokens after block i), and for 'sincos'/'resformer' `pos_embed_sincos` [1, C, gh, gw].
   */
  forward(p: Params, x: Tensor, opts: ForwardOptions = {}): ForwardOutput {
    const cfg = this.config;
    if (x.rank !== 4 || x.shape[1] !== cfg.inChans) {
      throw new Error(`${this.family}.forward: expected x [B, ${cfg.inChans}, H, W], got [${x.shape.join(', ')}]`);
    }
    const [B, , H, W] = x.shape as [number, number, number, number];
    const [gh, gw] = this.grid(H, W);
    const P = cfg.patchSize;
    const C = cfg.embedDim;
    const prefix = cfg.classToken ? 1 : 0;
    const aux: Record<string, Tensor> = {};

    // PatchEmbed: Conv2d(inChans, C, P, stride P): [B, inChans, H, W] -> [B, C, gh, gw] -> [B, gh*gw, C]
    const pw = p.param('patch_embed.proj.weight', [C, cfg.inChans, P, P], fanIn(cfg.inChans * P * P));
    const pb = p.param('patch_embed.proj.bias', [C], fanIn(cfg.inChans * P * P));
    let t = gridToTokens(conv2d(x, pw, pb, { stride: P }));
    if (cfg.classToken) {
      // timm: cls_token ~ N(0, 1e-6); concatenated first: [B, 1 + gh*gw, C]
      const cls = p.param('cls_token', [1, 1, C], { kind: 'normal', std: 1e-6 }, { decay: false });
      t = concat([expandTo(cls, [B, 1, C]), t], 1);
    }

    const pos = this.posEmbed(p, t, gh, gw, prefix, aux);
    // The aux contract (src/models/types.ts): tokens as added, and the patch grid NCHW.
    aux.pos_embed_tokens = pos;
    aux.pos_embed = tokensToGrid(prefix ? slice(pos, 1, prefix) : pos, gh, gw);
    t = add(t, pos);

    const keep = dropPathKeep(cfg);
    const masks = opts.train ? opts.dropPathMasks : undefined;
    if (masks && masks.length !== cfg.depth && masks.length !== 2 * cfg.depth) {
      throw new Error(`${this.family}.forward: dropPathMasks has ${masks.length} entries; give ${cfg.depth} (one per block) or ${2 * cfg.depth} (attn and mlp branch of each block)`);
    }
    const maskOf = (i: number, branch: 0 | 1): Tensor | undefined =>
      masks ? (masks.length === cfg.depth ? masks[i] : masks[2 * i + branch]) : undefined;
    const hidden = Math.floor(C * cfg.mlpRatio);
    const lpe = cfg.lpe ? { gh, gw, prefix } : null;
    for (let i = 0; i < cfg.depth; i++) {
      const bp = p.scope(`blocks.${i}.`);
      // timm Block: x = x + drop_path(attn(norm1(x))); x = x + drop_path(mlp(norm2(x)))
      const a = attention(bp.scope('attn.'), layerNorm(bp, 'norm1', t, cfg.layerNormEps), cfg.numHeads, cfg.qkvBias, lpe);
      t = add(t, dropPath(a, maskOf(i, 0), keep[i]!));
      const m = mlp(bp, 'mlp', layerNorm(bp, 'norm2', t, cfg.layerNormEps), C, hidden);
      t = add(t, dropPath(m, maskOf(i, 1), keep[i]!));
      aux[`block.${i}`] = t;
    }

    let preLogits: Tensor;
    if (cfg.globalPool === 'token') {
      if (!cfg.classToken) throw new Error(`${this.family}: globalPool 'token' needs classToken true (or use globalPool 'avg')`);
      t = layerNorm(p, 'norm', t, cfg.layerNormEps);
      preLogits = reshape(slice(t, 1, 0, 1), [B, C]);
    } else {
      // timm avg pool: norm is Identity, fc_norm follows the mean over the patch tokens
      preLogits = layerNorm(p, 'fc_norm', reduceMean(slice(t, 1, prefix), 1), cfg.layerNormEps);
    }
    aux.tokens = t;
    const logits = cfg.numClasses > 0 ? linear(p, 'head', preLogits, C, cfg.numClasses) : preLogits;
    return { logits, preLogits, aux };
  }

  /** The position embedding to add to [prefix; patches], [1, prefix + gh*gw, C]. */
  private posEmbed(p: Params, like: Tensor, gh: number, gw: number, prefix: number, aux: Record<string, Tensor>): Tensor {
    const cfg = this.config;
    const C = cfg.embedDim;
    if (cfg.posEmbed === 'learned') {
      const [g0h, g0w] = [cfg.imgSize[0] / cfg.patchSize, cfg.imgSize[1] / cfg.patchSize];
      const stored = p.param('pos_embed', [1, prefix + g0h * g0w, C], truncNormal(0.02), { decay: false });
      if (gh === g0h && gw === g0w) return stored;
      // timm resample_abs_pos_embed: prefix rows kept, the grid resized as an image. We compare the
      // grids themselves (timm returns early when the token count matches and the new grid is
      // square, which equals this for the square stored grids timm builds).
      const grid = tokensToGrid(slice(stored, 1, prefix), g0h, g0w); // [1, C, g0h, g0w]
      const resized = gridToTokens(resampleGrid(grid, gh, gw, cfg.posEmbedResample)); // [1, gh*gw, C]
      return prefix ? concat([slice(stored, 1, 0, prefix), resized], 1) : resized;
    }
    const useConv = cfg.posEmbed === 'resformer';
    const g = globalPosEmbed(p, 'pos_embed.embed_layer', like, C, gh, gw, prefix, useConv);
    aux.pos_embed_sincos = g.sincos;
    return g.pos;
  }
}

/**
 * A ViT / DeiT / ResFormer from a preset name (see `vitPresets`) or a full config, with overrides.
 *
 * @example
 * createVit('resformer-tiny', { numClasses: 100 });
 * createVit('vit-small', { imgSize: [384, 384], dropPathRate: 0.1 });
 */
export function createVit(cfg: VitConfig | string, overrides: Partial<VitConfig> = {}): VitModel {
  const c = presetOrConfig(cfg, vitPresets, 'createVit');
  const merged: VitConfig = { ...c, ...overrides, imgSize: [...(overrides.imgSize ?? c.imgSize)] };
  return new VitModel(merged);
}
