/**
 * Checkpoint conversion, the library behind `anyres convert`: bring a checkpoint to a new resolution or a new position-embedding scheme,
(the container-only conversion is src/io/convert-format.ts; the weight rules src/io/convert-weights.ts).
 *
 * Conversions (`--posembed-convert`):
 * - `interpolate` (default): the learned absolute embedding is resampled to the grid of `--res` by
 *   the model's own rule (timm ViT: bicubic with antialias, as `resample_abs_pos_embed`; official
 *   Hiera and ViTDet: bicubic, `F.interpolate(align_corners=False)`). The converted model at `--res`
 *   computes exactly what the original computes when fed `--res` images. Resolution-independent
 *   embeddings (abs-win, ResFormer's GPE) are copied; only the stored default size changes.
 * - `abswin`: an ORIGINAL Hiera (learned absolute `pos_embed [1, h·w, C]`) becomes an abs-win Hiera
 *   (Bolya et al. 2024, Sec. 4): `absWinFromLearned` splits the learned embedding into a window
 *   embedding (one mask unit, `pos_embed_window [1, C, wh, ww]`) and a global one
 *   (`pos_embed [1, C, gh, gw]`, `--global-size`, default the config's 7x7) such that
 *   `interpolate(global) + tile(window)` reproduces it in least squares. Assumptions: the learned
 *   embedding is a smooth field plus a pattern periodic in the mask unit (what the paper observes in
 *   window-attention models, Sec. 3 / Fig. 4); the per-channel constant goes to the global part. The
 *   split is exact (relative residual ~0) when the embedding is exactly tiled + global; otherwise the
 *   residual is reported and the converted model differs from the original at the pretrain size by
 *   that residual.
 * - `tile`: a plain ViT's learned embedding becomes the window embedding of a windowed backbone
 *   (`--target`, a ViTDet preset): ViTDet's abs-win recipe tiles the pretrained grid over the feature
 *   map (Sec. 5), with the ViT's blocks copied; ViTDet-only parameters (rel-pos tables, pyramid) are
 *   initialised and listed, the ViT's cls token, final norm and head are dropped and listed.
 *
 * The output is a safetensors file (official names, F32) written atomically, with `__metadata__`
 * `anyres.config` = `{family, config}` (read back by `modelFromCheckpointConfig` and `anyres export`).
 *
 * @example
 * // anyres convert --from hiera_tiny_224.pth --model hiera-tiny --to hiera-tiny-abswin.safetensors --posembed-convert abswin
 * const r = convertCheckpoint({ from: 'in.safetensors', to: 'out.safetensors', res: [96, 96], posembedConvert: 'interpolate' });
 */
import * as path from 'node:path';
import type { Model } from '../models/types.ts';
import { checkpointConfigOf } from '../models/registry.ts';
import { saveSafetensors } from '../io/safetensors.ts';
import { loadWeightsFromTensors } from '../io/load-model.ts';
import { readAnyCheckpoint } from '../io/read-checkpoint.ts';
import { type Layout, toLayout } from '../io/layouts.ts';
import { type TorchSaveValue, savePth } from '../io/pth-write.ts';
import { outputFormatOf } from '../io/convert-format.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { LAST_JSON, saveCheckpoint } from '../io/train-checkpoint.ts';
import { type ConvertWeightsOptions, type ConvertedWeights, asTensors, convertWeights, sourceModelOf } from '../io/convert-weights.ts';
import { stateFromParams } from './state.ts';

export interface ConvertOptions extends ConvertWeightsOptions {
  from: string;
  to: string;
  /** Source model: preset, inline JSON or JSON file; default the checkpoint's recorded spec. */
  model?: string;
  numClasses?: number;
  /** Missing/unexpected keys in the SOURCE load are errors (default true). */
  strict?: boolean;
  sourceGrid?: [number, number];
  /** Write the key names and nesting of this source's code (src/io/layouts.ts) instead of ours. */
  layout?: Layout;
  /**
   * Write `to` as a training run directory (last.json + ckpt-0.safetensors, fresh optimizer
   * moments) that `anyres finetune --from` / `train --resume` start from.
   */
  run?: boolean;
}

