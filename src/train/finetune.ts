/**
 * Fine-tuning a checkpoint at a new resolution: the position embedding is converted by the SAME
 * library code as `anyres convert` (`convertWeights`, src/io/convert-weights.ts), then the trainer runs on
 * the converted model. Strategies (see convert.ts for the details and the papers):
 *
 * - 'interpolate': a learned absolute embedding is resampled to the new grid by the model's own rule
 *   (timm ViT: antialiased bicubic; Hiera: bicubic). Resolution-independent embeddings (abs-win,
 *   sin-cos, ResFormer GPE) are carried over unchanged.
 * - 'abswin': an original Hiera (learned absolute `pos_embed`) becomes an abs-win Hiera by the
 *   least-squares split into a window embedding (one mask unit) and a global one (Bolya et al. 2024,
 *   Sec. 4). A model that already is abs-win has nothing to split: both parts carry over.
 * - 'tile': a plain ViT becomes a ViTDet (`target`, a ViTDet preset): the ViT's learned grid is the
 *   window embedding tiled over the feature map (absolute win for detection, Sec. 5). ViTDet is a
 *   detection backbone without a classification head, so the classification trainer cannot fine-tune
 *   it: the caller writes the converted backbone instead (`anyres finetune` does).
 *
 * Video Hiera (`hiera-video`) follows the same rules on its separable embedding, as the paper does for
 * Kinetics: the temporal part `pos_embed_temporal` is interpolated linearly to the new clip length
 * (F.interpolate 'linear', align_corners=False, the forward's own rule); the spatial part is resampled
 * by the model's rule ('interpolate') or split into window + global by the image conversion
 * ('abswin', convertWeights on the spatial grid). 'tile' is for plain ViTs only.
 */
import type { Model } from '../models/types.ts';
import { type Weights, initWeights } from '../nn/params.ts';
import { createModel, familyOf } from '../models/registry.ts';
import type { HieraConfig } from '../models/hiera-config.ts';
import { patchGrid } from '../models/hiera-config.ts';
import { type HieraVideoConfig, createHieraVideo } from '../models/hiera-video.ts';
import { resample2d } from '../posembed/resample.ts';
import { Rng } from '../util/rng.ts';
import { convertWeights } from '../io/convert-weights.ts';

export type PosEmbedConversion = 'interpolate' | 'abswin' | 'tile';
export const POSEMBED_CONVERSIONS: readonly PosEmbedConversion[] = ['interpolate', 'abswin', 'tile'];

export interface ConversionOptions {
  /** 'tile': the ViTDet preset to build. */
  target?: string;
  /** 'abswin': grid of the global embedding (default: the config's `globalPosSize`). */
  globalSize?: [number, number];
  /** 'abswin': least-squares refinements (default: convert's 200). */
  iterations?: number;
  /** Video models: frames per clip of the fine-tuning data (default: the checkpoint's). */
  frames?: number;
}

export interface ConvertedForResolution {
  /** The converted model at the new resolution. */
  model: Model;
  /** Its parameters (name -> values), in the model's declaration order. */
  params: Map<string, Float32Array>;
  /** What was done, line by line (convertWeights' notes). */
  notes: string[];
  /** Whether `model` ends in a classification head the trainer can fine-tune. */
  classifier: boolean;
  /** 'abswin' from a learned embedding: ||learned - reconstruction|| / ||learned||. */
  relResidual?: number;
}

