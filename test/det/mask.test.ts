import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  annToRle, bboxIou, polygonsToRle, rleArea, rleDecode, rleEncode, rleFromString, rleIou, rleMergeCounts,
  rleToBbox, rleToString, toCounts,
} from '../../src/det/mask.ts';
import { Rng } from '../../src/util/rng.ts';

/** A random blobby row-major mask (rectangles of 1s on 0s). */
function randomMask(rng: Rng, h: number, w: number, density: number): Uint8Array {
  const m = new Uint8Array(h * w);
  for (let i = 0; i < m.length; i++) m[i] = rng.next() < density ? 1 : 0;
  return m;
}

test('rleEncode/rleDecode round-trip random non-square masks, runs are column-major from a 0 run', () => {
  const rng = new Rng(3);
  for (const [h, w] of [[1, 1], [3, 7], [7, 3], [16, 5], [1, 9], [9, 1]] as const) {
    for (const density of [0, 0.3, 0.9, 1]) {
      const m = randomMask(rng, h, w, density);
      const rle = rleEncode(m, h, w);
      const counts = rle.counts as number[];
      assert.deepEqual(rle.size, [h, w]);
      assert.equal(counts.reduce((a, b) => a + b, 0), h * w);
      assert.deepEqual(rleDecode(rle), m);
      let area = 0;
      for (const v of m) area += v;
      assert.equal(rleArea(rle), area);
      // Compressed string form decodes to the same mask and counts.
      const s = rleToString(counts);
      assert.deepEqual(Array.from(rleFromString(s)), counts);
      assert.deepEqual(rleDecode({ size: [h, w], counts: s }), m);
    }
  }
});

test('column-major order: a 2x3 mask [[0,1,1],[0,1,1]] is runs [2, 4]; the first run may be empty', () => {
  assert.deepEqual(rleEncode(new Uint8Array([0, 1, 1, 0, 1, 1]), 2, 3).counts, [2, 4]);
  // Pixel (row 0, col 0) set: run of 0 zeros first.
  assert.deepEqual(rleEncode(new Uint8Array([1, 0, 0, 0]), 2, 2).counts, [0, 1, 3]);
  // Row 1 of a 2x2 mask set: column-major positions 1 and 3.
  assert.deepEqual(rleEncode(new Uint8Array([0, 0, 1, 1]), 2, 2).counts, [1, 1, 1, 1]);
});

test('rleToString matches the hand-encoded maskApi.c format (5-bit groups, +48, deltas from i>2)', () => {
  // 5 -> '5', 3 -> '3', 2 -> '2', then 1 - counts[1] = -2: low 5 bits 30, sign bit set, ends -> 'N'.
  assert.equal(rleToString([5, 3, 2, 1]), '532N');
  // 40 = 0b01000 | (1 << 5): first group 8 with continuation (8 | 32) + 48 = 'X', then 1 -> '1'.
  assert.equal(rleToString([40]), 'X1');
  assert.deepEqual(Array.from(rleFromString('532N')), [5, 3, 2, 1]);
  // Large counts and big negative deltas round-trip.
  const big = [123456, 7, 1, 98765, 0, 3, 2 ** 24, 1];
  assert.deepEqual(Array.from(rleFromString(rleToString(big))), big);
  assert.throws(() => rleFromString('5X'), /ends inside a count/);
  assert.throws(() => rleFromString('5~'), /outside the RLE alphabet/);
});

test('polygon areas equal the pixel-centre counts maskApi.c rleFrPoly gives', () => {
  // Integer-cornered rectangle 10x10: exactly 100 pixels, bbox [10, 10, 10, 10].
  const sq = polygonsToRle([[10, 10, 20, 10, 20, 20, 10, 20]], 40, 30);
  assert.equal(rleArea(sq), 100);
  assert.deepEqual(rleToBbox(sq), [10, 10, 10, 10]);
  // Right triangle with legs 10 at the origin: pixel (i, j) is in when its centre is strictly
  // below the hypotenuse, i + j + 1 < 10, i.e. i + j <= 8 -> 45 pixels, bbox [0, 0, 9, 9]
  // (pycocotools gives the same 45 and box).
  const tri = polygonsToRle([[0, 0, 10, 0, 0, 10]], 40, 30);
  assert.equal(rleArea(tri), 45);
  assert.deepEqual(rleToBbox(tri), [0, 0, 9, 9]);
  const triMask = rleDecode(tri);
  for (let y = 0; y < 40; y++) for (let x = 0; x < 30; x++) assert.equal(triMask[y * 30 + x], x + y <= 8 ? 1 : 0, `pixel (${x}, ${y})`);
  // Clipped by the image: a 10x10 square centred on the origin keeps its 5x5 inside corner.
  assert.equal(rleArea(polygonsToRle([[-5, -5, 5, -5, 5, 5, -5, 5]], 10, 12)), 25);
  // Two disjoint parts merge into one mask (union); overlapping parts are not double counted.
  assert.equal(rleArea(polygonsToRle([[0, 0, 4, 0, 4, 4, 0, 4], [10, 10, 13, 10, 13, 12, 10, 12]], 20, 20)), 16 + 6);
  assert.equal(rleArea(polygonsToRle([[0, 0, 4, 0, 4, 4, 0, 4], [2, 0, 6, 0, 6, 4, 2, 4]], 20, 20)), 24);
  // The decoded mask of a rectangle 3 wide, 2 high at (1, 2) in a non-square 5x6 image.
  const m = rleDecode(polygonsToRle([[1, 2, 4, 2, 4, 4, 1, 4]], 5, 6));
  const want = new Uint8Array(30);
  for (let y = 2; y < 4; y++) for (let x = 1; x < 4; x++) want[y * 6 + x] = 1;
  assert.deepEqual(m, want);
});

