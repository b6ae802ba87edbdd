/**
 * Video Hiera (facebookresearch/hiera `hiera.py` with 3-D settings, e.g. `hiera_base_16x224`:
 * Conv3d patch embed (3,7,7)/(2,4,4)/(1,3,3), q_stride (1,2,2), mask units (1,8,8), sep_pos_embed).
 *
 * Two observations make it the image model:
 * - The Conv3d is a Conv2d over the temporal taps stacked as channels: output frame t' sees the
 *   (zero-padded) frames t'*sT + j, j < kT, so we gather those frames, concatenate them on the
 *   channel axis (tap-major) and convolve with the weight reshaped [Co, kT*C, kh, kw].
 * - With temporal strides all 1 (q_stride (1, 2, 2), mask unit (1, 8, 8)), the official 3-D Unroll
 *   of a T' x h x w grid equals the 2-D Unroll of the frames stacked along the height, a (T'*h) x w
 *   grid: h is a multiple of the total unroll, so the low digits of y = t*h + row are those of row
 *   and the remaining coarse row is t*(h/8) + row/8. Windows, pooling and Reroll follow. So the
 *   block stack is `hieraTrunk` on the stacked grid and stage outputs reshape to [B, T', h_s, w_s, C].
 *
 * Position embedding (sep_pos_embed): `pos[t, y, x] = spatial[y, x] + pos_embed_temporal[t]`
 * (hiera.py `get_pos_embed`). The official code never resizes them; at another clip size the
 * temporal part is interpolated linearly (F.interpolate 'linear', align_corners=False) and the
 * spatial part
 * - `posEmbed: 'absolute'` (official `pos_embed_spatial [1, h0*w0, C]`): resampled bicubic, the
 *   image 'absolute' baseline;
 * - `posEmbed: 'abswin'`: absolute win, which Bolya et al. 2024 also apply to video Hiera
 *   (Kinetics-400): a window embedding of one mask unit (`pos_embed_window [1, C, 8, 8]`) tiled over
 *   each frame plus a global one (`pos_embed [1, C, gh, gw]`) interpolated to it, the image abs-win
 *   rule (`posEmbedGrid`, hiera.ts); the temporal part stays separate and linear.
 *
 * Input: clips `[B, 3, T, H, W]` (NCTHW), any T >= 1 and any H, W the image model takes; T input
 * frames give `floor((T + 2*padT - kT) / sT) + 1` token frames.
 */
import { type Tensor, add, concat, conv2d, padAxis, reshape, slice, transpose } from '../graph/index.ts';
import { type ParamInfo, type Params, collectParams, truncNormal } from '../nn/params.ts';
import { resampleGrid, tokensToGrid } from '../posembed/graph.ts';
import { type ForwardOutput, type Model } from './types.ts';
import { type HieraConfig, type HieraPlan, hieraPlan, hieraPresets, patchGrid } from './hiera-config.ts';
import { type HieraForwardOptions, createHiera, hieraHead, hieraTrunk, posEmbedGrid } from './hiera.ts';
import { presetOrConfig } from './preset.ts';

export interface HieraVideoConfig extends HieraConfig {
  /** Frames the temporal embedding is stored for (official input_size[0]). */
  inputFrames: number;
  /** Temporal kernel, stride and padding of the Conv3d patch embedding. */
  patchKernelT: number;
  patchStrideT: number;
  patchPaddingT: number;
}

/** The temporal settings of every official video model (hiera.py `hiera_base_16x224`). */
const video16 = { numClasses: 400, inputFrames: 16, patchKernelT: 3, patchStrideT: 2, patchPaddingT: 1 };

