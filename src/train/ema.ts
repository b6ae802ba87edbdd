/**
 * Exponential moving average of the weights, with the semantics of timm's `ModelEmaV3`
 * (huggingface/pytorch-image-models `timm/utils/model_ema.py`), as timm's `train.py` drives it:
 * after optimizer update number `step` (1, 2, ...), `ema ← lerp(ema, p, 1 − d(step))` with
 *
 *   s = max(0, step − updateAfterStep − 1)
 *   d = 0                                               when s = 0 (the first update copies the weights)
 *   d = clamp(1 − (1 + s/γ)^(−power), minDecay, decay)  with warm-up (`use_warmup`, γ = 1, power = 2/3 by default)
 *   d = decay                                           without warm-up.
 *
 * The EMA starts as a copy of the initial weights (timm deep-copies the model) and is kept on the
 * host in float32, the parameters' dtype. Every value is a pure function of the parameter history,
 * so an EMA restored from a checkpoint continues bit for bit.
 *
 * @example
 * const ema = new WeightEma(state.params, { decay: 0.999, warmup: true });
 * ema.update(next.params, next.step);          // after every optimizer step
 * await evaluate(rt, model, ema.weights, val, 64, 32);
 */

// The options a checkpoint records with the EMA weights: defined with the checkpoint format
// (src/io/train-checkpoint.ts), which io may not import from train.
import type { EmaOptions } from '../io/train-checkpoint.ts';
export type { EmaOptions };

/** timm `ModelEmaV3.get_decay(step)` for optimizer update number `step`. */
export function emaDecay(step: number, o: EmaOptions): number {
  const s = Math.max(0, step - (o.updateAfterStep ?? 0) - 1);
  if (s <= 0) return 0;
  if (!o.warmup) return o.decay;
  const d = 1 - (1 + s / (o.warmupGamma ?? 1)) ** -(o.warmupPower ?? 2 / 3);
  return Math.max(Math.min(d, o.decay), o.minDecay ?? 0);
}

export class WeightEma {
  readonly weights = new Map<string, Float32Array>();
  readonly options: Required<EmaOptions>;

  constructor(params: ReadonlyMap<string, Float32Array>, opts: EmaOptions) {
    const { decay } = opts;
    if (!(decay >= 0 && decay < 1)) throw new RangeError(`WeightEma: decay must be in [0, 1), got ${decay} (e.g. 0.999)`);
    this.options = { warmup: false, warmupGamma: 1, warmupPower: 2 / 3, minDecay: 0, updateAfterStep: 0, ...opts };
    if (!(this.options.warmupGamma > 0)) throw new RangeError(`WeightEma: warmupGamma must be > 0, got ${this.options.warmupGamma}`);
    for (const [k, v] of params) this.weights.set(k, Float32Array.from(v));
  }

  /** Restores EMA weights saved in a checkpoint (every parameter, same sizes). */
  static restore(saved: ReadonlyMap<string, Float32Array>, params: ReadonlyMap<string, Float32Array>, opts: EmaOptions, where: string): WeightEma {
    const ema = new WeightEma(params, opts);
    for (const [k, p] of params) {
      const s = saved.get(k);
      if (!s) throw new Error(`${where}: the checkpoint has no EMA weight 'ema.${k}'; it was saved without --ema (resume without --ema, or start a new run)`);
      if (s.length !== p.length) throw new Error(`${where}: EMA weight 'ema.${k}' has ${s.length} values, the parameter has ${p.length}`);
      ema.weights.get(k)!.set(s);
    }
    return ema;
  }

  /** The decay update number `step` uses. */
  decayAt(step: number): number {
    return emaDecay(step, this.options);
  }

  /** Folds in the parameters after optimizer update number `step` (timm: `num_updates` after the increment). */
  update(params: ReadonlyMap<string, Float32Array>, step: number): number {
    const d = this.decayAt(step);
    const w = 1 - d;
    for (const [k, e] of this.weights) {
      const p = params.get(k);
      if (!p || p.length !== e.length) throw new Error(`WeightEma.update: parameter '${k}' is missing or has ${p?.length} values (EMA has ${e.length})`);
      // torch lerp_(end, weight): self + weight * (end - self)
      for (let i = 0; i < e.length; i++) e[i] = e[i]! + w * (p[i]! - e[i]!);
    }
    return d;
  }
}
