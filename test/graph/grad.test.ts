/**
 * Every differentiable op's VJP against central finite differences (gradcheck), in float64
 * where ONNX Runtime's CPU provider has double kernels. Conv and the erf GELU have only float
 * kernels: conv is checked in float32 (it is linear, so central differences are exact up to
 * rounding) and through its im2col decomposition in float64; GELU's VJP against the closed form.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/graph/index.ts';
import { type Nd, f32, f64, map, randNd } from './ref.ts';

const rt = new F.Runtime({ threads: 1 });
after(() => rt.clear());

const check = (build: F.GradcheckBuild, inputs: Record<string, Nd>, opts: F.GradcheckOptions = {}): Promise<F.GradcheckReport> => {
  const feeds: Record<string, F.HostTensor> = {};
  for (const [k, v] of Object.entries(inputs)) feeds[k] = f64(v);
  return F.gradcheck(build, feeds, { runtime: rt, eps: 1e-6, tol: 1e-6, ...opts });
};

/** Values bounded away from 0 (kinks of abs/relu/sign) and from each other's neighbourhood. */
const away = (n: Nd): Nd => map(n, (v) => v + 0.1 * Math.sign(v || 1));

test('gradcheck itself fails on a wrong VJP', async () => {
  // A deliberately wrong op: forward is Exp, VJP claims d/dx = 2.
  const wrong: F.OpDef = {
    name: 'wrongExp',
    infer: (ins) => [{ shape: [...ins[0]!.shape], dtype: ins[0]!.dtype }],
    lower: (ctx, n) => ctx.emit('Exp', [ctx.name(n.inputs[0]!)], [ctx.name(n.outputs[0]!)]),
    vjp: (_n, gs) => [F.mul(gs[0]!, 2)],
  };
  await assert.rejects(check((i, g) => g.apply(wrong, [i.x!])[0]!, { x: randNd([3], 1) }), /gradcheck: gradients differ.*x\[/);
  const rep = await check((i, g) => g.apply(wrong, [i.x!])[0]!, { x: randNd([3], 1) }, { throwOnFail: false });
  assert.equal(rep.ok, false);
  assert.equal(rep.entries.length, 4, 'projection + 3 elements');
});

test('grad: binary elementwise ops with broadcasting (sumTo adjoint)', async () => {
  const pairs: [number[], number[]][] = [
    [[2, 3], [2, 3]],
    [[2, 3, 4], [4]],
    [[2, 1, 4], [3, 1]],
    [[1, 3], [2, 1]],
    [[2, 3], []],
  ];
  const ops: [string, (a: F.Tensor, b: F.Tensor) => F.Tensor][] = [
    ['add', F.add],
    ['sub', F.sub],
    ['mul', F.mul],
    ['div', F.div],
    ['maximum', F.maximum],
    ['minimum', F.minimum],
  ];
  for (const [name, op] of ops) {
    for (const [sa, sb] of pairs) {
      const b = name === 'div' ? map(randNd(sb, 3), (v) => v + 2 * Math.sign(v || 1)) : randNd(sb, 3);
      await check((i) => op(i.a!, i.b!), { a: randNd(sa, 2), b }).catch((e: Error) => {
        throw new Error(`${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}: ${e.message}`);
      });
    }
  }
  await check((i) => F.pow(i.a!, i.b!), { a: map(randNd([2, 3], 4), (v) => Math.abs(v) + 0.2), b: randNd([3], 5) });
  await check((i) => F.add(F.mul(i.a!, 3), F.div(2, i.a!)), { a: away(randNd([2, 2], 6)) });
});

test('grad: unary ops', async () => {
  const x = away(randNd([2, 4], 7));
  const unaries: [string, (t: F.Tensor) => F.Tensor, Nd][] = [
    ['neg', F.neg, x],
    ['exp', F.exp, x],
    ['log', F.log, map(x, Math.abs)],
    ['sqrt', F.sqrt, map(x, Math.abs)],
    ['tanh', F.tanh, x],
    ['abs', F.abs, x],
    ['relu', F.relu, x],
    ['sigmoid', F.sigmoid, x],
    ['square', F.square, x],
    ['gelu tanh', (t) => F.gelu(t, 'tanh'), x],
    // erf has no double kernel; its VJP is checked inside a graph that never evaluates Erf:
    // d/dx of (erf(x)) · 1 only needs exp, so check erf's VJP against its formula below.
  ];
  for (const [name, op, inp] of unaries) {
    await check((i) => op(i.x!), { x: inp }).catch((e: Error) => {
      throw new Error(`${name}: ${e.message}`);
    });
  }
  // sign: zero gradient.
  const z = await rt.run((i) => ({ g: F.grad(F.reduceSum(F.mul(F.sign(i.x!), i.x!)), [i.x!])[0]! }), { x: f64(x) });
  assert.deepEqual([...(z.g!.data as Float64Array)], x.data.map(Math.sign), 'd/dx sign(x)*x = sign(x)');
});

test('grad: erf and erf-GELU VJPs (float32 kernels) against the closed forms and central differences', async () => {
  const x = map(randNd([3, 5], 8), (v) => 2.5 * v);
  const out = await rt.run((i) => {
    const [ge, gg] = F.grad(F.add(F.reduceSum(F.erf(i.x!)), F.reduceSum(F.gelu(i.y!))), [i.x!, i.y!]);
    return { ge: ge!, gg: gg! };
  }, { x: f32(x), y: f32(x) });
  const phi = (v: number): number => Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
  x.data.forEach((v, k) => {
    assert.ok(Math.abs(Number(out.ge!.data[k]) - (2 / Math.sqrt(Math.PI)) * Math.exp(-v * v)) < 1e-6, `erf' at ${v}`);
    const Phi = 0.5 * (1 + erfApprox(v / Math.SQRT2));
    assert.ok(Math.abs(Number(out.gg!.data[k]) - (Phi + v * phi(v))) < 1e-5, `gelu' at ${v}: ${out.gg!.data[k]}`);
  });
  await F.gradcheck((i) => F.gelu(i.x!), { x: f32(x) }, { runtime: rt, eps: 1e-2, tol: 2e-3 });
});

/** erf via Maclaurin series (test-only; |x| < 3). */
function erfApprox(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 100; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 * sum) / Math.sqrt(Math.PI);
}

