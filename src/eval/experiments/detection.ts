/**
 * Detection in miniature, where the window-attention bug is structural (Bolya et al. 2024, Sec. 5,
 * Tabs. 3, 4 and 5; ViTDet, Li et al. 2022):
 *
 * 1. A small plain ViT with GLOBAL attention is pretrained by classification at a small grid
 *    (the synthetic shapes at `pretrain.res` px: a `g x g` token grid), once per seed.
 * 2. It is fine-tuned as a windowed ViTDet + FCOS at `det.res` px (about 4x: a `4g x 4g` grid),
 *    window = the pretrained grid, a few global blocks, with each variant of `VITDET_VARIANTS`:
 *    (a) interpolated embedding + rel-pos in every block (the original ViTDet), (b) interpolated,
 *    no rel-pos, (c) tiled (absolute win), no rel-pos, (d) tiled + rel-pos only in the global blocks
 *    (the paper's recipe), (e) an embedding learned from scratch at the detection grid (Tab. 4).
 *    Interpolation hands each window a stretched piece of the pretrained grid; tiling hands each
 *    window exactly the embedding the blocks were pretrained with.
 * 3. A small Hiera classifier is pretrained the same way and fine-tuned as HieraDet with the
 *    pretrained embedding interpolated vs recursive absolute win (Tab. 5).
 * 4. A no-pretraining control: variant (d)'s detector from random weights.
 *
 * Pairing: within a seed every variant starts from the same pretrained weights, draws every
 * parameter it shares with another variant (pyramid, head, rel-pos tables) from (seed, name)
 * (src/det/init.ts), and trains on the same batches in the same order. Box AP, AP50 and AP75 are
 * COCO's (src/det/coco-eval.ts), ms per image is measured by the evaluation on this machine.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Runtime } from '../../graph/runtime.ts';
import { SyntheticDataset } from '../../data/synthetic.ts';
import { createVit, type VitModel } from '../../models/vit.ts';
import { createHiera, type HieraConfig, type HieraModel } from '../../models/hiera.ts';
import type { VitDet } from '../../models/vitdet.ts';
import type { HieraDet } from '../../models/hieradet.ts';
import { type ParamMap, type PosEmbedInit, type RelPosPlacement, hieradetFromHiera, initByName, vitdetFromVit } from '../../det/init.ts';
import { type Detector, createDetector } from '../../det/detector.ts';
import { trainDetector } from '../../det/trainer.ts';
import { evaluateDetector } from '../../det/evaluate.ts';
import { predictDetections } from '../../det/predict.ts';
import { SyntheticDetDataset } from '../../det/data/synthetic.ts';
import { cachedDetDataset } from '../../det/data/cache.ts';
import type { LsjOptions } from '../../det/data/lsj.ts';
import { drawDetectionsPng } from '../../det/draw.ts';
import type { DetDataset } from '../../det/types.ts';
import { type FitOptions, accuracy, fit, fitInitialState, fitMae } from './fit.ts';
import { type VitMaeModel, createVitMae } from '../../models/vit-mae.ts';

/** The ViTDet variants of Tab. 3 (a-d) and Tab. 4 (e). */
export const VITDET_VARIANTS = {
  a: { title: '(a) interp. + relpos all (ViTDet)', posEmbedInit: 'interpolate', relPos: 'all' },
  b: { title: '(b) interp., no relpos', posEmbedInit: 'interpolate', relPos: 'none' },
  c: { title: '(c) abs-win (tiled), no relpos', posEmbedInit: 'abswin', relPos: 'none' },
  d: { title: '(d) abs-win + relpos in global blocks', posEmbedInit: 'abswin', relPos: 'global' },
  e: { title: '(e) embedding from scratch + relpos in global blocks', posEmbedInit: 'scratch', relPos: 'global' },
} as const satisfies Record<string, { title: string; posEmbedInit: PosEmbedInit; relPos: RelPosPlacement }>;
export type VitDetVariant = keyof typeof VITDET_VARIANTS;

export const HIERADET_VARIANTS = {
  interp: { title: 'HieraDet, pretrained embedding interpolated', posEmbedInit: 'interpolate' },
  abswin: { title: 'HieraDet, recursive abs-win', posEmbedInit: 'abswin' },
} as const;
export type HieraDetVariant = keyof typeof HIERADET_VARIANTS;

