/**
 * HieraDet: golden fixtures (every case of kind hieradet), the per-block layout against the
 * fixtures' own block list, the crop rule on a 60x60 and a non-square 60x80 token grid (sam2 itself
 * raises there) with the fixture's weights, input-size errors, and the recursive absolute-win init
 * checked against the official 256 px embedding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { type Tensor } from '../../src/graph/index.ts';
import { Params } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { loadCase, need, paramsOf } from '../../src/fixture/case.ts';
import { runCase, formatReport } from '../../src/fixture/runner.ts';
import { hieradetConfigFromFixture } from '../../src/fixture/kinds/det.ts';
import { HieraDet, createHieraDet, hieradetBlocks, hieradetPresets, recursiveAbsWinInit } from '../../src/models/hieradet.ts';
import { absWinEmbed } from '../../src/posembed/abswin.ts';
import { tileCrop } from '../../src/posembed/reference.ts';

const rt = new Runtime({ threads: 2 });

function casesOfKind(kind: string): string[] {
  const dir = fixturesDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(dir, f))
    .filter((f) => {
      const j = JSON.parse(readFileSync(f, 'utf8')) as { kind?: string; status?: string };
      return j.kind === kind && (j.status ?? 'ok') === 'ok';
    });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

const cases = casesOfKind('hieradet');
test('fixture cases of kind hieradet are present', () => assert.ok(cases.length >= 2, `found ${cases.length}`));
for (const f of cases) {
  test(`fixture ${path.basename(f)}`, async () => {
    const r = await runCase(f, rt);
    assert.equal(r.outcome, 'pass', formatReport(r));
  });
  test(`block layout of ${path.basename(f)} equals the fixture's block list (window lag, pooling, widths)`, () => {
    const c = loadCase(f);
    const want = c.json.blocks as { index: number; dim: number; dim_out: number; heads: number; window_size: number; q_stride: number[] | null }[];
    const got = hieradetBlocks(hieradetConfigFromFixture(c));
    assert.deepEqual(
      got.map((b) => ({ index: b.index, dim: b.dim, dim_out: b.dimOut, heads: b.heads, window_size: b.windowSize, q_stride: b.qStride })),
      want,
    );
    assert.deepEqual(new HieraDet(hieradetConfigFromFixture(c)).channels(), [...(c.json.model_channel_list as number[])].reverse());
  });
}

const tinyCase = cases.map((f) => loadCase(f)).find((c) => c.name === 'hieradet_tiny_256' || c.tensors.has('aux.pos_embed_hw'))!;

/** Runs the fixture's trunk at another size; returns features and the added pos embed. */
async function runTrunk(model: HieraDet, weights: ReturnType<typeof paramsOf>, H: number, W: number): Promise<Record<string, { data: Float32Array; shape: number[] }>> {
  const x = randn(3 * H * W, new Rng(H * 1000 + W));
  const out = await rt.run(
    (i, g) => {
      const r = model.forward(new Params(g, weights), i.x!);
      const o: Record<string, Tensor> = { pos: r.aux.pos_embed_hw! };
      for (let k = 0; k < 4; k++) o[`f${k}`] = r.aux[`features.${k}`]!;
      return o;
    },
    { x: host(x, [1, 3, H, W]) },
    `hieradet-test:${JSON.stringify(model.config)}`,
  );
  const res: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const [k, v] of Object.entries(out)) res[k] = { data: v.data as Float32Array, shape: v.shape };
  return res;
}

for (const [H, W] of [[240, 240], [240, 320]] as const) {
  test(`crop rule: the tiny fixture trunk at ${H}x${W} (token grid ${H / 4}x${W / 4}, not a multiple of the 8x8 window)`, async () => {
    const c = tinyCase;
    const model = new HieraDet(hieradetConfigFromFixture(c));
    const w = paramsOf(c);
    const r = await runTrunk(model, w, H, W);
    const [h, wd] = [H / 4, W / 4];
    const C = 24;
    assert.deepEqual(r.f0!.shape, [1, C, h, wd]);
    assert.deepEqual(r.f1!.shape, [1, 2 * C, h / 2, wd / 2]);
    assert.deepEqual(r.f2!.shape, [1, 4 * C, Math.floor(h / 4), Math.floor(wd / 4)]);
    assert.deepEqual(r.f3!.shape, [1, 8 * C, Math.floor(h / 8), Math.floor(wd / 8)]);
    for (const k of ['f0', 'f1', 'f2', 'f3']) assert.ok(r[k]!.data.every(Number.isFinite), `${k} has non-finite values`);
    // The added embedding is the pure reference: bicubic(global) + tile(window) cropped (NHWC).
    const g = w.get('pos_embed')!;
    const win = w.get('pos_embed_window')!;
    const ref = absWinEmbed({ data: Float64Array.from(g.data), C, H: 7, W: 7 }, { data: Float64Array.from(win.data), C, H: 8, W: 8 }, h, wd);
    const nhwc = new Float64Array(h * wd * C);
    for (let ch = 0; ch < C; ch++) for (let p = 0; p < h * wd; p++) nhwc[p * C + ch] = ref.data[ch * h * wd + p]!;
    assert.ok(maxAbsDiff(r.pos!.data, nhwc) < 1e-5);
  });
}

