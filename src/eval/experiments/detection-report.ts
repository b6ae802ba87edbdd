/**
 * The detection section of the main job's report: a table like Bolya et al. 2024 Tab. 3 (box AP,
 * AP50, AP75, ms per image per ViTDet variant), the HieraDet pair of Tab. 5, the no-pretraining
 * control, the comparisons paired by seed with their 95% t intervals (src/eval/paired.ts, the rule
 * of the Hiera sections), the seed spread stated in numbers, pictures of predicted vs true boxes,
 * and `data.detection` in results.json (checked by src/eval/results-detection.ts; the paired rows
 * also go to `data.paired`, whose validator checks their arithmetic).
 */
import { barChart } from '../charts.ts';
import type { CellValue, MeanSpread, Report } from '../report.ts';
import type { DetectionComparisonData, DetectionData, DetectionVariantData } from '../results-detection.ts';
import { meanStd } from '../verdict.ts';
import { PAIRED_RULE, type PairedRowData, comparePaired, formatInterval, formatPerSeed, studentTQuantile } from '../paired.ts';
import { CONTROL, type DetRow, type DetectionExperimentOptions, type DetectionResults } from './detection.ts';

/** The comparisons the section decides, [a, b, what b − a isolates]. */
export const DETECTION_COMPARISONS: readonly [string, string, string][] = [
  ['b', 'c', 'tiled vs interpolated embedding, no relpos anywhere (the bug itself)'],
  ['a', 'd', "the paper's recipe vs the original ViTDet"],
  ['a', 'b', 'dropping relpos, interpolated embedding'],
  ['c', 'd', 'relpos in the global blocks, tiled embedding'],
  ['e', 'd', 'the pretrained embedding tiled vs an embedding learned from scratch (Tab. 4)'],
  [CONTROL, 'd', 'what pretraining carries (same detector, random init vs pretrained)'],
  ['interp', 'abswin', 'HieraDet: recursive abs-win vs the interpolated pretrained embedding (Tab. 5)'],
];

const EMBED: Record<string, [string, string]> = {
  a: ['interpolated', 'all blocks'], b: ['interpolated', 'none'], c: ['abs-win (tiled)', 'none'], d: ['abs-win (tiled)', 'global blocks'],
  e: ['learned from scratch', 'global blocks'], [CONTROL]: ['abs-win (tiled), random', 'global blocks'],
  interp: ['interpolated', '—'], abswin: ['recursive abs-win', '—'],
};

function variantData(rows: readonly DetRow[], seeds: readonly number[]): DetectionVariantData[] {
  const keys = [...new Set(rows.map((r) => r.variant))];
  return keys.map((variant) => {
    const rs = seeds.map((s) => rows.find((r) => r.variant === variant && r.seed === s)).filter((r): r is DetRow => r !== undefined);
    const first = rs[0]!;
    return {
      family: first.family, variant, title: first.title,
      ap: meanStd(rs.map((r) => r.ap)), ap50: meanStd(rs.map((r) => r.ap50)), ap75: meanStd(rs.map((r) => r.ap75)), msPerImage: meanStd(rs.map((r) => r.msPerImage)),
      perSeed: rs.map((r) => ({ seed: r.seed, ap: r.ap, ap50: r.ap50, ap75: r.ap75, msPerImage: r.msPerImage })),
    };
  });
}

type Comparison = DetectionComparisonData & { what: string; apA: MeanSpread; apB: MeanSpread; row: PairedRowData };

