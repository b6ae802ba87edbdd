/**
 * ResFormer's multi-resolution loss with scale consistency (Tian et al. 2023, Sec. 3.3;
 * ruitian12/resformer `image_classification/engine.py` `train_one_epoch` with
 * `losses.py` `DistillationLoss(base, 'smooth-l1', alpha, tau)`, distillation target 'cls'):
 *
 *   loss_0 = CE(logits_0, target_0)
 *   loss_i = CE(logits_i, target_i) + alpha * smoothL1(cls_i, LN(stopgrad(cls_{i-1})))   (i > 0)
 *   total  = (sum_i loss_i) / r
 *
 * Resolutions are in DESCENDING order (the official datasets.py asserts it): resolution i is
 * taught by the next larger one, i-1, not by the largest. Only the teacher is layer-normed, with
 * no affine parameters (eps 1e-6); the teacher is detached (`outputs_kd.detach()`), so the
 * distillation term sends gradient only through the student cls token. smooth-L1 uses beta 1
 * and the mean over B*C; CE is the mean over the batch.
 */
import { type Tensor, add, div, layerNorm, mul, smoothL1, softCrossEntropy, stopGradient } from '../graph/index.ts';

export interface MultiResTerm {
  /** Cross-entropy at this resolution. */
  ce: Tensor;
  /** smooth-L1 distillation term (null at the first, largest resolution). */
  distill: Tensor | null;
  /** ce + alpha * distill. */
  loss: Tensor;
}

export interface MultiResLoss {
  /** (sum of the per-resolution losses) / number of resolutions. */
  total: Tensor;
  terms: MultiResTerm[];
}

export interface MultiResLossOptions {
  /** LayerNorm epsilon of the teacher normalisation (official: 1e-6). */
  eps?: number;
  /** smooth-L1 beta (official: 1). */
  beta?: number;
}

/**
 * @param logits per resolution [B, K], largest resolution first
 * @param cls per resolution [B, C]: the student's normed class token (ResFormer `forward_features`)
 * @param targets per resolution target distributions [B, K] (one-hot, smoothed or mixed); one
 *   tensor is used for every resolution
 * @param alpha weight of the distillation terms (official default 1.0)
 */
export function multiResLoss(
  logits: readonly Tensor[],
  cls: readonly Tensor[],
  targets: readonly Tensor[] | Tensor,
  alpha: number,
  opts: MultiResLossOptions = {},
): MultiResLoss {
  const r = logits.length;
  if (r === 0) throw new Error('multiResLoss: needs at least one resolution');
  if (cls.length !== r) throw new Error(`multiResLoss: ${r} logits but ${cls.length} cls tokens (one per resolution)`);
  const tg = Array.isArray(targets) ? (targets as readonly Tensor[]) : new Array<Tensor>(r).fill(targets as Tensor);
  if (tg.length !== r) throw new Error(`multiResLoss: ${r} resolutions but ${tg.length} targets`);
  const eps = opts.eps ?? 1e-6;
  const beta = opts.beta ?? 1;
  const terms: MultiResTerm[] = [];
  let sum: Tensor | null = null;
  for (let i = 0; i < r; i++) {
    const ce = softCrossEntropy(logits[i]!, tg[i]!);
    let distill: Tensor | null = null;
    let loss = ce;
    if (i > 0) {
      const prev = cls[i - 1]!;
      const cur = cls[i]!;
      if (prev.shape.join() !== cur.shape.join()) {
        throw new Error(`multiResLoss: cls tokens differ in shape between resolutions ${i - 1} [${prev.shape}] and ${i} [${cur.shape}]`);
      }
      const teacher = layerNorm(stopGradient(prev), null, null, eps);
      distill = smoothL1(cur, teacher, beta);
      loss = add(ce, mul(distill, alpha));
    }
    terms.push({ ce, distill, loss });
    sum = sum ? add(sum, loss) : loss;
  }
  return { total: div(sum!, r), terms };
}
