/**
 * Forward values of every op against direct TypeScript references (test/graph/ref.ts) on
 * small inputs, broadcasting included. float64 wherever ONNX Runtime's CPU provider has a
 * double kernel (exact to ~1e-12); float32 for Erf/Gelu(erf)/Conv/LayerNormalization kernels.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/graph/index.ts';
import {
  type Nd, assertClose, at, broadcast2, conv2dRef, erfRef, f32, f64, generate, geluRef, geluTanhRef, layerNormRef, map,
  matmulRef, randNd, reduceRef, softmaxRef, transposeRef,
} from './ref.ts';

const rt = new F.Runtime({ threads: 1 });
after(() => rt.clear());

type Unary = (x: F.Tensor) => F.Tensor;
type Binary = (a: F.Tensor, b: F.Tensor) => F.Tensor;

async function run1(f: Unary, x: Nd, dtype: 'float64' | 'float32' = 'float64'): Promise<F.HostTensor> {
  const out = await rt.run((i) => ({ y: f(i.x!) }), { x: dtype === 'float64' ? f64(x) : f32(x) });
  return out.y!;
}

async function run2(f: Binary, a: Nd, b: Nd): Promise<F.HostTensor> {
  const out = await rt.run((i) => ({ y: f(i.a!, i.b!) }), { a: f64(a), b: f64(b) });
  return out.y!;
}

// Pairs of shapes that exercise broadcasting: equal, scalar-like, trailing, middle, both sides.
const shapePairs: [number[], number[]][] = [
  [[2, 3], [2, 3]],
  [[2, 3], []],
  [[2, 3, 4], [4]],
  [[2, 1, 4], [3, 1]],
  [[1, 3], [2, 1]],
];

const binaries: [string, Binary, (x: number, y: number) => number][] = [
  ['add', F.add, (x, y) => x + y],
  ['sub', F.sub, (x, y) => x - y],
  ['mul', F.mul, (x, y) => x * y],
  ['div', F.div, (x, y) => x / y],
  ['maximum', F.maximum, (x, y) => Math.max(x, y)],
  ['minimum', F.minimum, (x, y) => Math.min(x, y)],
];

for (const [name, op, ref] of binaries) {
  test(`forward ${name} with broadcasting`, async () => {
    for (const [sa, sb] of shapePairs) {
      const a = randNd(sa, 1);
      const b = map(randNd(sb, 2), (v) => (name === 'div' ? v + 2 * Math.sign(v || 1) : v));
      assertClose(await run2(op, a, b), broadcast2(a, b, ref), 1e-12, `${name} ${sa} ${sb}`);
    }
  });
}

test('forward pow, comparisons, where', async () => {
  const a = map(randNd([2, 3], 3), (v) => Math.abs(v) + 0.1);
  const b = randNd([3], 4);
  assertClose(await run2(F.pow, a, b), broadcast2(a, b, (x, y) => x ** y), 1e-12, 'pow');
  const cmp: [string, (a: F.Tensor, b: F.Tensor) => F.Tensor, (x: number, y: number) => boolean][] = [
    ['less', F.less, (x, y) => x < y],
    ['greater', F.greater, (x, y) => x > y],
    ['lessEqual', F.lessEqual, (x, y) => x <= y],
    ['greaterEqual', F.greaterEqual, (x, y) => x >= y],
    ['equal', F.equal, (x, y) => x === y],
  ];
  const c = { data: [0.5, -0.2, 0.3, 0.5, 0.1, -0.2], shape: [2, 3] };
  const d = { data: [0.5, 0.1, -0.2], shape: [3] };
  for (const [name, op, ref] of cmp) {
    const y = await run2((p, q) => F.cast(op(p, q), 'float64'), c, d);
    assertClose(y, broadcast2(c, d, (x, z) => (ref(x, z) ? 1 : 0)), 0, name);
  }
  const w = await run2((p, q) => F.where(F.greater(p, 0), p, q), c, d);
  assertClose(w, broadcast2(c, d, (x, z) => (x > 0 ? x : z)), 0, 'where');
  const wn = await run1((p) => F.where(F.less(p, 0), 0, p), c);
  assertClose(wn, map(c, (x) => (x < 0 ? 0 : x)), 0, 'where with numbers');
  const and = await run2((p, q) => F.cast(F.and(F.greater(p, 0), F.greater(q, 0)), 'float64'), c, d);
  assertClose(and, broadcast2(c, d, (x, z) => (x > 0 && z > 0 ? 1 : 0)), 0, 'and');
});

test('forward unary ops', async () => {
  const x = randNd([2, 5], 5);
  const pos = map(x, (v) => Math.abs(v) + 0.05);
  const unaries: [string, Unary, (v: number) => number, Nd][] = [
    ['neg', F.neg, (v) => -v, x],
    ['exp', F.exp, Math.exp, x],
    ['log', F.log, Math.log, pos],
    ['sqrt', F.sqrt, Math.sqrt, pos],
    ['tanh', F.tanh, Math.tanh, x],
    ['abs', F.abs, Math.abs, x],
    ['sign', F.sign, Math.sign, x],
    ['relu', F.relu, (v) => Math.max(v, 0), x],
    ['sigmoid', F.sigmoid, (v) => 1 / (1 + Math.exp(-v)), x],
    ['square', F.square, (v) => v * v, x],
  ];
  for (const [name, op, ref, inp] of unaries) assertClose(await run1(op, inp), map(inp, ref), 1e-12, name);
  // Erf and the erf GELU have only float32 kernels in ONNX Runtime CPU.
  const big = map(randNd([3, 7], 6), (v) => 3 * v);
  assertClose(await run1(F.erf, big, 'float32'), map(big, erfRef), 2e-6, 'erf');
  assertClose(await run1((t) => F.gelu(t), big, 'float32'), map(big, geluRef), 5e-6, 'gelu erf');
  // ORT's double Gelu(tanh) rounds its constants to float (observed error ~5e-9).
  assertClose(await run1((t) => F.gelu(t, 'tanh'), big), map(big, geluTanhRef), 1e-7, 'gelu tanh');
  const c = await run1((t) => F.cast(F.cast(F.mul(t, 3), 'int64'), 'float64'), big);
  assertClose(c, map(big, (v) => Math.trunc(3 * v)), 0, 'cast float->int64 truncates');
});

test('forward matmul (batched, broadcast batch) and linear', async () => {
  const cases: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[2, 3, 4], [4, 2]],
    [[2, 1, 3, 4], [3, 4, 2]],
  ];
  for (const [sa, sb] of cases) {
    const a = randNd(sa, 7);
    const b = randNd(sb, 8);
    assertClose(await run2(F.matmul, a, b), matmulRef(a, b), 1e-12, `matmul ${sa} ${sb}`);
  }
  const x = randNd([2, 3, 4], 9);
  const w = randNd([5, 4], 10);
  const bias = randNd([5], 11);
  const out = await rt.run((i) => ({ y: F.linear(i.x!, i.w!, i.b!) }), { x: f64(x), w: f64(w), b: f64(bias) });
  const ref = broadcast2(matmulRef(x, transposeRef(w, [1, 0])), bias, (p, q) => p + q);
  assertClose(out.y!, ref, 1e-12, 'linear');
});

test('forward shape ops: reshape, transpose, expand, slice (strided, negative), concat, split', async () => {
  const x = randNd([2, 3, 4], 12);
  assertClose(await run1((t) => F.reshape(t, [6, -1]), x), { data: x.data, shape: [6, 4] }, 0, 'reshape');
  assertClose(await run1((t) => F.transpose(t, [2, 0, 1]), x), transposeRef(x, [2, 0, 1]), 0, 'transpose');
  assertClose(await run1((t) => F.swapAxes(t, 0, -1), x), transposeRef(x, [2, 1, 0]), 0, 'swapAxes');
  const e = randNd([3, 1], 13);
  assertClose(await run1((t) => F.expandTo(t, [2, 3, 4]), e), generate([2, 3, 4], ([, j]) => at(e, [j!, 0])), 0, 'expand');
  assertClose(await run1((t) => F.slice(t, 2, 1, 4, 2), x), generate([2, 3, 2], ([i, j, k]) => at(x, [i!, j!, 1 + 2 * k!])), 0, 'slice step 2');
  assertClose(await run1((t) => F.slice(t, -2, -2), x), generate([2, 2, 4], ([i, j, k]) => at(x, [i!, j! + 1, k!])), 0, 'slice negative');
  assertClose(await run1((t) => F.slice(t, 1, 0, 3, 3), x), generate([2, 1, 4], ([i, , k]) => at(x, [i!, 0, k!])), 0, 'slice step 3');
  const y = randNd([2, 2, 4], 14);
  const cat = await run2((p, q) => F.concat([p, q, p], 1), x, y);
  assertClose(cat, generate([2, 8, 4], ([i, j, k]) => (j! < 3 ? at(x, [i!, j!, k!]) : j! < 5 ? at(y, [i!, j! - 3, k!]) : at(x, [i!, j! - 5, k!]))), 0, 'concat');
  const parts = await rt.run((i) => {
    const [p, q] = F.split(i.x!, 2, [1, 3]);
    return { p: p!, q: q! };
  }, { x: f64(x) });
  assertClose(parts.p!, generate([2, 3, 1], ([i, j]) => at(x, [i!, j!, 0])), 0, 'split first');
  assertClose(parts.q!, generate([2, 3, 3], ([i, j, k]) => at(x, [i!, j!, k! + 1])), 0, 'split second');
  assertClose(await run1((t) => F.flatten(t, 1), x), { data: x.data, shape: [2, 12] }, 0, 'flatten');
  assertClose(await run1((t) => F.unsqueeze(t, -1), x), { data: x.data, shape: [2, 3, 4, 1] }, 0, 'unsqueeze');
});

test('forward pad, tile, gather (repeated indices, 2-D indices)', async () => {
  const x = randNd([2, 3], 15);
  const pd = await run1((t) => F.pad(t, [1, 0, 0, 2], -7), x);
  assertClose(pd, generate([3, 5], ([i, j]) => (i! >= 1 && j! < 3 ? at(x, [i! - 1, j!]) : -7)), 0, 'pad');
  const pa = await run1((t) => F.padAxis(t, 1, 2, 1), x);
  assertClose(pa, generate([2, 6], ([i, j]) => (j! >= 2 && j! < 5 ? at(x, [i!, j! - 2]) : 0)), 0, 'padAxis');
  assertClose(await run1((t) => F.tile(t, [2, 3]), x), generate([4, 9], ([i, j]) => at(x, [i! % 2, j! % 3])), 0, 'tile');
  const idx = [2, 0, 2, 1];
  assertClose(await run1((t) => F.gather(t, 1, idx), x), generate([2, 4], ([i, j]) => at(x, [i!, idx[j!]!])), 0, 'gather');
  assertClose(await run1((t) => F.gather(t, 1, idx, [2, 2]), x), generate([2, 2, 2], ([i, j, k]) => at(x, [i!, idx[2 * j! + k!]!])), 0, 'gather 2-D indices');
  assertClose(await run1((t) => F.scatterAddRows(t, [1, 1], 3), x), generate([3, 3], ([i, j]) => (i === 1 ? at(x, [0, j!]) + at(x, [1, j!]) : 0)), 1e-15, 'scatterAddRows');
});

test('forward reductions, variance, argmax, softmax, logSoftmax', async () => {
  const x = randNd([2, 3, 4], 16);
  const sum = (p: number, q: number): number => p + q;
  assertClose(await run1((t) => F.reduceSum(t, [0, 2], true), x), reduceRef(x, [0, 2], sum, 0), 1e-12, 'reduceSum');
  const total = await run1((t) => F.reduceSum(t), x);
  assert.deepEqual(total.shape, []);
  assert.ok(Math.abs(Number(total.data[0]) - x.data.reduce(sum, 0)) < 1e-12);
  assertClose(await run1((t) => F.reduceMean(t, 1, true), x), map(reduceRef(x, [1], sum, 0), (v) => v / 3), 1e-12, 'reduceMean');
  assertClose(await run1((t) => F.reduceMax(t, -1, true), x), reduceRef(x, [2], Math.max, -Infinity), 0, 'reduceMax');
  const mean = map(reduceRef(x, [2], sum, 0), (v) => v / 4);
  const sq = broadcast2(x, mean, (p, q) => (p - q) ** 2);
  assertClose(await run1((t) => F.variance(t, -1, true), x), map(reduceRef(sq, [2], sum, 0), (v) => v / 4), 1e-12, 'variance');
  assertClose(await run1((t) => F.variance(t, -1, true, true), x), map(reduceRef(sq, [2], sum, 0), (v) => v / 3), 1e-12, 'variance unbiased');
  const am = await run1((t) => F.cast(F.argmax(t, 1), 'float64'), x);
  assertClose(am, generate([2, 4], ([i, k]) => {
    const col = [0, 1, 2].map((j) => at(x, [i!, j, k!]));
    return col.indexOf(Math.max(...col));
  }), 0, 'argmax');
  assertClose(await run1((t) => F.softmax(t, -1), x), softmaxRef(x), 1e-12, 'softmax');
  assertClose(await run1((t) => F.logSoftmax(t, -1), x), map(softmaxRef(x), Math.log), 1e-12, 'logSoftmax');
  const sm1 = await run1((t) => F.softmax(t, 1), x);
  assertClose(sm1, transposeRef(softmaxRef(transposeRef(x, [0, 2, 1])), [0, 2, 1]), 1e-12, 'softmax axis 1');
});

test('forward layerNorm in float64 (primitive lowering) and float32 (ORT kernel), with and without affine', async () => {
  const x = map(randNd([2, 3, 6], 17), (v) => 3 * v + 1);
  const w = randNd([6], 18);
  const b = randNd([6], 19);
  const o64 = await rt.run((i) => ({ y: F.layerNorm(i.x!, i.w!, i.b!, 1e-5) }), { x: f64(x), w: f64(w), b: f64(b) });
  assertClose(o64.y!, layerNormRef(x, w.data, b.data, 1e-5), 1e-12, 'layerNorm f64');
  const o32 = await rt.run((i) => ({ y: F.layerNorm(i.x!, i.w!, i.b!, 1e-5) }), { x: f32(x), w: f32(w), b: f32(b) });
  assertClose(o32.y!, layerNormRef(x, w.data, b.data, 1e-5), 1e-5, 'layerNorm f32');
  const plain = await run1((t) => F.layerNorm(t, null, null, 1e-6), x);
  assertClose(plain, layerNormRef(x, new Array<number>(6).fill(1), new Array<number>(6).fill(0), 1e-6), 1e-12, 'layerNorm no affine');
});

test('forward conv2d vs a naive convolution: stride, padding, dilation, groups, depthwise, patchify', async () => {
  const cases: { x: number[]; w: number[]; stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number; bias: boolean }[] = [
    { x: [2, 3, 7, 6], w: [4, 3, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1, bias: true },
    { x: [1, 4, 9, 8], w: [6, 2, 3, 2], stride: [2, 3], padding: [1, 0], dilation: [2, 1], groups: 2, bias: false },
    { x: [2, 5, 6, 6], w: [5, 1, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 5, bias: true },
    { x: [1, 3, 8, 12], w: [4, 3, 4, 4], stride: [4, 4], padding: [0, 0], dilation: [1, 1], groups: 1, bias: true },
  ];
  for (const [k, c] of cases.entries()) {
    const x = randNd(c.x, 20 + k);
    const w = randNd(c.w, 30 + k);
    const b = randNd([c.w[0]!], 40 + k);
    const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
    const out = await rt.run((i) => ({ y: F.conv2d(i.x!, i.w!, c.bias ? i.b! : null, opts) }), { x: f32(x), w: f32(w), b: f32(b) });
    const ref = conv2dRef(x, w, c.bias ? b.data : null, c.stride, c.padding, c.dilation, c.groups);
    assertClose(out.y!, ref, 2e-5, `conv2d case ${k}`);
    // The im2col decomposition (which defines conv's VJP) computes the same thing, in float64.
    const attrs = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
    const im = await rt.run((i) => ({ y: F.conv2dIm2col(i.x!, i.w!, c.bias ? i.b! : null, attrs) }), { x: f64(x), w: f64(w), b: f64(b) });
    assertClose(im.y!, ref, 1e-12, `conv2dIm2col case ${k}`);
  }
});

test('forward composites: maxPool2d, smoothL1, softCrossEntropy, oneHot', async () => {
  const x = randNd([1, 2, 4, 6], 50);
  assertClose(await run1((t) => F.maxPool2d(t, 2), x), generate([1, 2, 2, 3], ([n, c, i, j]) =>
    Math.max(...[0, 1].flatMap((u) => [0, 1].map((v) => at(x, [n!, c!, 2 * i! + u, 2 * j! + v])))),
  ), 0, 'maxPool2d');
  const a = map(randNd([3, 4], 51), (v) => 2 * v);
  const b = randNd([3, 4], 52);
  const sl = await run2((p, q) => F.smoothL1(p, q, 0.5), a, b);
  const d = a.data.map((v, i) => Math.abs(v - b.data[i]!));
  const want = d.map((v) => (v <= 0.5 ? (0.5 * v * v) / 0.5 : v - 0.25)).reduce((p, q) => p + q, 0) / d.length;
  assert.ok(Math.abs(Number(sl.data[0]) - want) < 1e-12, `smoothL1 ${sl.data[0]} vs ${want}`);
  const tgt = F.oneHot([2, 0, 3], 4, 0.1);
  assert.deepEqual([...tgt.slice(0, 4)].map((v) => +v.toFixed(6)), [0.025, 0.025, 0.925, 0.025]);
  const ce = await run2(F.softCrossEntropy, a, { data: [...tgt], shape: [3, 4] });
  const ls = map(softmaxRef(a), Math.log);
  const wantCe = -ls.data.reduce((p, v, i) => p + v * tgt[i]!, 0) / 3;
  assert.ok(Math.abs(Number(ce.data[0]) - wantCe) < 1e-6, `softCrossEntropy ${ce.data[0]} vs ${wantCe}`);
  assert.throws(() => F.oneHot([4], 4), /label 4 at 0 is outside \[0, 4\)/);
});
