/**
 * ONNX export of a classifier checkpoint: the model's forward traced at one input size with the
 * parameters as constants (they become ONNX initializers), input normalisation and a softmax
 * folded in, and metadata_props that make the file self-describing (web/src/model-meta.ts).
 *
 * Our graphs have static shapes, so a model is exported once per resolution; `exportCheckpoint`
 * writes one file per requested size. The exported model runs in any ONNX Runtime (Node, Python,
 * the browser's onnxruntime-web) with no anyres code.
 *
 * Checkpoints are safetensors files whose tensors use the official parameter names and whose
 * `__metadata__` holds `anyres.config`: JSON `{family, preset?, config?, overrides?}` (the model
 * spec), optionally `anyres.classes` (JSON names), `anyres.dataset`, `anyres.train_res` (JSON
 * list) and `anyres.normalization` (JSON `{mean, std}`). A sidecar `<checkpoint>.json` with the
 * same keys is read when the metadata lacks them.
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
import { type VitConfig, createVit } from '../models/vit.ts';
import { type HieraConfig, createHiera } from '../models/hiera.ts';
import { SYNTHETIC_CLASS_NAMES } from '../data/synthetic.ts';
import { readSafetensors } from './safetensors.ts';
import { writeFileAtomic } from './atomic.ts';
import { META, MODEL_FORMAT } from '../../web/src/model-meta.ts';

const { onnx } = onnxProto;

/** What a checkpoint says about the model it holds. */
export interface ModelSpec {
  family: string;
  preset?: string;
  /** A full config (used instead of the preset). */
  config?: Record<string, unknown>;
  overrides?: Record<string, unknown>;
}

/**
 * Factories of the classification families, by the family name a checkpoint stores. ViTDet and
 * HieraDet are backbones without a classification head, so they have no entry here.
 */
const FACTORIES: Record<string, (base: Record<string, unknown> | string, overrides: Record<string, unknown>) => Model> = {
  vit: (b, o) => createVit(b as VitConfig | string, o as Partial<VitConfig>),
  resformer: (b, o) => createVit(b as VitConfig | string, o as Partial<VitConfig>),
  hiera: (b, o) => createHiera(b as HieraConfig | string, o as Partial<HieraConfig>),
};

/** Builds the model a spec describes; errors name the known families. */
export function modelFromSpec(spec: ModelSpec): Model {
  const make = FACTORIES[spec.family];
  if (!make) throw new Error(`export: model family '${spec.family}' cannot be exported as a classifier (known: ${Object.keys(FACTORIES).join(', ')})`);
  const base = spec.config ?? spec.preset;
  if (base === undefined) throw new Error(`export: the model spec for family '${spec.family}' has neither a preset nor a config`);
  return make(base, spec.overrides ?? {});
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

/** Reads a checkpoint and the model spec it records, keeping exactly the model's parameters. */
export function loadCheckpointForExport(file: string): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensors(fs.readFileSync(file), file);
  const sidecarPath = file.replace(/\.safetensors$/, '') + '.json';
  const meta: Record<string, string> = {};
  if (fs.existsSync(sidecarPath) && sidecarPath !== file) {
    const side = parseJson<Record<string, unknown>>(sidecarPath, 'sidecar', fs.readFileSync(sidecarPath, 'utf8')) ?? {};
    for (const [k, v] of Object.entries(side)) meta[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  Object.assign(meta, metadata);
  const spec = parseJson<ModelSpec>(file, 'anyres.config', meta['anyres.config']);
  if (!spec || typeof spec.family !== 'string') {
    throw new Error(`export: ${file} does not say which model it holds: its safetensors metadata (or ${path.basename(sidecarPath)}) needs 'anyres.config' = JSON {family, preset | config, overrides}`);
  }
  const model = modelFromSpec(spec);
  const weights: Weights = new Map();
  for (const [name, info] of model.paramInfos()) {
    const t = tensors.get(name);
    if (!t) throw new Error(`export: ${file} lacks parameter '${name}' [${info.shape.join(', ')}] of ${spec.family} ${spec.preset ?? ''}`);
    if (t.shape.join() !== info.shape.join()) {
      throw new Error(`export: ${file} has '${name}' as [${t.shape.join(', ')}], the model needs [${info.shape.join(', ')}]`);
    }
    weights.set(name, { data: t.data, shape: [...t.shape] });
  }
  const numClasses = outputClasses(model);
  let classes = parseJson<string[]>(file, 'anyres.classes', meta['anyres.classes']);
  if (!classes && meta['anyres.dataset'] === 'synthetic') classes = SYNTHETIC_CLASS_NAMES.slice(0, numClasses);
  if (!classes) classes = [...Array(numClasses).keys()].map((i) => `class ${i}`);
  if (classes.length !== numClasses) throw new Error(`export: ${file} names ${classes.length} classes but the model has ${numClasses} outputs`);
  return {
    model,
    weights,
    spec,
    classes,
    trainRes: parseJson<number[]>(file, 'anyres.train_res', meta['anyres.train_res']) ?? null,
    normalization: parseJson<Normalization>(file, 'anyres.normalization', meta['anyres.normalization']) ?? null,
    name: meta['anyres.name'] ?? path.basename(file).replace(/\.safetensors$/, ''),
  };
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
  batch?: number;
}

export interface ExportedModel {
  bytes: Uint8Array;
  metadata: Record<string, string>;
  inputName: 'image';
  outputNames: ['logits', 'probs'];
}

/**
 * Traces `model` at `opts.res` with `weights` as constants and serialises it, with the input
 * `image` [B, 3, H, W] in [0, 1] and outputs `logits`, `probs` [B, K].
 */
export function exportModelOnnx(model: Model, weights: Weights, opts: ExportOptions): ExportedModel {
  const [H, W] = opts.res;
  const B = opts.batch ?? 1;
  model.checkInputSize(H, W);
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
  const config = model.config as Record<string, unknown>;
  const metadata: Record<string, string> = {
    [META.format]: MODEL_FORMAT,
    [META.model]: opts.name,
    [META.family]: model.family,
    [META.config]: JSON.stringify(model.config),
    [META.inputSize]: JSON.stringify([H, W]),
    [META.classes]: JSON.stringify(opts.classes),
    [META.posEmbed]: opts.posEmbed ?? String(config['posEmbed'] ?? 'unknown'),
    [META.normalization]: norm ? JSON.stringify({ mean: norm.mean, std: norm.std }) : 'none',
  };
  if (opts.trainRes) metadata[META.trainRes] = JSON.stringify(opts.trainRes);
  const lowered = lower({ logits, probs: softmax(logits, -1) }, { inputs: [image], name: opts.name, docString: `anyres export of ${model.family} at ${H}x${W}` });
  const proto = onnx.ModelProto.decode(lowered.bytes);
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

/** Exports a checkpoint at every size in `sizes`, writing each file atomically. */
export async function exportCheckpoint(ckpt: string, sizes: readonly [number, number][], out: string): Promise<{ written: string[]; loaded: LoadedCheckpoint }> {
  const loaded = loadCheckpointForExport(ckpt);
  // Check every size first, so a bad one fails before any file is written.
  for (const [h, w] of sizes) loaded.model.checkInputSize(h, w);
  const dir = path.dirname(path.resolve(out));
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const res of sizes) {
    const e = exportModelOnnx(loaded.model, loaded.weights, {
      res, classes: loaded.classes, name: loaded.name, normalization: loaded.normalization, trainRes: loaded.trainRes,
    });
    const file = exportPathFor(out, res, sizes.length > 1);
    writeFileAtomic(file, e.bytes);
    written.push(file);
  }
  return { written, loaded };
}
