/**
 * Training state on the host: parameters and AdamW moments as Float32Arrays keyed by the
 * official parameter names, plus the number of optimizer steps taken.
 */
import { type ForkableRandom, type ParamInfo, initWeights } from '../nn/params.ts';
import type { TrainState } from '../io/train-checkpoint.ts';
import { type HostTensor, host } from '../graph/runtime.ts';

// The layout is the checkpoint format's (src/io/train-checkpoint.ts); training builds on it.
export type { TrainState };

/** Fresh state: parameters from the given values, zero moments, step 0. */
export function stateFromParams(params: ReadonlyMap<string, Float32Array>): TrainState {
  const p = new Map<string, Float32Array>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [k, a] of params) {
    p.set(k, a);
    m.set(k, new Float32Array(a.length));
    v.set(k, new Float32Array(a.length));
  }
  return { params: p, m, v, step: 0 };
}

/** Fresh state from the model's initialisers, each parameter from its own stream `rng.fork('param:' + name)` (see `initWeights`). */
export function initState(infos: ReadonlyMap<string, ParamInfo>, rng: ForkableRandom): TrainState {
  const w = initWeights(infos, rng);
  return stateFromParams(new Map([...w].map(([k, t]) => [k, t.data])));
}

/** Throws naming the first parameter whose presence or size differs from the model's. */
export function checkStateMatches(state: TrainState, infos: ReadonlyMap<string, ParamInfo>, where: string): void {
  for (const [name, info] of infos) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    for (const [kind, map] of [['param', state.params], ['m', state.m], ['v', state.v]] as const) {
      const a = map.get(name);
      if (!a) throw new Error(`${where}: ${kind} '${name}' [${info.shape}] is missing from the state`);
      if (a.length !== n) throw new Error(`${where}: ${kind} '${name}' has ${a.length} values, the model needs [${info.shape}] = ${n}`);
    }
  }
  for (const name of state.params.keys()) {
    if (!infos.has(name)) throw new Error(`${where}: the state has parameter '${name}' that the model does not declare`);
  }
}

/** Weights map (name → {data, shape}) of the state's parameters, for Params constants or saving. */
export function weightsOf(state: TrainState, infos: ReadonlyMap<string, ParamInfo>): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const [name, info] of infos) out.set(name, { data: state.params.get(name)!, shape: [...info.shape] });
  return out;
}

/**
 * Adds the compiled step's state inputs to `feeds`: each parameter as `<name>` and its AdamW
 * moments as `m.<name>` / `v.<name>` (the convention of src/train/step.ts).
 */
export function addStateFeeds(feeds: Record<string, HostTensor>, state: TrainState, infos: ReadonlyMap<string, ParamInfo>): void {
  for (const [n, info] of infos) {
    feeds[n] = host(state.params.get(n)!, info.shape);
    feeds[`m.${n}`] = host(state.m.get(n)!, info.shape);
    feeds[`v.${n}`] = host(state.v.get(n)!, info.shape);
  }
}

/** The state after one compiled step, read from its outputs `new.<name>`, `new.m.<name>`, `new.v.<name>`. */
export function stateFromStepOutputs(out: Readonly<Record<string, HostTensor>>, names: readonly string[], step: number): TrainState {
  const next: TrainState = { params: new Map(), m: new Map(), v: new Map(), step };
  for (const n of names) {
    next.params.set(n, out[`new.${n}`]!.data as Float32Array);
    next.m.set(n, out[`new.m.${n}`]!.data as Float32Array);
    next.v.set(n, out[`new.v.${n}`]!.data as Float32Array);
  }
  return next;
}
