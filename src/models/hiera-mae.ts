/**
 * Hiera masked autoencoder (Ryali et al. 2023, Sec. 3 and App. A), matching facebookresearch/hiera
 * `hiera/hiera_mae.py` `MaskedAutoencoderHiera` to float32 rounding (fixtures `mae_hiera_*`,
 * `grad_mae_hiera_*`), at any input size the architecture takes.
 *
 * Conventions, stated once (all from hiera_mae.py, checked by the fixtures):
 * - A mask is `[B, #MUs]` with **1 = KEEP** (visible), the opposite of the original MAE. Mask units
 *   (MUs) are `maskUnitSize` tokens (8x8 = 32x32 px for Hiera), indexed row-major over the MU grid.
 *   Every sample keeps the same number of units, `lenKeep = int(#MUs * (1 - ratio))`, the units with
 *   the smallest uniform noise (`Hiera.get_random_mask`); see `randomMaskUnits`.
 * - The image is multiplied by the mask, upsampled (nearest) to pixels, BEFORE the patch conv, so
 *   kept tokens at a MU border see zeros. Then `pos_embed` is added to every token, tokens are
 *   unrolled and the tokens of masked MUs are DROPPED (kept MUs in ascending order). Mask-unit
 *   attention windows are the kept MUs.
 * - Which units are kept changes every step but how many does not, so all shapes are static: the
 *   drop is a per-sample gather (`gatherRows`) whose int64 indices are graph INPUTS computed in
 *   TypeScript from the mask (`maskIndexFeeds`). One compiled session serves every mask.
 * - Stages 1..qPool and the last stage are fused (`multi_scale_fusion_heads`: Conv2d with
 *   kernel = stride = the MU's size ratio to the final MU, applied per MU), summed, `encoder_norm`.
 * - Decoder: `decoder_embed`, scatter back with `mask_token` at masked MUs, un-window to row-major
 *   `H/s x W/s` (s = pred stride = patchStride * qStride^qPool), `decoder_pos_embed`, global
 *   attention blocks, `decoder_norm`, `decoder_pred` (-> s*s*C_in per token).
 * - Loss (norm_pix): the target is the ORIGINAL image cut into s x s patches flattened channel
 *   slowest (c, py, px), each normalised by its own mean and UNBIASED variance,
 *   `(v - mean) / sqrt(var + 1e-6)`; MSE over the masked tokens only.
 *
 * Our token order is hiera.ts's mask-unit-contiguous order (hiera-layout.ts), so dropping MUs is a
 * gather of whole `[T, C]` blocks and the kept sequence is exactly what the blocks expect with
 * `#MUs = #kept`.
 *
 * Differences from the official code, on purpose: a `decoder_pos_embed` stored for another grid is
 * resampled with bicubic (the official model is fixed to its `input_size`); initialisers are
 * hiera.py's (trunc-normal 0.02 linears) rather than the MAE's xavier re-init.
 *
 * @example
 * const mae = createHieraMae('hiera-tiny', { encoder: { inputSize: [128, 128] } });
 * const mask = randomMaskUnits(new Rng(0), 8, mae.layoutAt(128, 128).numMaskUnits, 0.6);
 * const feeds = maskIndexFeeds(mask, 8, 16); // { mask, keep, restore } host tensors
 */
import {
  type Tensor, add, concat, conv2d, div, expandTo, gather, mul, reduceMean, reduceSum, reshape, sqrt, sub, transpose,
  variance,
} from '../graph/index.ts';
import { gatherRows } from '../graph/ops/gather-dynamic.ts';
import { layerNorm, linear } from '../nn/layers.ts';
import { type ParamInfo, type Params, collectParams, truncNormal } from '../nn/params.ts';
import { resampleGrid, tokensToGrid } from '../posembed/graph.ts';
import { type HieraBlockPlan, type HieraConfig, type HieraPlan, hieraPlan, hieraPresets, hieraSizeStep, patchGrid } from './hiera-config.ts';
import { hieraOrder, invertPermutation } from './hiera-layout.ts';
import { hieraBlock, posEmbedGrid } from './hiera.ts';
import { nearestMultiples } from './types.ts';

