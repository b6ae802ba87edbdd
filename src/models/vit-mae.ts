/**
 * A masked autoencoder for the plain ViT (He et al. 2022, "Masked Autoencoders Are Scalable Vision
 * Learners", Sec. 3): the pretraining ViTDet starts from (Li et al. 2022, Sec. 4; Bolya et al. 2024,
 * Tab. 3). Patch tokens plus the position embedding enter the encoder; a random `ratio` of them is
 * dropped per image and the global-attention blocks see only the kept ones; a light decoder gets the
 * encoded tokens back in place with a shared `mask_token` at the dropped ones, its own position
 * embedding, and predicts every patch's pixels; the loss is the MSE on the dropped patches, each
 * target patch normalised by its mean and variance (norm_pix).
 *
 * Shared with src/models/hiera-mae.ts (one convention for both MAEs): a mask is `[B, N]` with
 * **1 = KEEP** over the N patch tokens, every image keeps `int(N * (1 - ratio))`
 * (`randomMaskUnits`), and it enters the graph as the 0/1 mask plus int64 `keep` / `restore`
 * indices (`maskIndexFeeds`), so one compiled session serves every mask. The target is
 * `pixelLabel` (channel-slowest patch flattening) and the loss `maskedMse`.
 *
 * The encoder's parameter names are exactly `VitModel`'s (`patch_embed.proj.*`, `pos_embed`,
 * `blocks.i.*`), so `encoderParams` loads into `createVit` of the same encoder config and from there
 * into ViTDet (src/det/init.ts `vitdetFromVit`).
 *
 * Differences from the official MAE, on purpose: the encoder's position embedding is LEARNED
 * (truncated normal 0.02), not fixed sin-cos, because what the window-attention bug concerns is a
 * learned embedding (Bolya et al. 2024 Sec. 3); the decoder's is learned too. Initialisers are
 * timm's ViT ones (our src/nn layers), not the MAE's xavier re-init. No class token.
 *
 * @example
 * const mae = createVitMae({ encoder: { patchSize: 8, embedDim: 64, depth: 4, numHeads: 2, imgSize: [32, 32] } });
 * const mask = randomMaskUnits(new Rng(0), 8, mae.layoutAt(32, 32).numMaskUnits, 0.75);
 */
import { type Tensor, add, concat, conv2d, expandTo, reshape } from '../graph/index.ts';
import { gatherRows } from '../graph/ops/gather-dynamic.ts';
import { layerNorm, linear, mlp, multiHeadAttention, qkvProjections } from '../nn/layers.ts';
import { type ParamInfo, type Params, collectParams, truncNormal } from '../nn/params.ts';
import { gridToTokens, resampleGrid, tokensToGrid } from '../posembed/graph.ts';
import { type MaeMaskInputs, maskedMse, pixelLabel } from './hiera-mae.ts';
import { nearestMultiples } from './types.ts';
import type { VitConfig } from './vit.ts';

/**
 * The encoder: the fields of a plain ViT's config it uses (vit.ts `VitConfig`, so the two cannot
 * drift apart); `imgSize` is the pretraining size, `pos_embed` is stored at its grid.
 */
export type VitMaeEncoderConfig = Pick<VitConfig, 'patchSize' | 'embedDim' | 'depth' | 'numHeads' | 'mlpRatio' | 'qkvBias' | 'inChans' | 'imgSize' | 'layerNormEps'>;

export interface VitMaeConfig {
  encoder: VitMaeEncoderConfig;
  decoderEmbedDim: number;
  decoderDepth: number;
  decoderNumHeads: number;
  /** Default fraction of patch tokens dropped per image (MAE: 0.75). */
  maskRatio: number;
  normPixLoss: boolean;
}

export interface VitMaeLayout {
  grid: [number, number];
  /** One mask unit per patch token. */
  numMaskUnits: number;
  /** Values predicted per token (patch * patch * channels). */
  predDim: number;
}

export interface VitMaeModel {
  readonly family: 'vit-mae';
  readonly config: VitMaeConfig;
  readonly defaultRes: [number, number];
  layoutAt(H: number, W: number): VitMaeLayout;
  /** Tokens kept per image at this size and ratio. */
  lenKeep(H: number, W: number, ratio?: number): number;
  forward(p: Params, x: Tensor, masks: MaeMaskInputs): { loss: Tensor; predFull: Tensor; label: Tensor };
  paramInfos(): Map<string, ParamInfo>;
  /** Names a `createVit` classifier of the encoder config also has (patch_embed, pos_embed, blocks). */
  encoderParamNames(): string[];
}