test('grad: matmul (batched, broadcast batch dims) and linear', async () => {
  await check((i) => F.matmul(i.a!, i.b!), { a: randNd([3, 4], 9), b: randNd([4, 2], 10) });
  await check((i) => F.matmul(i.a!, i.b!), { a: randNd([2, 1, 3, 4], 11), b: randNd([3, 4, 2], 12) });
  await check((i) => F.linear(i.x!, i.w!, i.b!), { x: randNd([2, 3, 4], 13), w: randNd([5, 4], 14), b: randNd([5], 15) });
  // 2-D b under a batched a: the weight gradient is one GEMM over the folded batch.
  await check((i) => F.matmul(i.a!, i.b!), { a: randNd([2, 3, 4], 16), b: randNd([4, 2], 17) });
  await check((i) => F.matmul(i.a!, F.swapAxes(i.b!, 0, 1)), { a: randNd([2, 2, 3, 4], 18), b: randNd([2, 4], 19) });
  await check((i) => F.matmul(i.a!, F.transpose(i.b!, [0, 2, 1])), { a: randNd([2, 3, 4], 20), b: randNd([2, 5, 4], 21) });
  await check((i) => F.matmul(i.a!, F.swapAxes(i.b!, -1, -2)), { a: randNd([3, 4], 22), b: randNd([5, 4], 23) });
});

test('grad: reused tensors sum their gradients', async () => {
  const x = randNd([2, 3], 16);
  await check((i) => F.add(F.mul(i.x!, i.x!), F.mul(F.exp(i.x!), i.x!)), { x });
  const two = await rt.run((i) => ({ g: F.grad(F.reduceSum(F.add(i.x!, i.x!)), [i.x!])[0]! }), { x: f64(x) });
  assert.deepEqual([...(two.g!.data as Float64Array)], new Array<number>(6).fill(2));
  // Unused inputs get zero gradients of their own shape.
  const un = await rt.run((i) => ({ g: F.grad(F.reduceSum(i.x!), [i.y!])[0]! }), { x: f64(x), y: f64(randNd([4], 1)) });
  assert.deepEqual(un.g!.shape, [4]);
  assert.deepEqual([...(un.g!.data as Float64Array)], [0, 0, 0, 0]);
});

