import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../../src/graph/runtime.ts';
import { SyntheticDataset } from '../../src/data/synthetic.ts';
import { type ParamInfo, initWeights, truncNormal, zeros } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { basePosEmbed, hieraFor, resizeGlobal } from '../../src/eval/experiments/abswin.ts';
import { fit, fitInitialState } from '../../src/eval/experiments/fit.ts';
import { plan } from '../../src/eval/reproduce.ts';

const info = (name: string, shape: number[], init: ParamInfo['init'] = truncNormal(0.02)): [string, ParamInfo] => [name, { name, shape, init, decay: true }];

test('initWeights: a parameter\'s values depend on (seed, name), not on which other parameters exist', () => {
  const one = initWeights(new Map([info('a', [5, 3]), info('shared', [4, 4]), info('bias', [4], zeros)]), new Rng(11));
  const two = initWeights(new Map([info('other', [7]), info('extra', [2, 9]), info('shared', [4, 4])]), new Rng(11));
  assert.deepEqual(two.get('shared')!.data, one.get('shared')!.data);
  assert.notDeepEqual(one.get('a')!.data.slice(0, 4), one.get('shared')!.data.slice(0, 4), 'names get different streams');
  const seed12 = initWeights(new Map([info('shared', [4, 4])]), new Rng(12));
  assert.notDeepEqual(seed12.get('shared')!.data, one.get('shared')!.data, 'another seed gives other values');
});

test('absolute and abs-win Hiera of the same seed start with bit-identical shared weights', () => {
  const o = plan(true).abswin;
  for (const seed of [0, 3]) {
    const abs = fitInitialState(hieraFor('absolute', o), seed).params;
    const aw = fitInitialState(hieraFor('abswin', o), seed).params;
    const differentShape: string[] = [];
    let shared = 0;
    for (const [name, a] of abs) {
      const b = aw.get(name);
      if (!b) continue;
      if (a.length !== b.length) {
        differentShape.push(name);
        continue;
      }
      shared++;
      assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `seed ${seed}: '${name}' differs`);
    }
    // Only the position embedding differs: a learned 16x16 grid vs a 4x4 global part (+ the window part).
    assert.deepEqual(differentShape, ['pos_embed']);
    assert.deepEqual([...aw.keys()].filter((k) => !abs.has(k)), ['pos_embed_window']);
    assert.equal(shared, abs.size - 1);
    // The global-size variants of the ablation share everything but the global embedding too.
    const g2 = fitInitialState(hieraFor('abswin', o, [2, 2]), seed).params;
    for (const [name, a] of aw) if (name !== 'pos_embed') assert.deepEqual(g2.get(name), a, `seed ${seed}: '${name}' differs between global 4x4 and 2x2`);
  }
  const s0 = fitInitialState(hieraFor('abswin', o), 0).params.get('blocks.0.attn.qkv.weight')!;
  const s3 = fitInitialState(hieraFor('abswin', o), 3).params.get('blocks.0.attn.qkv.weight')!;
  assert.notDeepEqual(s0, s3, 'different seeds start differently');
});

test('absolute and abs-win Hiera of the same seed train on the same batches', async () => {
  const rt = new Runtime();
  const o = plan(true).abswin;
  const ds = new SyntheticDataset({ seed: 1, split: 'train', size: 12 });
  const seen = async (strategy: 'absolute' | 'abswin', seed: number): Promise<{ labels: number[][]; x: Float32Array[] }> => {
    const labels: number[][] = [];
    const x: Float32Array[] = [];
    await fit(rt, hieraFor(strategy, o), ds, {
      steps: 4, batch: 4, lr: 1e-3, weightDecay: 0.05, warmupSteps: 1, seed, resolutions: [o.baseRes],
      onBatch: (_step, l, xs) => {
        labels.push([...l]);
        x.push(Float32Array.from(xs[0]!));
      },
    });
    return { labels, x };
  };
  const a = await seen('absolute', 7);
  const b = await seen('abswin', 7);
  assert.equal(a.labels.length, 4, 'one record per step (4 steps over 3 batches per epoch: crosses an epoch)');
  assert.deepEqual(b.labels, a.labels);
  for (let i = 0; i < a.x.length; i++) assert.deepEqual(b.x[i], a.x[i], `batch ${i}: images (with their flips) differ`);
  const c = await seen('abswin', 8);
  assert.notDeepEqual(c.x[0], a.x[0], 'another seed gives other batches');
});

test('resizeGlobal: same size is the identity; the base-grid variant adds the same embedding at the base size', () => {
  const o = plan(true).abswin;
  const m4 = hieraFor('abswin', o);
  const p4 = fitInitialState(m4, 1).params;
  const same = resizeGlobal(m4, p4, [4, 4]);
  assert.ok(same.get('pos_embed')!.every((v, i) => Math.abs(v - p4.get('pos_embed')![i]!) < 1e-6), '4x4 -> 4x4');
  assert.equal(same.get('blocks.0.attn.qkv.weight'), p4.get('blocks.0.attn.qkv.weight'), 'other parameters are kept');
  const m16 = hieraFor('abswin', o, [16, 16]);
  const p16 = resizeGlobal(m4, p4, [16, 16]);
  assert.equal(p16.get('pos_embed')!.length, 32 * 16 * 16);
  // At the base grid (16x16 tokens) the 16x16 global embedding is used as is, and it IS the 4x4 one
  // resampled to 16x16: the two models add the same position embedding at the base size.
  const a = basePosEmbed(m4, p4).data;
  const b = basePosEmbed(m16, p16).data;
  let maxErr = 0;
  for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!));
  assert.ok(maxErr < 1e-6, `max difference ${maxErr}`);
  assert.throws(() => resizeGlobal(hieraFor('absolute', o), fitInitialState(hieraFor('absolute', o), 1).params, [2, 2]), /position embedding is 'absolute', not 'abswin'/);
  assert.throws(() => hieraFor('absolute', o, [2, 2]), /needs strategy 'abswin'/);
});