/** The model at `res` and the converted parameters; see the file comment for the strategies. */
export function convertForResolution(
  family: string,
  config: unknown,
  params: ReadonlyMap<string, Float32Array>,
  res: number,
  strategy: PosEmbedConversion,
  opts: ConversionOptions = {},
): ConvertedForResolution {
  if (!POSEMBED_CONVERSIONS.includes(strategy)) throw new Error(`finetune: --posembed-convert '${strategy}' is not one of ${POSEMBED_CONVERSIONS.join(', ')}`);
  const source = createModel({ family, config });
  // Clip models have a separable (spatial + temporal) embedding: the video rule below.
  if (source.inputKind === 'clip') return convertVideo(source.config as HieraVideoConfig, params, res, strategy, opts);
  if (opts.frames !== undefined && opts.frames !== 1) throw new Error(`finetune: the data has clips of ${opts.frames} frames but the checkpoint is a ${family} image model`);
  const table = familyOf(source);
  // A training checkpoint stores flat tensors; the source model gives every one its shape.
  const weights: Weights = new Map();
  for (const [name, info] of source.paramInfos()) {
    const v = params.get(name);
    const n = info.shape.reduce((a, b) => a * b, 1);
    if (!v || v.length !== n) throw new Error(`finetune: the checkpoint's '${name}' has ${v ? `${v.length} values` : 'no values'}; the ${family} model needs [${info.shape}] = ${n}`);
    weights.set(name, { data: v, shape: [...info.shape] });
  }
  let how: PosEmbedConversion = strategy;
  const notes: string[] = [];
  if (strategy === 'abswin' && table.usesAbsWin(source.config) && !table.learnedPosEmbed(source.config)) {
    // Already window + global: nothing to split; the resolution change carries both parts over.
    how = 'interpolate';
    notes.push('abswin: the checkpoint already uses absolute win (window + global embedding); nothing to split, both parts carried over to the new size');
  }
  const conv = convertWeights(source, weights, {
    posembedConvert: how,
    res: [res, res],
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    ...(opts.globalSize !== undefined ? { globalSize: opts.globalSize } : {}),
    ...(opts.iterations !== undefined ? { iterations: opts.iterations } : {}),
  });
  conv.model.checkInputSize(res, res);
  const out = new Map<string, Float32Array>();
  for (const name of conv.model.paramInfos().keys()) out.set(name, conv.weights.get(name)!.data);
  return {
    model: conv.model,
    params: out,
    notes: [...notes, ...conv.notes],
    classifier: familyOf(conv.model).classifier,
    ...(conv.relResidual !== undefined ? { relResidual: conv.relResidual } : {}),
  };
}

/** `[1, N, C]` tokens -> `[C, N]` planes (a 1 x N or h x w grid, channel-major). */
function tokensToPlanes(t: Float32Array, N: number, C: number): Float64Array {
  const g = new Float64Array(C * N);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) g[c * N + n] = t[n * C + c]!;
  return g;
}

function planesToTokens(g: ArrayLike<number>, N: number, C: number): Float32Array {
  const t = new Float32Array(N * C);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) t[n * C + c] = g[c * N + n]!;
  return t;
}

/** The image-Hiera config inside a video config (the spatial fields). */
function imageConfigOf(c: HieraVideoConfig): HieraConfig {
  const { inputFrames: _f, patchKernelT: _k, patchStrideT: _s, patchPaddingT: _p, ...image } = c;
  return structuredClone(image);
}

