/**
 * `anyres convert`: bring a checkpoint to a new resolution or a new position-embedding scheme,
 * and `anyres similarity`: how window-tiled a checkpoint's position embedding is.
 *
 * Conversions (`--posembed-convert`):
 * - `interpolate` (default): the learned absolute embedding is resampled to the grid of `--res` by
 *   the model's own rule (timm ViT: bicubic with antialias, as `resample_abs_pos_embed`; official
 *   Hiera and ViTDet: bicubic, `F.interpolate(align_corners=False)`). The converted model at `--res`
 *   computes exactly what the original computes when fed `--res` images. Resolution-independent
 *   embeddings (abs-win, ResFormer's GPE) are copied; only the stored default size changes.
 * - `abswin`: an ORIGINAL Hiera (learned absolute `pos_embed [1, h·w, C]`) becomes an abs-win Hiera
 *   (Bolya et al. 2024, Sec. 4): `absWinFromLearned` splits the learned embedding into a window
 *   embedding (one mask unit, `pos_embed_window [1, C, wh, ww]`) and a global one
 *   (`pos_embed [1, C, gh, gw]`, `--global-size`, default the config's 7x7) such that
 *   `interpolate(global) + tile(window)` reproduces it in least squares. Assumptions: the learned
 *   embedding is a smooth field plus a pattern periodic in the mask unit (what the paper observes in
 *   window-attention models, Sec. 3 / Fig. 4); the per-channel constant goes to the global part. The
 *   split is exact (relative residual ~0) when the embedding is exactly tiled + global; otherwise the
 *   residual is reported and the converted model differs from the original at the pretrain size by
 *   that residual.
 * - `tile`: a plain ViT's learned embedding becomes the window embedding of a windowed backbone
 *   (`--target`, a ViTDet preset): ViTDet's abs-win recipe tiles the pretrained grid over the feature
 *   map (Sec. 5), with the ViT's blocks copied; ViTDet-only parameters (rel-pos tables, pyramid) are
 *   initialised and listed, the ViT's cls token, final norm and head are dropped and listed.
 *
 * The output is a safetensors file (official names, F32) written atomically, with `__metadata__`
 * `anyres.config` = `{family, config}` (read back by `modelFromCheckpointConfig` and `anyres export`).
 *
 * @example
 * // anyres convert --from hiera_tiny_224.pth --model hiera-tiny --to hiera-tiny-abswin.safetensors --posembed-convert abswin
 * const r = convertCheckpoint({ from: 'in.safetensors', to: 'out.safetensors', res: [96, 96], posembedConvert: 'interpolate' });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Model } from '../models/types.ts';
import { type HieraConfig, patchGrid } from '../models/hiera-config.ts';
import type { VitConfig } from '../models/vit.ts';
import type { VitDetConfig } from '../models/vitdet.ts';
import type { HieraDetConfig } from '../models/hieradet.ts';
import { checkpointConfigOf } from '../models/registry.ts';
import { Params, type Weights } from '../nn/params.ts';
import { Runtime, host } from '../graph/runtime.ts';
import { type Grid, tokensToGrid } from '../posembed/reference.ts';
import { tiledEnergyShare, windowSimilarity } from '../posembed/similarity.ts';
import { type NamedTensor, saveSafetensors } from '../io/safetensors.ts';
import { loadWeightsFromTensors, readCheckpointFile } from '../io/load-model.ts';
import { loadModelCheckpoint, readAnyCheckpoint } from '../io/read-checkpoint.ts';
import { type Layout, LAYOUTS, isLayout, toLayout } from '../io/layouts.ts';
import { type TorchSaveValue, savePth } from '../io/pth-write.ts';
import { sniffCheckpoint } from '../io/checkpoint.ts';
import { ArrayValue, readPth } from '../io/pth.ts';
import { readNumpyPickle } from '../io/numpy-pickle.ts';
import type { PyValue } from '../io/pickle.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { LAST_JSON, saveCheckpoint } from '../io/train-checkpoint.ts';
import { stateFromParams } from '../train/state.ts';
import { heatmapGrid } from '../eval/heatmap.ts';
import { barChart, saveChart } from '../eval/charts.ts';
import { writeFileAtomicAsync } from '../util/atomic.ts';

// The weight conversion itself is library code (src/io/convert-weights.ts); re-exported for existing callers.
export { POSEMBED_CONVERTS, convertWeights, sourceModelOf, type ConvertWeightsOptions, type ConvertedWeights, type PosEmbedConvert } from '../io/convert-weights.ts';
import { type ConvertWeightsOptions, type ConvertedWeights, POSEMBED_CONVERTS, type PosEmbedConvert, asTensors, convertWeights, sourceModelOf } from '../io/convert-weights.ts';

export interface ConvertOptions extends ConvertWeightsOptions {
  from: string;
  to: string;
  /** Source model: preset, inline JSON or JSON file; default the checkpoint's recorded spec. */
  model?: string;
  numClasses?: number;
  /** Missing/unexpected keys in the SOURCE load are errors (default true). */
  strict?: boolean;
  sourceGrid?: [number, number];
  /** Write the key names and nesting of this source's code (src/io/layouts.ts) instead of ours. */
  layout?: Layout;
  /**
   * Write `to` as a training run directory (last.json + ckpt-0.safetensors, fresh optimizer
   * moments) that `anyres finetune --from` / `train --resume` start from.
   */
  run?: boolean;
}

