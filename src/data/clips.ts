/**
 * Synthetic video clips for video Hiera: the scenes of `SyntheticDataset` (a shape on a textured
 * background with clutter, rendered from a vector description at any resolution) with the class
 * object MOVING across the frames. The class is the direction of motion, so a single frame carries
 * no class information: a model has to compare frames (what the temporal axis of video Hiera is for).
 *
 * Clip layout (stated once, loudly): a clip of T frames at res r is an `Image` with 3 channels,
 * height T*r and width r, the frames stacked along the height, i.e. planar `[3, T, r, r]`
 * (`data[c*T*r*r + t*r*r + y*r + x]`). That is exactly the memory of the NCTHW clip tensor
 * `[B, 3, T, H, W]` video Hiera takes, so loaders, normalisation and batching treat a clip as a
 * tall image (`Dataset.frames` tells them T).
 *
 * Motion: over the whole clip the object travels `travel` (default 0.35) of the field along
 * angle 2πk/K (k the label, K the classes; 0 = rightwards, π/2 = upwards), centred on the scene's
 * object position pulled towards the middle so it stays in view; frame t sits at fraction
 * t/(T-1) of the path, so any frame count samples the same motion. Background and clutter are
 * static; the pixel noise is drawn anew per frame. Mirroring a clip changes its class
 * (rightwards <-> leftwards), so `mirrorInvariant` is false and the trainer does not flip.
 *
 * @example
 * const ds = new SyntheticClipDataset({ seed: 0, split: 'train', size: 1000, frames: 8 });
 * const s = ds.get(3, 32);   // s.image: 3 x (8*32) x 32, s.label in [0, 4)
 */
import { Rng, hashSeed } from '../util/rng.ts';
import type { Dataset } from './dataset.ts';
import { checkIndex, checkRes } from './dataset.ts';
import type { Sample } from './image.ts';
import type { RenderMode } from './raster.ts';
import { DEFAULT_BASE_RES } from './raster.ts';
import { type SceneDesc, type Split, SYNTHETIC_CLASS_NAMES, renderScene, sampleScene } from './synthetic.ts';

export interface ClipOptions {
  seed: number;
  split: Split;
  size: number;
  /** Frames per clip (any count >= 1; default 8). */
  frames?: number;
  /** Directions of motion = classes, evenly spaced over the circle (2..8, default 4: right, up, left, down). */
  numClasses?: number;
  /** Path length over the clip, in units of the base field of view (default 0.35). */
  travel?: number;
  /** 'zoom' (default) or 'canvas', as for the still scenes. */
  mode?: RenderMode;
  baseRes?: number;
}

const COMPASS: Record<number, string> = { 0: 'right', 45: 'up-right', 90: 'up', 135: 'up-left', 180: 'left', 225: 'down-left', 270: 'down', 315: 'down-right' };

/** Class names of K evenly spaced directions ('moving-right', ... or 'moving-<deg>deg'). */
export function motionClassNames(K: number): string[] {
  return Array.from({ length: K }, (_, k) => {
    const deg = (360 * k) / K;
    return `moving-${COMPASS[deg] ?? `${+deg.toFixed(1)}deg`}`;
  });
}

export class SyntheticClipDataset implements Dataset {
  readonly length: number;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly frames: number;
  readonly mirrorInvariant = false;
  readonly seed: number;
  readonly split: Split;
  readonly travel: number;
  readonly mode: RenderMode;
  readonly baseRes: number;

  constructor(o: ClipOptions) {
    const K = o.numClasses ?? 4;
    if (!Number.isInteger(K) || K < 2 || K > 8) throw new RangeError(`SyntheticClipDataset: numClasses (directions) must be an integer in [2, 8], got ${K}`);
    const T = o.frames ?? 8;
    if (!Number.isInteger(T) || T < 1 || T > 256) throw new RangeError(`SyntheticClipDataset: frames must be an integer in [1, 256], got ${T}`);
    if (!Number.isInteger(o.size) || o.size < 1) throw new RangeError(`SyntheticClipDataset: size must be a positive integer, got ${o.size}`);
    this.travel = o.travel ?? 0.35;
    if (!(this.travel >= 0 && this.travel <= 1)) throw new RangeError(`SyntheticClipDataset: travel must be in [0, 1], got ${this.travel}`);
    this.length = o.size;
    this.numClasses = K;
    this.classNames = motionClassNames(K);
    this.frames = T;
    this.seed = o.seed;
    this.split = o.split;
    this.mode = o.mode ?? 'zoom';
    this.baseRes = o.baseRes ?? DEFAULT_BASE_RES;
  }

  /** The still scene of clip i (its object at the middle of the path) and the motion vector. */
  describe(i: number): { scene: SceneDesc; label: number; dx: number; dy: number } {
    checkIndex('SyntheticClipDataset.describe', i, this.length);
    const label = i % this.numClasses;
    // The moving object's shape is drawn at random: shape carries no class information here.
    const shape = new Rng(hashSeed(this.seed, 'clip-shape', this.split, i)).int(SYNTHETIC_CLASS_NAMES.length);
    const scene = sampleScene(hashSeed(this.seed, 'clip'), this.split, i, shape);
    const theta = (2 * Math.PI * label) / this.numClasses;
    // Image y grows downwards, so 'up' (theta = pi/2) is -y.
    return { scene, label, dx: this.travel * Math.cos(theta), dy: -this.travel * Math.sin(theta) };
  }

  /** Frame t of clip i as a scene description (objects moved along the path, noise reseeded). */
  frameScene(i: number, t: number): SceneDesc {
    const { scene, dx, dy } = this.describe(i);
    const n = scene.objects.length;
    const mx = scene.objects.reduce((s, o) => s + o.cx, 0) / n;
    const my = scene.objects.reduce((s, o) => s + o.cy, 0) / n;
    // Path midpoint pulled towards the centre so that the whole path stays inside the field.
    const cx = 0.5 + 0.3 * (mx - 0.5);
    const cy = 0.5 + 0.3 * (my - 0.5);
    const f = this.frames > 1 ? t / (this.frames - 1) - 0.5 : 0;
    return {
      ...scene,
      objects: scene.objects.map((o) => ({ ...o, cx: o.cx - mx + cx + f * dx, cy: o.cy - my + cy + f * dy })),
      noise: { ...scene.noise, seed: hashSeed(scene.noise.seed, 'frame', t) },
    };
  }

  get(i: number, res: number, _rng?: Rng): Sample {
    checkRes('SyntheticClipDataset.get', res);
    const T = this.frames;
    const data = new Float32Array(3 * T * res * res);
    const hw = res * res;
    for (let t = 0; t < T; t++) {
      const frame = renderScene(this.frameScene(i, t), { width: res, height: res, mode: this.mode, baseRes: this.baseRes }); // [3, r, r]
      // [3, r, r] frame t -> planes [3, T, r, r]
      for (let c = 0; c < 3; c++) data.set(frame.subarray(c * hw, (c + 1) * hw), c * T * hw + t * hw);
    }
    return { image: { data, channels: 3, height: T * res, width: res }, label: i % this.numClasses };
  }
}
