/**
 * Absolute win on Hiera in miniature (Bolya et al. 2024, Tables 1/8, Fig. 4 and
 * Appendix B, Table 18), as the main job runs it:
 *
 * 1. From scratch: a small Hiera with mask-unit attention trained at a base
 *    resolution with `absolute` (learned, interpolated at new sizes: the bugged
 *    baseline) and with `abswin` (window tiled + global interpolated), several
 *    seeds; each evaluated directly at larger sizes and fine-tuned briefly there.
 *    The window similarity of the learned absolute embedding is recorded as it
 *    trains (Fig. 4).
 * 2. The mechanism, labelled as such: an embedding that IS tiled per window (the
 *    trained abs-win model's combined embedding at the base grid, which is what
 *    long MAE pretraining produces in the paper, Fig. 2) loaded into the same
 *    network as a plain learned embedding; at a new size, the same weights with
 *    the embedding interpolated versus absolute-win resized. Only the
 *    resizing differs.
 * 3. The global-size ablation (Bolya et al. 2024, Tab. 2 ablates the size of the global
 *    embedding), warm-started to fit the time budget: each trained abs-win model's global
 *    embedding is resized (the model's own global resampling) to each size of the ablation, the
 *    window embedding and the rest are kept, and every variant, the trained size included as the
 *    control, gets the same short training at the base size with the same seed (same batches),
 *    then is evaluated directly at the test sizes. Only the global embedding's size differs.
 *
 * Pairing: the two strategies (and the ablation's variants) of one seed start from bit-identical
 * values of every weight they share (src/nn/params.ts `initWeights` draws each parameter from
 * (seed, name)) and train on the same batches with the same flips (`fitLoader`), so the report
 * compares them per seed (src/eval/paired.ts).
 */
import type { Dataset } from '../../data/dataset.ts';
import type { Runtime } from '../../graph/runtime.ts';
import type { HieraConfig } from '../../models/hiera-config.ts';
import { createHiera, type HieraModel } from '../../models/hiera.ts';
import { absWinEmbed } from '../../posembed/abswin.ts';
import { grid, gridToTokens, tokensToGrid } from '../../posembed/reference.ts';
import { windowSimilarity, tiledEnergyShare } from '../../posembed/similarity.ts';
import { resample2d } from '../../posembed/resample.ts';
import { type FitOptions, accuracy, fit } from './fit.ts';

export interface AbsWinExperimentOptions {
  /** Base (training) resolution in pixels. */
  baseRes: number;
  /** Direct-evaluation resolutions (the base included). */
  evalRes: number[];
  /** Fine-tuning resolutions. */
  finetuneRes: number[];
  /** Fine-tuning resolutions of the mechanism experiment (a subset, to save time). */
  mechanismFinetuneRes: number[];
  seeds: number[];
  train: Omit<FitOptions, 'seed' | 'resolutions' | 'init' | 'hook' | 'label'>;
  finetune: Omit<FitOptions, 'seed' | 'resolutions' | 'init' | 'hook' | 'label'>;
  /** Overrides of the Hiera architecture (width, stages, mask unit...). */
  arch: Partial<HieraConfig>;
  /** Record the window similarity every N steps. */
  similarityEvery: number;
  numClasses: number;
  /** The global-size ablation (section 3 of the module comment); off when absent. */
  globalSizes?: GlobalSizeOptions;
}

/** A global embedding size in tokens, or 'base' for the base resolution's token grid. */
export type GlobalSize = [number, number] | 'base';

export interface GlobalSizeOptions {
  sizes: GlobalSize[];
  /** The training every variant gets at the base size after its global embedding is resized. */
  train: Omit<FitOptions, 'seed' | 'resolutions' | 'init' | 'hook' | 'label'>;
  /** Direct-evaluation sizes (zoom view). */
  evalRes: number[];
}

export interface GlobalSizeRow {
  seed: number;
  /** The global embedding's size in tokens. */
  global: [number, number];
  res: number;
  accuracy: number;
}

export type Strategy = 'absolute' | 'abswin';

export interface AccuracyRow {
  strategy: Strategy | 'tiled-interpolate' | 'tiled-abswin';
  seed: number;
  res: number;
  /** 'direct' (evaluated at res without training there), 'finetune' (fine-tuned at res). */
  mode: 'direct' | 'finetune';
  /** 'zoom' (same scene, objects scale with the image) or 'canvas' (same object size, larger field). */
  view: 'zoom' | 'canvas';
  accuracy: number;
}

export interface SimilarityPoint {
  strategy: Strategy;
  seed: number;
  step: number;
  similarity: number;
  tiledShare: number;
  loss: number;
}

export interface AbsWinRun {
  strategy: Strategy;
  seed: number;
  model: HieraModel;
  params: Map<string, Float32Array>;
  trainSeconds: number;
  imagesPerSecond: number;
}

