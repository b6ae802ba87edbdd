/**
 * A compact, seeded training loop for the main job's experiments: the same
 * compiled step as `anyres train` (forward + loss + backward + AdamW in one
 * ONNX run), with a hook every N steps so the experiments can record the
 * window similarity of the position embedding as it is learned (Fig. 4).
 */
import type { Dataset } from '../../data/dataset.ts';
import { Loader, TransformedDataset } from '../../data/loader.ts';
import { compose, horizontalFlip, normalize } from '../../data/transforms.ts';
import type { Runtime } from '../../graph/runtime.ts';
import type { Model } from '../../models/types.ts';
import { cosineLr } from '../../train/schedule.ts';
import { type TrainState, initState } from '../../train/state.ts';
import { compileTrainStep } from '../../train/step.ts';
import { type MaeStepModel, compileMaeStep } from '../../train/mae.ts';
import { evaluate } from '../../train/trainer.ts';
import { Rng, hashSeed } from '../../util/rng.ts';
import { progress } from '../../util/progress.ts';

export interface FitOptions {
  steps: number;
  batch: number;
  /** One resolution, or several (ResFormer multi-resolution training, scale-consistency loss). */
  resolutions: number[];
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  seed: number;
  labelSmoothing?: number;
  multiresAlpha?: number;
  clipGradNorm?: number;
  /** Start from these parameters (fine-tuning) instead of the initialisers. */
  init?: ReadonlyMap<string, Float32Array>;
  /** Called every `hookEvery` steps (and after the last) with the current parameters. */
  hook?: (step: number, params: ReadonlyMap<string, Float32Array>, loss: number) => void;
  hookEvery?: number;
  /** Called with every batch before its step (tests check that paired runs see the same batches). */
  onBatch?: (step: number, labels: Int32Array, x: readonly Float32Array[]) => void;
  label?: string;
}

export interface FitResult {
  params: Map<string, Float32Array>;
  losses: { step: number; loss: number }[];
  seconds: number;
  imagesPerSecond: number;
}

/**
 * The batches `fit` trains on: a pure function of (seed, batch, resolutions), independent of the
 * model, so two models fitted with the same seed see the same images in the same order with the
 * same flips (the pairing of src/eval/paired.ts).
 */
export function fitLoader(train: Dataset, o: Pick<FitOptions, 'seed' | 'batch' | 'resolutions'>): Loader {
  return new Loader(new TransformedDataset(train, compose(horizontalFlip(0.5), normalize())), {
    batchSize: o.batch,
    resolutions: [...o.resolutions].sort((a, b) => b - a),
    seed: hashSeed(o.seed, 'data'),
    dropLast: true,
  });
}

/**
 * The initial state `fit` starts from (before `init` overrides): every parameter drawn from
 * (seed, 'init', its name) (src/nn/params.ts `initWeights`), so models that share a parameter name
 * start with bit-identical values for it.
 */
export function fitInitialState(model: Model, seed: number): TrainState {
  return initState(model.paramInfos(), new Rng(hashSeed(seed, 'init')));
}

