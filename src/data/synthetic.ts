/**
 * A built-in classification dataset that needs no download and renders every image
 * from a *vector description* at any resolution, so a resolution sweep sees the same
 * scenes rather than resampled pixels.
 *
 * Built for position-sensitive vision transformers: the class is the *shape* of one
 * object (or the spatial arrangement of two) placed at a random position and scale on
 * a textured background with small clutter; colours are random so colour carries no
 * class information. Orientation matters for the grating and blob-pair classes
 * (horizontal vs vertical), which a model can only separate with spatial structure.
 *
 * Sample i of split s is a pure function of (seed, s, i): `describe(i)` reseeds from
 * `hashSeed(seed, split, i)`. Labels are `i mod numClasses`, so classes are exactly
 * balanced (to within one) in every split and every prefix of a split.
 *
 * @example
 * const ds = new SyntheticDataset({ seed: 0, split: 'train', size: 10000 });
 * const { image, label } = ds.render(7, { res: 96, mode: 'canvas', baseRes: 64 });
 */
import { Rng, hashSeed } from '../util/rng.ts';
import type { Dataset } from './dataset.ts';
import { checkIndex, checkRes } from './dataset.ts';
import type { Sample } from './image.ts';
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
  coverage,
  drawBackground,
  luma,
  octaveFade,
  pixelMap,
  pixelRange,
} from './raster.ts';

export type Split = 'train' | 'val' | 'test';

export const SYNTHETIC_CLASS_NAMES = [
  'disc',
  'ring',
  'square',
  'triangle',
  'cross',
  'grating-horizontal',
  'grating-vertical',
  'checker',
  'blob-pair-horizontal',
  'blob-pair-vertical',
] as const;

export type ShapeKind = 'disc' | 'ring' | 'square' | 'triangle' | 'cross' | 'grating' | 'checker' | 'segment';

/** One primitive, in scene units (unit square = base field of view). */
export interface ShapeDesc {
  kind: ShapeKind;
  cx: number;
  cy: number;
  /** Characteristic radius: circumradius for polygons, half-length for segments. */
  size: number;
  /** Rotation, radians. */
  angle: number;
  color: RGB;
  /** Second colour of grating / checker patterns. */
  color2: RGB;
  /** Ring thickness fraction, grating period / size, checker cells across, segment half-width / size. */
  param: number;
}

export interface SceneDesc {
  label: number;
  background: BackgroundDesc;
  /** Class-defining shapes (1, or 2 for blob pairs), drawn last (on top). */
  objects: ShapeDesc[];
  /** Small distractors over the field [-0.5, 1.5]^2, drawn under the objects. */
  clutter: ShapeDesc[];
  noise: PixelNoiseDesc;
}

// ---------------------------------------------------------------------------------
// Signed distance functions in local (translated, rotated) coordinates. Exact SDFs
// after Inigo Quilez, "2D distance functions" (iquilezles.org/articles/distfunctions2d).

function sdBox(x: number, y: number, hx: number, hy: number): number {
  const qx = Math.abs(x) - hx;
  const qy = Math.abs(y) - hy;
  const ox = qx > 0 ? qx : 0;
  const oy = qy > 0 ? qy : 0;
  return Math.sqrt(ox * ox + oy * oy) + Math.min(Math.max(qx, qy), 0);
}

const SQRT3 = Math.sqrt(3);
/** Equilateral triangle with circumradius R, centred on its centroid. */
function sdTriangle(x: number, y: number, R: number): number {
  const r = (R * SQRT3) / 2; // half the side length
  let px = Math.abs(x) - r;
  let py = y + r / SQRT3;
  if (px + SQRT3 * py > 0) {
    const nx = (px - SQRT3 * py) / 2;
    const ny = (-SQRT3 * px - py) / 2;
    px = nx;
    py = ny;
  }
  px -= Math.min(Math.max(px, -2 * r), 0);
  return -Math.sqrt(px * px + py * py) * Math.sign(py);
}

function sdSegment(x: number, y: number, halfLen: number, halfWidth: number): number {
  const cx = Math.min(Math.max(x, -halfLen), halfLen);
  const dx = x - cx;
  return Math.sqrt(dx * dx + y * y) - halfWidth;
}

/** Signed distance of the shape's outline (window, for patterned shapes). */
export function shapeSd(s: ShapeDesc, x: number, y: number): number {
  const R = s.size;
  switch (s.kind) {
    case 'disc':
      return Math.sqrt(x * x + y * y) - R;
    case 'ring': {
      const t = s.param * R;
      return Math.abs(Math.sqrt(x * x + y * y) - (R - t / 2)) - t / 2;
    }
    case 'square':
    case 'checker': {
      const h = R / Math.SQRT2; // circumradius R
      return sdBox(x, y, h, h);
    }
    case 'triangle':
      return sdTriangle(x, y, R);
    case 'cross': {
      const w = 0.3 * R;
      return Math.min(sdBox(x, y, R, w), sdBox(x, y, w, R));
    }
    case 'grating':
      return Math.sqrt(x * x + y * y) - R;
    case 'segment':
      return sdSegment(x, y, R, s.param * R);
  }
}

