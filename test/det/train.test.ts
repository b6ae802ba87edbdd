/**
 * The detection step and loop: resume continues bit for bit, a checkpoint alone rebuilds the
 * detector (same predictions), layer-wise lr decay scales the backbone's updates, drop path needs
 * its seeded rng, and bad input is refused with what would work.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/runtime.ts';
import { createDetector } from '../../src/det/detector.ts';
import { detTrainStep } from '../../src/det/train-step.ts';
import { loadDetector, trainDetector } from '../../src/det/trainer.ts';
import { predictDetections } from '../../src/det/predict.ts';
import { stateFromParams } from '../../src/train/state.ts';
import { Rng } from '../../src/util/rng.ts';
import { RectsDataset } from './rects.ts';

const rt = new Runtime();
after(() => rt.clear());
const quiet = { write: (): boolean => true };
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-det-train-'));

const tiny = (dropPathRate = 0) => createDetector({
  backbone: {
    family: 'vitdet', config: 'vitdet-mini',
    overrides: { embedDim: 32, depth: 2, numHeads: 2, globalBlocks: [1], windowSize: 4, pretrainGrid: 4, imgSize: 64, dropPathRate, pyramid: { outChannels: 16, scaleFactors: [2, 1, 0.5], topBlock: true, normEps: 1e-6 } },
  },
  numClasses: 3, head: { numConvs: 1, gnGroups: 4 },
});

test('resume: 3 + 3 steps end with the same weights as 6 uninterrupted; the checkpoint alone rebuilds the detector', async () => {
  const det = tiny(0.2);
  const ds = new RectsDataset(5, 3, [64, 64], 2);
  const opts = { size: [64, 64] as [number, number], batch: 2, steps: 6, lr: 2e-3, warmupSteps: 2, seed: 3, checkpointEverySteps: 2 };
  const a = tmp();
  const full = await trainDetector({ rt, detector: det, train: ds, out: a, progressStream: quiet }, opts);
  const b = tmp();
  const part = await trainDetector({ rt, detector: det, train: ds, out: b, progressStream: quiet }, { ...opts, stopAfter: 3 });
  assert.equal(part.interrupted, true);
  assert.equal(part.steps, 3);
  const rest = await trainDetector({ rt, detector: tiny(0.2), train: ds, out: b, resume: true, progressStream: quiet }, opts);
  assert.equal(rest.steps, 6);
  for (const [k, v] of full.state.params) assert.deepEqual(rest.state.params.get(k), v, `parameter ${k} differs after resume`);
  assert.deepEqual([...part.losses, ...rest.losses], full.losses);

  const loaded = loadDetector(b);
  assert.deepEqual(loaded.detector.spec, det.spec);
  const img = ds.get(0, [64, 64], null).image;
  const p1 = await predictDetections(rt, det, full.state.params, [img], [64, 64]);
  const p2 = await predictDetections(rt, loaded.detector, loaded.params, [img], [64, 64], { mean: loaded.mean, std: loaded.std });
  assert.deepEqual(p2, p1);
  await assert.rejects(
    trainDetector({ rt, detector: tiny(0), train: ds, out: b, resume: true, progressStream: quiet }, opts),
    /not the requested detector/,
  );
  fs.rmSync(a, { recursive: true });
  fs.rmSync(b, { recursive: true });
});

test('layer-wise lr decay: the first AdamW step moves each weight by lr · decay^(depth + 1 − layer)', async () => {
  const det = tiny();
  const lr = 1e-3;
  const decay = 0.5;
  const step = detTrainStep(rt, det, { batch: 1, size: [64, 64], layerDecay: decay, optimizer: { weightDecay: 0 } });
  const ds = new RectsDataset(1, 3, [64, 64], 5);
  const s = ds.get(0, [64, 64], null);
  const p0 = det.init(0);
  const r = await step.run(stateFromParams(p0), { x: s.image.data, objects: [s.objects], lr });
  const maxStep = (name: string): number => {
    const a = p0.get(name)!;
    const b = r.state.params.get(name)!;
    return a.reduce((m, v, i) => Math.max(m, Math.abs(b[i]! - v)), 0);
  };
  // Adam's first step is lr·scale·g/(|g| + eps) ≈ lr·scale per element with a non-tiny gradient.
  const depth = 2;
  const expect: [string, number][] = [
    ['backbone.patch_embed.proj.weight', decay ** (depth + 1)],
    ['backbone.blocks.0.mlp.fc1.weight', decay ** depth],
    ['backbone.blocks.1.mlp.fc1.weight', decay ** (depth - 1)],
    ['head.cls_tower.0.weight', 1],
  ];
  for (const [name, scale] of expect) {
    const m = maxStep(name);
    assert.ok(Math.abs(m - lr * scale) < 0.02 * lr * scale, `${name}: max |Δ| ${m}, expected lr·${scale} = ${lr * scale}`);
  }
});

test('drop path needs the seeded rng; bad batches are refused naming the sizes', async () => {
  const det = tiny(0.3);
  const step = detTrainStep(rt, det, { batch: 1, size: [64, 64] });
  assert.deepEqual(step.keep, [1, 0.7]);
  const ds = new RectsDataset(1, 3, [64, 64], 6);
  const s = ds.get(0, [64, 64], null);
  const st = stateFromParams(det.init(0));
  await assert.rejects(step.run(st, { x: s.image.data, objects: [s.objects], lr: 1e-3 }), /drop path 0\.3; pass the seeded rng/);
  await assert.rejects(step.run(st, { x: new Float32Array(10), objects: [s.objects], lr: 1e-3, rng: new Rng(0) }), /expected \[1, 3, 64, 64\]/);
  const r1 = await step.run(st, { x: s.image.data, objects: [s.objects], lr: 1e-3, rng: new Rng(7) });
  const r2 = await step.run(st, { x: s.image.data, objects: [s.objects], lr: 1e-3, rng: new Rng(7) });
  assert.equal(r1.loss, r2.loss);
  assert.throws(() => detTrainStep(rt, det, { batch: 1, size: [70, 64] }), /nearest sizes that work: 64 or 80 x 64/);
  // HieraDet blocks take the same [B, 1, 1, 1] masks; an image without objects is all background.
  const hd = createDetector({ backbone: { family: 'hieradet', config: 'hieradet-mini', overrides: { dropPathRate: 0.2 } }, numClasses: 3, neck: { dim: 16 }, head: { numConvs: 1, gnGroups: 4 } });
  const hstep = detTrainStep(rt, hd, { batch: 2, size: [64, 96] });
  const x2 = new Float32Array(2 * 3 * 64 * 96).fill(0.5);
  const hr = await hstep.run(stateFromParams(hd.init(0)), { x: x2, objects: [[], [{ label: 2, box: [10, 8, 40, 50] }]], lr: 1e-3, rng: new Rng(1) });
  assert.ok(Number.isFinite(hr.loss) && hr.numPos > 0, `loss ${hr.loss}, positives ${hr.numPos}`);
  const empty = hstep.targets([[], []]);
  assert.equal(empty.numPos, 0);
  assert.ok(empty.clsWeight.every((v) => v === 1) && empty.cls.every((v) => v === 0));
  assert.throws(() => createDetector({ backbone: { family: 'hieradet', config: 'hieradet-mini' }, numClasses: 2, neck: { dim: 24 }, head: { gnGroups: 5 } }).levels(64, 64), /GroupNorm with 5 groups needs a width divisible by it/);
});

test('trainDetector evaluates on val at the end (COCO stats in the summary and the log); the checkpoint holds plain data', async () => {
  const det = tiny();
  const ds = new RectsDataset(4, 3, [64, 64], 8);
  const out = tmp();
  const r = await trainDetector({ rt, detector: det, train: ds, val: new RectsDataset(3, 3, [64, 64], 9), out, progressStream: quiet }, {
    size: [64, 64], batch: 2, steps: 3, lr: 1e-3, seed: 0, evalOptions: { progressStream: quiet, postprocess: { scoreThresh: 0.01 } },
  });
  assert.equal(r.eval?.stats.length, 12);
  assert.equal(r.eval?.images.length, 3);
  const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; stats?: number[] });
  assert.deepEqual(log.find((l) => l.type === 'eval')?.stats, r.eval?.stats);
  const info = JSON.parse(fs.readFileSync(path.join(out, 'last.json'), 'utf8')) as { run: { evalOptions: Record<string, unknown> }; model: { family: string } };
  assert.deepEqual(info.run.evalOptions, { postprocess: { scoreThresh: 0.01 } });
  assert.equal(info.model.family, 'detector');
  fs.rmSync(out, { recursive: true });
});
