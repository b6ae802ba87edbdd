/**
 * Training checkpoints: a safetensors file with the parameters (official names) and the AdamW
 * moments (`m.<name>`, `v.<name>`), the EMA weights when the run keeps them (`ema.<name>`, with the EMA
 * options in the JSON's `ema` field), plus a JSON file with everything else needed to resume
 * bit-for-bit: model family + config, optimizer and run options, step, epoch and position in the
 * epoch's data order, RNG states, best metric.
 *
 * Layout in the run directory: `ckpt-<step>.safetensors` and `last.json` naming it with its
 * sha256. Both are written atomically (temp file + rename); the JSON is written LAST, so `last.json`
 * always names a complete tensor file: a crash or Ctrl-C mid-save leaves the previous checkpoint
 * loadable. Older tensor files are removed only after the new JSON is in place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { readSafetensors, serializeSafetensors } from './safetensors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { checkpointMetadataOf, paramShapesOf } from './checkpoint-spec.ts';

/**
 * Training state on the host, as a checkpoint holds it: parameters and AdamW moments as
 * Float32Arrays keyed by the official parameter names, plus the number of optimizer steps taken.
 * (src/train/state.ts builds and checks it.)
 */
export interface TrainState {
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  /** Optimizer steps taken so far (the next step is step + 1). */
  step: number;
}

/** EMA options (timm `ModelEmaV3`), recorded with the `ema.<name>` weights; src/train/ema.ts uses them. */
export interface EmaOptions {
  /** Target decay (timm `decay`, default 0.9998 as timm's `--model-ema-decay`). */
  decay: number;
  /** timm `use_warmup`: ramp the decay up from 0 (default false, as timm). */
  warmup?: boolean;
  /** timm `warmup_gamma` (default 1). */
  warmupGamma?: number;
  /** timm `warmup_power` (default 2/3). */
  warmupPower?: number;
  /** timm `min_decay` (default 0). */
  minDecay?: number;
  /** timm `update_after_step` (default 0). */
  updateAfterStep?: number;
}

export const CHECKPOINT_FORMAT = 'anyres-train-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const LAST_JSON = 'last.json';

export interface CheckpointInfo {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  model: { family: string; config: unknown; preset?: string };
  /** The run's options (optimizer hyperparameters, schedule, data, resolutions...), as given. */
  run: Record<string, unknown>;
  /** Optimizer steps taken. */
  step: number;
  /** Epoch in progress and the number of its batches already consumed (data order position). */
  epoch: number;
  stepInEpoch: number;
  /** Named RNG states (Rng.state()). */
  rng: Record<string, number[]>;
  bestMetric?: { name: string; value: number; step: number };
  /** The EMA's options (src/train/ema.ts) when the tensor file holds `ema.<name>` weights. */
  ema?: EmaOptions;
  /** Tensor file (relative to the JSON) and its sha256. */
  tensors: string;
  sha256: string;
  savedAt: string;
}

