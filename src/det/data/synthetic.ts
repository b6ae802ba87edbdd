/**
 * Synthetic detection scenes: 1-6 shapes of a handful of classes on the procedural textured
 * background of the classification set (`src/data/synthetic.ts`, `src/data/raster.ts`), with thin
 * clutter drawn underneath, per-pixel sensor noise on top, and boxes and instance masks known
 * exactly from the vector description.
 *
 * Built so that a tiny detector trained for minutes on a CPU reaches a meaningful AP while the
 * task still needs position: object sizes are log-uniform over a wide range (default circumradius
 * 4%-22% of the image side: 10-56 px across at 128 px, COCO 'small' and 'medium'; COCO's 'large'
 * (area > 96^2 px) needs evaluation sizes above ~300 px), the default five classes
 * (disc, ring, square, triangle, cross) differ in outline rather than colour (colours are random),
 * and the clutter (twigs and dots much smaller than the smallest object) is never annotated.
 *
 * The scene is described in normalised coordinates (the unit square is the image, y down) and
 * rendered in the raster's 'zoom' view, so the same scene renders at any [H, W], non-square too:
 * objects scale with the image, per axis.
 *
 * Ground truth follows COCO: an object's mask is what is visible of it (later objects occlude
 * earlier ones), a pixel belongs to the mask when its centre is inside the shape (rendered coverage
 * >= 0.5), and its box is the tight bound of that mask. Objects mostly hidden by later ones are
 * removed from the scene when it is sampled (the test is on visible area fractions, which do not
 * depend on the render size), so every drawn object is annotated.
 *
 * Scene i of a split is a pure function of (seed, split, i, options). `get(i, size, rng)` renders
 * the scene at `size` (rng null: the evaluation view, `scale` = size / evalSize) or a large-scale
 * jitter view of it (`lsj.ts`) rendered exactly from the vector description rather than resampled.
 *
 * @example
 * const ds = new SyntheticDetDataset({ seed: 0, split: 'train', size: 1000 });
 * const s = ds.get(3, [96, 160], null);   // s.objects[k].box, s.objects[k].mask
 * const gt = ds.cocoGroundTruth();         // at ds.evalSize
 */
import { type RGB, type PixelMap, addPixelNoiseAndClamp, drawBackground, pixelRange } from '../../data/raster.ts';
import { type ShapeDesc, type ShapeKind, type Split, contrastingColor, drawShape, sampleBackground, shapeSd, boundRadius } from '../../data/synthetic.ts';
import type { BackgroundDesc, PixelNoiseDesc } from '../../data/raster.ts';
import { Rng, hashSeed } from '../../util/rng.ts';
import type { CocoAnnotation, CocoDataset, DetDataset, DetObject, DetSample } from '../types.ts';
import { toCocoBox } from '../types.ts';
import { maskArea, maskBounds } from './bitmask.ts';
import { rleEncode } from '../mask.ts';
import { type LsjOptions, type ViewPlan, evalPlan, lsjPlan, padTo, visibleSize } from './lsj.ts';

/** The shape classes, in label order for the default selection. */
export const DET_SHAPE_CLASSES = ['disc', 'ring', 'square', 'triangle', 'cross', 'checker', 'grating'] as const;
export type DetShapeClass = (typeof DET_SHAPE_CLASSES)[number];

export interface SyntheticDetOptions {
  seed: number;
  split: Split;
  /** Number of scenes. */
  size: number;
  /** Class names (a subset of DET_SHAPE_CLASSES) or a count of the first ones. Default 5. */
  classes?: readonly DetShapeClass[] | number;
  /** Objects per scene, drawn uniformly in [min, max] before occlusion removal. Default [1, 6]. */
  objects?: [number, number];
  /** Circumradius range as a fraction of the image side, drawn log-uniformly. Default [0.04, 0.22]. */
  sizeRange?: [number, number];
  /** Clutter shapes per scene in [min, max] (never annotated). Default [4, 10]; [0, 0] for none. */
  clutter?: [number, number];
  /** An object whose visible area falls below this fraction of its full area is not placed. Default 0.5. */
  minVisible?: number;
  /** [H, W] of the evaluation view and of `cocoGroundTruth()`. Default [128, 128]. */
  evalSize?: [number, number];
  /** Large-scale jitter for `get` with an rng; default detectron2's (0.1-2.0, flip). */
  lsj?: LsjOptions;
}

