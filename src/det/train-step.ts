/**
 * The compiled detection training step: forward (backbone + neck + FCOS head) + FCOS loss +
 * backward + AdamW in ONE ONNX graph per (detector, batch, H, W), following src/train/step.ts:
 *
 * - parameters and AdamW moments are inputs (`<name>`, `m.<name>`, `v.<name>`) and outputs
 *   (`new.<name>`, ...), `lr` and `t` are rank-0 inputs, so one session serves every step;
 * - the FCOS targets are computed on the host by `fcosTargets` from each image's boxes and fed as
 *   inputs (`cls_t` [B, K, N], `reg_t` [B, 4, N], `ctr_t`, `pos`, `cls_w` [B, 1, N], `num_pos` []);
 * - drop-path keep masks ([B, 1, 1, 1], one per backbone block) come from a seeded `Rng`;
 * - layer-wise lr decay via `lrScales` or `layerDecay` (ViTDet fine-tunes ViT-B with 0.7:
 *   detectron2 `get_vit_lr_decay_rate`, lr · decay^(depth + 1 − layer)).
 */
import { type Compiled, type Graph, type HostTensor, type Runtime, type Tensor, grad, host } from '../graph/index.ts';
import { Params, type ParamInfo } from '../nn/params.ts';
import type { Rng } from '../util/rng.ts';
import { type AdamWOptions, adamwStep } from '../train/adamw.ts';
import { type TrainState, addStateFeeds, checkStateMatches, stateFromStepOutputs } from '../train/state.ts';
import { layerDecayScales } from '../train/schedule.ts';
import { blockCount } from '../train/step.ts';
import type { Detector } from './detector.ts';
import { flattenLevels } from './fcos.ts';
import { fcosLoss } from './fcos-loss.ts';
import { type FcosLevel, type FcosTargets, fcosTargets, numPoints } from './fcos-targets.ts';
import type { DetObject } from './types.ts';

export interface DetTrainStepOptions {
  batch: number;
  /** Input size [H, W] (any size the backbone takes, non-square too). */
  size: [number, number];
  /** AdamW hyper-parameters (betas, eps, weightDecay default 0.05, clipGradNorm). */
  optimizer?: AdamWOptions;
  /** Per-parameter lr multipliers; overrides `layerDecay`. */
  lrScales?: ReadonlyMap<string, number>;
  /** Layer-wise lr decay of the backbone blocks (ViTDet: 0.7 for ViT-B); undefined = off. */
  layerDecay?: number;
}

export interface DetStepBatch {
  /** Normalised images [B, 3, H, W]. */
  x: Float32Array;
  /** Boxes of each image in input pixels. */
  objects: readonly (readonly DetObject[])[];
  lr: number;
  /** Drop-path mask source (required when the backbone's dropPathRate > 0). */
  rng?: Rng;
}

export interface DetStepResult {
  state: TrainState;
  loss: number;
  lossCls: number;
  lossBox: number;
  lossCtr: number;
  numPos: number;
  gradNorm?: number;
}

export interface DetTrainStep {
  readonly levels: FcosLevel[];
  readonly infos: Map<string, ParamInfo>;
  /** Keep probability of each backbone block (1 = no drop path). */
  readonly keep: number[];
  run(state: TrainState, batch: DetStepBatch): Promise<DetStepResult>;
  /** The host targets the step would feed for these boxes (for tests and pictures). */
  targets(objects: readonly (readonly DetObject[])[]): FcosTargets;
}

let counter = 0;
const scalar = (v: number): HostTensor => host(Float32Array.of(v), []);

/** The backbone's drop-path rate (its config's `dropPathRate`). */
const dropRateOf = (det: Detector): number => det.spec.backbone.config.dropPathRate;

/**
 * Compiles (once, lazily) the training step of `det`.
 *
 * @example
 * const step = detTrainStep(rt, det, { batch: 4, size: [128, 192], optimizer: { weightDecay: 0.1 }, layerDecay: 0.7 });
 * let state = stateFromParams(det.init(0));
 * const r = await step.run(state, { x, objects, lr: 1e-3, rng });
 */