export interface ConvertResult extends ConvertedWeights {
  source: Model;
  /** Load report of the source checkpoint. */
  report: string;
  /** What the output file holds (layout and container). */
  wrote: string;
}

/** `.pth` / `.pt` / `.bin` → torch.save zip; anything else safetensors. */
export function outputFormatOf(file: string): 'pth' | 'safetensors' {
  return /\.(pth|pt|bin)$/i.test(file) ? 'pth' : 'safetensors';
}

/** Reads `from` (any checkpoint: src/io/read-checkpoint.ts), converts, writes `to` (atomically) in our names or `layout`. */
export function convertCheckpoint(o: ConvertOptions): ConvertResult {
  const ck = readAnyCheckpoint(o.from);
  const { tensors, metadata } = ck;
  const source = o.model !== undefined || !ck.spec ? sourceModelOf(o.model, metadata, o.from, o.numClasses) : sourceModelOf(undefined, { 'anyres.config': JSON.stringify(ck.spec) }, o.from, o.numClasses);
  const loaded = loadWeightsFromTensors(source, tensors, { strict: o.strict ?? true, ...(o.sourceGrid ? { sourceGrid: o.sourceGrid } : {}) }, metadata, o.from);
  const conv = convertWeights(source, loaded.weights, o);
  const meta: Record<string, string> = {};
  // Keep what describes the data (class names, normalisation) from an anyres source.
  for (const k of ['anyres.classes', 'anyres.dataset', 'anyres.normalization', 'anyres.train_res']) if (metadata[k] !== undefined) meta[k] = metadata[k]!;
  // An official checkpoint was trained on ImageNet-normalised inputs (timm IMAGENET_DEFAULT_MEAN/STD);
  // recording it keeps `predict` / `export` of the converted file right.
  if (ck.origin === 'foreign' && meta['anyres.normalization'] === undefined) meta['anyres.normalization'] = JSON.stringify({ mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] });
  Object.assign(meta, {
    'anyres.config': JSON.stringify(checkpointConfigOf(conv.model)),
    'anyres.converted_from': path.basename(o.from),
    'anyres.source': loaded.detection.source,
    'anyres.posembed_convert': o.posembedConvert ?? 'interpolate',
    ...(conv.relResidual !== undefined ? { 'anyres.abswin_rel_residual': String(conv.relResidual) } : {}),
  });
  const ours = asTensors(conv.weights);
  const fmt = outputFormatOf(o.to);
  let wrote: string;
  if (o.run) {
    if (o.layout) throw new Error('convert: --run writes an anyres training run; it cannot be combined with --layout');
    const run: Record<string, unknown> = { convertedFrom: path.resolve(o.from), posembedConvert: o.posembedConvert ?? 'interpolate' };
    if (meta['anyres.dataset'] !== undefined) run['data'] = meta['anyres.dataset'];
    if (meta['anyres.train_res'] !== undefined) run['resolutions'] = JSON.parse(meta['anyres.train_res']) as unknown;
    saveCheckpoint(o.to, stateFromParams(new Map([...conv.weights].map(([k, v]) => [k, v.data]))), {
      model: { family: conv.model.family, config: conv.model.config }, run, epoch: 0, stepInEpoch: 0, rng: {},
    });
    return { ...conv, source, report: loaded.report, wrote: `a training run directory (${LAST_JSON} + ckpt-0.safetensors) for 'anyres finetune --from ${o.to}'` };
  }
  if (o.layout) {
    const l = toLayout(conv.model, ours, o.layout);
    meta['anyres.layout'] = o.layout;
    if (fmt === 'pth') savePth(o.to, l.root);
    else saveSafetensors(o.to, l.flat, meta);
    wrote = `${o.layout} layout (${l.note}) as ${fmt}`;
  } else {
    if (fmt === 'pth') savePth(o.to, ours as Map<string, TorchSaveValue>);
    else saveSafetensors(o.to, ours, meta);
    wrote = fmt === 'pth' ? 'anyres (official) names as a torch.save zip' : 'anyres safetensors with anyres.config';
  }
  return { ...conv, source, report: loaded.report, wrote };
}

