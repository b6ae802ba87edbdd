/** The one `--data` parser (src/data/spec.ts), used by train, pretrain, eval, reproduce and export. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { data } from '../../src/index.ts';
import { datasets } from '../../src/eval/reproduce.ts';

const { clipFramesOf, dataSpecClassNames, dataSplits, parseDataSpec } = data;

test('parseDataSpec: every spec, with its argument', () => {
  assert.deepEqual(parseDataSpec('synthetic'), { kind: 'synthetic', spec: 'synthetic' });
  assert.deepEqual(parseDataSpec('synthetic-clips'), { kind: 'synthetic-clips', frames: 8, spec: 'synthetic-clips' });
  assert.deepEqual(parseDataSpec('synthetic-clips:4'), { kind: 'synthetic-clips', frames: 4, spec: 'synthetic-clips:4' });
  assert.deepEqual(parseDataSpec('fashion-mnist:/d'), { kind: 'fashion-mnist', dir: '/d', spec: 'fashion-mnist:/d' });
  assert.deepEqual(parseDataSpec('fashion-mnist-scenes:/d'), { kind: 'fashion-mnist-scenes', dir: '/d', spec: 'fashion-mnist-scenes:/d' });
  assert.equal(parseDataSpec('fashion-mnist-scenes').kind, 'fashion-mnist-scenes');
  assert.deepEqual(parseDataSpec('folder:imgs'), { kind: 'folder', root: 'imgs', spec: 'folder:imgs' });
  assert.throws(() => parseDataSpec('imagenet'), /--data 'imagenet' is not one of: synthetic, synthetic-clips\[:frames\], fashion-mnist\[:dir\], fashion-mnist-scenes\[:dir\], folder:<path>/);
  assert.throws(() => parseDataSpec('synthetic-clips:0'), /frame count after 'synthetic-clips:' must be a positive integer/);
  assert.equal(clipFramesOf('synthetic'), undefined);
  assert.equal(clipFramesOf('synthetic-clips:3'), 3);
});

test('dataSplits builds the classification sets; class names follow the spec', () => {
  const s = dataSplits('synthetic', { seed: 0, trainSize: 7, valSize: 3 });
  assert.deepEqual([s.train.length, s.val?.length, s.spec], [7, 3, 'synthetic']);
  const c = dataSplits('synthetic-clips:2', { seed: 0, trainSize: 2, valSize: 1 });
  assert.equal(c.train.frames, 2);
  assert.throws(() => dataSplits('fashion-mnist-scenes:/nonexistent'), /no Fashion-MNIST IDX files in \/nonexistent .*fashion-mnist-scenes:<dir>/);
  assert.deepEqual(dataSpecClassNames('synthetic', 3), dataSplits('synthetic', { seed: 0, trainSize: 1 }).train.classNames?.slice(0, 3));
  assert.equal(dataSpecClassNames('fashion-mnist', 10)?.length, 10);
  assert.deepEqual(dataSpecClassNames('fashion-mnist-scenes', 10), dataSpecClassNames('fashion-mnist', 10));
  assert.equal(dataSpecClassNames('folder:x', 3), null);
  assert.equal(dataSpecClassNames('nonsense', 3), null);
});

test('reproduce takes the same specs and names the one it cannot use (plain 28 px images)', () => {
  const plan = { trainSize: 4, valSize: 2 } as Parameters<typeof datasets>[1];
  assert.equal(datasets('synthetic', plan).train.length, 4);
  assert.throws(() => datasets('fashion-mnist:/d', plan), /use --data fashion-mnist-scenes:\/d \(Fashion-MNIST items in textured scenes\)/);
  assert.throws(() => datasets('imagenet', plan), /is not one of/);
});
