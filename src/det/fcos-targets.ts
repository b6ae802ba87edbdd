/**
 * FCOS target assignment on the host (pure TypeScript over typed arrays), following torchvision
 * `models/detection/fcos.py` `FCOS.compute_loss` (the matching part) and the paper (Tian et al.
 * 2019, Sec. 3.1-3.3):
 *
 * - Points: level i with stride s has one point per feature cell at ((x + ½)s, (y + ½)s) in input
 *   pixels (the paper's (⌊s/2⌋ + x·s), continuous-pixel convention of src/det/types.ts).
 * - A point is a candidate for a box when it lies strictly inside the box and, with centre
 *   sampling (radius r, 1.5 in torchvision), when |point − box centre|∞ < r·s.
 * - Scale ranges: the point's max(l, t, r, b) must lie in the level's (lo, hi) (torchvision:
 *   lo = 4s except 0 on the finest level, hi = 8s except ∞ on the coarsest; for strides 8..128 this
 *   is the paper's 0, 64, 128, 256, 512, ∞).
 * - Among several candidate boxes the one with the smallest area wins (ties: the lower index).
 * - Crowd boxes (`iscrowd`) are never matched; background points inside one are ignored by the
 *   classification loss (weight 0), as COCO-trained detectors do.
 *
 * Outputs are laid out as the head's flattened outputs (src/det/fcos.ts `flattenLevels`): point n
 * runs over levels, then rows, then columns. Box targets are (l, t, r, b) / s; centre-ness is
 * sqrt(min(l,r)/max(l,r) · min(t,b)/max(t,b)) (paper eq. 3).
 */
import type { DetObject } from './types.ts';

export interface FcosLevel {
  /** Level name, e.g. 'p3'. */
  id: string;
  stride: number;
  /** Feature map size at the input size. */
  h: number;
  w: number;
  /** Range of max(l, t, r, b) in pixels this level is responsible for: lo < m < hi. */
  range: [number, number];
}

export interface FcosAssignOptions {
  /** Centre-sampling radius in strides (torchvision 1.5); 0 = off (any point inside the box). */
  centerSampling: number;
}

export const defaultFcosAssign: FcosAssignOptions = { centerSampling: 1.5 };

/** torchvision's per-level ranges from the strides (finest first): (4s, 8s), first lo 0, last hi ∞. */
export function defaultScaleRanges(strides: readonly number[]): [number, number][] {
  return strides.map((s, i) => [i === 0 ? 0 : 4 * s, i === strides.length - 1 ? Infinity : 8 * s]);
}

/** Total number of points of the levels. */
export const numPoints = (levels: readonly FcosLevel[]): number => levels.reduce((a, l) => a + l.h * l.w, 0);

/** Point coordinates and per-point stride/range, flattened as the head's outputs. */
export interface FcosPoints {
  x: Float32Array;
  y: Float32Array;
  stride: Float32Array;
  lo: Float32Array;
  hi: Float32Array;
}

export function fcosPoints(levels: readonly FcosLevel[]): FcosPoints {
  const N = numPoints(levels);
  const out: FcosPoints = { x: new Float32Array(N), y: new Float32Array(N), stride: new Float32Array(N), lo: new Float32Array(N), hi: new Float32Array(N) };
  let n = 0;
  for (const l of levels) {
    for (let i = 0; i < l.h; i++) {
      for (let j = 0; j < l.w; j++, n++) {
        out.x[n] = (j + 0.5) * l.stride;
        out.y[n] = (i + 0.5) * l.stride;
        out.stride[n] = l.stride;
        out.lo[n] = l.range[0];
        out.hi[n] = l.range[1];
      }
    }
  }
  return out;
}

export interface FcosTargets {
  batch: number;
  numClasses: number;
  numPoints: number;
  /** [B, K, N] one-hot class targets (0 for background). */
  cls: Float32Array;
  /** [B, 4, N] (l, t, r, b) / stride of the matched box; 1 where unmatched (masked out). */
  reg: Float32Array;
  /** [B, 1, N] centre-ness targets; 0 where unmatched. */
  ctr: Float32Array;
  /** [B, 1, N] 1 at positive points. */
  pos: Float32Array;
  /** [B, 1, N] weight of the classification loss: 0 at background points inside crowd boxes. */
  clsWeight: Float32Array;
  /** Index of the matched object per point, -1 = background; [B, N]. */
  matched: Int32Array;
  /** Number of positive points in the batch. */
  numPos: number;
}