/** Trains `model` on `train` for a fixed number of steps. */
export async function fit(rt: Runtime, model: Model, train: Dataset, o: FitOptions): Promise<FitResult> {
  const resolutions = [...o.resolutions].sort((a, b) => b - a);
  const loader = fitLoader(train, o);
  const step = compileTrainStep(rt, model, {
    batch: o.batch,
    res: resolutions.length === 1 ? resolutions[0] : undefined,
    resolutions: resolutions.length > 1 ? resolutions : undefined,
    multires: resolutions.length > 1 ? { alpha: o.multiresAlpha ?? 1 } : undefined,
    labelSmoothing: o.labelSmoothing ?? 0.1,
    optimizer: { weightDecay: o.weightDecay, clipGradNorm: o.clipGradNorm },
  });
  let state: TrainState = fitInitialState(model, o.seed);
  if (o.init) {
    for (const [k, v] of o.init) {
      if (!state.params.has(k)) throw new Error(`fit: initial parameter '${k}' is not a parameter of the model`);
      if (state.params.get(k)!.length !== v.length) throw new Error(`fit: initial parameter '${k}' has ${v.length} values, the model needs ${state.params.get(k)!.length}`);
      state.params.set(k, Float32Array.from(v));
    }
  }
  const schedule = { baseLr: o.lr, totalSteps: o.steps, warmupSteps: Math.min(o.warmupSteps, o.steps), minLr: o.lr * 0.01 };
  const bar = progress(o.steps, o.label ?? 'train');
  const losses: { step: number; loss: number }[] = [];
  const t0 = performance.now();
  const every = o.hookEvery ?? 0;
  let epoch = 0;
  let lastLoss = NaN;
  outer: for (;;) {
    for await (const b of loader.epoch(epoch)) {
      if (state.step >= o.steps) break outer;
      const lr = cosineLr(schedule, state.step);
      o.onBatch?.(state.step, b.batches[0]!.labels, b.batches.map((x) => x.x));
      const r = await step.run(state, { x: b.batches.map((x) => x.x), labels: b.batches[0]!.labels, lr });
      if (!Number.isFinite(r.loss)) throw new Error(`fit(${o.label ?? 'train'}): loss is ${r.loss} at step ${state.step + 1}; lower the lr`);
      state = r.state;
      lastLoss = r.loss;
      losses.push({ step: state.step, loss: r.loss });
      bar.tick(1, { loss: r.loss, lr });
      if (every > 0 && state.step % every === 0) o.hook?.(state.step, state.params, r.loss);
    }
    epoch++;
  }
  bar.done();
  if (every === 0 || state.step % every !== 0) o.hook?.(state.step, state.params, lastLoss);
  const seconds = (performance.now() - t0) / 1000;
  return { params: state.params, losses, seconds, imagesPerSecond: (o.steps * o.batch * resolutions.length) / seconds };
}

export interface FitMaeOptions {
  steps: number;
  batch: number;
  res: number;
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  seed: number;
  /** Fraction of mask units dropped (default the model's). */
  maskRatio?: number;
  label?: string;
}

/**
 * MAE pretraining with `fit`'s conventions: the same batches as `fit` for the seed (`fitLoader`),
 * per-name initial weights (`fitInitialState`), the cosine schedule, and masks drawn from
 * (seed, 'mask'). Works for either MAE (src/train/mae.ts `MaeStepModel`).
 */
export async function fitMae(rt: Runtime, model: MaeStepModel, train: Dataset, o: FitMaeOptions): Promise<Omit<FitResult, 'imagesPerSecond'>> {
  const loader = fitLoader(train, { seed: o.seed, batch: o.batch, resolutions: [o.res] });
  const step = compileMaeStep(rt, model, { batch: o.batch, res: o.res, ...(o.maskRatio !== undefined ? { maskRatio: o.maskRatio } : {}), optimizer: { weightDecay: o.weightDecay } });
  let state: TrainState = initState(model.paramInfos(), new Rng(hashSeed(o.seed, 'init')));
  const rng = new Rng(hashSeed(o.seed, 'mask'));
  const schedule = { baseLr: o.lr, totalSteps: o.steps, warmupSteps: Math.min(o.warmupSteps, o.steps), minLr: o.lr * 0.01 };
  const bar = progress(o.steps, o.label ?? 'mae');
  const losses: { step: number; loss: number }[] = [];
  const t0 = performance.now();
  outer: for (let epoch = 0; ; epoch++) {
    for await (const b of loader.epoch(epoch)) {
      if (state.step >= o.steps) break outer;
      const lr = cosineLr(schedule, state.step);
      const r = await step.run(state, { x: b.batches[0]!.x, lr, rng });
      if (!Number.isFinite(r.loss)) throw new Error(`fitMae(${o.label ?? 'mae'}): loss is ${r.loss} at step ${state.step + 1}; lower the lr`);
      state = r.state;
      losses.push({ step: state.step, loss: r.loss });
      bar.tick(1, { loss: r.loss, lr });
    }
  }
  bar.done();
  return { params: state.params, losses, seconds: (performance.now() - t0) / 1000 };
}

/** Top-1 accuracy in percent at one test resolution. */
export async function accuracy(rt: Runtime, model: Model, params: ReadonlyMap<string, Float32Array>, ds: Dataset, res: number, batch = 100): Promise<number> {
  const r = await evaluate(rt, model, params, ds, res, Math.min(batch, ds.length));
  return 100 * r.accuracy;
}