export interface HieraMaeConfig {
  /** The encoder: a Hiera config (its head is not used). The MAE pools q `qPool` = 2 times. */
  encoder: HieraConfig;
  decoderEmbedDim: number;
  decoderDepth: number;
  decoderNumHeads: number;
  /** Default fraction of mask units hidden per image (official 0.6). */
  maskRatio: number;
  /** Normalise each target patch by its mean and unbiased variance (official default true). */
  normPixLoss: boolean;
}

/** The decoder of a Hiera MAE: width, blocks, heads. */
export interface MaeDecoderSize {
  decoderEmbedDim: number;
  decoderDepth: number;
  decoderNumHeads: number;
}

/** hiera_mae.py defaults (every `mae_hiera_*_224`): 512 wide, 8 blocks, 16 heads. */
const OFFICIAL_DECODER: MaeDecoderSize = { decoderEmbedDim: 512, decoderDepth: 8, decoderNumHeads: 16 };
/** Ours, not official: a decoder sized for the CPU-sized mini encoders (64 wide, 1 block, 2 heads). */
const CPU_DECODER: MaeDecoderSize = { decoderEmbedDim: 64, decoderDepth: 1, decoderNumHeads: 2 };

/** The MAE decoder of each Hiera preset, as data (a new preset adds its row). */
export const hieraMaeDecoders: Readonly<Record<string, MaeDecoderSize>> = {
  'hiera-tiny': OFFICIAL_DECODER,
  'hiera-small': OFFICIAL_DECODER,
  'hiera-base': OFFICIAL_DECODER,
  'hiera-base-plus': OFFICIAL_DECODER,
  'hiera-large': OFFICIAL_DECODER,
  'hiera-huge': OFFICIAL_DECODER,
  'hiera-small-abswin': OFFICIAL_DECODER,
  'hiera-mini': CPU_DECODER,
  'hiera-mini-abswin': CPU_DECODER,
  'hiera-mini-wide': CPU_DECODER,
};

/**
 * The MAE config of a Hiera preset: the encoder with `qPool` 2 (`mae_hiera_*_224` in hiera_mae.py
 * all pass q_pool=2) and the preset's decoder from {@link hieraMaeDecoders}.
 */
export function maeConfigFor(preset: string, overrides: { encoder?: Partial<HieraConfig> } & Partial<Omit<HieraMaeConfig, 'encoder'>> = {}): HieraMaeConfig {
  const enc = hieraPresets[preset];
  if (!enc) throw new Error(`maeConfigFor: unknown Hiera preset '${preset}' (known: ${Object.keys(hieraPresets).join(', ')})`);
  const decoder = hieraMaeDecoders[preset];
  if (!decoder) throw new Error(`maeConfigFor: Hiera preset '${preset}' has no MAE decoder row in hieraMaeDecoders; add one (presets with a row: ${Object.keys(hieraMaeDecoders).join(', ')})`);
  const { encoder, ...rest } = overrides;
  return {
    encoder: { ...enc, qPool: 2, ...(encoder ?? {}) },
    ...decoder,
    maskRatio: 0.6,
    normPixLoss: true,
    ...rest,
  };
}

/** Sizes of one input resolution. */
export interface MaeLayout {
  /** Token grid after the patch conv. */
  grid: [number, number];
  /** Mask-unit grid (MUs row-major over it) and count. */
  maskGrid: [number, number];
  numMaskUnits: number;
  /** Tokens of one MU at stage 1, and at the end (after qPool poolings). */
  muSize: [number, number];
  muFinal: [number, number];
  /** Decoder grid (H / predStride x W / predStride) and the values predicted per token. */
  predGrid: [number, number];
  predStride: [number, number];
  predDim: number;
}

