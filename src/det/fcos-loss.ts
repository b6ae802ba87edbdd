/**
 * The FCOS training loss in the graph, as torchvision `FCOSHead.compute_loss` combines it:
 *
 *   L = w_cls · Σ_points,classes focal(cls, cls*) · clsWeight / N_pos
 *     + w_box · Σ_positives (1 − GIoU(reg, reg*)) / N_pos
 *     + w_ctr · Σ_positives BCE(ctr, ctr*) / N_pos
 *
 * N_pos = max(1, positives in the batch), fed as a rank-0 input. The target tensors are graph
 * inputs computed on the host by `fcosTargets` (src/det/fcos-targets.ts), in the layout of
 * `flattenLevels`: cls targets [B, K, N], box targets [B, 4, N], centre-ness targets, pos and clsWeight [B, 1, N].
 */
import { type Tensor, add, div, fmtShape, mul, reduceSum } from '../graph/index.ts';
import { bceWithLogits, giouLossLtrb, sigmoidFocalLoss } from './losses.ts';
import type { FcosLossConfig } from './detector.ts';

export interface FcosLossInputs {
  cls: Tensor;
  reg: Tensor;
  ctr: Tensor;
  clsTarget: Tensor;
  regTarget: Tensor;
  ctrTarget: Tensor;
  pos: Tensor;
  clsWeight: Tensor;
  /** Rank-0 max(1, number of positives). */
  numPos: Tensor;
}

export interface FcosLossTerms {
  total: Tensor;
  cls: Tensor;
  box: Tensor;
  ctr: Tensor;
}

export function fcosLoss(i: FcosLossInputs, cfg: FcosLossConfig): FcosLossTerms {
  const pairs: [string, Tensor, Tensor][] = [['cls', i.cls, i.clsTarget], ['reg', i.reg, i.regTarget], ['ctr', i.ctr, i.ctrTarget]];
  for (const [n, a, b] of pairs) {
    if (a.shape.join() !== b.shape.join()) throw new Error(`fcosLoss: ${n} ${fmtShape(a.shape)} and its target ${fmtShape(b.shape)} differ`);
  }
  const cls = div(reduceSum(mul(sigmoidFocalLoss(i.cls, i.clsTarget, cfg.focalAlpha, cfg.focalGamma), i.clsWeight)), i.numPos);
  const box = div(reduceSum(mul(giouLossLtrb(i.reg, i.regTarget, 1), i.pos)), i.numPos);
  const ctr = div(reduceSum(mul(bceWithLogits(i.ctr, i.ctrTarget), i.pos)), i.numPos);
  const w = cfg.weights;
  const total = add(add(mul(cls, w.cls), mul(box, w.box)), mul(ctr, w.ctr));
  return { total, cls, box, ctr };
}
