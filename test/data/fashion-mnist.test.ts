import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  FASHION_MNIST_CLASS_NAMES,
  FASHION_MNIST_DIR,
  FashionMnistDataset,
  fashionMnistAvailable,
  loadFashionMnist,
  type GreyImageSet,
} from '../../src/data/fashion-mnist.ts';
import { ScenesDataset } from '../../src/data/scenes.ts';
import { writeIdxFile, DataFormatError } from '../../src/data/idx.ts';
import { Rng } from '../../src/util/rng.ts';

/** A tiny fake item set: item k is a filled square whose size depends on its label. */
function fakeItems(n: number): GreyImageSet {
  const images = new Uint8Array(n * 28 * 28);
  const labels = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    labels[k] = k % 10;
    for (let y = 4; y < 24; y++) for (let x = 4; x < 24; x++) images[k * 784 + y * 28 + x] = 255;
  }
  return { images, labels, count: n, height: 28, width: 28 };
}

const installed = fashionMnistAvailable();

test('Fashion-MNIST loads from the Debian package location', { skip: installed ? false : `not installed in ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)` }, () => {
  const tr = loadFashionMnist('train');
  const te = loadFashionMnist('test');
  assert.equal(tr.count, 60000);
  assert.equal(te.count, 10000);
  assert.equal(tr.height, 28);
  const counts = new Array<number>(10).fill(0);
  for (const l of te.labels) counts[l]!++;
  assert.deepEqual(counts, new Array(10).fill(1000)); // the test split is balanced
  const ds = new FashionMnistDataset({ split: 'test', data: te });
  const s = ds.get(0, 56, new Rng(0));
  assert.equal(s.image.data.length, 3 * 56 * 56);
  assert.equal(s.label, te.labels[0]);
  assert.deepEqual(ds.classNames, FASHION_MNIST_CLASS_NAMES);
  // Grey replicated into three channels, values in [0,1].
  const n = 56 * 56;
  assert.deepEqual(s.image.data.subarray(0, n), s.image.data.subarray(n, 2 * n));
  assert.ok(s.image.data.every((v) => v >= 0 && v <= 1));
  // At native size the floats are the bytes / 255.
  const s28 = ds.get(0, 28, new Rng(0));
  assert.equal(s28.image.data[14 * 28 + 14], Math.fround(te.images[14 * 28 + 14]! / 255));
});

test('missing directory error names the directory, the files and the install command', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'anyres-fm-'));
  try {
    assert.throws(() => loadFashionMnist('train', dir), (e: unknown) => {
      const m = (e as Error).message;
      return m.includes(dir) && m.includes('train-images-idx3-ubyte') && m.includes('train-labels-idx1-ubyte') && m.includes('apt-get install dataset-fashion-mnist');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('raw (uncompressed) file names load, and mismatched counts are a DataFormatError', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'anyres-fm-'));
  try {
    const items = fakeItems(5);
    writeIdxFile(path.join(dir, 't10k-images-idx3-ubyte'), { dtype: 'uint8', dims: [5, 28, 28], data: items.images });
    writeIdxFile(path.join(dir, 't10k-labels-idx1-ubyte'), { dtype: 'uint8', dims: [5], data: items.labels });
    const te = loadFashionMnist('test', dir);
    assert.equal(te.count, 5);
    assert.deepEqual(Array.from(te.labels), [0, 1, 2, 3, 4]);
    writeIdxFile(path.join(dir, 't10k-labels-idx1-ubyte'), { dtype: 'uint8', dims: [4], data: items.labels.subarray(0, 4) });
    assert.throws(() => loadFashionMnist('test', dir), DataFormatError);
    writeIdxFile(path.join(dir, 't10k-labels-idx1-ubyte'), { dtype: 'uint8', dims: [5], data: Uint8Array.from([0, 1, 2, 3, 10]) });
    assert.throws(() => loadFashionMnist('test', dir), DataFormatError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ScenesDataset: deterministic, item at 35-50% of the field, zoom vs canvas geometry', () => {
  const items = installed ? loadFashionMnist('test') : fakeItems(50);
  const ds = new ScenesDataset({ items, seed: 3, split: 'train', size: 200 });
  const again = new ScenesDataset({ items, seed: 3, split: 'train', size: 200 });
  assert.deepEqual(ds.render(11, { res: 48 }).image, again.render(11, { res: 48 }).image);
  let withDistractor = 0;
  for (let i = 0; i < 200; i++) {
    const d = ds.describe(i);
    assert.ok(d.main.size >= 0.35 && d.main.size <= 0.5);
    assert.ok(d.main.x >= 0 && d.main.x + d.main.size <= 1 && d.main.y >= 0 && d.main.y + d.main.size <= 1);
    assert.equal(d.label, items.labels[d.main.item]);
    if (d.distractor) {
      withDistractor++;
      assert.ok(d.distractor.size < d.main.size);
    }
  }
  assert.ok(withDistractor > 70 && withDistractor < 130, `${withDistractor}/200 scenes with a distractor`);
  // Geometry: a full-square fake item so the box is measurable.
  const sq = new ScenesDataset({ items: fakeItems(10), seed: 1, split: 'val', size: 10 });
  const only = { background: false, clutter: false, noise: false };
  const box = (img: Float32Array, W: number): number => {
    let xs = 0;
    for (let x = 0; x < W; x++) {
      let any = false;
      for (let y = 0; y < W; y++) if (img[y * W + x]! + img[W * W + y * W + x]! + img[2 * W * W + y * W + x]! > 0.3) any = true;
      if (any) xs++;
    }
    return xs;
  };
  const w1 = box(sq.render(0, { res: 64, layers: only }).image, 64);
  const wz = box(sq.render(0, { res: 128, mode: 'zoom', layers: only }).image, 128);
  const wc = box(sq.render(0, { res: 128, mode: 'canvas', baseRes: 64, layers: only }).image, 128);
  assert.ok(w1 > 10);
  assert.ok(Math.abs(wz - 2 * w1) <= 3, `zoom ${wz} vs 2*${w1}`);
  assert.ok(Math.abs(wc - w1) <= 1, `canvas ${wc} vs ${w1}`);
});
