/**
 * The fused attention op: forward against a direct loop reference (float32 = ONNX Runtime's
 * contrib MultiHeadAttention kernel, float64 = the explicit double lowering), with and without
 * an additive bias (full and broadcast shapes, Sq != Sk, dv != dk), its VJP by gradcheck in
 * float64, and its shape errors.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/graph/index.ts';
import { type Nd, assertClose, f32, f64, randNd } from './ref.ts';

const rt = new F.Runtime({ threads: 1 });
after(() => rt.clear());

/** softmax(q_h k_h^T * scale + bias) v_h per batch and head, by loops. */
function attentionRef(q: Nd, k: Nd, v: Nd, heads: number, scale: number, bias: Nd | null): Nd {
  const [B, Sq, Ck] = q.shape as [number, number, number];
  const Sk = k.shape[1]!;
  const Cv = v.shape[2]!;
  const dk = Ck / heads;
  const dv = Cv / heads;
  const out = new Array<number>(B * Sq * Cv).fill(0);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < Sq; i++) {
        const l = new Array<number>(Sk);
        for (let j = 0; j < Sk; j++) {
          let s = 0;
          for (let c = 0; c < dk; c++) s += q.data[(b * Sq + i) * Ck + h * dk + c]! * k.data[(b * Sk + j) * Ck + h * dk + c]!;
          s *= scale;
          if (bias) {
            const [bb, bh] = bias.shape as [number, number];
            s += bias.data[(((bb === 1 ? 0 : b) * bh + (bh === 1 ? 0 : h)) * Sq + i) * Sk + j]!;
          }
          l[j] = s;
        }
        const m = Math.max(...l);
        const e = l.map((x) => Math.exp(x - m));
        const z = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < dv; c++) {
          let s = 0;
          for (let j = 0; j < Sk; j++) s += (e[j]! / z) * v.data[(b * Sk + j) * Cv + h * dv + c]!;
          out[(b * Sq + i) * Cv + h * dv + c] = s;
        }
      }
    }
  }
  return { data: out, shape: [B, Sq, Cv] };
}

interface Case {
  what: string;
  B: number;
  Sq: number;
  Sk: number;
  heads: number;
  dk: number;
  dv: number;
  bias: [number, number] | null;
}

const cases: Case[] = [
  { what: 'self-attention, 2 heads', B: 2, Sq: 5, Sk: 5, heads: 2, dk: 4, dv: 4, bias: null },
  { what: 'one head, pooled queries (Sq < Sk)', B: 3, Sq: 2, Sk: 6, heads: 1, dk: 3, dv: 3, bias: null },
  { what: 'dv != dk', B: 1, Sq: 4, Sk: 3, heads: 3, dk: 2, dv: 5, bias: null },
  { what: 'full bias [B, heads, Sq, Sk]', B: 2, Sq: 4, Sk: 4, heads: 2, dk: 3, dv: 3, bias: [2, 2] },
  { what: 'bias broadcast over the batch [1, heads, Sq, Sk]', B: 2, Sq: 3, Sk: 5, heads: 2, dk: 2, dv: 2, bias: [1, 2] },
  { what: 'bias broadcast over heads [B, 1, Sq, Sk]', B: 2, Sq: 3, Sk: 3, heads: 3, dk: 2, dv: 2, bias: [2, 1] },
];

function inputs(c: Case, seed: number): { q: Nd; k: Nd; v: Nd; bias: Nd | null } {
  return {
    q: randNd([c.B, c.Sq, c.heads * c.dk], seed),
    k: randNd([c.B, c.Sk, c.heads * c.dk], seed + 1),
    v: randNd([c.B, c.Sk, c.heads * c.dv], seed + 2),
    bias: c.bias ? randNd([c.bias[0], c.bias[1], c.Sq, c.Sk], seed + 3) : null,
  };
}

for (const dtype of ['float32', 'float64'] as const) {
  test(`attention forward (${dtype}) matches the loop reference`, async () => {
    for (const [n, c] of cases.entries()) {
      const { q, k, v, bias } = inputs(c, 10 * n + 1);
      const scale = c.dk ** -0.5 * 1.3; // not the default, so the attribute is exercised
      const conv = dtype === 'float64' ? f64 : f32;
      const feeds: Record<string, F.HostTensor> = { q: conv(q), k: conv(k), v: conv(v) };
      if (bias) feeds.bias = conv(bias);
      const out = await rt.run((i) => ({ y: F.attentionFused(i.q!, i.k!, i.v!, { heads: c.heads, scale, bias: i.bias ?? null }) }), feeds);
      // float64 is ~1e-8, not 1e-12: ORT's optimiser folds the scalar Mul into FusedMatMul, whose
      // alpha attribute is a float32 (1.3/sqrt(dk) rounds; the default-scale test below is exact).
      assertClose(out.y!, attentionRef(q, k, v, c.heads, scale, bias), dtype === 'float64' ? 1e-7 : 1e-5, `${c.what} (${dtype})`);
    }
  });
}

