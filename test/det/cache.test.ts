/**
 * The rendered-scene cache: the deterministic view is rendered once and handed out again with the
 * same pixels and boxes; augmented views pass through; masks are dropped only when asked.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SyntheticDetDataset } from '../../src/det/data/synthetic.ts';
import { cachedDetDataset } from '../../src/det/data/cache.ts';
import { Rng } from '../../src/util/rng.ts';

const inner = () => new SyntheticDetDataset({ seed: 3, split: 'train', size: 10, classes: 5, evalSize: [48, 64] });

test('deterministic views are rendered once, bit-identical to the uncached dataset', async () => {
  const ref = inner();
  const ds = cachedDetDataset(inner());
  const a = await ds.get(2, [48, 64], null);
  const b = await ds.get(2, [48, 64], null);
  assert.equal(a, b, 'the second request is the cached sample');
  assert.deepEqual(ds.stats, { misses: 1, hits: 1 });
  const r = await ref.get(2, [48, 64], null);
  assert.deepEqual(a.image.data, r.image.data);
  assert.deepEqual(a.objects, r.objects);
  assert.ok(a.objects.some((o) => o.mask !== undefined), 'masks kept by default');
  // Another size is another entry; another index too.
  await ds.get(2, [32, 32], null);
  await ds.get(3, [48, 64], null);
  assert.deepEqual(ds.stats, { misses: 3, hits: 1 });
  assert.deepEqual(ds.cocoGroundTruth(), ref.cocoGroundTruth());
});

test('augmented views are never cached; dropMasks keeps boxes and labels only', async () => {
  const lsj = new SyntheticDetDataset({ seed: 3, split: 'train', size: 10, classes: 5, evalSize: [64, 64], lsj: { minScale: 0.5, maxScale: 1.5 } });
  const ds = cachedDetDataset(lsj);
  const a = await ds.get(1, [64, 64], new Rng(1));
  const b = await ds.get(1, [64, 64], new Rng(2));
  assert.notDeepEqual(a.image.data, b.image.data);
  assert.deepEqual(ds.stats, { misses: 0, hits: 0 });
  const boxes = cachedDetDataset(inner(), { dropMasks: true });
  const s = await boxes.get(4, [48, 64], null);
  const r = await inner().get(4, [48, 64], null);
  assert.ok(s.objects.length > 0 && s.objects.every((o) => o.mask === undefined));
  assert.deepEqual(s.objects.map((o) => [o.label, o.box]), r.objects.map((o) => [o.label, o.box]));
});
