import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../../src/graph/index.ts';
import { createVit } from '../../src/models/vit.ts';
import { compileEval, compileTrainStep } from '../../src/train/step.ts';
import { initState } from '../../src/train/state.ts';
import { crossEntropy } from '../../src/fixture/kinds/train.ts';
import { Rng } from '../../src/util/rng.ts';

const rt = new Runtime({ threads: 1 });

test('multi-resolution step: with alpha 0 the loss is the mean of the per-resolution cross-entropies', async () => {
  const model = createVit('resformer-mini-p4', { embedDim: 24, depth: 2, numHeads: 2, numClasses: 5 });
  const state = initState(model.paramInfos(), new Rng(1));
  const r = new Rng(2);
  const res = [32, 24, 16];
  const x = res.map((s) => Float32Array.from({ length: 4 * 3 * s * s }, () => r.normal()));
  const labels = [0, 3, 1, 4];
  const step = compileTrainStep(rt, model, { batch: 4, resolutions: [16, 32, 24], multires: { alpha: 0 } });
  assert.deepEqual(step.resolutions.map((p) => p[0]), res, 'resolutions sorted descending');
  const out = await step.run(state, { x, labels, lr: 1e-3 });
  let mean = 0;
  for (const [i, s] of res.entries()) mean += crossEntropy(await compileEval(rt, model, { batch: 4, res: s }).run(state.params, x[i]!), labels, 5) / 3;
  assert.ok(Math.abs(out.loss - mean) < 1e-5, `${out.loss} vs ${mean}`);
  // with alpha > 0 the scale-consistency term adds a positive amount
  const withKd = await compileTrainStep(rt, model, { batch: 4, resolutions: res, multires: { alpha: 1 } }).run(state, { x, labels, lr: 1e-3 });
  assert.ok(withKd.loss > out.loss + 1e-4);
  assert.equal(out.state.step, 1);
  assert.throws(() => compileTrainStep(rt, model, { batch: 4, resolutions: res }), /need multires/);
  assert.throws(() => compileTrainStep(rt, model, { batch: 4, res: 30 }), /30/);
});

test('drop path: masks come from the given rng (same seed, same update; different seed, different update)', async () => {
  const model = createVit('vit-mini-p4', { embedDim: 16, depth: 2, numHeads: 2, imgSize: [16, 16], numClasses: 3, dropPathRate: 0.5 });
  const state = initState(model.paramInfos(), new Rng(1));
  const x = [Float32Array.from({ length: 8 * 3 * 16 * 16 }, (_, i) => Math.sin(i))];
  const labels = [0, 1, 2, 0, 1, 2, 0, 1];
  const step = compileTrainStep(rt, model, { batch: 8, res: 16, dropPath: 0.5 });
  assert.deepEqual(step.dropRates, [0, 0.5]);
  const a = await step.run(state, { x, labels, lr: 1e-3, rng: new Rng(5) });
  const b = await step.run(state, { x, labels, lr: 1e-3, rng: new Rng(5) });
  const c = await step.run(state, { x, labels, lr: 1e-3, rng: new Rng(6) });
  assert.equal(a.loss, b.loss);
  assert.notEqual(a.loss, c.loss);
  await assert.rejects(step.run(state, { x, labels, lr: 1e-3 }), /pass the seeded rng/);
  assert.throws(() => compileTrainStep(rt, model, { batch: 8, res: 16, dropPath: 0.2 }), /dropPathRate 0.5/);
});