/**
 * facebookresearch/hiera `hiera.py` video models: `hiera_{base,base_plus,large,huge}_16x224`
 * (16 frames at 224 px, Kinetics-400 head; q_stride (1,2,2), mask unit (1,8,8), patch kernel
 * (3,7,7) / stride (2,4,4) / padding (1,3,3), sep_pos_embed). Their spatial fields are the image
 * models' (`hiera_base_16x224` builds `Hiera(...)` with the image defaults; the others override
 * embed_dim, num_heads, stages like their image counterparts). Time is never pooled.
 * `hiera-video-mini` (+ `-abswin`) are ours: 8 frames at 32 px, 4 motion classes, for CPU runs.
 */
export const hieraVideoPresets: Record<string, HieraVideoConfig> = {
  'hiera-base-16x224': { ...hieraPresets['hiera-base']!, ...video16 },
  'hiera-base-plus-16x224': { ...hieraPresets['hiera-base-plus']!, ...video16 },
  'hiera-large-16x224': { ...hieraPresets['hiera-large']!, ...video16 },
  'hiera-huge-16x224': { ...hieraPresets['hiera-huge']!, ...video16 },
  'hiera-video-mini': { ...hieraPresets['hiera-mini']!, ...video16, numClasses: 4, inputFrames: 8, inputSize: [32, 32] },
  'hiera-video-mini-abswin': { ...hieraPresets['hiera-mini-abswin']!, ...video16, numClasses: 4, inputFrames: 8, inputSize: [32, 32] },
};

export interface HieraVideoModel extends Model<HieraVideoConfig> {
  readonly family: 'hiera-video';
  readonly inputKind: 'clip';
  readonly plan: HieraPlan;
  /** Token frames T' for T input frames (Conv3d arithmetic). */
  tokenFrames(T: number): number;
  /**
   * Clips x [B, C_in, T, H, W] -> logits [B, numClasses] (pre-softmax), preLogits, aux:
   * `pos_embed` [1, C, h, w] (the spatial part), `pos_embed_tokens` [1, T'*h*w, C] (official get_pos_embed) and `intermediates.<s>` [B, T', h_s, w_s, C_s].
   */
  forward(p: Params, x: Tensor, opts?: HieraForwardOptions): ForwardOutput;
}