/** Radius of a circle around the centre that contains the shape at any rotation. */
export function boundRadius(s: ShapeDesc): number {
  return s.kind === 'segment' ? s.size * (1 + s.param) : s.size * 1.05;
}

/** Pattern mix factor in [0,1] (0 = color, 1 = color2), anti-aliased by fading to 0.5. */
function patternMix(s: ShapeDesc, x: number, y: number, aa: number): number {
  if (s.kind === 'grating') {
    const period = s.param * s.size;
    const fade = octaveFade(period, aa);
    return 0.5 + 0.5 * fade * Math.sin((2 * Math.PI * y) / period);
  }
  if (s.kind === 'checker') {
    const cell = (2 * s.size) / Math.SQRT2 / s.param;
    const k = Math.PI / cell;
    const p = Math.sin(k * x + Math.PI / 2 * (s.param % 2)) * Math.sin(k * y + Math.PI / 2 * (s.param % 2));
    // p changes sign at cell edges with slope ~k per unit: a linear ramp one pixel wide.
    const c = 0.5 + (0.5 * p) / Math.max(k * aa, 1e-9);
    const fade = octaveFade(2 * cell, aa);
    return 0.5 + fade * ((c < 0 ? 0 : c > 1 ? 1 : c) - 0.5);
  }
  return 0;
}

export function drawShape(out: Float32Array, m: PixelMap, s: ShapeDesc): void {
  const e = boundRadius(s);
  const [x0, x1] = pixelRange(s.cx - e, s.cx + e, m.u0, m.du, m.width);
  const [y0, y1] = pixelRange(s.cy - e, s.cy + e, m.v0, m.dv, m.height);
  if (x0 >= x1 || y0 >= y1) return;
  const plane = m.width * m.height;
  const ca = Math.cos(s.angle);
  const sa = Math.sin(s.angle);
  const patterned = s.kind === 'grating' || s.kind === 'checker';
  const [r1, g1, b1] = s.color;
  const [r2, g2, b2] = s.color2;
  for (let py = y0; py < y1; py++) {
    const dy = m.v0 + (py + 0.5) * m.dv - s.cy;
    for (let px = x0; px < x1; px++) {
      const dx = m.u0 + (px + 0.5) * m.du - s.cx;
      // Rotate into the shape frame (inverse rotation by s.angle).
      const lx = ca * dx + sa * dy;
      const ly = -sa * dx + ca * dy;
      const a = coverage(shapeSd(s, lx, ly), m.aa);
      if (a <= 0) continue;
      const i = py * m.width + px;
      if (patterned) {
        const t = patternMix(s, lx, ly, m.aa);
        blend(out, plane, i, a, r1 + (r2 - r1) * t, g1 + (g2 - g1) * t, b1 + (b2 - b1) * t);
      } else {
        blend(out, plane, i, a, r1, g1, b1);
      }
    }
  }
}

export interface SceneRenderOptions extends RenderOptions {}

/**
 * Render a scene description to a CHW Float32Array (3 x height x width, values in
 * [0,1]). Pure: same description and options → same pixels.
 */
export function renderScene(desc: SceneDesc, opts: SceneRenderOptions): Float32Array {
  const m = pixelMap(opts);
  const layers = opts.layers ?? {};
  const out = new Float32Array(3 * m.width * m.height);
  if (layers.background !== false) drawBackground(out, m, desc.background);
  if (layers.clutter !== false) for (const s of desc.clutter) drawShape(out, m, s);
  if (layers.objects !== false) for (const s of desc.objects) drawShape(out, m, s);
  addPixelNoiseAndClamp(out, m.width, m.height, layers.noise === false ? null : desc.noise);
  return out;
}

/** Axis-aligned bounding box of the class objects in output pixels (continuous coordinates). */
export function objectPixelBox(desc: SceneDesc, opts: RenderOptions): { x0: number; y0: number; x1: number; y1: number } {
  const m = pixelMap(opts);
  let u0 = Infinity;
  let v0 = Infinity;
  let u1 = -Infinity;
  let v1 = -Infinity;
  for (const s of desc.objects) {
    const e = boundRadius(s);
    u0 = Math.min(u0, s.cx - e);
    v0 = Math.min(v0, s.cy - e);
    u1 = Math.max(u1, s.cx + e);
    v1 = Math.max(v1, s.cy + e);
  }
  return { x0: (u0 - m.u0) / m.du, y0: (v0 - m.v0) / m.dv, x1: (u1 - m.u0) / m.du, y1: (v1 - m.v0) / m.dv };
}

