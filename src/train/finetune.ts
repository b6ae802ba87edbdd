/**
 * Fine-tuning a checkpoint at a new resolution: rebuild the model for the new size and convert its
 * position embedding by a named strategy (src/posembed/convert.ts):
 *
 * - 'interpolate': a learned absolute embedding (ViT `pos_embed` with its prefix tokens, Hiera
 *   'absolute') is resampled to the new grid and stored there (timm checkpoint_filter_fn).
 * - 'abswin': for a model whose embedding is already absolute-win (Hiera 'abswin': window tiled,
 *   global interpolated) both parts are stored at sizes independent of the input, so nothing is
 *   converted: the new model only records the new input size (Bolya et al. 2024, Sec. 4).
 * - 'tile': a plain ViT's grid becoming a window embedding changes the architecture family (a
 *   windowed backbone such as ViTDet with abs-win); within one family there is nothing to tile,
 *   so it is refused here with a pointer to `tilePosEmbed`.
 */
import type { Model } from '../models/types.ts';
import type { VitConfig } from '../models/vit.ts';
import type { HieraConfig } from '../models/hiera.ts';
import { interpolatePosEmbed, type WeightsMap } from '../posembed/convert.ts';
import { withResolution } from './models.ts';

export type PosEmbedConversion = 'interpolate' | 'abswin' | 'tile';
export const POSEMBED_CONVERSIONS: readonly PosEmbedConversion[] = ['interpolate', 'abswin', 'tile'];

/** The model at `res` and the converted parameters (name → values). */
export function convertForResolution(
  family: string,
  config: unknown,
  params: ReadonlyMap<string, Float32Array>,
  res: number,
  strategy: PosEmbedConversion,
): { model: Model; params: Map<string, Float32Array> } {
  if (!POSEMBED_CONVERSIONS.includes(strategy)) throw new Error(`finetune: --posembed-convert '${strategy}' is not one of ${POSEMBED_CONVERSIONS.join(', ')}`);
  const model = withResolution(family, config, res);
  model.checkInputSize(res, res);
  const infos = model.paramInfos();
  const weights: WeightsMap = new Map();
  for (const [k, v] of params) weights.set(k, { data: v, shape: [v.length] });
  let out: WeightsMap = weights;
  if (strategy === 'tile') {
    throw new Error(`finetune: 'tile' turns a plain ViT grid into the window embedding of a windowed backbone (another family); ${family} keeps its family here. Use tilePosEmbed (src/posembed/convert.ts) to build such a checkpoint, or pick 'interpolate'${family === 'hiera' ? " or 'abswin'" : ''}`);
  }
  if (family === 'vit' || family === 'resformer') {
    const c = config as VitConfig;
    if (c.posEmbed !== 'learned') {
      // sin-cos / ResFormer GPE are computed for any grid: no stored grid to convert.
    } else if (strategy === 'abswin') {
      throw new Error(`finetune: 'abswin' needs an abs-win embedding, but this ${family} has a learned absolute pos_embed; use 'interpolate'`);
    } else {
      const P = c.patchSize;
      const from = { prefix: c.classToken ? 1 : 0, grid: [c.imgSize[0] / P, c.imgSize[1] / P] as [number, number] };
      const pe = weights.get('pos_embed')!;
      weights.set('pos_embed', { data: pe.data, shape: [1, from.prefix + from.grid[0] * from.grid[1], pe.data.length / (from.prefix + from.grid[0] * from.grid[1])] });
      out = interpolatePosEmbed(weights, from, [res / P, res / P], c.posEmbedResample);
    }
  } else if (family === 'hiera') {
    const c = config as HieraConfig;
    if (c.posEmbed === 'abswin') {
      if (strategy === 'interpolate') {
        throw new Error("finetune: this Hiera uses abs-win (window tiled + global interpolated); both parts are resolution independent, use 'abswin'");
      }
    } else if (strategy === 'abswin') {
      throw new Error("finetune: 'abswin' needs a Hiera built with posEmbed 'abswin'; this one has a learned absolute embedding, use 'interpolate'");
    } else {
      const from = { prefix: 0, grid: [c.inputSize[0] / c.patchStride[0], c.inputSize[1] / c.patchStride[1]] as [number, number] };
      const pe = weights.get('pos_embed')!;
      weights.set('pos_embed', { data: pe.data, shape: [1, from.grid[0] * from.grid[1], pe.data.length / (from.grid[0] * from.grid[1])] });
      out = interpolatePosEmbed(weights, from, [res / c.patchStride[0], res / c.patchStride[1]], c.absResample);
    }
  } else {
    throw new Error(`finetune: family '${family}' is not supported (vit, resformer, hiera)`);
  }
  const result = new Map<string, Float32Array>();
  for (const [name, info] of infos) {
    const w = out.get(name);
    const n = info.shape.reduce((a, b) => a * b, 1);
    if (!w || w.data.length !== n) throw new Error(`finetune: converted weights lack '${name}' [${info.shape}] for the ${res}px model (got ${w ? w.data.length + ' values' : 'nothing'})`);
    result.set(name, w.data);
  }
  return { model, params: result };
}