export interface DetShape {
  label: number;
  shape: ShapeDesc;
}

export interface DetSceneDesc {
  background: BackgroundDesc;
  /** Annotated objects, drawn in this order (later ones occlude earlier ones). */
  objects: DetShape[];
  /** Unannotated small shapes drawn under the objects. */
  clutter: ShapeDesc[];
  noise: PixelNoiseDesc;
}

/**
 * Where a render lands: the scene stretched over `resized` = [rh, rw] pixels, of which the window
 * of `output` size at `offset` (after an optional horizontal mirror) is returned, padded.
 */
type View = Pick<ViewPlan, 'output' | 'resized' | 'offset' | 'flip'>;

const SPLIT_CODES: Record<Split, number> = { train: 0, val: 1, test: 2 };
/** Raster used to decide occlusion when sampling (visible fractions are size independent). */
const REF = 128;

function shapeFor(kind: DetShapeClass, rng: Rng, cx: number, cy: number, size: number, color: RGB, color2: RGB): ShapeDesc {
  const base = { cx, cy, size, color, color2 };
  switch (kind) {
    case 'disc':
      return { ...base, kind: 'disc', angle: 0, param: 0 };
    case 'ring':
      return { ...base, kind: 'ring', angle: 0, param: rng.uniform(0.3, 0.45) };
    case 'square':
      return { ...base, kind: 'square', angle: rng.uniform(0, Math.PI / 2), param: 0 };
    case 'triangle':
      return { ...base, kind: 'triangle', angle: rng.uniform(0, 2 * Math.PI), param: 0 };
    case 'cross':
      return { ...base, kind: 'cross', angle: rng.uniform(0, Math.PI / 2), param: 0 };
    case 'checker':
      return { ...base, kind: 'checker', angle: rng.uniform(0, Math.PI / 2), param: 3 + rng.int(2) };
    case 'grating':
      return { ...base, kind: 'grating', angle: rng.uniform(0, Math.PI), param: rng.uniform(0.45, 0.7) };
  }
}

/**
 * Inside-test of a shape at pixel centres of a map, written into `out` (1 = centre inside) over
 * the shape's pixel range only.
 */
function shapeMask(out: Uint8Array, m: PixelMap, s: ShapeDesc): void {
  const e = boundRadius(s);
  const [x0, x1] = pixelRange(s.cx - e, s.cx + e, m.u0, m.du, m.width);
  const [y0, y1] = pixelRange(s.cy - e, s.cy + e, m.v0, m.dv, m.height);
  const ca = Math.cos(s.angle);
  const sa = Math.sin(s.angle);
  for (let py = y0; py < y1; py++) {
    const dy = m.v0 + (py + 0.5) * m.dv - s.cy;
    for (let px = x0; px < x1; px++) {
      const dx = m.u0 + (px + 0.5) * m.du - s.cx;
      // Same frame as drawShape: inverse rotation by s.angle.
      if (shapeSd(s, ca * dx + sa * dy, -sa * dx + ca * dy) <= 0) out[py * m.width + px] = 1;
    }
  }
}

function unitMap(H: number, W: number): PixelMap {
  return { width: W, height: H, u0: 0, v0: 0, du: 1 / W, dv: 1 / H, aa: Math.max(1 / W, 1 / H) };
}

