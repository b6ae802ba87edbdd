/**
 * The paper's central pipeline in miniature (Bolya et al. 2024, Sec. 3 and Table 1):
 * MAE-pretrain a Hiera with a learned absolute embedding (hiera_mae.py), record the
 * window similarity of that embedding as it trains (Fig. 4: it rises fastest under
 * MAE), then fine-tune it supervised at the base size twice: keeping the learned
 * embedding (interpolated at new sizes) and converted to absolute win (window and
 * global parts recovered from the learned embedding), and compare both at larger
 * sizes, directly and after a short fine-tune there.
 */
import type { Dataset } from '../../data/dataset.ts';
import type { Runtime } from '../../graph/runtime.ts';
import type { HieraConfig } from '../../models/hiera-config.ts';
import { createHiera } from '../../models/hiera.ts';
import { maeConfigFor } from '../../models/hiera-mae.ts';
import { absWinFromLearned } from '../../posembed/abswin.ts';
import { grid, tokensToGrid } from '../../posembed/reference.ts';
import { pretrainMae } from '../../train/mae.ts';
import { type FitOptions, accuracy, fit } from './fit.ts';
import type { AccuracyRow } from './abswin.ts';
import { studentTQuantile } from '../paired.ts';

export interface MaeExperimentOptions {
  baseRes: number;
  evalRes: number[];
  finetuneRes: number[];
  seeds: number[];
  arch: Partial<HieraConfig>;
  numClasses: number;
  pretrain: { steps: number; batch: number; lr: number; maskRatio: number; similarityEvery: number };
  /** Supervised fine-tuning at the base size after pretraining (skipped unless `finetuneFromMae`). */
  train: Omit<FitOptions, 'seed' | 'resolutions' | 'init' | 'hook' | 'label'>;
  /** Fine-tune the MAE trunk (absolute vs abs-win) after pretraining. */
  finetuneFromMae: boolean;
  /** Short fine-tuning at each larger size. */
  finetune: Omit<FitOptions, 'seed' | 'resolutions' | 'init' | 'hook' | 'label'>;
}

export interface MaeResults {
  similarity: { seed: number; step: number; similarity: number }[];
  accuracy: (Omit<AccuracyRow, 'strategy'> & { strategy: 'mae-absolute' | 'mae-abswin' })[];
  /** Relative residual of splitting the learned embedding into window + global parts. */
  conversionResidual: number[];
  pretrainSeconds: number[];
}

export async function runMaeExperiment(rt: Runtime, trainDs: Dataset, valDs: Dataset, o: MaeExperimentOptions, log: (m: string) => void): Promise<MaeResults> {
  const out: MaeResults = { similarity: [], accuracy: [], conversionResidual: [], pretrainSeconds: [] };
  for (const seed of o.seeds) {
    const t0 = performance.now();
    const cfg = maeConfigFor('hiera-mini', { encoder: { ...o.arch, posEmbed: 'absolute', numClasses: o.numClasses } });
    const pre = await pretrainMae({
      model: cfg,
      data: trainDs,
      res: o.baseRes,
      maskRatio: o.pretrain.maskRatio,
      steps: o.pretrain.steps,
      batch: o.pretrain.batch,
      lr: o.pretrain.lr,
      warmupSteps: Math.ceil(o.pretrain.steps / 10),
      seed,
      similarityEvery: o.pretrain.similarityEvery,
      rt,
    });
    out.pretrainSeconds.push((performance.now() - t0) / 1000);
    for (const s of pre.similarity) out.similarity.push({ seed, step: s.step, similarity: s.embed });
    log(`MAE seed ${seed}: loss ${pre.losses[0]?.loss.toFixed(3)} -> ${pre.losses[pre.losses.length - 1]?.loss.toFixed(3)}, window similarity ${pre.similarity[pre.similarity.length - 1]?.embed.toFixed(3)}`);

    if (!o.finetuneFromMae) continue;
    const encCfg: Partial<HieraConfig> = { ...pre.encoderConfig, numClasses: o.numClasses, inputSize: [o.baseRes, o.baseRes] };
    const absModel = createHiera('hiera-mini', { ...encCfg, posEmbed: 'absolute' });
    const awModel = createHiera('hiera-mini-abswin', { ...encCfg, posEmbed: 'abswin' });
    // The learned [1, h*w, C] embedding split into a tiled window part and an interpolated global part.
    const C = absModel.config.embedDim;
    const h = o.baseRes / absModel.config.patchStride[0];
    const w = o.baseRes / absModel.config.patchStride[1];
    const learned = grid(tokensToGrid(pre.encoder.get('pos_embed')!, C, h, w), C, h, w);
    const split = absWinFromLearned(learned, awModel.config.maskUnitSize, awModel.config.globalPosSize, { iterations: 200 });
    out.conversionResidual.push(split.relResidual);
    const awInit = new Map(pre.encoder);
    awInit.set('pos_embed', Float32Array.from(split.global.data));
    awInit.set('pos_embed_window', Float32Array.from(split.window.data));

    for (const [strategy, model, init] of [
      ['mae-absolute', absModel, pre.encoder],
      ['mae-abswin', awModel, awInit],
    ] as const) {
      const base = await fit(rt, model, trainDs, { ...o.train, seed, resolutions: [o.baseRes], init, label: `MAE -> ${strategy} seed ${seed} @${o.baseRes}` });
      for (const r of o.evalRes) out.accuracy.push({ strategy, seed, res: r, mode: 'direct', view: 'zoom', accuracy: await accuracy(rt, model, base.params, valDs, r) });
      for (const r of o.finetuneRes) {
        const ft = await fit(rt, model, trainDs, { ...o.finetune, seed: seed + 3000, resolutions: [r], init: base.params, label: `  fine-tune ${strategy} seed ${seed} @${r}` });
        out.accuracy.push({ strategy, seed, res: r, mode: 'finetune', view: 'zoom', accuracy: await accuracy(rt, model, ft.params, valDs, r) });
      }
      const acc = out.accuracy.filter((x) => x.strategy === strategy && x.seed === seed);
      log(`${strategy} seed ${seed}: ${acc.map((x) => `${x.mode === 'finetune' ? 'ft' : ''}${x.res}=${x.accuracy.toFixed(1)}`).join(' ')}`);
    }
  }
  return out;
}

