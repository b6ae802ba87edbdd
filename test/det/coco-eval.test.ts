/**
 * Hand-computed COCOeval cases. The golden pycocotools outputs are checked by the fixture test
 * (../shared/fixtures/coco) and, where pycocotools is installed, coco-eval-pycocotools.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cocoEval, defaultParams, formatSummary, linspace, pyFixed } from '../../src/det/coco-eval.ts';
import { polygonsToRle } from '../../src/det/mask.ts';
import { precisionRecallRows, prCurveChart } from '../../src/det/pr-curve.ts';
import { renderChart } from '../../src/eval/charts.ts';
import type { CocoAnnotation, CocoDataset, CocoDetection } from '../../src/det/types.ts';

type Xywh = [number, number, number, number];

function dataset(anns: { img: number; cat: number; box: Xywh; crowd?: boolean; area?: number; id?: number }[], cats = [1, 2, 3], imgs = [1, 2]): CocoDataset {
  const annotations: CocoAnnotation[] = anns.map((a, i) => ({
    id: a.id ?? i + 1, image_id: a.img, category_id: a.cat, bbox: a.box,
    area: a.area ?? a.box[2] * a.box[3], iscrowd: a.crowd ? 1 : 0,
    segmentation: [[a.box[0], a.box[1], a.box[0] + a.box[2], a.box[1], a.box[0] + a.box[2], a.box[1] + a.box[3], a.box[0], a.box[1] + a.box[3]]],
  }));
  return { images: imgs.map((id) => ({ id, width: 200, height: 160 })), annotations, categories: cats.map((id) => ({ id, name: `c${id}` })) };
}

const det = (img: number, cat: number, box: Xywh, score: number): CocoDetection => ({ image_id: img, category_id: cat, bbox: box, score });

// Precision is tp / (tp + fp + np.spacing(1)), so a perfect AP is 1 - 1e-16, as in pycocotools.
const close = (a: number, b: number, what = 'value'): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
const allClose = (a: readonly number[], b: readonly number[], what: string): void => {
  assert.equal(a.length, b.length, what);
  a.forEach((v, i) => close(v, b[i]!, `${what}[${i}]`));
};

test('linspace is numpy\'s: the IoU thresholds include 0.75 exactly and 0.8999999999999999', () => {
  const p = defaultParams();
  assert.deepEqual(p.iouThrs, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95]);
  assert.equal(p.recThrs.length, 101);
  assert.equal(p.recThrs[0], 0);
  assert.equal(p.recThrs[100], 1);
  assert.equal(p.recThrs[3], 0.03);
  assert.deepEqual(linspace(2, 3, 1), [2]);
  assert.deepEqual(linspace(0, 0, 3), [0, 0, 0]);
});

test('perfect detections: AP = AR = 1 where there is gt, -1 for the empty large range and an empty category', () => {
  const gt = dataset([
    { img: 1, cat: 1, box: [10, 10, 40, 40] }, // medium (1600)
    { img: 1, cat: 2, box: [100, 20, 20, 20] }, // small (400)
    { img: 2, cat: 1, box: [30, 50, 40, 40] },
  ]);
  const dt = [det(1, 1, [10, 10, 40, 40], 0.9), det(1, 2, [100, 20, 20, 20], 0.8), det(2, 1, [30, 50, 40, 40], 0.7)];
  const r = cocoEval(gt, dt, 'bbox');
  allClose(r.stats, [1, 1, 1, 1, 1, -1, 1, 1, 1, 1, 1, -1], 'stats');
  allClose(r.perCategoryAP, [1, 1, -1], 'perCategoryAP');
  assert.deepEqual(r.categoryIds, [1, 2, 3]);
  // The same masks as polygons: segm gives the same.
  const segmDt = dt.map((d) => ({ ...d, segmentation: polygonsToRle([[d.bbox![0], d.bbox![1], d.bbox![0] + d.bbox![2], d.bbox![1], d.bbox![0] + d.bbox![2], d.bbox![1] + d.bbox![3], d.bbox![0], d.bbox![1] + d.bbox![3]]], 160, 200) }));
  allClose(cocoEval(gt, segmDt, 'segm').stats, [1, 1, 1, 1, 1, -1, 1, 1, 1, 1, 1, -1], 'segm stats');
});

test('a false positive ranked first halves AP; ranked last it costs nothing; AR@1 sees only the top detection', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }]);
  const tp = det(1, 1, [10, 10, 40, 40], 0.8);
  // FP first: tp cumsum [0, 1], fp [1, 1]: precision [0, 0.5] -> envelope [0.5, 0.5]; every recall point reads 0.5.
  const first = cocoEval(gt, [det(1, 1, [120, 100, 30, 30], 0.9), tp], 'bbox');
  close(first.stats[0]!, 0.5, 'AP');
  close(first.stats[1]!, 0.5, 'AP50');
  assert.equal(first.stats[6], 0, 'AR@1: the single allowed detection is the FP');
  close(first.stats[7]!, 1, 'AR@10');
  const last = cocoEval(gt, [det(1, 1, [120, 100, 30, 30], 0.1), tp], 'bbox');
  close(last.stats[0]!, 1);
  close(last.stats[6]!, 1);
});

test('equal scores keep input order within an image and image-id order across images (stable mergesort)', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }]);
  const fp = det(1, 1, [120, 100, 30, 30], 0.5), tp = det(1, 1, [10, 10, 40, 40], 0.5);
  close(cocoEval(gt, [fp, tp], 'bbox').stats[0]!, 0.5, 'FP listed first');
  close(cocoEval(gt, [tp, fp], 'bbox').stats[0]!, 1, 'TP listed first');
  // Across images the concatenation is in sorted image-id order, whatever the input order:
  // the FP of image 1 precedes the TP of image 2.
  const gt2 = dataset([{ img: 2, cat: 1, box: [10, 10, 40, 40] }]);
  close(cocoEval(gt2, [det(2, 1, [10, 10, 40, 40], 0.5), det(1, 1, [10, 10, 40, 40], 0.5)], 'bbox').stats[0]!, 0.5, 'image 1 first');
});

test('IoU exactly on a threshold matches it: 0.75 -> matched at 6 of 10 thresholds', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [0, 0, 10, 10], area: 100 }]);
  const r = cocoEval(gt, [det(1, 1, [0, 0, 10, 7.5], 0.9)], 'bbox');
  close(r.stats[0]!, 0.6, 'AP');
  close(r.stats[2]!, 1, 'AP75');
  const half = cocoEval(gt, [det(1, 1, [0, 0, 10, 5], 0.9)], 'bbox');
  close(half.stats[0]!, 0.1, 'IoU 0.5: only the first threshold');
});

test('a crowd region absorbs any number of detections (ignored, not false positives)', () => {
  const anns = [
    { img: 1, cat: 1, box: [10, 10, 40, 40] as Xywh },
    { img: 1, cat: 1, box: [100, 60, 80, 80] as Xywh, crowd: true },
  ];
  const dt = [
    det(1, 1, [10, 10, 40, 40], 0.9),
    det(1, 1, [110, 70, 20, 20], 0.8), // inside the crowd region: IoU = 400 / area(dt) = 1
    det(1, 1, [140, 100, 20, 20], 0.7),
    det(1, 1, [0, 120, 10, 10], 0.6), // a real false positive
  ];
  // With the crowd: TP, ignored, ignored, FP -> precision [1, 1, 1, 0.5], recall 1 from the first: AP 1.
  const r = cocoEval(dataset(anns), dt, 'bbox');
  close(r.stats[0]!, 1);
  close(r.stats[8]!, 1, 'AR100 counts only the regular gt');
  // The same region as a regular gt: the two inside are FPs (IoU 400/6400) and it is a missed gt:
  // recall 0.5 with precision 1, so 51 of 101 recall points have precision 1.
  const plain = cocoEval(dataset(anns.map((a) => ({ ...a, crowd: false }))), dt, 'bbox');
  close(plain.stats[0]!, 51 / 101, 'AP without crowd');
  close(plain.stats[8]!, 0.5, 'AR100 without crowd');
  // segm: the crowd rule on masks (intersection / dt area).
  const segm = cocoEval(dataset(anns), dt, 'segm');
  close(segm.stats[0]!, 1);
});

test('area ranges are closed: a gt of exactly 32² counts as small and as medium', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [0, 0, 32, 32] }]);
  const r = cocoEval(gt, [det(1, 1, [0, 0, 32, 32], 0.9)], 'bbox');
  close(r.stats[3]!, 1, 'APs');
  close(r.stats[4]!, 1, 'APm');
  assert.equal(r.stats[5], -1, 'APl');
});

test('detections outside an area range are ignored there only when unmatched', () => {
  // gt medium (1600); a small unmatched detection (100) must not count as an FP for 'medium'.
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }]);
  const r = cocoEval(gt, [det(1, 1, [150, 100, 10, 10], 0.95), det(1, 1, [10, 10, 40, 40], 0.5)], 'bbox');
  close(r.stats[0]!, 0.5, 'AP (all): the FP counts');
  close(r.stats[4]!, 1, 'APm: the small FP is ignored');
});

test('empty categories and no detections: -1 without gt, 0 with gt and nothing found', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }]);
  const r = cocoEval(gt, [det(1, 2, [10, 10, 40, 40], 0.9)], 'bbox');
  allClose(r.perCategoryAP, [0, -1, -1], 'perCategoryAP');
  assert.equal(r.stats[0], 0);
  const none = cocoEval(gt, [], 'bbox');
  assert.equal(none.stats[0], 0);
  assert.equal(none.stats[8], 0);
  const noGt = cocoEval(dataset([]), [det(1, 1, [10, 10, 40, 40], 0.9)], 'bbox');
  assert.deepEqual(noGt.stats, new Array(12).fill(-1));
});

test('more than maxDets detections in an image: the lowest-scored beyond 100 are dropped', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }]);
  const fps = Array.from({ length: 100 }, (_, i) => det(1, 1, [150, 100, 5, 5], 0.9 - i * 1e-4));
  const r = cocoEval(gt, [...fps, det(1, 1, [10, 10, 40, 40], 0.1)], 'bbox');
  assert.equal(r.stats[0], 0, 'the TP is the 101st and falls outside maxDets 100');
  const r200 = cocoEval(gt, [...fps, det(1, 1, [10, 10, 40, 40], 0.1)], 'bbox', { maxDets: [1, 10, 200] });
  close(r200.stats[8]!, 1, 'AR@200 finds it');
});

test('formatSummary prints pycocotools\' lines; Python rounds exact ties to even', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }]);
  const lines = formatSummary(cocoEval(gt, [det(1, 1, [10, 10, 40, 40], 0.9)], 'bbox')).split('\n');
  assert.equal(lines.length, 12);
  assert.equal(lines[0], ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000');
  assert.equal(lines[1], ' Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000');
  assert.equal(lines[5], ' Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000');
  assert.equal(lines[6], ' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 1.000');
  // '{:0.3f}'.format(...) in Python: 0.062 0.188 0.312; '{:0.2f}'.format(0.125) -> 0.12
  assert.deepEqual([0.0625, 0.1875, 0.3125, 0.1234].map((v) => pyFixed(v, 3)), ['0.062', '0.188', '0.312', '0.123']);
  assert.equal(pyFixed(0.125, 2), '0.12');
  assert.equal(pyFixed(-1, 3), '-1.000');
});

test('bad input names what is wrong', () => {
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }]);
  assert.throws(() => cocoEval(gt, [det(9, 1, [0, 0, 1, 1], 0.5)], 'bbox'), /image_id 9, which is not an image of the ground truth/);
  assert.throws(() => cocoEval(gt, [det(1, 1, [0, 0, 1, 1], Number.NaN)], 'bbox'), /score NaN/);
  assert.throws(() => cocoEval(gt, [det(1, 1, [0, 0, 1, 1], 0.5), { image_id: 1, category_id: 1, score: 0.4 }], 'bbox'), /detection 1 has bbox undefined/);
  assert.throws(() => cocoEval(gt, [], 'keypoints' as 'bbox'), /iouType must be 'bbox' or 'segm'/);
  const noSeg = { ...gt, annotations: gt.annotations.map(({ segmentation: _s, ...a }) => a) };
  assert.throws(() => cocoEval(noSeg, [det(1, 1, [0, 0, 1, 1], 0.5)], 'segm'), /has no segmentation, needed for iouType 'segm'/);
  assert.throws(() => cocoEval(gt, [], 'bbox', { maxDets: [100] }), /summarize needs three maxDets/);
});

test('precision-recall curves: the 0.50:0.95 curve averages to AP; FP first gives a flat 0.5; the chart renders', async () => {
  const gt = dataset([{ img: 1, cat: 1, box: [10, 10, 40, 40] }, { img: 2, cat: 2, box: [0, 0, 30, 20] }]);
  const r = cocoEval(gt, [det(1, 1, [120, 100, 30, 30], 0.9), det(1, 1, [10, 10, 40, 40], 0.8), det(2, 2, [0, 0, 30, 15], 0.7)], 'bbox');
  const rows = precisionRecallRows(r);
  const mean = rows.filter((d) => d.curve === 'IoU=0.50:0.95');
  assert.equal(mean.length, 101);
  close(mean.reduce((s, d) => s + (d.precision as number), 0) / 101, r.stats[0]!, 'area under the mean curve = AP');
  // Category 1 alone: FP ranked first -> precision 0.5 at every recall point, at every IoU.
  const c1 = precisionRecallRows(r, { categoryId: 1, iouThrs: [0.5] });
  assert.ok(c1.every((d) => Math.abs((d.precision as number) - 0.5) < 1e-12));
  // Category 2 at IoU 0.75: its detection (IoU 0.75) matches; at 0.8 it does not.
  assert.ok(precisionRecallRows(r, { categoryId: 2, iouThrs: [0.75] }).every((d) => Math.abs((d.precision as number) - 1) < 1e-12));
  assert.ok(precisionRecallRows(r, { categoryId: 2, iouThrs: [0.8] }).every((d) => d.precision === 0));
  assert.throws(() => precisionRecallRows(r, { categoryId: 9 }), /category 9 is not evaluated/);
  assert.ok(precisionRecallRows(r, { categoryId: 3 }).every((d) => d.precision === null), 'no gt: no curve');
  const spec = prCurveChart(r, 'PR');
  const svg = (await renderChart(spec)).svg;
  assert.match(svg, /<svg/);
  assert.match(svg, /IoU=0\.50:0\.95/);
});