/** The graph inputs that carry one batch's mask (see `maskIndexFeeds`). */
export interface MaeMaskInputs {
  /** [B, #MUs] float 0/1, 1 = keep. */
  mask: Tensor;
  /** [B, K] int64: the kept MU indices of each sample, ascending. */
  keep: Tensor;
  /** [B, #MUs] int64: for a kept MU its rank among the kept, for a masked one K (the mask token). */
  restore: Tensor;
}

export interface MaeForwardOutput {
  /** Scalar norm-pix MSE over the masked tokens. */
  loss: Tensor;
  /** [B, L, predDim] predictions of every decoder token (row-major; kept tokens included). */
  predFull: Tensor;
  /** [B, L, predDim] the (normalised) target of every token. */
  label: Tensor;
  /** [B, L] the mask at decoder resolution, 1 = keep. */
  predMask: Tensor;
  /** [B, K, MUy_s, MUx_s, C_s] per stage: kept MUs ascending, tokens of a MU row-major. */
  intermediates: Tensor[];
  /** [B, K, MUy_f, MUx_f, C_enc] fused and normalised encoder output. */
  latent: Tensor;
  /** [B, L, D] the decoder's input tokens (after decoder_pos_embed). */
  decoderInput: Tensor;
}

export interface HieraMaeModel {
  readonly family: 'hiera-mae';
  readonly config: HieraMaeConfig;
  readonly plan: HieraPlan;
  readonly defaultRes: [number, number];
  checkInputSize(H: number, W: number): void;
  layoutAt(H: number, W: number): MaeLayout;
  /** Kept units per image at a ratio: `int(#MUs * (1 - ratio))` (hiera.py get_random_mask); 1 <= K < #MUs. */
  lenKeep(H: number, W: number, ratio?: number): number;
  /** Traces the MAE on images x [B, C_in, H, W] with a mask given as graph inputs. */
  forward(p: Params, x: Tensor, masks: MaeMaskInputs): MaeForwardOutput;
  /** Every parameter (official names) at the default resolution. */
  paramInfos(): Map<string, ParamInfo>;
  /** The names a Hiera classifier of the same encoder config also has (pos_embed, patch_embed, blocks). */
  encoderParamNames(): string[];
}

// Mask sampling and its graph feeds are their own idea (src/models/mae-mask.ts); re-exported for the MAE's callers.
export { lenKeepOf, maskIndexFeeds, randomMaskUnits } from './mae-mask.ts';
import { lenKeepOf } from './mae-mask.ts';

/**
 * hiera_mae.py `get_pixel_label_2d` + norm_pix: images [B, C, H, W] cut into sy x sx patches, each
 * flattened channel slowest (index c*sy*sx + py*sx + px), as [B, (H/sy)*(W/sx), C*sy*sx] row-major.
 * With `normPix`, each patch is normalised by its mean and its UNBIASED variance (torch
 * `label.var(dim=-1)` divides by n - 1) with eps 1e-6 inside the square root.
 */
export function pixelLabel(x: Tensor, stride: readonly [number, number], normPix: boolean): Tensor {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const [sy, sx] = stride;
  if (H % sy !== 0 || W % sx !== 0) throw new Error(`pixelLabel: image ${H}x${W} is not a whole number of ${sy}x${sx} patches`);
  const [ph, pw] = [H / sy, W / sx];
  // [B, C, ph, sy, pw, sx] -> [B, ph, pw, C, sy, sx] -> [B, L, C*sy*sx]
  const label = reshape(transpose(reshape(x, [B, C, ph, sy, pw, sx]), [0, 2, 4, 1, 3, 5]), [B, ph * pw, C * sy * sx]);
  if (!normPix) return label;
  const mean = reduceMean(label, -1, true);
  const v = variance(label, -1, true, true);
  return div(sub(label, mean), sqrt(add(v, 1e-6)));
}

/**
 * hiera_mae.py `forward_loss`: mean of (pred - label)^2 over the MASKED tokens (`predMask` [B, L]
 * 0) and every value of a token. The masked count is static (every sample masks the same number of
 * units), so this weighted sum equals the official boolean-indexed mean, gradient included.
 */
