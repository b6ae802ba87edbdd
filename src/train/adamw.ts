/**
 * AdamW as graph ops, so one ONNX run does forward, backward and the update.
 *
 * Semantics are torch.optim.AdamW (torch 1.13, single-tensor path, amsgrad off), per element at
 * step t (m = v = 0 before step 1):
 *
 *   p ← p·(1 − lr·wd)                                  decoupled decay (Loshchilov & Hutter 2019)
 *   m ← β1·m + (1−β1)·g
 *   v ← β2·v + (1−β2)·g²
 *   p ← p − (lr / (1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps)     eps AFTER the corrected sqrt
 *
 * `lr` and `t` are graph INPUTS (rank-0 float32), so one compiled step serves every iteration and
 * every schedule. The scalar coefficients (1−lr·wd, lr/(1−β1^t), sqrt(1−β2^t)) are computed in
 * float64 inside the graph and cast to float32 once, as torch computes them in Python doubles.
 *
 * Weight-decay groups follow timm `param_groups_weight_decay` (timm/optim/_param_groups.py): no
 * decay for ndim ≤ 1, names ending in '.bias', and the model's no-weight-decay names (position
 * embeddings, cls token, relpos tables). Models declare that with `ParamInfo.decay`.
 *
 * Layer-wise lr decay (BEiT, Bao et al. 2022; ViTDet `get_vit_lr_decay_rate`): each parameter's lr
 * is multiplied by `lrScale`, see `layerDecayScales` in schedule.ts.
 */
import { type Graph, type Tensor, add, cast, div, minimum, mul, pow, reduceSum, sqrt, sub } from '../graph/index.ts';
import type { ParamInfo } from '../nn/params.ts';

export interface AdamWOptions {
  /** β1, β2 (default 0.9, 0.999). */
  betas?: [number, number];
  /** Added after the bias-corrected sqrt (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay for parameters whose `decay` flag is set (default 0.05). */
  weightDecay?: number;
  /** torch.nn.utils.clip_grad_norm_ on the global L2 norm of all gradients; undefined = off. */
  clipGradNorm?: number;
}

export interface ResolvedAdamW {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clipGradNorm: number | undefined;
}

export function resolveAdamW(o: AdamWOptions = {}): ResolvedAdamW {
  const [beta1, beta2] = o.betas ?? [0.9, 0.999];
  const r = { beta1, beta2, eps: o.eps ?? 1e-8, weightDecay: o.weightDecay ?? 0.05, clipGradNorm: o.clipGradNorm };
  for (const [k, v] of [['beta1', beta1], ['beta2', beta2]] as const) {
    if (!(v >= 0 && v < 1)) throw new RangeError(`adamw: ${k} must be in [0, 1), got ${v}`);
  }
  if (!(r.eps > 0)) throw new RangeError(`adamw: eps must be > 0, got ${r.eps}`);
  if (!(r.weightDecay >= 0)) throw new RangeError(`adamw: weightDecay must be >= 0, got ${r.weightDecay}`);
  if (r.clipGradNorm !== undefined && !(r.clipGradNorm > 0)) throw new RangeError(`adamw: clipGradNorm must be > 0 when given, got ${r.clipGradNorm}`);
  return r;
}

/** One parameter's slot in the update: current value, its gradient and moments. */
export interface AdamWSlot {
  name: string;
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  /** Whether weight decay applies (ParamInfo.decay). */
  decay: boolean;
  /** Multiplier of the lr for this parameter (layer-wise decay); default 1. */
  lrScale?: number;
}

export interface AdamWResult {
  name: string;
  param: Tensor;
  m: Tensor;
  v: Tensor;
}

/** The global L2 norm of all gradients, as clip_grad_norm_ computes it (before clipping). */
export function globalGradNorm(grads: readonly Tensor[]): Tensor {
  if (grads.length === 0) throw new Error('globalGradNorm: no gradients');
  let total: Tensor | null = null;
  for (const g of grads) {
    const s = reduceSum(mul(g, g));
    total = total ? add(total, s) : s;
  }
  return sqrt(total!);
}

/**
 * Appends one AdamW step for every slot to the graph. `lr` and `step` are rank-0 float32 tensors
 * (graph inputs); `step` is t, the 1-based count of the step being taken. Returns the updated
 * parameters and moments plus the pre-clip gradient norm (when clipping is on).
 */
export function adamwStep(
  graph: Graph,
  slots: readonly AdamWSlot[],
  lr: Tensor,
  step: Tensor,
  opts: AdamWOptions = {},
): { updated: AdamWResult[]; gradNorm?: Tensor } {
  const o = resolveAdamW(opts);
  for (const t of [lr, step]) {
    if (t.size !== 1 || t.dtype !== 'float32') throw new Error(`adamwStep: lr and step must be one-element float32 tensors, got ${t}`);
  }
  // Scalar coefficients in float64 (torch computes them in Python floats), cast to float32 once.
  const lr64 = cast(lr, 'float64');
  const t64 = cast(step, 'float64');
  const bc1 = sub(graph.scalar(1, 'float64'), pow(graph.scalar(o.beta1, 'float64'), t64));
  const bc2sqrt = sqrt(sub(graph.scalar(1, 'float64'), pow(graph.scalar(o.beta2, 'float64'), t64)));
  const bc2sqrt32 = cast(bc2sqrt, 'float32');

  let gradNorm: Tensor | undefined;
  let clipCoef: Tensor | undefined;
  if (o.clipGradNorm !== undefined) {
    // torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to 1.
    gradNorm = globalGradNorm(slots.map((s) => s.grad));
    clipCoef = minimum(div(graph.scalar(o.clipGradNorm), add(gradNorm, 1e-6)), 1);
  }

  const coefCache = new Map<string, { decayMul: Tensor | null; stepSize: Tensor }>();
  const coefs = (scale: number, wd: number): { decayMul: Tensor | null; stepSize: Tensor } => {
    const key = `${scale}|${wd}`;
    let c = coefCache.get(key);
    if (!c) {
      const lrS = scale === 1 ? lr64 : mul(lr64, scale);
      const decayMul = wd > 0 ? cast(sub(graph.scalar(1, 'float64'), mul(lrS, wd)), 'float32') : null;
      const stepSize = cast(div(lrS, bc1), 'float32');
      c = { decayMul, stepSize };
      coefCache.set(key, c);
    }
    return c;
  };

  const updated: AdamWResult[] = slots.map((s) => {
    const scale = s.lrScale ?? 1;
    if (!(scale >= 0)) throw new RangeError(`adamwStep: lrScale of '${s.name}' must be >= 0, got ${scale}`);
    const { decayMul, stepSize } = coefs(scale, s.decay ? o.weightDecay : 0);
    const g = clipCoef ? mul(s.grad, clipCoef) : s.grad;
    const p = decayMul ? mul(s.param, decayMul) : s.param;
    const m = add(mul(s.m, o.beta1), mul(g, 1 - o.beta1));
    const v = add(mul(s.v, o.beta2), mul(mul(g, g), 1 - o.beta2));
    const denom = add(div(sqrt(v), bc2sqrt32), o.eps);
    const param = sub(p, mul(div(m, denom), stepSize));
    return { name: s.name, param, m, v };
  });
  return { updated, gradNorm };
}

/** Decay flag per name from ParamInfos (timm param_groups_weight_decay, declared by the model). */
export function decayFlags(infos: ReadonlyMap<string, ParamInfo>): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const [k, i] of infos) out.set(k, i.decay);
  return out;
}
