/**
 * Weight conversion between resolutions and position-embedding schemes (`interpolate`, `abswin`,
 * `tile`), the library part of `anyres convert` (src/cli/convert.ts documents the rules) and of
 * fine-tuning at a new size (src/train/finetune.ts).
 */
import type { Model } from '../models/types.ts';
import { type HieraConfig, patchGrid } from '../models/hiera-config.ts';
import type { VitConfig } from '../models/vit.ts';
import type { VitDetConfig } from '../models/vitdet.ts';
import { createModel, familyOf, modelFromCheckpointConfig, parseModelSpec, presetNames } from '../models/registry.ts';
import type { Weights } from '../nn/params.ts';
import { absWinFromLearned } from '../posembed/abswin.ts';
import { type Grid, tokensToGrid } from '../posembed/reference.ts';
import type { NamedTensor } from './safetensors.ts';
import { learnedPosEmbedOf, loadWeightsFromTensors } from './load-model.ts';

export type PosEmbedConvert = 'interpolate' | 'abswin' | 'tile';
export const POSEMBED_CONVERTS: readonly PosEmbedConvert[] = ['interpolate', 'abswin', 'tile'];

/**
 * Which model a checkpoint holds: `--model` (a preset name, inline JSON or a JSON file, each
 * `{family, preset?, config?, overrides?}`; src/models/spec.ts), else its `anyres.config` metadata.
 */
export function sourceModelOf(model: string | undefined, metadata: Record<string, string>, file: string, numClasses?: number): Model {
  const overrides: Record<string, unknown> = numClasses === undefined ? {} : { numClasses };
  const withClasses = (m: Model): Model => (Object.keys(overrides).length ? createModel({ family: m.family, config: m.config }, overrides) : m);
  if (model !== undefined) return withClasses(parseModelSpec(model).model);
  const meta = metadata['anyres.config'];
  if (meta === undefined) {
    throw new Error(`convert: ${file} does not say which model it holds (no 'anyres.config' metadata); pass --model <preset | JSON {family, preset, overrides}> (see 'anyres models'), or leave out --model, --res and --posembed-convert to convert the format only`);
  }
  return withClasses(modelFromCheckpointConfig(meta));
}

export interface ConvertWeightsOptions {
  posembedConvert?: PosEmbedConvert;
  /** New default resolution [H, W]. */
  res?: [number, number];
  /** `tile`: the windowed backbone preset to convert into. */
  target?: string;
  /** `abswin`: grid of the global embedding (default: the source config's `globalPosSize`). */
  globalSize?: [number, number];
  /**
   * `abswin`: alternating least-squares refinements (absWinFromLearned). Default 200: block-coordinate
   * descent converges slowly when the grid holds few windows (2x2 windows: residual 4e-4 after 50, 1e-9 after 200).
   */
  iterations?: number;
}

export interface ConvertedWeights {
  model: Model;
  weights: Weights;
  /** What was done, line by line (printed by the command). */
  notes: string[];
  /** `abswin`: ‖learned − reconstruction‖ / ‖learned‖. */
  relResidual?: number;
}

/** Weights as safetensors entries. */
export const asTensors = (w: Weights): Map<string, NamedTensor> => new Map([...w].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));

/** Converts loaded weights of `source` (see the file comment for the strategies). */
export function convertWeights(source: Model, weights: Weights, opts: ConvertWeightsOptions = {}): ConvertedWeights {
  const how = opts.posembedConvert ?? 'interpolate';
  if (how === 'abswin') return toAbsWin(source, weights, opts);
  if (how === 'tile') return toTiled(source, weights, opts);
  // interpolate: the same model at the new size; the loader resamples a learned embedding by the model's rule.
  const res = opts.res;
  let cfg = source.config;
  if (res && source.inputKind === 'clip') {
    throw new Error(`convert --res: a ${source.family} model has a separable (spatial + temporal) embedding, which the image loader does not resample; fine-tune it at the new size (convertForResolution, 'anyres finetune --res')`);
  }
  if (res) {
    try {
      cfg = familyOf(source).atResolution(source.config, res);
    } catch (e) {
      throw new Error(`convert --res ${res[0]}x${res[1]}: ${(e as Error).message}`);
    }
  }
  const target = createModel({ family: source.family, config: cfg });
  if (res) target.checkInputSize(res[0], res[1]);
  const r = loadWeightsFromTensors(target, asTensors(weights), { strict: true });
  const notes = r.reshaped.length
    ? r.reshaped.map((x) => `interpolate: ${x.name} [${x.from.join(', ')}] -> [${x.to.join(', ')}] (${x.how})`)
    : [`interpolate: ${learnedPosEmbedOf(source) ? 'the learned embedding is already at this grid' : 'the position embedding does not depend on the resolution'}; weights copied`];
  return { model: target, weights: r.weights, notes };
}

