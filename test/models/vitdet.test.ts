/**
 * ViTDet: golden fixtures (every case of kind vitdet / grad_vitdet, found by globbing and
 * dispatched on `kind`), window partition, the transposed conv, position-embedding recipes against
 * the pure references, parameter sets of the two recipes, input-size errors, and a forward+backward
 * smoke run of the mini preset at its default size and at a non-square size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { type Tensor, add, concat, grad, mul, reduceMean, reduceSum, reshape } from '../../src/graph/index.ts';
import { Params, initWeights } from '../../src/nn/params.ts';
import { windowPartition, windowUnpartition } from '../../src/nn/window.ts';
import { Rng } from '../../src/util/rng.ts';
import { runCase, formatReport } from '../../src/fixture/runner.ts';
import '../../src/fixture/kinds/det.ts';
import {
  type VitDetConfig, VitDet, convTranspose2x2, createVitDet, vitdetBlock, vitdetPosEmbed, vitdetPresets, vitdetSpeedConfigs,
} from '../../src/models/vitdet.ts';
import { resample2d } from '../../src/posembed/resample.ts';
import { tileCrop } from '../../src/posembed/reference.ts';

const rt = new Runtime({ threads: 2 });

function casesOfKind(kinds: string[]): string[] {
  const dir = fixturesDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(dir, f))
    .filter((f) => {
      const j = JSON.parse(readFileSync(f, 'utf8')) as { kind?: string; status?: string };
      return kinds.includes(j.kind ?? '') && (j.status ?? 'ok') === 'ok';
    });
}

function randn(n: number, rng: Rng, s = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * s;
  return a;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const vitdetCases = casesOfKind(['vitdet', 'grad_vitdet']);
test('fixture cases of kind vitdet / grad_vitdet are present', () => {
  assert.ok(vitdetCases.length >= 4, `found ${vitdetCases.length} cases`);
});
for (const f of vitdetCases) {
  test(`fixture ${path.basename(f)}`, async () => {
    const r = await runCase(f, rt);
    assert.equal(r.outcome, 'pass', formatReport(r));
  });
}

test('windowPartition pads with zeros and windowUnpartition inverts it (20x30, window 14)', async () => {
  const rng = new Rng(1);
  const x = randn(2 * 20 * 30 * 3, rng);
  const out = await rt.run(
    (i) => {
      const part = windowPartition(i.x!, 14);
      assert.deepEqual(part.grid, [2, 3]);
      return { w: part.windows, back: windowUnpartition(part.windows, part.grid, part.hw) };
    },
    { x: host(x, [2, 20, 30, 3]) },
  );
  assert.deepEqual(out.w!.shape, [12, 14, 14, 3]);
  assert.equal(maxAbsDiff(out.back!.data as Float32Array, x), 0);
  // Window (image 0, row 1, col 2) covers rows 14..27, cols 28..41: only rows 14..19 x cols 28..29 are real.
  const w = out.w!.data as Float32Array;
  const win = 0 * 6 + 1 * 3 + 2;
  for (let r = 0; r < 14; r++) {
    for (let c = 0; c < 14; c++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = w[((win * 14 + r) * 14 + c) * 3 + ch]!;
        const real = 14 + r < 20 && 28 + c < 30;
        const expect = real ? x[((0 * 20 + 14 + r) * 30 + 28 + c) * 3 + ch]! : 0;
        assert.equal(v, expect);
      }
    }
  }
});

test('convTranspose2x2 equals the direct definition of ConvTranspose2d(k=2, s=2)', async () => {
  const rng = new Rng(2);
  const [B, h, w, cin, cout] = [2, 3, 4, 5, 6];
  const x = randn(B * h * w * cin, rng);
  const W = randn(cin * cout * 4, rng);
  const b = randn(cout, rng);
  const weights = new Map([
    ['up.weight', { data: W, shape: [cin, cout, 2, 2] }],
    ['up.bias', { data: b, shape: [cout] }],
  ]);
  const out = await rt.run((i, g) => ({ y: convTranspose2x2(new Params(g, weights), 'up', i.x!, cin, cout) }), { x: host(x, [B, h, w, cin]) });
  const ref = new Float64Array(B * 2 * h * 2 * w * cout);
  for (let n = 0; n < B; n++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        for (let a = 0; a < 2; a++) {
          for (let c = 0; c < 2; c++) {
            for (let o = 0; o < cout; o++) {
              let s = b[o]!;
              for (let k = 0; k < cin; k++) s += x[((n * h + i) * w + j) * cin + k]! * W[((k * cout + o) * 2 + a) * 2 + c]!;
              ref[((n * 2 * h + 2 * i + a) * 2 * w + 2 * j + c) * cout + o] = s;
            }
          }
        }
      }
    }
  }
  assert.deepEqual(out.y!.shape, [B, 2 * h, 2 * w, cout]);
  assert.ok(maxAbsDiff(out.y!.data as Float32Array, ref) < 1e-5);
});

test('a window block whose single window covers the map equals the global block (no padding)', async () => {
  const rng = new Rng(3);
  const C = 16;
  const x = randn(14 * 14 * C, rng);
  const cfgBlock = { heads: 2, mlpHidden: 32, relPosInput: [14, 14] as const, qkvBias: true, eps: 1e-6 };
  const infos = new Map<string, { data: Float32Array; shape: number[] }>();
  const shapes: [string, number[]][] = [
    ['norm1.weight', [C]], ['norm1.bias', [C]], ['attn.qkv.weight', [3 * C, C]], ['attn.qkv.bias', [3 * C]],
    ['attn.rel_pos_h', [27, C / 2]], ['attn.rel_pos_w', [27, C / 2]], ['attn.proj.weight', [C, C]], ['attn.proj.bias', [C]],
    ['norm2.weight', [C]], ['norm2.bias', [C]], ['mlp.fc1.weight', [32, C]], ['mlp.fc1.bias', [32]], ['mlp.fc2.weight', [C, 32]], ['mlp.fc2.bias', [C]],
  ];
  for (const [n, s] of shapes) infos.set(n, { data: randn(s.reduce((a, b) => a * b, 1), rng, 0.3), shape: s });
  const out = await rt.run(
    (i, g) => ({
      win: vitdetBlock(new Params(g, infos), i.x!, { ...cfgBlock, windowSize: 14 }).y,
      glob: vitdetBlock(new Params(g, infos), i.x!, { ...cfgBlock, windowSize: 0 }).y,
    }),
    { x: host(x, [1, 14, 14, C]) },
  );
  assert.ok(maxAbsDiff(out.win!.data as Float32Array, out.glob!.data as Float32Array) < 1e-5);
});

test('position embedding: interpolate = bicubic resize of the pretrained grid; abswin = tiled grid with the crop rule', async () => {
  const rng = new Rng(4);
  const C = 8;
  const g = 7;
  const pos = randn((1 + g * g) * C, rng);
  const grid = new Float64Array(C * g * g); // [1, 1+g·g, C] tokens (cls first) -> [C, g, g]
  for (let t = 0; t < g * g; t++) for (let c = 0; c < C; c++) grid[c * g * g + t] = pos[(1 + t) * C + c]!;
  const weights = new Map([['pos_embed', { data: pos, shape: [1, 1 + g * g, C] }]]);
  const base = { ...vitdetPresets['vitdet-mini']!, embedDim: C, numHeads: 1, pretrainGrid: g, windowSize: g };
  const [H, W] = [12, 17]; // not multiples of the window: crop rule
  const out = await rt.run(
    (_i, gr) => ({
      interp: vitdetPosEmbed(new Params(gr, weights), { ...base, posEmbed: 'interpolate' }, H, W),
      abswin: vitdetPosEmbed(new Params(gr, weights), { ...base, posEmbed: 'abswin', absWinGlobal: null }, H, W),
    }),
    { dummy: host([0], [1]) },
  );
  const toNhwc = (chw: Float64Array): Float64Array => {
    const o = new Float64Array(H * W * C);
    for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) o[p * C + c] = chw[c * H * W + p]!;
    return o;
  };
  assert.ok(maxAbsDiff(out.interp!.data as Float32Array, toNhwc(resample2d(grid, C, g, g, H, W, 'bicubic'))) < 1e-5);
  assert.ok(maxAbsDiff(out.abswin!.data as Float32Array, toNhwc(tileCrop(grid, C, g, g, H, W))) < 1e-6);
});

test('parameter sets: abswin + relpos-global has rel-pos tables only in global blocks; interpolate + relpos-all in every block', () => {
  const { baseline, abswin } = vitdetSpeedConfigs('vitdet-b', 1024);
  const pa = new VitDet(baseline).paramInfos();
  const pb = new VitDet(abswin).paramInfos();
  for (let i = 0; i < 12; i++) {
    const global = [2, 5, 8, 11].includes(i);
    // detectron2: window blocks' tables are sized for the 14x14 window, global ones for 1024/16 = 64.
    assert.deepEqual(pa.get(`blocks.${i}.attn.rel_pos_h`)?.shape, global ? [127, 64] : [27, 64]);
    assert.deepEqual(pa.get(`blocks.${i}.attn.rel_pos_w`)?.shape, global ? [127, 64] : [27, 64]);
    assert.equal(pb.has(`blocks.${i}.attn.rel_pos_h`), global, `block ${i}`);
    assert.equal(pb.has(`blocks.${i}.attn.rel_pos_w`), global, `block ${i}`);
  }
  // Both keep detectron2's pretrained pos_embed layout (cls slot + 14x14), so a checkpoint loads into either.
  assert.deepEqual(pa.get('pos_embed')!.shape, [1, 197, 768]);
  assert.deepEqual(pb.get('pos_embed')!.shape, [1, 197, 768]);
  assert.equal(pa.get('pos_embed')!.decay, false);
  const names = (m: Map<string, unknown>): string[] => [...m.keys()];
  const onlyA = names(pa).filter((n) => !pb.has(n));
  assert.equal(onlyA.length, 16); // 8 window blocks x (rel_pos_h, rel_pos_w)
  assert.ok(onlyA.every((n) => /^blocks\.(0|1|3|4|6|7|9|10)\.attn\.rel_pos_[hw]$/.test(n)), onlyA.join());
  assert.deepEqual(names(pb).filter((n) => !pa.has(n)), []);
  // With a global abs-win part the only extra parameter is pos_embed_global.
  const pc = createVitDet(abswin, { absWinGlobal: [7, 7] }).paramInfos();
  assert.deepEqual(names(pc).filter((n) => !pb.has(n)), ['pos_embed_global']);
  assert.deepEqual(pc.get('pos_embed_global')!.shape, [1, 768, 7, 7]);
  // Pyramid names follow detectron2's SimpleFeaturePyramid.
  for (const n of ['simfp_2.0.weight', 'simfp_2.1.weight', 'simfp_2.3.weight', 'simfp_2.4.norm.weight', 'simfp_2.5.weight', 'simfp_3.0.weight', 'simfp_4.0.weight', 'simfp_5.2.norm.bias']) {
    assert.ok(pa.has(n), n);
  }
  assert.deepEqual(pa.get('simfp_2.0.weight')!.shape, [768, 384, 2, 2]);
  assert.deepEqual(pa.get('simfp_2.4.weight')!.shape, [256, 192, 1, 1]);
});

test('input sizes: errors name the nearest sizes that work', () => {
  const m = createVitDet('vitdet-b');
  m.checkInputSize(1024, 768);
  assert.throws(() => m.checkInputSize(1000, 1024), /1000x1024.*multiples of the patch size 16.*992 or 1008 x 1024/);
  assert.throws(() => m.checkInputSize(16, 64), /at least 32.*32 x 64/);
  assert.throws(() => vitdetSpeedConfigs('vitdet-b', [1024, 1030]), /1024 x 1024 or 1040/);
  assert.throws(() => createVitDet('vitdet-xl'), /unknown preset 'vitdet-xl'.*vitdet-b/);
  assert.throws(() => createVitDet('vitdet-b', { globalBlocks: [12] }), /global block 12 is outside 0..11/);
});

/** Forward + backward of a ViTDet at `H x W`: loss = mean over every pyramid level; returns loss and per-parameter grad norms. */
async function smokeVitDet(model: VitDet, H: number, W: number): Promise<{ loss: number; shapes: Record<string, number[]>; gradNorms: Map<string, number> }> {
  const infos = model.paramInfos();
  const weights = initWeights(infos, new Rng(7));
  const names = [...infos.keys()];
  const feeds: Record<string, ReturnType<typeof host>> = { x: host(randn(3 * H * W, new Rng(8)), [1, 3, H, W]) };
  for (const [n, v] of weights) feeds[n] = host(v.data, v.shape);
  const outNames: string[] = [];
  const out = await rt.run(
    (i, g) => {
      const p = new Params(g);
      const r = model.forward(p, i.x!);
      const levels = Object.keys(r.aux).filter((k) => /^p\d$/.test(k)).sort();
      outNames.splice(0, outNames.length, ...levels);
      // Mean squares, not means: LayerNorm outputs have a fixed mean, so a plain mean would send no gradient up.
      let loss: Tensor = reduceMean(mul(r.logits, r.logits));
      for (const k of levels) loss = add(loss, reduceMean(mul(r.aux[k]!, r.aux[k]!)));
      const params = names.map((n) => g.inputs.find((t) => t.name === n)!);
      const grads = grad(loss, params);
      const norms = concat(grads.map((gr) => reshape(reduceSum(mul(gr!, gr!)), [1])), 0);
      const o: Record<string, Tensor> = { loss, norms };
      for (const k of levels) o[k] = r.aux[k]!;
      return o;
    },
    feeds,
    `smoke:${JSON.stringify(model.config)}:${H}x${W}`,
  );
  const shapes: Record<string, number[]> = {};
  for (const k of outNames) shapes[k] = out[k]!.shape;
  const nd = out.norms!.data as Float32Array;
  return { loss: (out.loss!.data as Float32Array)[0]!, shapes, gradNorms: new Map(names.map((n, k) => [n, Math.sqrt(nd[k]!)])) };
}

