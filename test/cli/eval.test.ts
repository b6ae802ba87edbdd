/**
 * `anyres eval` (issue 16 item 6): a checkpoint swept over resolutions, one row per size (sizes the
 * model cannot take are reported, not dropped), table + chart + JSON, zoom and canvas views, and a
 * detection backbone refused as "not a classifier".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { registerEvalCommand, evalCheckpoint } from '../../src/cli/eval.ts';
import { Runtime } from '../../src/graph/runtime.ts';
import { createModel, checkpointConfigOf } from '../../src/models/registry.ts';
import { initWeights } from '../../src/nn/params.ts';
import { saveCheckpoint } from '../../src/io/train-checkpoint.ts';
import { stateFromParams } from '../../src/train/state.ts';
import { SyntheticDataset } from '../../src/data/synthetic.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/transforms.ts';
import { evaluateAccuracy } from '../../src/eval/sweep.ts';
import { saveSafetensors } from '../../src/io/safetensors.ts';
import { Rng } from '../../src/util/rng.ts';

const rt = new Runtime({ threads: 1 });
const tmp = (n: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `anyres-eval-${n}-`));

test('eval: accuracy per resolution (same numbers as an independent sweep), table, chart, JSON; canvas view', { timeout: 300_000 }, async () => {
  const model = createModel('vit-mini-p4', { embedDim: 32, depth: 2, numHeads: 2, imgSize: [24, 24] });
  const w = initWeights(model.paramInfos(), new Rng(4));
  const run = tmp('run');
  saveCheckpoint(run, stateFromParams(new Map([...w].map(([k, v]) => [k, v.data]))), { model: checkpointConfigOf(model), run: { data: 'synthetic' }, epoch: 1, stepInEpoch: 0, rng: {} });

  const p = new Command();
  p.exitOverride();
  registerEvalCommand(p);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    await p.parseAsync(['node', 'anyres', 'eval', '--checkpoint', run, '--res', '16,24,30,32', '--val-size', '20', '--batch', '10', '--threads', '1']);
  } finally {
    console.log = log;
  }
  const text = lines.join('\n');
  assert.match(text, /res\s+top-1 %\s+loss\s+images/);
  assert.match(text, /24 \(ckpt\)\s+\d+\.\d\d/);
  assert.match(text, /30\s+-\s+-\s+not measured: .*(28|32)/);
  const json = JSON.parse(fs.readFileSync(path.join(run, 'eval-zoom.json'), 'utf8')) as { rows: { res: number; accuracy?: number; count?: number; error?: string }[]; task: string; view: string };
  assert.equal(json.task, 'classification');
  assert.deepEqual(json.rows.map((r) => r.res), [16, 24, 30, 32]);
  assert.ok(json.rows[2]!.error && json.rows[2]!.accuracy === undefined);
  for (const f of ['eval-zoom.svg', 'eval-zoom.png']) assert.ok(fs.statSync(path.join(run, f)).size > 500, f);
  // An independent sweep (src/eval/sweep.ts: its own batching and argmax) gives the same accuracies.
  const ds = new SyntheticDataset({ seed: 0, split: 'val', size: 20 });
  for (const row of json.rows.filter((r) => !r.error)) {
    const ref = await evaluateAccuracy(rt, model, w, ds, row.res, { batch: 7, mean: IMAGENET_MEAN, std: IMAGENET_STD });
    assert.equal(row.count, 20);
    assert.ok(Math.abs(100 * row.accuracy! - ref.accuracy) < 1e-9, `${row.res}: ${100 * row.accuracy!} vs ${ref.accuracy}`);
  }
  // Canvas keeps the object size of the base resolution: identical to zoom there, different elsewhere.
  const zoom = await evalCheckpoint({ checkpoint: run, res: [24, 32], valSize: 20, rt });
  const canvas = await evalCheckpoint({ checkpoint: run, res: [24, 32], valSize: 20, rt, view: 'canvas' });
  assert.equal(canvas.baseRes, 24);
  assert.equal(canvas.rows[0]!.loss, zoom.rows[0]!.loss);
  assert.notEqual(canvas.rows[1]!.loss, zoom.rows[1]!.loss);
  await assert.rejects(evalCheckpoint({ checkpoint: run, res: [30], rt }), /can take none of --res 30/);
  await assert.rejects(evalCheckpoint({ checkpoint: run, res: [24], rt, ema: true }), /kept no EMA/);
});

test('eval: a detection backbone is refused as not a classifier', async () => {
  const det = createModel('vitdet-mini', { imgSize: 64 });
  const file = path.join(tmp('det'), 'vitdet.safetensors');
  const w = initWeights(det.paramInfos(), new Rng(0));
  saveSafetensors(file, new Map([...w].map(([k, v]) => [k, { shape: v.shape, data: v.data }])), { 'anyres.config': JSON.stringify(checkpointConfigOf(det)) });
  await assert.rejects(evalCheckpoint({ checkpoint: file, res: [64], rt }), /vitdet detection backbone, not a classifier/);
});

test('eval: a detector run (anyres detect train) reports COCO box AP per resolution, the same numbers as detect eval', { timeout: 300_000 }, async () => {
  const { registerDetectCommands } = await import('../../src/cli/detect.ts');
  const run = tmp('detector');
  const p = new Command();
  p.exitOverride();
  registerDetectCommands(p);
  const log = console.log;
  console.log = () => undefined;
  try {
    await p.parseAsync(['node', 'anyres', 'detect', 'train', '--model', 'vitdet-mini', '--data', 'synthetic', '--res', '64', '--steps', '2', '--batch', '2', '--train-size', '4', '--val-size', '3', '--no-eval', '--threads', '1', '--out', run]);
    const q = new Command();
    q.exitOverride();
    registerDetectCommands(q);
    await q.parseAsync(['node', 'anyres', 'detect', 'eval', '--checkpoint', run, '--res', '96', '--threads', '1', '--json', path.join(run, 'ref.json')]);
  } finally {
    console.log = log;
  }
  const r = await evalCheckpoint({ checkpoint: run, res: [64, 96, 60], rt });
  assert.equal(r.task, 'detection');
  assert.deepEqual(r.rows.map((x) => x.res), [64, 96, 60]);
  assert.ok(r.rows[2]!.error, 'an unsupported size is reported, not measured');
  for (const x of r.rows.slice(0, 2)) assert.ok(x.ap! >= 0 && x.ap! <= 1 && x.count === 3, JSON.stringify(x));
  const ref = JSON.parse(fs.readFileSync(path.join(run, 'ref.json'), 'utf8')) as { stats: Record<string, number> };
  assert.equal(r.rows[1]!.ap, ref.stats['AP']);
  assert.equal(r.rows[1]!.ap50, ref.stats['AP50']);
  await assert.rejects(evalCheckpoint({ checkpoint: run, res: [64], rt, view: 'canvas' }), /detection scenes are rendered in one view/);
});
