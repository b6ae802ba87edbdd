/**
 * ONNX export of a classifier checkpoint: the model's forward traced at one input size with the
 * parameters as constants (they become ONNX initializers), input normalisation and a softmax
 * folded in, and metadata_props that make the file self-describing (src/io/model-meta.ts).
 *
 * Our graphs have static shapes, so a model is exported once per resolution; `exportCheckpoint`
 * writes one file per requested size. The exported model runs in any ONNX Runtime (Node, Python,
 * the browser's onnxruntime-web) with no anyres code.
 *
 * Two checkpoint kinds are read:
 * - training checkpoints (src/io/train-checkpoint.ts): a run directory or its `last.json`; the model
 *   spec, the training resolutions and the dataset come from the JSON, and the images were
 *   normalised with the ImageNet statistics (the trainer's `normalize()`);
 * - safetensors files with official parameter names whose `__metadata__` holds `anyres.config`
 *   (JSON `{family, preset | config, overrides?}`, as `anyres convert` writes), optionally
 *   `anyres.classes` (JSON names), `anyres.dataset`, `anyres.train_res` (JSON list) and
 *   `anyres.normalization` (JSON `{mean, std}`).
 *
 * @example
 * const { written } = await exportCheckpoint('runs/abswin/model.safetensors', [[64, 64], [96, 96]], 'out/model.onnx');
 * // -> out/model-64.onnx, out/model-96.onnx
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import { Graph, type Tensor } from '../graph/tensor.ts';
import { div, sub } from '../graph/ops/elementwise.ts';
import { softmax } from '../graph/ops/nn.ts';
import { lower } from '../graph/onnx.ts';
import { Params, type Weights } from '../nn/params.ts';
import type { Model } from '../models/types.ts';
import { modelFromCheckpointConfig } from '../models/registry.ts';
import { dataSpecClassNames } from '../data/spec.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { checkpointJsonPath } from './train-checkpoint.ts';
import { loadModelCheckpoint } from './read-checkpoint.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { makeBatchDynamic } from './onnx-batch.ts';
import { weightsToFp16 } from './onnx-fp16.ts';
import { META, MODEL_FORMAT } from './model-meta.ts';

const { onnx } = onnxProto;

/** What a checkpoint says about the model it holds (src/models/registry.ts `modelFromCheckpointConfig`). */
export interface ModelSpec {
  family: string;
  preset?: string;
  /** A full config (used instead of the preset). */
  config?: unknown;
  overrides?: Record<string, unknown>;
}

/** Builds the model a spec describes; only classifiers (logits [B, K]) can be exported. */
export function modelFromSpec(spec: ModelSpec): Model {
  return modelFromCheckpointConfig(spec);
}

export interface Normalization {
  mean: readonly number[];
  std: readonly number[];
}

export interface LoadedCheckpoint {
  model: Model;
  weights: Weights;
  spec: ModelSpec;
  classes: string[];
  trainRes: number[] | null;
  normalization: Normalization | null;
  /** Display name: the checkpoint file name without extension (or anyres.name). */
  name: string;
}

function parseJson<T>(where: string, key: string, v: string | undefined): T | undefined {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v) as T;
  } catch (e) {
    throw new Error(`${where}: ${key} is not valid JSON (${(e as Error).message}): ${v.slice(0, 80)}`);
  }
}


function finish(file: string, model: Model, weights: Weights, spec: ModelSpec, name: string, classes: string[] | null,
  trainRes: number[] | null, normalization: Normalization | null): LoadedCheckpoint {
  const K = outputClasses(model);
  const names = classes ?? [...Array(K).keys()].map((i) => `class ${i}`);
  if (names.length !== K) throw new Error(`export: ${file} names ${names.length} classes but the model has ${K} outputs`);
  return { model, weights, spec, classes: names, trainRes, normalization, name };
}

/**
 * Reads any checkpoint (src/io/read-checkpoint.ts: a run directory, its last.json, a training
 * `ckpt-*.safetensors`, an anyres safetensors, or an official file with `model`) and the model it
 * records, with everything that describes its data: class names, training resolutions and the
 * input normalisation (the recorded one; ImageNet's for an official checkpoint, as timm's
 * `IMAGENET_DEFAULT_MEAN/STD` eval transform; none for an anyres file that records none).
 */
