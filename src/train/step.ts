/**
 * The compiled training step: forward + loss + backward + AdamW in ONE ONNX run.
 *
 * Parameters and AdamW moments enter as graph inputs (named `<param>`, `m.<param>`, `v.<param>`)
 * and leave as outputs (`new.<param>`, `new.m.<param>`, `new.v.<param>`), so one compiled
 * session serves every iteration; the learning rate and the step count t are rank-0 inputs
 * (`lr`, `t`), so any schedule runs on the same session. Drop-path keep masks ([B,1,1], 0/1,
 * one per block and resolution) are drawn from a seeded `Rng` in TypeScript and fed as inputs.
 *
 * Multi-resolution (ResFormer, Tian et al. 2023, Sec. 3.2): all resolutions of one batch run in the
 * SAME graph with shared parameters; the loss combines the per-resolution cross-entropies with the
 * scale-consistency term through `multiResLoss` (src/train/multires-loss.ts).
 */
import { type Graph, type Runtime, type Compiled, type Tensor, type HostTensor, host, softCrossEntropy, grad } from '../graph/index.ts';
import { oneHot } from '../graph/functions.ts';
import { Params, type ParamInfo } from '../nn/params.ts';
import type { Model } from '../models/types.ts';
import type { Rng } from '../util/rng.ts';
import { type AdamWOptions, adamwStep } from './adamw.ts';
import { type TrainState, addStateFeeds, checkStateMatches, stateFromStepOutputs } from './state.ts';
import { multiResLoss } from './multires-loss.ts';

export interface TrainStepOptions {
  /** Batch size (static: one compiled graph per batch size). */
  batch: number;
  /** One training resolution (square, or [H, W]). */
  res?: number | [number, number];
  /** Several resolutions trained jointly (ResFormer); sorted descending internally. */
  resolutions?: number[];
  /** 'ce': integer labels (optionally label-smoothed); 'soft-ce': target distributions (mixup/cutmix). */
  loss?: 'ce' | 'soft-ce';
  /** timm label smoothing for 'ce' (off value eps/K, on value 1-eps+eps/K). */
  labelSmoothing?: number;
  /** Scale-consistency loss weight α (ResFormer); required with several resolutions. */
  multires?: { alpha: number };
  /** Stochastic depth: max drop-path rate, linearly increasing over blocks (timm `dpr`). */
  dropPath?: number;
  optimizer?: AdamWOptions;
  /** Per-parameter lr multipliers (layer-wise lr decay); missing names use 1. */
  lrScales?: ReadonlyMap<string, number>;
  /** Also return the logits of every resolution. */
  returnLogits?: boolean;
  /** Clip models (`inputKind: 'clip'`): frames per clip; the images then hold T frames stacked along the height. */
  frames?: number;
}

export interface StepBatch {
  /** NCHW images, one per resolution in the step's (descending) resolution order. */
  x: Float32Array[];
  /** Integer labels [B] for loss 'ce'. */
  labels?: ArrayLike<number>;
  /** Target distributions [B*K] for loss 'soft-ce'. */
  targets?: Float32Array;
  /** Learning rate of this step (from the schedule). */
  lr: number;
  /** Drop-path mask source (required when dropPath > 0). */
  rng?: Rng;
}

export interface StepResult {
  state: TrainState;
  loss: number;
  /** Per-resolution logits [B*K] when returnLogits. */
  logits?: Float32Array[];
  /** Global gradient norm before clipping (when clipping is on). */
  gradNorm?: number;
}

export interface TrainStep {
  readonly resolutions: [number, number][];
  readonly infos: Map<string, ParamInfo>;
  readonly numClasses: number;
  /** Drop rate of each block (empty when drop path is off). */
  readonly dropRates: number[];
  run(state: TrainState, batch: StepBatch): Promise<StepResult>;
}

let stepCounter = 0;

