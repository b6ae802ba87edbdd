/**
 * What every training loop (classifier: trainer.ts, MAE: mae.ts; detection may follow) does the
 * same way at its edges: resuming from the run directory's last checkpoint, and stopping at a step
 * boundary when asked (SIGINT → AbortSignal), saving first so that `--resume` continues exactly.
 */
import type { ParamInfo } from '../nn/params.ts';
import { type CheckpointInfo, type TrainState, loadCheckpoint } from '../io/train-checkpoint.ts';
import { Rng } from '../util/rng.ts';
import { checkStateMatches } from './state.ts';

export interface Resumed {
  info: CheckpointInfo;
  state: TrainState;
  ema?: Map<string, Float32Array>;
  /** The named generator, restored from the checkpoint (a fresh one when it did not store it). */
  rng: Rng;
  epoch0: number;
  stepInEpoch0: number;
}

/**
 * The last checkpoint in `out`, checked to be for `modelSpec` (same family and config) with a state
 * matching the model's parameters; `rngName` names the generator the loop restores ('aug', 'mask').
 * `fail` builds the loop's own error type.
 */
export function resumeRun(
  out: string, modelSpec: { family: string; config: unknown }, infos: ReadonlyMap<string, ParamInfo>, rngName: string,
  fail: (message: string) => Error,
): Resumed {
  const ck = loadCheckpoint(out);
  if (ck.info.model.family !== modelSpec.family || JSON.stringify(ck.info.model.config) !== JSON.stringify(modelSpec.config)) {
    throw fail(`resume: the checkpoint in ${out} is for ${ck.info.model.family} ${JSON.stringify(ck.info.model.config)}, not the requested model`);
  }
  checkStateMatches(ck.state, infos, `resume from ${out}`);
  return {
    info: ck.info, state: ck.state, ...(ck.ema ? { ema: ck.ema } : {}),
    rng: Rng.fromState(ck.info.rng[rngName] ?? []), epoch0: ck.info.epoch, stepInEpoch0: ck.info.stepInEpoch,
  };
}

/**
 * At a step boundary: when `signal` is aborted, save the position (`epoch`, batches consumed), close
 * the progress bar, log `{type: 'interrupted'}` and return true (the loop then returns).
 */
export function stopIfAborted(
  signal: AbortSignal | undefined, at: { step: number; epoch: number; stepInEpoch: number },
  save: (epoch: number, stepInEpoch: number) => void, bar: { done(): void } | null, log: (r: { type: 'interrupted'; step: number; epoch: number; stepInEpoch: number }) => void,
): boolean {
  if (!signal?.aborted) return false;
  save(at.epoch, at.stepInEpoch);
  bar?.done();
  log({ type: 'interrupted', ...at });
  return true;
}
