/**
 * Classification models the trainer can build, by preset name or by (family, config) as a
 * checkpoint stores them. Dispatch is on the family recorded in the config, never on a name.
 */
import type { Model } from '../models/types.ts';
import { type VitConfig, createVit, vitPresets } from '../models/vit.ts';
import { type HieraConfig, createHiera, hieraPresets } from '../models/hiera.ts';

export type TrainFamily = 'vit' | 'resformer' | 'hiera';

/** Every trainable preset name. */
export function trainPresetNames(): string[] {
  return [...Object.keys(vitPresets), ...Object.keys(hieraPresets)];
}

/** A model from a preset with overrides (numClasses, image size, drop path...). */
export function modelFromPreset(name: string, overrides: { numClasses?: number; res?: number; dropPathRate?: number } = {}): Model {
  if (vitPresets[name]) {
    const o: Partial<VitConfig> = {};
    if (overrides.numClasses !== undefined) o.numClasses = overrides.numClasses;
    if (overrides.res !== undefined) o.imgSize = [overrides.res, overrides.res];
    if (overrides.dropPathRate !== undefined) o.dropPathRate = overrides.dropPathRate;
    return createVit(name, o);
  }
  if (hieraPresets[name]) {
    const o: Partial<HieraConfig> = {};
    if (overrides.numClasses !== undefined) o.numClasses = overrides.numClasses;
    if (overrides.res !== undefined) o.inputSize = [overrides.res, overrides.res];
    if (overrides.dropPathRate) throw new Error(`model '${name}': drop path is not supported for Hiera here; use --drop-path 0`);
    return createHiera(name, o);
  }
  throw new Error(`unknown model preset '${name}'; valid presets: ${trainPresetNames().join(', ')}`);
}

/** Rebuilds a model from the family and config a checkpoint stored. */
export function modelFromSpec(family: string, config: unknown): Model {
  if (typeof config !== 'object' || config === null) throw new Error(`checkpoint model config must be an object, got ${JSON.stringify(config)}`);
  switch (family) {
    case 'vit':
    case 'resformer':
      return createVit(config as VitConfig);
    case 'hiera':
      return createHiera(config as HieraConfig);
    default:
      throw new Error(`checkpoint model family '${family}' cannot be trained here (supported: vit, resformer, hiera)`);
  }
}
