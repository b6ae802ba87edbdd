/**
 * The detection training loop: `trainDetector` runs the compiled FCOS step (src/det/train-step.ts)
 * over seeded batches of a `DetDataset` (src/det/data/loader.ts) with warm-up + cosine lr per step,
 * a JSON-lines log, progress, atomic checkpoints and bit-for-bit `resume`.
 *
 * Determinism: batch k of epoch e is a pure function of (seed, e, k) (DetLoader); the drop-path
 * masks of step s come from `Rng(hashSeed(seed, 'det-drop-path', s))`; parameters start from
 * `init` or the detector's initialisers at (seed, 'init'). So a run resumed from a checkpoint
 * ends with the same weights as an uninterrupted one (same thread count).
 *
 * The checkpoint stores the whole `DetectorSpec` as its model config (family 'detector'), so
 * `loadDetector(dir)` rebuilds detector + weights from the checkpoint alone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Runtime } from '../graph/runtime.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { progress, type ProgressStream } from '../eval/progress.ts';
import { Rng, hashSeed } from '../util/rng.ts';
import type { Weights } from '../nn/params.ts';
import { type TrainState, checkStateMatches, stateFromParams } from '../train/state.ts';
import { cosineLr, type CosineSchedule } from '../train/schedule.ts';
import { type CheckpointInfo, loadCheckpoint, saveCheckpoint } from '../train/checkpoint.ts';
import { DetLoader } from './data/loader.ts';
import { type Detector, type DetectorSpec, createDetector } from './detector.ts';
import { detTrainStep } from './train-step.ts';
import { type EvaluateOptions, type DetEvalResult, evaluateDetector } from './evaluate.ts';
import type { DetDataset } from './types.ts';

export interface DetTrainOptions {
  /** Input size [H, W] (any size the backbone takes). */
  size: [number, number];
  batch: number;
  /** Total optimizer steps (the schedule's length). */
  steps: number;
  /** Peak lr (after warm-up). */
  lr: number;
  /** Linear warm-up steps from `warmupInitLr` (default 0, from 0). */
  warmupSteps?: number;
  warmupInitLr?: number;
  /** Final lr of the cosine (default 0). */
  minLr?: number;
  /** AdamW: decoupled weight decay (default 0.05, applied to ParamInfo.decay parameters), betas, eps, global-norm clipping. */
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  clipGradNorm?: number;
  /** Layer-wise lr decay of the backbone's blocks (ViTDet ViT-B: 0.7); undefined = off. */
  layerDecay?: number;
  seed: number;
  /** Use the dataset's augmented view (large-scale jitter) for training (default true). */
  augment?: boolean;
  /** Image normalisation (default ImageNet mean/std); stored in the checkpoint for inference. */
  mean?: readonly number[];
  std?: readonly number[];
  /** Checkpoint every N steps (the end is always saved; default 0 = only at the end). */
  checkpointEverySteps?: number;
  /** Log line every N steps (default 10). */
  logEverySteps?: number;
  /** Evaluate on `ctx.val` every N steps (default 0 = only at the end, when `val` is given). */
  evalEverySteps?: number;
  /** Inference settings of those evaluations. */
  evalOptions?: EvaluateOptions;
  /** Stop (after saving) once this many steps are done (the schedule still spans `steps`). */
  stopAfter?: number;
}

export interface DetTrainContext {
  rt: Runtime;
  detector: Detector;
  train: DetDataset;
  /** Evaluated with COCO AP at `evalEverySteps` and at the end. */
  val?: DetDataset;
  /** Run directory (checkpoints, log.jsonl). */
  out: string;
  /** Continue from `out`'s last checkpoint. */
  resume?: boolean;
  /** Initial parameters (e.g. a backbone converted from a classifier plus a fresh head). */
  init?: ReadonlyMap<string, Float32Array> | Weights;
  signal?: AbortSignal;
  progressStream?: ProgressStream;
  /** Extra fields stored in the checkpoint's run options (data spec, posembed init...). */
  runInfo?: Record<string, unknown>;
}

export interface DetTrainSummary {
  state: TrainState;
  steps: number;
  /** Stopped early (signal or stopAfter) rather than at `steps`. */
  interrupted: boolean;
  lastLoss: number;
  /** Losses of every step run in this call (total), for curves. */
  losses: number[];
  eval?: DetEvalResult;
  checkpoint: string;
}

export const DETECTOR_FAMILY = 'detector';

export class DetTrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DetTrainError';
  }
}