export function maskedMse(pred: Tensor, label: Tensor, predMask: Tensor, numMasked: number): Tensor {
  if (!(numMasked >= 1)) throw new Error(`maskedMse: there must be at least one masked token, got ${numMasked}`);
  const diff = sub(pred, label);
  const perToken = reduceSum(mul(diff, diff), -1); // [B, L]
  return div(reduceSum(mul(perToken, sub(1, predMask))), numMasked * pred.shape[pred.rank - 1]!);
}

/** torch Conv2d default init (U(+-1/sqrt(fan_in))), which hiera_mae.py leaves on the fusion heads. */
const fanIn = (n: number) => ({ kind: 'fanIn', fanIn: n }) as const;

/**
 * Position of each row-major token of one MU (r = y*MUx + x) inside the MU's block of our
 * mask-unit-contiguous order at a stage (the same for every MU; checked here).
 */
function withinUnitOrder(hs: number, ws: number, mu: [number, number], stride: [number, number], steps: number, nw: number): number[] {
  const order = hieraOrder(hs, ws, stride, steps, nw);
  const T = mu[0] * mu[1];
  const nx = ws / mu[1];
  let ref: number[] | null = null;
  for (let m = 0; m < nw; m++) {
    const my = Math.floor(m / nx), mx = m % nx;
    const perm: number[] = [];
    for (let y = 0; y < mu[0]; y++) for (let x = 0; x < mu[1]; x++) perm.push(order[(my * mu[0] + y) * ws + mx * mu[1] + x]! - m * T);
    if (ref && perm.some((v, i) => v !== ref![i])) throw new Error(`hiera-mae: mask unit ${m} is not a contiguous block of the unrolled order (grid ${hs}x${ws}, MU ${mu})`);
    if (perm.some((v) => v < 0 || v >= T)) throw new Error(`hiera-mae: mask unit ${m} tokens fall outside its block (grid ${hs}x${ws}, MU ${mu})`);
    ref ??= perm;
  }
  return ref!;
}

