/**
 * Hiera MAE pretraining (Ryali et al. 2023, Sec. 3; facebookresearch/hiera `hiera_mae.py`):
 * a compiled step (forward + norm-pix loss + backward + AdamW in ONE ONNX run, as step.ts) and a
 * loop with the same JSON-lines log, checkpoints and bit-for-bit resume as the classifier trainer.
 *
 * Masks are drawn per image from a seeded `Rng` (`randomMaskUnits`: keep the
 * `int(#MUs * (1 - ratio))` units with the smallest noise) and enter the step as graph inputs: the
 * 0/1 mask and the int64 kept / restore indices computed from it (`maskIndexFeeds`). The number of
 * kept units is fixed by the ratio, so one compiled session serves every batch.
 *
 * While pretraining we log how "window-tiled" the position embedding becomes (Bolya et al. 2024,
 * Sec. 3 / Fig. 4: MAE-pretrained Hiera learns a per-window pattern): `windowSimilarity` over
 * mask-unit-sized windows of the embedding at the training token grid. For 'abswin' encoders,
 * `embed` is the global part interpolated to the grid and `combined` the full global + tiled window.
 *
 * @example
 * const r = await pretrainMae({ model: 'hiera-mini', data, res: 64, steps: 200, batch: 16, lr: 1.5e-4, seed: 0 });
 * // r.encoder: Map with pos_embed, patch_embed.*, blocks.* (loadable by createHiera of the same preset)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Compiled, type Graph, type HostTensor, type Tensor, Runtime, grad, host } from '../graph/index.ts';
import { Params, type ParamInfo } from '../nn/params.ts';
import { type HieraMaeConfig, type HieraMaeModel, type MaeMaskInputs, createHieraMae, maskIndexFeeds, randomMaskUnits } from '../models/hiera-mae.ts';
import { absWinEmbed } from '../posembed/abswin.ts';
import { resample2d } from '../posembed/resample.ts';
import { tokensToGrid } from '../posembed/reference.ts';
import { windowSimilarity } from '../posembed/similarity.ts';
import type { Dataset } from '../data/dataset.ts';
import { Loader, TransformedDataset } from '../data/loader.ts';
import { compose, horizontalFlip, normalize } from '../data/transforms.ts';
import { progress, type ProgressStream } from '../util/progress.ts';
import { serializeSafetensors } from '../io/safetensors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { Rng, hashSeed } from '../util/rng.ts';
import { createHiera } from '../models/hiera.ts';
import { type AdamWOptions, adamwStep } from './adamw.ts';
import { type TrainState, addStateFeeds, checkStateMatches, initState, stateFromParams, stateFromStepOutputs } from './state.ts';
import { cosineLr } from './schedule.ts';
import { saveCheckpoint } from '../io/train-checkpoint.ts';
import { resumeRun, stopIfAborted } from './resume.ts';

export interface MaeStepOptions {
  batch: number;
  /** Training resolution (square, or [H, W]); default the model's input size. */
  res?: number | [number, number];
  /** Fraction of mask units hidden per image (default the model's, 0.6). */
  maskRatio?: number;
  optimizer?: AdamWOptions;
}

export interface MaeStepResult {
  state: TrainState;
  loss: number;
}

export interface MaeStep {
  readonly res: [number, number];
  readonly numMaskUnits: number;
  readonly lenKeep: number;
  readonly infos: Map<string, ParamInfo>;
  /** One optimizer step on normalised images x [B*3*H*W]; the mask is drawn from `rng`, or given ([B*#MUs], 1 = keep). */
  run(state: TrainState, batch: { x: Float32Array; lr: number; rng?: Rng; mask?: ArrayLike<number> }): Promise<MaeStepResult>;
}

let maeStepCounter = 0;

/**
 * What the compiled step needs of an MAE: Hiera's (src/models/hiera-mae.ts) and the plain ViT's
 * (src/models/vit-mae.ts) share the mask convention (1 = keep, `maskIndexFeeds`).
 */
