/**
 * Detection inference: the detector's forward with parameters as graph inputs (one compiled
 * session per (detector, batch, H, W), reused for every checkpoint), then the host-side FCOS
 * post-processing (src/det/postprocess.ts).
 */
import { type Graph, type HostTensor, type Runtime, type Tensor, host } from '../graph/index.ts';
import { Params } from '../nn/params.ts';
import type { Image } from '../data/image.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import type { Detector } from './detector.ts';
import { flattenLevels } from './fcos.ts';
import { type PostprocessOptions, decodeDetections, defaultPostprocess } from './postprocess.ts';
import type { Detection } from './types.ts';

export interface PredictOptions {
  /** Images per ONNX run (default 8). */
  batch?: number;
  /** Per-channel normalisation applied to the [0, 1] images (default ImageNet, as training). */
  mean?: readonly number[];
  std?: readonly number[];
  /** Score threshold, top-k per level, NMS IoU, max detections (see `defaultPostprocess`). */
  postprocess?: Partial<PostprocessOptions>;
  /** Pad a short last chunk to `batch` images so one compiled session serves every call (default: only when there are several chunks). */
  fixedBatch?: boolean;
}

const keys = new WeakMap<Detector, string>();
let counter = 0;
const keyOf = (d: Detector): string => {
  let k = keys.get(d);
  if (!k) keys.set(d, (k = `det-predict-${++counter}`));
  return k;
};

/** Normalises `images` (CHW in [0, 1], all `size`) into one NCHW batch. */
export function stackImages(images: readonly Image[], size: [number, number], mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): Float32Array {
  const [H, W] = size;
  const plane = H * W;
  const x = new Float32Array(images.length * 3 * plane);
  images.forEach((im, b) => {
    if (im.channels !== 3 || im.height !== H || im.width !== W) {
      throw new Error(`stackImages: image ${b} is ${im.channels}x${im.height}x${im.width}, expected 3x${H}x${W} (resize it to the detector's input size first)`);
    }
    for (let c = 0; c < 3; c++) {
      const m = mean[c]!;
      const k = 1 / std[c]!;
      for (let p = 0; p < plane; p++) x[(b * 3 + c) * plane + p] = (im.data[c * plane + p]! - m) * k;
    }
  });
  return x;
}

/**
 * Detections for each image (boxes in the pixels of the `size` input).
 *
 * @example
 * const dets = await predictDetections(rt, det, params, [img], [128, 192], { postprocess: { scoreThresh: 0.3 } });
 */
export async function predictDetections(
  rt: Runtime, det: Detector, params: ReadonlyMap<string, Float32Array>, images: readonly Image[], size: [number, number], opts: PredictOptions = {},
): Promise<Detection[][]> {
  const [H, W] = size;
  det.checkInputSize(H, W);
  const levels = det.levels(H, W);
  const infos = det.paramInfos();
  const K = det.numClasses;
  const pp: PostprocessOptions = { ...defaultPostprocess, ...(opts.postprocess ?? {}) };
  const bs = opts.batch ?? 8;
  if (!Number.isInteger(bs) || bs < 1) throw new RangeError(`predictDetections: batch must be a positive integer, got ${bs}`);
  const build = (inputs: Readonly<Record<string, Tensor>>, g: Graph): Record<string, Tensor> => {
    const f = flattenLevels(det.forward(new Params(g), inputs['x']!, { train: false }));
    return { cls: f.cls, reg: f.reg, ctr: f.ctr };
  };
  const paramFeeds: Record<string, HostTensor> = {};
  for (const [n, info] of infos) {
    const a = params.get(n);
    if (!a) throw new Error(`predictDetections: parameter '${n}' [${info.shape}] is missing from the given weights`);
    paramFeeds[n] = host(a, info.shape);
  }
  const out: Detection[][] = [];
  for (let i = 0; i < images.length; i += bs) {
    // Pad the last chunk to the batch size so one session serves every chunk.
    const chunk = images.slice(i, i + bs);
    const padded = chunk.length < bs && (opts.fixedBatch ?? images.length > bs) ? [...chunk, ...Array.from({ length: bs - chunk.length }, () => chunk[0]!)] : chunk;
    const B = padded.length;
    const x = stackImages(padded, size, opts.mean, opts.std);
    const r = await rt.run(build, { x: host(x, [B, 3, H, W]), ...paramFeeds }, keyOf(det));
    const cls = r['cls']!.data as Float32Array;
    const reg = r['reg']!.data as Float32Array;
    const ctr = r['ctr']!.data as Float32Array;
    const N = ctr.length / B;
    for (let b = 0; b < chunk.length; b++) {
      out.push(decodeDetections(cls.subarray(b * K * N, (b + 1) * K * N), reg.subarray(b * 4 * N, (b + 1) * 4 * N), ctr.subarray(b * N, (b + 1) * N), levels, K, size, pp));
    }
  }
  return out;
}
