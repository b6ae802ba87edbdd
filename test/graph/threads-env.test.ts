import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type BuildFn, Runtime, SPIN_DEFAULT, host, spinningFromEnv, threadsFromEnv } from '../../src/graph/runtime.ts';
import { matmul, softmax } from '../../src/graph/index.ts';

describe('ANYRES_THREADS', () => {
  it('caps the intra-op threads when set, and is ignored when unset', () => {
    assert.equal(threadsFromEnv({}), undefined);
    assert.equal(threadsFromEnv({ ANYRES_THREADS: '' }), undefined);
    assert.equal(threadsFromEnv({ ANYRES_THREADS: '1' }), 1);
    assert.equal(threadsFromEnv({ ANYRES_THREADS: '3' }), 3);
  });
  it('names the variable and the value when it is not a positive integer', () => {
    for (const bad of ['0', '-2', '1.5', 'two']) assert.throws(() => threadsFromEnv({ ANYRES_THREADS: bad }), new RegExp(`ANYRES_THREADS.*'${bad}'`));
  });
  it('an explicit threads option wins over the variable', () => {
    assert.equal(new Runtime({ threads: 2 }).threads, 2);
  });
});

describe('ANYRES_SPIN', () => {
  it('reads 0 / 1 and is undefined when unset', () => {
    assert.equal(spinningFromEnv({}), undefined);
    assert.equal(spinningFromEnv({ ANYRES_SPIN: '' }), undefined);
    assert.equal(spinningFromEnv({ ANYRES_SPIN: '0' }), false);
    assert.equal(spinningFromEnv({ ANYRES_SPIN: '1' }), true);
  });
  it('names the variable, the value and the accepted ones otherwise', () => {
    for (const bad of ['yes', '2', 'true']) assert.throws(() => spinningFromEnv({ ANYRES_SPIN: bad }), new RegExp(`ANYRES_SPIN must be 0 .* or 1 .*'${bad}'`));
  });
  it('an explicit option wins, and a session with sleeping threads computes the same as one with spinning threads', async () => {
    assert.equal(new Runtime({ spinning: false }).spinning, false);
    assert.equal(new Runtime({ spinning: true }).spinning, true);
    const a = host(Float32Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i)), [64, 64]);
    const build: BuildFn = (i) => ({ y: softmax(matmul(i.a!, i.a!), -1) });
    const ys = [];
    for (const spinning of [true, false]) ys.push((await new Runtime({ threads: 2, spinning }).run(build, { a }))['y']!.data);
    assert.deepEqual(ys[1], ys[0]);
  });
});

describe('Runtime spinning default', () => {
  it('threads sleep unless the option or ANYRES_SPIN says otherwise', () => {
    assert.equal(SPIN_DEFAULT, false);
    if (process.env.ANYRES_SPIN === undefined || process.env.ANYRES_SPIN === '') assert.equal(new Runtime().spinning, false);
  });
});
