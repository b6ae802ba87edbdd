/**
 * How the page turns an image into a model input, shared with Node so tests can compute the same
 * tensor: built-in samples are rendered by the synthetic dataset directly at the model's size
 * (exactly what `anyres` evaluation feeds); other images are centre-cropped to the model's aspect
 * ratio and resized with Pillow-style antialiased bicubic (src/data/resample.ts).
 */
import { SyntheticDataset } from '../../src/data/synthetic.ts';
import type { Image } from '../../src/data/image.ts';
import { resize } from '../../src/data/resample.ts';

/** The split and seed of the page's built-in samples (the synthetic validation split). */
export const SAMPLE_SET = { seed: 0, split: 'val', size: 64 } as const;

export const samples = new SyntheticDataset({ seed: SAMPLE_SET.seed, split: SAMPLE_SET.split, size: SAMPLE_SET.size });

/** Built-in sample `i` rendered at H x W, CHW in [0, 1]. */
export function sampleInput(i: number, H: number, W: number): Float32Array {
  return samples.render(i, { width: W, height: H }).image;
}

/** Centre crop to the H:W aspect ratio, then antialiased bicubic resize to H x W. */
export function fitImage(img: Image, H: number, W: number): Float32Array {
  const target = W / H;
  let bw = img.width;
  let bh = img.height;
  if (img.width / img.height > target) bw = img.height * target;
  else bh = img.width / target;
  const box = { x: (img.width - bw) / 2, y: (img.height - bh) / 2, width: bw, height: bh };
  return resize(img, H, W, { interpolation: 'bicubic', box }).data;
}

/** RGBA bytes (canvas ImageData, sharp raw) → CHW float in [0, 1], alpha dropped. */
export function rgbaToChw(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, channels = 4): Image {
  const n = width * height;
  if (rgba.length !== n * channels) throw new Error(`rgbaToChw: ${rgba.length} bytes for ${width}x${height}x${channels}`);
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) data[c * n + i] = rgba[i * channels + (channels >= 3 ? c : 0)]! / 255;
  }
  return { data, channels: 3, height, width };
}

/** Indices and probabilities of the k largest entries. */
export function topK(probs: ArrayLike<number>, k: number): { index: number; prob: number }[] {
  return [...Array(probs.length).keys()]
    .sort((a, b) => probs[b]! - probs[a]! || a - b)
    .slice(0, k)
    .map((index) => ({ index, prob: probs[index]! }));
}
