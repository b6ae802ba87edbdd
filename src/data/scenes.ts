/**
 * "Scenes with Fashion-MNIST items": each image places one large Fashion-MNIST item
 * (35-50% of the field, random position, random colour, grey level used as opacity)
 * on a smooth textured background with sensor noise; half the scenes add a small
 * distractor item (15-22%). The label is the large item's class. Scenes are vector
 * descriptions rendered at any resolution in 'zoom' or 'canvas' mode (see raster.ts),
 * with items upsampled bilinearly from their 28x28 pixels.
 *
 * Scene i of a split is a pure function of (seed, split, i) and the item set.
 */
import { Rng, hashSeed } from '../util/rng.ts';
import type { Dataset } from './dataset.ts';
import { checkIndex, checkRes } from './dataset.ts';
import type { Sample } from './image.ts';
import { FASHION_MNIST_CLASS_NAMES, type GreyImageSet } from './fashion-mnist.ts';
import {
  type BackgroundDesc,
  type PixelMap,
  type PixelNoiseDesc,
  type RGB,
  type RenderMode,
  type RenderOptions,
  DEFAULT_BASE_RES,
  addPixelNoiseAndClamp,
  blend,
  drawBackground,
  pixelMap,
  pixelRange,
} from './raster.ts';
import { type RenderRequest, type Split, contrastingColor, resolveRequest, sampleBackground } from './synthetic.ts';

export interface ItemPlacement {
  /** Index into the item set. */
  item: number;
  /** Top-left corner and side of the item's square, scene units. */
  x: number;
  y: number;
  size: number;
  color: RGB;
}

export interface ItemSceneDesc {
  label: number;
  background: BackgroundDesc;
  main: ItemPlacement;
  distractor: ItemPlacement | null;
  noise: PixelNoiseDesc;
}

/** Bilinear sample of item pixels (align_corners=false, zero outside). */
function sampleItem(set: GreyImageSet, off: number, tx: number, ty: number): number {
  const W = set.width;
  const H = set.height;
  const fx = tx - 0.5;
  const fy = ty - 0.5;
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const ax = fx - x0;
  const ay = fy - y0;
  let acc = 0;
  for (let dy = 0; dy < 2; dy++) {
    const y = y0 + dy;
    if (y < 0 || y >= H) continue;
    const wy = dy === 0 ? 1 - ay : ay;
    for (let dx = 0; dx < 2; dx++) {
      const x = x0 + dx;
      if (x < 0 || x >= W) continue;
      acc += wy * (dx === 0 ? 1 - ax : ax) * set.images[off + y * W + x]!;
    }
  }
  return acc / 255;
}

function drawItem(out: Float32Array, m: PixelMap, set: GreyImageSet, p: ItemPlacement): void {
  const [x0, x1] = pixelRange(p.x, p.x + p.size, m.u0, m.du, m.width);
  const [y0, y1] = pixelRange(p.y, p.y + p.size, m.v0, m.dv, m.height);
  const plane = m.width * m.height;
  const off = p.item * set.width * set.height;
  const sx = set.width / p.size; // texels per scene unit
  const sy = set.height / p.size;
  // Supersample when a pixel covers more than one texel (shrinking), so small renders
  // are area-averaged instead of aliased; 1 sample when upsampling (pure bilinear).
  const nx = Math.min(4, Math.max(1, Math.ceil(m.du * sx)));
  const ny = Math.min(4, Math.max(1, Math.ceil(m.dv * sy)));
  const inv = 1 / (nx * ny);
  const [r, g, b] = p.color;
  for (let py = y0; py < y1; py++) {
    for (let px = x0; px < x1; px++) {
      let a = 0;
      for (let j = 0; j < ny; j++) {
        const v = m.v0 + (py + (j + 0.5) / ny) * m.dv;
        for (let k = 0; k < nx; k++) {
          const u = m.u0 + (px + (k + 0.5) / nx) * m.du;
          a += sampleItem(set, off, (u - p.x) * sx, (v - p.y) * sy);
        }
      }
      a *= inv;
      if (a > 0) blend(out, plane, py * m.width + px, a, r, g, b);
    }
  }
}

