/**
 * The ResFormer section's reading by the paper's protocol (Tian et al. 2023, Tab. 1 and Fig. 1:
 * trained on 128/160/224, tested from far below to far above): test sizes below, within and above
 * the multi-resolution training range, reported separately and in both views (zoom, canvas), with
 * ResFormer − ViT paired by seed (same seed = same batches; shared weight names start equal).
 */
import type { CellValue, Report } from '../report.ts';
import { lineChart } from '../charts.ts';
import { meanStd } from '../verdict.ts';
import { type PairedRowData, comparePaired } from '../paired.ts';
import { pairedCellColumns, pairedCells, pairedSummary } from './abswin-report.ts';
import type { ResFormerExperimentOptions, ResFormerResults, View } from './resformer.ts';

export type Region = 'below' | 'within' | 'above';

/** Which side of the training range [min, max] of `trainRes` a test size lies on. */
export function regionOf(res: number, trainRes: readonly number[]): Region {
  if (!trainRes.length) throw new Error('regionOf: no training resolutions given');
  const lo = Math.min(...trainRes);
  const hi = Math.max(...trainRes);
  return res < lo ? 'below' : res > hi ? 'above' : 'within';
}

/** One paired comparison of the protocol: `b` − `a` per seed, named by `what`. */
export interface ProtocolComparison {
  /** Verdict-key prefix ('' for the main one) and the `part` of its paired rows. */
  prefix: string;
  part: string;
  a: string;
  b: string;
  names: [a: string, b: string];
  what: string;
  title: string;
}

/** The comparisons the protocol reports, in order; those whose variants did not run are skipped. */
export const PROTOCOL_COMPARISONS: readonly ProtocolComparison[] = [
  { prefix: '', part: 'resformer', a: 'vit', b: 'resformer', names: ['ViT', 'ResFormer'], what: 'ResFormer − ViT', title: 'Multi-resolution ResFormer vs single-resolution ViT' },
  { prefix: 'scl/', part: 'resformer-scl', a: 'resformer-no-scl', b: 'resformer', names: ['without', 'with'], what: 'with − without the loss', title: 'Ablation: the scale-consistency loss (same resolutions, same batches)' },
  { prefix: 'gpe/', part: 'resformer-gpe', a: 'resformer-learned', b: 'resformer', names: ['learned', 'GPE'], what: 'GPE − learned', title: 'Ablation: GPE vs a learned embedding under multi-resolution training (LPE in both)' },
];

/**
 * Tables and chart of the protocol; returns the verdict records (`<prefix><view>/<region>`, the
 * prefix of `PROTOCOL_COMPARISONS`) and pushes the paired rows to `paired`. Models are told apart
 * by their variant key (`SweepRow.key`).
 */
export function resformerProtocolSection(r: Report, res: ResFormerResults, o: ResFormerExperimentOptions, paired: PairedRowData[]): Record<string, unknown> {
  const verdict: Record<string, unknown> = {};
  const keys = new Set(res.rows.map((x) => x.key));
  const comparisons = PROTOCOL_COMPARISONS.filter((c) => keys.has(c.a) && keys.has(c.b));
  if (!comparisons.length) return verdict;
  const views = [...new Set(res.rows.map((x) => x.view))] as View[];
  const lo = Math.min(...o.multiRes);
  const hi = Math.max(...o.multiRes);
  const tmin = Math.min(...o.testRes);
  const tmax = Math.max(...o.testRes);
  r.text(
    `### Below, within and above the training sizes${views.length > 1 ? ', both views' : ''}\n\n` +
      `ResFormer trains on ${o.multiRes.join('/')} px (${(lo / hi).toFixed(2)}-1x of the base), the ViT on ${o.baseRes} px; ` +
      `every model is tested from ${tmin} to ${tmax} px (${(tmin / o.baseRes).toFixed(2)}x to ${(tmax / o.baseRes).toFixed(2)}x of the base). ` +
      `Test sizes below ${lo} px, from ${lo} to ${hi} px, and above ${hi} px are averaged per seed and model, and each difference is paired by seed ` +
      '(same seed = same batches; weights with the same name start equal). ' +
      '*zoom*: the same scene rendered larger, objects grow with the image (how the paper resizes ImageNet images); ' +
      '*canvas*: objects keep their size and the field of view grows (shrinks below the base), so only the token count changes.' +
      (comparisons.length > 1 ? ' The ablations compare the full ResFormer with the same model trained on the same sizes without the scale-consistency loss, and with a learned embedding (interpolated per size) in place of GPE (the ablations of Tian et al. 2023).' : ''),
  );
  const perSeed = (key: string, view: View, sizes: number[]): { seed: number; value: number }[] => {
    const seeds = [...new Set(res.rows.filter((x) => x.key === key && x.view === view).map((x) => x.seed))];
    return seeds.map((seed) => {
      const xs = res.rows.filter((x) => x.key === key && x.view === view && x.seed === seed && sizes.includes(x.res)).map((x) => x.accuracy);
      return { seed, value: xs.reduce((a, b) => a + b, 0) / xs.length };
    });
  };
  for (const c of comparisons) {
    const rows: Record<string, CellValue>[] = [];
    for (const view of views) {
      for (const region of ['below', 'within', 'above'] as const) {
        const sizes = o.testRes.filter((t) => regionOf(t, o.multiRes) === region);
        if (!sizes.length) continue;
        const a = perSeed(c.a, view, sizes);
        const b = perSeed(c.b, view, sizes);
        const p = comparePaired(c.part, `${view}/${region}`, a, b, c.names, 100 / o.numClasses);
        paired.push(p);
        rows.push({ view, region: `${region} (${sizes.join(', ')} px)`, a: meanStd(a.map((x) => x.value)), b: meanStd(b.map((x) => x.value)), ...pairedCells(p) });
        verdict[`${c.prefix}${view}/${region}`] = { [c.a]: meanStd(a.map((x) => x.value)), [c.b]: meanStd(b.map((x) => x.value)), diff: p.mean, paired: pairedSummary(p), verdict: p.verdict };
      }
    }
    if (comparisons.length > 1) r.text(`**${c.title}**`);
    r.table({
      columns: [
        { key: 'view', title: 'view', format: 'text' },
        { key: 'region', title: 'test sizes vs training', format: 'text' },
        { key: 'a', title: c.names[0], format: 'accuracy' },
        { key: 'b', title: c.names[1], format: 'accuracy' },
        ...pairedCellColumns(c.what),
      ],
      rows,
      caption: `Top-1 accuracy (%) averaged over the sizes of each region, mean ± sd over ${o.seeds.length} seed(s); the difference is paired by seed with its 95% t interval.`,
    });
  }
  if (views.includes('canvas')) {
    r.chart('resformer-sweep-canvas', lineChart({
      title: 'Accuracy vs test resolution, canvas view (objects keep their size)',
      x: { field: 'res', title: 'test resolution (px)', scale: 'log2' },
      y: { field: 'accuracy', title: 'top-1 accuracy (%)' },
      color: { field: 'model', title: 'model' },
      rows: res.rows.filter((x) => x.view === 'canvas').map((x) => ({ model: x.model, seed: x.seed, res: x.res, accuracy: x.accuracy })),
      spread: o.seeds.length > 1 ? { from: 'seeds', extent: 'stdev' } : undefined,
    }));
  }
  return verdict;
}
