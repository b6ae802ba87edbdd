/**
 * EMA in the trainer (issue 16 item 3): timm ModelEmaV3 updates after every optimizer step,
 * validation of the EMA beside the raw weights, EMA weights in the checkpoint, and `--resume`
 * continuing it bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/index.ts';
import { createVit } from '../../src/models/vit.ts';
import type { Dataset } from '../../src/data/dataset.ts';
import { train, TrainError, type TrainOptions } from '../../src/train/trainer.ts';
import { loadCheckpoint } from '../../src/io/train-checkpoint.ts';
import { emaDecay } from '../../src/train/ema.ts';
import { readAnyCheckpoint } from '../../src/io/read-checkpoint.ts';
import { Rng, hashSeed } from '../../src/util/rng.ts';

const rt = new Runtime({ threads: 1 });
const model = createVit('vit-mini-p4', { embedDim: 16, depth: 2, numHeads: 2, imgSize: [16, 16], numClasses: 3 });
const spec = { family: model.family, config: model.config };
const data = (n: number): Dataset => ({
  length: n,
  numClasses: 3,
  classNames: ['a', 'b', 'c'],
  get(i, res) {
    const r = new Rng(hashSeed('ema-toy', i));
    return { image: { data: Float32Array.from({ length: 3 * res * res }, () => r.next() * 0.5 + (i % 3) * 0.25), channels: 3, height: res, width: res }, label: i % 3 };
  },
});
const tmp = (n: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `anyres-ema-${n}-`));
const quiet = { write: () => true };
const ema = { decay: 0.9, warmup: true };
const opts: TrainOptions = { epochs: 3, batch: 8, resolutions: [16], lr: 3e-3, seed: 3, ema };

test('the trainer EMA follows timm: step 1 copies, step 2 lerps with 1 - (1 - 2^(-2/3))', async () => {
  const one = await train({ rt, model, modelSpec: spec, train: data(24), out: tmp('one'), progressStream: quiet }, { ...opts, maxSteps: 1 });
  for (const [k, p] of one.state.params) assert.deepEqual(one.ema!.get(k), p, `after step 1 the EMA is the weights (${k})`);
  const two = await train({ rt, model, modelSpec: spec, train: data(24), out: tmp('two'), progressStream: quiet }, { ...opts, maxSteps: 2 });
  const d = emaDecay(2, ema);
  assert.ok(Math.abs(d - (1 - 2 ** (-2 / 3))) < 1e-15);
  let moved = 0;
  for (const [k, p2] of two.state.params) {
    const p1 = one.state.params.get(k)!;
    const e = two.ema!.get(k)!;
    for (let i = 0; i < p2.length; i++) {
      assert.ok(Math.abs(e[i]! - (p1[i]! + (1 - d) * (p2[i]! - p1[i]!))) < 1e-6, `${k}[${i}]`);
      if (p1[i] !== p2[i]) moved++;
    }
  }
  assert.ok(moved > 100, 'training moved the weights');
});

test('EMA is validated beside the raw weights, saved in the checkpoint, and resumes bit for bit', async () => {
  const full = tmp('full');
  const a = await train({ rt, model, modelSpec: spec, train: data(40), val: data(12), out: full, progressStream: quiet }, opts);
  assert.equal(a.steps, 15);
  assert.equal(a.valEma!.length, 1);
  const log = fs.readFileSync(path.join(full, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const vals = log.filter((r) => r.type === 'val');
  assert.equal(vals.length, 3);
  for (const v of vals) assert.ok(Array.isArray(v.ema_results) && typeof v.ema_mean_accuracy === 'number', JSON.stringify(v));
  const ck = loadCheckpoint(full);
  assert.deepEqual(ck.info.ema, { warmup: true, warmupGamma: 1, warmupPower: 2 / 3, minDecay: 0, updateAfterStep: 0, decay: 0.9 });
  let differs = 0;
  for (const [k, e] of a.ema!) {
    assert.deepEqual(ck.ema!.get(k), e, `ema.${k} saved`);
    if (e.some((x, i) => x !== a.state.params.get(k)![i])) differs++;
  }
  assert.ok(differs > 0, 'the EMA is not the raw weights');
  // Every command's checkpoint reader takes the raw parameters from the tensor file, not the EMA copy.
  const file = path.join(full, ck.info.tensors);
  const read = readAnyCheckpoint(file);
  assert.deepEqual([...read.tensors.keys()].sort(), [...a.state.params.keys()].sort());
  assert.deepEqual(read.tensors.get('pos_embed')!.data, a.state.params.get('pos_embed'));

  const dir = tmp('resumed');
  await train({ rt, model, modelSpec: spec, train: data(40), val: data(12), out: dir, progressStream: quiet }, { ...opts, maxSteps: 7 });
  const b = await train({ rt, model, modelSpec: spec, train: data(40), val: data(12), out: dir, resume: true, progressStream: quiet }, opts);
  assert.equal(b.steps, 15);
  for (const [k, e] of a.ema!) assert.deepEqual(b.ema!.get(k), e, `EMA ${k} differs after resume`);
  for (const [k, p] of a.state.params) assert.deepEqual(b.state.params.get(k), p);
  assert.deepEqual(b.valEma, a.valEma);
  // Resuming with other EMA options, or without, is refused with what to do.
  await assert.rejects(train({ rt, model, modelSpec: spec, train: data(40), out: dir, resume: true, progressStream: quiet }, { ...opts, ema: { decay: 0.5, warmup: true } }), TrainError);
  await assert.rejects(train({ rt, model, modelSpec: spec, train: data(40), out: dir, resume: true, progressStream: quiet }, { ...opts, ema: undefined }), /keeps an EMA \(decay 0.9\); pass the same --ema/);
});