export interface ConvertResult extends ConvertedWeights {
  source: Model;
  /** Load report of the source checkpoint. */
  report: string;
  /** What the output file holds (layout and container). */
  wrote: string;
}

/** Reads `from` (any checkpoint: src/io/read-checkpoint.ts), converts, writes `to` (atomically) in our names or `layout`. */
export function convertCheckpoint(o: ConvertOptions): ConvertResult {
  const ck = readAnyCheckpoint(o.from);
  const { tensors, metadata } = ck;
  const source = o.model !== undefined || !ck.spec ? sourceModelOf(o.model, metadata, o.from, o.numClasses) : sourceModelOf(undefined, { 'anyres.config': JSON.stringify(ck.spec) }, o.from, o.numClasses);
  const loaded = loadWeightsFromTensors(source, tensors, { strict: o.strict ?? true, ...(o.sourceGrid ? { sourceGrid: o.sourceGrid } : {}) }, metadata, o.from);
  const conv = convertWeights(source, loaded.weights, o);
  const meta: Record<string, string> = {};
  // Keep what describes the data (class names, normalisation) from an anyres source.
  for (const k of ['anyres.classes', 'anyres.dataset', 'anyres.normalization', 'anyres.train_res']) if (metadata[k] !== undefined) meta[k] = metadata[k]!;
  // An official checkpoint was trained on ImageNet-normalised inputs (timm IMAGENET_DEFAULT_MEAN/STD);
  // recording it keeps `predict` / `export` of the converted file right.
  if (ck.origin === 'foreign' && meta['anyres.normalization'] === undefined) meta['anyres.normalization'] = JSON.stringify({ mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] });
  Object.assign(meta, {
    'anyres.config': JSON.stringify(checkpointConfigOf(conv.model)),
    'anyres.converted_from': path.basename(o.from),
    'anyres.source': loaded.detection.source,
    'anyres.posembed_convert': o.posembedConvert ?? 'interpolate',
    ...(conv.relResidual !== undefined ? { 'anyres.abswin_rel_residual': String(conv.relResidual) } : {}),
  });
  const ours = asTensors(conv.weights);
  const fmt = outputFormatOf(o.to);
  let wrote: string;
  if (o.run) {
    if (o.layout) throw new Error('convert: --run writes an anyres training run; it cannot be combined with --layout');
    const run: Record<string, unknown> = { convertedFrom: path.resolve(o.from), posembedConvert: o.posembedConvert ?? 'interpolate' };
    if (meta['anyres.dataset'] !== undefined) run['data'] = meta['anyres.dataset'];
    if (meta['anyres.train_res'] !== undefined) run['resolutions'] = JSON.parse(meta['anyres.train_res']) as unknown;
    saveCheckpoint(o.to, stateFromParams(new Map([...conv.weights].map(([k, v]) => [k, v.data]))), {
      model: { family: conv.model.family, config: conv.model.config }, run, epoch: 0, stepInEpoch: 0, rng: {},
    });
    return { ...conv, source, report: loaded.report, wrote: `a training run directory (${LAST_JSON} + ckpt-0.safetensors) for 'anyres finetune --from ${o.to}'` };
  }
  if (o.layout) {
    const l = toLayout(conv.model, ours, o.layout);
    meta['anyres.layout'] = o.layout;
    if (fmt === 'pth') savePth(o.to, l.root);
    else saveSafetensors(o.to, l.flat, meta);
    wrote = `${o.layout} layout (${l.note}) as ${fmt}`;
  } else {
    if (fmt === 'pth') savePth(o.to, ours as Map<string, TorchSaveValue>);
    else saveSafetensors(o.to, ours, meta);
    wrote = fmt === 'pth' ? 'anyres (official) names as a torch.save zip' : 'anyres safetensors with anyres.config';
  }
  return { ...conv, source, report: loaded.report, wrote };
}
