import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DataFormatError, encodeIdx, parseIdx, readIdxFile, writeIdxFile, type IdxArray } from '../../src/data/idx.ts';
import { Rng } from '../../src/util/rng.ts';

test('IDX round trip for every dtype, raw and gzip', () => {
  const cases: IdxArray[] = [
    { dtype: 'uint8', dims: [3, 4, 5], data: Uint8Array.from({ length: 60 }, (_, i) => (i * 37) % 256) },
    { dtype: 'int8', dims: [7], data: Int8Array.from([-128, -1, 0, 1, 2, 3, 127]) },
    { dtype: 'int16', dims: [2, 2], data: Int16Array.from([-32768, -2, 300, 32767]) },
    { dtype: 'int32', dims: [3], data: Int32Array.from([-(2 ** 31), 65536, 2 ** 31 - 1]) },
    { dtype: 'float32', dims: [2, 1], data: Float32Array.from([1.5, -0.25]) },
    { dtype: 'float64', dims: [1, 1, 2], data: Float64Array.from([Math.PI, -1e300]) },
    { dtype: 'uint8', dims: [0, 28, 28], data: new Uint8Array(0) },
  ];
  for (const c of cases) {
    const bytes = encodeIdx(c);
    for (const buf of [bytes, gzipSync(bytes)]) {
      const back = parseIdx(buf);
      assert.equal(back.dtype, c.dtype);
      assert.deepEqual(back.dims, c.dims);
      assert.deepEqual(Array.from(back.data), Array.from(c.data));
    }
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'anyres-idx-'));
  try {
    const f = path.join(dir, 'x-idx3-ubyte');
    writeIdxFile(f, cases[0]!);
    assert.deepEqual(readIdxFile(f).dims, [3, 4, 5]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('truncated, padded and forged IDX files are rejected with DataFormatError', () => {
  const good = encodeIdx({ dtype: 'uint8', dims: [10, 28, 28], data: new Uint8Array(7840) });
  const bad: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['short header', good.subarray(0, 3)],
    ['truncated dims', good.subarray(0, 10)],
    ['truncated data', good.subarray(0, good.length - 1)],
    ['trailing byte', Uint8Array.from([...good, 0])],
    ['bad magic', Uint8Array.from([1, ...good.subarray(1)])],
    ['unknown dtype', Uint8Array.from([0, 0, 0x07, ...good.subarray(3)])],
    ['rank 0', Uint8Array.from([0, 0, 8, 0])],
  ];
  // Forged huge dims: 2^32-1 x 2^32-1 x 28 must not allocate.
  const forged = Uint8Array.from(good);
  new DataView(forged.buffer).setUint32(4, 0xffffffff, false);
  new DataView(forged.buffer).setUint32(8, 0xffffffff, false);
  bad.push(['forged dims', forged]);
  const corruptGz = gzipSync(good);
  corruptGz[corruptGz.length - 6] ^= 0xff; // CRC/length trailer damage
  bad.push(['corrupt gzip', corruptGz]);
  bad.push(['truncated gzip', gzipSync(good).subarray(0, 30)]);
  for (const [name, buf] of bad) {
    assert.throws(() => parseIdx(buf, { file: name }), (e: unknown) => e instanceof DataFormatError && e.message.startsWith(name), name);
  }
  // A gzip bomb beyond maxBytes is refused.
  assert.throws(() => parseIdx(gzipSync(good), { maxBytes: 1000 }), DataFormatError);
});

test('fuzz: 2000 mutated IDX inputs give only success or DataFormatError, quickly', () => {
  const rng = new Rng('idx-fuzz');
  const seeds = [
    encodeIdx({ dtype: 'uint8', dims: [4, 6, 6], data: new Uint8Array(144).fill(9) }),
    encodeIdx({ dtype: 'int32', dims: [5], data: Int32Array.from([1, 2, 3, 4, 5]) }),
    encodeIdx({ dtype: 'float64', dims: [2, 2], data: new Float64Array(4) }),
  ];
  let ok = 0;
  let rejected = 0;
  const t0 = performance.now();
  for (let it = 0; it < 2000; it++) {
    const base = seeds[rng.int(seeds.length)]!;
    let buf = Uint8Array.from(base);
    const op = rng.int(5);
    if (op === 0) buf = buf.subarray(0, rng.int(buf.length + 1)); // truncate
    else if (op === 1) buf[rng.int(Math.min(buf.length, 24))] = rng.int(256); // header byte
    else if (op === 2) for (let k = 0; k < 1 + rng.int(4); k++) buf[rng.int(buf.length)] = rng.int(256);
    else if (op === 3) buf = Uint8Array.from([...buf, ...Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))]);
    else {
      const gz = gzipSync(buf);
      gz[rng.int(gz.length)] = rng.int(256);
      buf = gz;
    }
    try {
      parseIdx(buf, { maxBytes: 1 << 20 });
      ok++;
    } catch (e) {
      assert.ok(e instanceof DataFormatError, `mutation ${it} (op ${op}) threw ${String(e)}`);
      rejected++;
    }
  }
  const ms = performance.now() - t0;
  console.log(`IDX fuzz: ${ok} parsed, ${rejected} rejected with DataFormatError in ${ms.toFixed(0)} ms`);
  assert.equal(ok + rejected, 2000);
  assert.ok(rejected > 500 && ok > 50, `both outcomes exercised: ${ok} ok / ${rejected} rejected`);
  assert.ok(ms < 5000);
});
