/**
 * Minimal F32-only safetensors reader for the posembed tests (the library's full reader lives in
 * src/io and is written separately). Format: u64 little-endian header length, a JSON header, then
 * raw little-endian data addressed by `data_offsets` relative to the end of the header.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';

export interface StTensor {
  shape: number[];
  data: Float32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export function readSafetensors(file: string): Map<string, StTensor> {
  const buf = readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, HeaderEntry | Record<string, string>>;
  const base = 8 + headerLen;
  const out = new Map<string, StTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as HeaderEntry;
    if (e.dtype !== 'F32') throw new Error(`readSafetensors(${file}): tensor ${name} has dtype ${e.dtype}; only F32 is supported`);
    const [a, b] = e.data_offsets;
    const n = e.shape.reduce((x, y) => x * y, 1);
    if (b - a !== 4 * n) throw new Error(`readSafetensors(${file}): tensor ${name} spans ${b - a} bytes, shape ${e.shape} needs ${4 * n}`);
    // Copy into a fresh aligned buffer: the file buffer's byteOffset need not be a multiple of 4.
    const bytes = new Uint8Array(buf.subarray(base + a, base + b));
    out.set(name, { shape: e.shape, data: new Float32Array(bytes.buffer, bytes.byteOffset, n) });
  }
  return out;
}

/** A fixture case: its parsed JSON and (lazily) its tensors. */
export interface FixtureCase {
  name: string;
  json: Record<string, unknown>;
  tensors: () => Map<string, StTensor>;
}

export function loadCase(name: string): FixtureCase {
  const dir = fixturesDir();
  const json = JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Record<string, unknown>;
  let cache: Map<string, StTensor> | undefined;
  return {
    name,
    json,
    tensors: () => (cache ??= readSafetensors(path.join(dir, String(json.safetensors ?? `${name}.safetensors`)))),
  };
}

export function getTensor(m: Map<string, StTensor>, name: string): StTensor {
  const t = m.get(name);
  if (t === undefined) throw new Error(`fixture tensor ${name} missing; have ${[...m.keys()].join(', ')}`);
  return t;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
