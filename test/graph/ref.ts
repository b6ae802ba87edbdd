/**
 * Direct TypeScript references for the graph ops (plain loops over flat arrays),
 * used by the forward tests. Deliberately written without any of the engine's code.
 */
import assert from 'node:assert/strict';

export interface Nd {
  data: number[];
  shape: number[];
}

export const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

export function strides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i]!;
  }
  return st;
}

/** Multi-index of flat position `i` in `shape`. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    idx[k] = i % shape[k]!;
    i = Math.floor(i / shape[k]!);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let f = 0;
  for (let k = 0; k < shape.length; k++) f = f * shape[k]! + idx[k]!;
  return f;
}

/** Seeded uniform generator (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random values in [-1, 1) of `shape`. */
export function randNd(shape: readonly number[], seed: number): Nd {
  const r = rng(seed);
  return { data: Array.from({ length: prod(shape) }, () => 2 * r() - 1), shape: [...shape] };
}

/** Elementwise with numpy broadcasting. */
export function broadcast2(a: Nd, b: Nd, f: (x: number, y: number) => number): Nd {
  const n = Math.max(a.shape.length, b.shape.length);
  const pa = [...new Array<number>(n - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array<number>(n - b.shape.length).fill(1), ...b.shape];
  const shape = pa.map((d, i) => Math.max(d, pb[i]!));
  const data = new Array<number>(prod(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    const ia = ravel(idx.map((v, k) => (pa[k] === 1 ? 0 : v)), pa);
    const ib = ravel(idx.map((v, k) => (pb[k] === 1 ? 0 : v)), pb);
    data[i] = f(a.data[ia]!, b.data[ib]!);
  }
  return { data, shape };
}

export function map(a: Nd, f: (x: number) => number): Nd {
  return { data: a.data.map(f), shape: [...a.shape] };
}

/** Batched matmul with broadcasting of the batch dims. */
export function matmulRef(a: Nd, b: Nd): Nd {
  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape[b.shape.length - 1]!;
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const L = Math.max(ba.length, bb.length);
  const pa = [...new Array<number>(L - ba.length).fill(1), ...ba];
  const pb = [...new Array<number>(L - bb.length).fill(1), ...bb];
  const batch = pa.map((d, i) => Math.max(d, pb[i]!));
  const out = new Array<number>(prod(batch) * m * n).fill(0);
  for (let t = 0; t < prod(batch); t++) {
    const idx = unravel(t, batch);
    const oa = ravel(idx.map((v, q) => (pa[q] === 1 ? 0 : v)), pa) * m * k;
    const ob = ravel(idx.map((v, q) => (pb[q] === 1 ? 0 : v)), pb) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[oa + i * k + p]! * b.data[ob + p * n + j]!;
        out[t * m * n + i * n + j] = s;
      }
    }
  }
  return { data: out, shape: [...batch, m, n] };
}

export function transposeRef(a: Nd, perm: readonly number[]): Nd {
  const shape = perm.map((p) => a.shape[p]!);
  const data = new Array<number>(a.data.length);
  for (let i = 0; i < data.length; i++) {
    const oi = unravel(i, shape);
    const src = new Array<number>(perm.length);
    perm.forEach((p, k) => (src[p] = oi[k]!));
    data[i] = a.data[ravel(src, a.shape)]!;
  }
  return { data, shape };
}

/** Reduction over `axes` with keepdims. */
export function reduceRef(a: Nd, axes: readonly number[], f: (acc: number, x: number) => number, init: number): Nd {
  const shape = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const data = new Array<number>(prod(shape)).fill(init);
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape).map((v, k) => (axes.includes(k) ? 0 : v));
    const o = ravel(idx, shape);
    data[o] = f(data[o]!, a.data[i]!);
  }
  return { data, shape };
}

/** Output element at multi-index `idx` read from a function of the input index. */
export function generate(shape: readonly number[], f: (idx: number[]) => number): Nd {
  const data = new Array<number>(prod(shape));
  for (let i = 0; i < data.length; i++) data[i] = f(unravel(i, shape));
  return { data, shape: [...shape] };
}

