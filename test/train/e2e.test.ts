import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/index.ts';
import { createVit } from '../../src/models/vit.ts';
import { SyntheticDataset } from '../../src/data/synthetic.ts';
import type { Dataset } from '../../src/data/dataset.ts';
import { train } from '../../src/train/trainer.ts';

/** Three synthetic classes (disc, cross, vertical grating), balanced, relabelled 0..2. */
function threeClasses(split: 'train' | 'val', n: number): Dataset {
  const pick = [0, 4, 6];
  const base = new SyntheticDataset({ seed: 1, split, size: 10 * Math.ceil(n / 3) + 10 });
  return {
    length: n,
    numClasses: 3,
    classNames: pick.map((k) => base.classNames[k]!),
    get: (i, res) => ({ image: base.get(10 * Math.floor(i / 3) + pick[i % 3]!, res).image, label: i % 3 }),
  };
}

test('end to end: a small ViT trained on synthetic shapes at 32 px rises well above chance', { timeout: 120_000 }, async () => {
  const rt = new Runtime({ threads: 2 });
  const model = createVit('vit-mini-p4', { embedDim: 64, depth: 2, numHeads: 2, patchSize: 8, numClasses: 3 });
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-e2e-'));
  const r = await train(
    { rt, model, modelSpec: { family: model.family, config: model.config }, train: threeClasses('train', 960), val: threeClasses('val', 192), out, progressStream: { write: () => true } },
    // lr 2e-3: at 4e-3 the run was seed-fragile (with per-name init, seeds 0 and 3 of 0-3 rose by <= 0.1);
    // at 2e-3 seeds 0-3 all ended at 0.53-0.64 from 0.35-0.39. After the speed/cmds merges 12 epochs
    // left seed 0 at 0.448; 16 epochs give seeds 0-3 0.42-0.60 (0.59 for the seed used here).
    { epochs: 16, batch: 32, resolutions: [32], lr: 2e-3, warmupSteps: 10, weightDecay: 0.05, seed: 0 },
  );
  const vals = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; mean_accuracy?: number }).filter((l) => l.type === 'val');
  assert.equal(vals.length, 16);
  const first = vals[0]!.mean_accuracy!;
  const last = r.val[0]!.accuracy;
  assert.ok(last >= 0.45, `validation accuracy ${last} should be well above chance (1/3)`);
  assert.ok(last > first + 0.1, `accuracy rose from ${first} to ${last}`);
  assert.ok(r.lastLoss < Math.log(3) - 0.1, `training loss ${r.lastLoss} below the chance loss ln 3`);
});