export interface MaeStepModel {
  readonly defaultRes: [number, number];
  readonly config: { maskRatio: number };
  layoutAt(H: number, W: number): { numMaskUnits: number };
  lenKeep(H: number, W: number, ratio?: number): number;
  forward(p: Params, x: Tensor, masks: MaeMaskInputs): { loss: Tensor };
  paramInfos(): Map<string, ParamInfo>;
}

/** Compiles (lazily, once) the MAE pretraining step of `model`. */
export function compileMaeStep(rt: Runtime, model: MaeStepModel, opts: MaeStepOptions): MaeStep {
  const B = opts.batch;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`compileMaeStep: batch must be a positive integer, got ${B}`);
  const r = opts.res ?? model.defaultRes;
  const [H, W]: [number, number] = typeof r === 'number' ? [r, r] : [r[0], r[1]];
  const lay = model.layoutAt(H, W);
  const ratio = opts.maskRatio ?? model.config.maskRatio;
  const K = model.lenKeep(H, W, ratio);
  const nw = lay.numMaskUnits;
  const infos = model.paramInfos();
  const names = [...infos.keys()];
  const key = `mae-step-${++maeStepCounter}`;

  const build = (inputs: Readonly<Record<string, Tensor>>, graph: Graph): Record<string, Tensor> => {
    graph.attention = rt.trainingAttention; // forward + backward: the form measured faster to train
    const out = model.forward(new Params(graph), inputs['x']!, { mask: inputs['mask']!, keep: inputs['keep']!, restore: inputs['restore']! });
    const params = names.map((n) => inputs[n]!);
    const grads = grad(out.loss, params);
    const { updated } = adamwStep(
      graph,
      names.map((n, i) => ({ name: n, param: params[i]!, grad: grads[i]!, m: inputs[`m.${n}`]!, v: inputs[`v.${n}`]!, decay: infos.get(n)!.decay })),
      inputs['lr']!,
      inputs['t']!,
      opts.optimizer,
    );
    const outs: Record<string, Tensor> = { loss: out.loss };
    for (const u of updated) {
      outs[`new.${u.name}`] = u.param;
      outs[`new.m.${u.name}`] = u.m;
      outs[`new.v.${u.name}`] = u.v;
    }
    return outs;
  };

  let compiled: Promise<Compiled> | null = null;
  const compile = (): Promise<Compiled> => {
    if (!compiled) {
      const specs: Record<string, { shape: readonly number[]; dtype?: 'float32' | 'int64' }> = {
        x: { shape: [B, 3, H, W] },
        mask: { shape: [B, nw] },
        keep: { shape: [B, K], dtype: 'int64' },
        restore: { shape: [B, nw], dtype: 'int64' },
        lr: { shape: [] },
        t: { shape: [] },
      };
      for (const [n, info] of infos) {
        specs[n] = { shape: info.shape };
        specs[`m.${n}`] = { shape: info.shape };
        specs[`v.${n}`] = { shape: info.shape };
      }
      compiled = rt.compile(build, specs, key);
      compiled.catch(() => (compiled = null));
    }
    return compiled;
  };

  return {
    res: [H, W],
    numMaskUnits: nw,
    lenKeep: K,
    infos,
    async run(state, batch) {
      checkStateMatches(state, infos, 'MaeStep.run');
      if (batch.x.length !== B * 3 * H * W) throw new Error(`MaeStep.run: images have ${batch.x.length} values, expected [${B},3,${H},${W}]`);
      if (!Number.isFinite(batch.lr) || batch.lr < 0) throw new RangeError(`MaeStep.run: lr must be a finite number >= 0, got ${batch.lr}`);
      let mask: ArrayLike<number>;
      if (batch.mask) mask = batch.mask;
      else if (batch.rng) mask = randomMaskUnits(batch.rng, B, nw, ratio);
      else throw new Error('MaeStep.run: pass the seeded rng that draws the masks (or an explicit mask)');
      const m = maskIndexFeeds(mask, B, nw);
      if (m.lenKeep !== K) throw new Error(`MaeStep.run: the mask keeps ${m.lenKeep} units per image but the step was compiled for ${K} (ratio ${ratio})`);
      const feeds: Record<string, HostTensor> = {
        x: host(batch.x, [B, 3, H, W]), mask: m.mask, keep: m.keep, restore: m.restore,
        lr: host(Float32Array.of(batch.lr), []), t: host(Float32Array.of(state.step + 1), []),
      };
      addStateFeeds(feeds, state, infos);
      const out = await (await compile()).run(feeds);
      const next = stateFromStepOutputs(out, names, state.step + 1);
      return { state: next, loss: (out['loss']!.data as Float32Array)[0]! };
    },
  };
}

