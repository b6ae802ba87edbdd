/**
 * anyres: vision transformers at any input resolution.
 *
 * @example
 * import { createModel, Runtime, Params, host } from 'anyres';
 * const model = createModel('hiera-mini-abswin');
 * const rt = new Runtime();
 * // forward at any size the architecture takes (traced once per shape, cached)
 */
export * from './graph/index.ts';
export * as nn from './nn/index.ts';
export { Params, collectParams, initWeights, countParams, type ParamInfo, type Weights } from './nn/params.ts';
export * as posembed from './posembed/index.ts';
export * from './posembed/graph.ts';
export type { Model, ForwardOptions, ForwardOutput } from './models/types.ts';
export { createVit, vitPresets, type VitConfig } from './models/vit.ts';
export { createHiera, hieraPresets, type HieraConfig } from './models/hiera.ts';
export { createHieraVideo, hieraVideoPresets, type HieraVideoConfig } from './models/hiera-video.ts';
export { createHieraMae } from './models/hiera-mae.ts';
export { createVitDet, vitdetPresets, vitdetSpeedConfigs, type VitDetConfig } from './models/vitdet.ts';
export { createHieraDet, hieradetPresets, recursiveAbsWinInit, type HieraDetConfig } from './models/hieradet.ts';
export { createModel, presetNames, describePreset, modelFromCheckpointConfig } from './models/registry.ts';
export * as io from './io/index.ts';
export * as data from './data/index.ts';
export { compileTrainStep, compileEval } from './train/step.ts';
export { train, evaluate } from './train/trainer.ts';
export { multiResLoss } from './train/multires-loss.ts';
export { saveCheckpoint, loadCheckpoint } from './train/checkpoint.ts';
export { WeightEma, emaDecay, type EmaOptions } from './train/ema.ts';
export { convertForResolution } from './train/finetune.ts';
export { evalCheckpoint, type EvalReport } from './cli/eval.ts';
export { sweep, evaluateAccuracy, parseResolutions } from './eval/sweep.ts';
export { reproduce } from './eval/reproduce.ts';
export { Rng } from './util/rng.ts';