test('attention: the float32 lowering is one com.microsoft MultiHeadAttention node', () => {
  const g = new F.Graph();
  const q = g.input('q', [1, 4, 6]);
  const y = F.attentionFused(q, q, q, { heads: 2 });
  const low = F.lower({ y });
  const text = new TextDecoder('latin1').decode(low.bytes);
  assert.match(text, /MultiHeadAttention/);
  assert.match(text, /com\.microsoft/);
  assert.doesNotMatch(text, /Softmax/);
});

test('attention: default scale is 1/sqrt(head dim)', async () => {
  const c = cases[0]!;
  const { q, k, v } = inputs(c, 7);
  const out = await rt.run((i) => ({ y: F.attentionFused(i.q!, i.k!, i.v!, { heads: c.heads }) }), { q: f64(q), k: f64(k), v: f64(v) });
  assertClose(out.y!, attentionRef(q, k, v, c.heads, c.dk ** -0.5, null), 1e-12);
});

test('attention VJP (flash-style recompute) passes gradcheck for q, k, v and bias', async () => {
  for (const [n, c] of cases.entries()) {
    const { q, k, v, bias } = inputs(c, 100 + n);
    const feeds: Record<string, F.HostTensor> = { q: f64(q), k: f64(k), v: f64(v) };
    if (bias) feeds.bias = f64(bias);
    await F.gradcheck((i) => F.attentionFused(i.q!, i.k!, i.v!, { heads: c.heads, bias: i.bias ?? null }), feeds, { runtime: rt, eps: 1e-6, tol: 1e-6, perElementMax: 24 });
  }
});

test('attention VJP agrees with differentiating the explicit form (float32 forward kernel)', async () => {
  // Same loss through the fused op and through explicit matmul/softmax ops; gradients must match.
  const c = cases[3]!;
  const { q, k, v, bias } = inputs(c, 5);
  const R = randNd([c.B, c.Sq, c.heads * c.dv], 9);
  const run = (fused: boolean) =>
    rt.run((i) => {
      let y: F.Tensor;
      if (fused) y = F.attentionFused(i.q!, i.k!, i.v!, { heads: c.heads, bias: i.bias! });
      else {
        const h = (t: F.Tensor): F.Tensor => F.transpose(F.reshape(t, [c.B, t.shape[1]!, c.heads, t.shape[2]! / c.heads]), [0, 2, 1, 3]);
        const logits = F.add(F.matmul(F.mul(h(i.q!), c.dk ** -0.5), F.swapAxes(h(i.k!), -1, -2)), i.bias!);
        const o = F.matmul(F.softmax(logits, -1), h(i.v!));
        y = F.reshape(F.transpose(o, [0, 2, 1, 3]), [c.B, c.Sq, c.heads * c.dv]);
      }
      const loss = F.reduceSum(F.mul(y, i.r!));
      const [gq, gk, gv, gb] = F.grad(loss, [i.q!, i.k!, i.v!, i.bias!]);
      return { y, gq: gq!, gk: gk!, gv: gv!, gb: gb! };
    }, { q: f32(q), k: f32(k), v: f32(v), bias: f32(bias!), r: f32(R) });
  const [a, b] = [await run(true), await run(false)];
  for (const key of ['y', 'gq', 'gk', 'gv', 'gb']) {
    const x = a[key]!.data as Float32Array;
    const y = b[key]!.data as Float32Array;
    let md = 0;
    for (let j = 0; j < x.length; j++) md = Math.max(md, Math.abs(x[j]! - y[j]!));
    assert.ok(md < 1e-5, `${key}: fused vs explicit differ by ${md}`);
  }
});

test('attention: shape errors name the op and the shapes', () => {
  const g = new F.Graph();
  const q = g.input('q', [2, 4, 6]);
  assert.throws(() => F.attentionFused(q, q, q, { heads: 4 }), /attention: hidden sizes 6 .* divisible by 4 heads/);
  assert.throws(() => F.attentionFused(q, g.input('k', [2, 4, 8]), q, { heads: 2 }), /attention: q \[2,4,6\] and k \[2,4,8\] must have the same hidden size/);
  assert.throws(() => F.attentionFused(q, q, g.input('v', [2, 5, 6]), { heads: 2 }), /same number of tokens/);
  assert.throws(() => F.attentionFused(q, q, q, { heads: 2, bias: g.input('b', [2, 3, 4, 4]) }), /bias \[2,3,4,4\] must be \[1 or 2, 1 or 2, 4, 4\]/);
  assert.throws(() => F.attentionFused(g.input('x', [4, 6]), q, q, { heads: 2 }), /must be \[B, S, heads\*d\]/);
});
