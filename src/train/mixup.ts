/**
 * Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) with timm's semantics
 * (timm/data/mixup.py `Mixup`, mode 'batch'): one λ per batch; with probability `prob` the batch
 * is mixed, with the partner of sample i being sample B−1−i (the batch flipped). When both are
 * enabled CutMix is chosen with probability `switchProb`. Mixup: x ← λ·x + (1−λ)·flip(x), λ ~
 * Beta(α_mix, α_mix). CutMix: λ ~ Beta(α_cut, α_cut), a box of side sqrt(1−λ)·H × sqrt(1−λ)·W
 * centred uniformly (clipped at the borders) is pasted from flip(x), and with `correctLam` λ becomes
 * 1 − box area / image area. Targets: λ·onehot_s(y) + (1−λ)·onehot_s(flip(y)), onehot_s with timm
 * label smoothing (off = s/K, on = 1 − s + s/K), so every target row sums to 1.
 *
 * Multi-resolution batches (ResFormer) mix every resolution with the SAME λ and partner; the
 * CutMix box is drawn at the largest resolution and scaled to the others in fractions of the side.
 */
import type { Rng } from '../util/rng.ts';

export interface MixupOptions {
  /** Mixup Beta α (0 = off). timm default 0.8 in DeiT recipes. */
  mixupAlpha?: number;
  /** CutMix Beta α (0 = off). */
  cutmixAlpha?: number;
  /** Probability of mixing a batch at all (default 1). */
  prob?: number;
  /** Probability of CutMix instead of Mixup when both are on (default 0.5). */
  switchProb?: number;
  /** Recompute λ from the clipped box area (default true). */
  correctLam?: boolean;
  labelSmoothing?: number;
  numClasses: number;
}

export interface MixResult {
  /** The λ applied (1 = unmixed). */
  lam: number;
  mode: 'none' | 'mixup' | 'cutmix';
  /** Box at the largest resolution [y0, y1, x0, x1) (cutmix). */
  box?: [number, number, number, number];
  /** Soft targets [B*K]. */
  targets: Float32Array;
}

/** Gamma(shape, 1) by Marsaglia & Tsang (2000), with the a<1 boost Gamma(a) = Gamma(a+1)·U^(1/a). */
export function sampleGamma(rng: Rng, a: number): number {
  if (!(a > 0)) throw new RangeError(`sampleGamma: shape must be > 0, got ${a}`);
  if (a < 1) return sampleGamma(rng, a + 1) * Math.pow(1 - rng.next(), 1 / a);
  const d = a - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** Beta(a, b) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b). */
export function sampleBeta(rng: Rng, a: number, b: number): number {
  const x = sampleGamma(rng, a);
  const y = sampleGamma(rng, b);
  return x / (x + y);
}

/** Label-smoothed one-hot targets mixed with the flipped batch's (timm mixup_target). */
export function mixTargets(labels: ArrayLike<number>, K: number, lam: number, smoothing = 0): Float32Array {
  const B = labels.length;
  const off = smoothing / K;
  const on = 1 - smoothing + off;
  const out = new Float32Array(B * K);
  for (let i = 0; i < B; i++) {
    const y1 = labels[i]!;
    const y2 = labels[B - 1 - i]!;
    for (const y of [y1, y2]) if (!Number.isInteger(y) || y < 0 || y >= K) throw new RangeError(`mixTargets: label ${y} outside [0, ${K})`);
    for (let k = 0; k < K; k++) out[i * K + k] = off;
    out[i * K + y1] = out[i * K + y1]! + lam * (on - off);
    out[i * K + y2] = out[i * K + y2]! + (1 - lam) * (on - off);
  }
  return out;
}

/**
 * timm rand_bbox (margin 0): cut = int(side·sqrt(1−λ)), centre uniform in [0, side), box
 * [c − cut//2, c + cut//2) clipped to the image.
 */
