/**
 * conv2d's two-convolution VJP (stride 1, groups 1, padding <= k − 1): gradients of x, w and b
 * against the float64 im2col restatement's (differentiated by the primitive adjoints), for square
 * and rectangular kernels, zero / partial / full padding, with and without bias, non-square
 * maps; and a float32 central-difference check of the same VJP.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/graph/index.ts';

const rt = new F.Runtime({ threads: 1 });
after(() => rt.clear());

const rnd = (n: number, s: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + s * 3.1) * 0.9 + 0.05 * ((i * 7) % 5));
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

interface Case { x: number[]; w: number[]; padding: [number, number]; bias: boolean }
const cases: Case[] = [
  { x: [2, 3, 6, 5], w: [4, 3, 3, 3], padding: [1, 1], bias: true },
  { x: [1, 2, 5, 7], w: [3, 2, 3, 3], padding: [0, 0], bias: false },
  { x: [2, 2, 4, 6], w: [2, 2, 2, 3], padding: [1, 2], bias: true },
  { x: [1, 4, 3, 3], w: [5, 4, 1, 1], padding: [0, 0], bias: true },
];

const outShape = (c: Case): number[] => [c.x[0]!, c.w[0]!, c.x[2]! + 2 * c.padding[0] - c.w[2]! + 1, c.x[3]! + 2 * c.padding[1] - c.w[3]! + 1];

async function grads(c: Case, k: number, im2col: boolean): Promise<Record<string, Float32Array | Float64Array>> {
  const arr = (v: number[]): Float32Array | Float64Array => (im2col ? Float64Array.from(v) : Float32Array.from(v));
  const attrs = { stride: [1, 1], padding: c.padding, dilation: [1, 1], groups: 1 };
  const out = await rt.run((i) => {
    const y = im2col ? F.conv2dIm2col(i.x!, i.w!, c.bias ? i.b! : null, attrs) : F.conv2d(i.x!, i.w!, c.bias ? i.b! : null, { padding: c.padding });
    const gs = F.grad(F.reduceSum(F.mul(y, i.R!)), c.bias ? [i.x!, i.w!, i.b!] : [i.x!, i.w!]);
    const o: Record<string, F.Tensor> = { gx: gs[0]!, gw: gs[1]! };
    if (c.bias) o.gb = gs[2]!;
    return o;
  }, {
    x: F.host(arr(rnd(prod(c.x), k)), c.x),
    w: F.host(arr(rnd(prod(c.w), 10 + k)), c.w),
    b: F.host(arr(rnd(c.w[0]!, 20 + k)), [c.w[0]!]),
    R: F.host(arr(rnd(prod(outShape(c)), 30 + k)), outShape(c)),
  });
  return Object.fromEntries(Object.entries(out).map(([n, t]) => [n, t.data as Float32Array | Float64Array]));
}

test('conv2d stride-1 VJP equals the im2col restatement (x, w, b)', async () => {
  for (const [k, c] of cases.entries()) {
    const fast = await grads(c, k, false);
    const ref = await grads(c, k, true);
    assert.deepEqual(Object.keys(fast).sort(), Object.keys(ref).sort());
    for (const name of Object.keys(ref)) {
      const a = fast[name]!;
      const r = ref[name]!;
      assert.equal(a.length, r.length, `case ${k} ${name}`);
      let err = 0;
      for (let i = 0; i < r.length; i++) err = Math.max(err, Math.abs(a[i]! - r[i]!));
      assert.ok(err < 1e-4, `case ${k} ${name}: max |fast − im2col| = ${err}`);
    }
  }
});

test('conv2d stride-1 VJP against central differences (float32)', async () => {
  const c = cases[2]!;
  await F.gradcheck((i) => F.conv2d(i.x!, i.w!, i.b!, { padding: c.padding }), {
    x: F.host(Float32Array.from(rnd(prod(c.x), 5)), c.x), w: F.host(Float32Array.from(rnd(prod(c.w), 6)), c.w), b: F.host(Float32Array.from(rnd(2, 7)), [2]),
  }, { runtime: rt, eps: 1e-2, tol: 1e-3, perElementMax: 48 });
});