/** Number of transformer blocks, from the official names `blocks.<i>.*`. */
export function blockCount(infos: ReadonlyMap<string, ParamInfo>): number {
  let n = 0;
  for (const name of infos.keys()) {
    const m = /(?:^|\.)blocks\.(\d+)\./.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/** timm stochastic depth decay rule: rate i = maxRate · i / (depth − 1). */
export function dropPathRates(maxRate: number, depth: number): number[] {
  if (!(maxRate >= 0 && maxRate < 1)) throw new RangeError(`dropPathRates: rate must be in [0, 1), got ${maxRate}`);
  return Array.from({ length: depth }, (_, i) => (depth > 1 ? (maxRate * i) / (depth - 1) : maxRate));
}

/**
 * Drop-path keep masks of one forward pass, drawn from the seeded generator: for each block with
 * rate > 0 and each of its two branches (attention, MLP: timm/sam2 draw them independently), one
 * Bernoulli(1 − rate) per sample, block-major then branch. Blocks with rate 0 get `undefined`
 * (no draw). Index 2·block + branch, the per-branch layout every model's forward takes.
 */
export function drawDropPathMasks(rng: Rng, rates: readonly number[], batch: number): (Float32Array | undefined)[] {
  const out: (Float32Array | undefined)[] = [];
  for (const rate of rates) {
    for (let br = 0; br < 2; br++) {
      if (rate <= 0) { out.push(undefined); continue; }
      const mask = new Float32Array(batch);
      for (let b = 0; b < batch; b++) mask[b] = rng.next() < 1 - rate ? 1 : 0;
      out.push(mask);
    }
  }
  return out;
}

/** Resolutions of the options as [H, W] pairs, descending, each checked against the model. */
export function stepResolutions(model: Model, opts: Pick<TrainStepOptions, 'res' | 'resolutions'>): [number, number][] {
  let rs: [number, number][];
  if (opts.resolutions && opts.resolutions.length) {
    if (opts.res !== undefined) throw new Error('compileTrainStep: give res or resolutions, not both');
    rs = [...opts.resolutions].sort((a, b) => b - a).map((r) => [r, r]);
    if (new Set(opts.resolutions).size !== opts.resolutions.length) throw new Error(`compileTrainStep: duplicate resolutions [${opts.resolutions}]`);
  } else {
    const r = opts.res ?? model.defaultRes;
    rs = [typeof r === 'number' ? [r, r] : [r[0], r[1]]];
  }
  for (const [H, W] of rs) model.checkInputSize(H, W);
  return rs;
}

/**
 * The forward input shape of a batch at H x W: images [B, 3, H, W], or for clip models
 * [B, 3, T, H, W] (the loader's [B, 3, T*H, W] tall batch is the same memory). Throws when the
 * frame count does not fit the model kind.
 */
export function inputShapeOf(model: Model, B: number, H: number, W: number, frames: number | undefined, where: string): number[] {
  if (model.inputKind === 'clip') {
    if (frames === undefined || !Number.isInteger(frames) || frames < 1) {
      throw new Error(`${where}: ${model.family} takes clips [B, 3, T, H, W]; give the frames per clip (clip data such as --data synthetic-clips:8), got ${frames}`);
    }
    return [B, 3, frames, H, W];
  }
  if (frames !== undefined && frames !== 1) throw new Error(`${where}: ${model.family} takes images; the data has ${frames} frames per example (use a video model, e.g. hiera-video-mini)`);
  return [B, 3, H, W];
}

/** Host tensor of one float. */
const scalar = (v: number): HostTensor => host(Float32Array.of(v), []);

/**
 * Compiles (once, lazily) the training step of `model` and returns a runner.
 *
 * @example
 * const step = compileTrainStep(rt, model, { batch: 32, res: 64, loss: 'ce', labelSmoothing: 0.1 });
 * let state = initState(model.paramInfos(), new Rng(0));
 * const { state: next, loss } = await step.run(state, { x: [images], labels, lr: 1e-3 });
 */
export function compileTrainStep(rt: Runtime, model: Model, opts: TrainStepOptions): TrainStep {
  const B = opts.batch;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`compileTrainStep: batch must be a positive integer, got ${B}`);
  const resolutions = stepResolutions(model, opts);
  const R = resolutions.length;
  if (R > 1 && !opts.multires) throw new Error(`compileTrainStep: ${R} resolutions need multires: {alpha} (the ResFormer scale-consistency weight)`);
  const lossKind = opts.loss ?? 'ce';
  const smoothing = opts.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) throw new RangeError(`compileTrainStep: labelSmoothing must be in [0, 1), got ${smoothing}`);
  const infos = model.paramInfos();
  const names = [...infos.keys()];
  const depth = blockCount(infos);
  const dropRates = opts.dropPath ? dropPathRates(opts.dropPath, depth) : [];
  // The model divides kept branches by its own keep probability, so its configured rate must agree.
  const modelRate = (model.config as { dropPathRate?: unknown } | null)?.dropPathRate;
  if (opts.dropPath && typeof modelRate === 'number' && modelRate !== opts.dropPath) {
    throw new Error(`compileTrainStep: dropPath ${opts.dropPath} but the model was built with dropPathRate ${modelRate}; create the model with dropPathRate: ${opts.dropPath}`);
  }
  const key = `train-step-${++stepCounter}`;
  const xShape = (H: number, W: number): number[] => inputShapeOf(model, B, H, W, opts.frames, 'compileTrainStep');
  for (const [H, W] of resolutions) xShape(H, W);

  const numClasses = headClasses(infos);
  const build = (inputs: Readonly<Record<string, Tensor>>, graph: Graph): Record<string, Tensor> => {
    graph.attention = rt.trainingAttention; // forward + backward: the form measured faster to train
    const p = new Params(graph);
    const perRes: { logits: Tensor; cls: Tensor | undefined }[] = [];
    resolutions.forEach(([H, W], ri) => {
      // timm Block: drop_path1 (attention branch) and drop_path2 (MLP branch) draw independent masks.
      const masks = dropRates.length ? dropRates.flatMap((rate, bi) => [0, 1].map((br) => (rate > 0 ? inputs[`dp.${ri}.${bi}.${br}`] : undefined))) : undefined;
      const out = model.forward(p, inputs[`x.${ri}`]!, { train: true, dropPathMasks: masks });
      if (out.logits.rank !== 2 || out.logits.shape[0] !== B) {
        throw new Error(`compileTrainStep: ${model.family} at ${H}x${W} returned logits [${out.logits.shape}], expected [${B}, classes]`);
      }
      perRes.push({ logits: out.logits, cls: out.aux['cls'] ?? out.preLogits });
    });
    const target = inputs['target']!;
    let loss: Tensor;
    if (R === 1) loss = softCrossEntropy(perRes[0]!.logits, target);
    else {
      const cls = perRes.map((r, i) => {
        if (!r.cls) throw new Error(`compileTrainStep: multi-resolution needs the class token: ${model.family} returned neither aux.cls nor preLogits at ${resolutions[i]}`);
        return r.cls;
      });
      loss = multiResLoss(perRes.map((r) => r.logits), cls, target, opts.multires!.alpha).total;
    }
    const params = names.map((n) => inputs[n]!);
    const grads = grad(loss, params);
    const { updated, gradNorm } = adamwStep(
      graph,
      names.map((n, i) => ({
        name: n,
        param: params[i]!,
        grad: grads[i]!,
        m: inputs[`m.${n}`]!,
        v: inputs[`v.${n}`]!,
        decay: infos.get(n)!.decay,
        lrScale: opts.lrScales?.get(n),
      })),
      inputs['lr']!,
      inputs['t']!,
      opts.optimizer,
    );
    const outs: Record<string, Tensor> = { loss };
    for (const u of updated) {
      outs[`new.${u.name}`] = u.param;
      outs[`new.m.${u.name}`] = u.m;
      outs[`new.v.${u.name}`] = u.v;
    }
    if (gradNorm) outs['grad_norm'] = gradNorm;
    if (opts.returnLogits) perRes.forEach((r, i) => (outs[`logits.${i}`] = r.logits));
    return outs;
  };

  let compiled: Promise<Compiled> | null = null;
  const compile = (K: number): Promise<Compiled> => {
    if (!compiled) {
      const specs: Record<string, { shape: readonly number[] }> = {};
      resolutions.forEach(([H, W], ri) => (specs[`x.${ri}`] = { shape: xShape(H, W) }));
      specs['target'] = { shape: [B, K] };
      specs['lr'] = { shape: [] };
      specs['t'] = { shape: [] };
      for (const [n, info] of infos) {
        specs[n] = { shape: info.shape };
        specs[`m.${n}`] = { shape: info.shape };
        specs[`v.${n}`] = { shape: info.shape };
      }
      resolutions.forEach((_, ri) => dropRates.forEach((rate, bi) => [0, 1].forEach((br) => rate > 0 && (specs[`dp.${ri}.${bi}.${br}`] = { shape: [B, 1, 1] }))));
      compiled = rt.compile(build, specs, key);
      compiled.catch(() => (compiled = null));
    }
    return compiled;
  };

  const step: TrainStep = {
    resolutions,
    infos,
    numClasses,
    dropRates,
    async run(state, batch) {
      checkStateMatches(state, infos, 'TrainStep.run');
      if (batch.x.length !== R) throw new Error(`TrainStep.run: got ${batch.x.length} image tensors, the step trains ${R} resolution(s) ${resolutions.map((r) => r.join('x')).join(', ')}`);
      if (!Number.isFinite(batch.lr) || batch.lr < 0) throw new RangeError(`TrainStep.run: lr must be a finite number >= 0, got ${batch.lr}`);
      const K = numClasses;
      let targets: Float32Array;
      if (lossKind === 'soft-ce') {
        if (!batch.targets || batch.targets.length !== B * K) throw new Error(`TrainStep.run: loss 'soft-ce' needs targets of ${B}x${K} = ${B * K} values, got ${batch.targets?.length ?? 'none'}`);
        targets = batch.targets;
      } else {
        if (!batch.labels || batch.labels.length !== B) throw new Error(`TrainStep.run: loss 'ce' needs ${B} labels, got ${batch.labels?.length ?? 'none'}`);
        targets = oneHot(batch.labels, K, smoothing);
      }
      const feeds: Record<string, HostTensor> = { target: host(targets, [B, K]), lr: scalar(batch.lr), t: scalar(state.step + 1) };
      resolutions.forEach(([H, W], ri) => {
        const x = batch.x[ri]!;
        const shape = xShape(H, W);
        if (x.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`TrainStep.run: inputs at slot ${ri} have ${x.length} values, expected [${shape}]`);
        feeds[`x.${ri}`] = host(x, shape);
      });
      if (dropRates.some((r) => r > 0)) {
        if (!batch.rng) throw new Error('TrainStep.run: drop path is on; pass the seeded rng that draws the masks');
        // Masks are drawn resolution-major, then block, then branch, one Bernoulli(keep) per sample.
        resolutions.forEach((_, ri) =>
          drawDropPathMasks(batch.rng!, dropRates, B).forEach((mask, i) => {
            if (mask) feeds[`dp.${ri}.${i >> 1}.${i & 1}`] = host(mask, [B, 1, 1]);
          }),
        );
      }
      addStateFeeds(feeds, state, infos);
      const c = await compile(K);
      const out = await c.run(feeds);
      const next = stateFromStepOutputs(out, names, state.step + 1);
      const res: StepResult = { state: next, loss: (out['loss']!.data as Float32Array)[0]! };
      if (out['grad_norm']) res.gradNorm = (out['grad_norm'].data as Float32Array)[0]!;
      if (opts.returnLogits) res.logits = resolutions.map((_, i) => out[`logits.${i}`]!.data as Float32Array);
      return res;
    },
  };
  return step;
}