export class CheckpointError extends Error {
  constructor(file: string, message: string) {
    super(`checkpoint ${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

/** Saves state + info into `dir` (created if needed); returns the JSON path. */
export function saveCheckpoint(
  dir: string,
  state: TrainState,
  info: Omit<CheckpointInfo, 'format' | 'version' | 'tensors' | 'sha256' | 'savedAt' | 'step'>,
  ema?: ReadonlyMap<string, Float32Array>,
): string {
  if (!!ema !== !!info.ema) throw new Error('saveCheckpoint: give the EMA weights together with info.ema (its options), or neither');
  fs.mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  // Real shapes and the model spec make the tensor file readable alone (src/io/checkpoint-spec.ts).
  const shapes = paramShapesOf(info.model);
  const shape = (k: string, v: Float32Array): number[] => { const s = shapes.get(k); return s && s.reduce((a, b) => a * b, 1) === v.length ? s : [v.length]; };
  for (const [k, v] of state.params) tensors.set(k, { shape: shape(k, v), data: v });
  for (const [k, v] of state.m) tensors.set(`m.${k}`, { shape: shape(k, v), data: v });
  for (const [k, v] of state.v) tensors.set(`v.${k}`, { shape: shape(k, v), data: v });
  for (const [k, v] of ema ?? []) tensors.set(`ema.${k}`, { shape: shape(k, v), data: v });
  const bytes = serializeSafetensors(tensors, { format: CHECKPOINT_FORMAT, step: String(state.step), ...checkpointMetadataOf(info.model, info.run) });
  const name = `ckpt-${state.step}.safetensors`;
  writeFileAtomic(path.join(dir, name), bytes);
  const full: CheckpointInfo = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    ...info,
    step: state.step,
    tensors: name,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    savedAt: new Date().toISOString(),
  };
  const jsonPath = path.join(dir, LAST_JSON);
  writeFileAtomic(jsonPath, JSON.stringify(full, null, 1) + '\n');
  for (const f of fs.readdirSync(dir)) {
    if (/^ckpt-\d+\.safetensors$/.test(f) && f !== name) fs.rmSync(path.join(dir, f), { force: true });
  }
  return jsonPath;
}

/** `last.json` of a run directory, or the given JSON file. */
export function checkpointJsonPath(p: string): string {
  return fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, LAST_JSON) : p;
}

/**
 * Loads and verifies a checkpoint (format, sha256 of the tensor file, every parameter with its
 * two moments). Throws a CheckpointError that says what is wrong.
 */
export function loadCheckpoint(p: string): { info: CheckpointInfo; state: TrainState; ema?: Map<string, Float32Array> } {
  const jsonPath = checkpointJsonPath(p);
  if (!fs.existsSync(jsonPath)) throw new CheckpointError(jsonPath, 'does not exist (expected a run directory with last.json, or the JSON file itself)');
  let info: CheckpointInfo;
  try {
    info = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as CheckpointInfo;
  } catch (e) {
    throw new CheckpointError(jsonPath, `is not valid JSON (${(e as Error).message}); the file is corrupted or truncated`);
  }
  if (info.format !== CHECKPOINT_FORMAT) throw new CheckpointError(jsonPath, `format is '${String(info.format)}', expected '${CHECKPOINT_FORMAT}'`);
  if (info.version !== CHECKPOINT_VERSION) throw new CheckpointError(jsonPath, `version ${info.version} is not supported (this build reads ${CHECKPOINT_VERSION})`);
  for (const k of ['step', 'epoch', 'stepInEpoch'] as const) {
    if (!Number.isInteger(info[k]) || info[k] < 0) throw new CheckpointError(jsonPath, `field '${k}' must be a non-negative integer, got ${JSON.stringify(info[k])}`);
  }
  const tPath = path.join(path.dirname(jsonPath), info.tensors);
  if (!fs.existsSync(tPath)) throw new CheckpointError(jsonPath, `its tensor file ${info.tensors} is missing`);
  const bytes = fs.readFileSync(tPath);
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== info.sha256) {
    throw new CheckpointError(tPath, `sha256 ${sha.slice(0, 16)}... does not match ${String(info.sha256).slice(0, 16)}... recorded in ${path.basename(jsonPath)} (${bytes.length} bytes: truncated or modified)`);
  }
  const tensors = readSafetensors(bytes, tPath).tensors;
  const state: TrainState = { params: new Map(), m: new Map(), v: new Map(), step: info.step };
  const ema = new Map<string, Float32Array>();
  for (const [k, t] of tensors) {
    if (k.startsWith('ema.')) ema.set(k.slice(4), t.data);
    else if (k.startsWith('m.')) state.m.set(k.slice(2), t.data);
    else if (k.startsWith('v.')) state.v.set(k.slice(2), t.data);
    else state.params.set(k, t.data);
  }
  for (const k of state.params.keys()) {
    if (!state.m.has(k) || !state.v.has(k)) throw new CheckpointError(tPath, `parameter '${k}' has no optimizer moments m.${k} / v.${k}`);
    if (info.ema && !ema.has(k)) throw new CheckpointError(tPath, `the JSON records an EMA but parameter '${k}' has no ema.${k}`);
  }
  return info.ema ? { info, state, ema } : { info, state };
}
