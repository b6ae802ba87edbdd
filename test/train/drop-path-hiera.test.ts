/**
 * Drop path for Hiera and HieraDet training (issue 16 item 4): masks from the trainer's seeded
 * generator (per block and branch, like the ViT's), rates linear over the blocks, and a dropped
 * block is the identity for that sample.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { Params, initWeights } from '../../src/nn/params.ts';
import type { Dataset } from '../../src/data/dataset.ts';
import { createHieraDet } from '../../src/models/hieradet.ts';
import { modelForTraining } from '../../src/models/registry.ts';
import { compileTrainStep, drawDropPathMasks } from '../../src/train/step.ts';
import { train, type TrainOptions } from '../../src/train/trainer.ts';
import { Rng, hashSeed } from '../../src/util/rng.ts';

const rt = new Runtime({ threads: 1 });
const quiet = { write: () => true };
const tmp = (n: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `anyres-dp-${n}-`));
const data = (n: number): Dataset => ({
  length: n, numClasses: 3, classNames: ['a', 'b', 'c'],
  get(i, res) {
    const r = new Rng(hashSeed('dp-toy', i));
    return { image: { data: Float32Array.from({ length: 3 * res * res }, () => r.next() * 0.5 + (i % 3) * 0.25), channels: 3, height: res, width: res }, label: i % 3 };
  },
});

test('drawDropPathMasks: Bernoulli(1 - rate) per sample, per block and branch, from the seeded generator', () => {
  const a = drawDropPathMasks(new Rng(5), [0, 0.25, 0.5], 4000);
  assert.equal(a.length, 6);
  assert.equal(a[0], undefined);
  assert.equal(a[1], undefined);
  const keep = (m: Float32Array | undefined): number => m!.reduce((s, x) => s + x, 0) / m!.length;
  assert.ok(Math.abs(keep(a[2]) - 0.75) < 0.03 && Math.abs(keep(a[5]) - 0.5) < 0.03);
  assert.notDeepEqual(a[2], a[3], 'the two branches draw independently');
  assert.deepEqual(drawDropPathMasks(new Rng(5), [0, 0.25, 0.5], 4000), a);
});

test('Hiera trains with drop path: rates linear over the blocks, reproducible, resumable, and it changes training', { timeout: 300_000 }, async () => {
  const build = (rate: number) => modelForTraining('hiera-mini', { numClasses: 3, res: 32, dropPathRate: rate });
  const m = build(0.2);
  const step = compileTrainStep(rt, m, { batch: 4, res: 32, dropPath: 0.2 });
  assert.deepEqual(step.dropRates.map((r) => +r.toFixed(6)), [0, 0.05, 0.1, 0.15, 0.2]);
  const opts: TrainOptions = { epochs: 2, batch: 4, resolutions: [32], lr: 3e-3, seed: 1, dropPath: 0.2 };
  const spec = { family: m.family, config: m.config };
  const run = (o: TrainOptions, out = tmp('h'), model = m, resume = false) => train({ rt, model, modelSpec: { family: model.family, config: model.config }, train: data(12), out, resume, progressStream: quiet }, o);
  const a = await run(opts);
  assert.equal(a.steps, 6);
  const b = await run(opts);
  for (const [k, v] of a.state.params) assert.deepEqual(b.state.params.get(k), v, `same seed, same weights (${k})`);
  const plain = await run({ ...opts, dropPath: 0 }, tmp('h0'), build(0));
  const w = 'blocks.4.mlp.fc2.weight';
  assert.notDeepEqual(plain.state.params.get(w), a.state.params.get(w), 'the masks took part in training');
  const dir = tmp('hr');
  await run({ ...opts, maxSteps: 2 }, dir);
  const r = await run(opts, dir, m, true);
  for (const [k, v] of a.state.params) assert.deepEqual(r.state.params.get(k), v, `resumed ${k}`);
  assert.equal(spec.family, 'hiera');
});

test('HieraDet: per-branch masks ([B,1,1] as the train step feeds them); a dropped block is the identity for its sample', async () => {
  // hieradet-mini has stages [1,1,2,1]: block 3 closes stage 3 and keeps the width, so dropping both of
  // its branches must leave features.2 equal to block 2's output = features.2 of the [1,1,1,1] model.
  const A = createHieraDet('hieradet-mini', { imgSize: 64, dropPathRate: 0.3 });
  const B = createHieraDet('hieradet-mini', { imgSize: 64, stages: [1, 1, 1, 1], globalAttBlocks: [] });
  const weights = initWeights(A.paramInfos(), new Rng(3));
  // B's blocks 0..2 (all features.2 depends on) are A's; its own last block is unused here.
  const wB = initWeights(B.paramInfos(), new Rng(4));
  for (const [k, v] of weights) if (wB.has(k) && /^(patch_embed|pos_embed|blocks\.[012]\.)/.test(k)) wB.set(k, v);
  const N = 2;
  const x = host(Float32Array.from({ length: N * 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37)), [N, 3, 64, 64]);
  const depth = 5;
  const masks: (Float32Array | undefined)[] = Array.from({ length: 2 * depth }, () => undefined);
  masks[6] = Float32Array.of(0, 1); // block 3 attention: dropped for sample 0
  masks[7] = Float32Array.of(0, 1); // block 3 MLP: dropped for sample 0
  const feeds: Record<string, ReturnType<typeof host>> = { x };
  masks.forEach((m, i) => m && (feeds[`dp${i}`] = host(m, [N, 1, 1])));
  const outA = await rt.run((inp, g) => {
    const dp = masks.map((m, i) => (m ? inp[`dp${i}`] : undefined));
    return { f: A.forward(new Params(g, weights), inp.x!, { train: true, dropPathMasks: dp }).aux['features.2']! };
  }, feeds);
  const outB = await rt.run((inp, g) => ({ f: B.forward(new Params(g, wB), inp.x!).aux['features.2']! }), { x });
  const fa = outA.f!.data as Float32Array;
  const fb = outB.f!.data as Float32Array;
  const half = fa.length / N;
  let maxDiff0 = 0;
  let maxDiff1 = 0;
  for (let i = 0; i < half; i++) {
    maxDiff0 = Math.max(maxDiff0, Math.abs(fa[i]! - fb[i]!));
    maxDiff1 = Math.max(maxDiff1, Math.abs(fa[half + i]! - fb[half + i]!));
  }
  assert.ok(maxDiff0 < 1e-5, `dropped sample equals the block skipped (max diff ${maxDiff0})`);
  assert.ok(maxDiff1 > 1e-3, `kept sample went through block 3 (max diff ${maxDiff1})`);
  await assert.rejects(rt.run((inp, g) => ({ f: A.forward(new Params(g, weights), inp.x!, { train: true, dropPathMasks: [undefined, undefined, undefined] }).logits }), { x }),
    /dropPathMasks has 3 entries; give 5 \(one per block\) or 10/);
});
