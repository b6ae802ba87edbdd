/**
 * `anyres eval --checkpoint C --res 32,48,64,... [--view zoom|canvas] [--data spec]`: a checkpoint
 * swept over test resolutions, the measurement every table of both papers is made of (Bolya et al.
 * 2024 Tables 1-2: a model evaluated directly at sizes it was not trained at; Tian et al. 2023
 * Table 1 / Fig. 1: accuracy from half to twice the training size). Prints a table, draws a chart
 * (`<out>.svg/.png`) and writes `<out>.json`.
 *
 * What is measured depends on the checkpoint's TASK, dispatched on what it holds: classifiers
 * report top-1 accuracy; detector runs (`anyres detect train`, family 'detector') report COCO box
 * AP / AP50 / AP75 on their validation set rebuilt at each size (src/det/evaluate.ts); a bare
 * detection backbone (ViTDet / HieraDet weights without a head) is refused as "not a classifier".
 *
 * Views (synthetic data): `zoom` renders the same scene larger (objects grow with the image);
 * `canvas` keeps the object size of the base resolution (`--base-res`, default the checkpoint's
 * training size) and shows a larger field, separating scale change from position-embedding effects.
 *
 * @example
 * // anyres eval --checkpoint runs/h --res 48,64,96,128 --view canvas
 * const r = await evalCheckpoint({ checkpoint: 'runs/h', res: [48, 64, 96], view: 'zoom' });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { Runtime } from '../graph/runtime.ts';
import type { Model } from '../models/types.ts';
import type { Dataset } from '../data/dataset.ts';
import { SyntheticDataset } from '../data/synthetic.ts';
import { createModel, familyOf } from '../models/registry.ts';
import { checkpointJsonPath, loadCheckpoint } from '../io/train-checkpoint.ts';
import { evaluate } from '../train/trainer.ts';
import { loadWeightsFromTensors, readCheckpointFile } from '../io/load-model.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { lineChart, saveChart } from '../eval/charts.ts';
import { progress } from '../util/progress.ts';
import { parseResolutions } from '../eval/sweep.ts';
import { DATA_SPECS, clipFramesOf, dataSplits } from '../data/spec.ts';
import { SyntheticClipDataset } from '../data/clips.ts';
import { sourceModelOf } from '../io/convert-weights.ts';
import { type DetDataInfo, parseDetData } from './detect.ts';
import { DETECTOR_FAMILY, loadDetector } from '../det/trainer.ts';
import { evaluateDetector } from '../det/evaluate.ts';

export type EvalTask = 'classification' | 'detection';

/** What each task reports (the table's and chart's metric). */
const METRIC: Record<EvalTask, string> = { classification: 'top-1 accuracy (%)', detection: 'COCO box AP (%)' };
export type EvalView = 'zoom' | 'canvas';

/** The task a model's checkpoint is evaluated on: its family's table says whether it ends in a classifier. */
export function taskOf(model: Model): EvalTask {
  return familyOf(model).classifier ? 'classification' : 'detection';
}

/** A checkpoint ready to evaluate: the model and the weights to use. */
export interface EvalCheckpoint {
  file: string;
  model: Model;
  params: Map<string, Float32Array>;
  /** Which weights: the raw ones, or the EMA a training run kept (`--ema`). */
  weights: 'raw' | 'ema';
  /** The data spec the run was trained on, when the checkpoint records it. */
  trainedOn?: string;
}

/**
 * Reads a training run (directory / last.json, raw or EMA weights) or a weights file (.safetensors
 * with anyres.config metadata, or any supported checkpoint with `model`).
 */
export function readEvalCheckpoint(file: string, opts: { model?: string; ema?: boolean } = {}): EvalCheckpoint {
  if (!fs.existsSync(file)) throw new Error(`eval: checkpoint '${file}' does not exist (give a run directory, its last.json, or a .safetensors/.pth file)`);
  const json = checkpointJsonPath(file);
  if (json.endsWith('.json')) {
    const ck = loadCheckpoint(file);
    const model = createModel({ family: ck.info.model.family, config: ck.info.model.config });
    if (opts.ema && !ck.ema) throw new Error(`eval --ema: the run in ${file} kept no EMA (train it with --ema <decay>)`);
    const data = ck.info.run['data'];
    return {
      file, model, params: opts.ema ? ck.ema! : ck.state.params, weights: opts.ema ? 'ema' : 'raw',
      ...(typeof data === 'string' ? { trainedOn: data } : {}),
    };
  }
  if (opts.ema) throw new Error(`eval --ema: ${file} is a weights file, not a training run; EMA weights live in a run directory`);
  const { tensors, metadata } = readCheckpointFile(file);
  const model = sourceModelOf(opts.model, metadata, file);
  const loaded = loadWeightsFromTensors(model, tensors, { strict: true }, metadata, file);
  const dataset = metadata['anyres.dataset'];
  return {
    file, model, weights: 'raw', params: new Map([...loaded.weights].map(([k, v]) => [k, v.data])),
    ...(dataset !== undefined ? { trainedOn: dataset } : {}),
  };
}

