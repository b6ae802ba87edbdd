/**
 * The detection task's shared types: what datasets return, what detectors predict and what the
 * COCO evaluator consumes. Stated once, loudly:
 *
 * - Boxes inside the library are `[x0, y0, x1, y1]` in pixels of the image they belong to,
 *   x to the right, y down, origin at the top-left corner of the top-left pixel (COCO's
 *   continuous convention: a box covering pixel columns 3..5 is x0 = 3, x1 = 6).
 * - COCO JSON (files, the evaluator's input) uses `bbox: [x, y, w, h]` in the ORIGINAL image's
 *   pixels; `toCocoBox`/`fromCocoBox` convert.
 * - `label` is a contiguous class index 0..K-1; `DetDataset.categoryIds[label]` is the COCO
 *   `category_id` it stands for.
 * - Instance masks are row-major `H*W` 0/1 bytes at the sample's image size.
 */
import type { Image } from '../data/image.ts';
import type { Rng } from '../util/rng.ts';

export type Box = [number, number, number, number];

export interface DetObject {
  label: number;
  box: Box;
  mask?: Uint8Array;
  /** COCO `iscrowd`: ignored regions (neither positives nor negatives in training; crowd in eval). */
  iscrowd?: boolean;
}

export interface DetSample {
  /** CHW in [0, 1], at the requested size. */
  image: Image;
  objects: DetObject[];
  /** COCO `image_id` of the source image. */
  imageId: number;
  /**
   * Pixels of this sample per pixel of the original image (x and y). Predictions divided by it
   * land in the original image, where the ground truth of `cocoGroundTruth()` lives.
   * 1 for synthetic scenes rendered at the requested size.
   */
  scale: [number, number];
  /** Size of the original image, [H, W]. */
  originalSize: [number, number];
}

/** COCO-format ground truth (`instances.json`), the subset the evaluator and readers use. */
export interface CocoImage { id: number; width: number; height: number; file_name?: string }
export interface CocoRle { size: [number, number]; counts: number[] | string }
export type CocoSegmentation = number[][] | CocoRle;
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  /** [x, y, w, h] */
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
  segmentation?: CocoSegmentation;
}
export interface CocoCategory { id: number; name: string; supercategory?: string }
export interface CocoDataset {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
  info?: Record<string, unknown>;
}
/** One detection as `loadRes` takes it. */
export interface CocoDetection {
  image_id: number;
  category_id: number;
  bbox?: [number, number, number, number];
  segmentation?: CocoRle;
  score: number;
}

export interface DetDataset {
  readonly length: number;
  readonly classNames: readonly string[];
  readonly categoryIds: readonly number[];
  /**
   * Example `i` at `size` = [H, W] (the detector's input). `rng` drives augmentation (large-scale
   * jitter); `null` = the deterministic evaluation view (resize the long side to fit, pad).
   */
  get(i: number, size: [number, number], rng: Rng | null): DetSample | Promise<DetSample>;
  /** Ground truth of the whole dataset in COCO format, in original-image pixels (for `cocoEval`). */
  cocoGroundTruth(): CocoDataset;
}

/** One predicted object, in the pixels of the detector's input image. */
export interface Detection {
  box: Box;
  score: number;
  label: number;
  mask?: Uint8Array;
}

export function toCocoBox(b: Box): [number, number, number, number] {
  return [b[0], b[1], b[2] - b[0], b[3] - b[1]];
}

export function fromCocoBox(b: readonly number[]): Box {
  return [b[0]!, b[1]!, b[0]! + b[2]!, b[1]! + b[3]!];
}
