/**
 * The training loop: epochs over a seeded Loader, one compiled step per batch (forward + loss +
 * backward + AdamW, src/train/step.ts), warmup + cosine lr per step, optional mixup/cutmix and
 * drop path, an optional EMA of the weights (timm ModelEmaV3, src/train/ema.ts: updated after every
 * step, validated beside the raw weights, saved and restored with the checkpoint), periodic
 * validation at one or several resolutions, JSON-lines log, checkpoints.
 *
 * Determinism: batches are pure functions of (seed, epoch, step) (src/data/loader.ts); the random
 * draws of the step (drop-path masks, mixup λ and boxes) come from one `Rng` whose state is saved
 * in every checkpoint; parameter init draws from (seed, 'init'). With the same seed and thread
 * count, a run interrupted and resumed ends with the same weights as an uninterrupted one.
 *
 * Failure handling: a non-finite loss stops the run with an error naming the step, BEFORE the
 * bad update is kept, so the last checkpoint stays the last good state. An AbortSignal (the CLI
 * wires SIGINT to it) stops at the next step boundary after saving a checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Runtime } from '../graph/runtime.ts';
import type { Model } from '../models/types.ts';
import type { Dataset } from '../data/dataset.ts';
import { Loader, TransformedDataset } from '../data/loader.ts';
import { compose, horizontalFlip, normalize } from '../data/transforms.ts';
import { progress, type ProgressStream } from '../util/progress.ts';
import { Rng, hashSeed } from '../util/rng.ts';
import { type TrainState, checkStateMatches, initState } from './state.ts';
import { compileEval, compileTrainStep, blockCount } from './step.ts';
import { cosineLr } from './schedule.ts';
import { layerDecayScales } from './schedule.ts';
import { type MixupOptions, mixBatch } from './mixup.ts';
import { type CheckpointInfo, saveCheckpoint } from '../io/train-checkpoint.ts';
import { resumeRun, stopIfAborted } from './resume.ts';
import { type EmaOptions, WeightEma } from './ema.ts';

export interface TrainOptions {
  epochs: number;
  batch: number;
  /** Training resolutions; several = ResFormer multi-resolution training. */
  resolutions: number[];
  /** Scale-consistency weight α for several resolutions (default 1, the official value). */
  multiresAlpha?: number;
  lr: number;
  minLr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  clipGradNorm?: number;
  labelSmoothing?: number;
  mixup?: Omit<MixupOptions, 'numClasses' | 'labelSmoothing'>;
  dropPath?: number;
  /** Layer-wise lr decay factor (fine-tuning); undefined = off. */
  layerDecay?: number;
  /** Random horizontal flip of training images (default true). */
  hflip?: boolean;
  seed: number;
  /** Resolutions to validate at (default: the training resolutions). */
  valResolutions?: number[];
  /** Validate every N steps in addition to every epoch end (0 = only at epoch ends). */
  valEverySteps?: number;
  /** Checkpoint every N steps in addition to every epoch end (0 = only at epoch ends). */
  checkpointEverySteps?: number;
  /** Stop (after saving) once this many optimizer steps are done in total. */
  maxSteps?: number;
  /** Log a JSON line every N steps (default 10). */
  logEverySteps?: number;
  /** Keep an EMA of the weights (timm ModelEmaV3 semantics); validated beside the raw weights. */
  ema?: EmaOptions;
}

export interface TrainContext {
  rt: Runtime;
  model: Model;
  /** What a checkpoint stores to rebuild the model. */
  modelSpec: { family: string; config: unknown; preset?: string };
  train: Dataset;
  val?: Dataset;
  /** Run directory (checkpoints, log.jsonl). */
  out: string;
  /** Continue from `out`'s last checkpoint. */
  resume?: boolean;
  /** Initial parameters (fine-tuning); default: the model's initialisers from (seed, 'init'). */
  init?: TrainState;
  signal?: AbortSignal;
  progressStream?: ProgressStream;
  /** Extra fields stored in the checkpoint's run options (e.g. the data spec). */
  runInfo?: Record<string, unknown>;
}

export interface ValResult {
  res: number;
  accuracy: number;
  loss: number;
  count: number;
}

