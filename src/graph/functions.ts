/**
 * Composite functions built from the primitive ops: losses, pooling, helpers.
 * Their gradients come from the primitives' VJPs.
 */
import { Tensor, fmtShape } from './tensor.ts';
import { abs, add, div, lessEqual, mul, neg, sub, where } from './ops/elementwise.ts';
import { logSoftmax } from './ops/nn.ts';
import { reduceMax, reduceMean, reduceSum } from './ops/reduce.ts';
import { reshape, transpose } from './ops/shape.ts';

/**
 * Cross-entropy of logits [B, K] against a target distribution [B, K]
 * (one-hot, label-smoothed or mixed), mean over the batch.
 */
export function softCrossEntropy(logits: Tensor, target: Tensor): Tensor {
  if (logits.rank !== 2 || target.shape.join() !== logits.shape.join()) {
    throw new Error(`softCrossEntropy: logits ${fmtShape(logits.shape)} and target ${fmtShape(target.shape)} must both be [B, K]`);
  }
  const B = logits.shape[0]!;
  return div(neg(reduceSum(mul(target, logSoftmax(logits, 1)))), B);
}

/** Target distribution for integer labels with label smoothing (timm: eps/K off, 1-eps+eps/K on). */
export function oneHot(labels: ArrayLike<number>, numClasses: number, smoothing = 0): Float32Array {
  const out = new Float32Array(labels.length * numClasses).fill(smoothing / numClasses);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new Error(`oneHot: label ${y} at ${i} is outside [0, ${numClasses})`);
    out[i * numClasses + y] = 1 - smoothing + smoothing / numClasses;
  }
  return out;
}

/** torch smooth_l1_loss (beta, mean over all elements). */
export function smoothL1(x: Tensor, y: Tensor, beta = 1): Tensor {
  const d = abs(sub(x, y));
  const quad = div(mul(mul(d, d), 0.5), beta);
  const lin = sub(d, 0.5 * beta);
  return reduceMean(where(lessEqual(d, beta), quad, lin));
}

/** Max over non-overlapping 2x2 (or kxk) windows of NCHW input. */
export function maxPool2d(x: Tensor, k = 2): Tensor {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (H % k || W % k) throw new Error(`maxPool2d: ${H}x${W} is not divisible by ${k}`);
  const r = transpose(reshape(x, [B, C, H / k, k, W / k, k]), [0, 1, 2, 4, 3, 5]);
  return reduceMax(reshape(r, [B, C, H / k, W / k, k * k]), -1);
}


