import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, hashSeed } from '../../src/util/rng.ts';

test('xoshiro128** matches the reference output for state [1,2,3,4]', () => {
  // First outputs of the reference C (prng.di.unimi.it/xoshiro128starstar.c) from s = {1,2,3,4}.
  const r = Rng.fromState([1, 2, 3, 4]);
  const got = Array.from({ length: 6 }, () => r.nextU32());
  assert.deepEqual(got, [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

test('same seed gives the same stream, different seeds differ', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const c = new Rng(8);
  const xa = Array.from({ length: 100 }, () => a.next());
  const xb = Array.from({ length: 100 }, () => b.next());
  const xc = Array.from({ length: 100 }, () => c.next());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  assert.ok(xa.every((x) => x >= 0 && x < 1));
});

test('state/setState resumes bit-for-bit through JSON', () => {
  const r = new Rng('resume');
  for (let i = 0; i < 37; i++) r.normal();
  const saved = JSON.parse(JSON.stringify(r.state())) as number[];
  const expected = Array.from({ length: 50 }, () => [r.next(), r.normal(), r.int(17)]);
  const r2 = Rng.fromState(saved);
  assert.deepEqual(Array.from({ length: 50 }, () => [r2.next(), r2.normal(), r2.int(17)]), expected);
  assert.throws(() => r2.setState([0, 0, 0, 0]), RangeError);
  assert.throws(() => r2.setState([1, 2, 3]), RangeError);
});

test('fork does not advance the parent and is label-dependent; split advances', () => {
  const r = new Rng(1);
  const s0 = r.state();
  const f1 = r.fork('drop-path');
  const f2 = r.fork('drop-path');
  const f3 = r.fork('mae-mask');
  assert.deepEqual(r.state(), s0);
  assert.equal(f1.nextU32(), f2.nextU32());
  assert.notEqual(r.fork('drop-path').nextU32(), f3.nextU32());
  const child = r.split();
  assert.notDeepEqual(r.state(), s0);
  assert.notEqual(child.nextU32(), r.fork('drop-path').nextU32());
});

test('distributions: int is unbiased-ish, normal has mean 0 / var 1, shuffle is a permutation', () => {
  const r = new Rng(3);
  const counts = new Array<number>(7).fill(0);
  const N = 70000;
  for (let i = 0; i < N; i++) counts[r.int(7)]!++;
  for (const c of counts) assert.ok(Math.abs(c - N / 7) < 5 * Math.sqrt(N / 7), `int(7) counts ${counts}`);
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < N; i++) {
    const z = r.normal();
    s += z;
    s2 += z * z;
  }
  assert.ok(Math.abs(s / N) < 0.02, `mean ${s / N}`);
  assert.ok(Math.abs(s2 / N - 1) < 0.03, `var ${s2 / N}`);
  const arr = r.shuffle([...Array(50).keys()]);
  assert.deepEqual([...arr].sort((a, b) => a - b), [...Array(50).keys()]);
  assert.throws(() => r.int(0), RangeError);
});

test('hashSeed separates types and orders', () => {
  assert.notEqual(hashSeed(1, 2), hashSeed(2, 1));
  assert.notEqual(hashSeed('a'), hashSeed(97));
  assert.notEqual(hashSeed(0.5), hashSeed(0));
  assert.equal(hashSeed('x', 3), hashSeed('x', 3));
  assert.throws(() => hashSeed(NaN), RangeError);
});
