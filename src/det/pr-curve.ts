/**
 * Precision-recall curves from an accumulated COCO evaluation (`cocoEval(...).precision`,
 * [T, R, K, A, M]), as data rows and as a line chart (src/eval/charts.ts). At each of the 101
 * recall points the precision is averaged over the categories that have ground truth (entries
 * > -1), and for the 0.50:0.95 curve over the IoU thresholds as well, the averaging behind
 * COCO's AP (the area under the 0.50:0.95 curve, on the recall grid, is stats[0]).
 *
 * @example
 * const r = cocoEval(gt, dt, 'bbox');
 * await saveChart(prCurveChart(r, 'box PR'), 'runs/x/pr');
 */
import { type ChartSpec, type Datum, lineChart } from '../eval/charts.ts';
import type { CocoEvalResult } from './coco-eval.ts';

export interface PrCurveOptions {
  /** IoU thresholds to draw, each its own curve; null = the mean over all (0.50:0.95). Default [null, 0.5, 0.75]. */
  iouThrs?: (number | null)[];
  /** area range label; default 'all' */
  area?: string;
  /** maxDets value; default the largest */
  maxDets?: number;
  /** only this category id; default the mean over categories */
  categoryId?: number;
}

/** Rows {curve, recall, precision}; precision is null at recall points where no category has gt. */
export function precisionRecallRows(r: CocoEvalResult, o: PrCurveOptions = {}): Datum[] {
  const [T, R, K, A, M] = r.counts;
  const p = r.params;
  const a = p.areaRngLbl.indexOf(o.area ?? 'all');
  if (a < 0) throw new Error(`precisionRecallRows: area '${o.area}' is not one of ${p.areaRngLbl.join(', ')}`);
  const maxDets = o.maxDets ?? p.maxDets[M - 1]!;
  const m = p.maxDets.indexOf(maxDets);
  if (m < 0) throw new Error(`precisionRecallRows: maxDets ${maxDets} is not one of ${p.maxDets.join(', ')}`);
  let ks = Array.from({ length: K }, (_, k) => k);
  if (o.categoryId !== undefined) {
    const k = r.categoryIds.indexOf(o.categoryId);
    if (k < 0) throw new Error(`precisionRecallRows: category ${o.categoryId} is not evaluated (categories: ${r.categoryIds.join(', ')})`);
    ks = [k];
  }
  const rows: Datum[] = [];
  for (const thr of o.iouThrs ?? [null, 0.5, 0.75]) {
    const ts = thr === null ? Array.from({ length: T }, (_, t) => t) : p.iouThrs.flatMap((v, t) => (v === thr ? [t] : []));
    if (ts.length === 0) throw new Error(`precisionRecallRows: IoU threshold ${thr} is not one of ${p.iouThrs.join(', ')}`);
    const curve = thr === null ? `IoU=${p.iouThrs[0]!.toFixed(2)}:${p.iouThrs[T - 1]!.toFixed(2)}` : `IoU=${thr.toFixed(2)}`;
    for (let ri = 0; ri < R; ri++) {
      let s = 0, n = 0;
      for (const t of ts) for (const k of ks) {
        const v = r.precision[(((t * R + ri) * K + k) * A + a) * M + m]!;
        if (v > -1) { s += v; n++; }
      }
      rows.push({ curve, recall: p.recThrs[ri]!, precision: n ? s / n : null });
    }
  }
  return rows;
}

/** A line chart of the curves of `precisionRecallRows`. */
export function prCurveChart(r: CocoEvalResult, title: string, o: PrCurveOptions = {}): ChartSpec {
  const rows = precisionRecallRows(r, o).filter((d) => d.precision !== null);
  if (rows.length === 0) throw new Error(`prCurveChart: no category has ground truth in area '${o.area ?? 'all'}', so there is no curve to draw`);
  return lineChart({
    title,
    x: { field: 'recall', title: 'recall' },
    y: { field: 'precision', title: 'precision', domain: [0, 1] },
    color: { field: 'curve', title: 'IoU' },
    rows,
    points: false,
  });
}