test('grad: shape ops (reshape, transpose, expand, strided slices, concat, split, pad, tile)', async () => {
  const x = randNd([2, 3, 4], 17);
  await check((i) => F.transpose(F.reshape(i.x!, [6, 4]), [1, 0]), { x });
  await check((i) => F.expandTo(i.y!, [2, 3, 4]), { x, y: randNd([3, 1], 18) }, { wrt: ['y'] });
  await check((i) => F.slice(i.x!, 2, 1, 4, 2), { x });
  await check((i) => F.slice(F.slice(i.x!, 1, 0, 3, 2), 2, -3, 4, 3), { x });
  await check((i) => F.slice(i.x!, 1, 1, 3), { x });
  await check((i) => F.concat([i.x!, F.mul(i.x!, 2), i.y!], 1), { x, y: randNd([2, 2, 4], 19) });
  await check((i) => {
    const [a, b] = F.split(i.x!, 2, [1, 3]);
    return F.mul(F.expandTo(a!, [2, 3, 3]), b!);
  }, { x });
  await check((i) => F.pad(i.x!, [0, 1, 2, 1, 0, 1], 0.5), { x });
  await check((i) => F.tile(i.x!, [2, 1, 3]), { x });
});

test('grad: gather with permutation, repeated (ScatterND add) and 2-D indices; scatterAddRows', async () => {
  const x = randNd([3, 4, 2], 20);
  await check((i) => F.gather(i.x!, 1, [2, 0, 3, 1]), { x });
  await check((i) => F.gather(i.x!, 1, [2, 2, 0, 2, 1]), { x });
  await check((i) => F.gather(i.x!, 0, [1, 1, 0, 2, 1, 0], [2, 3]), { x });
  await check((i) => F.gather(i.x!, 2, [1]), { x });
  await check((i) => F.scatterAddRows(i.x!, [1, 0, 1], 4), { x });
  // The non-permutation VJP lowers to ScatterND with reduction 'add': repeated indices accumulate.
  const g = await rt.run((i) => ({ g: F.grad(F.reduceSum(F.gather(i.v!, 0, [2, 2, 0, 2])), [i.v!])[0]! }), { v: f64(randNd([4], 1)) });
  assert.deepEqual([...(g.g!.data as Float64Array)], [1, 0, 3, 0]);
});

test('grad: reductions, variance, reduceMax routes to the first arg-max', async () => {
  const x = randNd([2, 3, 4], 21);
  await check((i) => F.reduceSum(i.x!, [0, 2], true), { x });
  await check((i) => F.reduceSum(i.x!, 1), { x });
  await check((i) => F.reduceMean(i.x!, [1, 2]), { x });
  await check((i) => F.reduceMax(i.x!, 1), { x });
  await check((i) => F.reduceMax(i.x!, -1, true), { x });
  await check((i) => F.variance(i.x!, -1, true), { x });
  await check((i) => F.variance(i.x!, [0, 1], false, true), { x });
  // Ties: gradient goes to the first maximum only (torch.max(dim) semantics).
  const t = await rt.run((i) => ({ g: F.grad(F.reduceSum(F.reduceMax(i.v!, 1)), [i.v!])[0]! }), { v: F.host(Float64Array.from([1, 3, 3, 2, 5, 5, 5, 0]), [2, 4]) });
  assert.deepEqual([...(t.g!.data as Float64Array)], [0, 1, 0, 0, 1, 0, 0, 0]);
});

test('grad: softmax, logSoftmax, layerNorm (float64 primitive lowering and float32 ORT kernel)', async () => {
  const x = randNd([2, 3, 5], 22);
  await check((i) => F.softmax(i.x!, -1), { x });
  await check((i) => F.softmax(i.x!, 1), { x });
  await check((i) => F.logSoftmax(i.x!, -1), { x });
  const w = randNd([5], 23);
  const b = randNd([5], 24);
  const xs = map(x, (v) => 2 * v + 0.5);
  await check((i) => F.layerNorm(i.x!, i.w!, i.b!, 1e-5), { x: xs, w, b });
  await check((i) => F.layerNorm(i.x!, null, null, 1e-6), { x: xs });
  // float32: the VJP reads the kernel's mean / inverse-std outputs; a std/rstd mix-up would show here.
  await F.gradcheck((i) => F.layerNorm(i.x!, i.w!, i.b!, 1e-5), { x: f32(xs), w: f32(w), b: f32(b) }, { runtime: rt, eps: 1e-2, tol: 5e-3 });
});

