import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import {
  CheckpointFormatError, readSafetensors, saveSafetensors, loadSafetensors, serializeSafetensors,
  writeFileAtomic, writeFileAtomicAsync,
} from '../../src/io/index.ts';
import { buildSafetensors } from './st-builder.ts';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-io-'));

test('safetensors round trip keeps names, order, shapes, values and metadata', () => {
  const t = new Map([
    ['z.last', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-30, -0, Infinity]) }],
    ['a.first', { shape: [], data: Float32Array.from([42]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ['odd', { shape: [3], data: Float32Array.from([0.1, 0.2, 0.3]) }],
  ]);
  const dir = tmp();
  const file = path.join(dir, 'x.safetensors');
  saveSafetensors(file, t, { note: 'hi' });
  const bytes = fs.readFileSync(file);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  assert.equal(n % 8, 0, 'header padded to a multiple of 8');
  assert.deepEqual(fs.readdirSync(dir), ['x.safetensors'], 'no temp file left behind');
  const { tensors, metadata } = loadSafetensors(file);
  assert.deepEqual([...tensors.keys()], ['z.last', 'a.first', 'empty', 'odd']);
  assert.deepEqual(metadata, { note: 'hi' });
  for (const [k, v] of t) {
    assert.deepEqual(tensors.get(k)?.shape, v.shape);
    assert.deepEqual(Array.from(tensors.get(k)?.data ?? []), Array.from(v.data));
  }
  assert.ok(Object.is(tensors.get('z.last')?.data[4], -0));
  // Deterministic: same input gives identical bytes.
  assert.deepEqual(serializeSafetensors(t, { note: 'hi' }), new Uint8Array(bytes));
});

/** Independent restatement of IEEE binary16 / bfloat16 decoding from the bit fields. */
function halfFromBits(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function bf16FromBits(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 7) & 0xff, m = h & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m ? NaN : s * Infinity;
  return s * (1 + m / 128) * 2 ** (e - 127);
}

test('F16 and BF16 convert exactly for all 65536 bit patterns', () => {
  const raw = new Uint8Array(65536 * 2);
  for (let i = 0; i < 65536; i++) { raw[2 * i] = i & 0xff; raw[2 * i + 1] = i >> 8; }
  const file = buildSafetensors([
    { name: 'h', dtype: 'F16', shape: [256, 256], bytes: raw },
    { name: 'b', dtype: 'BF16', shape: [65536], bytes: raw },
  ]);
  const { tensors } = readSafetensors(file);
  const h = tensors.get('h')?.data ?? new Float32Array(0);
  const b = tensors.get('b')?.data ?? new Float32Array(0);
  assert.deepEqual(tensors.get('h')?.shape, [256, 256]);
  for (let i = 0; i < 65536; i++) {
    const eh = halfFromBits(i), eb = bf16FromBits(i);
    if (Number.isNaN(eh)) assert.ok(Number.isNaN(h[i]), `F16 0x${i.toString(16)}`);
    else assert.ok(Object.is(h[i], eh), `F16 0x${i.toString(16)}: got ${h[i]}, expected ${eh}`);
    if (Number.isNaN(eb)) assert.ok(Number.isNaN(b[i]), `BF16 0x${i.toString(16)}`);
    else assert.ok(Object.is(b[i], eb), `BF16 0x${i.toString(16)}: got ${b[i]}, expected ${eb}`);
  }
});

test('F64, I64, I32, U8 and BOOL convert to float32', () => {
  const f64 = new Float64Array([0.1, -1e300, 3]);
  const i64 = new BigInt64Array([-5n, 1n << 40n, 7n]);
  const i32 = new Int32Array([-2147483648, 5, 16777217]);
  const u8 = Uint8Array.from([0, 255, 7]);
  const bool = Uint8Array.from([0, 1, 2]);
  const { tensors } = readSafetensors(buildSafetensors([
    { name: 'f64', dtype: 'F64', shape: [3], bytes: new Uint8Array(f64.buffer) },
    { name: 'i64', dtype: 'I64', shape: [3], bytes: new Uint8Array(i64.buffer) },
    { name: 'i32', dtype: 'I32', shape: [1, 3], bytes: new Uint8Array(i32.buffer) },
    { name: 'u8', dtype: 'U8', shape: [3], bytes: u8 },
    { name: 'bool', dtype: 'BOOL', shape: [3], bytes: bool },
  ]));
  const get = (k: string): number[] => Array.from(tensors.get(k)?.data ?? []);
  assert.deepEqual(get('f64'), [Math.fround(0.1), -Infinity, 3]);
  assert.deepEqual(get('i64'), [-5, 2 ** 40, 7]);
  assert.deepEqual(get('i32'), [-2147483648, 5, Math.fround(16777217)]);
  assert.deepEqual(get('u8'), [0, 255, 7]);
  assert.deepEqual(get('bool'), [0, 1, 1]);
});