/** Sample the scene for (seed, split, i) under the options (already validated). */
export function sampleDetScene(seed: number, split: Split, i: number, o: ResolvedOptions): DetSceneDesc {
  const rng = new Rng(hashSeed(seed, 'synthetic-det', SPLIT_CODES[split], i));
  const background = sampleBackground(rng);
  const ref: RGB = [0, 1, 2].map((k) => (background.colorA[k]! + background.colorB[k]!) / 2) as RGB;
  const n = o.objects[0] + rng.int(o.objects[1] - o.objects[0] + 1);
  const [lo, hi] = o.sizeRange;
  const m = unitMap(REF, REF);
  const objects: DetShape[] = [];
  // visible[k]: what is visible of object k at the reference raster; full[k]: its whole area.
  const visible: Uint8Array[] = [];
  const full: number[] = [];
  for (let k = 0; k < n; k++) {
    const label = rng.int(o.classes.length);
    const size = Math.exp(rng.uniform(Math.log(lo), Math.log(hi)));
    const color = contrastingColor(rng, ref, 0.25);
    const color2 = contrastingColor(rng, color, 0.35);
    for (let attempt = 0; attempt < 12; attempt++) {
      const e = size * 1.05;
      const shape = shapeFor(o.classes[label]!, rng, rng.uniform(e, 1 - e), rng.uniform(e, 1 - e), size, color, color2);
      const mask = new Uint8Array(REF * REF);
      shapeMask(mask, m, shape);
      const area = maskArea(mask);
      if (area === 0) continue;
      // The new object is on top: it stays whole; earlier ones lose what it covers.
      const lost = visible.map((v) => {
        let c = 0;
        for (let p = 0; p < v.length; p++) c += v[p]! & mask[p]!;
        return c;
      });
      const ok = visible.every((v, j) => maskArea(v) - lost[j]! >= o.minVisible * full[j]!);
      if (!ok) continue;
      for (const v of visible) for (let p = 0; p < v.length; p++) if (mask[p]) v[p] = 0;
      visible.push(mask);
      full.push(area);
      objects.push({ label, shape });
      break;
    }
  }
  const clutter: ShapeDesc[] = [];
  const nc = o.clutter[0] + rng.int(o.clutter[1] - o.clutter[0] + 1);
  for (let k = 0; k < nc; k++) {
    const cx = rng.uniform(0, 1);
    const cy = rng.uniform(0, 1);
    const color: RGB = [rng.next(), rng.next(), rng.next()];
    if (rng.bernoulli(0.6)) {
      // A thin twig: long but a few % wide, no class has this outline.
      const kind: ShapeKind = 'segment';
      clutter.push({ kind, cx, cy, size: rng.uniform(0.03, 0.08), angle: rng.uniform(0, Math.PI), color, color2: color, param: rng.uniform(0.08, 0.15) });
    } else {
      // A dot well under half the smallest object's radius.
      clutter.push({ kind: 'disc', cx, cy, size: lo * rng.uniform(0.2, 0.4), angle: 0, color, color2: color, param: 0 });
    }
  }
  const noise = { sigma: rng.uniform(0.01, 0.04), seed: rng.nextU32() };
  return { background, objects, clutter, noise };
}

/** The window of the view as a raster pixel map (before mirroring). */
function windowMap(v: View): PixelMap {
  const [vh, vw] = visibleSize({ ...v, input: [1, 1], scale: [1, 1] });
  const [rh, rw] = v.resized;
  // Mirrored views render the mirror-image window of the unmirrored scene, then flip it.
  const ox = v.flip ? rw - v.offset[0] - vw : v.offset[0];
  const oy = v.offset[1];
  return { width: vw, height: vh, u0: ox / rw, v0: oy / rh, du: 1 / rw, dv: 1 / rh, aa: Math.max(1 / rw, 1 / rh) };
}

function flipRows<T extends Float32Array | Uint8Array>(a: T, planes: number, H: number, W: number): T {
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < H; y++) {
      const row = (p * H + y) * W;
      for (let x = 0; x < W >> 1; x++) {
        const t = a[row + x]!;
        a[row + x] = a[row + W - 1 - x]!;
        a[row + W - 1 - x] = t;
      }
    }
  }
  return a;
}

