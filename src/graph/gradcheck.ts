/**
 * Gradient checking: compares the reverse-mode gradients of `grad()` with
 * central finite differences computed by running the same traced function.
 *
 * The traced output `y` (any shape) is reduced to a scalar with a fixed random
 * projection, L = sum(y * R), so every output element contributes. Two checks:
 *  - a random direction v per input: dL/dε of L(x + εv) against Σ <∂L/∂x, v>;
 *  - per element, for inputs small enough (`perElementMax`), each partial.
 * Use float64 feeds wherever ONNX Runtime's CPU provider has float64 kernels
 * (then eps ~1e-6 and tol ~1e-6 are meaningful); float32 needs eps ~1e-2 and a
 * loose tol.
 *
 * @example
 * ```ts
 * await gradcheck((i) => F.mul(F.tanh(i.x!), i.y!), {
 *   x: host(Float64Array.from([0.1, -0.3]), [2]),
 *   y: host(Float64Array.from([2, 3]), [2]),
 * }, { eps: 1e-6, tol: 1e-6 });
 * ```
 */
import { type Graph, Tensor, type TypedData, fmtShape, isFloat, dtypeOfData } from './tensor.ts';
import { mul } from './ops/elementwise.ts';
import { reduceSum } from './ops/reduce.ts';
import { grad } from './backprop.ts';
import { type Feeds, type HostTensor, Runtime } from './runtime.ts';

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6 for float64 feeds, 1e-2 for float32). */
  eps?: number;
  /** Allowed |analytic - numeric| / (1 + |numeric|) (default 1e-5 for float64, 2e-2 for float32). */
  tol?: number;
  /** Check every element of inputs with at most this many elements (default 64; 0 = projection only). */
  perElementMax?: number;
  /** Names of the inputs to differentiate (default: every float input). */
  wrt?: readonly string[];
  /** Seed of the projection and the random direction. */
  seed?: number;
  /** Runtime to use (default: a fresh one, released afterwards). */
  runtime?: Runtime;
  /** Throw when a check fails (default true); otherwise only report. */
  throwOnFail?: boolean;
}

export interface GradcheckEntry {
  /** 'projection' or `${input}[${flatIndex}]`. */
  where: string;
  analytic: number;
  numeric: number;
  error: number;
}

export interface GradcheckReport {
  ok: boolean;
  maxError: number;
  entries: GradcheckEntry[];
}

export type GradcheckBuild = (inputs: Readonly<Record<string, Tensor>>, graph: Graph) => Tensor;