export interface AbsWinResults {
  accuracy: AccuracyRow[];
  similarity: SimilarityPoint[];
  runs: AbsWinRun[];
  /** The global-size ablation's accuracies (empty when it is off). */
  globalSize: GlobalSizeRow[];
  /** Token grid and window (mask unit) at the base resolution. */
  baseGrid: [number, number];
  window: [number, number];
}

/** The experiment's Hiera; `globalPosSize` overrides the arch's global embedding size (abs-win only). */
export function hieraFor(strategy: Strategy, o: Pick<AbsWinExperimentOptions, 'arch' | 'baseRes' | 'numClasses'>, globalPosSize?: [number, number]): HieraModel {
  if (globalPosSize && strategy !== 'abswin') throw new Error(`hieraFor: a global embedding size (${globalPosSize.join('x')}) needs strategy 'abswin', got '${strategy}'`);
  return createHiera(strategy === 'abswin' ? 'hiera-mini-abswin' : 'hiera-mini', {
    ...o.arch,
    ...(globalPosSize ? { globalPosSize } : {}),
    inputSize: [o.baseRes, o.baseRes],
    numClasses: o.numClasses,
    posEmbed: strategy,
  });
}

/**
 * The parameters of a trained abs-win Hiera with its global embedding resized to `size`
 * ([1, C, gh, gw] -> [1, C, size], with the model's own global resampling); everything else kept.
 */
export function resizeGlobal(model: HieraModel, params: ReadonlyMap<string, Float32Array>, size: [number, number]): Map<string, Float32Array> {
  const cfg = model.config;
  if (cfg.posEmbed !== 'abswin') throw new Error(`resizeGlobal: the model's position embedding is '${cfg.posEmbed}', not 'abswin'`);
  const pe = params.get('pos_embed');
  if (!pe) throw new Error('resizeGlobal: the parameters have no pos_embed');
  const [gh, gw] = cfg.globalPosSize;
  const out = new Map(params);
  // [1, C, gh, gw] -> [1, C, size[0], size[1]]
  out.set('pos_embed', Float32Array.from(resample2d(pe, cfg.embedDim, gh, gw, size[0], size[1], cfg.globalResample)));
  return out;
}