export function cutmixBox(rng: Rng, H: number, W: number, lam: number): [number, number, number, number] {
  const ratio = Math.sqrt(1 - lam);
  const ch = Math.trunc(H * ratio);
  const cw = Math.trunc(W * ratio);
  const cy = rng.int(H);
  const cx = rng.int(W);
  const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  return [clip(cy - (ch >> 1), H), clip(cy + (ch >> 1), H), clip(cx - (cw >> 1), W), clip(cx + (cw >> 1), W)];
}

/**
 * Mixes NCHW batches in place (one array per resolution, all with the same B samples) and returns
 * λ and the soft targets. Randomness: one draw for `prob`, one for the switch, the Beta draw, and
 * for CutMix the box centre, all from `rng`.
 */
export function mixBatch(rng: Rng, xs: Float32Array[], shapes: [number, number, number, number][], labels: ArrayLike<number>, o: MixupOptions): MixResult {
  const mixA = o.mixupAlpha ?? 0;
  const cutA = o.cutmixAlpha ?? 0;
  const prob = o.prob ?? 1;
  const switchProb = o.switchProb ?? 0.5;
  const K = o.numClasses;
  const B = labels.length;
  if (xs.length !== shapes.length || xs.length === 0) throw new Error(`mixBatch: ${xs.length} image arrays for ${shapes.length} shapes`);
  for (const [i, s] of shapes.entries()) {
    if (s[0] !== B || xs[i]!.length !== s[0] * s[1] * s[2] * s[3]) throw new Error(`mixBatch: images ${i} have shape [${s}] and ${xs[i]!.length} values for ${B} labels`);
  }
  let lam = 1;
  let mode: MixResult['mode'] = 'none';
  if ((mixA > 0 || cutA > 0) && rng.next() < prob) {
    const useCut = mixA > 0 && cutA > 0 ? rng.next() < switchProb : cutA > 0;
    lam = useCut ? sampleBeta(rng, cutA, cutA) : sampleBeta(rng, mixA, mixA);
    mode = useCut ? 'cutmix' : 'mixup';
  }
  if (mode === 'none') return { lam: 1, mode, targets: mixTargets(labels, K, 1, o.labelSmoothing ?? 0) };
  let box: [number, number, number, number] | undefined;
  if (mode === 'mixup') {
    for (const x of xs) {
      const per = x.length / B;
      const src = Float32Array.from(x);
      for (let b = 0; b < B; b++) {
        const p = (B - 1 - b) * per;
        for (let j = 0; j < per; j++) x[b * per + j] = lam * src[b * per + j]! + (1 - lam) * src[p + j]!;
      }
    }
  } else {
    // Box at the largest resolution, scaled to each other resolution by its side.
    const big = shapes.reduce((a, s) => (s[2] * s[3] > a[2] * a[3] ? s : a));
    const [Hb, Wb] = [big[2], big[3]];
    box = cutmixBox(rng, Hb, Wb, lam);
    if (o.correctLam ?? true) lam = 1 - ((box[1] - box[0]) * (box[3] - box[2])) / (Hb * Wb);
    for (const [i, x] of xs.entries()) {
      const [, C, H, W] = shapes[i]!;
      const y0 = Math.round((box[0] * H) / Hb);
      const y1 = Math.round((box[1] * H) / Hb);
      const x0 = Math.round((box[2] * W) / Wb);
      const x1 = Math.round((box[3] * W) / Wb);
      const src = Float32Array.from(x);
      for (let b = 0; b < B; b++) {
        const p = B - 1 - b;
        for (let c = 0; c < C; c++) {
          for (let y = y0; y < y1; y++) {
            const rowD = ((b * C + c) * H + y) * W;
            const rowS = ((p * C + c) * H + y) * W;
            for (let xx = x0; xx < x1; xx++) x[rowD + xx] = src[rowS + xx]!;
          }
        }
      }
    }
  }
  return { lam, mode, box, targets: mixTargets(labels, K, lam, o.labelSmoothing ?? 0) };
}
