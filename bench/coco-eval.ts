/**
 * COCO evaluation speed (src/det/coco-eval.ts) at the size a training loop evaluates: N images
 * with a few ground truths each and 100 detections per image over K categories, for bbox and for
 * segm (polygon gts, RLE detections at the image size).
 *
 * Usage: npm run bench -- coco-eval [--images 300] [--dets 100] [--size 256] [--repeat 3]
 * Prints one `RESULT {json}` line per IoU type (best of the repeats, ms per evaluation).
 */
import { cocoEval, type IouType } from '../src/det/coco-eval.ts';
import { polygonsToRle } from '../src/det/mask.ts';
import type { CocoAnnotation, CocoDataset, CocoDetection } from '../src/det/types.ts';
import { Rng } from '../src/util/rng.ts';

interface Opts { images: number; dets: number; size: number; repeat: number }

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { images: 300, dets: 100, size: 256, repeat: 3 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const x = Number(args[++i]);
    if (!Number.isInteger(x) || x < 1) throw new Error(`bench coco-eval: ${a} needs a positive integer, got '${args[i]}'`);
    if (a === '--images') o.images = x;
    else if (a === '--dets') o.dets = x;
    else if (a === '--size') o.size = x;
    else if (a === '--repeat') o.repeat = x;
    else throw new Error(`bench coco-eval: unknown argument '${a}' (known: --images, --dets, --size, --repeat)`);
  }
  return o;
}

const rect = (b: readonly number[]): number[] => [b[0]!, b[1]!, b[0]! + b[2]!, b[1]!, b[0]! + b[2]!, b[1]! + b[3]!, b[0]!, b[1]! + b[3]!];

function scene(o: Opts, K: number): { gt: CocoDataset; dt: CocoDetection[] } {
  const rng = new Rng(1);
  const S = o.size;
  const images = Array.from({ length: o.images }, (_, i) => ({ id: i + 1, width: S, height: S }));
  const annotations: CocoAnnotation[] = [];
  const dt: CocoDetection[] = [];
  for (const im of images) {
    const boxes: [number, number, number, number, number][] = [];
    for (let n = 0, nGt = 2 + rng.int(8); n < nGt; n++) {
      const w = 8 + rng.int(Math.floor(S / 2)), h = 8 + rng.int(Math.floor(S / 2));
      const b: [number, number, number, number] = [rng.int(S - w), rng.int(S - h), w, h];
      const cat = 1 + rng.int(K);
      boxes.push([...b, cat]);
      annotations.push({ id: annotations.length + 1, image_id: im.id, category_id: cat, bbox: b, area: w * h, iscrowd: rng.next() < 0.05 ? 1 : 0, segmentation: [rect(b)] });
    }
    for (let d = 0; d < o.dets; d++) {
      const g = boxes[rng.int(boxes.length)]!;
      const near = rng.next() < 0.5;
      const w = near ? Math.max(1, g[2] + rng.int(9) - 4) : 4 + rng.int(Math.floor(S / 3)), h = near ? Math.max(1, g[3] + rng.int(9) - 4) : 4 + rng.int(Math.floor(S / 3));
      const b: [number, number, number, number] = near ? [g[0] + rng.int(9) - 4, g[1] + rng.int(9) - 4, w, h] : [rng.int(S - w), rng.int(S - h), w, h];
      dt.push({ image_id: im.id, category_id: near ? g[4] : 1 + rng.int(K), bbox: b, score: rng.next(), segmentation: polygonsToRle([rect(b)], S, S) });
    }
  }
  return { gt: { images, annotations, categories: Array.from({ length: K }, (_, k) => ({ id: k + 1, name: `c${k + 1}` })) }, dt };
}

export async function run(args: readonly string[]): Promise<void> {
  const o = parseArgs(args);
  const K = 5;
  const { gt, dt } = scene(o, K);
  for (const iouType of ['bbox', 'segm'] as IouType[]) {
    const dets = iouType === 'bbox' ? dt.map(({ segmentation: _s, ...d }) => d) : dt;
    let best = Infinity;
    let ap = 0;
    for (let r = 0; r < o.repeat; r++) {
      const t0 = performance.now();
      ap = cocoEval(gt, dets, iouType).stats[0]!;
      best = Math.min(best, performance.now() - t0);
    }
    console.log(`RESULT ${JSON.stringify({ bench: 'coco-eval', iouType, images: o.images, detsPerImage: o.dets, gts: gt.annotations.length, size: o.size, categories: K, ms: Math.round(best), AP: Number(ap.toFixed(4)) })}`);
  }
}
