import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime, threadsFromEnv } from '../../src/graph/runtime.ts';

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