/** Original Hiera (learned absolute) -> abs-win Hiera via absWinFromLearned. */
function toAbsWin(source: Model, weights: Weights, opts: ConvertWeightsOptions): ConvertedWeights {
  const cfg = source.config as HieraConfig;
  if (source.family !== 'hiera' || cfg.posEmbed !== 'absolute') {
    throw new Error(`convert --posembed-convert abswin: needs a Hiera with a learned absolute pos_embed (an original Hiera checkpoint); got ${source.family}` +
      `${source.family === 'hiera' ? ` with posEmbed '${cfg.posEmbed}'` : ''}. For a plain ViT into a windowed backbone use --posembed-convert tile --target <vitdet preset>`);
  }
  const globalSize = opts.globalSize ?? cfg.globalPosSize;
  const targetCfg: HieraConfig = {
    ...structuredClone(cfg), posEmbed: 'abswin', globalPosSize: [globalSize[0], globalSize[1]],
    inputSize: opts.res ? [opts.res[0], opts.res[1]] : [cfg.inputSize[0], cfg.inputSize[1]],
  };
  const target = createModel({ family: 'hiera', config: targetCfg });
  if (opts.res) target.checkInputSize(opts.res[0], opts.res[1]);
  const [h, w] = patchGrid(cfg, cfg.inputSize[0], cfg.inputSize[1]);
  const C = cfg.embedDim;
  const pe = weights.get('pos_embed')!;
  const learned: Grid = { data: tokensToGrid(pe.data, C, h, w), C, H: h, W: w };
  const split = absWinFromLearned(learned, cfg.maskUnitSize, globalSize, {
    globalMode: targetCfg.globalResample, iterations: opts.iterations ?? 200,
  });
  const out: Weights = new Map();
  const winName = targetCfg.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window';
  for (const name of target.paramInfos().keys()) {
    if (name === 'pos_embed') out.set(name, { data: Float32Array.from(split.global.data), shape: [1, C, globalSize[0], globalSize[1]] });
    else if (name === winName) out.set(name, { data: Float32Array.from(split.window.data), shape: [1, C, cfg.maskUnitSize[0], cfg.maskUnitSize[1]] });
    else {
      const t = weights.get(name);
      if (!t) throw new Error(`convert abswin: the source weights lack '${name}'`);
      out.set(name, t);
    }
  }
  const notes = [
    `abswin: learned pos_embed [1, ${h * w}, ${C}] (${h}x${w}) split into window [1, ${C}, ${cfg.maskUnitSize.join(', ')}] (${winName}) + global [1, ${C}, ${globalSize.join(', ')}] (pos_embed, ${targetCfg.globalResample} to the grid)`,
    `abswin: relative residual ||learned - (interpolate(global) + tile(window))|| / ||learned|| = ${split.relResidual.toExponential(3)}` +
      (split.relResidual > 1e-3 ? ' (the learned embedding is not exactly window-tiled + smooth: the converted model differs from the original at the pretrain size)' : ''),
  ];
  return { model: target, weights: out, notes, relResidual: split.relResidual };
}

/** Plain ViT (learned) -> ViTDet with absolute win: the ViT grid is ViTDet's window embedding. */
function toTiled(source: Model, weights: Weights, opts: ConvertWeightsOptions): ConvertedWeights {
  const pe = learnedPosEmbedOf(source);
  if (source.family !== 'vit' || !pe) {
    throw new Error(`convert --posembed-convert tile: needs a plain ViT with a learned pos_embed as the source (got ${source.family}); for an original Hiera use --posembed-convert abswin`);
  }
  if (!opts.target) throw new Error(`convert --posembed-convert tile: pass --target <vitdet preset> (${presetNames().filter((n) => n.startsWith('vitdet')).join(', ')})`);
  const base = createModel(opts.target);
  if (base.family !== 'vitdet') throw new Error(`convert --posembed-convert tile: --target '${opts.target}' is a ${base.family} model; tile converts into a ViTDet`);
  const vit = source.config as VitConfig;
  const det = base.config as VitDetConfig;
  const [gh, gw] = pe.grid;
  if (gh !== gw) throw new Error(`convert tile: the ViT grid ${gh}x${gw} is not square; ViTDet stores a square pretrain grid`);
  for (const [k, a, b] of [['embedDim', vit.embedDim, det.embedDim], ['depth', vit.depth, det.depth], ['numHeads', vit.numHeads, det.numHeads], ['patchSize', vit.patchSize, det.patchSize]] as const) {
    if (a !== b) throw new Error(`convert tile: the ViT has ${k} ${a}, --target ${opts.target} has ${b}; pick a ViTDet preset of the same size`);
  }
  const cfg: VitDetConfig = {
    ...structuredClone(det), posEmbed: 'abswin', pretrainGrid: gh, pretrainUseClsToken: pe.prefix === 1,
    // The window embedding is the pretrained grid itself (resampled only if the window differs).
    ...(opts.res ? { imgSize: opts.res[0] } : {}),
  };
  if (opts.res && opts.res[0] !== opts.res[1]) throw new Error(`convert tile: ViTDet stores a square default size; got --res ${opts.res[0]}x${opts.res[1]}`);
  const target = createModel({ family: 'vitdet', config: cfg });
  const r = loadWeightsFromTensors(target, asTensors(weights), { strict: false });
  const notes = [
    `tile: the ViT pos_embed (${gh}x${gw} grid) is the window embedding of ${opts.target} (posEmbed abswin, window ${cfg.windowSize}${cfg.windowSize !== gh ? `, bicubic ${gh} -> ${cfg.windowSize}` : ''})`,
    r.report,
  ];
  return { model: target, weights: r.weights, notes };
}
