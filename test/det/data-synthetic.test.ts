import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyntheticDetDataset, sceneObjects, DET_SHAPE_CLASSES } from '../../src/det/data/synthetic.ts';
import { evalPlan } from '../../src/det/data/lsj.ts';
import { maskArea, maskBounds } from '../../src/det/data/bitmask.ts';
import { fromCocoBox } from '../../src/det/types.ts';
import { Rng } from '../../src/util/rng.ts';

const ds = new SyntheticDetDataset({ seed: 7, split: 'train', size: 24 });

test('synthetic det: every box is the tight bound of its mask, masks disjoint, at square and non-square sizes and under LSJ', () => {
  let objects = 0;
  for (const [size, rng] of [[[96, 96], null], [[80, 144], null], [[120, 72], null], [[96, 128], new Rng(1)]] as const) {
    for (let i = 0; i < ds.length; i++) {
      const s = ds.get(i, [size[0], size[1]], rng);
      const [H, W] = size;
      assert.equal(s.image.data.length, 3 * H * W);
      assert.equal(s.image.height, H);
      assert.equal(s.image.width, W);
      const owner = new Int16Array(H * W).fill(-1);
      s.objects.forEach((o, k) => {
        assert.ok(o.mask && o.mask.length === H * W);
        assert.deepEqual(o.box, maskBounds(o.mask, H, W));
        assert.ok(o.label >= 0 && o.label < ds.classNames.length);
        for (let p = 0; p < H * W; p++) {
          if (!o.mask[p]) continue;
          assert.equal(owner[p], -1, `pixel ${p} of scene ${i} is in two masks (${owner[p]} and ${k})`);
          owner[p] = k;
        }
        objects++;
      });
    }
  }
  assert.ok(objects > 4 * ds.length, `expected several objects per scene, got ${objects} over ${4 * ds.length} renders`);
});

test('synthetic det: the same scene at two sizes has boxes scaling by the size ratio (per axis)', () => {
  const A: [number, number] = [96, 96];
  const B: [number, number] = [160, 224];
  for (let i = 0; i < ds.length; i++) {
    const a = ds.get(i, A, null);
    const b = ds.get(i, B, null);
    assert.equal(a.objects.length, b.objects.length, `scene ${i}: object count`);
    const rx = B[1] / A[1];
    const ry = B[0] / A[0];
    a.objects.forEach((o, k) => {
      const p = b.objects[k]!;
      assert.equal(p.label, o.label);
      // Each bound is within one pixel of the true edge at either size.
      const tol = [1 + rx, 1 + ry, 1 + rx, 1 + ry];
      const scaled = [o.box[0] * rx, o.box[1] * ry, o.box[2] * rx, o.box[3] * ry];
      scaled.forEach((v, j) => assert.ok(Math.abs(v - p.box[j]!) <= tol[j]!, `scene ${i} object ${k} coord ${j}: ${v} vs ${p.box[j]}`));
    });
    // scale maps the sample back to the evaluation size (128x128 by default).
    assert.deepEqual(b.scale, [B[1] / 128, B[0] / 128]);
    assert.deepEqual(b.originalSize, [128, 128]);
  }
});

test('synthetic det: deterministic from (seed, split, index); other seeds and splits differ', () => {
  const again = new SyntheticDetDataset({ seed: 7, split: 'train', size: 24 });
  const a = ds.get(5, [64, 80], null);
  const b = again.get(5, [64, 80], null);
  assert.deepEqual(a.image.data, b.image.data);
  assert.deepEqual(a.objects, b.objects);
  const l1 = ds.get(5, [64, 80], new Rng(11));
  const l2 = again.get(5, [64, 80], new Rng(11));
  assert.deepEqual(l1.image.data, l2.image.data);
  assert.deepEqual(l1.objects, l2.objects);
  const other = new SyntheticDetDataset({ seed: 8, split: 'train', size: 24 }).get(5, [64, 80], null);
  const val = new SyntheticDetDataset({ seed: 7, split: 'val', size: 24 }).get(5, [64, 80], null);
  assert.notDeepEqual(other.image.data, a.image.data);
  assert.notDeepEqual(val.image.data, a.image.data);
});

