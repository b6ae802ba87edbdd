import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, unlinkSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { readCocoFolder, writeCocoFolder } from '../../src/det/data/coco-format.ts';
import { SyntheticDetDataset } from '../../src/det/data/synthetic.ts';
import { maskArea, maskBounds } from '../../src/det/data/bitmask.ts';
import type { DetDataset, DetSample } from '../../src/det/types.ts';
import { Rng } from '../../src/util/rng.ts';

/** Synthetic scenes with every object of label 0 marked crowd, so iscrowd goes through the files. */
function withCrowd(base: SyntheticDetDataset): DetDataset {
  return {
    length: base.length,
    classNames: base.classNames,
    categoryIds: base.categoryIds,
    get: (i, size, rng): DetSample => {
      const s = base.get(i, size, rng);
      return { ...s, objects: s.objects.map((o) => ({ ...o, iscrowd: o.label === 0 })) };
    },
    cocoGroundTruth: () => base.cocoGroundTruth(),
  };
}

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'anyres-coco-'));
}

test('COCO write -> read round trip through files: images, boxes, RLE masks, categories, iscrowd', async () => {
  const dir = tmp();
  try {
    const syn = new SyntheticDetDataset({ seed: 5, split: 'val', size: 6, evalSize: [64, 80] });
    const src = withCrowd(syn);
    const size: [number, number] = [64, 80];
    const written = await writeCocoFolder(dir, src, size, { progress: false });
    assert.deepEqual(readdirSync(path.join(dir, 'images')).sort(), ['000001.png', '000002.png', '000003.png', '000004.png', '000005.png', '000006.png']);
    assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp files left behind');
    const ds = await readCocoFolder(dir);
    assert.equal(ds.length, 6);
    assert.deepEqual(ds.classNames, syn.classNames);
    assert.deepEqual(ds.categoryIds, syn.categoryIds);
    assert.deepEqual(ds.cocoGroundTruth().annotations, written.annotations);
    let crowd = 0;
    for (let i = 0; i < ds.length; i++) {
      const want = src.get(i, size, null) as DetSample;
      const got = await ds.get(i, size, null);
      assert.equal(got.imageId, want.imageId);
      assert.deepEqual(got.scale, [1, 1]);
      assert.deepEqual(got.originalSize, [64, 80]);
      let maxDiff = 0;
      for (let p = 0; p < got.image.data.length; p++) maxDiff = Math.max(maxDiff, Math.abs(got.image.data[p]! - want.image.data[p]!));
      assert.ok(maxDiff <= 0.5 / 255 + 1e-6, `image ${i}: PNG round trip differs by ${maxDiff}`);
      assert.equal(got.objects.length, want.objects.length);
      got.objects.forEach((o, k) => {
        const w = want.objects[k]!;
        assert.equal(o.label, w.label);
        assert.deepEqual(o.box, w.box);
        assert.deepEqual(o.mask, w.mask);
        assert.equal(o.iscrowd, w.iscrowd);
        if (o.iscrowd) crowd++;
      });
    }
    assert.ok(crowd > 0, 'some crowd objects went through');
    const ann = written.annotations[0]!;
    assert.ok(ann.segmentation && !Array.isArray(ann.segmentation) && typeof ann.segmentation.counts === 'string', 'masks written as compressed RLE');
    // A resized, jittered view of a read image keeps boxes inside and consistent with masks.
    const j = await ds.get(2, [48, 48], new Rng(3));
    for (const o of j.objects) {
      assert.deepEqual(o.box, maskBounds(o.mask!, 48, 48));
      assert.ok(o.box[2] <= 48 && o.box[3] <= 48);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function handWritten(dir: string, json: unknown): Promise<void> {
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toFile(path.join(dir, 'a.png'));
  writeFileSync(path.join(dir, 'instances.json'), JSON.stringify(json));
}

const base = (): { images: object[]; annotations: Record<string, unknown>[]; categories: object[] } => ({
  images: [{ id: 7, width: 40, height: 30, file_name: 'a.png' }],
  annotations: [
    { id: 1, image_id: 7, category_id: 12, bbox: [10, 5, 20, 10], area: 150, iscrowd: 0, segmentation: [[10, 5, 30, 5, 30, 15, 10, 15]] },
    { id: 2, image_id: 7, category_id: 3, bbox: [0, 0, 4, 4], iscrowd: 1 },
  ],
  categories: [{ id: 12, name: 'late' }, { id: 3, name: 'early' }],
});

test('COCO reader: images next to instances.json, polygons decode, labels contiguous by category id', async () => {
  const dir = tmp();
  try {
    await handWritten(dir, base());
    const ds = await readCocoFolder(dir);
    assert.deepEqual(ds.classNames, ['early', 'late']);
    assert.deepEqual(ds.categoryIds, [3, 12]);
    const s = await ds.get(0, [60, 60], null);
    // Long side 40 -> 60: scale 1.5, padded below.
    assert.deepEqual(s.scale, [1.5, 1.5]);
    assert.equal(s.imageId, 7);
    const poly = s.objects.find((o) => o.label === 1)!;
    assert.ok(poly.mask, 'the polygon was rasterised');
    const b = poly.box;
    [15, 7.5, 45, 22.5].forEach((v, k) => assert.ok(Math.abs(b[k]! - v) <= 1.5, `polygon box ${b}`));
    // 20x10 polygon scaled by 1.5 per axis.
    assert.ok(Math.abs(maskArea(poly.mask!) - 200 * 2.25) < 60, `mask area ${maskArea(poly.mask!)}`);
    const crowd = s.objects.find((o) => o.label === 0)!;
    assert.equal(crowd.iscrowd, true);
    assert.deepEqual(crowd.box, [0, 0, 6, 6]);
    assert.ok(Math.abs(s.image.data[60 * 10 + 10]! - 10 / 255) < 0.01 && s.image.data[60 * 50 + 10] === Math.fround(128 / 255), 'image at the top, padding below');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('COCO reader: clear errors naming the file and the bad field', async () => {
  const dir = tmp();
  const ann = (): string => path.join(dir, 'instances.json');
  try {
    await handWritten(dir, base());
    const good = readFileSync(ann(), 'utf8');
    writeFileSync(ann(), good.slice(0, good.length - 40));
    await assert.rejects(readCocoFolder(dir), (e: Error) => e.message.includes(ann()) && /not valid JSON.*truncated/.test(e.message));
    const bad = async (mutate: (j: ReturnType<typeof base>) => void, re: RegExp): Promise<void> => {
      const j = base();
      mutate(j);
      writeFileSync(ann(), JSON.stringify(j));
      await assert.rejects(readCocoFolder(dir), (e: Error) => {
        assert.match(e.message, re);
        assert.ok(e.message.startsWith(ann()), `error names the file: ${e.message}`);
        return true;
      });
    };
    await bad((j) => { j.annotations[0]!['image_id'] = 99; }, /annotations\[0\] \(id 1\): image_id 99 is not the id of any entry in images/);
    await bad((j) => { j.annotations[1]!['category_id'] = 4; }, /annotations\[1\] \(id 2\): category_id 4 is not one of the categories \[12, 3\]/);
    await bad((j) => { j.annotations[0]!['bbox'] = [10, 5, -2, 10]; }, /bbox \[10, 5, -2, 10\] has a negative coordinate or size/);
    await bad((j) => { j.annotations[0]!['bbox'] = [10, 5, 2]; }, /bbox must be \[x, y, width, height\]/);
    await bad((j) => { delete j.annotations[0]!['category_id']; }, /annotations\[0\]: missing field 'category_id'/);
    await bad((j) => { j.annotations[0]!['segmentation'] = { size: [10, 10], counts: [100] }; }, /RLE segmentation size must be \[height, width\] = \[30, 40\]/);
    await bad((j) => { j.annotations[0]!['segmentation'] = { size: [30, 40], counts: 'PP2' }; }, /RLE counts sum to \d+, expected height\*width = 1200/);
    await bad((j) => { j.annotations[0]!['segmentation'] = [[1, 2, 3]]; }, /segmentation\[0\] must be a polygon/);
    await bad((j) => { j.annotations[1]!['iscrowd'] = 2; }, /iscrowd must be 0 or 1/);
    await bad((j) => { j.categories.push({ id: 3, name: 'again' }); }, /categories\[2\]: duplicate category id 3/);
    await bad((j) => { j.images = [{ id: 7, width: 40, height: 30, file_name: 'missing.png' }]; }, /images\[0\] \(id 7\): image file 'missing.png' not found in /);
    await bad((j) => { j.images = [{ id: 7, width: 0, height: 30, file_name: 'a.png' }]; }, /images\[0\]: 'width' must be an integer >= 1, got 0/);
    // A file listed in the JSON that disappears later, or lies about its size, fails at decode with its name.
    const j = base();
    j.images = [{ id: 7, width: 41, height: 30, file_name: 'a.png' }];
    j.annotations = [];
    writeFileSync(ann(), JSON.stringify(j));
    const ds = await readCocoFolder(dir);
    await assert.rejects(ds.get(0, [32, 32], null), /image id 7 says 30x41 \(height x width\) but .*a\.png decodes to 30x40/);
    unlinkSync(path.join(dir, 'a.png'));
    await assert.rejects(ds.get(0, [32, 32], null), /cannot decode .*a\.png \(image id 7\)/);
    unlinkSync(ann());
    await assert.rejects(readCocoFolder(dir), /cannot read .*instances\.json/);
    await assert.rejects(readCocoFolder(path.join(dir, 'nope')), /is not a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