/** The trend of the window similarity over pretraining: per-seed least-squares slope and their mean with an interval. */
export interface SimilaritySlope {
  /** Per seed: slope of similarity vs step in units per 1,000 steps, its standard error, and the points it used. */
  perSeed: { seed: number; slope: number; se: number; points: number }[];
  /** Mean slope per 1,000 steps. */
  mean: number;
  /** 95% interval: a t interval over seeds (2+ seeds), else the one seed's regression interval; null when it cannot be formed. */
  low: number | null;
  high: number | null;
  /** 'seeds' (t over seeds, n − 1 df) or 'regression' (one seed: t over points − 2 df; points are autocorrelated, so it is optimistic). */
  interval: 'seeds' | 'regression' | 'none';
  /** Steps before `fromStep` are left out (the warm-up transient). */
  fromStep: number;
}

/**
 * Least-squares slope of window similarity against training step, per 1,000 steps, for each seed,
 * from `fromStep` on; the mean over seeds with its 95% t interval (one seed: the regression's own).
 */
export function similaritySlope(points: readonly { seed: number; step: number; similarity: number }[], fromStep = 0, level = 0.95): SimilaritySlope {
  const seeds = [...new Set(points.map((p) => p.seed))].sort((a, b) => a - b);
  const perSeed: SimilaritySlope['perSeed'] = [];
  for (const seed of seeds) {
    const ps = points.filter((p) => p.seed === seed && p.step >= fromStep);
    if (ps.length < 2) throw new Error(`similaritySlope: seed ${seed} has ${ps.length} point(s) from step ${fromStep}; a slope needs 2 or more (record the similarity more often)`);
    const xs = ps.map((p) => p.step / 1000);
    const ys = ps.map((p) => p.similarity);
    const n = ps.length;
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = ys.reduce((a, b) => a + b, 0) / n;
    const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
    if (sxx === 0) throw new Error(`similaritySlope: seed ${seed} has all its points at one step`);
    const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / sxx;
    const rss = xs.reduce((a, x, i) => a + (ys[i]! - my - slope * (x - mx)) ** 2, 0);
    const se = n > 2 ? Math.sqrt(rss / (n - 2) / sxx) : NaN;
    perSeed.push({ seed, slope, se, points: n });
  }
  const k = perSeed.length;
  const mean = perSeed.reduce((a, s) => a + s.slope, 0) / Math.max(1, k);
  if (k >= 2) {
    const sd = Math.sqrt(perSeed.reduce((a, s) => a + (s.slope - mean) ** 2, 0) / (k - 1));
    const half = (studentTQuantile((1 + level) / 2, k - 1) * sd) / Math.sqrt(k);
    return { perSeed, mean, low: mean - half, high: mean + half, interval: 'seeds', fromStep };
  }
  const one = perSeed[0];
  if (one && one.points > 2 && Number.isFinite(one.se)) {
    const half = studentTQuantile((1 + level) / 2, one.points - 2) * one.se;
    return { perSeed, mean, low: mean - half, high: mean + half, interval: 'regression', fromStep };
  }
  return { perSeed, mean, low: null, high: null, interval: 'none', fromStep };
}

/** The reading of a slope: climbs / falls when the interval excludes 0, else flat within noise. */
export function slopeVerdict(s: SimilaritySlope): string {
  if (s.low === null || s.high === null) return 'no interval (one seed, too few points)';
  if (s.low > 0) return 'window similarity climbs (95% CI above 0)';
  if (s.high < 0) return 'window similarity falls (95% CI below 0)';
  return 'no trend detected (95% CI includes 0)';
}