/** The comparisons of `DETECTION_COMPARISONS` present in `rows`, each paired by seed on box AP (chance 0). */
function comparisons(rows: readonly DetRow[], seeds: readonly number[]): Comparison[] {
  const out: Comparison[] = [];
  const perSeed = (v: string): { seed: number; value: number }[] =>
    seeds.flatMap((seed) => rows.filter((r) => r.variant === v && r.seed === seed).map((r) => ({ seed, value: r.ap })));
  for (const [a, b, what] of DETECTION_COMPARISONS) {
    const pa = perSeed(a);
    const pb = perSeed(b);
    if (!pa.length || !pb.length) continue;
    // Same seed = same pretrained weights, shared initial weights and batches (detection.ts): paired by seed.
    const row = comparePaired('detection', `${b} vs ${a}`, pa, pb, [a, b]);
    const apA = meanStd(pa.map((x) => x.value));
    const apB = meanStd(pb.map((x) => x.value));
    out.push({
      a, b, what, apA, apB, diff: row.mean, paired: { mean: row.mean, spread: row.sd }, low: row.low, high: row.high, n: row.n, verdict: row.verdict, row,
    });
  }
  return out;
}

/** Plain words for one comparison's outcome. */
function sentence(c: Comparison): string {
  const r = c.row;
  const d = `${c.diff >= 0 ? '+' : ''}${c.diff.toFixed(1)} AP paired over ${r.n} seed${r.n > 1 ? 's' : ''} (${formatPerSeed(r)}; 95% CI ${formatInterval(r)})`;
  if (c.verdict === 'both near chance') return `**${c.b} vs ${c.a}** (${c.what}): both below 5 AP: nothing was learned to compare.`;
  if (c.verdict.startsWith('one seed')) return `**${c.b} vs ${c.a}** (${c.what}): ${d}; one seed, so no verdict.`;
  if (c.verdict.startsWith('within noise')) return `**${c.b} vs ${c.a}** (${c.what}): ${d}: **the interval includes 0**; this run does not show a difference.`;
  return `**${c.b} vs ${c.a}** (${c.what}): ${d}: **${c.verdict}**.`;
}

/** Half-width of the 95% t interval of a paired mean over `n` seeds with sd `sd` (0 below 2 seeds). */
function resolvable(sd: number, n: number): number {
  return n < 2 ? 0 : (studentTQuantile(0.975, n - 1) * sd) / Math.sqrt(n);
}

