/**
 * Parameters: declared where they are used, so that one forward function is the
 * single source of truth for names, shapes, initialisers and weight-decay groups.
 *
 * A model's forward calls `p.param('blocks.0.attn.qkv.weight', [3C, C], init)`.
 * During tracing that returns the graph input of that name (created on first
 * use); `collectParams` traces the forward once on a scratch graph to list every
 * parameter with its shape, initialiser and decay flag.
 */
import { Graph, Tensor, fmtShape } from '../graph/tensor.ts';

export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'const'; value: number }
  | { kind: 'normal'; std: number }
  /** timm trunc_normal_(std) with cut-off at ±2 (absolute, as timm's defaults a=-2, b=2). */
  | { kind: 'truncNormal'; std: number }
  | { kind: 'uniform'; low: number; high: number }
  /** torch's default Linear/Conv init: U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
  | { kind: 'fanIn'; fanIn: number };

export const zeros: Init = { kind: 'zeros' };
export const ones: Init = { kind: 'ones' };
export const truncNormal = (std = 0.02): Init => ({ kind: 'truncNormal', std });

export interface ParamInfo {
  name: string;
  shape: number[];
  init: Init;
  /** Whether AdamW applies weight decay (timm: no decay on ndim<=1, biases, position embeddings, tokens). */
  decay: boolean;
}

export interface ParamOptions {
  /** Overrides the default decay rule (ndim >= 2 and not a bias). */
  decay?: boolean;
}

/** Where parameter tensors come from while tracing. */
export class Params {
  constructor(
    readonly graph: Graph,
    /** When given, parameters become constants with these values (for export and tests). */
    private readonly values?: ReadonlyMap<string, { data: Float32Array; shape: readonly number[] }>,
    readonly prefix = '',
    /** Every parameter declared so far, shared by all scopes of one trace. */
    readonly infos = new Map<string, ParamInfo>(),
  ) {}

  /** A parameter tensor; the same name always yields the same tensor. */
  param(name: string, shape: readonly number[], init: Init, opts: ParamOptions = {}): Tensor {
    const full = this.prefix + name;
    const decay = opts.decay ?? (shape.length >= 2 && !full.endsWith('.bias'));
    const prev = this.infos.get(full);
    if (prev && prev.shape.join() !== shape.join()) {
      throw new Error(`param '${full}': declared as ${fmtShape(prev.shape)} and again as ${fmtShape(shape)}`);
    }
    if (!prev) this.infos.set(full, { name: full, shape: [...shape], init, decay });
    if (this.values) {
      const v = this.values.get(full);
      if (!v) throw new Error(`param '${full}' ${fmtShape(shape)}: missing from the given weights`);
      if (v.shape.join() !== shape.join()) throw new Error(`param '${full}': weights have shape ${fmtShape(v.shape)}, the model needs ${fmtShape(shape)}`);
      return this.cachedConst(full, v.data, shape);
    }
    return this.graph.hasInput(full) ? this.inputByName(full) : this.graph.input(full, shape, 'float32');
  }

  /** A view that prefixes every name (`p.scope('blocks.0.')`). */
  scope(prefix: string): Params {
    return new Params(this.graph, this.values, this.prefix + prefix, this.infos);
  }

  private inputByName(name: string): Tensor {
    const t = this.graph.inputs.find((i) => i.name === name);
    if (!t) throw new Error(`param '${name}': graph input vanished`);
    return t;
  }

  private cachedConst(name: string, data: Float32Array, shape: readonly number[]): Tensor {
    const cache = constCache(this.graph);
    let t = cache.get(name);
    if (!t) {
      t = this.graph.constant(data, shape, 'float32');
      cache.set(name, t);
    }
    return t;
  }
}

const constCaches = new WeakMap<Graph, Map<string, Tensor>>();
function constCache(g: Graph): Map<string, Tensor> {
  let c = constCaches.get(g);
  if (!c) {
    c = new Map();
    constCaches.set(g, c);
  }
  return c;
}

/** Anything with a seeded uniform and normal draw (src/util/rng.ts). */
export interface RandomSource {
  next(): number;
  normal(): number;
}

/** Fills one parameter by its initialiser. */
export function initParam(info: ParamInfo, rng: RandomSource): Float32Array {
  const n = info.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const init = info.init;
  switch (init.kind) {
    case 'zeros':
      break;
    case 'ones':
      out.fill(1);
      break;
    case 'const':
      out.fill(init.value);
      break;
    case 'normal':
      for (let i = 0; i < n; i++) out[i] = rng.normal() * init.std;
      break;
    case 'truncNormal':
      for (let i = 0; i < n; i++) {
        let v: number;
        do v = rng.normal() * init.std;
        while (v < -2 || v > 2);
        out[i] = v;
      }
      break;
    case 'uniform':
      for (let i = 0; i < n; i++) out[i] = init.low + (init.high - init.low) * rng.next();
      break;
    case 'fanIn': {
      const b = 1 / Math.sqrt(init.fanIn);
      for (let i = 0; i < n; i++) out[i] = -b + 2 * b * rng.next();
      break;
    }
  }
  return out;
}

/** Traces `forward` on a scratch graph to list the parameters it declares, in declaration order. */
export function collectParams(forward: (p: Params, g: Graph) => void): Map<string, ParamInfo> {
  const g = new Graph();
  const p = new Params(g);
  forward(p, g);
  return p.infos;
}

export type Weights = Map<string, { data: Float32Array; shape: number[] }>;

/** A random source that can derive named child streams without advancing itself (`Rng.fork`). */
export interface ForkableRandom {
  fork(label: string): RandomSource;
}

/**
 * Initialises every parameter from its own stream, `rng.fork('param:' + name)`: a hash of the
 * generator's state and the parameter's name (src/util/rng.ts `fork` does not advance `rng`).
 * So a parameter's initial values depend only on (seed, name, shape, initialiser), never on which
 * other parameters the model has or in what order they are declared: two models that differ in
 * one part (e.g. an absolute vs an abs-win position embedding) start with bit-identical values
 * for every name they share, which is what paired comparisons over seeds need.
 */
export function initWeights(infos: ReadonlyMap<string, ParamInfo>, rng: ForkableRandom): Weights {
  const w: Weights = new Map();
  for (const info of infos.values()) w.set(info.name, { data: initParam(info, rng.fork(`param:${info.name}`)), shape: [...info.shape] });
  return w;
}

export function countParams(infos: ReadonlyMap<string, ParamInfo>): number {
  let n = 0;
  for (const i of infos.values()) n += i.shape.reduce((a, b) => a * b, 1);
  return n;
}
