/**
 * ResFormer beyond the square golden fixtures: the GPE and LPE on non-square grids (tokens laid
 * out (H/p) x (W/p), checked against an independent restatement of the depthwise convs), the
 * parameter-free 'sincos' variant, and the multi-resolution loss (values against a float64
 * restatement, the detached teacher).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Tensor, grad, reduceSum, stopGradient, mul } from '../../src/graph/index.ts';
import { Runtime, host, type HostTensor } from '../../src/graph/runtime.ts';
import { Params, initWeights, type Weights } from '../../src/nn/index.ts';
import { localPosEmbed } from '../../src/nn/resformer.ts';
import { createVit } from '../../src/models/vit.ts';
import { multiResLoss } from '../../src/train/multires-loss.ts';
import { resformerSincos } from '../../src/posembed/index.ts';
import { Rng } from '../../src/util/rng.ts';

const rt = new Runtime();

function randn(rng: Rng, n: number, std = 1): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * std;
  return d;
}

/** Depthwise 3x3 conv, zero padding 1, on one [C, h, w] grid (reference restatement). */
function depthwise3x3(src: ArrayLike<number>, C: number, h: number, w: number, weight: ArrayLike<number>, bias: ArrayLike<number>): Float64Array {
  const out = new Float64Array(C * h * w);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let s = bias[c]!;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const y = i + ky - 1, x = j + kx - 1;
            if (y >= 0 && y < h && x >= 0 && x < w) s += weight[c * 9 + ky * 3 + kx]! * src[(c * h + y) * w + x]!;
          }
        }
        out[(c * h + i) * w + j] = s;
      }
    }
  }
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('GPE on a non-square input: sin-cos table and conv on the (H/p) x (W/p) grid, row-major tokens, cls row 0', async () => {
  const model = createVit('resformer-mini-p4', { depth: 1 });
  const C = model.config.embedDim;
  const weights = initWeights(model.paramInfos(), new Rng('gpe'));
  // The default LPE init is zero; make every parameter matter.
  for (const [k, v] of weights) if (k.includes('get_v')) v.data.set(randn(new Rng(k), v.data.length, 0.3));
  const [H, W] = [24, 40]; // grid 6 x 10
  const [gh, gw] = [6, 10];
  const out = await rt.run(
    (i, g) => {
      const o = model.forward(new Params(g, weights), i.x!);
      return { pos: o.aux.pos_embed_tokens!, sincos: o.aux.pos_embed_sincos!, logits: o.logits };
    },
    { x: host(randn(new Rng(1), 2 * 3 * H * W), [2, 3, H, W]) },
  );
  assert.deepEqual(out.pos!.shape, [1, 1 + gh * gw, C]);
  assert.deepEqual(out.sincos!.shape, [1, C, gh, gw]);
  const table = resformerSincos(gh, gw, C).data;
  assert.ok(maxDiff(out.sincos!.data as Float32Array, table) < 1e-6);
  const conv = depthwise3x3(table, C, gh, gw, weights.get('pos_embed.embed_layer.weight')!.data, weights.get('pos_embed.embed_layer.bias')!.data);
  // tokens [1 + gh*gw, C]: row 0 (cls) is 0, row 1 + i*gw + j is conv[:, i, j]
  const expected = new Float64Array((1 + gh * gw) * C);
  for (let i = 0; i < gh; i++) for (let j = 0; j < gw; j++) for (let c = 0; c < C; c++) expected[(1 + i * gw + j) * C + c] = conv[(c * gh + i) * gw + j]!;
  assert.ok(maxDiff(out.pos!.data as Float32Array, expected) < 1e-5, 'GPE tokens match the restatement');
  assert.ok(Array.from(out.logits!.data as Float32Array).every(Number.isFinite));
});

