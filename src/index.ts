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
export { Params, collectParams, initWeights, countParams, type ForkableRandom, type ParamInfo, type Weights } from './nn/params.ts';
export * as posembed from './posembed/index.ts';
export * from './posembed/graph.ts';
export type { Model, ForwardOptions, ForwardOutput, LearnedPosEmbed } from './models/types.ts';
export { createVit, vitPresets, type VitConfig } from './models/vit.ts';
export { createHiera, hieraPresets, type HieraConfig } from './models/hiera.ts';
export { createHieraVideo, hieraVideoPresets, type HieraVideoConfig } from './models/hiera-video.ts';
export { createHieraMae } from './models/hiera-mae.ts';
export { createVitDet, vitdetPresets, vitdetSpeedConfigs, type VitDetConfig } from './models/vitdet.ts';
export { createHieraDet, hieradetPresets, recursiveAbsWinInit, type HieraDetConfig } from './models/hieradet.ts';
export {
  createModel, presetNames, describePreset, modelFromCheckpointConfig, modelFromSpec, parseModelSpec, familyOf, familyOfPreset,
  modelForTraining, trainPresetNames, MODEL_FAMILIES, type FamilyTable, type ModelFamily, type TrainOverrides,
} from './models/registry.ts';
export { positionEmbeddingAt, attentionWindowOf } from './models/position-embedding.ts';
export { similarityOf, type SimilarityReport } from './posembed/similarity.ts';
export { writeSimilarityFigures } from './eval/similarity-figures.ts';
// Checkpoint conversion (`anyres convert`): whole files, containers only, and the weight rules.
export { convertCheckpoint, type ConvertOptions, type ConvertResult } from './train/convert-checkpoint.ts';
export { convertFormat, outputFormatOf, type FormatConvertResult } from './io/convert-format.ts';
export { convertWeights, sourceModelOf, POSEMBED_CONVERTS, type ConvertWeightsOptions, type ConvertedWeights, type PosEmbedConvert } from './io/convert-weights.ts';
export * as io from './io/index.ts';
export * as data from './data/index.ts';
export { compileTrainStep, compileEval } from './train/step.ts';
export { train, evaluate } from './train/trainer.ts';
export { multiResLoss } from './train/multires-loss.ts';
export { saveCheckpoint, loadCheckpoint } from './io/train-checkpoint.ts';
export { WeightEma, emaDecay, type EmaOptions } from './train/ema.ts';
export { convertForResolution } from './train/finetune.ts';
export { evalCheckpoint, type EvalReport } from './cli/eval.ts';
export { sweep, evaluateAccuracy, parseResolutions } from './eval/sweep.ts';
export { reproduce } from './eval/reproduce.ts';
export { pairedDifference, pairedVerdict, studentTQuantile, studentTCdf, type PairedResult } from './eval/paired.ts';
export { Rng } from './util/rng.ts';
// COCO evaluation (pycocotools COCOeval) and COCO RLE masks (src/det)
export { cocoEval, formatSummary, linspace, STATS_NAMES, type CocoEvalParams, type CocoEvalResult, type IouType } from './det/coco-eval.ts';
export { rleEncode, rleDecode, rleToString, rleFromString, rleArea, rleToBbox, polygonsToRle, annToRle, rleIou, bboxIou } from './det/mask.ts';
export { precisionRecallRows, prCurveChart, type PrCurveOptions } from './eval/pr-curve.ts';
// Detection: FCOS on ViTDet / HieraDet (src/det)
export { Detector, createDetector, type DetectorSpec, type CreateDetectorOptions, type FcosLossConfig, type NeckConfig } from './det/detector.ts';
export { type FcosHeadConfig, defaultFcosHead } from './det/fcos.ts';
export { fcosTargets, defaultScaleRanges, type FcosLevel, type FcosTargets } from './det/fcos-targets.ts';
export { detTrainStep, type DetTrainStepOptions, type DetStepBatch, type DetStepResult } from './det/train-step.ts';
export { trainDetector, loadDetector, type DetTrainOptions, type DetTrainContext, type DetTrainSummary } from './det/trainer.ts';
export { predictDetections, type PredictOptions } from './det/predict.ts';
export { evaluateDetector, type EvaluateOptions, type DetEvalResult } from './det/evaluate.ts';
export { classwiseNms, decodeDetections, defaultPostprocess, type PostprocessOptions } from './det/postprocess.ts';
// Detection data: synthetic scenes, COCO folders, large-scale jitter, batches, pictures (src/det/data)
export { SyntheticDetDataset, DET_SHAPE_CLASSES, sampleDetScene, sceneObjects, renderSceneView, type SyntheticDetOptions, type DetSceneDesc, type DetShapeClass } from './det/data/synthetic.ts';
export { CocoFolderDataset, readCocoFolder, writeCocoFolder, parseCocoJson, type CocoFolderOptions, type WriteCocoOptions } from './det/data/coco-format.ts';
export { lsjPlan, evalPlan, applyPlan, transformObjects, visibleSize, padTo, PAD_VALUE, type LsjOptions, type ViewPlan } from './det/data/lsj.ts';
export { DetLoader, type DetLoaderOptions, type DetBatch, type DetTarget } from './det/data/loader.ts';
export { maskBounds, maskArea, resampleMask } from './det/data/bitmask.ts';
export { decodeImageFile, encodePng } from './det/data/png.ts';
export { drawDetectionsPng, detectionsSvg, classColor, type DrawLayer, type DrawBox } from './det/draw.ts';
