/**
 * ResFormer in miniature (Tian et al. 2023, Table 1 and Fig. 1): a small ViT
 * trained at one resolution with a learned position embedding (DeiT-style,
 * interpolated at test time) versus ResFormer: the same ViT with the global
 * (sin-cos + depthwise conv) and local (depthwise conv on V) embeddings,
 * trained on several resolutions at once with the scale-consistency loss.
 * Both are swept over a wide range of test resolutions, well below and above
 * training, in the views of `views`: zoom (the same scene rendered larger: objects grow with the
 * image, as when ResFormer Tab. 1 resizes ImageNet images) and canvas (objects keep their size,
 * the field of view grows). The views are evaluation only: the same trained models.
 */
import type { Dataset } from '../../data/dataset.ts';
import type { Runtime } from '../../graph/runtime.ts';
import { createVit, type VitConfig, type VitModel } from '../../models/vit.ts';
import { type FitOptions, accuracy, fit } from './fit.ts';

export interface ResFormerExperimentOptions {
  /** Single-resolution baseline's training resolution. */
  baseRes: number;
  /** ResFormer's training resolutions (the base first). */
  multiRes: number[];
  testRes: number[];
  seeds: number[];
  /** Preset names for the baseline ('vit-mini-p4') and ResFormer ('resformer-mini-p4'). */
  vitPreset: string;
  resformerPreset: string;
  arch: Partial<VitConfig>;
  train: Omit<FitOptions, 'seed' | 'resolutions' | 'init' | 'hook' | 'label'>;
  numClasses: number;
  /** Evaluation views (default zoom only). */
  views?: View[];
}

export type View = 'zoom' | 'canvas';

export interface SweepRow {
  model: string;
  seed: number;
  res: number;
  view: View;
  accuracy: number;
}

export interface ResFormerResults {
  rows: SweepRow[];
  trainSeconds: Record<string, number>;
  /** The first seed's trained models (kept for checkpoints and the explorer). */
  models: { name: string; preset: string; model: VitModel; params: Map<string, Float32Array>; resolutions: number[] }[];
}

/** `valDs` is the validation set, or a function giving it rendered in a view (needed for views other than zoom). */
export async function runResFormerExperiment(rt: Runtime, trainDs: Dataset, valDs: Dataset | ((view: View) => Dataset), o: ResFormerExperimentOptions, log: (m: string) => void): Promise<ResFormerResults> {
  const views = o.views ?? ['zoom'];
  if (typeof valDs !== 'function' && views.some((v) => v !== 'zoom')) throw new Error(`runResFormerExperiment: views [${views.join(', ')}] need valDs as a function of the view, got one dataset`);
  const val = (view: View): Dataset => (typeof valDs === 'function' ? valDs(view) : valDs);
  const rows: SweepRow[] = [];
  const trainSeconds: Record<string, number> = {};
  const models: ResFormerResults['models'] = [];
  const variants = [
    { name: `ViT (learned pos, trained at ${o.baseRes})`, preset: o.vitPreset, res: [o.baseRes] },
    { name: `ResFormer (GPE+LPE, trained at ${o.multiRes.join('/')})`, preset: o.resformerPreset, res: o.multiRes },
  ];
  for (const seed of o.seeds) {
    for (const v of variants) {
      const model = createVit(v.preset, { ...o.arch, imgSize: [o.baseRes, o.baseRes], numClasses: o.numClasses });
      for (const r of o.testRes) model.checkInputSize(r, r);
      const res = await fit(rt, model, trainDs, { ...o.train, seed, resolutions: v.res, label: `${v.preset} seed ${seed} @${v.res.join('/')}` });
      trainSeconds[`${v.name} seed ${seed}`] = res.seconds;
      if (seed === o.seeds[0]) models.push({ name: v.name, preset: v.preset, model, params: res.params, resolutions: v.res });
      for (const view of views) {
        const accs: string[] = [];
        for (const r of o.testRes) {
          // At the base size both views render the same images: evaluate once.
          const same = view !== 'zoom' && r === o.baseRes ? rows.find((x) => x.model === v.name && x.seed === seed && x.res === r && x.view === 'zoom') : undefined;
          const a = same ? same.accuracy : await accuracy(rt, model, res.params, val(view), r);
          rows.push({ model: v.name, seed, res: r, view, accuracy: a });
          accs.push(`${r}=${a.toFixed(1)}`);
        }
        log(`${v.preset} seed ${seed} ${view}: ${accs.join(' ')}`);
      }
    }
  }
  return { rows, trainSeconds, models };
}
