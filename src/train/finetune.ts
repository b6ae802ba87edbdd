/**
 * Fine-tuning a checkpoint at a new resolution: the position embedding is converted by the SAME
 * library code as `anyres convert` (`convertWeights`, src/cli/convert.ts), then the trainer runs on
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
 */
import type { Model } from '../models/types.ts';
import type { Weights } from '../nn/params.ts';
import { createModel } from '../models/registry.ts';
import { convertWeights } from '../cli/convert.ts';

export type PosEmbedConversion = 'interpolate' | 'abswin' | 'tile';
export const POSEMBED_CONVERSIONS: readonly PosEmbedConversion[] = ['interpolate', 'abswin', 'tile'];

export interface ConversionOptions {
  /** 'tile': the ViTDet preset to build. */
  target?: string;
  /** 'abswin': grid of the global embedding (default: the config's `globalPosSize`). */
  globalSize?: [number, number];
  /** 'abswin': least-squares refinements (default: convert's 200). */
  iterations?: number;
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

/** Families whose models end in a classification head (what `train`/`finetune` can train). */
const CLASSIFIER_FAMILIES = new Set(['vit', 'resformer', 'hiera', 'hiera-video']);

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
  if (strategy === 'abswin' && family === 'hiera' && (config as { posEmbed?: string }).posEmbed === 'abswin') {
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
    classifier: CLASSIFIER_FAMILIES.has(conv.model.family),
    ...(conv.relResidual !== undefined ? { relResidual: conv.relResidual } : {}),
  };
}