export function renderItemScene(desc: ItemSceneDesc, items: GreyImageSet, opts: RenderOptions): Float32Array {
  const m = pixelMap(opts);
  const layers = opts.layers ?? {};
  const out = new Float32Array(3 * m.width * m.height);
  if (layers.background !== false) drawBackground(out, m, desc.background);
  if (layers.clutter !== false && desc.distractor) drawItem(out, m, items, desc.distractor);
  if (layers.objects !== false) drawItem(out, m, items, desc.main);
  addPixelNoiseAndClamp(out, m.width, m.height, layers.noise === false ? null : desc.noise);
  return out;
}

export interface ScenesOptions {
  items: GreyImageSet;
  seed: number;
  split: Split;
  size: number;
  mode?: RenderMode;
  baseRes?: number;
}

const SPLIT_CODES: Record<Split, number> = { train: 0, val: 1, test: 2 };

export class ScenesDataset implements Dataset {
  readonly length: number;
  readonly numClasses = FASHION_MNIST_CLASS_NAMES.length;
  readonly classNames: readonly string[] = FASHION_MNIST_CLASS_NAMES;
  readonly items: GreyImageSet;
  readonly seed: number;
  readonly split: Split;
  readonly mode: RenderMode;
  readonly baseRes: number;
  /** Scene i uses main item order[i % count]: each item used once before any repeats. */
  private readonly order: Int32Array;

  constructor(opts: ScenesOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`ScenesDataset: size must be a positive integer, got ${opts.size}`);
    if (opts.items.count < 1) throw new RangeError('ScenesDataset: the item set is empty');
    this.items = opts.items;
    this.length = opts.size;
    this.seed = opts.seed;
    this.split = opts.split;
    this.mode = opts.mode ?? 'zoom';
    this.baseRes = opts.baseRes ?? DEFAULT_BASE_RES;
    this.order = new Rng(hashSeed(opts.seed, 'scenes-order', SPLIT_CODES[opts.split])).permutation(opts.items.count);
  }

  describe(i: number): ItemSceneDesc {
    checkIndex('ScenesDataset.describe', i, this.length);
    const rng = new Rng(hashSeed(this.seed, 'scenes', SPLIT_CODES[this.split], i));
    const background = sampleBackground(rng);
    const ref: RGB = [0, 1, 2].map((k) => (background.colorA[k]! + background.colorB[k]!) / 2) as RGB;
    const item = this.order[i % this.items.count]!;
    const size = rng.uniform(0.35, 0.5);
    const main: ItemPlacement = { item, x: rng.uniform(0, 1 - size), y: rng.uniform(0, 1 - size), size, color: contrastingColor(rng, ref, 0.3) };
    let distractor: ItemPlacement | null = null;
    if (rng.bernoulli(0.5)) {
      const ds = rng.uniform(0.15, 0.22);
      distractor = { item: rng.int(this.items.count), x: rng.uniform(0, 1 - ds), y: rng.uniform(0, 1 - ds), size: ds, color: contrastingColor(rng, ref, 0.3) };
    }
    const noise = { sigma: rng.uniform(0.01, 0.04), seed: rng.nextU32() };
    return { label: this.items.labels[item]!, background, main, distractor, noise };
  }

  render(i: number, req: RenderRequest): { image: Float32Array; label: number; width: number; height: number } {
    const opts = resolveRequest('ScenesDataset.render', req, this.mode, this.baseRes);
    const desc = this.describe(i);
    return { image: renderItemScene(desc, this.items, opts), label: desc.label, width: opts.width, height: opts.height };
  }

  get(i: number, res: number, _rng?: Rng): Sample {
    checkRes('ScenesDataset.get', res);
    const r = this.render(i, { res });
    return { image: { data: r.image, channels: 3, height: res, width: res }, label: r.label };
  }
}
