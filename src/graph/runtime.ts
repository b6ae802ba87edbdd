/**
 * Runs traced graphs with ONNX Runtime (onnxruntime-node).
 *
 * A compiled session is cached per (function, input shapes); a different
 * function that traces to byte-identical ONNX shares the session too. So a
 * new resolution costs one compile and every later call at that shape runs at
 * native speed. Intra-op threads default to all available cores.
 */
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { type AttentionForm, type DType, Graph, Tensor, type TypedData, dtypeOfData, fmtShape } from './tensor.ts';
import { type Lowered, lower } from './onnx.ts';

export interface HostTensor {
  data: TypedData;
  shape: number[];
}

export type Feeds = Readonly<Record<string, HostTensor>>;

/** Builds the graph; `inputs` holds one graph input per feed (named as the feed). */
export type BuildFn = (inputs: Readonly<Record<string, Tensor>>, graph: Graph) => Readonly<Record<string, Tensor>>;

export interface RuntimeOptions {
  /** Intra-op threads (default: $ANYRES_THREADS, else os.availableParallelism()). */
  threads?: number;
  /** Execution providers in order of preference (default ['cpu']). */
  executionProviders?: string[];
  /** ONNX Runtime graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** The attention form traced graphs start with (default 'fused'; a build function may change `graph.attention`). */
  attention?: AttentionForm;
  /**
   * The attention form training steps trace (they set `graph.attention = rt.trainingAttention`).
   * Default 'explicit': measured faster for training (bench/attention.ts, ViT-Ti/16 224 batch 32),
   * because the fused kernel keeps no probabilities and its VJP has to recompute them.
   */
  trainingAttention?: AttentionForm;
  /**
   * Whether ONNX Runtime's intra-op threads spin while waiting for work (ORT's own default) or
   * sleep (`session.intra_op.allow_spinning` = 0). Default: $ANYRES_SPIN, else SPIN_DEFAULT (sleep).
   * bench/small.ts measures both.
   */
  spinning?: boolean;
}

export interface RuntimeStats {
  compiles: number;
  cacheHits: number;
  runs: number;
}

export class Compiled {
  constructor(
    readonly session: ort.InferenceSession,
    readonly lowered: Lowered,
    private readonly stats: RuntimeStats,
  ) {}

  /** Runs the session; feeds not used by the graph are ignored, missing ones are an error. */
  async run(feeds: Feeds): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const spec of this.lowered.inputs) {
      const f = feeds[spec.name];
      if (!f) throw new Error(`run: missing feed '${spec.name}' ${fmtShape(spec.shape)} ${spec.dtype}`);
      const dt = dtypeOfData(f.data);
      if (dt !== spec.dtype && !(spec.dtype === 'bool' && f.data instanceof Uint8Array)) {
        throw new Error(`run: feed '${spec.name}' is ${dt} but the graph expects ${spec.dtype}`);
      }
      if (f.shape.length !== spec.shape.length || f.shape.some((d, i) => d !== spec.shape[i])) {
        throw new Error(`run: feed '${spec.name}' has shape ${fmtShape(f.shape)} but the graph was built for ${fmtShape(spec.shape)}`);
      }
      ortFeeds[spec.name] = new ort.Tensor(spec.dtype, f.data as never, f.shape);
    }
    this.stats.runs++;
    const res = await this.session.run(ortFeeds);
    const out: Record<string, HostTensor> = {};
    for (const o of this.lowered.outputs) {
      const t = res[o.name]!;
      // Keyed by the requested name: an output named like an input (a state round trip such as
      // 'm.w' in and 'm.w' out) gets a different ONNX name, but the caller asked for 'm.w'.
      out[o.key] = { data: t.data as TypedData, shape: [...t.dims] };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

let fnCounter = 0;
const fnIds = new WeakMap<object, number>();
function fnId(f: object): number {
  let id = fnIds.get(f);
  if (id === undefined) {
    id = ++fnCounter;
    fnIds.set(f, id);
  }
  return id;
}

export function feedSignature(feeds: Feeds): string {
  return Object.keys(feeds)
    .sort()
    .map((k) => `${k}:${dtypeOfData(feeds[k]!.data)}[${feeds[k]!.shape.join(',')}]`)
    .join(';');
}

/**
 * `ANYRES_THREADS=n` caps ONNX Runtime's intra-op threads for every Runtime that is not given
 * `threads` explicitly (for a machine shared with other work); unset = all cores.
 */
export function threadsFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.ANYRES_THREADS;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`ANYRES_THREADS must be a positive integer (the number of intra-op threads), got '${v}'`);
  return n;
}

/**
 * `ANYRES_SPIN=1` lets ONNX Runtime's idle intra-op threads spin (its own default), `ANYRES_SPIN=0`
 * makes them sleep; unset = undefined (the Runtime's default applies, see RuntimeOptions.spinning).
 */
