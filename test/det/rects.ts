/**
 * A tiny DetDataset for the detection tests: 1-3 axis-aligned filled rectangles per image in one
 * of K saturated colours (the class) on a dim noisy background. The scene is drawn in normalised
 * coordinates, so it renders at any [H, W]; `get(i, size, null)` is the scene at `size` with
 * `scale` = size / evalSize, and the COCO ground truth is at `evalSize`.
 */
import type { CocoDataset, DetDataset, DetObject, DetSample, Box } from '../../src/det/types.ts';
import { toCocoBox } from '../../src/det/types.ts';
import { Rng, hashSeed } from '../../src/util/rng.ts';
import type { Rng as RngT } from '../../src/util/rng.ts';

const COLOURS: [number, number, number][] = [[0.95, 0.15, 0.1], [0.1, 0.9, 0.2], [0.15, 0.3, 0.95], [0.95, 0.9, 0.1]];

interface Rect { label: number; x0: number; y0: number; x1: number; y1: number }

export class RectsDataset implements DetDataset {
  readonly classNames: string[];
  readonly categoryIds: number[];
  private readonly scenes: Rect[][];
  constructor(readonly length: number, readonly numClasses = 3, readonly evalSize: [number, number] = [64, 64], seed = 0, sizeRange: [number, number] = [0.2, 0.55]) {
    this.classNames = COLOURS.slice(0, numClasses).map((_, k) => `colour${k}`);
    this.categoryIds = this.classNames.map((_, k) => k + 1);
    this.scenes = Array.from({ length }, (_, i) => {
      const r = new Rng(hashSeed(seed, 'rects', i));
      const n = 1 + Math.floor(r.next() * 3);
      const out: Rect[] = [];
      for (let k = 0; k < n; k++) {
        const w = sizeRange[0] + r.next() * (sizeRange[1] - sizeRange[0]);
        const h = sizeRange[0] + r.next() * (sizeRange[1] - sizeRange[0]);
        const x0 = r.next() * (1 - w);
        const y0 = r.next() * (1 - h);
        out.push({ label: Math.floor(r.next() * numClasses), x0, y0, x1: x0 + w, y1: y0 + h });
      }
      return out;
    });
  }

  /** Pixel-snapped boxes of scene i at [H, W]. */
  private boxes(i: number, H: number, W: number): DetObject[] {
    return this.scenes[i]!.map((q) => ({ label: q.label, box: [Math.round(q.x0 * W), Math.round(q.y0 * H), Math.round(q.x1 * W), Math.round(q.y1 * H)] as Box }));
  }

  get(i: number, size: [number, number], rng: RngT | null): DetSample {
    const [H, W] = size;
    const objects = this.boxes(i, H, W);
    const noise = new Rng(hashSeed('noise', i, H, W, rng ? Math.floor(rng.next() * 1e9) : -1));
    const data = new Float32Array(3 * H * W);
    for (let k = 0; k < data.length; k++) data[k] = 0.25 + 0.1 * noise.next();
    for (const o of objects) {
      const c = COLOURS[o.label]!;
      for (let y = o.box[1]; y < o.box[3]; y++) {
        for (let x = o.box[0]; x < o.box[2]; x++) for (let ch = 0; ch < 3; ch++) data[ch * H * W + y * W + x] = c[ch]!;
      }
    }
    const [H0, W0] = this.evalSize;
    return { image: { data, channels: 3, height: H, width: W }, objects, imageId: i + 1, scale: [W / W0, H / H0], originalSize: [H0, W0] };
  }

  cocoGroundTruth(): CocoDataset {
    const [H0, W0] = this.evalSize;
    let id = 1;
    return {
      images: this.scenes.map((_, i) => ({ id: i + 1, width: W0, height: H0 })),
      annotations: this.scenes.flatMap((_, i) => this.boxes(i, H0, W0).map((o) => {
        const bbox = toCocoBox(o.box);
        return { id: id++, image_id: i + 1, category_id: o.label + 1, bbox, area: bbox[2] * bbox[3], iscrowd: 0 as const };
      })),
      categories: this.classNames.map((n, k) => ({ id: k + 1, name: n })),
    };
  }
}
