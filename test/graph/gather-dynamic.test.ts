import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Runtime, host, gradcheck, grad, reduceSum, mul } from '../../src/graph/index.ts';
import { gatherRows, scatterAddRowsDynamic } from '../../src/graph/ops/gather-dynamic.ts';

const rt = new Runtime({ threads: 1 });
const idxFeed = (v: number[], shape: number[]) => ({ data: BigInt64Array.from(v.map(BigInt)), shape });

test('gatherRows: per-sample rows, repeated indices allowed', async () => {
  // x [2, 3, 2]: value = 100*b + 10*n + c
  const x = Float32Array.from({ length: 12 }, (_, i) => 100 * Math.floor(i / 6) + 10 * Math.floor((i % 6) / 2) + (i % 2));
  const out = await rt.run((i) => ({ y: gatherRows(i.x!, i.idx!) }), { x: host(x, [2, 3, 2]), idx: idxFeed([2, 0, 1, 1], [2, 2]) });
  assert.deepEqual(out.y!.shape, [2, 2, 2]);
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [20, 21, 0, 1, 110, 111, 110, 111]);
});

test('scatterAddRowsDynamic accumulates repeated indices', async () => {
  const u = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // [2, 2, 2]
  const out = await rt.run((i) => ({ y: scatterAddRowsDynamic(i.u!, i.idx!, 3) }), { u: host(u, [2, 2, 2]), idx: idxFeed([2, 0, 1, 1], [2, 2]) });
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [3, 4, 0, 0, 1, 2, 0, 0, 12, 14, 0, 0]);
});

test('gatherRows VJP matches central differences (float64), through a repeated index', async () => {
  const x = Float64Array.from({ length: 2 * 4 * 3 }, (_, i) => Math.sin(i + 0.3));
  const rep = await gradcheck((i) => {
    const y = gatherRows(i.x!, i.idx!);
    return mul(y, y); // nonlinear so the check sees each gathered value
  }, { x: host(x, [2, 4, 3]), idx: idxFeed([3, 0, 3, 1, 1, 2], [2, 3]) }, { wrt: ['x'], runtime: rt });
  assert.ok(rep.ok, `max error ${rep.maxError}`);
  // Row 2 of sample 0 and rows 0, 3 of sample 1 are never gathered: their gradient is exactly 0.
  const g = await rt.run((i) => {
    const y = gatherRows(i.x!, i.idx!);
    return { g: grad(reduceSum(y), [i.x!])[0]! };
  }, { x: host(x, [2, 4, 3]), idx: idxFeed([3, 0, 3, 1, 1, 2], [2, 3]) });
  const gv = Array.from(g.g!.data as Float64Array);
  // Times each row is gathered: sample 0 takes rows 3, 0, 3; sample 1 takes rows 1, 1, 2.
  const expect = [1, 0, 0, 2, /* sample 1 */ 0, 2, 1, 0];
  expect.forEach((cnt, r) => gv.slice(3 * r, 3 * r + 3).forEach((v) => assert.equal(v, cnt)));
});

test('scatterAddRowsDynamic VJP matches central differences (float32)', async () => {
  const u = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => Math.cos(i));
  const rep = await gradcheck((i) => {
    const y = scatterAddRowsDynamic(i.u!, i.idx!, 4);
    return mul(y, y);
  }, { u: host(u, [2, 3, 2]), idx: idxFeed([0, 3, 0, 2, 2, 1], [2, 3]) }, { wrt: ['u'], runtime: rt });
  assert.ok(rep.ok, `max error ${rep.maxError}`);
});

test('gatherRows rejects bad index tensors with the shapes named', async () => {
  await assert.rejects(
    rt.run((i) => ({ y: gatherRows(i.x!, i.idx!) }), { x: host(new Float32Array(6), [2, 3]), idx: host(new Float32Array(2), [2, 1]) }),
    /gatherRows: indices must be int64 \[B=2, K\], got float32 \[2,1\]/,
  );
});