/** Visible masks (at the view's output size, padding = 0) and boxes of the scene's objects; empty ones dropped. */
export function sceneObjects(desc: DetSceneDesc, v: View): DetObject[] {
  const m = windowMap(v);
  const [H, W] = v.output;
  const masks = desc.objects.map((o) => {
    const win = new Uint8Array(m.width * m.height);
    shapeMask(win, m, o.shape);
    if (v.flip) flipRows(win, 1, m.height, m.width);
    const out = new Uint8Array(H * W);
    for (let y = 0; y < m.height; y++) out.set(win.subarray(y * m.width, (y + 1) * m.width), y * W);
    return out;
  });
  // Occlusion: later objects are drawn on top.
  for (let k = masks.length - 2; k >= 0; k--) {
    const mk = masks[k]!;
    for (let j = k + 1; j < masks.length; j++) {
      const mj = masks[j]!;
      for (let p = 0; p < mk.length; p++) if (mj[p]) mk[p] = 0;
    }
  }
  const out: DetObject[] = [];
  desc.objects.forEach((o, k) => {
    const mask = masks[k]!;
    const box = maskBounds(mask, H, W);
    if (box) out.push({ label: o.label, box, mask });
  });
  return out;
}

/** The scene's pixels in the view (CHW in [0, 1]; padding `PAD_VALUE`, as the LSJ of images). */
export function renderSceneView(desc: DetSceneDesc, v: View): Float32Array {
  const m = windowMap(v);
  const win = new Float32Array(3 * m.width * m.height);
  drawBackground(win, m, desc.background);
  for (const s of desc.clutter) drawShape(win, m, s);
  for (const o of desc.objects) drawShape(win, m, o.shape);
  addPixelNoiseAndClamp(win, m.width, m.height, desc.noise);
  if (v.flip) flipRows(win, 3, m.height, m.width);
  return padTo({ data: win, channels: 3, height: m.height, width: m.width }, v.output[0], v.output[1]).data;
}

interface ResolvedOptions {
  classes: readonly DetShapeClass[];
  objects: [number, number];
  sizeRange: [number, number];
  clutter: [number, number];
  minVisible: number;
}

function intRange(name: string, r: readonly number[], min: number): [number, number] {
  if (r.length !== 2 || !r.every((x) => Number.isInteger(x) && x >= min) || r[0]! > r[1]!) {
    throw new RangeError(`SyntheticDetDataset: ${name} must be [min, max] integers with ${min} <= min <= max, got [${r.join(', ')}]`);
  }
  return [r[0]!, r[1]!];
}

export class SyntheticDetDataset implements DetDataset {
  readonly length: number;
  readonly classNames: readonly string[];
  readonly categoryIds: readonly number[];
  readonly seed: number;
  readonly split: Split;
  readonly evalSize: [number, number];
  readonly lsj: LsjOptions;
  readonly options: Readonly<ResolvedOptions>;
  private gt: CocoDataset | undefined;