export function createHieraVideo(cfgOrName: HieraVideoConfig | string, overrides: Partial<HieraVideoConfig> = {}): HieraVideoModel {
  const baseCfg = presetOrConfig(cfgOrName, hieraVideoPresets, 'createHieraVideo');
  const cfg: HieraVideoConfig = structuredClone({ ...baseCfg, ...overrides });
  if (cfg.posEmbed !== 'absolute' && cfg.posEmbed !== 'abswin') throw new Error(`createHieraVideo: posEmbed must be 'absolute' (official sep_pos_embed) or 'abswin', got '${String(cfg.posEmbed)}'`);
  if (!Number.isInteger(cfg.inputFrames) || cfg.inputFrames < 1) throw new Error(`createHieraVideo: inputFrames must be a positive integer, got ${cfg.inputFrames}`);
  const image = createHiera(cfg); // validates the spatial layout and gives the size check
  const plan: HieraPlan = hieraPlan(cfg);
  const tokenFrames = (T: number): number => Math.floor((T + 2 * cfg.patchPaddingT - cfg.patchKernelT) / cfg.patchStrideT) + 1;

  const forward = (p: Params, x: Tensor, opts: HieraForwardOptions = {}): ForwardOutput => {
    if (x.rank !== 5 || x.shape[1] !== cfg.inChans) throw new Error(`hiera video forward: expected clips [B, ${cfg.inChans}, T, H, W], got [${x.shape}]`);
    const [B, Cin, T, H, W] = x.shape as [number, number, number, number, number];
    image.checkInputSize(H, W);
    const Tp = tokenFrames(T);
    if (Tp < 1) throw new Error(`hiera video forward: ${T} frames give no token frame with temporal kernel ${cfg.patchKernelT}, stride ${cfg.patchStrideT}`);
    const [h, w] = patchGrid(cfg, H, W);
    const C = cfg.embedDim;
    const kT = cfg.patchKernelT;
    const [kh, kw] = cfg.patchKernel;
    const fan = Cin * kT * kh * kw;
    const w3 = p.param('patch_embed.proj.weight', [C, Cin, kT, kh, kw], { kind: 'fanIn', fanIn: fan });
    const b3 = p.param('patch_embed.proj.bias', [C], { kind: 'fanIn', fanIn: fan });
    // Conv3d as one Conv2d: temporal taps stacked on channels (tap-major), frames folded into the batch.
    const xp = padAxis(x, 2, cfg.patchPaddingT, cfg.patchPaddingT);
    const s = cfg.patchStrideT;
    const taps = Array.from({ length: kT }, (_, j) => slice(xp, 2, j, j + s * (Tp - 1) + 1, s)); // kT x [B, Cin, T', H, W]
    const stacked = reshape(transpose(concat(taps, 1), [0, 2, 1, 3, 4]), [B * Tp, kT * Cin, H, W]);
    const w2 = reshape(transpose(w3, [0, 2, 1, 3, 4]), [C, kT * Cin, kh, kw]);
    const feat = conv2d(stacked, w2, b3, { stride: cfg.patchStride, padding: cfg.patchPadding }); // [B*T', C, h, w]
    const tokens = transpose(reshape(feat, [B, Tp, C, h * w]), [0, 2, 1, 3]); // [B, C, T', h*w]

    // sep_pos_embed: spatial (stored [1, h0*w0, C], or abs-win window + global) + temporal [1, T0', C].
    const T0 = tokenFrames(cfg.inputFrames);
    let spatialGrid: Tensor; // [1, C, h, w]
    if (cfg.posEmbed === 'abswin') spatialGrid = posEmbedGrid(p, cfg, h, w);
    else {
      const [h0, w0] = patchGrid(cfg, cfg.inputSize[0], cfg.inputSize[1]);
      const sp = p.param('pos_embed_spatial', [1, h0 * w0, C], truncNormal(0.02), { decay: false });
      spatialGrid = resampleGrid(tokensToGrid(sp, h0, w0), h, w, cfg.absResample);
    }
    const tp = p.param('pos_embed_temporal', [1, T0, C], truncNormal(0.02), { decay: false });
    const spatial = reshape(spatialGrid, [1, C, 1, h * w]);
    const temporal = reshape(resampleGrid(tokensToGrid(tp, 1, T0), 1, Tp, 'bilinear'), [1, C, Tp, 1]);
    const pos = add(spatial, temporal); // [1, C, T', h*w]
    const withPos = reshape(add(tokens, pos), [B, C, Tp * h * w]);

    const { tokens: out, intermediates } = hieraTrunk(p, withPos, cfg, plan, [Tp * h, w], opts);
    const aux: Record<string, Tensor> = { pos_embed: spatialGrid, pos_embed_tokens: transpose(reshape(pos, [1, C, Tp * h * w]), [0, 2, 1]) };
    intermediates.forEach((t, i) => {
      const [, hs, ws, Cs] = t.shape as [number, number, number, number];
      aux[`intermediates.${i}`] = reshape(t, [B, Tp, hs / Tp, ws, Cs]);
    });
    const { logits, preLogits } = hieraHead(p, out, cfg, plan);
    return { logits, preLogits, aux };
  };

  let infos: Map<string, ParamInfo> | undefined;
  return {
    family: 'hiera-video',
    inputKind: 'clip',
    config: cfg,
    plan,
    defaultRes: [cfg.inputSize[0], cfg.inputSize[1]],
    tokenFrames,
    forward,
    checkInputSize: image.checkInputSize,
    paramInfos: () => {
      infos ??= collectParams((p, g) => {
        forward(p, g.input('__x', [1, cfg.inChans, cfg.inputFrames, cfg.inputSize[0], cfg.inputSize[1]]));
      });
      return infos;
    },
  };
}