const ENCODER_DEFAULTS: Omit<VitMaeEncoderConfig, 'patchSize' | 'embedDim' | 'depth' | 'numHeads' | 'imgSize'> = {
  mlpRatio: 4, qkvBias: true, inChans: 3, layerNormEps: 1e-6,
};

/** torch's default conv init U(±1/sqrt(fanIn)) for the patch conv (as vit.ts). */
const fanIn = (n: number) => ({ kind: 'fanIn', fanIn: n }) as const;

/** A timm ViT block (pre-norm attention + MLP) under `p`'s scope, global attention over x [B, N, C]. */
function block(p: Params, x: Tensor, heads: number, mlpRatio: number, qkvBias: boolean, eps: number): Tensor {
  const C = x.shape[2]!;
  const [q, k, v] = qkvProjections(p, 'attn.qkv', layerNorm(p, 'norm1', x, eps), C, C, qkvBias);
  const a = linear(p, 'attn.proj', multiHeadAttention(q, k, v, heads, (C / heads) ** -0.5), C, C);
  const t = add(x, a);
  return add(t, mlp(p, 'mlp', layerNorm(p, 'norm2', t, eps), C, Math.floor(C * mlpRatio)));
}

/** A stored `[1, h0*w0, D]` embedding at grid h x w (bicubic when the grid differs). */
function embedAt(e: Tensor, h0: number, w0: number, h: number, w: number): Tensor {
  return h0 === h && w0 === w ? e : gridToTokens(resampleGrid(tokensToGrid(e, h0, w0), h, w, 'bicubic'));
}

