/**
 * The plain-ViT MAE (src/models/vit-mae.ts): its encoder loads into the classifier ViT by name, the
 * loss is the masked mean of the per-patch errors (checked against a host computation), dropped
 * patches never reach the encoder (so neither the predictions), kept ones do, and a few compiled
 * steps on one batch lower the loss.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Runtime, host, type Tensor } from '../../src/graph/index.ts';
import { Params, initWeights } from '../../src/nn/params.ts';
import { createVitMae } from '../../src/models/vit-mae.ts';
import { createVit } from '../../src/models/vit.ts';
import { maskIndexFeeds, randomMaskUnits } from '../../src/models/hiera-mae.ts';
import { compileMaeStep } from '../../src/train/mae.ts';
import { initState } from '../../src/train/state.ts';
import { Rng } from '../../src/util/rng.ts';

const rt = new Runtime();
after(() => rt.clear());

// 24 x 16 px at patch 8: a non-square 3 x 2 grid, so rows and columns cannot be confused.
const enc = { patchSize: 8, embedDim: 16, depth: 2, numHeads: 2, imgSize: [24, 16] as [number, number] };
const mae = createVitMae({ encoder: enc, decoderEmbedDim: 8, decoderDepth: 1, decoderNumHeads: 2, maskRatio: 0.5 });

test('the encoder is the classifier ViT by name and shape', () => {
  const vit = createVit('vit-mini-p8', { ...enc, classToken: false, globalPool: 'avg', numClasses: 5 });
  const vitInfos = vit.paramInfos();
  const names = mae.encoderParamNames();
  assert.ok(names.includes('pos_embed') && names.includes('patch_embed.proj.weight') && names.includes('blocks.1.mlp.fc2.bias'), names.join(', '));
  for (const n of names) {
    assert.ok(vitInfos.has(n), `${n} is not a ViT parameter`);
    assert.deepEqual(mae.paramInfos().get(n)!.shape, vitInfos.get(n)!.shape, n);
  }
  // Every ViT backbone weight comes from the MAE (only the pooled head's norm and the head do not).
  assert.deepEqual([...vitInfos.keys()].filter((n) => !names.includes(n)).sort(), ['fc_norm.bias', 'fc_norm.weight', 'head.bias', 'head.weight']);
  assert.equal(mae.paramInfos().get('pos_embed')!.shape.join(), '1,6,16');
});

async function forward(x: Float32Array, mask: number[], w: Map<string, { data: Float32Array; shape: number[] }>, H = 24, W = 16) {
  const N = (H / 8) * (W / 8);
  const m = maskIndexFeeds(mask, 1, N);
  const out = await rt.run((i, g) => {
    const o = mae.forward(new Params(g, w), i.x!, { mask: i.mask!, keep: i.keep!, restore: i.restore! });
    const r: Record<string, Tensor> = { loss: o.loss, pred: o.predFull, label: o.label };
    return r;
  }, { x: host(x, [1, 3, H, W]), mask: m.mask, keep: m.keep, restore: m.restore } as never);
  return { loss: (out.loss!.data as Float32Array)[0]!, pred: out.pred!.data as Float32Array, label: out.label!.data as Float32Array };
}

test('loss = mean squared error over the dropped patches only; dropped pixels never reach the predictions', async () => {
  const w = initWeights(mae.paramInfos(), new Rng(5));
  const x = Float32Array.from({ length: 3 * 24 * 16 }, (_, i) => Math.sin(i * 0.71) + 0.3 * Math.cos(i * 0.13));
  const mask = [1, 0, 0, 1, 1, 0]; // keep tokens 0, 3, 4 (1 = keep)
  const base = await forward(x, mask, w);
  const D = 8 * 8 * 3;
  let sum = 0;
  for (let t = 0; t < 6; t++) if (mask[t] === 0) for (let j = 0; j < D; j++) sum += (base.pred[t * D + j]! - base.label[t * D + j]!) ** 2;
  assert.ok(Math.abs(base.loss - sum / (3 * D)) < 1e-5 * Math.max(1, base.loss), `loss ${base.loss} vs host ${sum / (3 * D)}`);
  // Token 1 (dropped) is rows 0..7, cols 8..15: a pattern there changes the target, not the predictions.
  const xd = x.slice();
  for (let c = 0; c < 3; c++) for (let y = 0; y < 8; y++) for (let xx = 8; xx < 16; xx++) xd[c * 384 + y * 16 + xx] += 3 * (xx % 2);
  const d = await forward(xd, mask, w);
  assert.deepEqual(d.pred, base.pred);
  assert.ok(Math.abs(d.loss - base.loss) > 1e-4);
  // Token 0 (kept) is rows 0..7, cols 0..7: it changes every prediction (global attention).
  const xk = x.slice();
  for (let y = 0; y < 8; y++) for (let xx = 0; xx < 8; xx++) xk[y * 16 + xx] += 3 * (y % 2);
  const k = await forward(xk, mask, w);
  assert.ok(k.pred.some((v, i) => Math.abs(v - base.pred[i]!) > 1e-4));
});

test('other sizes: the stored embeddings resample; sizes that do not split into patches are named', async () => {
  const w = initWeights(mae.paramInfos(), new Rng(6));
  const x = Float32Array.from({ length: 3 * 32 * 40 }, (_, i) => Math.cos(i * 0.29));
  const r = await forward(x, Array.from({ length: 20 }, (_, i) => (i % 2 ? 1 : 0)), w, 32, 40);
  assert.ok(Number.isFinite(r.loss) && r.pred.length === 20 * 192);
  assert.throws(() => mae.layoutAt(30, 16), /input 30x16 does not split into 8x8 patches; nearest sizes that work: H 24 or 32/);
  assert.throws(() => mae.lenKeep(8, 8), /keeps 0 of 1 patches/);
});

test('compiled MAE steps on one batch lower the loss', async () => {
  const B = 4;
  const step = compileMaeStep(rt, mae, { batch: B, res: [24, 16], optimizer: { weightDecay: 0 } });
  let state = initState(mae.paramInfos(), new Rng(1));
  const x = Float32Array.from({ length: B * 3 * 24 * 16 }, (_, i) => Math.sin(i * 0.05) * Math.cos(i * 0.011));
  const mask = randomMaskUnits(new Rng(2), B, 6, 0.5);
  const losses: number[] = [];
  for (let i = 0; i < 25; i++) {
    const r = await step.run(state, { x, lr: 3e-3, mask });
    state = r.state;
    losses.push(r.loss);
  }
  assert.ok(losses.at(-1)! < 0.7 * losses[0]!, `loss ${losses[0]} -> ${losses.at(-1)}`);
});
