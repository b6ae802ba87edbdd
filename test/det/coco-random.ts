/**
 * Random COCO evaluation cases that exercise what moves COCOeval's numbers: score ties within and
 * across images, integer boxes whose IoUs land exactly on thresholds, crowd regions, areas on the
 * range boundaries (32², 96²), images and categories without ground truth, detections of unknown
 * categories, more than 100 detections in one image, and (segm) polygons, multi-part polygons,
 * uncompressed and compressed RLEs on both sides.
 */
import type { CocoAnnotation, CocoDataset, CocoDetection, CocoRle, CocoSegmentation } from '../../src/det/types.ts';
import { polygonsToRle, rleArea, rleEncode, rleToString } from '../../src/det/mask.ts';
import { Rng } from '../../src/util/rng.ts';

export interface RandomCaseOptions {
  iouType: 'bbox' | 'segm';
  /** detections as mask results (compressed RLE, no bbox) instead of box results */
  maskResults?: boolean;
  /** segm: box results without masks (loadRes turns each box into its polygon) */
  boxesOnly?: boolean;
  /** first gt id (0 exercises pycocotools' reading of gt ids as truth values) */
  firstGtId?: number;
  /** give some gts the id of an earlier one (pycocotools then reads the later annotation twice) */
  duplicateIds?: boolean;
  images?: number;
}

function boxPolygon(x: number, y: number, w: number, h: number): number[] {
  return [x, y, x + w, y, x + w, y + h, x, y + h];
}

/** A wobbly polygon inside the box (8 vertices, fractional coordinates). */
function blobPolygon(rng: Rng, x: number, y: number, w: number, h: number): number[] {
  const cx = x + w / 2, cy = y + h / 2;
  const pts: number[] = [];
  for (let i = 0; i < 8; i++) {
    const a = (i / 8) * 2 * Math.PI;
    const r = 0.6 + 0.4 * rng.next();
    pts.push(cx + (Math.cos(a) * r * w) / 2, cy + (Math.sin(a) * r * h) / 2);
  }
  return pts;
}

function randomSegmentation(rng: Rng, b: number[], H: number, W: number, crowd: boolean): CocoSegmentation {
  const [x, y, w, h] = b as [number, number, number, number];
  const kind = crowd ? 3 + rng.int(2) : rng.int(5);
  if (kind === 0) return [boxPolygon(x, y, w, h)];
  if (kind === 1) return [blobPolygon(rng, x, y, w, h)];
  if (kind === 2) return [blobPolygon(rng, x, y, w / 2, h), blobPolygon(rng, x + w / 2, y, w / 2, h / 2)];
  // A pixel mask: the box with random holes, as (un)compressed RLE.
  const m = new Uint8Array(H * W);
  for (let yy = Math.max(0, Math.floor(y)); yy < Math.min(H, Math.ceil(y + h)); yy++) {
    for (let xx = Math.max(0, Math.floor(x)); xx < Math.min(W, Math.ceil(x + w)); xx++) m[yy * W + xx] = rng.next() < 0.85 ? 1 : 0;
  }
  const rle = rleEncode(m, H, W);
  return kind === 3 ? rle : { size: rle.size, counts: rleToString(rle.counts as number[]) };
}

/** The segmentation's pixel area as the gt `area` field (what COCO stores), via our own masks. */
function segArea(s: CocoSegmentation, H: number, W: number): number {
  return Array.isArray(s) ? rleArea(polygonsToRle(s, H, W)) : rleArea(s);
}