/** Number of classes from the classifier head's bias (official name `head.bias`, or the last bias). */
export function headClasses(infos: ReadonlyMap<string, ParamInfo>): number {
  const head = infos.get('head.bias') ?? infos.get('head.fc.bias') ?? infos.get('head.projection.bias');
  if (head) return head.shape[0]!;
  const lastBias = [...infos.values()].filter((i) => i.name.endsWith('.bias') && i.shape.length === 1).pop();
  if (!lastBias) throw new Error('headClasses: the model declares no classifier head (no head.bias)');
  return lastBias.shape[0]!;
}

/**
 * Forward-only evaluation with parameters as inputs (so the same session serves every
 * checkpoint): returns logits [B*K] for images at one resolution.
 */
export function compileEval(rt: Runtime, model: Model, opts: { batch: number; res: number | [number, number]; frames?: number }): {
  run(params: ReadonlyMap<string, Float32Array>, x: Float32Array): Promise<Float32Array>;
} {
  const [H, W] = typeof opts.res === 'number' ? [opts.res, opts.res] : opts.res;
  model.checkInputSize(H, W);
  const per = inputShapeOf(model, 1, H, W, opts.frames, 'eval').reduce((a, b) => a * b, 1); // values per example
  const infos = model.paramInfos();
  const key = `eval-${++stepCounter}`;
  const build = (inputs: Readonly<Record<string, Tensor>>, graph: Graph): Record<string, Tensor> => ({
    logits: model.forward(new Params(graph), inputs['x']!, { train: false }).logits,
  });
  return {
    async run(params, x) {
      const B = x.length / per;
      if (!Number.isInteger(B) || B < 1) throw new Error(`eval: ${x.length} values are not a whole batch of [${inputShapeOf(model, 1, H, W, opts.frames, 'eval').slice(1)}] inputs`);
      const feeds: Record<string, HostTensor> = { x: host(x, inputShapeOf(model, B, H, W, opts.frames, 'eval')) };
      for (const [n, info] of infos) {
        const a = params.get(n);
        if (!a) throw new Error(`eval: parameter '${n}' missing`);
        feeds[n] = host(a, info.shape);
      }
      const out = await rt.run(build, feeds, key);
      return out['logits']!.data as Float32Array;
    },
  };
}
