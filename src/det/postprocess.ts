/**
 * FCOS inference on the host, as torchvision `FCOS.postprocess_detections`: per level, score =
 * sqrt(σ(cls) · σ(ctrness)) per (point, class); keep scores above `scoreThresh`; the `topkPerLevel`
 * best per level; decode (l, t, r, b)·stride around the point; clip to the image; class-wise NMS
 * (`nmsThresh`); the `maxDetections` best overall.
 */
import type { Box, Detection } from './types.ts';
import type { FcosLevel } from './fcos-targets.ts';
import { fcosPoints } from './fcos-targets.ts';

export interface PostprocessOptions {
  /** Minimum combined score (AdelaiDet/detectron2 test default 0.05; torchvision 0.2). */
  scoreThresh: number;
  /** Candidates kept per level before NMS (1000). */
  topkPerLevel: number;
  /** IoU above which a lower-scored box of the same class is suppressed (0.6). */
  nmsThresh: number;
  /** Detections kept per image (100, COCO's maxDets). */
  maxDetections: number;
}

export const defaultPostprocess: PostprocessOptions = { scoreThresh: 0.05, topkPerLevel: 1000, nmsThresh: 0.6, maxDetections: 100 };

/** IoU of two `[x0, y0, x1, y1]` boxes (0 when either is empty). */
export function boxIou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return u > 0 ? inter / u : 0;
}

/**
 * Greedy class-wise NMS (torchvision `batched_nms`): boxes of different labels never suppress each
 * other; within a label, in decreasing score, a box is dropped when its IoU with a kept one exceeds
 * `thresh`. Returns the kept detections sorted by decreasing score (stable for ties).
 */
export function classwiseNms(dets: readonly Detection[], thresh: number): Detection[] {
  const order = dets.map((_, i) => i).sort((i, j) => dets[j]!.score - dets[i]!.score || i - j);
  const kept: Detection[] = [];
  const byLabel = new Map<number, Detection[]>();
  for (const i of order) {
    const d = dets[i]!;
    const same = byLabel.get(d.label) ?? [];
    if (same.some((k) => boxIou(k.box, d.box) > thresh)) continue;
    same.push(d);
    byLabel.set(d.label, same);
    kept.push(d);
  }
  return kept;
}

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/**
 * Detections of one image from the flattened head outputs of that image: `cls` [K, N] logits,
 * `reg` [4, N] distances in strides, `ctr` [N] logits (layouts of `flattenLevels`), for an input of
 * `size` = [H, W] pixels.
 */
export function decodeDetections(
  cls: ArrayLike<number>, reg: ArrayLike<number>, ctr: ArrayLike<number>,
  levels: readonly FcosLevel[], numClasses: number, size: [number, number], opts: PostprocessOptions = defaultPostprocess,
): Detection[] {
  const pts = fcosPoints(levels);
  const N = pts.x.length;
  const K = numClasses;
  if (cls.length !== K * N || reg.length !== 4 * N || ctr.length !== N) {
    throw new Error(`decodeDetections: expected cls ${K}x${N}, reg 4x${N}, ctr ${N} values, got ${cls.length}, ${reg.length}, ${ctr.length}`);
  }
  const [H, W] = size;
  const cand: Detection[] = [];
  let start = 0;
  for (const l of levels) {
    const end = start + l.h * l.w;
    const lvl: { n: number; k: number; score: number }[] = [];
    for (let n = start; n < end; n++) {
      const c = sigmoid(ctr[n]!);
      for (let k = 0; k < K; k++) {
        const score = Math.sqrt(sigmoid(cls[k * N + n]!) * c);
        if (score > opts.scoreThresh) lvl.push({ n, k, score });
      }
    }
    lvl.sort((a, b) => b.score - a.score || a.n - b.n || a.k - b.k);
    for (const { n, k, score } of lvl.slice(0, opts.topkPerLevel)) {
      const s = pts.stride[n]!;
      const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
      const box: Box = [
        clip(pts.x[n]! - reg[n]! * s, W), clip(pts.y[n]! - reg[N + n]! * s, H),
        clip(pts.x[n]! + reg[2 * N + n]! * s, W), clip(pts.y[n]! + reg[3 * N + n]! * s, H),
      ];
      if (box[2] > box[0] && box[3] > box[1]) cand.push({ box, score, label: k });
    }
    start = end;
  }
  return classwiseNms(cand, opts.nmsThresh).slice(0, opts.maxDetections);
}
