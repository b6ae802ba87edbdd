import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DetLoader } from '../../src/det/data/loader.ts';
import { SyntheticDetDataset } from '../../src/det/data/synthetic.ts';

const ds = new SyntheticDetDataset({ seed: 4, split: 'train', size: 11 });

test('det loader: NCHW batches with normalisation, per-image objects, every sample once per epoch', async () => {
  const mean = [0.5, 0.4, 0.3];
  const std = [0.2, 0.25, 0.5];
  const loader = new DetLoader(ds, { batchSize: 4, size: [40, 56], seed: 1, mean, std, augment: false });
  assert.equal(loader.stepsPerEpoch, 3);
  const seen: number[] = [];
  for await (const b of loader.epoch(0)) {
    const B = b.indices.length;
    assert.deepEqual(b.shape, [B, 3, 40, 56]);
    assert.equal(b.x.length, B * 3 * 40 * 56);
    assert.equal(b.targets.length, B);
    for (let k = 0; k < B; k++) {
      const idx = b.indices[k]!;
      seen.push(idx);
      const s = ds.get(idx, [40, 56], null);
      assert.deepEqual(b.targets[k]!.objects, s.objects);
      assert.equal(b.targets[k]!.imageId, s.imageId);
      for (const p of [0, 777, 2239]) {
        for (let c = 0; c < 3; c++) {
          const want = (s.image.data[c * 2240 + p]! - mean[c]!) / std[c]!;
          assert.ok(Math.abs(b.x[(k * 3 + c) * 2240 + p]! - want) < 1e-5);
        }
      }
    }
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [...Array(11).keys()]);
  assert.notDeepEqual(seen, [...Array(11).keys()], 'shuffled');
});

test('det loader: batches are pure functions of (seed, epoch, step), with or without prefetch; epochs differ', async () => {
  const a = new DetLoader(ds, { batchSize: 3, size: [32, 32], seed: 9 });
  const b = new DetLoader(ds, { batchSize: 3, size: [32, 32], seed: 9, prefetch: false });
  const fromA = [];
  for await (const x of a.epoch(1, 1)) fromA.push(x);
  const direct = await b.batch(1, 2);
  assert.deepEqual(fromA[1]!.x, direct.x);
  assert.deepEqual(fromA[1]!.targets, direct.targets);
  const e0 = await a.batch(0, 0);
  const e1 = await a.batch(1, 0);
  assert.notDeepEqual(e0.x, e1.x);
  assert.throws(() => new DetLoader(ds, { batchSize: 2, size: [32, 32], seed: 0, std: [1, 0, 1] }), /std must be 3 finite numbers > 0/);
  assert.throws(() => new DetLoader(ds, { batchSize: 0, size: [32, 32], seed: 0 }), /batchSize must be a positive integer/);
  await assert.rejects(() => a.batch(0, 4), /step 4 out of range \[0, 4\)/);
});