export interface EvalRow {
  res: number;
  /** Top-1 accuracy in [0, 1] (classification). */
  accuracy?: number;
  loss?: number;
  /** COCO box AP, AP50, AP75 in [0, 1] (detection). */
  ap?: number;
  ap50?: number;
  ap75?: number;
  count?: number;
  /** Why this resolution was not measured (the model cannot take it). */
  error?: string;
}

export interface EvalContext {
  rt: Runtime;
  ck: EvalCheckpoint;
  data: Dataset;
  res: number[];
  batch: number;
  label: string;
}

type Evaluator = (ctx: EvalContext) => Promise<EvalRow[]>;

/** One evaluator per task; detection plugs its AP in here. */
export const EVALUATORS: Record<EvalTask, Evaluator> = {
  classification: async ({ rt, ck, data, res, batch, label }) => {
    if (data.numClasses !== (ck.model.config as { numClasses?: number }).numClasses) {
      throw new Error(`eval: the model has ${(ck.model.config as { numClasses?: number }).numClasses} classes but the data has ${data.numClasses}; evaluate on the data it was trained on (--data)`);
    }
    const rows: EvalRow[] = [];
    const bar = progress(res.length, label);
    for (const r of res) {
      try {
        ck.model.checkInputSize(r, r);
      } catch (e) {
        rows.push({ res: r, error: (e as Error).message });
        bar.tick(1);
        continue;
      }
      const v = await evaluate(rt, ck.model, ck.params, data, r, batch);
      rows.push({ res: r, accuracy: v.accuracy, loss: v.loss, count: v.count });
      bar.tick(1, { res: r, acc: 100 * v.accuracy });
    }
    bar.done();
    return rows;
  },
  // A bare backbone (weights file of a registry vitdet/hieradet): no head for either metric.
  detection: async ({ ck }) => {
    throw new Error(`eval: ${ck.file} holds a ${ck.model.family} detection backbone, not a classifier: there is no classification head to measure accuracy with, ` +
      'nor a detector head for AP. Evaluate a classifier checkpoint (vit, resformer, hiera, hiera-video) or a detector run of `anyres detect train` (box AP per size).');
  },
};

export interface EvalOptions {
  checkpoint: string;
  res: number[];
  view?: EvalView;
  /** Data spec (default: what the run was trained on, else synthetic). */
  data?: string;
  /** Canvas view: the resolution whose object size is kept (default: the checkpoint's default size). */
  baseRes?: number;
  model?: string;
  ema?: boolean;
  batch?: number;
  valSize?: number;
  seed?: number;
  rt?: Runtime;
}

export interface EvalReport {
  checkpoint: string;
  family: string;
  task: EvalTask;
  weights: 'raw' | 'ema';
  defaultRes: [number, number];
  data: string;
  view: EvalView;
  baseRes: number;
  samples: number;
  rows: EvalRow[];
}

/** The validation data of a spec in a view (only data rendered from scene descriptions has a canvas view). */
export function evalData(spec: string, view: EvalView, baseRes: number, o: { seed: number; valSize?: number }): Dataset {
  if (spec === 'synthetic') return new SyntheticDataset({ seed: o.seed, split: 'val', size: o.valSize ?? 1000, mode: view, baseRes });
  const frames = clipFramesOf(spec);
  if (frames !== undefined) return new SyntheticClipDataset({ seed: o.seed, split: 'val', size: o.valSize ?? 400, frames, mode: view, baseRes });
  if (view === 'canvas') throw new Error(`eval --view canvas: data '${spec}' has one field of view; canvas needs data rendered from scene descriptions (--data synthetic), or use --view zoom`);
  const d = dataSplits(spec, { seed: o.seed, ...(o.valSize !== undefined ? { valSize: o.valSize } : {}) });
  if (!d.val) throw new Error(`eval: data '${spec}' has no validation split (for a folder: <root>/val/<class>/...)`);
  return d.val;
}