test('LPE on a non-square grid: one depthwise conv over head_dim shared by all heads, prefix rows 0', async () => {
  const [B, heads, hd, gh, gw] = [2, 3, 4, 3, 5];
  const N = 1 + gh * gw;
  const rng = new Rng('lpe');
  const v = randn(rng, B * heads * N * hd);
  const weights: Weights = new Map([
    ['get_v.weight', { data: randn(rng, hd * 9, 0.5), shape: [hd, 1, 3, 3] }],
    ['get_v.bias', { data: randn(rng, hd, 0.1), shape: [hd] }],
  ]);
  const out = await rt.run((i, g) => ({ y: localPosEmbed(new Params(g, weights), 'get_v', i.v!, gh, gw, 1) }), { v: host(v, [B, heads, N, hd]) });
  const y = out.y!.data as Float32Array;
  const wt = weights.get('get_v.weight')!.data;
  const bs = weights.get('get_v.bias')!.data;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      const base = (b * heads + h) * N * hd;
      // [gh*gw, hd] patch rows -> [hd, gh, gw]
      const grid = new Float64Array(hd * gh * gw);
      for (let n = 0; n < gh * gw; n++) for (let c = 0; c < hd; c++) grid[c * gh * gw + n] = v[base + (1 + n) * hd + c]!;
      const ref = depthwise3x3(grid, hd, gh, gw, wt, bs);
      for (let c = 0; c < hd; c++) assert.equal(y[base + c], 0, 'cls row is 0');
      for (let n = 0; n < gh * gw; n++) {
        for (let c = 0; c < hd; c++) assert.ok(Math.abs(y[base + (1 + n) * hd + c]! - ref[c * gh * gw + n]!) < 1e-5, `b${b} h${h} n${n} c${c}`);
      }
    }
  }
  await assert.rejects(rt.run((i, g) => ({ y: localPosEmbed(new Params(g, weights), 'get_v', i.v!, gw, gh + 1, 1) }), { v: host(v, [B, heads, N, hd]) }), /16 tokens, expected 1 prefix \+ 5x4 grid = 21/);
});

test("'sincos' variant: no position parameters, the bare table with a zero cls row", async () => {
  const model = createVit('vit-mini-p4', { posEmbed: 'sincos', depth: 1 });
  const infos = model.paramInfos();
  assert.ok(![...infos.keys()].some((k) => k.startsWith('pos_embed')));
  const w = initWeights(infos, new Rng(2));
  const out = await rt.run((i, g) => ({ pos: model.forward(new Params(g, w), i.x!).aux.pos_embed_tokens! }), { x: host(new Float32Array(3 * 20 * 28), [1, 3, 20, 28]) });
  const C = 96, gh = 5, gw = 7;
  const table = resformerSincos(gh, gw, C).data;
  const pos = out.pos!.data as Float32Array;
  for (let c = 0; c < C; c++) assert.equal(pos[c], 0);
  for (let i = 0; i < gh; i++) for (let j = 0; j < gw; j++) for (let c = 0; c < C; c++) {
    assert.ok(Math.abs(pos[(1 + i * gw + j) * C + c]! - table[(c * gh + i) * gw + j]!) < 1e-6);
  }
});

/** Float64 restatement of the official chain (engine.py + losses.py), for random inputs. */
function referenceLoss(logits: Float32Array[], cls: Float32Array[], labels: number[], K: number, C: number, alpha: number): { total: number; terms: number[] } {
  const B = labels.length;
  const terms: number[] = [];
  for (let r = 0; r < logits.length; r++) {
    let ce = 0;
    for (let b = 0; b < B; b++) {
      const row = Array.from(logits[r]!.subarray(b * K, (b + 1) * K));
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      ce += lse - row[labels[b]!]!;
    }
    let loss = ce / B;
    if (r > 0) {
      let sl1 = 0;
      for (let b = 0; b < B; b++) {
        const t = Array.from(cls[r - 1]!.subarray(b * C, (b + 1) * C));
        const mean = t.reduce((s, v) => s + v, 0) / C;
        const variance = t.reduce((s, v) => s + (v - mean) ** 2, 0) / C;
        for (let c = 0; c < C; c++) {
          const d = Math.abs(cls[r]![b * C + c]! - (t[c]! - mean) / Math.sqrt(variance + 1e-6));
          sl1 += d < 1 ? 0.5 * d * d : d - 0.5;
        }
      }
      loss += alpha * (sl1 / (B * C));
    }
    terms.push(loss);
  }
  return { total: terms.reduce((a, b) => a + b, 0) / terms.length, terms };
}