/** The no-pretraining control's name in the rows. */
export const CONTROL = 'control';

type TrainRecipe = Omit<FitOptions, 'seed' | 'resolutions' | 'init' | 'hook' | 'label'>;

export interface DetFinetuneRecipe {
  steps: number;
  batch: number;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  /** Layer-wise lr decay of the pretrained blocks (ViTDet: 0.7); undefined = off. */
  layerDecay?: number;
  clipGradNorm?: number;
}

export interface DetectionExperimentOptions {
  seeds: number[];
  /** Shape classes of both the pretraining and the detection data (the first N of each set: disc, ring, square, triangle, cross...). */
  numClasses: number;
  vit: { patchSize: number; embedDim: number; depth: number; numHeads: number; globalBlocks: number[] };
  /**
   * Pretraining of the ViT at `res` px (grid res / patch), on the synthetic shapes: 'classify'
   * (supervised, mean-pooled head) or 'mae' (a masked autoencoder, src/models/vit-mae.ts: the
   * pretraining ViTDet starts from). Default 'classify'.
   */
  pretrain: TrainRecipe & {
    res: number; trainSize: number; valSize: number;
    kind?: 'classify' | 'mae';
    mae?: { maskRatio: number; decoderEmbedDim: number; decoderDepth: number; decoderNumHeads: number };
  };
  det: DetFinetuneRecipe & {
    /** Fine-tuning (and test) size in px. */
    res: number;
    trainSize: number;
    valSize: number;
    /** Object circumradius range as a fraction of the image side (SyntheticDetDataset `sizeRange`). */
    sizeRange: [number, number];
    pyramidChannels: number;
    headConvs: number;
    /**
     * Large-scale jitter of the training views; null = none (each training scene is rendered in
     * its evaluation view: with more scenes than steps x batch every image is new anyway, and the
     * jittered view costs about 4x the rendering).
     */
    lsj: LsjOptions | null;
  };
  variants: VitDetVariant[];
  /** The control (random-init detector) runs with this variant's architecture; null = no control. */
  control: VitDetVariant | null;
  /** Hiera -> HieraDet (Tab. 5); null = not run. */
  hiera: null | {
    arch: Partial<HieraConfig>;
    pretrain: TrainRecipe & { res: number };
    det: DetFinetuneRecipe;
    neckDim: number;
  };
  /** Test images drawn with predicted and true boxes, for these variants (first seed). */
  pictures: { variants: VitDetVariant[]; images: number; scoreThresh: number };
}

export interface DetRow {
  /** 'vitdet' / 'hieradet' / 'control'. */
  family: 'vitdet' | 'hieradet' | 'control';
  variant: string;
  title: string;
  seed: number;
  /** COCO box AP, AP50, AP75, APs, APm, APl in percent. */
  ap: number;
  ap50: number;
  ap75: number;
  aps: number;
  apm: number;
  apl: number;
  msPerImage: number;
  /** Mean loss over the last tenth of fine-tuning steps. */
  finalLoss: number;
  trainSeconds: number;
}

export interface PretrainRow {
  model: 'vit' | 'hiera';
  /** 'classify' or 'mae'. */
  kind: 'classify' | 'mae';
  seed: number;
  /** Top-1 % on the pretraining task's validation set (classification); null for the MAE. */
  accuracy: number | null;
  /** Mean training loss over the last tenth of the steps (cross-entropy, or the MAE's norm-pix MSE). */
  finalLoss: number;
  seconds: number;
}

export interface DetPicture {
  variant: string;
  png: Buffer;
  caption: string;
}

export interface DetectionResults {
  rows: DetRow[];
  pretrain: PretrainRow[];
  pictures: DetPicture[];
  /** Token grids: pretrained ViT grid, fine-tuning grid, window. */
  grids: { pretrain: number; det: number; window: number; hieraPretrain?: [number, number]; hieraDet?: [number, number] };
  classNames: readonly string[];
}