export interface FormatConvertResult {
  tensors: number;
  /** dtype -> number of tensors written with it. */
  dtypes: Record<string, number>;
  source: string;
}

/**
 * Converts the container only: every tensor of any state dict, names and dtypes kept (or cast to
 * float32). A torch/pickle source written as `.pth` keeps its nesting (`{'model': sd, 'epoch': 5}`);
 * otherwise names are the flattened dotted keys (safetensors has no nesting).
 */
export function convertFormat(from: string, to: string, opts: { float32?: boolean } = {}): FormatConvertResult {
  const keep = !opts.float32;
  const bytes = fs.readFileSync(from);
  const kind = sniffCheckpoint(bytes);
  const dtypes: Record<string, number> = {};
  const count = (t: NamedTensor): void => { const d = keep ? t.dtype ?? 'F32' : 'F32'; dtypes[d] = (dtypes[d] ?? 0) + 1; };
  if (outputFormatOf(to) === 'pth' && (kind === 'pth-zip' || kind === 'pth-legacy' || kind === 'pickle')) {
    const root = kind === 'pickle' ? readNumpyPickle(bytes, from) : readPth(bytes, from);
    const { value, tensors } = toSaveValue(root, from);
    for (const t of tensors) count(t);
    savePth(to, value, { keepDtypes: keep });
    return { tensors: tensors.length, dtypes, source: kind };
  }
  const { tensors, metadata } = readCheckpointFile(from);
  for (const t of tensors.values()) count(t);
  if (outputFormatOf(to) === 'pth') savePth(to, tensors as Map<string, TorchSaveValue>, { keepDtypes: keep });
  else saveSafetensors(to, tensors, metadata, { keepDtypes: keep });
  return { tensors: tensors.size, dtypes, source: kind };
}

/** A read pickle as a value torch.save can write: dicts, lists, scalars, arrays; other objects are refused. */
function toSaveValue(v: PyValue, from: string): { value: TorchSaveValue; tensors: NamedTensor[] } {
  const tensors: NamedTensor[] = [];
  const walk = (x: PyValue, key: string): TorchSaveValue => {
    if (x === null || typeof x === 'boolean' || typeof x === 'number' || typeof x === 'string') return x;
    if (x instanceof ArrayValue) {
      const t: NamedTensor = { shape: x.shape, data: x.data, dtype: x.dtype, raw: x.raw };
      tensors.push(t);
      return t;
    }
    if (x instanceof Map) {
      const m = new Map<string, TorchSaveValue>();
      for (const [k, y] of x) {
        if (typeof k !== 'string' && typeof k !== 'number') throw new Error(`convert: ${from} has a key of type ${typeof k} under '${key}'; only string keys are written`);
        m.set(String(k), walk(y, key ? `${key}.${String(k)}` : String(k)));
      }
      return m;
    }
    if (Array.isArray(x)) return (x as readonly PyValue[]).map((y, i) => walk(y, `${key}.${i}`));
    if (typeof x === 'bigint') return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : String(x);
    throw new Error(`convert: ${from} holds ${x instanceof Uint8Array ? 'raw bytes' : 'an object'} at '${key}', which the .pth writer does not write; convert to .safetensors (tensors only)`);
  };
  return { value: walk(v, ''), tensors };
}

