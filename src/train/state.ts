/**
 * Training state on the host: parameters and AdamW moments as Float32Arrays keyed by the
 * official parameter names, plus the number of optimizer steps taken.
 */
import { type ForkableRandom, type ParamInfo, initWeights } from '../nn/params.ts';

export interface TrainState {
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  /** Optimizer steps taken so far (the next step is step + 1). */
  step: number;
}

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