/** Builds the MAE from a Hiera preset name (see maeConfigFor) or a full config. */
export function createHieraMae(cfgOrPreset: HieraMaeConfig | string, overrides: { encoder?: Partial<HieraConfig> } & Partial<Omit<HieraMaeConfig, 'encoder'>> = {}): HieraMaeModel {
  const cfg: HieraMaeConfig = structuredClone(
    typeof cfgOrPreset === 'string'
      ? maeConfigFor(cfgOrPreset, overrides)
      : { ...cfgOrPreset, ...overrides, encoder: { ...cfgOrPreset.encoder, ...(overrides.encoder ?? {}) } },
  );
  const enc = cfg.encoder;
  const plan = hieraPlan(enc);
  const step = hieraSizeStep(enc);
  const S = enc.stages.length;
  if (cfg.decoderEmbedDim % cfg.decoderNumHeads !== 0) throw new Error(`hiera-mae: decoder width ${cfg.decoderEmbedDim} is not divisible by ${cfg.decoderNumHeads} heads`);
  for (const a of [0, 1] as const) {
    // After Unroll, token n belongs to MU n mod #MUs; that is a spatial block (the block the pixel
    // mask zeroes) only when the total unroll equals the MU size, as in every hiera_mae.py layout.
    if (enc.qStride[a] ** (S - 1) !== enc.maskUnitSize[a]) {
      throw new Error(`hiera-mae: mask unit ${enc.maskUnitSize.join('x')} must equal the total unroll q_stride^(stages-1) = ${enc.qStride.map((q) => q ** (S - 1)).join('x')} so that each mask unit is a block of the image; change maskUnitSize or the number of stages`);
    }
  }
  const muAt = (pools: number): [number, number] => [enc.maskUnitSize[0] / enc.qStride[0] ** pools, enc.maskUnitSize[1] / enc.qStride[1] ** pools];
  const muFinal = muAt(enc.qPool);
  const predStride: [number, number] = [enc.patchStride[0] * enc.qStride[0] ** enc.qPool, enc.patchStride[1] * enc.qStride[1] ** enc.qPool];
  // hiera_mae.py fuses intermediates[:q_pool] + intermediates[-1:].
  const fused = [...Array.from({ length: enc.qPool }, (_, i) => i), S - 1];

  const checkInputSize = (H: number, W: number): void => {
    if (Number.isInteger(H) && Number.isInteger(W) && H > 0 && W > 0 && H % step[0] === 0 && W % step[1] === 0) return;
    const [h0, h1] = nearestMultiples(H, step[0]);
    const [w0, w1] = nearestMultiples(W, step[1]);
    throw new Error(`hiera-mae: input ${H}x${W} is not supported: H must be a multiple of ${step[0]} and W of ${step[1]} (whole mask units of ${enc.maskUnitSize.join('x')} tokens at patch stride ${enc.patchStride.join('x')}); nearest sizes that work: H ${h0} or ${h1}, W ${w0} or ${w1}`);
  };

  const layoutAt = (H: number, W: number): MaeLayout => {
    checkInputSize(H, W);
    const grid = patchGrid(enc, H, W);
    const maskGrid: [number, number] = [grid[0] / enc.maskUnitSize[0], grid[1] / enc.maskUnitSize[1]];
    return {
      grid,
      maskGrid,
      numMaskUnits: maskGrid[0] * maskGrid[1],
      muSize: [...enc.maskUnitSize],
      muFinal,
      predGrid: [maskGrid[0] * muFinal[0], maskGrid[1] * muFinal[1]],
      predStride,
      predDim: predStride[0] * predStride[1] * enc.inChans,
    };
  };

  const decoderPlan = (i: number): HieraBlockPlan => ({
    index: i, stage: 0, dim: cfg.decoderEmbedDim, dimOut: cfg.decoderEmbedDim, heads: cfg.decoderNumHeads,
    qStride: 1, windowSize: 0, useMaskUnitAttn: false, dropPath: 0,
  });
  // Decoder blocks are plain HieraBlocks (no LayerScale even when the encoder has one).
  const decCfg: HieraConfig = { ...enc, layerScale: null, expandProj: true };

  const forward = (p: Params, x: Tensor, masks: MaeMaskInputs): MaeForwardOutput => {
    if (x.rank !== 4 || x.shape[1] !== enc.inChans) throw new Error(`hiera-mae forward: expected images [B, ${enc.inChans}, H, W], got [${x.shape}]`);
    const [B, Cin, H, W] = x.shape as [number, number, number, number];
    const L = layoutAt(H, W);
    const nw = L.numMaskUnits;
    const [my, mx] = L.maskGrid;
    const K = masks.keep.shape[1]!;
    if (masks.mask.shape.join() !== [B, nw].join() || masks.restore.shape.join() !== [B, nw].join() || masks.keep.shape[0] !== B) {
      throw new Error(`hiera-mae forward: at ${H}x${W} the mask inputs must be mask [${B}, ${nw}], keep [${B}, K], restore [${B}, ${nw}]; got [${masks.mask.shape}], [${masks.keep.shape}], [${masks.restore.shape}]`);
    }
    if (K < 1 || K >= nw) throw new Error(`hiera-mae forward: ${K} kept of ${nw} mask units; keep at least one and mask at least one`);
    const [h, w] = L.grid;
    const N = h * w;
    const T = N / nw;
    const C = enc.embedDim;

    // --- encoder input: x * mask upsampled (nearest) to pixels, BEFORE the patch conv.
    // [B, #MU] -> [B, 1, my, 1, mx, 1] -> [B, 1, my, H/my, mx, W/mx] -> [B, 1, H, W]
    const m6 = expandTo(reshape(masks.mask, [B, 1, my, 1, mx, 1]), [B, 1, my, H / my, mx, W / mx]);
    const xm = mul(x, reshape(m6, [B, 1, H, W]));
    const [kh, kw] = enc.patchKernel;
    const pw = p.param('patch_embed.proj.weight', [C, Cin, kh, kw], fanIn(Cin * kh * kw));
    const pb = p.param('patch_embed.proj.bias', [C], fanIn(Cin * kh * kw));
    const feat = conv2d(xm, pw, pb, { stride: enc.patchStride, padding: enc.patchPadding }); // [B, C, h, w]
    const pos = posEmbedGrid(p, enc, h, w); // [1, C, h, w]
    const withPos = add(reshape(feat, [B, C, N]), reshape(pos, [1, C, N]));
    // Unroll to our order ([B, N, C], MU m = rows [m*T, (m+1)*T)), then keep K whole MUs per sample.
    const toInternal = invertPermutation(hieraOrder(h, w, enc.qStride, plan.numUnrolls, nw));
    const unrolled = reshape(transpose(gather(withPos, 2, Array.from(toInternal)), [0, 2, 1]), [B, nw, T, C]);
    let t = reshape(gatherRows(unrolled, masks.keep), [B, K * T, C]);

    // --- encoder blocks on the kept MUs (mask-unit attention windows = the K kept MUs).
    const intermediates: Tensor[] = [];
    let stage = 0;
    for (const b of plan.blocks) {
      t = hieraBlock(p.scope(`blocks.${b.index}.`), t, b, enc, K, [undefined, undefined]);
      if (plan.stageEnds.includes(b.index)) {
        // Reroll with a mask: [B, K*T_s, C_s] -> [B, K, MUy_s, MUx_s, C_s], tokens of a MU row-major.
        const pools = Math.min(stage, enc.qPool);
        const mu = muAt(pools);
        const hs = h / enc.qStride[0] ** pools, ws = w / enc.qStride[1] ** pools;
        const perm = withinUnitOrder(hs, ws, mu, enc.qStride, plan.numUnrolls - pools, nw);
        const Ts = mu[0] * mu[1];
        intermediates.push(reshape(gather(reshape(t, [B, K, Ts, b.dimOut]), 2, perm), [B, K, mu[0], mu[1], b.dimOut]));
        stage++;
      }
    }

    // --- multi-scale fusion + encoder_norm -> latent [B, K, MUy_f, MUx_f, C_enc].
    const Cenc = plan.numFeatures;
    const [fy, fx] = muFinal;
    let sum: Tensor | null = null;
    fused.forEach((s, hi) => {
      const xi = intermediates[s]!;
      const [, , uy, ux, Ci] = xi.shape as [number, number, number, number, number];
      let yi: Tensor;
      if (s === S - 1) yi = xi; // nn.Identity: the last stage is already at the final MU size
      else {
        const k: [number, number] = [uy / fy, ux / fx];
        const name = `multi_scale_fusion_heads.${hi}`;
        const cw = p.param(`${name}.weight`, [Cenc, Ci, k[0], k[1]], fanIn(Ci * k[0] * k[1]));
        const cb = p.param(`${name}.bias`, [Cenc], fanIn(Ci * k[0] * k[1]));
        // per MU: [B*K, Ci, uy, ux] -> conv (kernel = stride = k) -> [B*K, Cenc, fy, fx] -> [B, K, fy, fx, Cenc]
        const nchw = transpose(reshape(xi, [B * K, uy, ux, Ci]), [0, 3, 1, 2]);
        const yc = conv2d(nchw, cw, cb, { stride: k, padding: [0, 0] });
        yi = reshape(transpose(yc, [0, 2, 3, 1]), [B, K, fy, fx, Cenc]);
      }
      sum = sum ? add(sum, yi) : yi;
    });
    const latent = layerNorm(p, 'encoder_norm', sum!, enc.normEps);

    // --- decoder input: embed kept tokens, put them back in MU order with mask_token elsewhere.
    const D = cfg.decoderEmbedDim;
    const Tf = fy * fx;
    const emb = linear(p, 'decoder_embed', reshape(latent, [B, K, Tf, Cenc]), Cenc, D); // [B, K, Tf, D]
    const maskToken = p.param('mask_token', [1, 1, D], truncNormal(0.02), { decay: false });
    const withToken = concat([emb, expandTo(reshape(maskToken, [1, 1, 1, D]), [B, 1, Tf, D])], 1); // [B, K+1, Tf, D]
    const units = gatherRows(withToken, masks.restore); // [B, #MU, Tf, D]
    // undo_windowing: [B, my, mx, fy, fx, D] -> [B, my, fy, mx, fx, D] -> [B, L, D] row-major
    const [ph, pwid] = L.predGrid;
    const tokens = reshape(transpose(reshape(units, [B, my, mx, fy, fx, D]), [0, 1, 3, 2, 4, 5]), [B, ph * pwid, D]);
    const [h0, w0] = [
      patchGrid(enc, enc.inputSize[0], enc.inputSize[1])[0] / enc.qStride[0] ** enc.qPool,
      patchGrid(enc, enc.inputSize[0], enc.inputSize[1])[1] / enc.qStride[1] ** enc.qPool,
    ];
    const dpe = p.param('decoder_pos_embed', [1, h0 * w0, D], truncNormal(0.02), { decay: false });
    const dpeAt = h0 === ph && w0 === pwid ? dpe : reshape(transpose(reshape(resampleGrid(tokensToGrid(dpe, h0, w0), ph, pwid, 'bicubic'), [1, D, ph * pwid]), [0, 2, 1]), [1, ph * pwid, D]);
    const decoderInput = add(tokens, dpeAt);

    // --- decoder: global-attention HieraBlocks, norm, pred.
    let d = decoderInput;
    for (let i = 0; i < cfg.decoderDepth; i++) d = hieraBlock(p.scope(`decoder_blocks.${i}.`), d, decoderPlan(i), decCfg, 1, [undefined, undefined]);
    d = layerNorm(p, 'decoder_norm', d, enc.normEps);
    const predFull = linear(p, 'decoder_pred', d, D, L.predDim); // [B, L, s*s*Cin]

    // --- loss on the masked tokens (the label comes from the ORIGINAL image, not the zeroed one).
    const label = pixelLabel(x, predStride, cfg.normPixLoss);
    // [B, #MU] -> [B, my, 1, mx, 1] -> [B, my, fy, mx, fx] -> [B, L]: each MU covers fy x fx tokens.
    const predMask = reshape(expandTo(reshape(masks.mask, [B, my, 1, mx, 1]), [B, my, fy, mx, fx]), [B, ph * pwid]);
    const loss = maskedMse(predFull, label, predMask, B * (nw - K) * Tf);
    return { loss, predFull, label, predMask, intermediates, latent, decoderInput };
  };

  const lenKeep = (H: number, W: number, ratio = cfg.maskRatio): number => lenKeepOf(layoutAt(H, W).numMaskUnits, ratio, 'hiera-mae lenKeep');

  let infos: Map<string, ParamInfo> | undefined;
  const paramInfos = (): Map<string, ParamInfo> => {
    infos ??= collectParams((p, g) => {
      const [H, W] = enc.inputSize;
      const nw = layoutAt(H, W).numMaskUnits;
      const K = Math.max(1, Math.min(nw - 1, Math.trunc(nw * (1 - cfg.maskRatio))));
      if (nw < 2) throw new Error(`hiera-mae: input ${H}x${W} has ${nw} mask unit; the MAE needs at least 2`);
      forward(p, g.input('__x', [1, enc.inChans, H, W]), {
        mask: g.input('__mask', [1, nw]),
        keep: g.input('__keep', [1, K], 'int64'),
        restore: g.input('__restore', [1, nw], 'int64'),
      });
    });
    return infos;
  };

  return {
    family: 'hiera-mae',
    config: cfg,
    plan,
    defaultRes: [enc.inputSize[0], enc.inputSize[1]],
    checkInputSize,
    layoutAt,
    lenKeep,
    forward,
    paramInfos,
    encoderParamNames: () => [...paramInfos().keys()].filter((n) => n === 'pos_embed' || n === 'pos_embed_window' || n === 'pos_embed_win' || n.startsWith('patch_embed.') || n.startsWith('blocks.')),
  };
}