/** '448' or '448x320' -> [H, W]. */
export function parseSize(v: string, what = '--res'): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  if (!m) throw new Error(`${what}: expected N or HxW (e.g. 448 or 448x320), got '${v}'`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

export function registerConvertCommand(program: Command): void {
  program
    .command('convert')
    .description('convert a checkpoint (torch .pth zip or legacy, numpy .pkl, .safetensors; official Hiera, HF Hiera, SAM 2, timm, detectron2, ResFormer, anyres runs): to a new resolution / position-embedding scheme, to another layout (official, timm, hf, sam2, detectron2), or only to another file format')
    .requiredOption('--from <file>', 'checkpoint to read: a file (.pth/.pt/.bin/.pkl via a restricted unpickler, or .safetensors), a training run directory or its last.json')
    .requiredOption('--to <file>', 'output: .safetensors, or .pth/.pt/.bin for a torch.save zip that torch.load(weights_only=True) reads (written atomically)')
    .option('--model <preset|json|file>', "the model the checkpoint holds: a preset (see 'anyres models'), inline JSON or a JSON file {family, preset?, config?, overrides?}; default: what the checkpoint records. Without a model (and no --res / --posembed-convert / --layout) only the format is converted")
    .option('--num-classes <n>', 'classes of the checkpoint head, when they differ from the preset', (v) => Number(v))
    .option('--res <size>', 'new default resolution: N or HxW')
    .option('--posembed-convert <how>', 'interpolate | abswin | tile (see below); default interpolate')
    .option('--layout <layout>', `write the key names and nesting of a source's code: ${LAYOUTS.join(' | ')} (src/io/layouts.ts)`)
    .option('--run', "write --to as a training run directory (last.json + ckpt-0.safetensors) that 'anyres finetune --from' starts from")
    .option('--format-only', 'convert the file format only: every tensor, names and dtypes kept (any state dict; no model needed)')
    .option('--float32', 'with a format-only conversion: cast every tensor to float32')
    .option('--global-size <size>', 'abswin: grid of the global embedding (default: the config, 7x7 for the Hiera presets)')
    .option('--iterations <n>', 'abswin: least-squares refinements of the split (default 200)', (v) => Number(v))
    .option('--target <preset>', 'tile: the ViTDet preset to build')
    .option('--source-grid <size>', 'stored grid of a non-square learned pos_embed (HxW)')
    .option('--no-strict', 'fill missing source keys from the initialisers and skip unexpected ones')
    .addHelpText('after', `
Position-embedding conversions:
  interpolate  resample a learned absolute embedding to the --res grid by the model's own rule
               (timm ViT: antialiased bicubic; Hiera, ViTDet: bicubic). The result at --res equals the
               original model fed --res images. Abs-win and ResFormer embeddings are copied unchanged.
  abswin       original Hiera (learned pos_embed [1, h*w, C]) -> abs-win Hiera (Bolya et al. 2024):
               window embedding (one mask unit) + global embedding (--global-size) fitted by least squares
               so that interpolate(global) + tile(window) reproduces the learned one. Assumes the learned
               embedding is a smooth field plus a pattern periodic in the mask unit (the paper's observation
               for window attention); the per-channel mean goes to the global part. Exact when the embedding
               is exactly tiled + global; otherwise the relative residual is printed.
  tile         plain ViT -> ViTDet (--target): the ViT's learned grid becomes the window embedding, tiled
               over the feature map; rel-pos tables and the pyramid are initialised (listed in the report).`)
    .action((o: { from: string; to: string; model?: string; numClasses?: number; res?: string; posembedConvert?: string; layout?: string; run?: boolean; formatOnly?: boolean; float32?: boolean; globalSize?: string; iterations?: number; target?: string; sourceGrid?: string; strict: boolean }) => {
      if (o.layout !== undefined && !isLayout(o.layout)) throw new Error(`convert: --layout must be one of ${LAYOUTS.join(', ')}, got '${o.layout}'`);
      const modelWork = o.model !== undefined || o.res !== undefined || o.posembedConvert !== undefined || o.layout !== undefined || o.target !== undefined || o.run === true;
      if (o.formatOnly && modelWork) throw new Error('convert: --format-only converts the file as it is; it cannot be combined with --model, --res, --posembed-convert, --target or --layout');
      if (o.float32 && !o.formatOnly && modelWork) throw new Error('convert: --float32 applies to format-only conversions (model conversions always write float32)');
      if (o.formatOnly || (!modelWork && !readAnyCheckpoint(o.from).spec)) {
        const r = convertFormat(o.from, o.to, { float32: o.float32 ?? false });
        const d = Object.entries(r.dtypes).map(([k, n]) => `${n} ${k}`).join(', ');
        console.log(`convert: format only (${r.source} -> ${outputFormatOf(o.to)}): ${r.tensors} tensors (${d || 'none'}), names ${o.float32 ? 'kept, cast to float32' : 'and dtypes kept'}; wrote ${o.to}`);
        return;
      }
      const how = o.posembedConvert ?? 'interpolate';
      if (!POSEMBED_CONVERTS.includes(how as PosEmbedConvert)) {
        throw new Error(`convert: --posembed-convert must be one of ${POSEMBED_CONVERTS.join(', ')}, got '${how}'`);
      }
      const r = convertCheckpoint({
        from: o.from, to: o.to, strict: o.strict, posembedConvert: how as PosEmbedConvert,
        ...(o.model !== undefined ? { model: o.model } : {}),
        ...(o.layout !== undefined ? { layout: o.layout as Layout } : {}),
        ...(o.run ? { run: true } : {}),
        ...(o.numClasses !== undefined ? { numClasses: o.numClasses } : {}),
        ...(o.res !== undefined ? { res: parseSize(o.res) } : {}),
        ...(o.globalSize !== undefined ? { globalSize: parseSize(o.globalSize, '--global-size') } : {}),
        ...(o.iterations !== undefined ? { iterations: o.iterations } : {}),
        ...(o.target !== undefined ? { target: o.target } : {}),
        ...(o.sourceGrid !== undefined ? { sourceGrid: parseSize(o.sourceGrid, '--source-grid') } : {}),
      });
      console.log(`convert: loaded ${o.from} as ${r.source.family}\n${r.report}`);
      for (const n of r.notes) console.log(n);
      console.log(`convert: wrote ${o.to} (${r.model.family}, default ${r.model.defaultRes.join('x')}, ${r.weights.size} tensors, ${r.wrote})`);
    });
}

// ---------------------------------------------------------------------------------------------
// anyres similarity

/** The attention window a model's position embedding is compared against (its first-stage window). */
export function defaultWindowOf(model: Model): [number, number] | null {
  switch (model.family) {
    case 'hiera': return [...(model.config as HieraConfig).maskUnitSize];
    case 'vitdet': { const w = (model.config as VitDetConfig).windowSize; return [w, w]; }
    case 'hieradet': { const w = (model.config as HieraDetConfig).windowSpec[0]!; return [w, w]; }
    default: return null;
  }
}

/**
 * The position embedding a model ADDS at its default resolution, as a `[C, h, w]` grid: for a
 * learned absolute embedding that is the stored embedding itself; for abs-win the combined
 * `interpolate(global) + tile(window)`. Computed by the model's own forward (its `aux` output), so
 * no embedding rule is restated here; only the position-embedding branch of the graph is run.
 */
export async function positionEmbeddingAt(model: Model, weights: Weights, rt = new Runtime()): Promise<Grid> {
  const [H, W] = model.defaultRes;
  const key = model.family === 'hieradet' ? 'pos_embed_hw' : 'pos_embed';
  const out = await rt.run((i, g) => {
    const a = model.forward(new Params(g, weights), i.x!).aux[key];
    if (!a) throw new Error(`similarity: ${model.family} does not return aux.${key}`);
    return { pos: a };
  }, { x: host(new Float32Array(3 * H * W), [1, 3, H, W]) });
  const pos = out.pos!;
  const shape = pos.shape;
  const data = pos.data as Float32Array;
  if (shape.length === 4) {
    // NHWC [1, h, w, C] (ViTDet, HieraDet)
    const [, h, w, C] = shape as [number, number, number, number];
    return { data: tokensToGrid(data, C, h, w), C, H: h, W: w };
  }
  // [1, prefix + h*w, C] (ViT: prefix rows first; Hiera: none)
  const C = shape[2]!;
  const [h, w] = model.family === 'hiera'
    ? patchGrid(model.config as HieraConfig, H, W)
    : [H / (model.config as VitConfig).patchSize, W / (model.config as VitConfig).patchSize];
  const prefix = shape[1]! - h * w;
  return { data: tokensToGrid(data.subarray(prefix * C), C, h, w), C, H: h, W: w };
}

export interface SimilarityReport {
  grid: Grid;
  window: [number, number];
  /** Mean pairwise cosine similarity of the full windows (1 = perfectly tiled, ~0 = noise). */
  similarity: number;
  tiledEnergy: number;
  /** The same per channel. */
  perChannel: number[];
}

/** Window similarity of a `[C, h, w]` embedding, overall and per channel (src/posembed/similarity.ts). */
export function similarityOf(grid: Grid, window: [number, number]): SimilarityReport {
  const [wh, ww] = window;
  const hw = grid.H * grid.W;
  const perChannel = Array.from({ length: grid.C }, (_, c) =>
    windowSimilarity({ data: grid.data.subarray(c * hw, (c + 1) * hw), C: 1, H: grid.H, W: grid.W }, wh, ww));
  return { grid, window, similarity: windowSimilarity(grid, wh, ww), tiledEnergy: tiledEnergyShare(grid, wh, ww), perChannel };
}

/** Writes `<out>-heatmap.png` (first `channels` channels with the window grid) and `<out>-channels.{svg,png}`. */
export async function writeSimilarityFigures(r: SimilarityReport, out: string, channels: number, title: string): Promise<string[]> {
  const { grid } = r;
  const hw = grid.H * grid.W;
  const n = Math.min(channels, grid.C);
  const png = await heatmapGrid(
    Array.from({ length: n }, (_, c) => ({ data: grid.data.subarray(c * hw, (c + 1) * hw), shape: [grid.H, grid.W] as [number, number] })),
    { cols: Math.min(4, n), window: r.window, labels: Array.from({ length: n }, (_, c) => `ch ${c}: sim ${r.perChannel[c]!.toFixed(2)}`) },
  );
  const heat = `${out}-heatmap.png`;
  await writeFileAtomicAsync(heat, png, { createDir: true });
  const spec = barChart({
    title: `${title}: window similarity per channel (${r.window.join('x')} windows, mean ${r.similarity.toFixed(3)})`,
    x: { field: 'channel', title: 'channel' },
    y: { field: 'similarity', title: 'window similarity', domain: [-1, 1] },
    rows: r.perChannel.map((s, c) => ({ channel: c, similarity: s })),
    width: Math.max(360, Math.min(1600, 6 * grid.C)),
  });
  const chart = await saveChart(spec, `${out}-channels`);
  return [heat, chart.svgPath, chart.pngPath];
}

export function registerSimilarityCommand(program: Command): void {
  program
    .command('similarity')
    .description("window similarity of a checkpoint's position embedding (Bolya et al. 2024, Sec. 3): printed, drawn as a heat map and a per-channel bar chart")
    .requiredOption('--checkpoint <file>', 'checkpoint (.safetensors with anyres.config, or any supported checkpoint with --model)')
    .option('--model <preset|json>', 'the model the checkpoint holds (default: its anyres.config metadata)')
    .option('--num-classes <n>', 'classes of the checkpoint head', (v) => Number(v))
    .option('--window <size>', "window to compare (N or HxW); default the model's first attention window (Hiera mask unit, ViTDet window)")
    .option('--channels <n>', 'channels drawn in the heat map', (v) => Number(v), 8)
    .option('--out <prefix>', 'output path prefix: <prefix>-heatmap.png, <prefix>-channels.{svg,png}', 'similarity')
    .option('--no-strict', 'fill missing keys from the initialisers')
    .action(async (o: { checkpoint: string; model?: string; numClasses?: number; window?: string; channels: number; out: string; strict: boolean }) => {
      const loaded = loadModelCheckpoint(o.checkpoint, {
        strict: o.strict, ...(o.model !== undefined ? { model: o.model } : {}), ...(o.numClasses !== undefined ? { overrides: { numClasses: o.numClasses } } : {}),
      });
      const model = loaded.model;
      const window = o.window !== undefined ? parseSize(o.window, '--window') : defaultWindowOf(model);
      if (!window) throw new Error(`similarity: ${model.family} has no attention window; pass --window N (e.g. --window 7 for a 14x14 grid)`);
      const grid = await positionEmbeddingAt(model, loaded.weights);
      const r = similarityOf(grid, window);
      console.log(`similarity: ${path.basename(o.checkpoint)} (${model.family}), position embedding [${grid.C}, ${grid.H}, ${grid.W}] at ${model.defaultRes.join('x')} px, ${window.join('x')} windows`);
      console.log(`  window similarity ${r.similarity.toFixed(4)} (1 = tiled per window, ~0 = no shared pattern)`);
      console.log(`  tiled energy share ${r.tiledEnergy.toFixed(4)}`);
      const order = r.perChannel.map((s, c) => [s, c] as const).sort((a, b) => b[0] - a[0]);
      console.log(`  most tiled channels: ${order.slice(0, 5).map(([s, c]) => `${c} (${s.toFixed(3)})`).join(', ')}`);
      for (const f of await writeSimilarityFigures(r, o.out, o.channels, path.basename(o.checkpoint))) console.log(`similarity: wrote ${f}`);
    });
}