/** Reads the checkpoint, dispatches on its task, measures every resolution. */
export async function evalCheckpoint(o: EvalOptions): Promise<EvalReport> {
  const view = o.view ?? 'zoom';
  if (view !== 'zoom' && view !== 'canvas') throw new Error(`eval: --view must be zoom or canvas, got '${String(view)}'`);
  if (isDetectorRun(o.checkpoint)) return evalDetectorRun(o, view);
  const ck = readEvalCheckpoint(o.checkpoint, { ...(o.model !== undefined ? { model: o.model } : {}), ...(o.ema ? { ema: true } : {}) });
  const task = taskOf(ck.model);
  const spec = o.data ?? ck.trainedOn ?? 'synthetic';
  const baseRes = o.baseRes ?? ck.model.defaultRes[0];
  const data = task === 'classification' ? evalData(spec, view, baseRes, { seed: o.seed ?? 0, ...(o.valSize !== undefined ? { valSize: o.valSize } : {}) }) : new SyntheticDataset({ seed: 0, split: 'val', size: 1 });
  const rows = await EVALUATORS[task]({ rt: o.rt ?? new Runtime(), ck, data, res: o.res, batch: o.batch ?? 32, label: `eval ${path.basename(o.checkpoint)}` });
  if (rows.every((r) => r.error)) throw new Error(`eval: the model can take none of --res ${o.res.join(',')}:\n${rows.map((r) => `  ${r.res}: ${r.error}`).join('\n')}`);
  return { checkpoint: o.checkpoint, family: ck.model.family, task, weights: ck.weights, defaultRes: [...ck.model.defaultRes], data: spec, view, baseRes, samples: data.length, rows };
}

/** A training run of `anyres detect train` (its last.json records the detector family). */
function isDetectorRun(file: string): boolean {
  const json = checkpointJsonPath(file);
  if (!json.endsWith('.json') || !fs.existsSync(json)) return false;
  try {
    return (JSON.parse(fs.readFileSync(json, 'utf8')) as { model?: { family?: string } }).model?.family === DETECTOR_FAMILY;
  } catch {
    return false; // loadCheckpoint reports the broken JSON with its own message
  }
}

/** Box AP of a detector run at each size, on its validation set rebuilt at that size. */
async function evalDetectorRun(o: EvalOptions, view: EvalView): Promise<EvalReport> {
  if (view === 'canvas') throw new Error('eval --view canvas: detection scenes are rendered in one view (objects scale with the image); use --view zoom');
  if (o.ema) throw new Error('eval --ema: detector runs keep no EMA');
  const { detector, params, info, mean, std } = loadDetector(o.checkpoint);
  const stored = info.run['dataInfo'] as DetDataInfo | undefined;
  const dataInfo: DetDataInfo = { ...(stored ?? { spec: 'synthetic', seed: 0 }), ...(o.data !== undefined ? { spec: o.data } : {}), ...(o.valSize !== undefined ? { valSize: o.valSize } : {}) };
  const rt = o.rt ?? new Runtime();
  const rows: EvalRow[] = [];
  let samples = 0;
  const bar = progress(o.res.length, `eval ${path.basename(o.checkpoint)}`);
  for (const r of o.res) {
    try {
      detector.checkInputSize(r, r);
    } catch (e) {
      rows.push({ res: r, error: (e as Error).message });
      bar.tick(1);
      continue;
    }
    const splits = await parseDetData(dataInfo, [r, r]);
    const ds = splits.val ?? splits.train;
    if (ds.classNames.length !== detector.numClasses) throw new Error(`eval: the detector has ${detector.numClasses} classes but the data '${dataInfo.spec}' has ${ds.classNames.length}`);
    const v = await evaluateDetector(rt, detector, params, ds, [r, r], { mean, std, batch: o.batch ?? 8, progressStream: { write: () => true } });
    samples = v.images.length;
    rows.push({ res: r, ap: v.stats[0]!, ap50: v.stats[1]!, ap75: v.stats[2]!, count: v.images.length });
    bar.tick(1, { res: r, AP: 100 * v.stats[0]! });
  }
  bar.done();
  if (rows.every((r) => r.error)) throw new Error(`eval: the detector can take none of --res ${o.res.join(',')}:\n${rows.map((r) => `  ${r.res}: ${r.error}`).join('\n')}`);
  const size = info.run['size'];
  const trained: [number, number] = Array.isArray(size) && size.length === 2 ? [Number(size[0]), Number(size[1])] : [0, 0];
  return { checkpoint: o.checkpoint, family: DETECTOR_FAMILY, task: 'detection', weights: 'raw', defaultRes: trained, data: dataInfo.spec, view, baseRes: trained[0], samples, rows };
}

/** The printed table: one row per resolution. */
export function evalTable(r: EvalReport): string {
  const det = r.task === 'detection';
  const head = det ? ['res', 'AP %', 'AP50 %', 'AP75 %', 'images'] : ['res', 'top-1 %', 'loss', 'images'];
  const pct = (x: number | undefined): string => (100 * x!).toFixed(2);
  const body = r.rows.map((x) => x.error
    ? [String(x.res), ...head.slice(1, -1).map(() => '-'), `not measured: ${x.error.split('\n')[0]}`]
    : [`${x.res}${x.res === r.defaultRes[0] ? ' (ckpt)' : ''}`, ...(det ? [pct(x.ap), pct(x.ap50), pct(x.ap75)] : [pct(x.accuracy), x.loss!.toFixed(4)]), String(x.count)]);
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padStart(widths[i]!))).join('  ')).join('\n');
}