/** COCOeval's 12 numbers -> the row's percentages. */
function apFields(stats: readonly number[]): Pick<DetRow, 'ap' | 'ap50' | 'ap75' | 'aps' | 'apm' | 'apl'> {
  // COCOeval reports -1 for an area range with no ground truth; keep it out of the means (as 0 would lie).
  const pct = (i: number): number => (stats[i]! < 0 ? NaN : 100 * stats[i]!);
  return { ap: pct(0), ap50: pct(1), ap75: pct(2), aps: pct(3), apm: pct(4), apl: pct(5) };
}

/** Fills every non-backbone parameter of the detector from (seed, name): shared across variants of one seed. */
export function detectorParams(det: Detector, backbone: ParamMap, seed: number): ParamMap {
  const out: ParamMap = new Map();
  for (const [name, info] of det.paramInfos()) {
    const b = name.startsWith('backbone.') ? backbone.get(name.slice('backbone.'.length)) : undefined;
    out.set(name, b ?? initByName(info, seed));
  }
  return out;
}

function detectorFor(backbone: VitDet | HieraDet, o: DetectionExperimentOptions, neckDim?: number): Detector {
  const levels = ['p3', 'p4', 'p5'];
  if (backbone.family === 'vitdet') {
    return createDetector({ backbone: { family: 'vitdet', config: (backbone as VitDet).config }, numClasses: o.numClasses, levels, head: { numConvs: o.det.headConvs } });
  }
  return createDetector({ backbone: { family: 'hieradet', config: (backbone as HieraDet).config }, numClasses: o.numClasses, levels, neck: { dim: neckDim ?? 64, topDown: true }, head: { numConvs: o.det.headConvs } });
}

/** The pretraining ViT: plain, global attention, learned embedding, mean-pooled (no class token, as ViTDet drops it). */
export function pretrainVitModel(o: DetectionExperimentOptions): VitModel {
  const v = o.vit;
  return createVit('vit-mini-p8', {
    patchSize: v.patchSize, embedDim: v.embedDim, depth: v.depth, numHeads: v.numHeads, imgSize: [o.pretrain.res, o.pretrain.res],
    classToken: false, globalPool: 'avg', numClasses: o.numClasses,
  });
}

export function pretrainHieraModel(o: DetectionExperimentOptions): HieraModel {
  const h = o.hiera!;
  return createHiera('hiera-mini', { ...h.arch, inputSize: [h.pretrain.res, h.pretrain.res], numClasses: o.numClasses, posEmbed: 'absolute', headInitScale: 1 });
}

/**
 * The detection data: synthetic scenes of the same shape classes as the pretraining (train with LSJ
 * if the plan says so, val in the evaluation view). Deterministic views are cached
 * (src/det/data/cache.ts): every detector of a seed trains on the same batches and every detector
 * is evaluated on the same scenes, so each scene is rendered once, not once per detector.
 */
export function detDatasets(o: DetectionExperimentOptions): { train: DetDataset; val: DetDataset } {
  const size: [number, number] = [o.det.res, o.det.res];
  const train = new SyntheticDetDataset({ seed: 1, split: 'train', size: o.det.trainSize, classes: o.numClasses, evalSize: size, sizeRange: o.det.sizeRange, ...(o.det.lsj ? { lsj: o.det.lsj } : {}) });
  const val = new SyntheticDetDataset({ seed: 1, split: 'val', size: o.det.valSize, classes: o.numClasses, evalSize: size, sizeRange: o.det.sizeRange });
  return { train: cachedDetDataset(train, { dropMasks: true }), val: cachedDetDataset(val) };
}

export interface FinetuneResult {
  params: ParamMap;
  stats: number[];
  finalLoss: number;
  seconds: number;
  images: { detections: { box: [number, number, number, number]; score: number; label: number }[] }[];
}

/**
 * Inference time per image (forward + post-processing), batch 1, after a warm-up run (the
 * evaluation's own timing includes compiling the session): the median of `repeats` runs.
 */
