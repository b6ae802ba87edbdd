/**
 * The FCOS losses as graph functions (elementwise; the caller masks and sums), so their gradients
 * come from the primitive ops' VJPs. All are written in the overflow-free log-sigmoid/softplus form.
 *
 * - `sigmoidFocalLoss`: Lin et al., "Focal Loss for Dense Object Detection" (ICCV 2017), eq. 5,
 *   as torchvision `ops/focal_loss.py` `sigmoid_focal_loss` (alpha-weighted, modulating factor on
 *   the BCE-with-logits).
 * - `bceWithLogits`: torch `binary_cross_entropy_with_logits`, = softplus(x) − t·x.
 * - `giouLossLtrb`: generalized IoU (Rezatofighi et al., CVPR 2019) of two boxes given as distances
 *   (l, t, r, b) from the same point, as FCOS regresses them (Tian et al. 2019, Sec. 3.1; the
 *   UnitBox formulation). 1 − GIoU, with torchvision `generalized_box_iou_loss`'s eps 1e-7.
 */
import { type Tensor, add, div, fmtShape, maximum, minimum, mul, sigmoid, slice, softplus, sub } from '../graph/index.ts';

/** Binary cross-entropy of logits `x` against targets `t` in [0, 1], elementwise. */
export function bceWithLogits(x: Tensor, t: Tensor): Tensor {
  return sub(softplus(x), mul(t, x));
}

/**
 * Sigmoid focal loss, elementwise: `α_t (1 − p_t)^γ BCE(x, t)` with p = σ(x),
 * p_t = p·t + (1 − p)(1 − t), α_t = α·t + (1 − α)(1 − t); α < 0 switches the weighting off
 * (torchvision's convention). Integer γ multiplies out (no pow, so no log(0) in the VJP).
 */
export function sigmoidFocalLoss(x: Tensor, t: Tensor, alpha = 0.25, gamma = 2): Tensor {
  if (!(gamma >= 0)) throw new RangeError(`sigmoidFocalLoss: gamma must be >= 0, got ${gamma}`);
  const p = sigmoid(x);
  const pt = add(mul(p, t), mul(sub(1, p), sub(1, t)));
  const q = sub(1, pt);
  let mod: Tensor | null = null;
  if (Number.isInteger(gamma)) {
    for (let i = 0; i < gamma; i++) mod = mod ? mul(mod, q) : q;
  } else {
    throw new RangeError(`sigmoidFocalLoss: gamma ${gamma} is not an integer; only integer gammas are implemented (the paper uses 2)`);
  }
  let loss = mod ? mul(bceWithLogits(x, t), mod) : bceWithLogits(x, t);
  if (alpha >= 0) loss = mul(loss, add(mul(t, alpha), mul(sub(1, t), 1 - alpha)));
  return loss;
}

/**
 * 1 − GIoU of predicted and target boxes given as non-negative distances (l, t, r, b) from a
 * common point, along `axis` (size 4). Both boxes contain the point, so the intersection is
 * (min(l, l*) + min(r, r*)) × (min(t, t*) + min(b, b*)) and the smallest enclosing box uses max.
 * Returns the loss with `axis` kept as size 1.
 */
export function giouLossLtrb(pred: Tensor, target: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + pred.rank : axis;
  if (pred.shape[a] !== 4 || pred.shape.join() !== target.shape.join()) {
    throw new Error(`giouLossLtrb: pred ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} must match with size 4 on axis ${axis}`);
  }
  const part = (x: Tensor, i: number): Tensor => slice(x, a, i, i + 1);
  const [l, t, r, b] = [0, 1, 2, 3].map((i) => part(pred, i)) as [Tensor, Tensor, Tensor, Tensor];
  const [L, T, R, B] = [0, 1, 2, 3].map((i) => part(target, i)) as [Tensor, Tensor, Tensor, Tensor];
  const areaP = mul(add(l, r), add(t, b));
  const areaT = mul(add(L, R), add(T, B));
  const inter = mul(add(minimum(l, L), minimum(r, R)), add(minimum(t, T), minimum(b, B)));
  const union = add(sub(add(areaP, areaT), inter), 1e-7);
  const iou = div(inter, union);
  const encl = add(mul(add(maximum(l, L), maximum(r, R)), add(maximum(t, T), maximum(b, B))), 1e-7);
  const giou = sub(iou, div(sub(encl, union), encl));
  return sub(1, giou);
}