/** The position embedding a Hiera adds at its own base grid, [C, h, w] (float64). */
export function basePosEmbed(model: HieraModel, params: ReadonlyMap<string, Float32Array>): { data: Float64Array; C: number; H: number; W: number } {
  const cfg = model.config;
  const C = cfg.embedDim;
  const h = cfg.inputSize[0] / cfg.patchStride[0];
  const w = cfg.inputSize[1] / cfg.patchStride[1];
  const pe = params.get('pos_embed');
  if (!pe) throw new Error('basePosEmbed: the parameters have no pos_embed');
  if (cfg.posEmbed === 'absolute') return { data: tokensToGrid(pe, C, h, w), C, H: h, W: w };
  const [gh, gw] = cfg.globalPosSize;
  const [wh, ww] = cfg.maskUnitSize;
  const win = params.get(cfg.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window')!;
  return absWinEmbed(grid(pe, C, gh, gw), grid(win, C, wh, ww), h, w, { globalMode: cfg.globalResample });
}

/** The global (smooth) part of an abs-win embedding interpolated to h x w, [C, h, w]. */
export function globalPart(model: HieraModel, params: ReadonlyMap<string, Float32Array>, h: number, w: number): Float64Array {
  const cfg = model.config;
  const [gh, gw] = cfg.globalPosSize;
  return resample2d(params.get('pos_embed')!, cfg.embedDim, gh, gw, h, w, cfg.globalResample);
}

/** Runs the experiment; `data(view)` gives the validation set rendered in that view. */
export async function runAbsWinExperiment(
  rt: Runtime,
  trainDs: Dataset,
  valDs: (view: 'zoom' | 'canvas') => Dataset,
  o: AbsWinExperimentOptions,
  log: (msg: string) => void,
): Promise<AbsWinResults> {
  const rows: AccuracyRow[] = [];
  const sim: SimilarityPoint[] = [];
  const runs: AbsWinRun[] = [];
  const probe = hieraFor('absolute', o);
  const cfg = probe.config;
  const baseGrid: [number, number] = [o.baseRes / cfg.patchStride[0], o.baseRes / cfg.patchStride[1]];
  const window = cfg.maskUnitSize;
  for (const r of [...o.evalRes, ...o.finetuneRes]) probe.checkInputSize(r, r);

  for (const seed of o.seeds) {
    for (const strategy of ['absolute', 'abswin'] as const) {
      const model = hieraFor(strategy, o);
      const hook = (step: number, params: ReadonlyMap<string, Float32Array>, loss: number): void => {
        const pe = basePosEmbed(model, params);
        sim.push({
          strategy,
          seed,
          step,
          similarity: windowSimilarity(pe, window[0], window[1]),
          tiledShare: tiledEnergyShare(pe, window[0], window[1]),
          loss,
        });
      };
      const res = await fit(rt, model, trainDs, {
        ...o.train,
        seed,
        resolutions: [o.baseRes],
        hook,
        hookEvery: o.similarityEvery,
        label: `hiera ${strategy} seed ${seed} @${o.baseRes}`,
      });
      runs.push({ strategy, seed, model, params: res.params, trainSeconds: res.seconds, imagesPerSecond: res.imagesPerSecond });
      for (const view of ['zoom', 'canvas'] as const) {
        for (const r of o.evalRes) {
          if (view === 'canvas' && r === o.baseRes && rows.some((x) => x.strategy === strategy && x.seed === seed && x.res === r && x.mode === 'direct')) {
            // At the base size both views render the same images.
            rows.push({ ...rows.find((x) => x.strategy === strategy && x.seed === seed && x.res === r && x.mode === 'direct')!, view });
            continue;
          }
          rows.push({ strategy, seed, res: r, mode: 'direct', view, accuracy: await accuracy(rt, model, res.params, valDs(view), r) });
        }
      }
      for (const r of o.finetuneRes) {
        const ft = await fit(rt, model, trainDs, {
          ...o.finetune,
          seed: seed + 1000,
          resolutions: [r],
          init: res.params,
          label: `  fine-tune ${strategy} seed ${seed} @${r}`,
        });
        rows.push({ strategy, seed, res: r, mode: 'finetune', view: 'zoom', accuracy: await accuracy(rt, model, ft.params, valDs('zoom'), r) });
      }
      const acc = rows.filter((x) => x.strategy === strategy && x.seed === seed && x.view === 'zoom');
      log(`hiera ${strategy} seed ${seed}: ${acc.map((x) => `${x.mode === 'finetune' ? 'ft' : ''}${x.res}=${x.accuracy.toFixed(1)}`).join(' ')}`);
    }
  }

  // The mechanism: a window-tiled embedding in a plain learned-embedding network.
  for (const run of runs.filter((r) => r.strategy === 'abswin')) {
    const abs = hieraFor('absolute', o);
    const pe = basePosEmbed(run.model, run.params);
    const params = new Map(run.params);
    params.delete(run.model.config.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window');
    params.set('pos_embed', Float32Array.from(gridToTokens(pe.data, pe.C, pe.H, pe.W)));
    for (const r of o.evalRes) {
      const a = await accuracy(rt, abs, params, valDs('zoom'), r);
      const b = await accuracy(rt, run.model, run.params, valDs('zoom'), r);
      rows.push({ strategy: 'tiled-interpolate', seed: run.seed, res: r, mode: 'direct', view: 'zoom', accuracy: a });
      rows.push({ strategy: 'tiled-abswin', seed: run.seed, res: r, mode: 'direct', view: 'zoom', accuracy: b });
    }
    for (const r of o.mechanismFinetuneRes) {
      for (const [strategy, model, init] of [
        ['tiled-interpolate', abs, params],
        ['tiled-abswin', run.model, run.params],
      ] as const) {
        const ft = await fit(rt, model, trainDs, { ...o.finetune, seed: run.seed + 2000, resolutions: [r], init, label: `  fine-tune ${strategy} seed ${run.seed} @${r}` });
        rows.push({ strategy, seed: run.seed, res: r, mode: 'finetune', view: 'zoom', accuracy: await accuracy(rt, model, ft.params, valDs('zoom'), r) });
      }
    }
  }
  // The global-size ablation, warm-started from each trained abs-win model.
  const globalRows: GlobalSizeRow[] = [];
  if (o.globalSizes) {
    const ab = o.globalSizes;
    for (const r of ab.evalRes) probe.checkInputSize(r, r);
    for (const run of runs.filter((r) => r.strategy === 'abswin')) {
      for (const size of ab.sizes) {
        const g: [number, number] = size === 'base' ? [...baseGrid] : [...size];
        const model = hieraFor('abswin', o, g);
        const init = resizeGlobal(run.model, run.params, g);
        const ft = await fit(rt, model, trainDs, { ...ab.train, seed: run.seed + 3000, resolutions: [o.baseRes], init, label: `  global ${g.join('x')} seed ${run.seed} @${o.baseRes}` });
        const acc: string[] = [];
        for (const r of ab.evalRes) {
          const a = await accuracy(rt, model, ft.params, valDs('zoom'), r);
          globalRows.push({ seed: run.seed, global: g, res: r, accuracy: a });
          acc.push(`${r}=${a.toFixed(1)}`);
        }
        log(`hiera abswin global ${g.join('x')} seed ${run.seed}: ${acc.join(' ')}`);
      }
    }
  }
  return { accuracy: rows, similarity: sim, runs, globalSize: globalRows, baseGrid, window };
}
