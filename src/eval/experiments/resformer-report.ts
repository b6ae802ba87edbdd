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

/**
 * Tables and chart of the protocol; returns the verdict records (`<view>/<region>`) and pushes the
 * paired rows to `paired`. The two models are told apart by their order in `res.rows` (ViT first,
 * as `runResFormerExperiment` runs them).
 */
export function resformerProtocolSection(r: Report, res: ResFormerResults, o: ResFormerExperimentOptions, paired: PairedRowData[]): Record<string, unknown> {
  const verdict: Record<string, unknown> = {};
  const models = [...new Set(res.rows.map((x) => x.model))];
  if (models.length !== 2) return verdict;
  const [vit, rf] = models as [string, string];
  const views = [...new Set(res.rows.map((x) => x.view))] as View[];
  const lo = Math.min(...o.multiRes);
  const hi = Math.max(...o.multiRes);
  r.text(
    `### Below, within and above the training sizes${views.length > 1 ? ', both views' : ''}\n\n` +
      `ResFormer trains on ${o.multiRes.join('/')} px (${(lo / hi).toFixed(2)}-1x of the base), the ViT on ${o.baseRes} px. ` +
      `Test sizes below ${lo} px, from ${lo} to ${hi} px, and above ${hi} px are averaged per seed and model, and ResFormer − ViT is paired by seed. ` +
      '*zoom*: the same scene rendered larger, objects grow with the image (how the paper resizes ImageNet images); ' +
      '*canvas*: objects keep their size and the field of view grows (shrinks below the base), so only the token count changes. ' +
      `Not measured here (issue 13, item 3): test sizes up to 2.5x (this sweep stops at ${Math.max(...o.testRes)} px = ${(Math.max(...o.testRes) / o.baseRes).toFixed(1)}x), ` +
      'ResFormer without the scale-consistency loss, and GPE vs a learned embedding under multi-resolution training.',
  );
  const rows: Record<string, CellValue>[] = [];
  for (const view of views) {
    for (const region of ['below', 'within', 'above'] as const) {
      const sizes = o.testRes.filter((t) => regionOf(t, o.multiRes) === region);
      if (!sizes.length) continue;
      const perSeed = (m: string): { seed: number; value: number }[] => {
        const seeds = [...new Set(res.rows.filter((x) => x.model === m && x.view === view).map((x) => x.seed))];
        return seeds.map((seed) => {
          const xs = res.rows.filter((x) => x.model === m && x.view === view && x.seed === seed && sizes.includes(x.res)).map((x) => x.accuracy);
          return { seed, value: xs.reduce((a, b) => a + b, 0) / xs.length };
        });
      };
      const a = perSeed(vit);
      const b = perSeed(rf);
      const p = comparePaired('resformer', `${view}/${region}`, a, b, ['ViT', 'ResFormer'], 100 / o.numClasses);
      paired.push(p);
      rows.push({
        view,
        region: `${region} (${sizes.join(', ')} px)`,
        vit: meanStd(a.map((x) => x.value)),
        resformer: meanStd(b.map((x) => x.value)),
        ...pairedCells(p),
      });
      verdict[`${view}/${region}`] = { vit: meanStd(a.map((x) => x.value)), resformer: meanStd(b.map((x) => x.value)), diff: p.mean, paired: pairedSummary(p), verdict: p.verdict };
    }
  }
  r.table({
    columns: [
      { key: 'view', title: 'view', format: 'text' },
      { key: 'region', title: 'test sizes vs training', format: 'text' },
      { key: 'vit', title: 'ViT', format: 'accuracy' },
      { key: 'resformer', title: 'ResFormer', format: 'accuracy' },
      ...pairedCellColumns('ResFormer − ViT'),
    ],
    rows,
    caption: `Top-1 accuracy (%) averaged over the sizes of each region, mean ± sd over ${o.seeds.length} seed(s); the difference is paired by seed with its 95% t interval.`,
  });
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