/** Window similarity of the encoder's position embedding at the token grid of an H x W input. */
export interface PosSimilarity {
  /** 'absolute': the learned pos_embed; 'abswin': its global part interpolated to the grid. */
  embed: number;
  /** 'abswin' only: global (interpolated) + window (tiled), the embedding the tokens receive. */
  combined?: number;
}

/**
 * `windowSimilarity` (src/posembed/similarity.ts) over mask-unit-sized windows of the position
 * embedding that tokens of an H x W input receive, computed on the host from the parameters.
 */
export function posEmbedSimilarity(model: HieraMaeModel, params: ReadonlyMap<string, Float32Array>, H: number, W: number): PosSimilarity {
  const enc = model.config.encoder;
  const [h, w] = model.layoutAt(H, W).grid;
  const [wh, ww] = enc.maskUnitSize;
  const C = enc.embedDim;
  const pe = params.get('pos_embed');
  if (!pe) throw new Error('posEmbedSimilarity: the parameters have no pos_embed');
  if (enc.posEmbed === 'absolute') {
    const infos = model.paramInfos();
    const L0 = infos.get('pos_embed')!.shape[1]!;
    const [h0, w0] = [model.layoutAt(enc.inputSize[0], enc.inputSize[1]).grid[0], model.layoutAt(enc.inputSize[0], enc.inputSize[1]).grid[1]];
    if (h0 * w0 !== L0) throw new Error(`posEmbedSimilarity: pos_embed has ${L0} tokens, not the ${h0}x${w0} grid of the input size`);
    let g = tokensToGrid(pe, C, h0, w0);
    if (h0 !== h || w0 !== w) g = resample2d(g, C, h0, w0, h, w, enc.absResample);
    return { embed: windowSimilarity({ data: g, C, H: h, W: w }, wh, ww) };
  }
  const win = params.get(enc.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window');
  if (!win) throw new Error('posEmbedSimilarity: abs-win encoder without its window embedding');
  const [gh, gw] = enc.globalPosSize;
  const global = { data: Float64Array.from(pe), C, H: gh, W: gw };
  const embed = windowSimilarity({ data: resample2d(global.data, C, gh, gw, h, w, enc.globalResample), C, H: h, W: w }, wh, ww);
  const combined = absWinEmbed(global, { data: Float64Array.from(win), C, H: wh, W: ww }, h, w, { globalMode: enc.globalResample });
  return { embed, combined: windowSimilarity(combined, wh, ww) };
}

export type MaeLogRecord =
  | { type: 'start'; model: { family: string; config: unknown; preset?: string }; options: Record<string, unknown>; stepsPerEpoch: number; totalSteps: number }
  | { type: 'resume'; step: number; epoch: number; stepInEpoch: number }
  | { type: 'step'; step: number; epoch: number; loss: number; lr: number; img_s: number }
  | ({ type: 'similarity'; step: number } & PosSimilarity)
  | { type: 'interrupted'; step: number; epoch: number; stepInEpoch: number }
  | { type: 'error'; step: number; epoch: number; stepInEpoch: number; loss: string }
  | { type: 'done'; step: number; encoder?: string };

export interface PretrainMaeOptions {
  /** A Hiera preset name (MAE config from maeConfigFor) or a full MAE config. */
  model: string | HieraMaeConfig;
  data: Dataset;
  /** Square training resolution; the encoder's position embedding is stored for it. */
  res: number;
  /** Default 0.6 (hiera_mae.py). */
  maskRatio?: number;
  /** Give epochs, steps, or both (then the run stops at whichever comes first). */
  epochs?: number;
  steps?: number;
  batch: number;
  lr: number;
  minLr?: number;
  warmupSteps?: number;
  /** AdamW weight decay (default 0.05) and betas (default (0.9, 0.95), the MAE recipe of He et al. 2022). */
  weightDecay?: number;
  betas?: [number, number];
  /** Random horizontal flip (default true). */
  hflip?: boolean;
  seed: number;
  /** Called with every log record (also written to out/log.jsonl when `out` is given). */
  onLog?: (rec: MaeLogRecord) => void;
  /** Log the loss every N steps (default 10) and the pos-embed similarity every N steps (default: at each log and the end). */
  logEvery?: number;
  similarityEvery?: number;
  rt?: Runtime;
  /** Run directory: log.jsonl, checkpoints (last.json), encoder.safetensors. */
  out?: string;
  resume?: boolean;
  /** Checkpoint every N steps as well as at every epoch end (0 = epoch ends only). */
  checkpointEvery?: number;
  signal?: AbortSignal;
  progressStream?: ProgressStream;
  /** Extra fields stored with the run options (e.g. the data spec). */
  runInfo?: Record<string, unknown>;
  /** q_pool of the classifier checkpoint written for fine-tuning (default 3 as hiera.py, at most #stages - 1; the MAE itself pools 2). */
  classifierQPool?: number;
}

export interface PretrainMaeResult {
  /** Encoder weights with the Hiera classifier's names (pos_embed, patch_embed.*, blocks.*). */
  encoder: Map<string, Float32Array>;
  /** The encoder's Hiera config (what `createHiera` needs to load `encoder`; set numClasses). */
  encoderConfig: HieraMaeConfig['encoder'];
  state: TrainState;
  model: HieraMaeModel;
  steps: number;
  interrupted: boolean;
  losses: { step: number; loss: number }[];
  similarity: ({ step: number } & PosSimilarity)[];
  /** Path of encoder.safetensors when `out` was given. */
  encoderPath?: string;
  /** `out/encoder`: a classifier checkpoint (family 'hiera') that `anyres finetune --from` loads. */
  classifierCheckpoint?: string;
}

export class PretrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PretrainError';
  }
}