test('input sizes: multiples of 4 and at least 32 work; errors name the nearest that do', () => {
  const m = createHieraDet('hieradet-tiny');
  m.checkInputSize(240, 1024);
  m.checkInputSize(36, 44);
  assert.throws(() => m.checkInputSize(250, 256), /250x256.*multiples of the patch stride 4.*248 or 252 x 256/);
  assert.throws(() => m.checkInputSize(16, 64), /at least 32.*32 x 64/);
  assert.throws(() => createHieraDet('hieradet-huge'), /unknown preset 'hieradet-huge'.*hieradet-tiny/);
  assert.throws(() => createHieraDet('hieradet-tiny', { windowSpec: [8, 4, 14] }), /one entry per stage/);
});

test('presets follow the sam2.1 trunk configs', () => {
  const g = (n: string): number[] => hieradetPresets[n]!.globalAttBlocks;
  assert.deepEqual(g('hieradet-tiny'), [5, 7, 9]);
  assert.deepEqual(g('hieradet-small'), [7, 10, 13]);
  assert.deepEqual(g('hieradet-base-plus'), [12, 16, 20]);
  assert.deepEqual(g('hieradet-large'), [23, 33, 43]);
  assert.deepEqual(hieradetPresets['hieradet-large']!.windowSpec, [8, 4, 16, 8]);
  assert.deepEqual(hieradetPresets['hieradet-base-plus']!.globalPosSize, [14, 14]);
  assert.deepEqual(hieradetPresets['hieradet-tiny']!.globalPosSize, [7, 7]);
  // Every global block sits in stage 3 and every q-pool block is the first of stages 2..4.
  for (const name of ['hieradet-tiny', 'hieradet-small', 'hieradet-base-plus', 'hieradet-large']) {
    const blocks = hieradetBlocks(hieradetPresets[name]!);
    for (const b of blocks) if (b.windowSize === 0) assert.equal(b.stage, 3, `${name} block ${b.index}`);
    assert.deepEqual(blocks.filter((b) => b.qStride).map((b) => b.stage), [2, 3, 4]);
    const pi = createHieraDet(name).paramInfos();
    assert.deepEqual(pi.get('pos_embed_window')!.shape, [1, hieradetPresets[name]!.embedDim, 8, 8]);
    assert.equal(pi.get('pos_embed')!.decay, false);
  }
});

test('recursive abs-win: the pretrained embedding at its own grid becomes the window embedding (golden: sam2 at 256)', async () => {
  const c = tinyCase;
  const w = paramsOf(c);
  const C = 24;
  const official = need(c, 'aux.pos_embed_hw'); // sam2's [1, 64, 64, C] at 256 px
  const init = recursiveAbsWinInit(
    { posEmbed: w.get('pos_embed')!.data, globalHW: [7, 7], posEmbedWindow: w.get('pos_embed_window')!.data, windowHW: [8, 8], channels: C, pretrainGrid: [64, 64] },
    [7, 7],
  );
  assert.deepEqual(init.windowPosSize, [64, 64]);
  assert.deepEqual(init.posEmbedWindow.shape, [1, C, 64, 64]);
  assert.ok(init.posEmbed.data.every((v) => v === 0));
  // NCHW window vs the official NHWC embedding.
  let worst = 0;
  for (let ch = 0; ch < C; ch++) {
    for (let p = 0; p < 64 * 64; p++) worst = Math.max(worst, Math.abs(init.posEmbedWindow.data[ch * 4096 + p]! - official.data[p * C + ch]!));
  }
  assert.ok(worst < 1e-4, `window vs sam2 pos at 256: ${worst}`);
  // The detection trunk at 384 px (96x96 tokens) adds that 64x64 embedding tiled and cropped.
  const det = new HieraDet({ ...hieradetConfigFromFixture(c), windowPosSize: init.windowPosSize });
  const dw = new Map(w);
  dw.set('pos_embed', { data: init.posEmbed.data, shape: [...init.posEmbed.shape] });
  dw.set('pos_embed_window', { data: init.posEmbedWindow.data, shape: [...init.posEmbedWindow.shape] });
  const r = await runTrunk(det, dw, 384, 384);
  const ref = tileCrop(init.posEmbedWindow.data, C, 64, 64, 96, 96);
  const nhwc = new Float64Array(96 * 96 * C);
  for (let ch = 0; ch < C; ch++) for (let p = 0; p < 96 * 96; p++) nhwc[p * C + ch] = ref[ch * 96 * 96 + p]!;
  assert.ok(maxAbsDiff(r.pos!.data, nhwc) < 1e-6);
  assert.throws(() => recursiveAbsWinInit({ ...{ posEmbed: new Float32Array(3), globalHW: [7, 7], posEmbedWindow: new Float32Array(1), windowHW: [8, 8], channels: C, pretrainGrid: [64, 64] } }, [7, 7]), /posEmbed has 3 values/);
});