// ---------------------------------------------------------------------------------
// Scene sampling.

function randomColor(rng: Rng): RGB {
  return [rng.next(), rng.next(), rng.next()];
}

/** A random colour whose luma differs from `ref` by at least `minDiff` (so the object is visible). */
export function contrastingColor(rng: Rng, ref: RGB, minDiff: number): RGB {
  for (let attempt = 0; attempt < 16; attempt++) {
    const c = randomColor(rng);
    if (Math.abs(luma(c) - luma(ref)) >= minDiff) return c;
  }
  // Fallback (rare): push the luma away from the reference.
  const l = luma(ref);
  const target = l > 0.5 ? 0.05 : 0.95;
  const c = randomColor(rng);
  return [0.3 * c[0] + 0.7 * target, 0.3 * c[1] + 0.7 * target, 0.3 * c[2] + 0.7 * target];
}

export function sampleBackground(rng: Rng): BackgroundDesc {
  const colorA = randomColor(rng);
  // A low-contrast second colour: the texture is visible but does not compete with objects.
  const colorB: RGB = [0, 1, 2].map((k) => Math.min(1, Math.max(0, colorA[k]! + rng.uniform(-0.3, 0.3)))) as RGB;
  return {
    colorA,
    colorB,
    gradientAngle: rng.uniform(0, 2 * Math.PI),
    gradientWeight: rng.uniform(0.2, 0.6),
    noiseFreq: rng.uniform(3, 7),
    noiseWeight: rng.uniform(0.3, 0.8),
    noiseSeed: rng.nextU32(),
  };
}

function bgMean(bg: BackgroundDesc): RGB {
  return [0, 1, 2].map((k) => (bg.colorA[k]! + bg.colorB[k]!) / 2) as RGB;
}

const ORIENT_JITTER = (12 * Math.PI) / 180;

function sampleObjects(rng: Rng, label: number, bg: BackgroundDesc): ShapeDesc[] {
  const ref = bgMean(bg);
  const color = contrastingColor(rng, ref, 0.25);
  const color2 = contrastingColor(rng, color, 0.35);
  const name = SYNTHETIC_CLASS_NAMES[label]!;
  const place = (extent: number): [number, number] => {
    const m = extent + 0.03;
    return [rng.uniform(m, 1 - m), rng.uniform(m, 1 - m)];
  };
  const single = (kind: ShapeKind, angle: number, param: number): ShapeDesc[] => {
    const size = rng.uniform(0.14, 0.28);
    const [cx, cy] = place(size * 1.05);
    return [{ kind, cx, cy, size, angle, color, color2, param }];
  };
  switch (name) {
    case 'disc':
      return single('disc', 0, 0);
    case 'ring':
      return single('ring', 0, rng.uniform(0.3, 0.45));
    case 'square':
      return single('square', rng.uniform(0, Math.PI / 2), 0);
    case 'triangle':
      return single('triangle', rng.uniform(0, 2 * Math.PI), 0);
    case 'cross':
      return single('cross', rng.uniform(0, Math.PI / 2), 0);
    case 'grating-horizontal':
      // Stripes vary along local y: bands run horizontally at angle 0.
      return single('grating', rng.uniform(-ORIENT_JITTER, ORIENT_JITTER), rng.uniform(0.45, 0.7));
    case 'grating-vertical':
      return single('grating', Math.PI / 2 + rng.uniform(-ORIENT_JITTER, ORIENT_JITTER), rng.uniform(0.45, 0.7));
    case 'checker':
      return single('checker', rng.uniform(0, Math.PI / 2), 3 + rng.int(2));
    case 'blob-pair-horizontal':
    case 'blob-pair-vertical': {
      const r = rng.uniform(0.07, 0.11);
      const half = (r * rng.uniform(2.6, 4)) / 2;
      const theta = (name === 'blob-pair-vertical' ? Math.PI / 2 : 0) + rng.uniform(-ORIENT_JITTER, ORIENT_JITTER);
      const ex = Math.abs(Math.cos(theta)) * half + r * 1.05;
      const ey = Math.abs(Math.sin(theta)) * half + r * 1.05;
      const cx = rng.uniform(ex + 0.03, 1 - ex - 0.03);
      const cy = rng.uniform(ey + 0.03, 1 - ey - 0.03);
      const ox = Math.cos(theta) * half;
      const oy = Math.sin(theta) * half;
      return [
        { kind: 'disc', cx: cx - ox, cy: cy - oy, size: r, angle: 0, color, color2, param: 0 },
        { kind: 'disc', cx: cx + ox, cy: cy + oy, size: r, angle: 0, color, color2, param: 0 },
      ];
    }
  }
}

