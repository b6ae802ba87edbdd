/**
 * What makes a training checkpoint's tensor file (`ckpt-<step>.safetensors`) self-describing, so
 * any command can rebuild the model from that file alone (no `last.json` needed): each parameter
 * (and its AdamW moments) stored with its real shape, and `__metadata__` holding the model spec
 * (`anyres.config`), the dataset, the training resolutions and the input normalisation.
 *
 * Shapes come from the model the spec builds; a spec the registry cannot build (an MAE pretraining
 * model) keeps flat shapes, as before.
 */
import { createModel } from '../models/registry.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';

/** Parameter name -> shape of the model `spec` describes, or an empty map when it cannot be built. */
export function paramShapesOf(spec: { family: string; config: unknown }): Map<string, number[]> {
  try {
    const model = createModel({ family: spec.family, config: spec.config });
    return new Map([...model.paramInfos()].map(([k, v]) => [k, [...v.shape]]));
  } catch {
    return new Map();
  }
}

/** The `__metadata__` entries of a training checkpoint's tensor file. */
export function checkpointMetadataOf(spec: { family: string; config: unknown; preset?: string }, run: Record<string, unknown>): Record<string, string> {
  const meta: Record<string, string> = {
    'anyres.config': JSON.stringify({ family: spec.family, config: spec.config }),
    // The trainer's loaders normalise with the ImageNet statistics (src/data/transforms.ts normalize()).
    'anyres.normalization': JSON.stringify({ mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }),
  };
  if (spec.preset !== undefined) meta['anyres.preset'] = spec.preset;
  if (typeof run['data'] === 'string') meta['anyres.dataset'] = run['data'];
  if (Array.isArray(run['resolutions'])) meta['anyres.train_res'] = JSON.stringify(run['resolutions']);
  return meta;
}