  constructor(opts: SyntheticDetOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`SyntheticDetDataset: size must be a positive integer, got ${opts.size}`);
    if (!(opts.split in SPLIT_CODES)) throw new RangeError(`SyntheticDetDataset: split must be train, val or test, got '${String(opts.split)}'`);
    const c = opts.classes ?? 5;
    let classes: DetShapeClass[];
    if (typeof c === 'number') {
      if (!Number.isInteger(c) || c < 1 || c > DET_SHAPE_CLASSES.length) {
        throw new RangeError(`SyntheticDetDataset: classes must be a count in [1, ${DET_SHAPE_CLASSES.length}] or names from ${DET_SHAPE_CLASSES.join(', ')}, got ${c}`);
      }
      classes = DET_SHAPE_CLASSES.slice(0, c);
    } else {
      const bad = c.filter((k) => !(DET_SHAPE_CLASSES as readonly string[]).includes(k));
      if (bad.length || c.length === 0 || new Set(c).size !== c.length) {
        throw new RangeError(`SyntheticDetDataset: classes must be distinct names from ${DET_SHAPE_CLASSES.join(', ')}, got [${c.join(', ')}]`);
      }
      classes = [...c];
    }
    const objects = intRange('objects', opts.objects ?? [1, 6], 1);
    const clutter = intRange('clutter', opts.clutter ?? [4, 10], 0);
    const sizeRange = opts.sizeRange ?? [0.04, 0.22];
    if (!(sizeRange[0] > 0 && sizeRange[1] >= sizeRange[0] && sizeRange[1] < 0.45)) {
      throw new RangeError(`SyntheticDetDataset: sizeRange must satisfy 0 < min <= max < 0.45 (circumradius / image side), got [${sizeRange.join(', ')}]`);
    }
    const minVisible = opts.minVisible ?? 0.5;
    if (!(minVisible >= 0 && minVisible <= 1)) throw new RangeError(`SyntheticDetDataset: minVisible must be in [0, 1], got ${minVisible}`);
    const evalSize = opts.evalSize ?? [128, 128];
    if (evalSize.length !== 2 || !evalSize.every((v) => Number.isInteger(v) && v >= 1 && v <= 16384)) {
      throw new RangeError(`SyntheticDetDataset: evalSize must be [H, W] positive integers, got [${evalSize.join(', ')}]`);
    }
    this.length = opts.size;
    this.seed = opts.seed;
    this.split = opts.split;
    this.classNames = classes;
    this.categoryIds = classes.map((_, k) => k + 1);
    this.evalSize = [evalSize[0], evalSize[1]];
    this.lsj = opts.lsj ?? {};
    this.options = { classes, objects, sizeRange: [sizeRange[0], sizeRange[1]], clutter, minVisible };
  }

  describe(i: number): DetSceneDesc {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`SyntheticDetDataset.describe: index ${i} out of range [0, ${this.length})`);
    return sampleDetScene(this.seed, this.split, i, this.options);
  }

  /** The view `get` renders: the eval view stretches the scene over `size`; with an rng, LSJ of that. */
  plan(size: [number, number], rng: Rng | null): ViewPlan {
    if (rng) return lsjPlan(rng, size, size, this.lsj);
    return evalPlan(size, size);
  }

  get(i: number, size: [number, number], rng: Rng | null): DetSample {
    const desc = this.describe(i);
    const plan = this.plan(size, rng);
    const [H, W] = size;
    const [eh, ew] = this.evalSize;
    return {
      image: { data: renderSceneView(desc, plan), channels: 3, height: H, width: W },
      objects: sceneObjects(desc, plan),
      imageId: i + 1,
      // Sample pixels per evaluation-view pixel (the scene at `size` vs at evalSize), times the jitter.
      scale: [(plan.scale[0] * W) / ew, (plan.scale[1] * H) / eh],
      originalSize: [eh, ew],
    };
  }

  cocoGroundTruth(): CocoDataset {
    if (this.gt) return this.gt;
    const [h, w] = this.evalSize;
    const plan = evalPlan(this.evalSize, this.evalSize);
    const images = [];
    const annotations: CocoAnnotation[] = [];
    for (let i = 0; i < this.length; i++) {
      images.push({ id: i + 1, width: w, height: h, file_name: `${String(i + 1).padStart(6, '0')}.png` });
      for (const o of sceneObjects(this.describe(i), plan)) {
        annotations.push({
          id: annotations.length + 1,
          image_id: i + 1,
          category_id: this.categoryIds[o.label]!,
          bbox: toCocoBox(o.box),
          area: maskArea(o.mask!),
          iscrowd: 0,
          segmentation: rleEncode(o.mask!, h, w),
        });
      }
    }
    this.gt = {
      info: { description: `anyres synthetic detection scenes (seed ${this.seed}, ${this.split})` },
      images,
      annotations,
      categories: this.classNames.map((name, k) => ({ id: this.categoryIds[k]!, name, supercategory: 'shape' })),
    };
    return this.gt;
  }
}
