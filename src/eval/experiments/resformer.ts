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
 *
 * `variants` adds the paper's ablations (Tian et al. 2023, ablation study): ResFormer trained on the
 * same resolutions without the scale-consistency loss (alpha = 0), and with a learned embedding
 * (interpolated per size) in place of GPE, LPE kept, so each of the two pieces is isolated against
 * the full ResFormer. Every variant of one seed trains on the same batches (`fitLoader` depends only
 * on seed, batch and resolutions; multi-resolution variants share their resolutions) and starts
 * from the same values of every weight name they share.
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
  /** The models to train (default `defaultVariants`: ViT and ResFormer); the first is the single-resolution reference. */
  variants?: ResFormerVariant[];
}

export type View = 'zoom' | 'canvas';

/** One trained model of the sweep. */
export interface ResFormerVariant {
  /** Short key for verdicts and tables: 'vit', 'resformer', 'resformer-no-scl', 'resformer-learned'... */
  key: string;
  /** Display name. */
  name: string;
  preset: string;
  /** Overrides on top of the options' `arch` (e.g. `{ posEmbed: 'learned' }`). */
  arch?: Partial<VitConfig>;
  /** Train on `multiRes` (true) or on `baseRes` only. */
  multiRes: boolean;
  /** Weight of the scale-consistency loss under multi-resolution training (default 1; 0 = cross-entropy only). */
  alpha?: number;
}

/** The default pair: single-resolution ViT and full ResFormer (GPE + LPE, scale-consistency loss). */
export function defaultVariants(o: Pick<ResFormerExperimentOptions, 'baseRes' | 'multiRes' | 'vitPreset' | 'resformerPreset'>): ResFormerVariant[] {
  return [
    { key: 'vit', name: `ViT (learned pos, trained at ${o.baseRes})`, preset: o.vitPreset, multiRes: false },
    { key: 'resformer', name: `ResFormer (GPE+LPE, trained at ${o.multiRes.join('/')})`, preset: o.resformerPreset, multiRes: true, alpha: 1 },
  ];
}

/** The default pair plus the two ablations: no scale-consistency loss, learned embedding instead of GPE. */
export function ablationVariants(o: Pick<ResFormerExperimentOptions, 'baseRes' | 'multiRes' | 'vitPreset' | 'resformerPreset'>): ResFormerVariant[] {
  return [
    ...defaultVariants(o),
    { key: 'resformer-no-scl', name: `ResFormer without scale-consistency loss (trained at ${o.multiRes.join('/')})`, preset: o.resformerPreset, multiRes: true, alpha: 0 },
    { key: 'resformer-learned', name: `ResFormer with a learned embedding instead of GPE (LPE kept, trained at ${o.multiRes.join('/')})`, preset: o.resformerPreset, arch: { posEmbed: 'learned' }, multiRes: true, alpha: 1 },
  ];
}

export interface SweepRow {
  model: string;
  /** The variant's key. */
  key: string;
  seed: number;
  res: number;
  view: View;
  accuracy: number;
}

export interface ResFormerResults {
  rows: SweepRow[];
  trainSeconds: Record<string, number>;
  /** The first seed's trained models (kept for checkpoints and the explorer). */
  models: { key: string; name: string; preset: string; model: VitModel; params: Map<string, Float32Array>; resolutions: number[] }[];
}

/** `valDs` is the validation set, or a function giving it rendered in a view (needed for views other than zoom). */
export async function runResFormerExperiment(rt: Runtime, trainDs: Dataset, valDs: Dataset | ((view: View) => Dataset), o: ResFormerExperimentOptions, log: (m: string) => void): Promise<ResFormerResults> {
  const views = o.views ?? ['zoom'];
  if (typeof valDs !== 'function' && views.some((v) => v !== 'zoom')) throw new Error(`runResFormerExperiment: views [${views.join(', ')}] need valDs as a function of the view, got one dataset`);
  const val = (view: View): Dataset => (typeof valDs === 'function' ? valDs(view) : valDs);
  const rows: SweepRow[] = [];
  const trainSeconds: Record<string, number> = {};
  const models: ResFormerResults['models'] = [];
  const variants = o.variants ?? defaultVariants(o);
  const keys = variants.map((v) => v.key);
  if (new Set(keys).size !== keys.length) throw new Error(`runResFormerExperiment: variant keys must be distinct, got [${keys.join(', ')}]`);
  for (const seed of o.seeds) {
    for (const v of variants) {
      const model = createVit(v.preset, { ...o.arch, ...v.arch, imgSize: [o.baseRes, o.baseRes], numClasses: o.numClasses });
      for (const r of o.testRes) model.checkInputSize(r, r);
      const resolutions = v.multiRes ? o.multiRes : [o.baseRes];
      const res = await fit(rt, model, trainDs, {
        ...o.train,
        seed,
        resolutions,
        multiresAlpha: v.alpha ?? 1,
        label: `${v.key} seed ${seed} @${resolutions.join('/')}`,
      });
      trainSeconds[`${v.name} seed ${seed}`] = res.seconds;
      if (seed === o.seeds[0]) models.push({ key: v.key, name: v.name, preset: v.preset, model, params: res.params, resolutions });
      for (const view of views) {
        const accs: string[] = [];
        for (const r of o.testRes) {
          // At the base size both views render the same images: evaluate once.
          const same = view !== 'zoom' && r === o.baseRes ? rows.find((x) => x.model === v.name && x.seed === seed && x.res === r && x.view === 'zoom') : undefined;
          const a = same ? same.accuracy : await accuracy(rt, model, res.params, val(view), r);
          rows.push({ model: v.name, key: v.key, seed, res: r, view, accuracy: a });
          accs.push(`${r}=${a.toFixed(1)}`);
        }
        log(`${v.key} seed ${seed} ${view}: ${accs.join(' ')}`);
      }
    }
  }
  return { rows, trainSeconds, models };
}