test('multiResLoss matches a float64 restatement for 4 resolutions and alpha 0.7', async () => {
  const [B, K, C, R, alpha] = [3, 7, 12, 4, 0.7];
  const rng = new Rng('loss');
  const logits = Array.from({ length: R }, () => randn(rng, B * K, 2));
  const cls = Array.from({ length: R }, () => randn(rng, B * C, 1.5));
  const labels = [4, 0, 6];
  const target = new Float32Array(B * K);
  labels.forEach((y, b) => (target[b * K + y] = 1));
  const feeds: Record<string, HostTensor> = { target: host(target, [B, K]) };
  for (let r = 0; r < R; r++) {
    feeds[`l${r}`] = host(logits[r]!, [B, K]);
    feeds[`c${r}`] = host(cls[r]!, [B, C]);
  }
  const out = await rt.run((i) => {
    const L = multiResLoss([0, 1, 2, 3].map((r) => i[`l${r}`]!), [0, 1, 2, 3].map((r) => i[`c${r}`]!), i.target!, alpha);
    const o: Record<string, Tensor> = { total: L.total };
    L.terms.forEach((t, r) => (o[`t${r}`] = t.loss));
    assert.equal(L.terms[0]!.distill, null);
    return o;
  }, feeds);
  const ref = referenceLoss(logits, cls, labels, K, C, alpha);
  assert.ok(Math.abs((out.total!.data as Float32Array)[0]! - ref.total) < 1e-5);
  for (let r = 0; r < R; r++) assert.ok(Math.abs((out[`t${r}`]!.data as Float32Array)[0]! - ref.terms[r]!) < 1e-5, `term ${r}`);
});

test('the teacher is detached: no gradient reaches the larger resolution through the distillation term', async () => {
  const [B, K, C] = [2, 5, 8];
  const rng = new Rng('detach');
  const feeds = {
    l0: host(randn(rng, B * K), [B, K]), l1: host(randn(rng, B * K), [B, K]),
    c0: host(randn(rng, B * C), [B, C]), c1: host(randn(rng, B * C), [B, C]),
    target: host(Float32Array.from([1, 0, 0, 0, 0, 0, 0, 1, 0, 0]), [B, K]),
  };
  const out = await rt.run((i) => {
    const L = multiResLoss([i.l0!, i.l1!], [i.c0!, i.c1!], [i.target!, i.target!], 1);
    const [g0, g1] = grad(L.total, [i.c0!, i.c1!]);
    // stopGradient is the identity forward and blocks gradients (a loss through it alone has zero gradient)
    const [gs] = grad(reduceSum(mul(stopGradient(i.c0!), i.c0!)), [i.c0!]);
    return { g0: g0!, g1: g1!, gs: gs!, same: stopGradient(i.c1!) };
  }, feeds);
  assert.ok((out.g0!.data as Float32Array).every((v) => v === 0), 'teacher cls gets no gradient');
  assert.ok((out.g1!.data as Float32Array).some((v) => v !== 0), 'student cls gets gradient');
  // d/dc0 sum(sg(c0) * c0) = sg(c0) = c0 (only the non-detached factor differentiates)
  assert.ok(maxDiff(out.gs!.data as Float32Array, feeds.c0.data as Float32Array) < 1e-7);
  assert.deepEqual(Array.from(out.same!.data as Float32Array), Array.from(feeds.c1.data as Float32Array));
  await assert.rejects(rt.run((i) => ({ y: multiResLoss([i.l0!, i.l1!], [i.c0!], i.target!, 1).total }), feeds), /2 logits but 1 cls tokens/);
});