function expectFormatError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => readSafetensors(bytes, 'bad.safetensors'), (e: unknown) => {
    assert.ok(e instanceof CheckpointFormatError, `expected CheckpointFormatError, got ${String(e)}`);
    assert.match(e.message, /bad\.safetensors/);
    assert.match(e.message, pattern);
    return true;
  });
}

test('malformed safetensors give CheckpointFormatError naming the problem', () => {
  const ok = (n = 2): Uint8Array => new Uint8Array(new Float32Array(n).buffer);
  expectFormatError(new Uint8Array(5), /5 bytes, shorter than the 8-byte/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1n << 60n, true);
  expectFormatError(huge, /header length 1152921504606846976 exceeds the 8 bytes/);
  expectFormatError(buildSafetensors([], { headerOverride: '{"a": ' }), /not valid UTF-8 JSON/);
  expectFormatError(buildSafetensors([], { headerOverride: '[1,2]' }), /must be a JSON object, got an array/);
  expectFormatError(buildSafetensors([{ name: 'q', dtype: 'F8_E4M3', shape: [2], bytes: new Uint8Array(2) }]), /tensor 'q': dtype 'F8_E4M3' is not supported; supported: F64, F32/);
  expectFormatError(buildSafetensors([{ name: 'w', dtype: 'F32', shape: [3], bytes: ok(2) }]), /tensor 'w': shape \[3\] with F32 needs 12 bytes, but data_offsets \[0, 8\] span 8/);
  expectFormatError(buildSafetensors([{ name: 'w', dtype: 'F32', shape: [-1, 2], bytes: ok(2) }]), /shape must be an array of non-negative integers, got \[-1,2\]/);
  expectFormatError(buildSafetensors([{ name: 'w', dtype: 'F32', shape: [1.5], bytes: ok(2) }]), /non-negative integers/);
  // Out of range, overlap, gap, trailing bytes: headers written by hand.
  const data = ok(4); // 16 data bytes
  const withHeader = (h: object): Uint8Array => {
    const f = buildSafetensors([{ name: 'x', dtype: 'F32', shape: [4], bytes: data }], { headerOverride: JSON.stringify(h) });
    return f;
  };
  expectFormatError(withHeader({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }), /tensor 'a': data_offsets \[0, 32\] run past the data section of 16 bytes/);
  expectFormatError(withHeader({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }),
    /tensor 'b' \[8, 16\] overlaps tensor 'a' which ends at 12/);
  expectFormatError(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }), /gap in the data section: bytes \[0, 8\)/);
  expectFormatError(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }), /data section is 16 bytes but the tensors cover only 8/);
  expectFormatError(withHeader({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 2] } }), /end before begin/);
  expectFormatError(withHeader({ __metadata__: { k: 3 } }), /"__metadata__"."k" must be a string/);
});

test('every truncation of a safetensors file gives CheckpointFormatError', () => {
  const full = serializeSafetensors(new Map([['a', { shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]]));
  for (let n = 0; n < full.length; n++) {
    assert.throws(() => readSafetensors(full.subarray(0, n)), CheckpointFormatError, `truncated to ${n} bytes`);
  }
});

test('saveSafetensors refuses inconsistent tensors and writes atomically', async () => {
  const dir = tmp();
  const file = path.join(dir, 'w.safetensors');
  assert.throws(() => saveSafetensors(file, new Map([['a', { shape: [2, 2], data: new Float32Array(3) }]])), /shape \[2, 2\] \(4 elements\) but 3 values/);
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing written on a refused save');
  writeFileAtomic(file, 'old');
  await writeFileAtomicAsync(file, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3]);
  // A failing write (target is a directory) leaves no temp file behind.
  fs.mkdirSync(path.join(dir, 'sub'));
  assert.throws(() => writeFileAtomic(path.join(dir, 'sub'), 'x'));
  await assert.rejects(writeFileAtomicAsync(path.join(dir, 'sub'), 'x'));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['sub', 'w.safetensors']);
});

test('every fixture .safetensors loads with the names and shapes of its JSON', () => {
  const dir = fixturesDir();
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  assert.ok(files.length > 0, `no .safetensors in ${dir}`);
  let total = 0;
  for (const f of files) {
    const json = JSON.parse(fs.readFileSync(path.join(dir, f.replace(/\.safetensors$/, '.json')), 'utf8')) as { tensors: Record<string, { shape: number[] }> };
    const { tensors, metadata } = loadSafetensors(path.join(dir, f));
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(json.tensors).sort(), f);
    for (const [name, spec] of Object.entries(json.tensors)) {
      const t = tensors.get(name);
      assert.deepEqual(t?.shape, spec.shape, `${f}:${name}`);
      assert.equal(t?.data.length, spec.shape.reduce((a, b) => a * b, 1), `${f}:${name}`);
      assert.ok(t?.data.every(Number.isFinite), `${f}:${name} finite`);
    }
    assert.equal(typeof metadata['case'], 'string', `${f} metadata`);
    total += tensors.size;
  }
  console.log(`loaded ${files.length} fixture files, ${total} tensors`);
});