test('rleToBbox: tight box, full height when a run of 1s wraps to the next column, zeros when empty', () => {
  const h = 6, w = 5;
  const m = new Uint8Array(h * w);
  m[1 * w + 2] = 1; m[4 * w + 3] = 1;
  assert.deepEqual(rleToBbox(rleEncode(m, h, w)), [2, 1, 2, 4]);
  // Column-major runs [3, 2, 7] in a 4x3 image: pixels (col 0, row 3) and (col 1, row 0).
  assert.deepEqual(rleToBbox({ size: [4, 3], counts: [3, 2, 7] }), [0, 0, 2, 4]);
  assert.deepEqual(rleToBbox({ size: [4, 3], counts: [12] }), [0, 0, 0, 0]);
});

test('rleMergeCounts: union and intersection equal the decoded masks\' OR / AND', () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 10; trial++) {
    const h = 3 + rng.int(6), w = 2 + rng.int(7);
    const a = randomMask(rng, h, w, 0.4), b = randomMask(rng, h, w, 0.5), c = randomMask(rng, h, w, 0.3);
    const rs = [a, b, c].map((m) => toCounts(rleEncode(m, h, w)));
    const or = rleMergeCounts(rs), and = rleMergeCounts(rs, true);
    const dec = (r: typeof or): Uint8Array => rleDecode({ size: [r.h, r.w], counts: Array.from(r.cnts) });
    assert.deepEqual(dec(or), a.map((v, i) => v | b[i]! | c[i]!));
    assert.deepEqual(dec(and), a.map((v, i) => v & b[i]! & c[i]!));
  }
});

test('rleIou equals brute-force IoU, with the crowd rule intersection / area(dt)', () => {
  const rng = new Rng(5);
  const h = 9, w = 13;
  const dts = [0.2, 0.5, 0.05].map((p) => randomMask(rng, h, w, p));
  const gts = [0.3, 0.6].map((p) => randomMask(rng, h, w, p));
  const crowd = [false, true];
  const iou = rleIou(dts.map((m) => rleEncode(m, h, w)), gts.map((m) => rleEncode(m, h, w)), crowd);
  dts.forEach((d, i) => gts.forEach((g, j) => {
    let inter = 0, uni = 0, da = 0;
    for (let k = 0; k < d.length; k++) { inter += d[k]! & g[k]!; uni += d[k]! | g[k]!; da += d[k]!; }
    const want = inter === 0 ? 0 : inter / (crowd[j] ? da : uni);
    assert.ok(Math.abs(iou[i]![j]! - want) < 1e-15, `dt ${i} gt ${j}: ${iou[i]![j]} vs ${want}`);
  }));
  // A dt inside a crowd gt: IoU 1 against the crowd, its area ratio against the same region as a normal gt.
  const big = polygonsToRle([[0, 0, 10, 0, 10, 8, 0, 8]], h, w), small = polygonsToRle([[2, 2, 4, 2, 4, 4, 2, 4]], h, w);
  assert.deepEqual(rleIou([small], [big, big], [true, false]), [[1, 4 / 80]]);
  // Different sizes: -1 (maskApi.c), not a silent 0.
  assert.deepEqual(rleIou([small], [polygonsToRle([[2, 2, 4, 2, 4, 4, 2, 4]], h + 1, w)], [false]), [[-1]]);
});

test('bboxIou: plain IoU, crowd rule, touching boxes are 0', () => {
  const iou = bboxIou([[0, 0, 10, 10], [5, 5, 10, 10], [10, 0, 5, 5]], [[0, 0, 20, 20], [0, 0, 10, 10]], [true, false]);
  assert.deepEqual(iou[0], [1, 1]);
  assert.deepEqual(iou[1], [1, 25 / 175]);
  assert.deepEqual(iou[2], [1, 0]);
  assert.throws(() => bboxIou([[0, 0, 1]], [[0, 0, 1, 1]], [false]), /dt\[0\] has 3 numbers/);
  assert.throws(() => bboxIou([[0, 0, 1, 1]], [[0, 0, 1, 1]], []), /iscrowd has 0 flags for 1/);
});

test('annToRle: polygons at the image size, uncompressed RLE keeps its size, compressed strings decode', () => {
  const poly = annToRle({ segmentation: [[1, 1, 5, 1, 5, 3, 1, 3]] }, 8, 10);
  assert.deepEqual(poly.size, [8, 10]);
  assert.equal(rleArea(poly), 8);
  const m = randomMask(new Rng(2), 4, 6, 0.5);
  const unc = rleEncode(m, 4, 6);
  assert.deepEqual(annToRle({ segmentation: unc }, 100, 100), unc);
  const comp = { size: unc.size, counts: rleToString(unc.counts as number[]) };
  assert.deepEqual(annToRle({ segmentation: comp }, 100, 100), unc);
  // frPyObjects reads a first polygon of exactly 4 numbers as a box [x, y, w, h].
  assert.equal(rleArea(annToRle({ segmentation: [[1, 1, 3, 2]] }, 8, 10)), 6);
  assert.throws(() => annToRle({}, 8, 10), /no segmentation/);
  assert.throws(() => annToRle({ segmentation: [] }, 8, 10), /empty polygon list/);
  assert.throws(() => rleDecode({ size: [2, 2], counts: [1, 1] }), /sum to 2, expected h\*w = 2\*2 = 4/);
});
