/**
 * conv2d's VJP differentiates an im2col restatement of the convolution with a nested backprop.
 * reshape folds into a producing reshape (reshape(reshape(t)) -> reshape(t)), which used to route
 * the restatement around a reshape-produced weight or input, so its gradient came out zero
 * (found through the video Hiera's Conv3d-as-Conv2d weight, reshape(transpose(w3))).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conv2d, grad, mul, reduceSum, reshape, transpose } from '../../src/graph/index.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';

test('conv2d gradients reach a weight and an input that are reshape outputs', async () => {
  const rt = new Runtime();
  const x = Float32Array.from({ length: 6 * 8 * 8 }, (_, i) => Math.sin(i));
  const w5 = Float32Array.from({ length: 4 * 3 * 2 * 3 * 3 }, (_, i) => Math.cos(i)); // [O, C, T, kh, kw]
  // The same weight laid out [O, T, C, kh, kw] = [O, 6, 3, 3] on the host.
  const w4 = new Float32Array(w5.length);
  for (let o = 0; o < 4; o++) for (let c = 0; c < 3; c++) for (let t = 0; t < 2; t++) for (let k = 0; k < 9; k++) {
    w4[((o * 2 + t) * 3 + c) * 9 + k] = w5[((o * 3 + c) * 2 + t) * 9 + k]!;
  }
  const out = await rt.run((i) => {
    const wDerived = reshape(transpose(i.w5!, [0, 2, 1, 3, 4]), [4, 6, 3, 3]);
    const xDerived = reshape(i.xf!, [1, 6, 8, 8]);
    const y = conv2d(xDerived, wDerived, null, { stride: 2, padding: 1 });
    const [gw5, gx] = grad(reduceSum(mul(y, y)), [i.w5!, i.xf!]);
    const y2 = conv2d(i.x!, i.w4!, null, { stride: 2, padding: 1 });
    const [gw4, gx2] = grad(reduceSum(mul(y2, y2)), [i.w4!, i.x!]);
    return { gw5: gw5!, gx: gx!, gw4: gw4!, gx2: gx2! };
  }, { xf: host(x, [6 * 64]), x: host(x, [1, 6, 8, 8]), w5: host(w5, [4, 3, 2, 3, 3]), w4: host(w4, [4, 6, 3, 3]) });
  const gw5 = out.gw5!.data as Float32Array;
  const gw4 = out.gw4!.data as Float32Array;
  for (let o = 0; o < 4; o++) for (let c = 0; c < 3; c++) for (let t = 0; t < 2; t++) for (let k = 0; k < 9; k++) {
    const a = gw5[((o * 3 + c) * 2 + t) * 9 + k]!;
    const b = gw4[((o * 2 + t) * 3 + c) * 9 + k]!;
    assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `weight grad [${o},${c},${t},${k}]: ${a} vs ${b}`);
  }
  assert.ok(gw4.some((v) => v !== 0));
  const gx = out.gx!.data as Float32Array;
  const gx2 = out.gx2!.data as Float32Array;
  for (let i = 0; i < gx.length; i++) assert.ok(Math.abs(gx[i]! - gx2[i]!) <= 1e-4 * Math.max(1, Math.abs(gx2[i]!)), `input grad ${i}`);
});