/** Writes `<out>.json` and the chart `<out>.svg/.png`; returns the paths. */
export async function writeEvalOutputs(r: EvalReport, out: string): Promise<string[]> {
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const json = `${out}.json`;
  writeFileAtomic(json, JSON.stringify({ schema: 'anyres.eval/1', ...r }, null, 1) + '\n');
  const value = (x: EvalRow): number | undefined => (r.task === 'detection' ? x.ap : x.accuracy);
  const measured = r.rows.filter((x) => value(x) !== undefined);
  const metric = METRIC[r.task];
  const spec = lineChart({
    title: `${path.basename(r.checkpoint)} (${r.family}, ${r.weights} weights): ${metric.replace(' (%)', '')} by test resolution, ${r.view} view`,
    x: { field: 'res', title: 'test resolution (px)', scale: 'log2' },
    y: { field: 'value', title: metric, domain: [0, 100], format: '.0f' },
    color: { field: 'weights', title: 'weights' },
    rows: measured.map((x) => ({ res: x.res, value: 100 * value(x)!, weights: r.weights })),
  });
  const chart = await saveChart(spec, out);
  return [json, chart.svgPath, chart.pngPath];
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a checkpoint across test resolutions (top-1 accuracy of a classifier, COCO box AP of a detector run, per resolution; a table, a chart and JSON)')
    .requiredOption('--checkpoint <path>', 'a training run directory (or its last.json), or a .safetensors/.pth file')
    .requiredOption('--res <list>', "test resolutions: '32,48,64,96' or a range '32:128:16'")
    .option('--view <view>', 'zoom (the same scene larger) | canvas (same object size, larger field)', 'zoom')
    .option('--data <spec>', `${DATA_SPECS} (default: what the run was trained on)`)
    .option('--base-res <n>', "canvas view: the resolution whose object size is kept (default: the checkpoint's size)")
    .option('--model <preset|json>', 'for a weights file without anyres.config metadata')
    .option('--ema', "evaluate the EMA weights a run kept (train --ema)")
    .option('--batch <n>', 'batch size', '32')
    .option('--val-size <n>', 'synthetic: number of validation images (default 1000 images, 400 clips; detector runs: their own)')
    .option('--seed <n>', 'seed of the synthetic validation scenes', '0')
    .option('--threads <n>', 'ONNX Runtime threads')
    .option('--out <prefix>', 'output prefix: <prefix>.json, <prefix>.svg, <prefix>.png (default: <run>/eval-<view>, or eval-<view> beside a file)')
    .action(async (f: { checkpoint: string; res: string; view: string; data?: string; baseRes?: string; model?: string; ema?: boolean; batch: string; valSize?: string; seed: string; threads?: string; out?: string }) => {
      const int = (flag: string, v: string): number => {
        const x = Number(v);
        if (!Number.isInteger(x) || x < 1) throw new Error(`eval: ${flag} '${v}' must be a positive integer`);
        return x;
      };
      const r = await evalCheckpoint({
        checkpoint: f.checkpoint,
        res: parseResolutions(f.res),
        view: f.view as EvalView,
        batch: int('--batch', f.batch),
        ...(f.valSize !== undefined ? { valSize: int('--val-size', f.valSize) } : {}),
        seed: Number(f.seed),
        ...(f.data !== undefined ? { data: f.data } : {}),
        ...(f.baseRes !== undefined ? { baseRes: int('--base-res', f.baseRes) } : {}),
        ...(f.model !== undefined ? { model: f.model } : {}),
        ...(f.ema ? { ema: true } : {}),
        ...(f.threads !== undefined ? { rt: new Runtime({ threads: int('--threads', f.threads) }) } : {}),
      });
      console.log(`eval: ${f.checkpoint} (${r.family}, ${r.weights} weights, trained at ${r.defaultRes.join('x')}; ${METRIC[r.task]}) on ${r.samples} ${r.data} images, ${r.view} view${r.view === 'canvas' ? ` (object size of ${r.baseRes} px)` : ''}`);
      console.log(evalTable(r));
      const isRun = fs.existsSync(f.checkpoint) && fs.statSync(f.checkpoint).isDirectory();
      const out = f.out ?? (isRun ? path.join(f.checkpoint, `eval-${r.view}${r.weights === 'ema' ? '-ema' : ''}`) : path.join(path.dirname(f.checkpoint), `eval-${r.view}`));
      for (const p of await writeEvalOutputs(r, out)) console.log(`eval: wrote ${p}`);
    });
}