export function createVitMae(
  cfg: { encoder: Partial<VitMaeEncoderConfig> & Pick<VitMaeEncoderConfig, 'patchSize' | 'embedDim' | 'depth' | 'numHeads' | 'imgSize'> } & Partial<Omit<VitMaeConfig, 'encoder'>>,
): VitMaeModel {
  const enc: VitMaeEncoderConfig = { ...ENCODER_DEFAULTS, ...cfg.encoder, imgSize: [...cfg.encoder.imgSize] };
  const full: VitMaeConfig = {
    decoderEmbedDim: cfg.decoderEmbedDim ?? 64,
    decoderDepth: cfg.decoderDepth ?? 1,
    decoderNumHeads: cfg.decoderNumHeads ?? 2,
    maskRatio: cfg.maskRatio ?? 0.75,
    normPixLoss: cfg.normPixLoss ?? true,
    encoder: enc,
  };
  const bad = (m: string): never => {
    throw new Error(`vit-mae: ${m}`);
  };
  for (const k of ['patchSize', 'embedDim', 'numHeads', 'depth', 'inChans'] as const) if (!Number.isInteger(enc[k]) || enc[k] < 1) bad(`encoder.${k} must be a positive integer, got ${enc[k]}`);
  if (enc.embedDim % enc.numHeads) bad(`encoder width ${enc.embedDim} is not divisible by ${enc.numHeads} heads`);
  if (full.decoderEmbedDim % full.decoderNumHeads) bad(`decoder width ${full.decoderEmbedDim} is not divisible by ${full.decoderNumHeads} heads`);
  if (!Number.isInteger(full.decoderDepth) || full.decoderDepth < 0) bad(`decoderDepth must be a non-negative integer, got ${full.decoderDepth}`);
  const P = enc.patchSize;
  const C = enc.embedDim;
  const D = full.decoderEmbedDim;

  const layoutAt = (H: number, W: number): VitMaeLayout => {
    if (!(Number.isInteger(H) && Number.isInteger(W) && H >= P && W >= P && H % P === 0 && W % P === 0)) {
      const [h0, h1] = nearestMultiples(H, P);
      const [w0, w1] = nearestMultiples(W, P);
      bad(`input ${H}x${W} does not split into ${P}x${P} patches; nearest sizes that work: H ${h0} or ${h1}, W ${w0} or ${w1}`);
    }
    const grid: [number, number] = [H / P, W / P];
    return { grid, numMaskUnits: grid[0] * grid[1], predDim: P * P * enc.inChans };
  };
  const lenKeep = (H: number, W: number, ratio = full.maskRatio): number => {
    const N = layoutAt(H, W).numMaskUnits;
    if (!(ratio >= 0 && ratio < 1)) bad(`mask ratio must be in [0, 1), got ${ratio}`);
    const K = Math.trunc(N * (1 - ratio));
    if (K < 1 || K >= N) bad(`ratio ${ratio} keeps ${K} of ${N} patches at ${H}x${W}; keep at least one and drop at least one`);
    return K;
  };
  const [g0h, g0w] = [enc.imgSize[0] / P, enc.imgSize[1] / P];
  if (!Number.isInteger(g0h) || !Number.isInteger(g0w)) bad(`encoder.imgSize ${enc.imgSize.join('x')} must be a multiple of the patch ${P}`);

  const forward = (p: Params, x: Tensor, masks: MaeMaskInputs): { loss: Tensor; predFull: Tensor; label: Tensor } => {
    if (x.rank !== 4 || x.shape[1] !== enc.inChans) bad(`forward: expected images [B, ${enc.inChans}, H, W], got [${x.shape.join(', ')}]`);
    const [B, Cin, H, W] = x.shape as [number, number, number, number];
    const L = layoutAt(H, W);
    const [h, w] = L.grid;
    const N = L.numMaskUnits;
    const K = masks.keep.shape[1]!;
    if (masks.mask.shape.join() !== [B, N].join() || masks.restore.shape.join() !== [B, N].join() || masks.keep.shape[0] !== B) {
      bad(`forward: at ${H}x${W} the mask inputs must be mask [${B}, ${N}], keep [${B}, K], restore [${B}, ${N}]; got [${masks.mask.shape}], [${masks.keep.shape}], [${masks.restore.shape}]`);
    }
    if (K < 1 || K >= N) bad(`forward: ${K} kept of ${N} patches; keep at least one and drop at least one`);
    // Encoder: patch tokens + pos_embed, then only the kept tokens (kernel = stride = P, so a
    // kept token never sees a dropped patch's pixels and no pixel masking is needed).
    const pw = p.param('patch_embed.proj.weight', [C, Cin, P, P], fanIn(Cin * P * P));
    const pb = p.param('patch_embed.proj.bias', [C], fanIn(Cin * P * P));
    const pos = p.param('pos_embed', [1, g0h * g0w, C], truncNormal(0.02), { decay: false });
    const tokens = add(gridToTokens(conv2d(x, pw, pb, { stride: P })), embedAt(pos, g0h, g0w, h, w)); // [B, N, C]
    let t = gatherRows(tokens, masks.keep); // [B, K, C]
    for (let i = 0; i < enc.depth; i++) t = block(p.scope(`blocks.${i}.`), t, enc.numHeads, enc.mlpRatio, enc.qkvBias, enc.layerNormEps);
    t = layerNorm(p, 'norm', t, enc.layerNormEps);
    // Decoder: embed, the kept tokens back in place with mask_token at the dropped ones (restore = K).
    const emb = linear(p, 'decoder_embed', t, C, D);
    const maskToken = p.param('mask_token', [1, 1, D], truncNormal(0.02), { decay: false });
    let d = gatherRows(concat([emb, expandTo(maskToken, [B, 1, D])], 1), masks.restore); // [B, N, D]
    const dpe = p.param('decoder_pos_embed', [1, g0h * g0w, D], truncNormal(0.02), { decay: false });
    d = add(d, embedAt(dpe, g0h, g0w, h, w));
    for (let i = 0; i < full.decoderDepth; i++) d = block(p.scope(`decoder_blocks.${i}.`), d, full.decoderNumHeads, enc.mlpRatio, enc.qkvBias, enc.layerNormEps);
    d = layerNorm(p, 'decoder_norm', d, enc.layerNormEps);
    const predFull = linear(p, 'decoder_pred', d, D, L.predDim); // [B, N, P*P*Cin]
    const label = pixelLabel(x, [P, P], full.normPixLoss);
    const loss = maskedMse(predFull, label, masks.mask, B * (N - K));
    return { loss, predFull, label };
  };

  let infos: Map<string, ParamInfo> | undefined;
  const paramInfos = (): Map<string, ParamInfo> => {
    infos ??= collectParams((p, g) => {
      const [H, W] = enc.imgSize;
      const N = layoutAt(H, W).numMaskUnits;
      if (N < 2) bad(`input ${H}x${W} has ${N} patch; the MAE needs at least 2`);
      const K = Math.max(1, Math.min(N - 1, Math.trunc(N * (1 - full.maskRatio))));
      forward(p, g.input('__x', [1, enc.inChans, H, W]), {
        mask: g.input('__mask', [1, N]), keep: g.input('__keep', [1, K], 'int64'), restore: g.input('__restore', [1, N], 'int64'),
      });
    });
    return infos;
  };

  return {
    family: 'vit-mae',
    config: full,
    defaultRes: [enc.imgSize[0], enc.imgSize[1]],
    layoutAt,
    lenKeep,
    forward,
    paramInfos,
    encoderParamNames: () => [...paramInfos().keys()].filter((n) => n === 'pos_embed' || n.startsWith('patch_embed.') || n.startsWith('blocks.')),
  };
}