export function detTrainStep(rt: Runtime, det: Detector, opts: DetTrainStepOptions): DetTrainStep {
  const B = opts.batch;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`detTrainStep: batch must be a positive integer, got ${B}`);
  const [H, W] = opts.size;
  const levels = det.levels(H, W);
  const N = numPoints(levels);
  const K = det.numClasses;
  const infos = det.paramInfos();
  const names = [...infos.keys()];
  const depth = blockCount(infos);
  const lrScales = opts.lrScales ?? (opts.layerDecay !== undefined ? layerDecayScales(names, depth, opts.layerDecay) : undefined);
  const rate = dropRateOf(det);
  const keep = Array.from({ length: depth }, (_, i) => 1 - (depth > 1 ? (rate * i) / (depth - 1) : 0));
  const key = `det-train-step-${++counter}`;

  const build = (inputs: Readonly<Record<string, Tensor>>, graph: Graph): Record<string, Tensor> => {
    const p = new Params(graph);
    const masks = rate > 0 ? keep.map((k, i) => (k < 1 ? inputs[`dp.${i}`] : undefined)) : undefined;
    const outs = det.forward(p, inputs['x']!, { train: true, dropPathMasks: masks });
    const flat = flattenLevels(outs);
    const terms = fcosLoss({
      ...flat,
      clsTarget: inputs['cls_t']!, regTarget: inputs['reg_t']!, ctrTarget: inputs['ctr_t']!,
      pos: inputs['pos']!, clsWeight: inputs['cls_w']!, numPos: inputs['num_pos']!,
    }, det.spec.loss);
    const params = names.map((n) => inputs[n]!);
    const grads = grad(terms.total, params);
    const { updated, gradNorm } = adamwStep(
      graph,
      names.map((n, i) => ({
        name: n, param: params[i]!, grad: grads[i]!, m: inputs[`m.${n}`]!, v: inputs[`v.${n}`]!,
        decay: infos.get(n)!.decay, lrScale: lrScales?.get(n),
      })),
      inputs['lr']!, inputs['t']!, opts.optimizer,
    );
    const o: Record<string, Tensor> = { loss: terms.total, loss_cls: terms.cls, loss_box: terms.box, loss_ctr: terms.ctr };
    for (const u of updated) {
      o[`new.${u.name}`] = u.param;
      o[`new.m.${u.name}`] = u.m;
      o[`new.v.${u.name}`] = u.v;
    }
    if (gradNorm) o['grad_norm'] = gradNorm;
    return o;
  };

  let compiled: Promise<Compiled> | null = null;
  const compile = (): Promise<Compiled> => {
    if (!compiled) {
      const specs: Record<string, { shape: readonly number[] }> = {
        x: { shape: [B, 3, H, W] }, cls_t: { shape: [B, K, N] }, reg_t: { shape: [B, 4, N] }, ctr_t: { shape: [B, 1, N] },
        pos: { shape: [B, 1, N] }, cls_w: { shape: [B, 1, N] }, num_pos: { shape: [] }, lr: { shape: [] }, t: { shape: [] },
      };
      for (const [n, info] of infos) {
        specs[n] = { shape: info.shape };
        specs[`m.${n}`] = { shape: info.shape };
        specs[`v.${n}`] = { shape: info.shape };
      }
      if (rate > 0) keep.forEach((k, i) => k < 1 && (specs[`dp.${i}`] = { shape: [B, 1, 1, 1] }));
      compiled = rt.compile(build, specs, key);
      compiled.catch(() => (compiled = null));
    }
    return compiled;
  };

  const targets = (objects: readonly (readonly DetObject[])[]): FcosTargets =>
    fcosTargets(objects, levels, K, { centerSampling: det.spec.loss.centerSampling });

  return {
    levels,
    infos,
    keep,
    targets,
    async run(state, batch) {
      checkStateMatches(state, infos, 'detTrainStep.run');
      if (batch.x.length !== B * 3 * H * W) throw new Error(`detTrainStep.run: images have ${batch.x.length} values, expected [${B}, 3, ${H}, ${W}]`);
      if (batch.objects.length !== B) throw new Error(`detTrainStep.run: got boxes for ${batch.objects.length} images, the batch has ${B}`);
      if (!Number.isFinite(batch.lr) || batch.lr < 0) throw new RangeError(`detTrainStep.run: lr must be a finite number >= 0, got ${batch.lr}`);
      const t = targets(batch.objects);
      const feeds: Record<string, HostTensor> = {
        x: host(batch.x, [B, 3, H, W]), cls_t: host(t.cls, [B, K, N]), reg_t: host(t.reg, [B, 4, N]), ctr_t: host(t.ctr, [B, 1, N]),
        pos: host(t.pos, [B, 1, N]), cls_w: host(t.clsWeight, [B, 1, N]), num_pos: scalar(Math.max(1, t.numPos)),
        lr: scalar(batch.lr), t: scalar(state.step + 1),
      };
      if (rate > 0) {
        if (!batch.rng) throw new Error(`detTrainStep.run: the backbone has drop path ${rate}; pass the seeded rng that draws the masks`);
        // One Bernoulli(keep_i) per sample and block, block-major.
        keep.forEach((k, i) => {
          if (k >= 1) return;
          const m = new Float32Array(B);
          for (let b = 0; b < B; b++) m[b] = batch.rng!.next() < k ? 1 : 0;
          feeds[`dp.${i}`] = host(m, [B, 1, 1, 1]);
        });
      }
      addStateFeeds(feeds, state, infos);
      const out = await (await compile()).run(feeds);
      const next = stateFromStepOutputs(out, names, state.step + 1);
      const f = (k: string): number => (out[k]!.data as Float32Array)[0]!;
      const r: DetStepResult = { state: next, loss: f('loss'), lossCls: f('loss_cls'), lossBox: f('loss_box'), lossCtr: f('loss_ctr'), numPos: t.numPos };
      if (out['grad_norm']) r.gradNorm = f('grad_norm');
      return r;
    },
  };
}