function sampleClutter(rng: Rng): ShapeDesc[] {
  // ~12-24 over the 2x2 field [-0.5,1.5]^2, i.e. about 3-6 inside the base view, so
  // canvas renders of a larger field keep the same clutter density.
  const n = 12 + rng.int(13);
  const out: ShapeDesc[] = [];
  for (let k = 0; k < n; k++) {
    const cx = rng.uniform(-0.5, 1.5);
    const cy = rng.uniform(-0.5, 1.5);
    const color = randomColor(rng);
    if (rng.bernoulli(0.5)) {
      // Thin short segment (a "twig"): never confused with a class object.
      out.push({ kind: 'segment', cx, cy, size: rng.uniform(0.03, 0.07), angle: rng.uniform(0, Math.PI), color, color2: color, param: rng.uniform(0.1, 0.2) });
    } else {
      // Small dot: less than half the radius of the smallest class object.
      out.push({ kind: 'disc', cx, cy, size: rng.uniform(0.012, 0.03), angle: 0, color, color2: color, param: 0 });
    }
  }
  return out;
}

const SPLIT_CODES: Record<Split, number> = { train: 0, val: 1, test: 2 };

/** Sample the scene for (seed, split, i) with the given label. */
export function sampleScene(seed: number, split: Split, i: number, label: number): SceneDesc {
  const rng = new Rng(hashSeed(seed, 'synthetic', SPLIT_CODES[split], i));
  const background = sampleBackground(rng);
  const objects = sampleObjects(rng, label, background);
  const clutter = sampleClutter(rng);
  const noise = { sigma: rng.uniform(0.01, 0.04), seed: rng.nextU32() };
  return { label, background, objects, clutter, noise };
}

export interface SyntheticOptions {
  seed: number;
  split: Split;
  size: number;
  /** 2..10, the first N of SYNTHETIC_CLASS_NAMES. Default 10. */
  numClasses?: number;
  /** Default render mode for `get` (default 'zoom'). */
  mode?: RenderMode;
  /** Base resolution for canvas mode (default 64). */
  baseRes?: number;
}

export interface RenderRequest {
  res?: number;
  width?: number;
  height?: number;
  mode?: RenderMode;
  baseRes?: number;
  layers?: RenderOptions['layers'];
}

export function resolveRequest(op: string, req: RenderRequest, defMode: RenderMode, defBase: number): RenderOptions {
  const width = req.width ?? req.res;
  const height = req.height ?? req.res;
  if (width === undefined || height === undefined) {
    throw new RangeError(`${op}: give either res or both width and height, got ${JSON.stringify(req)}`);
  }
  return { width, height, mode: req.mode ?? defMode, baseRes: req.baseRes ?? defBase, layers: req.layers };
}

export class SyntheticDataset implements Dataset {
  readonly length: number;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly seed: number;
  readonly split: Split;
  readonly mode: RenderMode;
  readonly baseRes: number;

  constructor(opts: SyntheticOptions) {
    const numClasses = opts.numClasses ?? SYNTHETIC_CLASS_NAMES.length;
    if (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > SYNTHETIC_CLASS_NAMES.length) {
      throw new RangeError(`SyntheticDataset: numClasses must be an integer in [2, ${SYNTHETIC_CLASS_NAMES.length}], got ${numClasses}`);
    }
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`SyntheticDataset: size must be a positive integer, got ${opts.size}`);
    if (!(opts.split in SPLIT_CODES)) throw new RangeError(`SyntheticDataset: split must be train, val or test, got '${String(opts.split)}'`);
    this.length = opts.size;
    this.numClasses = numClasses;
    this.classNames = SYNTHETIC_CLASS_NAMES.slice(0, numClasses);
    this.seed = opts.seed;
    this.split = opts.split;
    this.mode = opts.mode ?? 'zoom';
    this.baseRes = opts.baseRes ?? DEFAULT_BASE_RES;
  }

  describe(i: number): SceneDesc {
    checkIndex('SyntheticDataset.describe', i, this.length);
    return sampleScene(this.seed, this.split, i, i % this.numClasses);
  }

  render(i: number, req: RenderRequest): { image: Float32Array; label: number; width: number; height: number } {
    const opts = resolveRequest('SyntheticDataset.render', req, this.mode, this.baseRes);
    const desc = this.describe(i);
    return { image: renderScene(desc, opts), label: desc.label, width: opts.width, height: opts.height };
  }

  get(i: number, res: number, _rng?: Rng): Sample {
    checkRes('SyntheticDataset.get', res);
    const r = this.render(i, { res });
    return { image: { data: r.image, channels: 3, height: res, width: res }, label: r.label };
  }
}