export function spinningFromEnv(env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const v = env.ANYRES_SPIN;
  if (v === undefined || v === '') return undefined;
  if (v === '0' || v === '1') return v === '1';
  throw new Error(`ANYRES_SPIN must be 0 (idle ONNX Runtime threads sleep) or 1 (they spin), got '${v}'`);
}

/**
 * The default of RuntimeOptions.spinning: off. Measured on the shared 2-core machine (load 7-10):
 * `anyres reproduce --quick` 337.6 s spinning vs 177.7 s sleeping (1.90x; in the other order
 * 299.8 vs 202.0 s, 1.48x; results identical but for timings), train
 * steps of the main job's small models 1.56-2.05x (bench/small.ts); a spinning thread burns its
 * core whenever the other thread of the step (or another process) holds it.
 */
export const SPIN_DEFAULT = false;

export class Runtime {
  readonly threads: number;
  /** Whether ONNX Runtime's idle intra-op threads spin (RuntimeOptions.spinning, else $ANYRES_SPIN, else SPIN_DEFAULT). */
  readonly spinning: boolean;
  readonly stats: RuntimeStats = { compiles: 0, cacheHits: 0, runs: 0 };
  private readonly byKey = new Map<string, Promise<Compiled>>();
  private readonly byHash = new Map<string, Promise<Compiled>>();

  constructor(private readonly opts: RuntimeOptions = {}) {
    this.threads = opts.threads ?? threadsFromEnv() ?? os.availableParallelism();
    this.spinning = opts.spinning ?? spinningFromEnv() ?? SPIN_DEFAULT;
  }

  /** The attention form for graphs that are differentiated (see RuntimeOptions.trainingAttention). */
  get trainingAttention(): AttentionForm {
    return this.opts.trainingAttention ?? 'explicit';
  }

  /** Compiles ONNX bytes into a session (no caching). */
  async session(bytes: Uint8Array): Promise<ort.InferenceSession> {
    return ort.InferenceSession.create(bytes, {
      executionProviders: this.opts.executionProviders ?? ['cpu'],
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: this.opts.optimization ?? 'all',
      enableCpuMemArena: true,
      enableMemPattern: true,
      ...(!this.spinning ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    });
  }

  /**
   * Traces `build` with one input per feed spec and compiles it, or returns the
   * cached session for the same key and shapes.
   */
  async compile(build: BuildFn, specs: Readonly<Record<string, { shape: readonly number[]; dtype?: DType }>>, key?: string): Promise<Compiled> {
    const sig = Object.keys(specs)
      .sort()
      .map((k) => `${k}:${specs[k]!.dtype ?? 'float32'}[${specs[k]!.shape.join(',')}]`)
      .join(';');
    const cacheKey = `${key ?? 'fn' + fnId(build)}|${sig}`;
    const hit = this.byKey.get(cacheKey);
    if (hit) {
      this.stats.cacheHits++;
      return hit;
    }
    const g = new Graph();
    g.attention = this.opts.attention ?? 'fused';
    const inputs: Record<string, Tensor> = {};
    for (const [name, s] of Object.entries(specs)) inputs[name] = g.input(name, s.shape, s.dtype ?? 'float32');
    const outputs = build(inputs, g);
    const lowered = lower(outputs, { inputs: g.inputs });
    const hash = createHash('sha1').update(lowered.bytes).digest('hex');
    let p = this.byHash.get(hash);
    if (p) this.stats.cacheHits++;
    else {
      this.stats.compiles++;
      p = this.session(lowered.bytes).then((s) => new Compiled(s, lowered, this.stats));
      this.byHash.set(hash, p);
      p.catch(() => this.byHash.delete(hash));
    }
    this.byKey.set(cacheKey, p);
    p.catch(() => this.byKey.delete(cacheKey));
    return p;
  }

  /** Traces (once per key and shapes), compiles (once) and runs. */
  async run(build: BuildFn, feeds: Feeds, key?: string): Promise<Record<string, HostTensor>> {
    const specs: Record<string, { shape: number[]; dtype: DType }> = {};
    for (const [k, v] of Object.entries(feeds)) specs[k] = { shape: v.shape, dtype: dtypeOfData(v.data) };
    const c = await this.compile(build, specs, key);
    return c.run(feeds);
  }

  /** Drops every cached session. */
  async clear(): Promise<void> {
    const all = [...new Set(this.byHash.values())];
    this.byKey.clear();
    this.byHash.clear();
    for (const p of all) await (await p).release();
  }
}

/** Convenience: a float32 host tensor. */
export function host(data: TypedData | readonly number[], shape: readonly number[]): HostTensor {
  const d = ArrayBuffer.isView(data) ? (data as TypedData) : Float32Array.from(data as readonly number[]);
  const n = shape.reduce((a, b) => a * b, 1);
  if (d.length !== n) throw new Error(`host: ${d.length} values for shape ${fmtShape(shape)} (needs ${n})`);
  return { data: d, shape: [...shape] };
}
