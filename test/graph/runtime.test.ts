/**
 * Runtime session cache, error messages, and export: a lowered model with initializers
 * written to a .onnx file runs in a fresh stock onnxruntime-node session.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as F from '../../src/graph/index.ts';
import { f32, randNd } from './ref.ts';

const rt = new F.Runtime({ threads: 1 });
after(() => rt.clear());

test('runtime cache: same shapes compile nothing, a new shape compiles once', async () => {
  const r = new F.Runtime({ threads: 1 });
  const build: F.BuildFn = (i) => ({ y: F.softmax(F.mul(i.x!, 2), -1) });
  await r.run(build, { x: f32(randNd([2, 3], 1)) });
  assert.equal(r.stats.compiles, 1);
  await r.run(build, { x: f32(randNd([2, 3], 2)) });
  assert.equal(r.stats.compiles, 1, 'second run at the same shape compiled');
  await r.run(build, { x: f32(randNd([4, 3], 3)) });
  assert.equal(r.stats.compiles, 2, 'a new shape compiles once');
  await r.run(build, { x: f32(randNd([4, 3], 4)) });
  await r.run(build, { x: f32(randNd([2, 3], 5)) });
  assert.equal(r.stats.compiles, 2);
  // A re-created closure with an explicit key hits the cache too.
  for (let k = 0; k < 2; k++) await r.run((i) => ({ y: F.exp(i.x!) }), { x: f32(randNd([2, 2], k)) }, 'exp');
  assert.equal(r.stats.compiles, 3);
  assert.equal(r.stats.runs, 7);
  await r.clear();
});

test('errors name the operation and both shapes', () => {
  const g = new F.Graph();
  const a = g.input('a', [2, 3]);
  const b = g.input('b', [4, 3]);
  assert.throws(() => F.add(a, b), /add: shapes \[2,3\] and \[4,3\] do not broadcast/);
  assert.throws(() => F.matmul(a, b), /matmul: inner dims differ: \[2,3\] @ \[4,3\]/);
  assert.throws(() => F.reshape(a, [4, 2]), /reshape: \[2,3\] \(6 elements\) cannot become \[4,2\]/);
  assert.throws(() => F.concat([a, g.input('c', [2, 4])], 0), /concat: along axis 0, \[2,4\].*does not match \[2,3\]/);
  assert.throws(() => F.linear(a, g.input('w', [4, 5])), /linear: weight \[4,5\] does not take input \[2,3\] \(need \[out, 3\]\)/);
  assert.throws(() => F.expandTo(b, [2, 3]), /expand: \[4,3\] cannot broadcast to \[2,3\]/);
  assert.throws(() => F.gather(a, 1, [3]), /gather: index 3 out of range \[0, 3\)/);
  assert.throws(() => g.input('a', [1]), /an input named 'a' already exists/);
  assert.throws(() => F.add(a, new F.Graph().input('z', [2, 3])), /add: an input belongs to another graph/);
});

test('run errors: missing feed, wrong shape, wrong dtype', async () => {
  const c = await rt.compile((i) => ({ y: F.mul(i.x!, i.w!) }), { x: { shape: [2, 3] }, w: { shape: [3] } });
  await assert.rejects(c.run({ x: f32(randNd([2, 3], 1)) }), /run: missing feed 'w' \[3\] float32/);
  await assert.rejects(c.run({ x: f32(randNd([3, 2], 1)), w: f32(randNd([3], 1)) }), /feed 'x' has shape \[3,2\] but the graph was built for \[2,3\]/);
  await assert.rejects(c.run({ x: { data: new Float64Array(6), shape: [2, 3] }, w: f32(randNd([3], 1)) }), /feed 'x' is float64 but the graph expects float32/);
});

test('export: lower() with initializers -> .onnx file -> fresh onnxruntime-node session gives the same outputs', async () => {
  const g = new F.Graph();
  const x = g.input('image', [1, 3, 8, 8]);
  const wConv = g.input('conv.weight', [4, 3, 3, 3]);
  const bConv = g.input('conv.bias', [4]);
  const lnW = g.input('norm.weight', [4]);
  const lnB = g.input('norm.bias', [4]);
  const fcW = g.input('fc.weight', [5, 4]);
  // conv -> [1,4,4,4] -> tokens [1,16,4] -> LN -> GELU -> mean pool -> linear
  const y = F.conv2d(x, wConv, bConv, { stride: 2, padding: 1 });
  const tokens = F.transpose(F.reshape(y, [1, 4, 16]), [0, 2, 1]);
  const h = F.gelu(F.layerNorm(tokens, lnW, lnB, 1e-6));
  const logits = F.linear(F.reduceMean(h, 1), fcW, null);
  const values = new Map<F.Tensor, Float32Array>([
    [wConv, f32(randNd([4, 3, 3, 3], 2)).data],
    [bConv, f32(randNd([4], 3)).data],
    [lnW, f32(randNd([4], 4)).data],
    [lnB, f32(randNd([4], 5)).data],
    [fcW, f32(randNd([5, 4], 6)).data],
  ]);
  const lowered = F.lower({ logits }, { inputs: [x], initializers: values });
  assert.deepEqual(lowered.inputNames, ['image']);
  const dir = mkdtempSync(join(tmpdir(), 'anyres-export-'));
  try {
    const file = join(dir, 'model.onnx');
    writeFileSync(file + '.tmp', lowered.bytes);
    renameSync(file + '.tmp', file);
    const sess = await ort.InferenceSession.create(file);
    assert.deepEqual(sess.inputNames, ['image']);
    const img = f32(randNd([1, 3, 8, 8], 7));
    const res = await sess.run({ image: new ort.Tensor('float32', img.data, img.shape) });
    // Same graph through the Runtime, with the weights fed as inputs.
    const feeds: Record<string, F.HostTensor> = { image: img };
    for (const [t, v] of values) feeds[t.name!] = { data: v, shape: [...t.shape] };
    const direct = F.lower({ logits }, { inputs: g.inputs });
    const sess2 = await rt.session(direct.bytes);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor('float32', v.data as Float32Array, v.shape);
    const res2 = await sess2.run(ortFeeds);
    const a = res.logits!.data as Float32Array;
    const b = res2.logits!.data as Float32Array;
    assert.deepEqual([...res.logits!.dims], [1, 5]);
    for (let k = 0; k < 5; k++) assert.ok(Math.abs(a[k]! - b[k]!) < 1e-6, `logit ${k}: ${a[k]} vs ${b[k]}`);
    await sess.release();
    await sess2.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lower: an unfed input without a value is an error that names it', () => {
  const g = new F.Graph();
  const x = g.input('x', [2]);
  const w = g.input('w', [2]);
  assert.throws(() => F.lower({ y: F.mul(x, w) }, { inputs: [x] }), /lower: the outputs need graph input 'w' \[2\]/);
});

test('run: outputs keep their requested names even when they collide with input names (state round trip)', async () => {
  const build: F.BuildFn = (i) => ({ 'm.w': F.add(i['m.w']!, 1), loss: F.reduceSum(i['m.w']!) });
  const out = await rt.run(build, { 'm.w': F.host([1, 2], [2]) });
  assert.deepEqual([...(out['m.w']!.data as Float32Array)], [2, 3]);
  assert.equal(Number(out.loss!.data[0]), 3);
});

test('lower simplifier: CSE of identical nodes, shared constants, outputs without Identity copies', async () => {
  const g = new F.Graph();
  const x = g.input('x', [2, 3]);
  const c1 = g.constant(Float32Array.from([1, 2, 3]), [3]);
  const c2 = g.constant(Float32Array.from([1, 2, 3]), [3]);
  // exp(x)*c1 and exp(x)*c2 are the same computation traced twice.
  const a = F.mul(F.exp(x), c1);
  const b = F.mul(F.exp(x), c2);
  const outs = { s: F.add(a, b), a, x };
  const plain = F.lower(outs, { simplify: false });
  const simple = F.lower(outs);
  // plain: Exp, Mul, Exp, Mul, Add, Identity(x); simplified: Exp, Mul, Add, Identity(x).
  assert.equal(plain.nodeCount, 6);
  assert.equal(simple.nodeCount, 4, 'one Exp and one Mul removed');
  const feeds = { x: F.host([0.1, 0.2, 0.3, -0.1, -0.2, -0.3], [2, 3]) };
  const [p, q] = await Promise.all([rt.session(plain.bytes), rt.session(simple.bytes)]);
  const fx = { x: new ort.Tensor('float32', feeds.x.data as Float32Array, [2, 3]) };
  const [rp, rq] = await Promise.all([p.run(fx), q.run(fx)]);
  assert.deepEqual(simple.outputs.map((o) => o.key), ['s', 'a', 'x']);
  assert.equal(simple.outputNames[2], 'x_1', 'an output named like an input gets a fresh ONNX name');
  simple.outputNames.forEach((n, k) => assert.deepEqual([...(rq[n]!.data as Float32Array)], [...(rp[plain.outputNames[k]!]!.data as Float32Array)], n));
  // The same tensor returned under two names is produced once and aliased.
  const twice = F.lower({ u: a, v: a });
  assert.deepEqual(twice.outputNames, ['u', 'v']);
  await p.release();
  await q.release();
});