/** Pretrains a Hiera MAE; see the module comment. */
export async function pretrainMae(o: PretrainMaeOptions): Promise<PretrainMaeResult> {
  const posInt = (k: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new RangeError(`pretrainMae: ${k} must be a positive integer, got ${v}`);
  };
  posInt('epochs', o.epochs);
  posInt('steps', o.steps);
  posInt('batch', o.batch);
  if (o.epochs === undefined && o.steps === undefined) throw new RangeError('pretrainMae: give epochs or steps');
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new RangeError(`pretrainMae: lr must be a finite number > 0, got ${o.lr}`);
  const preset = typeof o.model === 'string' ? o.model : undefined;
  const encOverride = { inputSize: [o.res, o.res] as [number, number] };
  const model = createHieraMae(o.model, { encoder: encOverride, ...(o.maskRatio !== undefined ? { maskRatio: o.maskRatio } : {}) });
  const modelSpec = { family: model.family, config: model.config as unknown, ...(preset ? { preset } : {}) };
  const rt = o.rt ?? new Runtime();
  const step = compileMaeStep(rt, model, { batch: o.batch, res: o.res, optimizer: { weightDecay: o.weightDecay ?? 0.05, betas: o.betas ?? [0.9, 0.95] } });
  const infos = step.infos;

  const tf = o.hflip === false ? normalize() : compose(horizontalFlip(0.5), normalize());
  const loader = new Loader(new TransformedDataset(o.data, tf), { batchSize: o.batch, resolutions: [o.res], seed: o.seed, dropLast: true });
  const spe = loader.stepsPerEpoch;
  const totalSteps = Math.min(o.steps ?? Infinity, (o.epochs ?? Infinity) * spe);
  const epochs = Math.ceil(totalSteps / spe);
  const schedule = { baseLr: o.lr, totalSteps, warmupSteps: Math.min(o.warmupSteps ?? 0, totalSteps), minLr: o.minLr ?? 0 };

  const logPath = o.out ? path.join(o.out, 'log.jsonl') : undefined;
  if (o.out) fs.mkdirSync(o.out, { recursive: true });
  const losses: PretrainMaeResult['losses'] = [];
  const similarity: PretrainMaeResult['similarity'] = [];
  const log = (rec: MaeLogRecord): void => {
    if (logPath) fs.appendFileSync(logPath, JSON.stringify(rec) + '\n');
    if (rec.type === 'step') losses.push({ step: rec.step, loss: rec.loss });
    if (rec.type === 'similarity') {
      const { type: _t, ...s } = rec;
      similarity.push(s);
    }
    o.onLog?.(rec);
  };

  const runOptions: Record<string, unknown> = {
    res: o.res, maskRatio: model.config.maskRatio, epochs: o.epochs, steps: o.steps, batch: o.batch, lr: o.lr, minLr: o.minLr,
    warmupSteps: o.warmupSteps, weightDecay: o.weightDecay ?? 0.05, betas: o.betas ?? [0.9, 0.95], hflip: o.hflip ?? true, seed: o.seed,
    ...(o.runInfo ?? {}),
  };
  let state: TrainState;
  let maskRng: Rng;
  let epoch0 = 0;
  let stepInEpoch0 = 0;
  if (o.resume) {
    if (!o.out) throw new PretrainError('pretrainMae: resume needs the run directory (out)');
    const ck = resumeRun(o.out, modelSpec, infos, 'mask', (m) => new PretrainError(m));
    state = ck.state;
    maskRng = ck.rng;
    epoch0 = ck.epoch0;
    stepInEpoch0 = ck.stepInEpoch0;
    // The curves so far come from the log, up to the checkpoint's step (later lines were not kept).
    for (const line of fs.readFileSync(logPath!, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line) as MaeLogRecord;
      if (rec.type === 'step' && rec.step <= state.step) losses.push({ step: rec.step, loss: rec.loss });
      if (rec.type === 'similarity' && rec.step <= state.step) {
        const { type: _t, ...s } = rec;
        similarity.push(s);
      }
    }
    log({ type: 'resume', step: state.step, epoch: epoch0, stepInEpoch: stepInEpoch0 });
  } else {
    state = initState(infos, new Rng(hashSeed(o.seed, 'init')));
    maskRng = new Rng(hashSeed(o.seed, 'mae-mask'));
    log({ type: 'start', model: modelSpec, options: runOptions, stepsPerEpoch: spe, totalSteps });
  }

  let savedStep = -1;
  const save = (epoch: number, stepInEpoch: number): void => {
    if (!o.out || savedStep === state.step) return;
    savedStep = state.step;
    saveCheckpoint(o.out, state, { model: modelSpec, run: runOptions, epoch, stepInEpoch, rng: { mask: maskRng.state() } });
  };
  const logSimilarity = (): void => {
    if (similarity.length && similarity[similarity.length - 1]!.step === state.step) return;
    log({ type: 'similarity', step: state.step, ...posEmbedSimilarity(model, state.params, o.res, o.res) });
  };
  if (state.step === 0) logSimilarity();

  const logEvery = o.logEvery ?? 10;
  const simEvery = o.similarityEvery ?? logEvery;
  let interrupted = false;
  outer: for (let epoch = epoch0; epoch < epochs && state.step < totalSteps; epoch++) {
    const start = epoch === epoch0 ? stepInEpoch0 : 0;
    const todo = Math.min(spe - start, totalSteps - state.step);
    const bar = todo > 0 ? progress(todo, `pretrain epoch ${epoch + 1}/${epochs}`, { stream: o.progressStream }) : null;
    let s = start;
    for await (const b of loader.epoch(epoch, start)) {
      if (stopIfAborted(o.signal, { step: state.step, epoch, stepInEpoch: s }, save, bar, log)) {
        interrupted = true;
        break outer;
      }
      const t0 = performance.now();
      const lr = cosineLr(schedule, state.step);
      const rngBefore = maskRng.state();
      const r = await step.run(state, { x: b.batches[0]!.x, lr, rng: maskRng });
      if (!Number.isFinite(r.loss)) {
        maskRng = Rng.fromState(rngBefore);
        log({ type: 'error', step: state.step + 1, epoch, stepInEpoch: s, loss: String(r.loss) });
        bar?.done();
        throw new PretrainError(
          `pretrain: loss is ${r.loss} at step ${state.step + 1} (epoch ${epoch + 1}, batch ${s + 1}, lr ${lr.toExponential(3)}); stopped without applying it. ` +
            (o.out && fs.existsSync(path.join(o.out, 'last.json')) ? `The last good checkpoint is ${path.join(o.out, 'last.json')}. ` : 'No checkpoint was saved yet. ') +
            'Lower the lr or check the data for NaN/Inf.',
        );
      }
      state = r.state;
      s++;
      const imgS = o.batch / ((performance.now() - t0) / 1000);
      bar?.tick(1, { loss: r.loss, lr, img_s: imgS });
      const last = state.step >= totalSteps;
      if (state.step % logEvery === 0 || last) log({ type: 'step', step: state.step, epoch, loss: r.loss, lr, img_s: imgS });
      if (state.step % simEvery === 0 || last) logSimilarity();
      if ((o.checkpointEvery && state.step % o.checkpointEvery === 0) || last) {
        if (s === spe) save(epoch + 1, 0);
        else save(epoch, s);
      }
      if (last) break;
    }
    bar?.done();
    if (s === spe) save(epoch + 1, 0);
  }

  const enc = new Map<string, Float32Array>();
  for (const n of model.encoderParamNames()) enc.set(n, state.params.get(n)!);
  let encoderPath: string | undefined;
  if (o.out && !interrupted) {
    encoderPath = path.join(o.out, 'encoder.safetensors');
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, d] of enc) tensors.set(n, { shape: [...infos.get(n)!.shape], data: d });
    writeFileAtomic(encoderPath, serializeSafetensors(tensors, { format: 'anyres-hiera-encoder', source: 'mae-pretrain', hiera_config: JSON.stringify(model.config.encoder), step: String(state.step) }));
  }
  let classifierCheckpoint: string | undefined;
  if (o.out && !interrupted) {
    // A classifier checkpoint for `anyres finetune --from out/encoder`: the encoder's weights, the
    // classifier's norm and head freshly initialised for the data's classes (as the official
    // fine-tuning of MAE weights does, with q_pool 3 in the classifier).
    const clsCfg = { ...model.config.encoder, qPool: Math.min(o.classifierQPool ?? 3, model.config.encoder.stages.length - 1), numClasses: o.data.numClasses };
    const cls = createHiera(clsCfg);
    const init = initState(cls.paramInfos(), new Rng(hashSeed(o.seed, 'finetune-head-init')));
    const params = new Map(init.params);
    for (const [n, d] of enc) params.set(n, d);
    classifierCheckpoint = saveCheckpoint(path.join(o.out, 'encoder'), stateFromParams(params), {
      model: { family: 'hiera', config: cls.config, ...(preset ? { preset } : {}) },
      run: { ...runOptions, pretrainedWith: 'mae' },
      epoch: 0,
      stepInEpoch: 0,
      rng: {},
    });
  }
  if (!interrupted) log({ type: 'done', step: state.step, ...(encoderPath ? { encoder: encoderPath } : {}) });
  return { encoder: enc, encoderConfig: model.config.encoder, state, model, steps: state.step, interrupted, losses, similarity, encoderPath, classifierCheckpoint };
}
