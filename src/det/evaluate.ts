/**
 * COCO box evaluation of a detector on a `DetDataset`'s evaluation view: every image at the
 * detector's input size (`get(i, size, null)`), detections mapped back to the original image's
 * pixels with `sample.scale` (and clipped to it), labels mapped to `categoryIds`, then
 * `cocoEval(gt, dt, 'bbox')` (src/det/coco-eval.ts, pycocotools' COCOeval) against the dataset's
 * `cocoGroundTruth()`.
 */
import type { Runtime } from '../graph/runtime.ts';
import type { Image } from '../data/image.ts';
import { progress, type ProgressStream } from '../eval/progress.ts';
import { type CocoEvalResult, cocoEval } from './coco-eval.ts';
import type { Detector } from './detector.ts';
import { type PredictOptions, predictDetections } from './predict.ts';
import type { CocoDetection, DetDataset, DetSample, Detection } from './types.ts';
import { toCocoBox } from './types.ts';

export interface EvaluateOptions extends PredictOptions {
  /** Evaluate only the first `limit` images (default all). */
  limit?: number;
  progressStream?: ProgressStream;
}

export interface DetEvalResult {
  /** The 12 COCOeval summary numbers (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl). */
  stats: number[];
  statsNames: string[];
  perCategoryAP: number[];
  /** Detections in COCO format (original-image pixels), as `loadRes` takes them. */
  detections: CocoDetection[];
  /** Per evaluated image: its detections in input pixels and the sample they came from (without pixels). */
  images: { imageId: number; scale: [number, number]; originalSize: [number, number]; detections: Detection[] }[];
  /** Wall time of inference (forward + post-processing) per image, ms. */
  msPerImage: number;
  coco: CocoEvalResult;
}

/** A detection in input pixels -> COCO format in the original image (box / scale, clipped). */
export function toOriginalCoco(d: Detection, s: Pick<DetSample, 'imageId' | 'scale' | 'originalSize'>, categoryIds: readonly number[]): CocoDetection {
  const [sx, sy] = s.scale;
  const [H0, W0] = s.originalSize;
  const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  const box: [number, number, number, number] = [clip(d.box[0] / sx, W0), clip(d.box[1] / sy, H0), clip(d.box[2] / sx, W0), clip(d.box[3] / sy, H0)];
  const cat = categoryIds[d.label];
  if (cat === undefined) throw new Error(`evaluateDetector: label ${d.label} has no category id (the dataset has ${categoryIds.length} classes)`);
  return { image_id: s.imageId, category_id: cat, bbox: toCocoBox(box), score: d.score };
}

/**
 * Runs the detector over the dataset's evaluation view and scores it with COCO box AP.
 *
 * @example
 * const r = await evaluateDetector(rt, det, params, valSet, [128, 128]);
 * console.log(r.statsNames[0], r.stats[0], r.msPerImage);
 */
export async function evaluateDetector(
  rt: Runtime, det: Detector, params: ReadonlyMap<string, Float32Array>, ds: DetDataset, size: [number, number], opts: EvaluateOptions = {},
): Promise<DetEvalResult> {
  const n = Math.min(ds.length, opts.limit ?? ds.length);
  if (n < 1) throw new Error('evaluateDetector: the dataset is empty');
  const bs = opts.batch ?? 8;
  const bar = progress(n, 'evaluate', { stream: opts.progressStream });
  const images: DetEvalResult['images'] = [];
  const detections: CocoDetection[] = [];
  let ms = 0;
  for (let i = 0; i < n; i += bs) {
    const samples: DetSample[] = [];
    for (let j = i; j < Math.min(n, i + bs); j++) samples.push(await ds.get(j, size, null));
    const t0 = performance.now();
    const dets = await predictDetections(rt, det, params, samples.map((s): Image => s.image), size, { ...opts, batch: bs, fixedBatch: n > bs });
    ms += performance.now() - t0;
    samples.forEach((s, k) => {
      images.push({ imageId: s.imageId, scale: s.scale, originalSize: s.originalSize, detections: dets[k]! });
      for (const d of dets[k]!) detections.push(toOriginalCoco(d, s, ds.categoryIds));
    });
    bar.tick(samples.length);
  }
  bar.done();
  const gt = ds.cocoGroundTruth();
  // Score only the evaluated images (a `limit` leaves the others out of the ground truth too).
  const ids = new Set(images.map((im) => im.imageId));
  const gtSub = n === ds.length ? gt : { ...gt, images: gt.images.filter((im) => ids.has(im.id)), annotations: gt.annotations.filter((a) => ids.has(a.image_id)) };
  const coco = cocoEval(gtSub, detections, 'bbox');
  return { stats: coco.stats, statsNames: coco.statsNames, perCategoryAP: coco.perCategoryAP, detections, images, msPerImage: ms / n, coco };
}