export function randomCocoCase(seed: number, o: RandomCaseOptions): { gt: CocoDataset; dt: CocoDetection[] } {
  const rng = new Rng(seed);
  const nImg = o.images ?? 6;
  const catIds = [1, 2, 5, 7]; // category 7 never gets ground truth
  const images = Array.from({ length: nImg }, (_, i) => ({ id: 10 + i * 3, width: 60 + rng.int(200), height: 50 + rng.int(150) }));
  const annotations: CocoAnnotation[] = [];
  const dt: CocoDetection[] = [];
  let gid = o.firstGtId ?? 1;
  const score = (): number => (rng.next() < 0.5 ? Math.round(rng.next() * 10) / 10 : Math.round(rng.next() * 1000) / 1000);
  images.forEach((im, ii) => {
    const nGt = ii === 1 ? 0 : rng.int(7); // image 1 has no gt
    const H = im.height, W = im.width;
    for (let n = 0; n < nGt; n++) {
      const cat = catIds[rng.int(3)]!;
      const side = [6, 20, 32, 40, 96, 110][rng.int(6)]!;
      const w = Math.min(W - 1, Math.max(2, Math.round(side * (0.6 + 0.8 * rng.next())))), h = Math.min(H - 1, Math.max(2, Math.round((side * side) / w)));
      const x = rng.int(W - w), y = rng.int(H - h);
      const iscrowd = rng.next() < 0.15 ? 1 : 0;
      const bbox: [number, number, number, number] = [x, y, w, h];
      const ann: CocoAnnotation = { id: gid++, image_id: im.id, category_id: cat, bbox, area: w * h, iscrowd };
      if (o.iouType === 'segm') {
        ann.segmentation = randomSegmentation(rng, bbox, H, W, !!iscrowd);
        ann.area = segArea(ann.segmentation, H, W);
      }
      // Areas exactly on a range boundary now and then.
      if (rng.next() < 0.1) ann.area = [32 * 32, 96 * 96][rng.int(2)]!;
      annotations.push(ann);
      // Detections near this gt: integer shifts give IoUs that can equal a threshold exactly.
      const nDt = rng.int(4);
      for (let k = 0; k < nDt; k++) {
        const jitter = (s: number): number => (rng.next() < 0.5 ? rng.int(2 * s + 1) - s : (rng.next() - 0.5) * s);
        const bw = Math.max(1, w + jitter(Math.ceil(w * 0.2))), bh = Math.max(1, h + jitter(Math.ceil(h * 0.2)));
        const db: [number, number, number, number] = [x + jitter(Math.ceil(w * 0.15)), y + jitter(Math.ceil(h * 0.15)), bw, bh];
        const c = rng.next() < 0.9 ? cat : catIds[rng.int(4)]!;
        dt.push(detection(rng, o, im.id, c, db, H, W, score()));
      }
    }
    // False positives; image 2 gets more than 100 detections (maxDets cut).
    const nFp = ii === 2 ? 130 : rng.int(5);
    for (let k = 0; k < nFp; k++) {
      const w = 2 + rng.int(60), h = 2 + rng.int(60);
      const c = rng.next() < 0.05 ? 99 : catIds[rng.int(4)]!; // 99: not a category of the gt
      dt.push(detection(rng, o, im.id, c, [rng.int(Math.max(1, W - w)), rng.int(Math.max(1, H - h)), w, h], H, W, score()));
    }
  });
  if (o.duplicateIds) for (let n = 3; n < annotations.length; n += 4) annotations[n]!.id = annotations[n - 1 - rng.int(3)]!.id;
  // Shuffle so results of one image are not contiguous (pycocotools keeps input order per image).
  const perm = rng.permutation(dt.length);
  return {
    gt: { images, annotations, categories: catIds.map((id) => ({ id, name: `c${id}` })) },
    dt: Array.from(perm, (i) => dt[i]!),
  };
}

function detection(rng: Rng, o: RandomCaseOptions, image_id: number, category_id: number, b: [number, number, number, number], H: number, W: number, score: number): CocoDetection {
  if ((o.iouType === 'bbox' && !o.maskResults) || o.boxesOnly) return { image_id, category_id, bbox: b, score };
  const poly = rng.next() < 0.5 ? boxPolygon(...b) : blobPolygon(rng, ...b);
  const rle: CocoRle = polygonsToRle([poly], H, W);
  if (o.maskResults) return { image_id, category_id, segmentation: { size: rle.size, counts: rleToString(rle.counts as number[]) }, score };
  return { image_id, category_id, bbox: b, segmentation: rle, score };
}
