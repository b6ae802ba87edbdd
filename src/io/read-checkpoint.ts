/**
 * One checkpoint reader for every command (`similarity`, `convert`, `export`, `predict`): whatever
 * a user points `--checkpoint` / `--from` at,
 *
 * - a training run directory (its `last.json`; or, without one, its newest `ckpt-<step>.safetensors`),
 * - a run's `last.json`,
 * - a training tensor file `ckpt-<step>.safetensors` (the optimizer moments `m.*` / `v.*` are left out),
 * - a converted or exported anyres `.safetensors` (`anyres.config` metadata),
 * - an official / foreign file (torch zip or legacy `.pth`, numpy `.pkl`, safetensors),
 *
 * gives its tensors, metadata and, when the file records one, the model spec. `loadModelCheckpoint`
 * then builds the model (from `--model` when given, else from the spec) and loads the weights
 * through the key maps (src/io/load-model.ts).
 *
 * @example
 * const { model, weights } = loadModelCheckpoint('runs/h');          // a training run
 * const same = loadModelCheckpoint('hiera_tiny.pth', { model: 'hiera-tiny' });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from '../models/types.ts';
import type { Weights } from '../nn/params.ts';
import { modelFromCheckpointConfig, parseModelSpec } from '../models/registry.ts';
import type { ModelSpecInput } from '../models/spec.ts';
import { CHECKPOINT_FORMAT, LAST_JSON, loadCheckpoint } from './train-checkpoint.ts';
import { paramShapesOf } from './checkpoint-spec.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { type NamedTensor } from './safetensors.ts';
import { type LoadResult, loadWeightsFromTensors, readCheckpointFile } from './load-model.ts';

export type CheckpointOrigin = 'train-run' | 'train-tensors' | 'anyres' | 'foreign';

export interface ReadCheckpoint {
  /** The path given. */
  path: string;
  /** The tensor file actually read. */
  file: string;
  origin: CheckpointOrigin;
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
  /** The model the checkpoint records (`{family, config}` or `{family, preset, overrides}`), if any. */
  spec: (ModelSpecInput & { family: string }) | null;
  /** A training run's options (dataset, resolutions, ...), for run checkpoints. */
  run: Record<string, unknown> | null;
}

const CKPT_FILE = /^ckpt-(\d+)\.safetensors$/;

/** Reads any checkpoint path (see the file comment). Throws naming what was found and what works. */
export function readAnyCheckpoint(p: string): ReadCheckpoint {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) throw new Error(`checkpoint ${p}: does not exist`);
  if (st.isDirectory()) {
    if (fs.existsSync(path.join(p, LAST_JSON))) return fromRunJson(p);
    const ckpts = fs.readdirSync(p).filter((f) => CKPT_FILE.test(f)).sort((a, b) => Number(CKPT_FILE.exec(b)![1]) - Number(CKPT_FILE.exec(a)![1]));
    if (ckpts.length) return readAnyCheckpoint(path.join(p, ckpts[0]!));
    const files = fs.readdirSync(p).filter((f) => /\.(safetensors|pth|pt|bin|pkl|ckpt)$/.test(f));
    throw new Error(`checkpoint ${p}: a directory without ${LAST_JSON} or ckpt-<step>.safetensors (not a training run)${files.length ? `; checkpoint files in it: ${files.slice(0, 6).join(', ')}` : ''}`);
  }
  if (p.endsWith('.json')) return fromRunJson(p);
  const { tensors, metadata } = readCheckpointFile(p);
  if (metadata['format'] === CHECKPOINT_FORMAT) return fromTrainTensors(p, tensors, metadata);
  const spec = metadata['anyres.config'] !== undefined ? parseSpec(metadata['anyres.config'], p) : null;
  return { path: p, file: p, origin: spec ? 'anyres' : 'foreign', tensors, metadata, spec, run: null };
}

function parseSpec(json: string, file: string): ModelSpecInput & { family: string } {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new Error(`checkpoint ${file}: anyres.config metadata is not valid JSON (${(e as Error).message})`);
  }
  const o = v as ModelSpecInput & { family: string; model?: ModelSpecInput & { family: string } };
  return o.model && o.family === undefined ? o.model : o;
}