export interface TrainSummary {
  state: TrainState;
  steps: number;
  interrupted: boolean;
  lastLoss: number;
  val: ValResult[];
  /** The EMA weights' validation at the same resolutions (when `ema` is on). */
  valEma?: ValResult[];
  /** The EMA weights at the end (when `ema` is on). */
  ema?: Map<string, Float32Array>;
  best?: { name: string; value: number; step: number };
  checkpoint: string;
}

export class TrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainError';
  }
}

function checkOptions(o: TrainOptions): void {
  const posInt = (k: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`train: ${k} must be a positive integer, got ${v}`);
  };
  posInt('epochs', o.epochs);
  posInt('batch', o.batch);
  if (!o.resolutions.length) throw new RangeError('train: give at least one resolution');
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new RangeError(`train: lr must be a finite number > 0, got ${o.lr}`);
  if (o.ema && !(o.ema.decay >= 0 && o.ema.decay < 1)) throw new RangeError(`train: ema decay must be in [0, 1), got ${o.ema.decay} (e.g. 0.999)`);
}

/** Top-1 accuracy and mean CE of `params` on `ds` at one resolution (images normalised as in training). */
export async function evaluate(rt: Runtime, model: Model, params: ReadonlyMap<string, Float32Array>, ds: Dataset, res: number, batch: number, seed = 0): Promise<ValResult> {
  const loader = new Loader(new TransformedDataset(ds, normalize()), { batchSize: batch, resolutions: [res], seed, shuffle: false });
  const ev = compileEval(rt, model, { batch, res, ...(ds.frames !== undefined ? { frames: ds.frames } : {}) });
  let correct = 0;
  let count = 0;
  let lossSum = 0;
  for await (const b of loader.epoch(0)) {
    const x = b.batches[0]!;
    const logits = await ev.run(params, x.x);
    const B = x.labels.length;
    const K = logits.length / B;
    for (let i = 0; i < B; i++) {
      let best = 0;
      let mx = -Infinity;
      for (let k = 0; k < K; k++) if (logits[i * K + k]! > mx) [mx, best] = [logits[i * K + k]!, k];
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.exp(logits[i * K + k]! - mx);
      lossSum += mx + Math.log(s) - logits[i * K + x.labels[i]!]!;
      if (best === x.labels[i]) correct++;
      count++;
    }
  }
  return { res, accuracy: correct / count, loss: lossSum / count, count };
}

