/**
 * Exponential moving average of the weights (timm ModelEmaV2: ema ← d·ema + (1−d)·p after every
 * optimizer step), kept on the host in float32 (the parameters' dtype, as timm keeps it).
 * Optional warmup (timm ModelEmaV3 `use_warmup`): d_t = min(decay, (1 + t) / (10 + t)).
 */
export class WeightEma {
  readonly weights = new Map<string, Float32Array>();
  updates = 0;

  constructor(
    params: ReadonlyMap<string, Float32Array>,
    readonly decay = 0.9998,
    readonly warmup = false,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new RangeError(`WeightEma: decay must be in [0, 1), got ${decay}`);
    for (const [k, v] of params) this.weights.set(k, Float32Array.from(v));
  }

  /** The decay used for the next update. */
  currentDecay(): number {
    return this.warmup ? Math.min(this.decay, (1 + this.updates) / (10 + this.updates)) : this.decay;
  }

  update(params: ReadonlyMap<string, Float32Array>): void {
    const d = this.currentDecay();
    for (const [k, e] of this.weights) {
      const p = params.get(k);
      if (!p || p.length !== e.length) throw new Error(`WeightEma.update: parameter '${k}' is missing or has ${p?.length} values (EMA has ${e.length})`);
      for (let i = 0; i < e.length; i++) e[i] = d * e[i]! + (1 - d) * p[i]!;
    }
    this.updates++;
  }
}
