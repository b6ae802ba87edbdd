/**
 * Large-scale jitter (LSJ), the augmentation ViTDet trains with (Li et al. 2022, "Exploring Plain
 * Vision Transformer Backbones for Object Detection", Sec. 4; Ghiasi et al. 2021 "Simple Copy-Paste"),
 * and the deterministic evaluation view.
 *
 * Semantics follow detectron2 (`detectron2/data/transforms/augmentation_impl.py`, used by
 * `projects/ViTDet/configs/common/coco_loader_lsj.py`):
 *  - `RandomFlip(horizontal=True)`: mirror with probability 0.5 (drawn first);
 *  - `ResizeScale(min_scale=0.1, max_scale=2.0, target_height=H, target_width=W)`: draw
 *    s ~ U(min, max), resize by `min(s*H/h, s*W/w)` (aspect kept), size rounded;
 *  - `FixedSizeCrop(crop_size=(H, W), pad=True)`: ONE uniform u scales both axes' free room,
 *    offset = round(max(resized - crop, 0) * u); then pad bottom/right up to (H, W) with
 *    `pad_value` 128 (of 255; `PAD_VALUE`).
 * Boxes follow the image; with masks the box is recomputed from the transformed mask (detectron2
 * `recompute_boxes` for mask training); objects left with an empty mask or box are dropped.
 *
 * The evaluation view resizes the long side to fit (H, W) (`min(H/h, W/w)`) and pads bottom/right:
 * a prediction divided by `scale` lands in the original image.
 *
 * A *plan* (`ViewPlan`) is the geometry alone, so datasets that can render at any resolution
 * (the synthetic scenes) follow the same plan exactly instead of resampling pixels.
 */
import type { Image } from '../../data/image.ts';
import { resize } from '../../data/resample.ts';
import { hflip } from '../../data/transforms.ts';
import type { Rng } from '../../util/rng.ts';
import type { Box, DetObject } from '../types.ts';
import { maskBounds, resampleMask } from './bitmask.ts';

export interface LsjOptions {
  /** detectron2 ResizeScale min_scale; default 0.1. */
  minScale?: number;
  /** detectron2 ResizeScale max_scale; default 2.0. */
  maxScale?: number;
  /** Random horizontal flip (p = 0.5) as ViTDet's loader; default true. */
  flip?: boolean;
}

/** The geometry of one view: input [h, w] -> resize to `resized` -> window at `offset` of size `output`. */
export interface ViewPlan {
  input: [number, number];
  output: [number, number];
  /** Size after the resize, [rh, rw]. */
  resized: [number, number];
  /** Resized pixels per input pixel, [x, y] (= rw / w, rh / h). */
  scale: [number, number];
  /** Top-left of the output window in resized pixels, [x, y] (>= 0; the rest is padding). */
  offset: [number, number];
  /** Mirror the resized image horizontally before taking the window. */
  flip: boolean;
}

function checkSize(op: string, name: string, s: readonly number[]): void {
  if (s.length !== 2 || !s.every((v) => Number.isInteger(v) && v >= 1 && v <= 16384)) {
    throw new RangeError(`${op}: ${name} must be [H, W] with integers in [1, 16384], got [${s.join(', ')}]`);
  }
}

function planFor(op: string, input: [number, number], output: [number, number], factor: number, u: number, flip: boolean): ViewPlan {
  checkSize(op, 'input', input);
  checkSize(op, 'output', output);
  const [h, w] = input;
  const [H, W] = output;
  const k = Math.min((factor * H) / h, (factor * W) / w);
  const rh = Math.max(1, Math.round(h * k));
  const rw = Math.max(1, Math.round(w * k));
  // FixedSizeCrop._get_crop: one uniform for both axes.
  const ox = Math.round(Math.max(rw - W, 0) * u);
  const oy = Math.round(Math.max(rh - H, 0) * u);
  return { input: [h, w], output: [H, W], resized: [rh, rw], scale: [rw / w, rh / h], offset: [ox, oy], flip };
}

