import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Loader, TransformedDataset } from '../../src/data/loader.ts';
import { SyntheticDataset } from '../../src/data/synthetic.ts';
import { compose, horizontalFlip, randomResizedCrop } from '../../src/data/transforms.ts';

const ds = new SyntheticDataset({ seed: 0, split: 'train', size: 22, numClasses: 10 });

async function collect(l: Loader, epoch: number, start = 0) {
  const out = [];
  for await (const b of l.epoch(epoch, start)) out.push(b);
  return out;
}

test('multi-resolution batches: shapes, descending order, same samples at every resolution', async () => {
  const l = new Loader(ds, { batchSize: 8, resolutions: [32, 64, 48], seed: 1 });
  assert.deepEqual(l.resolutions, [64, 48, 32]);
  const bs = await collect(l, 0);
  assert.equal(bs.length, 3); // 22 = 8 + 8 + 6
  assert.deepEqual(bs[2]!.batches[0]!.shape, [6, 3, 64, 64]);
  for (const b of bs) {
    assert.deepEqual(b.batches.map((x) => x.shape[2]), [64, 48, 32]);
    for (const x of b.batches) {
      assert.equal(x.x.length, x.shape[0] * 3 * x.shape[2] * x.shape[3]);
      assert.deepEqual(Array.from(x.labels), Array.from(b.indices, (i) => i % 10));
    }
    // Batch content equals the dataset's own render of those indices.
    const r = ds.get(b.indices[0]!, 32).image.data;
    assert.deepEqual(b.batches[2]!.x.subarray(0, r.length), r);
  }
  // Every sample exactly once per epoch; order differs between epochs.
  const all = bs.flatMap((b) => Array.from(b.indices)).sort((a, b) => a - b);
  assert.deepEqual(all, [...Array(22).keys()]);
  const e1 = await collect(l, 1);
  assert.notDeepEqual(Array.from(e1[0]!.indices), Array.from(bs[0]!.indices));
  const dl = new Loader(ds, { batchSize: 8, resolutions: [32], seed: 1, dropLast: true });
  assert.equal((await collect(dl, 0)).length, 2);
});

test('determinism: same seed same batches, with or without prefetch, and resume from a step', async () => {
  const aug = new TransformedDataset(ds, compose(randomResizedCrop({ scale: [0.35, 1] }), horizontalFlip()), () => 64);
  const mk = (prefetch: boolean, seed = 3) => new Loader(aug, { batchSize: 5, resolutions: [40, 24], seed, prefetch });
  const a = await collect(mk(true), 2);
  const b = await collect(mk(false), 2);
  assert.deepEqual(a.map((x) => x.batches.map((y) => y.x)), b.map((x) => x.batches.map((y) => y.x)));
  const resumed = await collect(mk(true), 2, 3);
  assert.deepEqual(resumed.map((x) => x.batches[0]!.x), a.slice(3).map((x) => x.batches[0]!.x));
  const c = await collect(mk(true, 4), 2);
  assert.notDeepEqual(c[0]!.batches[0]!.x, a[0]!.batches[0]!.x);
});

test('sepAug: shared augmentation uses one stream per sample, separate uses one per resolution', () => {
  const shared = new Loader(ds, { batchSize: 4, resolutions: [32, 16], seed: 0, sepAug: false });
  const sep = new Loader(ds, { batchSize: 4, resolutions: [32, 16], seed: 0, sepAug: true });
  assert.equal(shared.sampleRng(0, 5, 0).nextU32(), shared.sampleRng(0, 5, 1).nextU32());
  assert.notEqual(sep.sampleRng(0, 5, 0).nextU32(), sep.sampleRng(0, 5, 1).nextU32());
  assert.throws(() => new Loader(ds, { batchSize: 4, resolutions: [], seed: 0 }), RangeError);
  assert.throws(() => new Loader(ds, { batchSize: 4, resolutions: [32, 32], seed: 0 }), RangeError);
});

test('shared augmentation: with a resolution-independent source, the two resolutions show the same crop', async () => {
  const aug = new TransformedDataset(ds, compose(randomResizedCrop({ scale: [0.2, 0.5] }), horizontalFlip()), () => 64);
  const l = new Loader(aug, { batchSize: 2, resolutions: [64, 32], seed: 7 });
  const [b] = await collect(l, 0);
  const hi = b!.batches[0]!.x;
  const lo = b!.batches[1]!.x;
  // Downsample the 64 px crop 2x and compare with the 32 px crop of the same box.
  let diff = 0;
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) {
        const o = c * 4096;
        const d = (hi[o + 2 * y * 64 + 2 * x]! + hi[o + 2 * y * 64 + 2 * x + 1]! + hi[o + (2 * y + 1) * 64 + 2 * x]! + hi[o + (2 * y + 1) * 64 + 2 * x + 1]!) / 4;
        diff += Math.abs(d - lo[c * 1024 + y * 32 + x]!);
      }
  diff /= 3 * 1024;
  assert.ok(diff < 0.05, `shared-aug crops differ by ${diff}`);
});