/** Video Hiera at a new size and clip length; see the file comment. */
function convertVideo(cfg: HieraVideoConfig, params: ReadonlyMap<string, Float32Array>, res: number, strategy: PosEmbedConversion, opts: ConversionOptions): ConvertedForResolution {
  if (strategy === 'tile') throw new Error("finetune: 'tile' turns a plain ViT into a ViTDet; a video Hiera converts by 'interpolate' or 'abswin'");
  const source = createHieraVideo(cfg);
  for (const [name, info] of source.paramInfos()) {
    const v = params.get(name);
    const n = info.shape.reduce((a, b) => a * b, 1);
    if (!v || v.length !== n) throw new Error(`finetune: the checkpoint's '${name}' has ${v ? `${v.length} values` : 'no values'}; the hiera-video model needs [${info.shape}] = ${n}`);
  }
  const C = cfg.embedDim;
  const frames = opts.frames ?? cfg.inputFrames;
  const notes: string[] = [];
  const out = new Map(params);
  let target: HieraVideoConfig = { ...structuredClone(cfg), inputSize: [res, res], inputFrames: frames };
  // Temporal: linear over token frames (the forward's rule at another clip length).
  const T0 = source.tokenFrames(cfg.inputFrames);
  const T1 = source.tokenFrames(frames);
  if (T0 !== T1) {
    const t = planesToTokens(resample2d(tokensToPlanes(params.get('pos_embed_temporal')!, T0, C), C, 1, T0, 1, T1, 'bilinear'), T1, C);
    out.set('pos_embed_temporal', t);
    notes.push(`interpolate: pos_embed_temporal [1, ${T0}, ${C}] -> [1, ${T1}, ${C}] (linear, ${cfg.inputFrames} -> ${frames} frames)`);
  } else notes.push(`temporal: pos_embed_temporal kept at ${T0} token frames (${frames} frames per clip)`);
  if (cfg.posEmbed === 'abswin') {
    notes.push(`${strategy === 'abswin' ? 'abswin' : 'interpolate'}: the spatial embedding is absolute win (window + global); both parts carried over to ${res} px`);
  } else if (strategy === 'interpolate') {
    const [h0, w0] = patchGrid(cfg, cfg.inputSize[0], cfg.inputSize[1]);
    const [h1, w1] = patchGrid(cfg, res, res);
    if (h0 !== h1 || w0 !== w1) {
      const g = resample2d(tokensToPlanes(params.get('pos_embed_spatial')!, h0 * w0, C), C, h0, w0, h1, w1, cfg.absResample);
      out.set('pos_embed_spatial', planesToTokens(g, h1 * w1, C));
      notes.push(`interpolate: pos_embed_spatial [1, ${h0 * w0}, ${C}] -> [1, ${h1 * w1}, ${C}] (${cfg.absResample} ${h0}x${w0} -> ${h1}x${w1})`);
    } else notes.push('interpolate: pos_embed_spatial is already at this grid');
  } else {
    // abswin: the image conversion on the spatial grid (the same least-squares split as `anyres convert`).
    const image = createModel({ family: 'hiera', config: imageConfigOf(cfg) });
    const w: Weights = initWeights(image.paramInfos(), new Rng(0));
    const sp = params.get('pos_embed_spatial')!;
    w.set('pos_embed', { data: sp, shape: [1, sp.length / C, C] });
    const conv = convertWeights(image, w, {
      posembedConvert: 'abswin', res: [res, res],
      ...(opts.globalSize !== undefined ? { globalSize: opts.globalSize } : {}),
      ...(opts.iterations !== undefined ? { iterations: opts.iterations } : {}),
    });
    const ic = conv.model.config as HieraConfig;
    target = { ...target, posEmbed: 'abswin', globalPosSize: [...ic.globalPosSize] };
    out.delete('pos_embed_spatial');
    out.set('pos_embed', conv.weights.get('pos_embed')!.data);
    out.set('pos_embed_window', conv.weights.get('pos_embed_window')!.data);
    notes.push(...conv.notes.map((n) => n.replace('learned pos_embed', 'learned pos_embed_spatial')));
    const model = createHieraVideo(target);
    return finishVideo(model, out, notes, conv.relResidual);
  }
  return finishVideo(createHieraVideo(target), out, notes);
}

function finishVideo(model: Model, params: Map<string, Float32Array>, notes: string[], relResidual?: number): ConvertedForResolution {
  const ordered = new Map<string, Float32Array>();
  for (const [name, info] of model.paramInfos()) {
    const v = params.get(name);
    const n = info.shape.reduce((a, b) => a * b, 1);
    if (!v || v.length !== n) throw new Error(`finetune: converted video weights lack '${name}' [${info.shape}] (got ${v ? `${v.length} values` : 'nothing'})`);
    ordered.set(name, v);
  }
  return { model, params: ordered, notes, classifier: true, ...(relResidual !== undefined ? { relResidual } : {}) };
}