export function at(a: Nd, idx: readonly number[]): number {
  return a.data[ravel(idx, a.shape)]!;
}

/** Last-axis softmax. */
export function softmaxRef(a: Nd): Nd {
  const C = a.shape[a.shape.length - 1]!;
  const out = [...a.data];
  for (let r = 0; r < a.data.length / C; r++) {
    const row = a.data.slice(r * C, (r + 1) * C);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((p, q) => p + q, 0);
    e.forEach((v, j) => (out[r * C + j] = v / s));
  }
  return { data: out, shape: [...a.shape] };
}

export function layerNormRef(a: Nd, w: readonly number[], b: readonly number[], eps: number): Nd {
  const C = a.shape[a.shape.length - 1]!;
  const out = [...a.data];
  for (let r = 0; r < a.data.length / C; r++) {
    const row = a.data.slice(r * C, (r + 1) * C);
    const mu = row.reduce((p, q) => p + q, 0) / C;
    const v = row.reduce((p, q) => p + (q - mu) ** 2, 0) / C;
    row.forEach((x, j) => (out[r * C + j] = ((x - mu) / Math.sqrt(v + eps)) * w[j]! + b[j]!));
  }
  return { data: out, shape: [...a.shape] };
}

/** erf by its Maclaurin series (|x| < 3) or the asymptotic tail; ~1e-15 for the ranges used in tests. */
export function erfRef(x: number): number {
  const ax = Math.abs(x);
  if (ax > 5) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 200; n++) {
    term *= (-ax * ax) / n;
    const t = term / (2 * n + 1);
    sum += t;
    if (Math.abs(t) < 1e-17) break;
  }
  return (Math.sign(x) * 2 * sum) / Math.sqrt(Math.PI);
}

export const geluRef = (x: number): number => 0.5 * x * (1 + erfRef(x / Math.SQRT2));
export const geluTanhRef = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Naive direct convolution NCHW, weight [O, C/g, kh, kw] (torch semantics). */
export function conv2dRef(x: Nd, w: Nd, b: readonly number[] | null, stride: [number, number], padding: [number, number], dilation: [number, number], groups: number): Nd {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const [O, Cg, kh, kw] = w.shape as [number, number, number, number];
  const Ho = Math.floor((H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const Wo = Math.floor((W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  const Og = O / groups;
  void C;
  return generate([B, O, Ho, Wo], ([n, o, i, j]) => {
    const g = Math.floor(o! / Og);
    let s = b ? b[o!]! : 0;
    for (let c = 0; c < Cg; c++) {
      for (let u = 0; u < kh; u++) {
        for (let v = 0; v < kw; v++) {
          const y = i! * stride[0] - padding[0] + u * dilation[0];
          const xx = j! * stride[1] - padding[1] + v * dilation[1];
          if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
          s += at(x, [n!, g * Cg + c, y, xx]) * at(w, [o!, c, u, v]);
        }
      }
    }
    return s;
  });
}

/** Asserts same shape and max |a-b| <= tol, naming the worst element. */
export function assertClose(actual: { data: ArrayLike<number | bigint>; shape: readonly number[] }, expected: Nd, tol: number, what = ''): void {
  assert.deepEqual([...actual.shape], expected.shape, `${what}: shape`);
  let worst = 0;
  let wi = -1;
  for (let i = 0; i < expected.data.length; i++) {
    const d = Math.abs(Number(actual.data[i]) - expected.data[i]!);
    if (!(d <= worst)) {
      worst = d;
      wi = i;
    }
  }
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol} at ${wi} (got ${Number(actual.data[wi])}, want ${expected.data[wi]})`);
}

export function f64(a: Nd): { data: Float64Array; shape: number[] } {
  return { data: Float64Array.from(a.data), shape: [...a.shape] };
}

export function f32(a: Nd): { data: Float32Array; shape: number[] } {
  return { data: Float32Array.from(a.data), shape: [...a.shape] };
}
