/**
 * Report pieces of the abs-win experiment that go beyond the tables of src/eval/reproduce.ts:
 * the paired cells of a comparison row (per-seed differences, 95% interval, verdict;
 * src/eval/paired.ts) and the global-size ablation (Bolya et al. 2024, Tab. 2).
 */
import type { CellValue, Column, Report } from '../report.ts';
import { lineChart } from '../charts.ts';
import { meanStd } from '../verdict.ts';
import { type PairedRowData, comparePaired, formatInterval, formatPerSeed } from '../paired.ts';
import type { AbsWinExperimentOptions, AbsWinResults } from './abswin.ts';

/** The table cells of a paired row: mean difference, per-seed differences, interval, verdict. */
export function pairedCells(p: PairedRowData): Record<'diff' | 'perSeed' | 'ci' | 'verdict', CellValue> {
  return { diff: p.mean, perSeed: formatPerSeed(p), ci: formatInterval(p), verdict: p.verdict };
}

/** The columns of `pairedCells`, `what` naming the difference (e.g. 'abs-win − absolute'). */
export function pairedCellColumns(what: string): Column[] {
  return [
    { key: 'diff', title: `${what}, mean`, format: 'accuracy' },
    { key: 'perSeed', title: 'per seed', format: 'text' },
    { key: 'ci', title: '95% CI', format: 'text' },
    { key: 'verdict', title: 'paired verdict' },
  ];
}

/** What results.json keeps of a paired verdict entry (`summary` / verdict records). */
export function pairedSummary(p: PairedRowData): { n: number; mean: number; sd: number; low: number | null; high: number | null } {
  return { n: p.n, mean: p.mean, sd: p.sd, low: p.low, high: p.high };
}

const sizeLabel = (g: readonly number[]): string => g.join('x');

/**
 * Section 3b (after the pictures of section 3): the global-size ablation. Each size is compared, paired by seed, with the trained
 * size (the control); the rows are pushed to `paired` for results.json.
 */
export function globalSizeSection(r: Report, res: AbsWinResults, o: AbsWinExperimentOptions, paired: PairedRowData[]): Record<string, unknown> {
  const verdict: Record<string, unknown> = {};
  const ab = o.globalSizes;
  if (!ab || !res.globalSize.length) return verdict;
  const control = o.arch.globalPosSize ?? [4, 4];
  const sizes = [...new Map(res.globalSize.map((x) => [sizeLabel(x.global), x.global])).values()].sort((a, b) => a[0] * a[1] - b[0] * b[1]);
  r.section('3b. Size of the global embedding (Bolya et al. 2024, Tab. 2)');
  r.text(
    `Abs-win Hiera with global embeddings of ${sizes.map(sizeLabel).join(', ')} tokens (the base grid is ${sizeLabel(res.baseGrid)}, the window ${sizeLabel(res.window)}). ` +
      `To fit the time budget this ablation is warm-started, not trained from scratch as in the paper: each seed's trained abs-win model of section 1 (global ${sizeLabel(control)}) ` +
      `has its global embedding resampled to each size, keeps everything else, and every variant (the ${sizeLabel(control)} control included) is trained ${ab.train.steps} more steps ` +
      `of ${ab.train.batch} images at ${o.baseRes} px with the same seed (same batches), then evaluated directly (zoom view). ` +
      `A global embedding as large as the base grid can learn a pattern as fine as the window part, which interpolation then misaligns; a small one can only be smooth. ` +
      'Differences are paired by seed against the control.',
  );
  const cols: Column[] = [
    { key: 'res', title: 'test px', format: 'integer' },
    ...sizes.map((g) => ({ key: `g${sizeLabel(g)}`, title: `global ${sizeLabel(g)}`, format: 'accuracy' as const })),
  ];
  const others = sizes.filter((g) => sizeLabel(g) !== sizeLabel(control));
  for (const g of others) cols.push({ key: `d${sizeLabel(g)}`, title: `${sizeLabel(g)} − ${sizeLabel(control)} (95% CI)`, format: 'text' }, { key: `v${sizeLabel(g)}`, title: `${sizeLabel(g)} vs ${sizeLabel(control)}` });
  const rows: Record<string, CellValue>[] = [];
  const bySeed = (g: readonly number[], rr: number): { seed: number; value: number }[] =>
    res.globalSize.filter((x) => sizeLabel(x.global) === sizeLabel(g) && x.res === rr).map((x) => ({ seed: x.seed, value: x.accuracy }));
  for (const rr of ab.evalRes) {
    const row: Record<string, CellValue> = { res: rr };
    for (const g of sizes) row[`g${sizeLabel(g)}`] = meanStd(bySeed(g, rr).map((x) => x.value));
    for (const g of others) {
      const p = comparePaired('global-size', `${sizeLabel(g)}-vs-${sizeLabel(control)}/${rr}`, bySeed(control, rr), bySeed(g, rr), [`global ${sizeLabel(control)}`, `global ${sizeLabel(g)}`], 100 / o.numClasses);
      paired.push(p);
      const sign = p.mean >= 0 ? '+' : '−';
      row[`d${sizeLabel(g)}`] = `${sign}${Math.abs(p.mean).toFixed(1)} ${formatInterval(p)}`;
      row[`v${sizeLabel(g)}`] = p.verdict;
      verdict[`${sizeLabel(g)}-vs-${sizeLabel(control)}/${rr}`] = { diff: p.mean, paired: pairedSummary(p), verdict: p.verdict };
    }
    rows.push(row);
  }
  r.table({ columns: cols, rows, caption: `Top-1 accuracy (%), mean ± sd over ${o.seeds.length} seed(s); differences are means of per-seed differences with their 95% t interval.` });
  r.chart('global-size', lineChart({
    title: 'Abs-win Hiera: accuracy vs test size by size of the global embedding (warm-started)',
    x: { field: 'res', title: 'test resolution (px)' },
    y: { field: 'accuracy', title: 'top-1 accuracy (%)' },
    color: { field: 'global', title: 'global embedding' },
    rows: res.globalSize.map((x) => ({ global: sizeLabel(x.global), res: x.res, accuracy: x.accuracy, seed: x.seed })),
    spread: o.seeds.length > 1 ? { from: 'seeds', extent: 'stdev' } : undefined,
  }));
  return verdict;
}