export function loadCheckpointForExport(file: string, opts: { model?: string } = {}): LoadedCheckpoint {
  const ck = loadModelCheckpoint(file, { strict: true, ...(opts.model !== undefined ? { model: opts.model } : {}) });
  const meta = ck.metadata;
  const model = ck.model;
  const K = outputClasses(model);
  const recorded = parseJson<ModelSpec>(file, 'anyres.config', meta['anyres.config']);
  const spec: ModelSpec = ck.spec ?? recorded ?? { family: model.family, config: model.config };
  const preset = meta['anyres.preset'] ?? (typeof spec.preset === 'string' ? spec.preset : undefined);
  const base = ck.origin === 'train-run' ? path.basename(path.dirname(checkpointJsonPath(file))) : path.basename(file).replace(/\.(safetensors|pth|pt|bin|pkl)$/, '');
  const name = meta['anyres.name'] ?? (preset && ck.origin !== 'anyres' && ck.origin !== 'foreign' ? `${base} (${preset})` : base);
  const data = meta['anyres.dataset'] ?? (typeof ck.run?.['data'] === 'string' ? (ck.run['data'] as string) : undefined);
  const normalization = parseJson<Normalization>(file, 'anyres.normalization', meta['anyres.normalization'])
    ?? (ck.origin === 'foreign' ? { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] } : null);
  return finish(file, model, ck.weights, { ...spec, ...(preset ? { preset } : {}) }, name,
    parseJson<string[]>(file, 'anyres.classes', meta['anyres.classes']) ?? dataSpecClassNames(data, K),
    parseJson<number[]>(file, 'anyres.train_res', meta['anyres.train_res']) ?? null,
    normalization);
}

/** The number of logits (traced once at the default size on a scratch graph). */
function outputClasses(model: Model): number {
  const g = new Graph();
  const [H, W] = model.defaultRes;
  const out = model.forward(new Params(g), g.input('x', [1, 3, H, W]));
  if (out.logits.shape.length !== 2) throw new Error(`export: ${model.family} returns logits of shape [${out.logits.shape.join(', ')}], not [B, classes]; only classifiers can be exported`);
  return out.logits.shape[1]!;
}

export interface ExportOptions {
  /** Input [H, W]. */
  res: [number, number];
  classes: readonly string[];
  /** Model display name (files of one model at several sizes share it). */
  name: string;
  normalization?: Normalization | null;
  trainRes?: readonly number[] | null;
  /** What the model config's pos-embed strategy is called, for the page (default: config.posEmbed). */
  posEmbed?: string;
  /** A fixed batch size; default: a dynamic batch dimension ('batch'). */
  batch?: number;
  /** Store the weights as float16 (cast to float32 in the graph). */
  fp16?: boolean;
}

export interface ExportedModel {
  bytes: Uint8Array;
  metadata: Record<string, string>;
  inputName: 'image';
  outputNames: ['logits', 'probs'];
}

/** One trace at batch B with `weights` as constants, lowered to ONNX bytes. */
function traceOnnx(model: Model, weights: Weights, opts: ExportOptions, B: number): Uint8Array {
  const [H, W] = opts.res;
  const g = new Graph();
  const image = g.input('image', [B, 3, H, W]);
  let x: Tensor = image;
  const norm = opts.normalization;
  if (norm) {
    if (norm.mean.length !== 3 || norm.std.length !== 3 || norm.std.some((v) => !(v > 0))) {
      throw new Error(`export: normalization needs 3 means and 3 positive stds, got mean [${norm.mean.join(', ')}] std [${norm.std.join(', ')}]`);
    }
    // (x - mean) / std per channel, broadcast over [B, 3, H, W] (the loader's normalisation).
    x = div(sub(x, g.constant(Float32Array.from(norm.mean), [1, 3, 1, 1])), g.constant(Float32Array.from(norm.std), [1, 3, 1, 1]));
  }
  const out = model.forward(new Params(g, weights), x);
  const logits = out.logits;
  if (logits.shape.length !== 2 || logits.shape[1] !== opts.classes.length) {
    throw new Error(`export: the model returns logits [${logits.shape.join(', ')}] but ${opts.classes.length} class names were given`);
  }
  return lower({ logits, probs: softmax(logits, -1) }, { inputs: [image], name: opts.name, docString: `anyres export of ${model.family} at ${H}x${W}` }).bytes;
}

/**
 * Traces `model` at `opts.res` with `weights` as constants and serialises it, with the input
 * `image` [batch, 3, H, W] in [0, 1] and outputs `logits`, `probs` [batch, K]. The batch is dynamic
 * (src/io/onnx-batch.ts) unless `opts.batch` fixes it; `opts.fp16` stores the weights as float16.
 */