/** A random LSJ view (flip, then scale, then crop offset are drawn from `rng`, in that order). */
export function lsjPlan(rng: Rng, input: [number, number], output: [number, number], opts: LsjOptions = {}): ViewPlan {
  const lo = opts.minScale ?? 0.1;
  const hi = opts.maxScale ?? 2.0;
  if (!(lo > 0 && hi >= lo && Number.isFinite(hi))) {
    throw new RangeError(`lsjPlan: need 0 < minScale <= maxScale, got minScale=${lo} maxScale=${hi}`);
  }
  const flip = (opts.flip ?? true) && rng.bernoulli(0.5);
  const factor = rng.uniform(lo, hi);
  const u = rng.next();
  return planFor('lsjPlan', input, output, factor, u, flip);
}

/** The evaluation view: long side fits, no crop, padding bottom/right. */
export function evalPlan(input: [number, number], output: [number, number]): ViewPlan {
  return planFor('evalPlan', input, output, 1, 0, false);
}

/** The part of the output covered by image (the rest is padding), [vh, vw]. */
export function visibleSize(plan: ViewPlan): [number, number] {
  return [Math.min(plan.output[0], plan.resized[0] - plan.offset[1]), Math.min(plan.output[1], plan.resized[1] - plan.offset[0])];
}

/** detectron2 `FixedSizeCrop(pad_value=128.0)` on 0-255 pixels: mid grey, close to the mean colour. */
export const PAD_VALUE = 128 / 255;

/** Place a [C, vh, vw] image at the top-left of a [C, H, W] canvas filled with `padValue`. */
export function padTo(img: Image, H: number, W: number, padValue = PAD_VALUE): Image {
  if (img.height > H || img.width > W) throw new RangeError(`padTo: image ${img.height}x${img.width} is larger than the canvas ${H}x${W}`);
  const C = img.channels;
  const out = new Float32Array(C * H * W);
  if (padValue !== 0) out.fill(padValue);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < img.height; y++) {
      const so = (c * img.height + y) * img.width;
      out.set(img.data.subarray(so, so + img.width), (c * H + y) * W);
    }
  }
  return { data: out, channels: C, height: H, width: W };
}

/** Objects of the input image carried through the plan (masks resampled nearest, boxes from masks). */
export function transformObjects(plan: ViewPlan, objects: readonly DetObject[]): DetObject[] {
  const [h, w] = plan.input;
  const [H, W] = plan.output;
  const [sx, sy] = plan.scale;
  const [ox, oy] = plan.offset;
  const [vh, vw] = visibleSize(plan);
  const out: DetObject[] = [];
  for (const o of objects) {
    if (o.mask) {
      const mask = resampleMask(o.mask, h, w, H, W, { scaleX: sx, scaleY: sy, offX: ox, offY: oy, flipWidth: plan.flip ? plan.resized[1] : undefined });
      const box = maskBounds(mask, H, W);
      if (!box) continue;
      out.push({ ...o, box, mask });
      continue;
    }
    const b = plan.flip ? [w - o.box[2], o.box[1], w - o.box[0], o.box[3]] : o.box;
    const box: Box = [
      Math.min(Math.max(b[0]! * sx - ox, 0), vw),
      Math.min(Math.max(b[1]! * sy - oy, 0), vh),
      Math.min(Math.max(b[2]! * sx - ox, 0), vw),
      Math.min(Math.max(b[3]! * sy - oy, 0), vh),
    ];
    // detectron2 filter_empty_instances: box_threshold 1e-5.
    if (box[2] - box[0] <= 1e-5 || box[3] - box[1] <= 1e-5) continue;
    out.push({ ...o, box });
  }
  return out;
}

/**
 * Apply a plan to an image (CHW in [0, 1], bilinear with antialias when shrinking, only the
 * visible window is resampled) and its objects.
 */
export function applyPlan(plan: ViewPlan, image: Image, objects: readonly DetObject[], padValue = PAD_VALUE): { image: Image; objects: DetObject[] } {
  if (image.height !== plan.input[0] || image.width !== plan.input[1]) {
    throw new RangeError(`applyPlan: image is ${image.height}x${image.width} but the plan was made for ${plan.input[0]}x${plan.input[1]}`);
  }
  const [sx, sy] = plan.scale;
  const [ox, oy] = plan.offset;
  const [vh, vw] = visibleSize(plan);
  const src = plan.flip ? hflip(image) : image;
  const win = resize(src, vh, vw, { interpolation: 'bilinear', box: { x: ox / sx, y: oy / sy, width: vw / sx, height: vh / sy } });
  return { image: padTo(win, plan.output[0], plan.output[1], padValue), objects: transformObjects(plan, objects) };
}
