/**
 * The resolution sweep on models whose accuracy is known exactly: a classifier
 * whose logits are a constant bias always answers one class, so on the balanced
 * synthetic set (label = index mod 10) its accuracy is exactly 10% at every size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../../src/graph/runtime.ts';
import { createVit } from '../../src/models/vit.ts';
import { SyntheticDataset } from '../../src/data/synthetic.ts';
import { parseResolutions, sweep } from '../../src/eval/sweep.ts';
import type { Weights } from '../../src/nn/params.ts';

test('sweep: a constant classifier scores exactly its class share at every resolution; bad sizes are reported', async () => {
  const model = createVit('vit-mini-p4', { depth: 1 });
  const weights: Weights = new Map();
  for (const info of model.paramInfos().values()) {
    const data = new Float32Array(info.shape.reduce((a, b) => a * b, 1));
    if (info.name === 'head.bias') data[3] = 5; // always class 3
    if (info.name.endsWith('norm.weight') || /norm\d\.weight$/.test(info.name)) data.fill(1);
    weights.set(info.name, { data, shape: info.shape });
  }
  const ds = new SyntheticDataset({ seed: 4, split: 'val', size: 50 });
  const rt = new Runtime();
  const rows = await sweep(rt, model, weights, ds, [16, 30, 32], { batch: 25 });
  assert.equal(rows.length, 3);
  for (const r of [rows[0]!, rows[2]!]) {
    assert.ok('accuracy' in r, JSON.stringify(r));
    assert.equal(r.n, 50);
    assert.equal(r.correct, 5, `class 3 is 5 of 50 samples at ${r.res} px`);
    assert.equal(r.accuracy, 10);
  }
  assert.ok('error' in rows[1]! && /28|32/.test(rows[1].error), `30 px is refused with the nearest sizes: ${JSON.stringify(rows[1])}`);
});

test('parseResolutions: ranges and lists, with clear errors', () => {
  assert.deepEqual(parseResolutions('32:64:16'), [32, 48, 64]);
  assert.deepEqual(parseResolutions('64, 96,128'), [64, 96, 128]);
  assert.throws(() => parseResolutions('64:32:16'), /start <= end/);
  assert.throws(() => parseResolutions('64,abc'), /positive integers/);
});

test('verdictOf: a difference counts only beyond twice the larger seed spread', async () => {
  const { verdictOf } = await import('../../src/eval/reproduce.ts');
  const names: [string, string] = ['A', 'B'];
  assert.equal(verdictOf({ mean: 50, spread: 1 }, { mean: 53, spread: 1 }, 3, names), 'B better (> 2 sd)');
  assert.equal(verdictOf({ mean: 50, spread: 2 }, { mean: 53, spread: 1 }, 3, names), 'within the spread');
  assert.equal(verdictOf({ mean: 60, spread: 0.5 }, { mean: 50, spread: 1 }, 3, names), 'A better (> 2 sd)');
  assert.equal(verdictOf({ mean: 60, spread: 0 }, { mean: 50, spread: 0 }, 1, names), 'one seed: no spread');
  assert.equal(verdictOf({ mean: 9.9, spread: 0.1 }, { mean: 11.3, spread: 0.1 }, 2, names, 10), 'both near chance');
});