/** Writes the section; returns the summary entries (`verdict`, `diff` per comparison). */
export async function detectionSection(
  r: Report, res: DetectionResults, o: DetectionExperimentOptions, sectionNo = 6, paired: PairedRowData[] = [],
): Promise<Record<string, unknown>> {
  const seeds = o.seeds;
  const g = res.grids;
  const vit = o.vit;
  r.section(`${sectionNo}. Detection: ViTDet and HieraDet from a pretrained ViT and Hiera (Bolya et al. 2024, Tables 3, 4 and 5)`);
  const preVitRows = res.pretrain.filter((p) => p.model === 'vit');
  const preVit = meanStd(preVitRows.map((p) => p.accuracy ?? NaN));
  const preVitLoss = meanStd(preVitRows.map((p) => p.finalLoss));
  const preHiera = res.pretrain.filter((p) => p.model === 'hiera');
  r.text(
    `Where the bug is structural: a plain ViT (patch ${vit.patchSize}, width ${vit.embedDim}, ${vit.depth} blocks) is pretrained with **global** attention ` +
      (o.pretrain.kind === 'mae'
        ? `as a masked autoencoder (He et al. 2022; ${Math.round(100 * (o.pretrain.mae?.maskRatio ?? 0.75))}% of the patches dropped, a ${o.pretrain.mae?.decoderDepth ?? 1}-block decoder predicting their normalised pixels; ` +
          `learned position embedding, as ViTDet's backbones are MAE-pretrained) on the synthetic shape images (${res.classNames.join(', ')}) at ${o.pretrain.res} px, a ${g.pretrain}x${g.pretrain} token grid, ` +
          `for ${o.pretrain.steps} steps of ${o.pretrain.batch} (final reconstruction loss ${preVitLoss.mean.toFixed(3)} ± ${preVitLoss.spread.toFixed(3)} over seeds ${seeds.join(', ')}). `
        : `by classifying the synthetic shapes (${res.classNames.join(', ')}) at ${o.pretrain.res} px, a ${g.pretrain}x${g.pretrain} token grid, for ${o.pretrain.steps} steps of ${o.pretrain.batch} ` +
          `(top-1 ${preVit.mean.toFixed(1)} ± ${preVit.spread.toFixed(1)}% over seeds ${seeds.join(', ')}; chance ${(100 / o.numClasses).toFixed(0)}%). `) +
      `It is then fine-tuned as a ViTDet with **window** attention (window ${g.window} = the pretrained grid, global blocks ${vit.globalBlocks.join(', ')}) ` +
      `and an FCOS head on strides 8/16/32 at ${o.det.res} px (${g.det}x${g.det} tokens, ${(g.det / g.window) ** 2} windows) on synthetic scenes of 1-6 shapes ` +
      `(circumradius ${(100 * o.det.sizeRange[0]).toFixed(0)}-${(100 * o.det.sizeRange[1]).toFixed(0)}% of the side, on textured backgrounds with clutter), ` +
      `${o.det.steps} steps of ${o.det.batch} images (lr ${o.det.lr}, ${o.det.lsj ? `large-scale jitter ${o.det.lsj.minScale ?? 0.1}-${o.det.lsj.maxScale ?? 2}` : `no augmentation: ${o.det.trainSize} distinct scenes`}). ` +
      `Interpolating the pretrained embedding hands each window a stretched 1/${(g.det / g.window) ** 2} piece of it; tiling it (absolute win) hands each window exactly the embedding the blocks were pretrained with. ` +
      `Every variant of a seed starts from the same pretrained weights and shares every other initial weight and the batch order; box AP is COCO's on ${o.det.valSize} held-out scenes; ` +
      'ms/img is the inference time per image (batch 1, warm, median of 7 runs, the better of two rounds interleaved over the seed\'s detectors so that load from other processes hits all alike) on this machine: compare within the column, not with the paper\'s A100.',
  );
  const vData = variantData(res.rows, seeds);
  const comps = comparisons(res.rows, seeds);
  const tableRows = (fam: (v: DetectionVariantData) => boolean): Record<string, CellValue>[] =>
    vData.filter(fam).map((v) => ({
      variant: v.title, embed: EMBED[v.variant]?.[0] ?? '', relpos: EMBED[v.variant]?.[1] ?? '', ap: v.ap, ap50: v.ap50, ap75: v.ap75, ms: v.msPerImage,
    }));
  const columns = [
    { key: 'variant', title: 'variant', format: 'text' as const },
    { key: 'embed', title: 'position embedding', format: 'text' as const },
    { key: 'relpos', title: 'relpos', format: 'text' as const },
    { key: 'ap', title: 'box AP', format: 'accuracy' as const },
    { key: 'ap50', title: 'AP50', format: 'accuracy' as const },
    { key: 'ap75', title: 'AP75', format: 'accuracy' as const },
    { key: 'ms', title: 'ms/img', format: 'number' as const, digits: 1 },
  ];
  r.table({ columns, rows: tableRows((v) => v.family !== 'hieradet'), caption: `ViTDet variants (Tab. 3 / Tab. 4) and the no-pretraining control: COCO box AP (%), mean ± sd over ${seeds.length} seed(s).` });
  r.chart('detection-ap', barChart({
    title: `Box AP of each ViTDet variant at ${o.det.res} px (mean ± sd over seeds)`,
    x: { field: 'variant', title: 'variant' },
    y: { field: 'ap', title: 'COCO box AP (%)' },
    rows: res.rows.filter((x) => x.family !== 'hieradet').map((x) => ({ variant: x.variant, ap: x.ap, seed: x.seed })),
    ...(seeds.length > 1 ? { spread: { from: 'seeds' as const, extent: 'stdev' as const } } : {}),
  }));
  if (res.rows.some((x) => x.family === 'hieradet')) {
    const h = o.hiera!;
    const preH = meanStd(preHiera.map((p) => p.accuracy ?? NaN));
    r.text(
      `HieraDet (Tab. 5): a small Hiera (width ${h.arch.embedDim}, stages ${JSON.stringify(h.arch.stages)}, mask unit ${h.arch.maskUnitSize?.join('x')}) with a learned absolute embedding, ` +
        `pretrained the same way at ${h.pretrain.res} px (${g.hieraPretrain?.join('x')} tokens; top-1 ${preH.mean.toFixed(1)} ± ${preH.spread.toFixed(1)}%), its blocks carried over to HieraDet ` +
        `(window attention in the same windows) and fine-tuned at ${o.det.res} px (${g.hieraDet?.join('x')} tokens) for ${h.det.steps} steps: the pretrained embedding interpolated to the new grid, ` +
        `or used as the window embedding of a recursive absolute win (tiled, plus a zero-initialised global embedding).`,
    );
    r.table({
      columns: columns.filter((c) => c.key !== 'relpos'),
      rows: tableRows((v) => v.family === 'hieradet').map(({ relpos: _r, ...rest }) => rest),
      caption: `HieraDet: COCO box AP (%), mean ± sd over ${seeds.length} seed(s).`,
    });
  }
  const apSd = Math.max(...vData.map((v) => v.ap.spread));
  const pairedSd = comps.length ? Math.max(...comps.map((c) => c.row.sd)) : 0;
  paired.push(...comps.map((c) => c.row));
  const sdList = vData.map((v) => v.ap.spread);
  r.table({
    columns: [
      { key: 'comparison', title: 'comparison (b vs a)', format: 'text' },
      { key: 'what', title: 'what it isolates', format: 'text' },
      { key: 'apA', title: 'AP of a', format: 'accuracy' },
      { key: 'apB', title: 'AP of b', format: 'accuracy' },
      { key: 'diff', title: 'b − a, mean', format: 'accuracy' },
      { key: 'perSeed', title: 'per seed', format: 'text' },
      { key: 'ci', title: '95% CI', format: 'text' },
      { key: 'verdict', title: 'paired verdict', format: 'text' },
    ],
    rows: comps.map((c) => ({
      comparison: `${c.b} vs ${c.a}`, what: c.what, apA: c.apA, apB: c.apB, diff: c.diff, perSeed: formatPerSeed(c.row), ci: formatInterval(c.row), verdict: c.verdict,
    })),
    caption: `Paired by seed (every variant of a seed starts from the same pretrained weights and shares every other initial weight and the batch order): ${PAIRED_RULE}.`,
  });
  const spreadWords = seeds.length < 2
    ? 'One seed: no spread to judge a difference by.'
    : `The seed spread: sd of box AP per variant ${Math.min(...sdList).toFixed(2)}-${apSd.toFixed(2)} points, sd of the paired differences up to ${pairedSd.toFixed(2)} points. ` +
      `With ${seeds.length} seeds the 95% interval of a paired difference has a half-width of ${resolvable(pairedSd, seeds.length).toFixed(1)} points at that sd, ` +
      `so a difference smaller than that cannot be told from noise here.`;
  r.text(['What this run shows:', '', ...comps.map((c) => `- ${sentence(c)}`), '', spreadWords].join('\n'));
  for (const p of res.pictures) r.image(`detection-${p.variant}-${res.pictures.filter((q) => q.variant === p.variant).indexOf(p)}`, p.png, p.caption);
  const data: DetectionData = {
    seeds: [...seeds], variants: vData,
    comparisons: comps.map(({ a, b, diff, paired: pr, low, high, n, verdict }) => ({ a, b, diff, paired: pr, low, high, n, verdict })),
    pretrain: res.pretrain.map((p) => ({ model: p.model, kind: p.kind, seed: p.seed, accuracy: p.accuracy, finalLoss: p.finalLoss })),
    spread: { apSd, pairedSd },
  };
  r.data('detection', data);
  const summary: Record<string, unknown> = {};
  for (const c of comps) summary[`${c.b} vs ${c.a}`] = { a: c.apA, b: c.apB, diff: c.diff, paired: { ...c.paired, low: c.low, high: c.high, n: c.n }, verdict: c.verdict };
  return summary;
}