function checkOptions(o: DetTrainOptions): void {
  const posInt = (k: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`trainDetector: ${k} must be a positive integer, got ${v}`);
  };
  posInt('batch', o.batch);
  posInt('steps', o.steps);
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new RangeError(`trainDetector: lr must be a finite number > 0, got ${o.lr}`);
}

const toParamMap = (w: ReadonlyMap<string, Float32Array> | Weights): Map<string, Float32Array> =>
  new Map([...w].map(([k, v]) => [k, v instanceof Float32Array ? v : v.data]));

/**
 * Trains (or resumes) a detector; see the module comment.
 *
 * @example
 * const det = createDetector({ backbone: { family: 'vitdet', config: 'vitdet-mini' }, numClasses: 5 });
 * const r = await trainDetector({ rt, detector: det, train: ds, val, out: 'runs/det' },
 *   { size: [128, 128], batch: 8, steps: 500, lr: 1e-3, warmupSteps: 50, seed: 0, layerDecay: 0.7 });
 */
export async function trainDetector(ctx: DetTrainContext, o: DetTrainOptions): Promise<DetTrainSummary> {
  checkOptions(o);
  const { rt, detector: det } = ctx;
  const [H, W] = o.size;
  det.checkInputSize(H, W);
  fs.mkdirSync(ctx.out, { recursive: true });
  const logPath = path.join(ctx.out, 'log.jsonl');
  const log = (rec: Record<string, unknown>): void => fs.appendFileSync(logPath, JSON.stringify(rec) + '\n');
  const mean = o.mean ?? IMAGENET_MEAN;
  const std = o.std ?? IMAGENET_STD;
  const loader = new DetLoader(ctx.train, { batchSize: o.batch, size: o.size, seed: o.seed, dropLast: true, augment: o.augment ?? true, mean, std });
  const spe = loader.stepsPerEpoch;
  const schedule: CosineSchedule = {
    baseLr: o.lr, totalSteps: o.steps, warmupSteps: Math.min(o.warmupSteps ?? 0, o.steps), warmupInitLr: o.warmupInitLr ?? 0, minLr: o.minLr ?? 0,
  };
  const step = detTrainStep(rt, det, {
    batch: o.batch, size: o.size, layerDecay: o.layerDecay,
    optimizer: { betas: o.betas, eps: o.eps, weightDecay: o.weightDecay, clipGradNorm: o.clipGradNorm },
  });
  if (ctx.train.classNames.length !== det.numClasses) {
    throw new DetTrainError(`trainDetector: the detector has ${det.numClasses} classes but the data has ${ctx.train.classNames.length} (${ctx.train.classNames.join(', ')}); build it with numClasses ${ctx.train.classNames.length}`);
  }
  const modelSpec = { family: DETECTOR_FAMILY, config: det.spec };
  // What the checkpoint and log record: plain data only (no progress stream of the eval options).
  const { progressStream: _stream, ...evalData } = o.evalOptions ?? {};
  void _stream;
  const runOptions: Record<string, unknown> = { ...o, evalOptions: o.evalOptions ? evalData : undefined, mean: [...mean], std: [...std], ...(ctx.runInfo ?? {}) };

  let state: TrainState;
  let best: CheckpointInfo['bestMetric'];
  if (ctx.resume) {
    const ck = loadCheckpoint(ctx.out);
    if (ck.info.model.family !== DETECTOR_FAMILY || JSON.stringify(ck.info.model.config) !== JSON.stringify(det.spec)) {
      throw new DetTrainError(`resume: the checkpoint in ${ctx.out} is for ${ck.info.model.family} ${JSON.stringify(ck.info.model.config).slice(0, 200)}..., not the requested detector`);
    }
    checkStateMatches(ck.state, step.infos, `resume from ${ctx.out}`);
    state = ck.state;
    best = ck.info.bestMetric;
    log({ type: 'resume', step: state.step });
  } else {
    state = stateFromParams(ctx.init ? toParamMap(ctx.init) : det.init(o.seed));
    checkStateMatches(state, step.infos, 'trainDetector: initial parameters');
    log({ type: 'start', model: modelSpec, options: runOptions, stepsPerEpoch: spe, totalSteps: o.steps });
  }

  let checkpoint = '';
  const save = (): void => {
    checkpoint = saveCheckpoint(ctx.out, state, {
      model: modelSpec, run: runOptions, epoch: Math.floor(state.step / spe), stepInEpoch: state.step % spe, rng: {}, bestMetric: best,
    });
  };
  let lastEval: DetEvalResult | undefined;
  const evaluate = async (): Promise<void> => {
    if (!ctx.val) return;
    lastEval = await evaluateDetector(rt, det, state.params, ctx.val, o.size, { mean, std, progressStream: ctx.progressStream, ...(o.evalOptions ?? {}) });
    const ap = lastEval.stats?.[0];
    if (ap !== undefined && (!best || ap > best.value)) best = { name: 'bbox_AP', value: ap, step: state.step };
    log({ type: 'eval', step: state.step, stats: lastEval.stats, statsNames: lastEval.statsNames, msPerImage: lastEval.msPerImage });
  };

  const losses: number[] = [];
  let lastLoss = NaN;
  const logEvery = o.logEverySteps ?? 10;
  const end = Math.min(o.steps, o.stopAfter ?? o.steps);
  const first = state.step;
  const bar = end - first > 0 ? progress(end - first, 'detect', { stream: ctx.progressStream }) : null;
  const batchAt = (s: number): ReturnType<DetLoader['batch']> => {
    const p = loader.batch(Math.floor(s / spe), s % spe);
    p.catch(() => undefined);
    return p;
  };
  let next = first < end ? batchAt(first) : null;
  while (state.step < end) {
    if (ctx.signal?.aborted) {
      save();
      bar?.done();
      log({ type: 'interrupted', step: state.step });
      return { state, steps: state.step, interrupted: true, lastLoss, losses, eval: lastEval, checkpoint };
    }
    const s = state.step;
    const b = await next!;
    next = s + 1 < end ? batchAt(s + 1) : null; // rendered while the step runs
    const t0 = performance.now();
    const lr = cosineLr(schedule, s);
    const r = await step.run(state, { x: b.x, objects: b.targets.map((t) => t.objects), lr, rng: new Rng(hashSeed(o.seed, 'det-drop-path', s)) });
    if (!Number.isFinite(r.loss)) {
      log({ type: 'error', step: s + 1, loss: String(r.loss) });
      bar?.done();
      throw new DetTrainError(
        `trainDetector: loss is ${r.loss} at step ${s + 1} (lr ${lr.toExponential(3)}); stopped without applying it. ` +
          (fs.existsSync(path.join(ctx.out, 'last.json')) ? `The last good checkpoint is ${path.join(ctx.out, 'last.json')}. ` : 'No checkpoint was saved yet. ') +
          'Lower the lr, set clipGradNorm, or check the boxes for NaN/Inf.',
      );
    }
    state = r.state;
    lastLoss = r.loss;
    losses.push(r.loss);
    const dt = (performance.now() - t0) / 1000;
    bar?.tick(1, { loss: r.loss, lr, img_s: o.batch / dt });
    if (state.step % logEvery === 0 || state.step === end) {
      log({ type: 'step', step: state.step, loss: r.loss, cls: r.lossCls, box: r.lossBox, ctr: r.lossCtr, num_pos: r.numPos, lr, img_s: o.batch / dt });
    }
    if (o.evalEverySteps && state.step % o.evalEverySteps === 0 && state.step < o.steps) await evaluate();
    if (o.checkpointEverySteps && state.step % o.checkpointEverySteps === 0 && state.step < end) save();
  }
  bar?.done();
  const finished = state.step >= o.steps;
  if (finished && first < end) await evaluate();
  save();
  log({ type: finished ? 'done' : 'stopped', step: state.step, best });
  return { state, steps: state.step, interrupted: !finished, lastLoss, losses, eval: lastEval, checkpoint };
}

/**
 * Rebuilds the detector and its weights from a checkpoint alone (a run directory or its
 * `last.json`), with the normalisation it was trained with.
 */
export function loadDetector(p: string): { detector: Detector; params: Map<string, Float32Array>; info: CheckpointInfo; mean: number[]; std: number[] } {
  const { info, state } = loadCheckpoint(p);
  if (info.model.family !== DETECTOR_FAMILY) throw new Error(`loadDetector: ${p} holds a '${info.model.family}' checkpoint, not a detector (family '${DETECTOR_FAMILY}')`);
  const detector = createDetector(info.model.config as DetectorSpec);
  checkStateMatches(state, detector.paramInfos(), `loadDetector(${p})`);
  const arr = (v: unknown, d: readonly number[]): number[] => (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number') ? (v as number[]) : [...d]);
  return { detector, params: state.params, info, mean: arr(info.run['mean'], IMAGENET_MEAN), std: arr(info.run['std'], IMAGENET_STD) };
}