/**
 * Targets for a batch: `objects[b]` are image b's boxes in input pixels (`[x0, y0, x1, y1]`).
 *
 * @example
 * const levels = [{ id: 'p3', stride: 8, h: 16, w: 16, range: [0, 64] }, ...];
 * const t = fcosTargets([[{ label: 0, box: [10, 10, 50, 40] }]], levels, 3);
 */
export function fcosTargets(objects: readonly (readonly DetObject[])[], levels: readonly FcosLevel[], numClasses: number, opts: FcosAssignOptions = defaultFcosAssign): FcosTargets {
  const B = objects.length;
  const K = numClasses;
  const pts = fcosPoints(levels);
  const N = pts.x.length;
  const t: FcosTargets = {
    batch: B, numClasses: K, numPoints: N,
    cls: new Float32Array(B * K * N), reg: new Float32Array(B * 4 * N).fill(1), ctr: new Float32Array(B * N),
    pos: new Float32Array(B * N), clsWeight: new Float32Array(B * N).fill(1), matched: new Int32Array(B * N).fill(-1), numPos: 0,
  };
  const r = opts.centerSampling;
  for (let b = 0; b < B; b++) {
    const objs = objects[b]!;
    const M = objs.length;
    const bx = new Float64Array(M * 4);
    const area = new Float64Array(M);
    objs.forEach((o, m) => {
      const [x0, y0, x1, y1] = o.box;
      if (!(x1 >= x0 && y1 >= y0) || ![x0, y0, x1, y1].every(Number.isFinite)) {
        throw new Error(`fcosTargets: image ${b} object ${m} has box [${o.box.join(', ')}]; boxes must be finite [x0, y0, x1, y1] with x1 >= x0, y1 >= y0`);
      }
      if (!Number.isInteger(o.label) || o.label < 0 || o.label >= K) throw new Error(`fcosTargets: image ${b} object ${m} has label ${o.label}, outside 0..${K - 1}`);
      bx.set([x0, y0, x1, y1], m * 4);
      area[m] = (x1 - x0) * (y1 - y0);
    });
    for (let n = 0; n < N; n++) {
      const px = pts.x[n]!;
      const py = pts.y[n]!;
      const s = pts.stride[n]!;
      let best = -1;
      let bestArea = Infinity;
      let inCrowd = false;
      for (let m = 0; m < M; m++) {
        const x0 = bx[4 * m]!, y0 = bx[4 * m + 1]!, x1 = bx[4 * m + 2]!, y1 = bx[4 * m + 3]!;
        const l = px - x0, tt = py - y0, rr = x1 - px, bb = y1 - py;
        if (Math.min(l, tt, rr, bb) <= 0) continue;
        if (objs[m]!.iscrowd) {
          inCrowd = true;
          continue;
        }
        if (r > 0 && Math.max(Math.abs(px - (x0 + x1) / 2), Math.abs(py - (y0 + y1) / 2)) >= r * s) continue;
        const mx = Math.max(l, tt, rr, bb);
        if (!(mx > pts.lo[n]! && mx < pts.hi[n]!)) continue;
        if (area[m]! < bestArea) {
          best = m;
          bestArea = area[m]!;
        }
      }
      const bn = b * N + n;
      if (best < 0) {
        if (inCrowd) t.clsWeight[bn] = 0;
        continue;
      }
      const x0 = bx[4 * best]!, y0 = bx[4 * best + 1]!, x1 = bx[4 * best + 2]!, y1 = bx[4 * best + 3]!;
      const l = px - x0, tt = py - y0, rr = x1 - px, bb = y1 - py;
      t.matched[bn] = best;
      t.pos[bn] = 1;
      t.numPos++;
      t.cls[(b * K + objs[best]!.label) * N + n] = 1;
      t.reg[(b * 4 + 0) * N + n] = l / s;
      t.reg[(b * 4 + 1) * N + n] = tt / s;
      t.reg[(b * 4 + 2) * N + n] = rr / s;
      t.reg[(b * 4 + 3) * N + n] = bb / s;
      t.ctr[bn] = Math.sqrt((Math.min(l, rr) / Math.max(l, rr)) * (Math.min(tt, bb) / Math.max(tt, bb)));
    }
  }
  return t;
}
