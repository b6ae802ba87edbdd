/**
 * Image transforms on CHW float images, composable and driven by a seeded `Rng`.
 *
 * A `Transform` maps (image, target resolution, rng) → image. The resolution is an
 * argument rather than baked in so one pipeline serves every resolution of
 * multi-resolution training (ResFormer, Tian et al. 2023).
 *
 * @example
 * const train = compose(randomResizedCrop(), horizontalFlip(0.5), normalize());
 * const evalT = compose(resizeCenterCrop(), normalize());
 * const out = train(img, 128, new Rng(0));
 */
import type { Rng } from '../util/rng.ts';
import type { Image } from './image.ts';
import { crop, resize, type Interpolation } from './resample.ts';

export type Transform = (img: Image, res: number, rng: Rng) => Image;

/** ImageNet channel statistics (timm `IMAGENET_DEFAULT_MEAN/STD`, timm/data/constants.py). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** ResFormer/DeiT evaluation crop ratio 224/256 (ResFormer README and `datasets.py`). */
export const DEFAULT_CROP_PCT = 224 / 256;

/** Apply transforms left to right. */
export function compose(...ts: Transform[]): Transform {
  return (img, res, rng) => ts.reduce((acc, t) => t(acc, res, rng), img);
}

export interface RandomResizedCropOptions {
  scale?: [number, number];
  ratio?: [number, number];
  interpolation?: Interpolation;
}

/** The crop box chosen by timm's `RandomResizedCropAndInterpolation.get_params`. */
export function randomResizedCropBox(
  height: number,
  width: number,
  rng: Rng,
  scale: [number, number] = [0.08, 1],
  ratio: [number, number] = [3 / 4, 4 / 3],
): { top: number; left: number; height: number; width: number } {
  if (!(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 1)) throw new RangeError(`randomResizedCrop: scale must satisfy 0 < lo <= hi <= 1, got [${scale.join(', ')}]`);
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1])) throw new RangeError(`randomResizedCrop: ratio must satisfy 0 < lo <= hi, got [${ratio.join(', ')}]`);
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  // timm/data/transforms.py: 10 attempts of (area fraction ~ U(scale), log-aspect ~ U(log ratio)).
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w >= 1 && h >= 1 && w <= width && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  // Fallback: central crop clamped to the ratio range (timm: "Fallback to central crop").
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < ratio[0]) {
    w = width;
    h = Math.round(w / ratio[0]);
  } else if (inRatio > ratio[1]) {
    h = height;
    w = Math.round(h * ratio[1]);
  } else {
    w = width;
    h = height;
  }
  h = Math.max(1, Math.min(h, height));
  w = Math.max(1, Math.min(w, width));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** Random resized crop to res x res (timm semantics; default bicubic as in DeiT/ResFormer training). */
export function randomResizedCrop(opts: RandomResizedCropOptions = {}): Transform {
  const interpolation = opts.interpolation ?? 'bicubic';
  return (img, res, rng) => {
    const b = randomResizedCropBox(img.height, img.width, rng, opts.scale, opts.ratio);
    return resize(img, res, res, { interpolation, box: { x: b.left, y: b.top, width: b.width, height: b.height } });
  };
}

/** Mirror left-right (always). */
export function hflip(img: Image): Image {
  const { channels: C, height: H, width: W } = img;
  const out = new Float32Array(img.data.length);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const row = (c * H + y) * W;
      for (let x = 0; x < W; x++) out[row + x] = img.data[row + W - 1 - x]!;
    }
  }
  return { data: out, channels: C, height: H, width: W };
}

/** Flip with probability p (one rng draw per call, flipped or not, so streams stay aligned). */
export function horizontalFlip(p = 0.5): Transform {
  return (img, _res, rng) => (rng.next() < p ? hflip(img) : img);
}

export interface ResizeCenterCropOptions {
  /** Crop fraction: resize shorter side to round(res / cropPct), then center-crop res. Default 224/256. */
  cropPct?: number;
  interpolation?: Interpolation;
}

/**
 * Evaluation transform of ResFormer (and DeiT): resize the shorter side to
 * round(r * 256 / 224), then center-crop r x r. Aspect ratio is preserved.
 */
export function resizeCenterCrop(opts: ResizeCenterCropOptions = {}): Transform {
  const pct = opts.cropPct ?? DEFAULT_CROP_PCT;
  if (!(pct > 0 && pct <= 1)) throw new RangeError(`resizeCenterCrop: cropPct must be in (0, 1], got ${pct}`);
  const interpolation = opts.interpolation ?? 'bicubic';
  return (img, res) => {
    const shorter = Math.round(res / pct);
    const scale = shorter / Math.min(img.height, img.width);
    const h = img.height <= img.width ? shorter : Math.round(img.height * scale);
    const w = img.width < img.height ? shorter : Math.round(img.width * scale);
    const r = h === img.height && w === img.width ? img : resize(img, h, w, { interpolation });
    return centerCropImage(r, res, res);
  };
}

/** Center crop to h x w (torchvision rounding: top = round((H - h) / 2)). */
export function centerCropImage(img: Image, h: number, w: number): Image {
  if (h > img.height || w > img.width) {
    throw new RangeError(`centerCrop: crop ${h}x${w} is larger than the image ${img.height}x${img.width}; resize first`);
  }
  return crop(img, Math.round((img.height - h) / 2), Math.round((img.width - w) / 2), h, w);
}

/** Plain resize to res x res (no crop; aspect not preserved). */
export function resizeTo(interpolation: Interpolation = 'bilinear'): Transform {
  return (img, res) => (img.height === res && img.width === res ? img : resize(img, res, res, { interpolation }));
}

/** (x - mean) / std per channel. */
export function normalize(mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): Transform {
  return (img) => {
    if (mean.length !== img.channels || std.length !== img.channels) {
      throw new RangeError(`normalize: mean/std have ${mean.length}/${std.length} entries but the image has ${img.channels} channels`);
    }
    if (std.some((s) => !(s > 0))) throw new RangeError(`normalize: std must be positive, got [${std.join(', ')}]`);
    const n = img.height * img.width;
    const out = new Float32Array(img.data.length);
    for (let c = 0; c < img.channels; c++) {
      const m = mean[c]!;
      const inv = 1 / std[c]!;
      for (let i = c * n; i < (c + 1) * n; i++) out[i] = (img.data[i]! - m) * inv;
    }
    return { data: out, channels: img.channels, height: img.height, width: img.width };
  };
}