/** A small deterministic generator (mulberry32) so the check is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function like(data: TypedData, values: ArrayLike<number>): TypedData {
  return data instanceof Float64Array ? Float64Array.from(values) : Float32Array.from(values);
}

/** Compares grad() with central differences; see the module comment. */
export async function gradcheck(build: GradcheckBuild, inputs: Feeds, opts: GradcheckOptions = {}): Promise<GradcheckReport> {
  const names = Object.keys(inputs);
  const wrt = opts.wrt ? [...opts.wrt] : names.filter((n) => isFloat(dtypeOfData(inputs[n]!.data)));
  for (const n of wrt) {
    if (!inputs[n]) throw new Error(`gradcheck: wrt names '${n}', which is not among the inputs [${names.join(', ')}]`);
    if (!isFloat(dtypeOfData(inputs[n]!.data))) throw new Error(`gradcheck: input '${n}' is ${dtypeOfData(inputs[n]!.data)}, not a float`);
  }
  if (wrt.length === 0) throw new Error('gradcheck: no float input to differentiate');
  const f64 = wrt.every((n) => inputs[n]!.data instanceof Float64Array);
  const eps = opts.eps ?? (f64 ? 1e-6 : 1e-2);
  const tol = opts.tol ?? (f64 ? 1e-5 : 2e-2);
  const perElementMax = opts.perElementMax ?? 64;
  const rand = rng(opts.seed ?? 1234);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

  // The projection R is fixed per call, so the loss graph is the same for every run.
  let projection: TypedData | null = null;
  const loss = (ins: Readonly<Record<string, Tensor>>, g: Graph): Tensor => {
    const y = build(ins, g);
    if (!isFloat(y.dtype)) throw new Error(`gradcheck: the function returns ${y.dtype} ${fmtShape(y.shape)}; it must return a float tensor`);
    if (!projection) projection = like(y.dtype === 'float64' ? new Float64Array(0) : new Float32Array(0), Array.from({ length: y.size }, gauss));
    if (projection.length !== y.size) throw new Error(`gradcheck: output size changed between traces (${projection.length} vs ${y.size})`);
    return reduceSum(mul(y, g.constant(projection, y.shape, y.dtype)));
  };
  const lossOnly = (ins: Readonly<Record<string, Tensor>>, g: Graph): Record<string, Tensor> => ({ loss: loss(ins, g) });
  const withGrads = (ins: Readonly<Record<string, Tensor>>, g: Graph): Record<string, Tensor> => {
    const l = loss(ins, g);
    const gs = grad(l, wrt.map((n) => ins[n]!));
    const out: Record<string, Tensor> = { loss: l };
    wrt.forEach((n, i) => (out[`grad_${n}`] = gs[i]!));
    return out;
  };

  const rt = opts.runtime ?? new Runtime({ threads: 1 });
  try {
    const analytic = await rt.run(withGrads, inputs);
    const evalLoss = async (feeds: Feeds): Promise<number> => Number((await rt.run(lossOnly, feeds)).loss!.data[0]);
    const perturbed = (name: string, delta: (i: number) => number): Feeds => {
      const src = inputs[name]!;
      const d = like(src.data, Array.from(src.data as ArrayLike<number>, (v, i) => v + delta(i)));
      return { ...inputs, [name]: { data: d, shape: src.shape } };
    };
    const entries: GradcheckEntry[] = [];
    const record = (where: string, a: number, n: number): void => {
      entries.push({ where, analytic: a, numeric: n, error: Math.abs(a - n) / (1 + Math.abs(n)) });
    };

    // Random direction over all wrt inputs at once.
    const dirs = new Map<string, number[]>(wrt.map((n) => [n, Array.from({ length: inputs[n]!.data.length }, gauss)]));
    let plus: Feeds = inputs;
    let minus: Feeds = inputs;
    let dot = 0;
    for (const n of wrt) {
      const v = dirs.get(n)!;
      const g = analytic[`grad_${n}`]!.data as ArrayLike<number>;
      for (let i = 0; i < v.length; i++) dot += g[i]! * v[i]!;
      plus = { ...plus, [n]: perturbedFrom(plus[n]!, v, eps) };
      minus = { ...minus, [n]: perturbedFrom(minus[n]!, v, -eps) };
    }
    record('projection', dot, ((await evalLoss(plus)) - (await evalLoss(minus))) / (2 * eps));

    for (const n of wrt) {
      const len = inputs[n]!.data.length;
      if (len > perElementMax) continue;
      const g = analytic[`grad_${n}`]!.data as ArrayLike<number>;
      for (let i = 0; i < len; i++) {
        const lp = await evalLoss(perturbed(n, (j) => (j === i ? eps : 0)));
        const lm = await evalLoss(perturbed(n, (j) => (j === i ? -eps : 0)));
        record(`${n}[${i}]`, g[i]!, (lp - lm) / (2 * eps));
      }
    }
    const maxError = entries.reduce((m, e) => Math.max(m, e.error), 0);
    const ok = maxError <= tol;
    if (!ok && opts.throwOnFail !== false) {
      const worst = [...entries].sort((a, b) => b.error - a.error).slice(0, 5);
      throw new Error(
        `gradcheck: gradients differ from central differences (eps=${eps}, tol=${tol}); worst: ` +
          worst.map((e) => `${e.where} analytic=${e.analytic.toPrecision(8)} numeric=${e.numeric.toPrecision(8)} err=${e.error.toExponential(2)}`).join('; '),
      );
    }
    return { ok, maxError, entries };
  } finally {
    if (!opts.runtime) await rt.clear();
  }
}

function perturbedFrom(src: HostTensor, v: readonly number[], scale: number): HostTensor {
  const d = like(src.data, Array.from(src.data as ArrayLike<number>, (x, i) => x + scale * v[i]!));
  return { data: d, shape: src.shape };
}
