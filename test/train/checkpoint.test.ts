import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/index.ts';
import { createVit } from '../../src/models/vit.ts';
import type { Dataset } from '../../src/data/dataset.ts';
import { train, TrainError, type TrainOptions } from '../../src/train/trainer.ts';
import { loadCheckpoint, CheckpointError } from '../../src/io/train-checkpoint.ts';
import { Rng, hashSeed } from '../../src/util/rng.ts';

const rt = new Runtime({ threads: 1 });
// A tiny ViT (16 px, 4 px patches, 2 blocks of width 16) keeps every run well under a second per epoch.
const model = createVit('vit-mini-p4', { embedDim: 16, depth: 2, numHeads: 2, imgSize: [16, 16], numClasses: 3, dropPathRate: 0.1 });
const spec = { family: model.family, config: model.config };

/** Random images with a class-dependent mean; after `nanAfter` image fetches every image holds a NaN. */
function toyData(n: number, nanAfter = Infinity): Dataset {
  let fetched = 0;
  return {
    length: n,
    numClasses: 3,
    classNames: ['a', 'b', 'c'],
    get(i, res) {
      const r = new Rng(hashSeed('toy', i));
      const data = Float32Array.from({ length: 3 * res * res }, () => r.next() * 0.5 + (i % 3) * 0.25);
      if (++fetched > nanAfter) data[0] = NaN;
      return { image: { data, channels: 3, height: res, width: res }, label: i % 3 };
    },
  };
}

const opts: TrainOptions = { epochs: 3, batch: 8, resolutions: [16], lr: 3e-3, warmupSteps: 2, seed: 7, dropPath: 0.1, mixup: { mixupAlpha: 0.8, cutmixAlpha: 1 }, labelSmoothing: 0.1 };
const tmp = (name: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `anyres-${name}-`));
const quiet = { write: () => true };

test('resume after an interruption ends with exactly the weights of an uninterrupted run', async () => {
  const a = await train({ rt, model, modelSpec: spec, train: toyData(40), out: tmp('full'), progressStream: quiet }, opts);
  assert.equal(a.steps, 15);
  const dir = tmp('resumed');
  const part = await train({ rt, model, modelSpec: spec, train: toyData(40), out: dir, progressStream: quiet }, { ...opts, maxSteps: 7 });
  assert.equal(part.interrupted, true);
  assert.equal(loadCheckpoint(dir).info.step, 7);
  // An abort (what SIGINT triggers) also saves and stops cleanly.
  const ac = new AbortController();
  ac.abort();
  const stopped = await train({ rt, model, modelSpec: spec, train: toyData(40), out: dir, resume: true, signal: ac.signal, progressStream: quiet }, opts);
  assert.equal(stopped.interrupted, true);
  assert.equal(stopped.steps, 7);
  const b = await train({ rt, model, modelSpec: spec, train: toyData(40), out: dir, resume: true, progressStream: quiet }, opts);
  assert.equal(b.steps, 15);
  for (const [k, v] of a.state.params) assert.deepEqual(b.state.params.get(k), v, `parameter ${k} differs after resume`);
  for (const [k, v] of a.state.m) assert.deepEqual(b.state.m.get(k), v, `moment m.${k} differs after resume`);
  // and training moved the weights at all
  const c = loadCheckpoint(dir);
  assert.equal(c.info.epoch, 3);
});

test('a truncated or modified checkpoint is rejected with a clear error', async () => {
  const dir = tmp('corrupt');
  await train({ rt, model, modelSpec: spec, train: toyData(16), out: dir, progressStream: quiet }, { ...opts, epochs: 1 });
  const info = loadCheckpoint(dir).info;
  const tfile = path.join(dir, info.tensors);
  const bytes = fs.readFileSync(tfile);
  fs.writeFileSync(tfile, bytes.subarray(0, bytes.length - 100));
  assert.throws(() => loadCheckpoint(dir), (e: Error) => e instanceof CheckpointError && /sha256 .* does not match .*truncated or modified/.test(e.message));
  await assert.rejects(train({ rt, model, modelSpec: spec, train: toyData(16), out: dir, resume: true, progressStream: quiet }, opts), /truncated or modified/);
  fs.writeFileSync(tfile, bytes);
  fs.writeFileSync(path.join(dir, 'last.json'), fs.readFileSync(path.join(dir, 'last.json'), 'utf8').slice(0, 50));
  assert.throws(() => loadCheckpoint(dir), /not valid JSON.*corrupted or truncated/);
  assert.throws(() => loadCheckpoint(tmp('empty')), /does not exist/);
});

test('a NaN loss stops with an error naming the step and leaves the last good checkpoint intact', async () => {
  const dir = tmp('nan');
  // batch 8: the first 4 batches are clean, every later image holds a NaN.
  const ds = toyData(24, 32);
  const o = { ...opts, mixup: undefined, checkpointEverySteps: 1 };
  await assert.rejects(
    train({ rt, model, modelSpec: spec, train: ds, out: dir, progressStream: quiet }, o),
    (e: Error) => e instanceof TrainError && /loss is NaN at step \d+ .*last good checkpoint/.test(e.message),
  );
  const ck = loadCheckpoint(dir);
  for (const v of ck.state.params.values()) assert.ok(v.every(Number.isFinite), 'checkpointed weights are finite');
  const log = fs.readFileSync(path.join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number });
  const err = log.find((l) => l.type === 'error')!;
  assert.equal(ck.info.step, err.step - 1, 'the checkpoint is the state right before the failing step');
});
