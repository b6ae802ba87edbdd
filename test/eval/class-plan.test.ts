import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../src/eval/reproduce.ts';
import { plateauExit } from '../../bench/class-probe.ts';

test('default plan: every Hiera row has 3+ seeds, the report\'s seeds are not the probe\'s, one recipe for scratch and MAE trunk', () => {
  const p = plan(false);
  assert.ok(p.abswin.seeds.length >= 3);
  assert.ok(p.resformer.seeds.length >= 3, 'paired intervals need 3+ seeds');
  assert.ok([...p.abswin.seeds, ...p.resformer.seeds, ...p.mae.seeds].every((s) => s < 100), 'seeds 100+ are the probe\'s');
  const { steps: _s, ...mae } = p.mae.train;
  const { steps: _t, ...scratch } = p.abswin.train;
  assert.deepEqual(mae, scratch);
  // The probed recipe's budget: same images as the plan it replaced (1500 x 16).
  assert.equal(p.abswin.train.steps * p.abswin.train.batch, 24000);
  assert.deepEqual(plan(false, [5, 6, 7]).abswin.seeds, [5, 6, 7]);
});

test('plateauExit: the first step whose trailing mean loss is below chance − margin', () => {
  const chance = Math.log(10);
  const flat = Array.from({ length: 100 }, (_, i) => ({ step: i + 1, loss: chance }));
  assert.equal(plateauExit(flat, chance), null);
  // Drops to chance − 0.3 from step 51: the 25-step mean crosses chance − 0.15 once 13 of 25 are low, at step 63.
  const drop = flat.map((x) => ({ ...x, loss: x.step > 50 ? chance - 0.3 : chance }));
  assert.equal(plateauExit(drop, chance), 63);
  assert.equal(plateauExit(drop.slice(0, 60), chance), null);
});