/** A run's last.json (or its directory): parameters with the shapes of the model it records. */
function fromRunJson(p: string): ReadCheckpoint {
  const { info, state } = loadCheckpoint(p);
  const jsonPath = fs.statSync(p).isDirectory() ? path.join(p, LAST_JSON) : p;
  const shapes = paramShapesOf(info.model);
  const tensors = new Map<string, NamedTensor>();
  for (const [k, v] of state.params) {
    const s = shapes.get(k);
    tensors.set(k, { shape: s && s.reduce((a, b) => a * b, 1) === v.length ? s : [v.length], data: v });
  }
  const run = info.run;
  return {
    path: p, file: path.join(path.dirname(jsonPath), info.tensors), origin: 'train-run', tensors,
    metadata: runMetadata(run), spec: { family: info.model.family, config: info.model.config }, run,
  };
}

/** What a run's options say about its data (the same entries the trainer writes into its tensor files). */
function runMetadata(run: Record<string, unknown>): Record<string, string> {
  const meta: Record<string, string> = { 'anyres.normalization': JSON.stringify({ mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }) };
  if (typeof run['data'] === 'string') meta['anyres.dataset'] = run['data'];
  if (Array.isArray(run['resolutions'])) meta['anyres.train_res'] = JSON.stringify(run['resolutions']);
  return meta;
}

/** A `ckpt-<step>.safetensors`: the parameters (not the moments); the spec from its metadata or its run's last.json. */
function fromTrainTensors(p: string, all: Map<string, NamedTensor>, metadata: Record<string, string>): ReadCheckpoint {
  // The AdamW moments and the EMA copy (`ema.<name>`, train --ema) are not the model's parameters.
  const tensors = new Map([...all].filter(([k]) => !k.startsWith('m.') && !k.startsWith('v.') && !k.startsWith('ema.')));
  let spec = metadata['anyres.config'] !== undefined ? parseSpec(metadata['anyres.config'], p) : null;
  let run: Record<string, unknown> | null = null;
  let meta = metadata;
  if (!spec) {
    // Tensor files written before they carried their spec: the run's last.json, if it names this file.
    const json = path.join(path.dirname(p), LAST_JSON);
    const info = fs.existsSync(json) ? (JSON.parse(fs.readFileSync(json, 'utf8')) as { tensors?: string; model?: { family: string; config: unknown }; run?: Record<string, unknown> }) : null;
    if (!info?.model || info.tensors !== path.basename(p)) {
      throw new Error(`checkpoint ${p}: a training tensor file from before tensor files recorded their model, and no ${LAST_JSON} beside it names it; pass the run directory, or --model <preset | JSON>`);
    }
    spec = { family: info.model.family, config: info.model.config };
    run = info.run ?? {};
    meta = { ...runMetadata(run), ...metadata };
  }
  const shapes = spec.config !== undefined ? paramShapesOf({ family: spec.family, config: spec.config }) : new Map<string, number[]>();
  for (const [k, t] of tensors) {
    const s = shapes.get(k);
    if (t.shape.length === 1 && s && s.reduce((a, b) => a * b, 1) === t.data.length) tensors.set(k, { ...t, shape: s });
  }
  return { path: p, file: p, origin: 'train-tensors', tensors, metadata: meta, spec, run };
}

export interface LoadModelCheckpointOptions {
  /** `--model`: preset, inline JSON or JSON file; overrides the recorded spec. */
  model?: string;
  /** Overrides merged over the model (e.g. `{numClasses}`). */
  overrides?: Record<string, unknown>;
  strict?: boolean;
  sourceGrid?: readonly [number, number];
}

export interface ModelCheckpoint extends ReadCheckpoint {
  model: Model;
  weights: Weights;
  load: LoadResult;
}

/** {@link readAnyCheckpoint}, then the model (from `opts.model` or the recorded spec) with the weights loaded. */
export function loadModelCheckpoint(p: string, opts: LoadModelCheckpointOptions = {}): ModelCheckpoint {
  const r = readAnyCheckpoint(p);
  let model: Model;
  if (opts.model !== undefined) model = parseModelSpec(opts.model).model;
  else if (r.spec) model = modelFromCheckpointConfig(r.spec);
  else throw new Error(`checkpoint ${p}: does not say which model it holds (a ${r.origin} file without anyres.config); pass --model <preset | JSON {family, preset, overrides}> (see 'anyres models')`);
  if (opts.overrides && Object.keys(opts.overrides).length) model = modelFromCheckpointConfig({ family: model.family, config: model.config, overrides: opts.overrides });
  const load = loadWeightsFromTensors(model, r.tensors, { strict: opts.strict ?? true, ...(opts.sourceGrid ? { sourceGrid: opts.sourceGrid } : {}) }, r.metadata, p);
  return { ...r, model, weights: load.weights, load };
}