/** Runs (or resumes) training; see the module comment. */
export async function train(ctx: TrainContext, o: TrainOptions): Promise<TrainSummary> {
  checkOptions(o);
  const { rt, model } = ctx;
  const infos = model.paramInfos();
  fs.mkdirSync(ctx.out, { recursive: true });
  const logPath = path.join(ctx.out, 'log.jsonl');
  const log = (rec: Record<string, unknown>): void => fs.appendFileSync(logPath, JSON.stringify(rec) + '\n');

  const resolutions = [...o.resolutions].sort((a, b) => b - a);
  for (const r of resolutions) model.checkInputSize(r, r);
  // Data whose class changes when mirrored (motion directions) is never flipped.
  const hflip = o.hflip ?? ctx.train.mirrorInvariant !== false;
  if (hflip && ctx.train.mirrorInvariant === false) throw new TrainError('train: hflip is on but mirroring changes the class of this data (e.g. motion directions); set hflip: false');
  const trainTf = hflip ? compose(horizontalFlip(0.5), normalize()) : normalize();
  const frames = ctx.train.frames;
  if (frames !== undefined && frames > 1 && o.mixup && ((o.mixup.cutmixAlpha ?? 0) > 0 || (o.mixup.mixupAlpha ?? 0) > 0)) {
    throw new TrainError(`train: mixup/cutmix are for images; the data has clips of ${frames} frames (turn --mixup and --cutmix off)`);
  }
  const loader = new Loader(new TransformedDataset(ctx.train, trainTf), { batchSize: o.batch, resolutions, seed: o.seed, dropLast: true });
  const stepsPerEpoch = loader.stepsPerEpoch;
  const totalSteps = o.epochs * stepsPerEpoch;
  const schedule = { baseLr: o.lr, totalSteps, warmupSteps: Math.min(o.warmupSteps ?? 0, totalSteps), minLr: o.minLr ?? 0 };
  const numClasses = ctx.train.numClasses;
  const useMix = !!o.mixup && ((o.mixup.mixupAlpha ?? 0) > 0 || (o.mixup.cutmixAlpha ?? 0) > 0);
  const depth = blockCount(infos);
  const step = compileTrainStep(rt, model, {
    batch: o.batch,
    resolutions: resolutions.length > 1 ? resolutions : undefined,
    res: resolutions.length > 1 ? undefined : resolutions[0],
    loss: useMix ? 'soft-ce' : 'ce',
    labelSmoothing: o.labelSmoothing ?? 0,
    multires: resolutions.length > 1 ? { alpha: o.multiresAlpha ?? 1 } : undefined,
    dropPath: o.dropPath,
    optimizer: { betas: o.betas, eps: o.eps, weightDecay: o.weightDecay, clipGradNorm: o.clipGradNorm },
    lrScales: o.layerDecay !== undefined ? layerDecayScales(infos.keys(), depth, o.layerDecay) : undefined,
    ...(frames !== undefined ? { frames } : {}),
  });
  if (step.numClasses !== numClasses) throw new TrainError(`train: the model has ${step.numClasses} classes but the data has ${numClasses}; build the model with numClasses ${numClasses}`);

  const runOptions: Record<string, unknown> = { ...o, ...(ctx.runInfo ?? {}) };
  let state: TrainState;
  let aug: Rng;
  let epoch0 = 0;
  let stepInEpoch0 = 0;
  let best: CheckpointInfo['bestMetric'];
  let ema: WeightEma | undefined;
  if (ctx.resume) {
    const ck = resumeRun(ctx.out, ctx.modelSpec, infos, 'aug', (m) => new TrainError(m));
    state = ck.state;
    if (o.ema) {
      if (!ck.ema) throw new TrainError(`resume: the checkpoint in ${ctx.out} was saved without an EMA; resume without --ema, or start a new run with it`);
      if (JSON.stringify(ck.info.ema) !== JSON.stringify(new WeightEma(new Map(), o.ema).options)) {
        throw new TrainError(`resume: the checkpoint's EMA is ${JSON.stringify(ck.info.ema)}, the run asks for ${JSON.stringify(o.ema)}; resume with the same --ema options`);
      }
      ema = WeightEma.restore(ck.ema, state.params, o.ema, `resume from ${ctx.out}`);
    } else if (ck.ema) {
      throw new TrainError(`resume: the checkpoint in ${ctx.out} keeps an EMA (decay ${ck.info.ema?.decay}); pass the same --ema to continue it`);
    }
    aug = ck.rng;
    epoch0 = ck.epoch0;
    stepInEpoch0 = ck.stepInEpoch0;
    best = ck.info.bestMetric;
    log({ type: 'resume', step: state.step, epoch: epoch0, stepInEpoch: stepInEpoch0 });
  } else {
    state = ctx.init ?? initState(infos, new Rng(hashSeed(o.seed, 'init')));
    checkStateMatches(state, infos, 'train: initial state');
    aug = new Rng(hashSeed(o.seed, 'train-step'));
    // timm creates the EMA as a copy of the model before training (or of the fine-tuning start).
    if (o.ema) ema = new WeightEma(state.params, o.ema);
    log({ type: 'start', model: ctx.modelSpec, options: runOptions, stepsPerEpoch, totalSteps });
  }

  let checkpoint = '';
  const save = (epoch: number, stepInEpoch: number): void => {
    checkpoint = saveCheckpoint(ctx.out, state, {
      model: ctx.modelSpec,
      run: runOptions,
      epoch,
      stepInEpoch,
      rng: { aug: aug.state() },
      bestMetric: best,
      ...(ema ? { ema: ema.options } : {}),
    }, ema?.weights);
  };
  const valRes = o.valResolutions ?? resolutions;
  let lastVal: ValResult[] = [];
  let lastValEma: ValResult[] | undefined;
  const meanAcc = (xs: ValResult[]): number => xs.reduce((s, v) => s + v.accuracy, 0) / xs.length;
  const validate = async (epoch: number): Promise<void> => {
    if (!ctx.val) return;
    lastVal = [];
    for (const r of valRes) lastVal.push(await evaluate(rt, model, state.params, ctx.val, r, o.batch));
    const mean = meanAcc(lastVal);
    if (!best || mean > best.value) best = { name: 'val_accuracy', value: mean, step: state.step };
    const rec: Record<string, unknown> = { type: 'val', step: state.step, epoch, results: lastVal, mean_accuracy: mean };
    if (ema) {
      // The EMA weights through the same compiled evaluation (parameters are graph inputs).
      lastValEma = [];
      for (const r of valRes) lastValEma.push(await evaluate(rt, model, ema.weights, ctx.val, r, o.batch));
      rec.ema_results = lastValEma;
      rec.ema_mean_accuracy = meanAcc(lastValEma);
    }
    log(rec);
  };
  const summary = (interrupted: boolean): TrainSummary => ({
    state, steps: state.step, interrupted, lastLoss, val: lastVal, best, checkpoint,
    ...(ema ? { ema: ema.weights, ...(lastValEma ? { valEma: lastValEma } : {}) } : {}),
  });

  let lastLoss = NaN;
  const logEvery = o.logEverySteps ?? 10;
  const imgsPerStep = o.batch * resolutions.length;
  for (let epoch = epoch0; epoch < o.epochs; epoch++) {
    const start = epoch === epoch0 ? stepInEpoch0 : 0;
    const bar = stepsPerEpoch - start > 0 ? progress(stepsPerEpoch - start, `epoch ${epoch + 1}/${o.epochs}`, { stream: ctx.progressStream }) : null;
    let s = start;
    for await (const b of loader.epoch(epoch, start)) {
      if (stopIfAborted(ctx.signal, { step: state.step, epoch, stepInEpoch: s }, save, bar, log)) return summary(true);
      const t0 = performance.now();
      const lr = cosineLr(schedule, state.step);
      const xs = b.batches.map((x) => x.x);
      const labels = b.batches[0]!.labels;
      let targets: Float32Array | undefined;
      if (useMix) {
        targets = mixBatch(aug, xs, b.batches.map((x) => x.shape), labels, { ...o.mixup, numClasses, labelSmoothing: o.labelSmoothing ?? 0 }).targets;
      }
      const r = await step.run(state, { x: xs, labels, targets, lr, rng: aug });
      if (!Number.isFinite(r.loss)) {
        log({ type: 'error', step: state.step + 1, epoch, stepInEpoch: s, loss: String(r.loss) });
        bar?.done();
        throw new TrainError(
          `train: loss is ${r.loss} at step ${state.step + 1} (epoch ${epoch + 1}, batch ${s + 1}, lr ${lr.toExponential(3)}); stopped without applying it. ` +
            (checkpoint || fs.existsSync(path.join(ctx.out, 'last.json')) ? `The last good checkpoint is ${path.join(ctx.out, 'last.json')}. ` : 'No checkpoint was saved yet. ') +
            'Lower the lr, enable --clip-grad, or check the data for NaN/Inf.',
        );
      }
      state = r.state;
      lastLoss = r.loss;
      ema?.update(state.params, state.step);
      s++;
      const dt = (performance.now() - t0) / 1000;
      bar?.tick(1, { loss: r.loss, lr, img_s: imgsPerStep / dt });
      if (state.step % logEvery === 0) log({ type: 'step', step: state.step, epoch, loss: r.loss, lr, img_s: imgsPerStep / dt });
      if (o.valEverySteps && state.step % o.valEverySteps === 0 && s < stepsPerEpoch) await validate(epoch);
      const done = o.maxSteps !== undefined && state.step >= o.maxSteps;
      if ((o.checkpointEverySteps && state.step % o.checkpointEverySteps === 0) || done) {
        if (s === stepsPerEpoch) save(epoch + 1, 0);
        else save(epoch, s);
      }
      if (done) {
        bar?.done();
        return summary(true);
      }
    }
    bar?.done();
    await validate(epoch);
    save(epoch + 1, 0);
  }
  log({ type: 'done', step: state.step, best });
  return summary(false);
}