test('synthetic det: masks are what is drawn (top object pixels carry its colour) and hidden objects are not placed', () => {
  const opts = { seed: 3, split: 'val' as const, size: 30, objects: [4, 6] as [number, number], minVisible: 0.6 };
  const d = new SyntheticDetDataset(opts);
  const H = 128;
  const W = 128;
  let checked = 0;
  for (let i = 0; i < d.length; i++) {
    const desc = d.describe(i);
    const s = d.get(i, [H, W], null);
    // Visible fraction of each object against the object alone (visible fractions are size independent;
    // 128 is the sampling raster, so the bound holds exactly there).
    desc.objects.forEach((o, k) => {
      const alone = sceneObjects({ ...desc, objects: [o] }, evalPlan([H, W], [H, W]))[0]!;
      const vis = s.objects[k]!;
      assert.ok(maskArea(vis.mask!) >= opts.minVisible * maskArea(alone.mask!) - 1e-9, `scene ${i} object ${k} is mostly hidden`);
    });
    const top = desc.objects[desc.objects.length - 1]!;
    if (top.shape.kind === 'checker' || top.shape.kind === 'grating') continue;
    const m = s.objects[s.objects.length - 1]!.mask!;
    const plane = H * W;
    for (let y = 1; y < H - 1; y++) {
      for (let x = 1; x < W - 1; x++) {
        const p = y * W + x;
        if (!(m[p] && m[p - 1] && m[p + 1] && m[p - W] && m[p + W])) continue;
        for (let c = 0; c < 3; c++) {
          assert.ok(Math.abs(s.image.data[c * plane + p]! - top.shape.color[c]!) < 0.2, `scene ${i}: pixel (${x},${y}) does not show the top object`);
        }
        checked++;
      }
    }
  }
  assert.ok(checked > 1000);
});

test('synthetic det: options (classes, counts, sizes) shape the scenes; COCO ground truth equals the evaluation view', () => {
  const small = new SyntheticDetDataset({ seed: 1, split: 'test', size: 12, classes: ['ring', 'checker'], objects: [2, 3], sizeRange: [0.05, 0.08], evalSize: [64, 96] });
  assert.deepEqual(small.classNames, ['ring', 'checker']);
  assert.deepEqual(small.categoryIds, [1, 2]);
  const gt = small.cocoGroundTruth();
  assert.equal(gt.images.length, 12);
  assert.deepEqual(gt.categories.map((c) => c.name), ['ring', 'checker']);
  for (let i = 0; i < small.length; i++) {
    const desc = small.describe(i);
    assert.ok(desc.objects.length >= 1 && desc.objects.length <= 3);
    for (const o of desc.objects) assert.ok(o.shape.size >= 0.05 && o.shape.size <= 0.08);
    const s = small.get(i, [64, 96], null);
    assert.deepEqual(s.scale, [1, 1]);
    const anns = gt.annotations.filter((a) => a.image_id === s.imageId);
    assert.equal(anns.length, s.objects.length);
    anns.forEach((a, k) => {
      assert.deepEqual(fromCocoBox(a.bbox), s.objects[k]!.box);
      assert.equal(a.area, maskArea(s.objects[k]!.mask!));
      assert.equal(a.category_id, small.categoryIds[s.objects[k]!.label]);
    });
    assert.equal(gt.images[i]!.width, 96);
    assert.equal(gt.images[i]!.height, 64);
  }
  assert.equal(new SyntheticDetDataset({ seed: 0, split: 'train', size: 1, classes: DET_SHAPE_CLASSES.length }).classNames.length, DET_SHAPE_CLASSES.length);
  assert.throws(() => new SyntheticDetDataset({ seed: 0, split: 'train', size: 4, classes: ['hexagon' as 'disc'] }), /classes must be distinct names from disc, ring/);
  assert.throws(() => new SyntheticDetDataset({ seed: 0, split: 'train', size: 4, objects: [3, 2] }), /objects must be \[min, max\]/);
  assert.throws(() => new SyntheticDetDataset({ seed: 0, split: 'train', size: 4, sizeRange: [0.1, 0.6] }), /sizeRange must satisfy/);
});