for (const [H, W] of [[224, 224], [160, 288]] as const) {
  test(`vitdet-mini (full depth) forward + backward at ${H}x${W}, both recipes`, async () => {
    const recipes: Partial<VitDetConfig>[] = [{}, { posEmbed: 'abswin', relPos: 'global', absWinGlobal: [4, 4] }];
    for (const over of recipes) {
      const model = createVitDet('vitdet-mini', over);
      const r = await smokeVitDet(model, H, W);
      const C = 32;
      assert.deepEqual(r.shapes, {
        p2: [1, C, H / 4, W / 4], p3: [1, C, H / 8, W / 8], p4: [1, C, H / 16, W / 16], p5: [1, C, H / 32, W / 32],
        p6: [1, C, Math.ceil(H / 64), Math.ceil(W / 64)],
      });
      assert.ok(Number.isFinite(r.loss) && r.loss > 0);
      for (const [n, v] of r.gradNorms) assert.ok(Number.isFinite(v), `grad of ${n} is not finite`);
      for (const n of ['pos_embed', 'patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', 'blocks.3.attn.rel_pos_h', 'simfp_2.0.weight', 'simfp_5.2.weight']) {
        assert.ok(r.gradNorms.get(n)! > 0, `no gradient reaches ${n}`);
      }
      if (over.relPos === 'global') assert.equal(r.gradNorms.has('blocks.0.attn.rel_pos_h'), false);
    }
  });
}
