import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import { runCase, formatReport } from '../../src/fixture/index.ts';
import { Runtime, host, type Tensor } from '../../src/graph/index.ts';
import { Params, initWeights } from '../../src/nn/params.ts';
import { hieraPresets } from '../../src/models/hiera-config.ts';
import {
  type HieraMaeConfig, createHieraMae, maeConfigFor, maskIndexFeeds, maskedMse, pixelLabel, randomMaskUnits,
} from '../../src/models/hiera-mae.ts';
import { Rng } from '../../src/util/rng.ts';

const rt = new Runtime({ threads: 2 });

/** A tiny MAE: 3 stages (total unroll 4 = MU 4x4), 64 px -> 16x16 tokens, 4x4 = 16 mask units. */
export const tinyMae: HieraMaeConfig = {
  encoder: {
    ...hieraPresets['hiera-mini']!, embedDim: 16, numHeads: 1, stages: [1, 1, 1], maskUnitAttn: [true, true, false],
    maskUnitSize: [4, 4], qPool: 2, inputSize: [64, 64],
  },
  decoderEmbedDim: 32, decoderDepth: 1, decoderNumHeads: 2, maskRatio: 0.6, normPixLoss: true,
};

test('fixture cases of kinds mae_hiera and grad_mae_hiera pass', async () => {
  const dir = fixturesDir();
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('index'));
  const ours = files.filter((f) => {
    const kind = (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { kind?: string }).kind;
    return kind === 'mae_hiera' || kind === 'grad_mae_hiera';
  });
  assert.ok(ours.length >= 2, `expected the mae fixture cases in ${dir}, found ${ours.join(', ')}`);
  for (const f of ours) {
    const r = await runCase(path.join(dir, f), rt);
    assert.equal(r.outcome, 'pass', formatReport(r));
  }
});

test('randomMaskUnits: ratio honoured per image, smallest-noise units kept, determinism by seed', () => {
  const B = 5, n = 16;
  const m = randomMaskUnits(new Rng(7), B, n, 0.6);
  for (let b = 0; b < B; b++) assert.equal(m.slice(b * n, (b + 1) * n).reduce((a, v) => a + v, 0), 6); // int(16 * 0.4)
  // The kept units are those with the smallest noise of the same stream (1 = KEEP).
  const noiseRng = new Rng(7);
  for (let b = 0; b < B; b++) {
    const noise = Array.from({ length: n }, () => noiseRng.next());
    const cut = [...noise].sort((a, c) => a - c)[5]!;
    noise.forEach((v, u) => assert.equal(m[b * n + u], v <= cut ? 1 : 0));
  }
  assert.deepEqual(randomMaskUnits(new Rng(7), B, n, 0.6), m);
  assert.notDeepEqual(randomMaskUnits(new Rng(8), B, n, 0.6), m);
  assert.equal(randomMaskUnits(new Rng(1), 1, 16, 0.75).reduce((a, v) => a + v, 0), 4);
  assert.throws(() => randomMaskUnits(new Rng(1), 1, 4, 0.8), /keeps 0 of 4 mask units/);
});

test('maskIndexFeeds: kept units ascending, restore ranks, mask token index for masked units', () => {
  const f = maskIndexFeeds([0, 1, 0, 1, /**/ 1, 1, 0, 0], 2, 4);
  assert.equal(f.lenKeep, 2);
  assert.deepEqual(Array.from(f.keep.data as BigInt64Array, Number), [1, 3, 0, 1]);
  assert.deepEqual(Array.from(f.restore.data as BigInt64Array, Number), [2, 0, 2, 1, 0, 1, 2, 2]);
  assert.throws(() => maskIndexFeeds([1, 1, 0, 0, 1, 0, 0, 0], 2, 4), /sample 1 keeps 1 units but sample 0 keeps 2/);
  assert.throws(() => maskIndexFeeds([1, 1, 1, 1], 1, 4), /keep at least one and mask at least one/);
});

/** Runs the tiny MAE on images x and a mask; returns latent, label and loss. */
async function runTiny(x: Float32Array, mask: number[], weights: Map<string, { data: Float32Array; shape: number[] }>) {
  const model = createHieraMae(tinyMae);
  const m = maskIndexFeeds(mask, 1, 16);
  const feeds: Record<string, { data: Float32Array | BigInt64Array; shape: number[] }> = { x: host(x, [1, 3, 64, 64]) as { data: Float32Array; shape: number[] }, mask: m.mask as never, keep: m.keep as never, restore: m.restore as never };
  const out = await rt.run((i, g) => {
    const o = model.forward(new Params(g, weights), i.x!, { mask: i.mask!, keep: i.keep!, restore: i.restore! });
    const r: Record<string, Tensor> = { latent: o.latent, label: o.label, loss: o.loss };
    return r;
  }, feeds as never, 'tiny-mae-convention');
  return { latent: out.latent!.data as Float32Array, label: out.label!.data as Float32Array, loss: (out.loss!.data as Float32Array)[0]! };
}