test('grad: conv2d with stride/padding/dilation/groups (float32 Conv, float64 im2col)', async () => {
  const cases: { x: number[]; w: number[]; stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number }[] = [
    { x: [1, 2, 5, 4], w: [3, 2, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 },
    { x: [2, 4, 7, 6], w: [4, 2, 2, 3], stride: [2, 1], padding: [0, 1], dilation: [2, 1], groups: 2 },
    { x: [1, 3, 5, 5], w: [3, 1, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 3 },
    { x: [1, 2, 4, 6], w: [3, 2, 2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], groups: 1 },
    // stride 1: dx is one transposed convolution; grouped with several outputs per group, non-square, pad = k - 1
    { x: [2, 4, 6, 5], w: [6, 2, 3, 2], stride: [1, 1], padding: [2, 0], dilation: [1, 1], groups: 2 },
  ];
  for (const [k, c] of cases.entries()) {
    const x = randNd(c.x, 60 + k);
    const w = randNd(c.w, 70 + k);
    const b = randNd([c.w[0]!], 80 + k);
    const attrs = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
    await check((i) => F.conv2dIm2col(i.x!, i.w!, i.b!, attrs), { x, w, b }, { perElementMax: 40 }).catch((e: Error) => {
      throw new Error(`im2col case ${k}: ${e.message}`);
    });
    await F.gradcheck((i) => F.conv2d(i.x!, i.w!, i.b!, attrs), { x: f32(x), w: f32(w), b: f32(b) }, { runtime: rt, eps: 1e-2, tol: 1e-3, perElementMax: 40 }).catch((e: Error) => {
      throw new Error(`conv2d case ${k}: ${e.message}`);
    });
  }
});

test('grad: composites (maxPool2d, smoothL1, softCrossEntropy) and a small MLP end to end', async () => {
  await check((i) => F.maxPool2d(i.x!, 2), { x: randNd([1, 2, 4, 4], 90) });
  await check((i) => F.smoothL1(i.a!, i.b!, 0.5), { a: map(randNd([3, 4], 91), (v) => 2 * v), b: randNd([3, 4], 92) });
  const tgt = F.oneHot([1, 0, 2], 3, 0.1);
  await check((i) => F.softCrossEntropy(i.a!, i.t!), { a: randNd([3, 3], 93), t: { data: [...tgt], shape: [3, 3] } }, { wrt: ['a'] });
  await check(
    (i) => F.linear(F.gelu(F.linear(F.layerNorm(i.x!, i.g!, null, 1e-6), i.w1!, i.b1!), 'tanh'), i.w2!, null),
    { x: randNd([2, 3, 4], 94), g: randNd([4], 95), w1: randNd([6, 4], 96), b1: randNd([6], 97), w2: randNd([4, 6], 98) },
    { perElementMax: 24 },
  );
});

test('grad: errors', () => {
  const g = new F.Graph();
  const x = g.input('x', [2, 3]);
  assert.throws(() => F.grad(x, [x]), /grad: loss must have one element, got \[2,3\]/);
});

test('trace-time folding: transpose∘transpose and reshape∘reshape', () => {
  const g = new F.Graph();
  const x = g.input('x', [2, 3, 4]);
  assert.equal(F.transpose(F.transpose(x, [2, 0, 1]), [1, 2, 0]), x, 'inverse transposes cancel');
  const t = F.transpose(F.transpose(x, [1, 0, 2]), [0, 2, 1]);
  assert.equal(t.node!.inputs[0], x);
  assert.deepEqual(t.node!.attrs.perm, [1, 2, 0]);
  assert.deepEqual(t.shape, [3, 4, 2]);
  const r = F.reshape(F.reshape(x, [6, 4]), [4, 6]);
  assert.equal(r.node!.inputs[0], x);
  assert.equal(F.reshape(F.reshape(x, [24]), [2, 3, 4]), x);
});
