/**
 * softplus / logSigmoid: values against log(1 + e^x) computed in double on the host (including
 * |x| large, where the naive form overflows), and the VJP against central differences in float64.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/graph/index.ts';

const rt = new F.Runtime({ threads: 1 });
after(() => rt.clear());

const ref = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

test('softplus and logSigmoid match log(1 + e^x) and log σ(x), also far out (no overflow)', async () => {
  const xs = [-200, -30, -3, -0.5, 0, 0.25, 2, 40, 200];
  for (const dtype of ['float32', 'float64'] as const) {
    const data = dtype === 'float64' ? Float64Array.from(xs) : Float32Array.from(xs);
    const out = await rt.run((i) => ({ sp: F.softplus(i.x!), ls: F.logSigmoid(i.x!) }), { x: F.host(data, [xs.length]) });
    const sp = out.sp!.data as Float32Array | Float64Array;
    const ls = out.ls!.data as Float32Array | Float64Array;
    xs.forEach((x, k) => {
      const tol = dtype === 'float64' ? 1e-12 : 1e-5;
      assert.ok(Math.abs(sp[k]! - ref(x)) <= tol * (1 + Math.abs(ref(x))), `${dtype} softplus(${x}) = ${sp[k]}, expected ${ref(x)}`);
      assert.ok(Math.abs(ls[k]! + ref(-x)) <= tol * (1 + Math.abs(ref(-x))), `${dtype} logSigmoid(${x}) = ${ls[k]}, expected ${-ref(-x)}`);
    });
  }
});

test('grad: softplus and logSigmoid (float64 central differences)', async () => {
  const x = Float64Array.from([-4.1, -1.3, -0.2, 0.3, 0.9, 2.7, 6.5]);
  await F.gradcheck((i) => F.softplus(i.x!), { x: F.host(x, [7]) }, { runtime: rt, eps: 1e-6, tol: 1e-7 });
  await F.gradcheck((i) => F.logSigmoid(i.x!), { x: F.host(x, [7]) }, { runtime: rt, eps: 1e-6, tol: 1e-7 });
});