export function exportModelOnnx(model: Model, weights: Weights, opts: ExportOptions): ExportedModel {
  const [H, W] = opts.res;
  model.checkInputSize(H, W);
  if (opts.batch !== undefined && !(Number.isInteger(opts.batch) && opts.batch >= 1)) throw new Error(`export: --batch must be a positive integer, got ${opts.batch}`);
  let bytes = opts.batch !== undefined
    ? traceOnnx(model, weights, opts, opts.batch)
    : makeBatchDynamic(traceOnnx(model, weights, opts, 2), traceOnnx(model, weights, opts, 3));
  if (opts.fp16) bytes = weightsToFp16(bytes).bytes;
  const config = model.config as Record<string, unknown>;
  const norm = opts.normalization;
  const metadata: Record<string, string> = {
    [META.format]: MODEL_FORMAT,
    [META.model]: opts.name,
    [META.family]: model.family,
    [META.config]: JSON.stringify(model.config),
    [META.inputSize]: JSON.stringify([H, W]),
    [META.classes]: JSON.stringify(opts.classes),
    [META.posEmbed]: opts.posEmbed ?? String(config['posEmbed'] ?? 'unknown'),
    [META.normalization]: norm ? JSON.stringify({ mean: norm.mean, std: norm.std }) : 'none',
    'anyres.batch': opts.batch !== undefined ? String(opts.batch) : 'dynamic',
    'anyres.weights_dtype': opts.fp16 ? 'float16' : 'float32',
  };
  if (opts.trainRes) metadata[META.trainRes] = JSON.stringify(opts.trainRes);
  const proto = onnx.ModelProto.decode(bytes);
  proto.metadataProps = Object.entries(metadata).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value }));
  return { bytes: onnx.ModelProto.encode(proto).finish(), metadata, inputName: 'image', outputNames: ['logits', 'probs'] };
}

/** Parses '64', '64,96' or '64x96' (H x W) lists into [H, W] pairs. */
export function parseExportSizes(specs: readonly string[]): [number, number][] {
  const out: [number, number][] = [];
  for (const spec of specs) {
    for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
      const m = /^(\d+)(?:x(\d+))?$/.exec(part);
      if (!m) throw new Error(`export: --res '${part}' is not a size; use 64, 64x96 or a comma list like 64,96,128`);
      const h = Number(m[1]);
      const w = m[2] === undefined ? h : Number(m[2]);
      if (h < 1 || w < 1) throw new Error(`export: --res '${part}' must be positive`);
      out.push([h, w]);
    }
  }
  if (out.length === 0) throw new Error('export: give at least one --res');
  return out;
}

/** The file for one size: `out` itself for a single size, `<stem>-<size>.onnx` for several. */
export function exportPathFor(out: string, res: [number, number], several: boolean): string {
  if (!several) return out;
  const ext = path.extname(out) || '.onnx';
  const stem = out.slice(0, out.length - path.extname(out).length);
  return `${stem}-${res[0] === res[1] ? res[0] : `${res[0]}x${res[1]}`}${ext}`;
}

export interface ExportCheckpointOptions {
  /** `--model` for checkpoints that do not record their model (official files). */
  model?: string;
  /** A fixed batch; default dynamic. */
  batch?: number;
  fp16?: boolean;
}

/** Exports a checkpoint at every size in `sizes`, writing each file atomically. */
export async function exportCheckpoint(ckpt: string, sizes: readonly [number, number][], out: string, o: ExportCheckpointOptions = {}): Promise<{ written: string[]; loaded: LoadedCheckpoint }> {
  const loaded = loadCheckpointForExport(ckpt, o.model !== undefined ? { model: o.model } : {});
  // Check every size first, so a bad one fails before any file is written.
  for (const [h, w] of sizes) loaded.model.checkInputSize(h, w);
  const dir = path.dirname(path.resolve(out));
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const res of sizes) {
    const e = exportModelOnnx(loaded.model, loaded.weights, {
      res, classes: loaded.classes, name: loaded.name, normalization: loaded.normalization, trainRes: loaded.trainRes,
      ...(o.batch !== undefined ? { batch: o.batch } : {}), ...(o.fp16 ? { fp16: true } : {}),
    });
    const file = exportPathFor(out, res, sizes.length > 1);
    writeFileAtomic(file, e.bytes);
    written.push(file);
  }
  return { written, loaded };
}
