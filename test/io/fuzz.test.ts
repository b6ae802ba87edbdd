/**
 * Fuzz tests: thousands of deterministic mutations (seeded PRNG) of valid safetensors, .pth zip
 * and pickle inputs. The only acceptable outcomes are a successful load or one of our typed
 * errors (CheckpointFormatError / UnsafePickleError): no RangeError, TypeError, hang or huge
 * allocation. Each input must finish within PER_INPUT_MS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CheckpointFormatError, UnsafePickleError, readSafetensors, readPth, flattenCheckpoint, unpickle, torchGlobals,
  serializeSafetensors, TorchStorage, type PyValue,
} from '../../src/io/index.ts';
import { contiguous, f32Storage, torchPickle, torchSave, type SaveValue } from './pth-writer.ts';
import { buildSafetensors } from './st-builder.ts';
import { type TorchSaveValue, serializeLegacyPth } from '../../src/io/pth-write.ts';
import { readNumpyPickle } from '../../src/io/numpy-pickle.ts';

/** A hang guard, not a speed target: generous enough for a GC pause on a loaded 2-core machine. */
const PER_INPUT_MS = 2_000;
const N = 10_000;
/** Whole-file budget (three parsers); each parser gets a third. */
const TOTAL_MS = 20_000;

/** mulberry32: small, fast, deterministic 32-bit PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HUGE = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];

function mutate(base: Uint8Array, r: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(r() * n);
  let b = base.slice();
  const rounds = 1 + int(3);
  for (let k = 0; k < rounds; k++) {
    const kind = int(7);
    if (b.length === 0) break;
    const p = int(b.length);
    switch (kind) {
      case 0: b[p] ^= 1 << int(8); break; // bit flip
      case 1: b[p] = int(256); break; // byte change
      case 2: b = b.slice(0, int(b.length)); break; // truncation
      case 3: { // forged length field: 2, 4 or 8 bytes of 0xff (or 0x7f..)
        const w = [2, 4, 8][int(3)];
        for (let i = 0; i < w && p + i < b.length; i++) b[p + i] = r() < 0.5 ? 0xff : HUGE[i];
        break;
      }
      case 4: { // small integer written over 4 bytes (plausible but wrong sizes/offsets)
        const v = int(1 << 16);
        for (let i = 0; i < 4 && p + i < b.length; i++) b[p + i] = (v >> (8 * i)) & 0xff;
        break;
      }
      case 5: { // duplicate a chunk somewhere else
        const q = int(b.length), n = int(32);
        const c = b.slice(q, q + n);
        const out = new Uint8Array(b.length + c.length);
        out.set(b.subarray(0, p)); out.set(c, p); out.set(b.subarray(p), p + c.length);
        b = out;
        break;
      }
      default: { // delete a chunk
        const n = Math.min(1 + int(16), b.length - p);
        const out = new Uint8Array(b.length - n);
        out.set(b.subarray(0, p)); out.set(b.subarray(p + n), p);
        b = out;
      }
    }
  }
  return b;
}

type Outcome = 'ok' | 'CheckpointFormatError' | 'UnsafePickleError';

function fuzz(name: string, seed: number, bases: Uint8Array[], parse: (b: Uint8Array) => void): void {
  const r = rng(seed);
  const counts: Record<Outcome, number> = { ok: 0, CheckpointFormatError: 0, UnsafePickleError: 0 };
  let slowest = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const input = mutate(bases[i % bases.length], r);
    const s = performance.now();
    let outcome: Outcome = 'ok';
    try {
      parse(input);
    } catch (e) {
      if (e instanceof CheckpointFormatError) outcome = 'CheckpointFormatError';
      else if (e instanceof UnsafePickleError) outcome = 'UnsafePickleError';
      else assert.fail(`${name} input #${i} (seed ${seed}) threw an untyped error: ${(e as Error).stack ?? String(e)}`);
    }
    const dt = performance.now() - s;
    slowest = Math.max(slowest, dt);
    assert.ok(dt < PER_INPUT_MS, `${name} input #${i} took ${dt.toFixed(1)} ms (limit ${PER_INPUT_MS})`);
    counts[outcome]++;
  }
  const total = performance.now() - t0;
  assert.ok(total < TOTAL_MS / 3, `${name}: ${N} inputs took ${total.toFixed(0)} ms (budget ${TOTAL_MS / 3} ms)`);
  console.log(`fuzz ${name}: ${N} inputs in ${total.toFixed(0)} ms, slowest ${slowest.toFixed(1)} ms; ` +
    `ok ${counts.ok}, CheckpointFormatError ${counts.CheckpointFormatError}, UnsafePickleError ${counts.UnsafePickleError}`);
  // The corpus must exercise both sides: some mutations still parse, most are refused.
  assert.ok(counts.ok > 0 && counts.CheckpointFormatError > 0, `${name}: degenerate outcome counts ${JSON.stringify(counts)}`);
}

const seq = (n: number): number[] => Array.from({ length: n }, (_, i) => i * 0.5 - 3);

function checkpoint(): Map<string, SaveValue> {
  const s = f32Storage('0', seq(12));
  return new Map<string, SaveValue>([
    ['model', new Map<string, SaveValue>([
      ['w', contiguous(s, [3, 4])],
      ['w_t', { tensor: true, storage: s, offset: 0, size: [4, 3], stride: [1, 4] }],
      ['b', { ...contiguous(f32Storage('1', [1, 2]), [2]), parameter: true }],
    ])],
    ['epoch', 5],
    ['name', 'x'],
    ['steps', [1, 2, 70000]],
  ]);
}

test('fuzz safetensors', () => {
  const bases = [
    serializeSafetensors(new Map([
      ['a', { shape: [2, 3], data: Float32Array.from(seq(6)) }],
      ['b', { shape: [4], data: Float32Array.from(seq(4)) }],
    ]), { k: 'v' }),
    buildSafetensors([
      { name: 'h', dtype: 'F16', shape: [4], bytes: Uint8Array.from([0, 0x3c, 0, 0xc0, 1, 0, 0xff, 0x7b]) },
      { name: 'd', dtype: 'F64', shape: [1], bytes: new Uint8Array(8) },
      { name: 'i', dtype: 'I64', shape: [1, 1], bytes: new Uint8Array(8) },
    ]),
  ];
  fuzz('safetensors', 1, bases, (b) => { readSafetensors(b); });
});

test('fuzz zip/pth', () => {
  const bases = [torchSave(checkpoint()), torchSave(checkpoint(), { deflate: true }), torchSave(checkpoint(), { zip64: true, byteorder: 'big' })];
  fuzz('zip/pth', 2, bases, (b) => { flattenCheckpoint(readPth(b)); });
});

test('fuzz pickle', () => {
  const { pkl } = torchPickle(checkpoint());
  // Storages resolve to in-memory values, so mutated pickles reach the tensor rebuild code.
  const storage = new TorchStorage('0', 'F32', 12, () => Float32Array.from(seq(12)));
  const globals = torchGlobals('fuzz');
  const parse = (b: Uint8Array): void => {
    const v: PyValue = unpickle(b, { globals, persistentLoad: () => storage });
    flattenCheckpoint(v);
  };
  // A second base that uses STACK_GLOBAL / MEMOIZE / FRAME (protocol 4 style) so mutations can reach them.
  const enc = new TextEncoder();
  const p4 = Uint8Array.from([
    0x80, 0x04, 0x95, 0, 0, 0, 0, 0, 0, 0, 0,
    0x8c, 11, ...enc.encode('collections'), 0x94, 0x8c, 11, ...enc.encode('OrderedDict'), 0x94, 0x93, 0x94,
    0x29, 0x52, 0x94, 0x28, 0x8c, 1, 0x61, 0x4b, 3, 0x8c, 1, 0x62, 0x47, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x75,
    0x8c, 2, ...enc.encode('os'), 0x8c, 6, ...enc.encode('system'), 0x30, 0x30, 0x2e,
  ]);
  parse(p4); // the base itself must load
  fuzz('pickle', 3, [pkl, p4], parse);
});

test('fuzz legacy torch.save', () => {
  const sd = new Map<string, TorchSaveValue>([
    ['model', new Map<string, TorchSaveValue>([
      ['w', { shape: [3, 4], data: Float32Array.from(seq(12)) }],
      ['h', { shape: [2], data: Float32Array.from([1, -2]), dtype: 'F16' as const, raw: Uint8Array.from([0, 0x3c, 0, 0xc0]) }],
    ])],
    ['epoch', 5],
  ]);
  const base = serializeLegacyPth(sd, { keepDtypes: true });
  assert.equal(flattenCheckpoint(readPth(base)).tensors.size, 2); // the base itself loads
  fuzz('legacy pth', 4, [base], (b) => { flattenCheckpoint(readPth(b)); });
});

/** A detectron2-style numpy pickle (protocol 2, `_codecs.encode` bytes; and protocol 3 raw bytes), as numpy writes it. */
function numpyPickle(proto3: boolean): Uint8Array {
  const enc = new TextEncoder();
  const out: number[] = [0x80, proto3 ? 3 : 2];
  const push = (...b: number[]): void => { out.push(...b); };
  const uni = (s: string): void => { const b = enc.encode(s); push(0x58, b.length, 0, 0, 0, ...b); };
  const glob = (m: string, n: string): void => push(0x63, ...enc.encode(`${m}\n${n}\n`));
  const array = (shape: number[], code: string, bytes: number[], fortran = false): void => {
    glob('numpy.core.multiarray', '_reconstruct');
    glob('numpy', 'ndarray');
    push(0x4b, 0, 0x85); // (0,)
    if (proto3) push(0x43, 1, 0x62); else { glob('_codecs', 'encode'); uni('b'); uni('latin1'); push(0x86, 0x52); }
    push(0x87, 0x52); // _reconstruct(ndarray, (0,), b'b')
    push(0x28, 0x4b, 1); // MARK, version 1
    push(0x28); for (const d of shape) push(0x4b, d); push(0x74);
    glob('numpy', 'dtype'); uni(code); push(0x89, 0x88, 0x87, 0x52);
    push(0x28, 0x4b, 3); uni('<'); push(0x4e, 0x4e, 0x4e, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0, 0x74, 0x62);
    push(fortran ? 0x88 : 0x89);
    if (proto3) push(0x43, bytes.length, ...bytes);
    else { glob('_codecs', 'encode'); uni(String.fromCharCode(...bytes)); uni('latin1'); push(0x86, 0x52); }
    push(0x74, 0x62); // state tuple, BUILD
  };
  push(0x7d, 0x28);
  uni('model'); push(0x7d, 0x28);
  uni('a'); array([2, 3], 'f4', [...new Uint8Array(Float32Array.from(seq(6)).buffer)], true);
  uni('b'); array([4], 'f2', [0, 0x3c, 0, 0xc0, 0, 0, 0, 0x40]);
  uni('c'); array([2], 'i8', [1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
  push(0x75);
  uni('__author__'); uni('fuzz');
  push(0x75, 0x2e);
  return Uint8Array.from(out);
}

test('numpy pickles read exactly (Fortran order, float16, int64), and survive the fuzzer', () => {
  for (const p3 of [false, true]) {
    const { tensors, extras } = flattenCheckpoint(readNumpyPickle(numpyPickle(p3)));
    // Fortran order: the column-major bytes [0,1,2,3,4,5]*0.5-3 are element (i, j) = i + 2j.
    const f = seq(6);
    assert.deepEqual(Array.from(tensors.get('model.a')!.data), [f[0], f[2], f[4], f[1], f[3], f[5]]);
    assert.deepEqual(Array.from(tensors.get('model.b')!.data), [1, -2, 0, 2]);
    assert.equal(tensors.get('model.b')!.dtype, 'F16');
    assert.deepEqual(Array.from(tensors.get('model.c')!.data), [1, -1]);
    assert.equal(extras.get('__author__'), 'fuzz');
  }
  fuzz('numpy pickle', 5, [numpyPickle(false), numpyPickle(true)], (b) => { flattenCheckpoint(readNumpyPickle(b)); });
});

test('a numpy pickle that asks for anything but the allow-list is refused', () => {
  const evil = numpyPickle(true);
  const s = new TextDecoder('latin1').decode(evil).replace('numpy\ndtype', 'posix\nsystem');
  assert.throws(() => readNumpyPickle(Uint8Array.from(s, (c) => c.charCodeAt(0))), (e: unknown) => e instanceof UnsafePickleError && e.global === 'posix.system');
});
