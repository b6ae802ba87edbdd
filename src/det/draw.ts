/**
 * Pictures of detections: an image with boxes drawn and labelled (class name and score), as PNG.
 * Boxes are an SVG overlay composited by sharp (librsvg draws the text), on the image upscaled by
 * an integer factor (nearest neighbour) when it is small, so labels stay readable on 64-128 px
 * inputs. Several layers can be drawn at once, e.g. ground truth dashed under predictions solid.
 *
 * @example
 * const png = await drawDetectionsPng(sample.image, [
 *   { boxes: sample.objects, dashed: true, color: '#ffffff' },
 *   { boxes: detections },
 * ], ds.classNames);
 */
import sharp from 'sharp';
import type { Image } from '../data/image.ts';
import type { Box } from './types.ts';
import { chwToRgbU8 } from './data/png.ts';

/** Tableau 10 (Vega's `category10`-like palette), one colour per class index. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export function classColor(label: number): string {
  return PALETTE[((label % PALETTE.length) + PALETTE.length) % PALETTE.length]!;
}

export interface DrawBox {
  box: Box;
  label: number;
  score?: number;
}

export interface DrawLayer {
  boxes: readonly DrawBox[];
  /** One colour for the whole layer; default per class. */
  color?: string;
  dashed?: boolean;
  /** Draw the label text (default true). */
  labels?: boolean;
}

export interface DrawOptions {
  /** Integer upscaling of the image; default the smallest that makes the long side >= 384 px (at most 8). */
  upscale?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** The SVG overlay of the layers on a `width` x `height` canvas where each image pixel is `k` canvas pixels. */
export function detectionsSvg(width: number, height: number, k: number, layers: readonly DrawLayer[], classNames: readonly string[]): string {
  const parts: string[] = [];
  const font = 11;
  for (const layer of layers) {
    for (const d of layer.boxes) {
      const color = layer.color ?? classColor(d.label);
      const [x0, y0, x1, y1] = d.box.map((v) => v * k) as Box;
      const dash = layer.dashed ? ' stroke-dasharray="5,3"' : '';
      parts.push(`<rect x="${x0.toFixed(1)}" y="${y0.toFixed(1)}" width="${Math.max(0, x1 - x0).toFixed(1)}" height="${Math.max(0, y1 - y0).toFixed(1)}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      if (layer.labels === false) continue;
      const name = classNames[d.label] ?? `class ${d.label}`;
      const text = escapeXml(d.score === undefined ? name : `${name} ${d.score.toFixed(2)}`);
      const tw = Math.ceil(text.length * font * 0.6) + 4;
      // Label above the box, or inside its top when there is no room above.
      const ty = y0 >= font + 3 ? y0 - font - 3 : y0;
      const tx = Math.min(Math.max(0, x0), Math.max(0, width - tw));
      parts.push(`<rect x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" width="${tw}" height="${font + 3}" fill="${color}" fill-opacity="0.85"/>`);
      parts.push(`<text x="${(tx + 2).toFixed(1)}" y="${(ty + font).toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="#ffffff">${text}</text>`);
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** PNG bytes of `image` (CHW in [0, 1]) with the layers' boxes drawn. Boxes are in the image's pixels. */
export async function drawDetectionsPng(image: Image, layers: readonly DrawLayer[], classNames: readonly string[], opts: DrawOptions = {}): Promise<Buffer> {
  const { height: H, width: W } = image;
  const k = opts.upscale ?? Math.min(8, Math.max(1, Math.ceil(384 / Math.max(H, W))));
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`drawDetectionsPng: upscale must be a positive integer, got ${k}`);
  const base = await sharp(chwToRgbU8(image), { raw: { width: W, height: H, channels: 3 } }).resize(W * k, H * k, { kernel: 'nearest' }).png().toBuffer();
  const svg = detectionsSvg(W * k, H * k, k, layers, classNames);
  return sharp(base).composite([{ input: Buffer.from(svg) }]).png().toBuffer();
}