test('keep/drop convention: pixels of masked units never reach the encoder, kept ones do; the label sees all', async () => {
  const model = createHieraMae(tinyMae);
  const w = initWeights(model.paramInfos(), new Rng(3));
  const x = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37));
  const mask = new Array<number>(16).fill(0);
  for (const u of [0, 5, 6, 9, 10, 15]) mask[u] = 1; // 1 = keep
  const base = await runTiny(x, mask, w);
  assert.equal(base.latent.length, 6 * 1 * 1 * model.plan.numFeatures); // [1, K=6, 1, 1, C]
  // Unit 1 (masked): rows 0..15, cols 16..31 of the image.
  const xMasked = x.slice();
  // (a pattern, not a constant: norm-pix removes a patch's offset)
  for (let c = 0; c < 3; c++) for (let y = 0; y < 16; y++) for (let xx = 16; xx < 32; xx++) xMasked[c * 4096 + y * 64 + xx] += 5 * (xx % 2);
  const a = await runTiny(xMasked, mask, w);
  assert.deepEqual(a.latent, base.latent);
  assert.ok(a.label.some((v, i) => Math.abs(v - base.label[i]!) > 1e-2), 'the target comes from the original image');
  assert.ok(Math.abs(a.loss - base.loss) > 1e-4, 'a masked unit changes the target, so the loss');
  // Unit 0 (kept): rows 0..15, cols 0..15.
  const xKept = x.slice();
  for (let y = 0; y < 16; y++) for (let xx = 0; xx < 16; xx++) xKept[y * 64 + xx] += 5;
  const b = await runTiny(xKept, mask, w);
  assert.ok(b.latent.some((v, i) => Math.abs(v - base.latent[i]!) > 1e-3));
});

test('norm-pix loss: a perfect prediction gives 0; unbiased variance and eps inside the sqrt', async () => {
  const B = 1, C = 3, H = 8, W = 16, s = 8; // two 8x8 patches
  const x = Float32Array.from({ length: B * C * H * W }, (_, i) => Math.cos(i * 0.9) * 2 + 1);
  const out = await rt.run((i, g) => {
    const label = pixelLabel(i.x!, [s, s], true);
    const raw = pixelLabel(i.x!, [s, s], false);
    const predMask = g.constant([1, 0], [1, 2]); // token 1 masked
    return { label, raw, perfect: maskedMse(label, label, predMask, 1), zero: maskedMse(g.constant(new Float32Array(2 * 192), [1, 2, 192]), label, predMask, 1) };
  }, { x: host(x, [B, C, H, W]) });
  const label = out.label!.data as Float32Array;
  const raw = out.raw!.data as Float32Array;
  assert.equal((out.perfect!.data as Float32Array)[0], 0);
  // Patch 1 flattened channel slowest: value (c, py, px) = x[c, py, 8 + px].
  for (const [c, py, px] of [[0, 0, 0], [2, 7, 3], [1, 4, 7]] as const) assert.equal(raw[192 + c * 64 + py * 8 + px], x[c * H * W + py * W + 8 + px]);
  // Our own float64 restatement of the unbiased normalisation of patch 1.
  const v = Array.from(raw.slice(192, 384));
  const mean = v.reduce((a, b) => a + b, 0) / 192;
  const ss = v.reduce((a, b) => a + (b - mean) ** 2, 0);
  const unbiased = v.map((u) => (u - mean) / Math.sqrt(ss / 191 + 1e-6));
  const biased = v.map((u) => (u - mean) / Math.sqrt(ss / 192 + 1e-6));
  const err = (ref: number[]) => Math.max(...ref.map((r, i) => Math.abs(r - label[192 + i]!)));
  assert.ok(err(unbiased) < 1e-5, `unbiased restatement differs by ${err(unbiased)}`);
  assert.ok(err(biased) > 1e-3, `biased variance should differ clearly, got ${err(biased)}`);
  // Predicting zeros on the masked token costs mean(label^2) = 191/192 of it (unit unbiased variance).
  assert.ok(Math.abs((out.zero!.data as Float32Array)[0]! - 191 / 192) < 1e-5);
});

test('MAE configs: preset mapping, size and layout errors name what works', () => {
  const c = maeConfigFor('hiera-tiny');
  assert.equal(c.encoder.qPool, 2);
  assert.deepEqual([c.decoderEmbedDim, c.decoderDepth, c.decoderNumHeads], [512, 8, 16]);
  const m = createHieraMae('hiera-mini', { encoder: { inputSize: [128, 128] } });
  const lay = m.layoutAt(128, 128);
  assert.deepEqual([lay.numMaskUnits, lay.predGrid, lay.predStride, lay.predDim], [16, [8, 8], [16, 16], 768]);
  assert.equal(m.lenKeep(128, 128), 6);
  assert.throws(() => m.layoutAt(100, 128), /H must be a multiple of 32 .* nearest sizes that work: H 96 or 128/);
  assert.throws(() => createHieraMae(tinyMae, { encoder: { maskUnitSize: [8, 8] } }), /must equal the total unroll/);
  assert.deepEqual(m.encoderParamNames().filter((n) => !n.startsWith('blocks.')), ['patch_embed.proj.weight', 'patch_embed.proj.bias', 'pos_embed']);
});
