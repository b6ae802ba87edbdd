import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LONG_MAE_STEPS, plan, reproduce } from '../../src/eval/reproduce.ts';
import { similaritySlope, slopeVerdict } from '../../src/eval/experiments/mae.ts';

test('similaritySlope: per-seed least squares per 1,000 steps, t interval over seeds', () => {
  // seed 0: y = 0.01 + 0.002 * step/1000 exactly; seed 1: 0.004 per 1,000; seed 2: 0.003 per 1,000.
  const pts = [0, 1, 2].flatMap((seed) => [1000, 2000, 3000, 4000].map((step) => ({ seed, step, similarity: 0.01 + [0.002, 0.004, 0.003][seed]! * (step / 1000) })));
  const s = similaritySlope(pts);
  assert.deepEqual(s.perSeed.map((x) => Number(x.slope.toFixed(12))), [0.002, 0.004, 0.003]);
  assert.ok(Math.abs(s.mean - 0.003) < 1e-12);
  // sd of (2, 4, 3)e-3 = 1e-3; t_{0.975, 2} = 4.302653: half width 4.302653e-3 / sqrt(3) = 2.48414e-3.
  assert.equal(s.interval, 'seeds');
  assert.ok(Math.abs(s.high! - 0.003 - 2.48414e-3) < 1e-7, `high ${s.high}`);
  assert.ok(Math.abs(s.low! - 0.003 + 2.48414e-3) < 1e-7);
  assert.equal(slopeVerdict(s), 'window similarity climbs (95% CI above 0)');
  // fromStep drops the early points; a flat noisy trend includes 0.
  const flat = [0, 1].flatMap((seed) => [0, 500, 1000, 1500].map((step, i) => ({ seed, step, similarity: (seed ? -1 : 1) * (i % 2 ? 0.01 : -0.01) })));
  assert.equal(slopeVerdict(similaritySlope(flat, 500)), 'no trend detected (95% CI includes 0)');
  assert.throws(() => similaritySlope(pts, 4000), /seed 0 has 1 point\(s\) from step 4000/);
  // One seed: the regression's own interval.
  const one = similaritySlope([{ seed: 5, step: 0, similarity: 0 }, { seed: 5, step: 1000, similarity: 0.011 }, { seed: 5, step: 2000, similarity: 0.019 }]);
  assert.equal(one.interval, 'regression');
  assert.ok(one.low! < one.mean && one.mean < one.high!);
});

test('plan --long: long MAE pretraining with the similarity recorded, fine-tune comparison at 1.25x and 1.5x; default and quick unchanged by it', () => {
  const d = plan(false);
  const l = plan(false, undefined, undefined, true);
  assert.equal(l.mae.pretrain.steps, LONG_MAE_STEPS);
  assert.ok(LONG_MAE_STEPS >= 20 * d.mae.pretrain.steps, 'long pretraining is at least 20x the default');
  assert.ok(l.mae.pretrain.steps / l.mae.pretrain.similarityEvery >= 20, 'enough similarity points for a slope');
  assert.equal(l.mae.finetuneFromMae, true);
  assert.deepEqual(l.mae.finetuneRes, [80, 96]);
  assert.ok(l.mae.seeds.length >= 3);
  assert.deepEqual(l.mae.train, d.abswin.train, 'the MAE trunk is fine-tuned with the from-scratch recipe');
  assert.deepEqual(l.abswin, d.abswin);
  assert.deepEqual(l.resformer, d.resformer);
  assert.throws(() => plan(true, undefined, undefined, true), /--long and --quick exclude each other/);
});

test('reproduce --long: a tiny run of its code path writes the slope and the MAE -> fine-tune rows', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-long-'));
  try {
    await reproduce({
      quick: false,
      long: true,
      data: 'synthetic',
      out,
      seeds: [0, 1],
      skip: ['abswin', 'resformer', 'speed', 'detection'],
      log: () => {},
      adjustPlan: (p) => ({
        ...p,
        trainSize: 256,
        valSize: 40,
        mae: {
          ...p.mae,
          evalRes: [64, 96],
          pretrain: { ...p.mae.pretrain, steps: 12, batch: 8, similarityEvery: 2 },
          train: { ...p.mae.train, steps: 3, batch: 8, warmupSteps: 1 },
          finetune: { ...p.mae.finetune, steps: 2, batch: 8, warmupSteps: 1 },
        },
      }),
    });
    const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { summary: { mae: Record<string, { verdict?: string; interval?: string }> } };
    const mae = s.summary.mae;
    assert.equal(mae['similarity/mae-slope']!.interval, 'seeds');
    assert.match(mae['similarity/mae-slope']!.verdict!, /window similarity|no trend/);
    for (const k of ['finetune/80', 'finetune/96', 'direct/64', 'direct/96']) assert.ok(mae[k]?.verdict, `summary has ${k}`);
    assert.match(fs.readFileSync(path.join(out, 'report.md'), 'utf8'), /per 1,000 steps/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