export async function inferenceMs(rt: Runtime, det: Detector, params: ParamMap, val: DetDataset, res: number, repeats = 7): Promise<number> {
  const s = await val.get(0, [res, res], null);
  await predictDetections(rt, det, params, [s.image], [res, res], { batch: 1 });
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await predictDetections(rt, det, params, [s.image], [res, res], { batch: 1 });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Fine-tunes one detector from `init` with the recipe, evaluates it on `val` at the same size. */
export async function finetuneDetector(
  rt: Runtime, det: Detector, init: ParamMap, data: { train: DetDataset; val: DetDataset }, r: DetFinetuneRecipe, res: number, seed: number, label: string, augment: boolean,
): Promise<FinetuneResult> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-reproduce-det-'));
  try {
    const t0 = performance.now();
    const s = await trainDetector(
      { rt, detector: det, train: data.train, out, init, runInfo: { label } },
      {
        size: [res, res], batch: r.batch, steps: r.steps, lr: r.lr, warmupSteps: r.warmupSteps, weightDecay: r.weightDecay, minLr: r.lr * 0.01,
        seed, augment, logEverySteps: 1_000_000, ...(r.layerDecay !== undefined ? { layerDecay: r.layerDecay } : {}), ...(r.clipGradNorm !== undefined ? { clipGradNorm: r.clipGradNorm } : {}),
      },
    );
    const seconds = (performance.now() - t0) / 1000;
    const ev = await evaluateDetector(rt, det, s.state.params, data.val, [res, res]);
    await rt.clear(); // this detector's training and evaluation sessions are not used again
    const tail = s.losses.slice(-Math.max(1, Math.floor(s.losses.length / 10)));
    return {
      params: s.state.params, stats: ev.stats, finalLoss: tail.reduce((a, b) => a + b, 0) / tail.length, seconds,
      images: ev.images.map((im) => ({ detections: im.detections.map((d) => ({ box: d.box, score: d.score, label: d.label })) })),
    };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** Classification pretraining data: the first `numClasses` shape classes of the synthetic set. */
function pretrainData(o: DetectionExperimentOptions): { train: SyntheticDataset; val: SyntheticDataset } {
  return {
    train: new SyntheticDataset({ seed: 2, split: 'train', size: o.pretrain.trainSize, numClasses: o.numClasses }),
    val: new SyntheticDataset({ seed: 2, split: 'val', size: o.pretrain.valSize, numClasses: o.numClasses }),
  };
}

const tailMean = (losses: readonly { loss: number }[]): number => {
  const tail = losses.slice(-Math.max(1, Math.floor(losses.length / 10)));
  return tail.reduce((a, b) => a + b.loss, 0) / tail.length;
};

/** The MAE of the pretraining ViT: the same encoder (names, shapes) plus the decoder of `o.pretrain.mae`. */
export function pretrainVitMae(o: DetectionExperimentOptions): VitMaeModel {
  const v = o.vit;
  const m = o.pretrain.mae ?? { maskRatio: 0.75, decoderEmbedDim: 64, decoderDepth: 1, decoderNumHeads: 2 };
  return createVitMae({
    encoder: { patchSize: v.patchSize, embedDim: v.embedDim, depth: v.depth, numHeads: v.numHeads, imgSize: [o.pretrain.res, o.pretrain.res] },
    ...m,
  });
}

/**
 * Pretrains the ViT of one seed (classification or MAE, `o.pretrain.kind`); returns the classifier
 * ViT with the pretrained weights (for the MAE: its encoder, the classifier's head left at init).
 */
export async function pretrainVit(rt: Runtime, o: DetectionExperimentOptions, seed: number): Promise<{ model: VitModel; params: ParamMap; row: PretrainRow }> {
  const model = pretrainVitModel(o);
  const d = pretrainData(o);
  const { res, trainSize: _t, valSize: _v, kind = 'classify', mae: _m, ...recipe } = o.pretrain;
  if (kind === 'mae') {
    const mae = pretrainVitMae(o);
    const r = await fitMae(rt, mae, d.train, {
      steps: recipe.steps, batch: recipe.batch, res, lr: recipe.lr, weightDecay: recipe.weightDecay, warmupSteps: recipe.warmupSteps, seed,
      label: `det: MAE-pretrain ViT seed ${seed} @${res}`,
    });
    const params = fitInitialState(model, seed).params;
    for (const n of mae.encoderParamNames()) {
      if (!params.has(n)) throw new Error(`pretrainVit: MAE encoder parameter '${n}' is not a parameter of the ViT`);
      params.set(n, r.params.get(n)!);
    }
    await rt.clear();
    return { model, params, row: { model: 'vit', kind, seed, accuracy: null, finalLoss: tailMean(r.losses), seconds: r.seconds } };
  }
  const r = await fit(rt, model, d.train, { ...recipe, seed, resolutions: [res], label: `det: pretrain ViT seed ${seed} @${res}` });
  const acc = await accuracy(rt, model, r.params, d.val, res);
  return { model, params: r.params, row: { model: 'vit', kind, seed, accuracy: acc, finalLoss: tailMean(r.losses), seconds: r.seconds } };
}

/** The ViTDet of `variant` initialised from the pretrained ViT (or from random weights for the control). */
export function vitdetVariant(vit: VitModel, pre: ParamMap | null, variant: VitDetVariant, o: DetectionExperimentOptions, seed: number): { det: Detector; params: ParamMap } {
  const v = VITDET_VARIANTS[variant];
  // The control: the same architecture, every backbone weight drawn from (seed, name) instead of the pretrained ones.
  const source = pre ?? new Map([...vit.paramInfos()].map(([k, info]) => [k, initByName(info, seed + 7919)]));
  const bb = vitdetFromVit(vit, source, {
    posEmbedInit: v.posEmbedInit, relPos: v.relPos, imgSize: o.det.res, globalBlocks: o.vit.globalBlocks, seed,
    pyramid: { outChannels: o.det.pyramidChannels, scaleFactors: [1, 0.5], topBlock: true, normEps: 1e-6 },
  });
  const det = detectorFor(bb.model, o);
  return { det, params: detectorParams(det, bb.params, seed) };
}

/** Runs the whole detection experiment. */
export async function runDetectionExperiment(rt: Runtime, o: DetectionExperimentOptions, log: (m: string) => void): Promise<DetectionResults> {
  const rows: DetRow[] = [];
  const pretrain: PretrainRow[] = [];
  const pictures: DetPicture[] = [];
  const data = detDatasets(o);
  const g = o.pretrain.res / o.vit.patchSize;
  if (!Number.isInteger(g)) throw new Error(`detection experiment: pretrain res ${o.pretrain.res} is not a multiple of the patch ${o.vit.patchSize}`);
  const grids: DetectionResults['grids'] = { pretrain: g, det: o.det.res / o.vit.patchSize, window: g };
  // The detectors of the current seed, timed together at its end (interleaved rounds, as the speed section).
  let toTime: { row: DetRow; det: Detector; params: ParamMap }[] = [];
  const push = (family: DetRow['family'], variant: string, title: string, seed: number, r: FinetuneResult, det: Detector): void => {
    const row: DetRow = { family, variant, title, seed, ...apFields(r.stats), msPerImage: Infinity, finalLoss: r.finalLoss, trainSeconds: r.seconds };
    rows.push(row);
    toTime.push({ row, det, params: r.params });
    log(`det ${variant} seed ${seed}: AP ${row.ap.toFixed(1)} AP50 ${row.ap50.toFixed(1)} AP75 ${row.ap75.toFixed(1)}, loss ${row.finalLoss.toFixed(3)}, ${row.trainSeconds.toFixed(0)} s`);
  };
  const timeAll = async (): Promise<void> => {
    // Two interleaved rounds, the faster kept: load from other processes hits every variant alike.
    for (let round = 0; round < 2; round++) {
      for (const t of toTime) t.row.msPerImage = Math.min(t.row.msPerImage, await inferenceMs(rt, t.det, t.params, data.val, o.det.res));
    }
    for (const t of toTime) log(`det ${t.row.variant} seed ${t.row.seed}: ${t.row.msPerImage.toFixed(1)} ms/img`);
    toTime = [];
    await rt.clear();
  };
  for (const seed of o.seeds) {
    const vitRuns = o.variants.length > 0 || o.control !== null;
    const pre = vitRuns ? await pretrainVit(rt, o, seed) : null;
    if (pre) {
      pretrain.push(pre.row);
      const got = pre.row.accuracy === null ? `MAE loss ${pre.row.finalLoss.toFixed(3)}` : `${pre.row.accuracy.toFixed(1)}% on ${o.numClasses} classes`;
      log(`det: ViT seed ${seed} pretrained (${pre.row.kind}) at ${o.pretrain.res} px (${g}x${g} tokens): ${got}, ${pre.row.seconds.toFixed(0)} s`);
    }
    for (const variant of o.variants) {
      if (!pre) break;
      const { det, params } = vitdetVariant(pre.model, pre.params, variant, o, seed);
      const r = await finetuneDetector(rt, det, params, data, o.det, o.det.res, seed, `vitdet ${variant} seed ${seed}`, o.det.lsj !== null);
      push('vitdet', variant, VITDET_VARIANTS[variant].title, seed, r, det);
      if (seed === o.seeds[0] && o.pictures.variants.includes(variant)) {
        for (let i = 0; i < Math.min(o.pictures.images, r.images.length); i++) {
          const s = await data.val.get(i, [o.det.res, o.det.res], null);
          const dets = r.images[i]!.detections.filter((d) => d.score >= o.pictures.scoreThresh);
          const png = await drawDetectionsPng(s.image, [
            { boxes: s.objects.map((x) => ({ box: x.box, label: x.label })), dashed: true, color: '#ffffff', labels: false },
            { boxes: dets },
          ], data.val.classNames);
          pictures.push({ variant, png, caption: `${VITDET_VARIANTS[variant].title}, test image ${i} at ${o.det.res} px: true boxes dashed white, predictions (score >= ${o.pictures.scoreThresh}) coloured by class.` });
        }
      }
    }
    if (o.control && pre) {
      const { det, params } = vitdetVariant(pre.model, null, o.control, o, seed);
      const r = await finetuneDetector(rt, det, params, data, o.det, o.det.res, seed, `control seed ${seed}`, o.det.lsj !== null);
      push('control', CONTROL, `no pretraining (${VITDET_VARIANTS[o.control].title.replace(/^\([a-e]\) /, '')}, random init)`, seed, r, det);
    }
    if (o.hiera) {
      const h = o.hiera;
      const hm = pretrainHieraModel(o);
      const d = pretrainData(o);
      const { res, ...recipe } = h.pretrain;
      const fr = await fit(rt, hm, d.train, { ...recipe, seed, resolutions: [res], label: `det: pretrain Hiera seed ${seed} @${res}` });
      const acc = await accuracy(rt, hm, fr.params, d.val, res);
      pretrain.push({ model: 'hiera', kind: 'classify', seed, accuracy: acc, finalLoss: tailMean(fr.losses), seconds: fr.seconds });
      log(`det: Hiera seed ${seed} pretrained at ${res} px: ${acc.toFixed(1)}%, ${fr.seconds.toFixed(0)} s`);
      for (const variant of Object.keys(HIERADET_VARIANTS) as HieraDetVariant[]) {
        const bb = hieradetFromHiera(hm, fr.params, { posEmbedInit: HIERADET_VARIANTS[variant].posEmbedInit, imgSize: o.det.res, seed });
        grids.hieraPretrain = [res / hm.config.patchStride[0], res / hm.config.patchStride[1]];
        grids.hieraDet = [o.det.res / hm.config.patchStride[0], o.det.res / hm.config.patchStride[1]];
        const det = detectorFor(bb.model, o, h.neckDim);
        const r = await finetuneDetector(rt, det, detectorParams(det, bb.params, seed), data, h.det, o.det.res, seed, `hieradet ${variant} seed ${seed}`, o.det.lsj !== null);
        push('hieradet', variant, HIERADET_VARIANTS[variant].title, seed, r, det);
      }
    }
    await timeAll();
  }
  return { rows, pretrain, pictures, grids, classNames: data.val.classNames };
}

/**
 * The section's sizes: `quick` (CI smoke: a few steps of everything) and the default.
 * Default recipe: see the comment in the body (chosen by bench/detection-probe.ts on seeds 100+).
 */
export function detectionPlan(quick: boolean, seeds?: number[]): DetectionExperimentOptions {
  const vit = { patchSize: 8, embedDim: 64, depth: 4, numHeads: 2, globalBlocks: [1, 3] };
  const hieraArch: Partial<HieraConfig> = { stages: [1, 2, 1], qPool: 2, maskUnitSize: [4, 4], maskUnitAttn: [true, true, false], embedDim: 32, numHeads: 1 };
  if (quick) {
    return {
      seeds: seeds ? seeds.slice(0, 1) : [0], numClasses: 5, vit,
      pretrain: { res: 32, trainSize: 400, valSize: 50, steps: 10, batch: 16, lr: 1e-3, weightDecay: 0.05, warmupSteps: 2 },
      det: { res: 128, trainSize: 64, valSize: 8, sizeRange: [0.04, 0.22], steps: 3, batch: 4, lr: 1e-3, warmupSteps: 1, weightDecay: 0.05, pyramidChannels: 32, headConvs: 1, lsj: null },
      variants: ['a', 'b', 'c', 'd', 'e'], control: 'd',
      hiera: { arch: hieraArch, pretrain: { res: 32, steps: 5, batch: 16, lr: 1e-3, weightDecay: 0.05, warmupSteps: 1 }, det: { steps: 3, batch: 4, lr: 1e-3, warmupSteps: 1, weightDecay: 0.05 }, neckDim: 32 },
      pictures: { variants: ['a', 'd'], images: 2, scoreThresh: 0.3 },
    };
  }
  // Recipe (bench/detection-probe.ts on seeds 100-102, never the report's; on a loaded shared
  // machine each probe took 15-30 min, so few were run):
  // - lr 1e-3 with large-scale jitter 0.5-1.5, 300 steps: (a) reached only 5.2 AP (seed 100);
  //   lr 3e-3 without jitter: (b) 7.3, (c) 8.2 AP at the same seed. Jitter is dropped: the 4000
  //   training scenes outnumber steps x batch (every image is new) and its views cost ~4x to render.
  // - 1500 pretraining steps gave no better classifier than 1000 (35.6% vs 36.6% top-1 on 5 classes).
  // - Larger objects (circumradius 6-25% instead of the dataset's 4-22%) with 250 steps did not
  //   help: (b) 3.2, (c) 3.6 AP at seed 101; the default sizes and 300 steps are kept.
  // - HieraDet (stride-4 stages + FPN neck) learns faster: 12.8 AP interpolated, 12.4 recursive
  //   abs-win at seed 101 (250 steps, the larger objects).
  // - This recipe at seed 102: (b) 10.9, (c) 10.4 AP. Over the probed seeds the level moves by
  //   ~3.6 AP (7.3 vs 10.9 for (b)) while the paired tiled-minus-interpolated difference was +0.9
  //   (seed 100), +0.4 (101, other sizes) and -0.6 (102): every probed run trained (AP 3-13, no
  //   seed stuck), but the spread is about 1 AP paired and 2-3 AP unpaired, so a 1-2 AP effect is
  //   at the edge of what two or three seeds resolve. The report states the spread it measures.
  // - Open problem, seen in the first default-plan run (seed 0, after these probes): the random-init
  //   control reached 11.6 AP while every pretrained variant stayed at 3.1-4.5 (ViT pretrained to
  //   31% top-1). The short 32 px classification pretraining is a worse start than random weights
  //   for this detector, so the variants' differences are measured on under-trained detectors.
  //   Next to try: longer/better pretraining (or MAE), a lower backbone lr (layer decay), more steps.
  // - Two seeds, not three: each detector costs about 40 s unloaded (300 steps of 8 at 128 px +
  //   evaluation), eight per seed plus two pretrainings; two seeds keep the section near the
  //   12-15 minutes it has in the default run. The spread this gives is stated in the report.
  return {
    seeds: seeds ? seeds.slice(0, 2) : [0, 1], numClasses: 5, vit,
    pretrain: { res: 32, trainSize: 20000, valSize: 500, steps: 1000, batch: 32, lr: 2e-3, weightDecay: 0.05, warmupSteps: 50 },
    det: { res: 128, trainSize: 4000, valSize: 200, sizeRange: [0.04, 0.22], steps: 300, batch: 8, lr: 3e-3, warmupSteps: 30, weightDecay: 0.05, pyramidChannels: 64, headConvs: 2, lsj: null },
    variants: ['a', 'b', 'c', 'd', 'e'], control: 'd',
    hiera: { arch: hieraArch, pretrain: { res: 32, steps: 1000, batch: 32, lr: 2e-3, weightDecay: 0.05, warmupSteps: 50 }, det: { steps: 300, batch: 8, lr: 3e-3, warmupSteps: 30, weightDecay: 0.05 }, neckDim: 64 },
    pictures: { variants: ['a', 'd'], images: 4, scoreThresh: 0.3 },
  };
}
