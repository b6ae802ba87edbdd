/**
 * Classification models the trainer can build, by preset name or by (family, config) as a
 * checkpoint stores them. Dispatch is on the family recorded in the config, never on a name.
 */
import type { Model } from '../models/types.ts';
import { type VitConfig, createVit, vitPresets } from '../models/vit.ts';
import { type HieraConfig, createHiera, hieraPresets } from '../models/hiera.ts';
import { type HieraVideoConfig, createHieraVideo, hieraVideoPresets } from '../models/hiera-video.ts';

export type TrainFamily = 'vit' | 'resformer' | 'hiera' | 'hiera-video';

/** Every trainable preset name. */
export function trainPresetNames(): string[] {
  return [...Object.keys(vitPresets), ...Object.keys(hieraPresets), ...Object.keys(hieraVideoPresets)];
}

/** A model from a preset with overrides (numClasses, image size, drop path...). */
export function modelFromPreset(name: string, overrides: { numClasses?: number; res?: number; dropPathRate?: number; posEmbed?: string; frames?: number } = {}): Model {
  if (overrides.frames !== undefined && overrides.frames !== 1 && !hieraVideoPresets[name]) {
    throw new Error(`model '${name}' takes images but the data has clips of ${overrides.frames} frames; use a video preset (${Object.keys(hieraVideoPresets).join(', ')})`);
  }
  if (vitPresets[name]) {
    const o: Partial<VitConfig> = {};
    if (overrides.posEmbed !== undefined) {
      const valid = ['learned', 'sincos', 'resformer'];
      if (!valid.includes(overrides.posEmbed)) throw new Error(`model '${name}': --posembed '${overrides.posEmbed}' is not one of ${valid.join(', ')} for ViT presets`);
      o.posEmbed = overrides.posEmbed as VitConfig['posEmbed'];
      o.lpe = overrides.posEmbed === 'resformer';
    }
    if (overrides.numClasses !== undefined) o.numClasses = overrides.numClasses;
    if (overrides.res !== undefined) o.imgSize = [overrides.res, overrides.res];
    if (overrides.dropPathRate !== undefined) o.dropPathRate = overrides.dropPathRate;
    return createVit(name, o);
  }
  if (hieraPresets[name]) {
    const o: Partial<HieraConfig> = {};
    if (overrides.posEmbed !== undefined) {
      const valid = ['absolute', 'abswin'];
      if (!valid.includes(overrides.posEmbed)) throw new Error(`model '${name}': --posembed '${overrides.posEmbed}' is not one of ${valid.join(', ')} for Hiera presets`);
      o.posEmbed = overrides.posEmbed as HieraConfig['posEmbed'];
    }
    if (overrides.numClasses !== undefined) o.numClasses = overrides.numClasses;
    if (overrides.res !== undefined) o.inputSize = [overrides.res, overrides.res];
    // hiera.py: drop_path_rate, linear over the blocks (the same rule as the trainer's masks).
    if (overrides.dropPathRate !== undefined) o.dropPathRate = overrides.dropPathRate;
    return createHiera(name, o);
  }
  if (hieraVideoPresets[name]) {
    const o: Partial<HieraVideoConfig> = {};
    if (overrides.posEmbed !== undefined) {
      const valid = ['absolute', 'abswin'];
      if (!valid.includes(overrides.posEmbed)) throw new Error(`model '${name}': --posembed '${overrides.posEmbed}' is not one of ${valid.join(', ')} for video Hiera presets`);
      o.posEmbed = overrides.posEmbed as HieraVideoConfig['posEmbed'];
    }
    if (overrides.numClasses !== undefined) o.numClasses = overrides.numClasses;
    if (overrides.res !== undefined) o.inputSize = [overrides.res, overrides.res];
    // The temporal embedding is stored for the clips it is trained on.
    if (overrides.frames !== undefined) o.inputFrames = overrides.frames;
    if (overrides.dropPathRate !== undefined) o.dropPathRate = overrides.dropPathRate;
    return createHieraVideo(name, o);
  }
  throw new Error(`unknown model preset '${name}'; valid presets: ${trainPresetNames().join(', ')}`);
}
