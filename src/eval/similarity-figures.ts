/**
 * Pictures of a window-similarity report (src/posembed/similarity.ts `similarityOf`): a heat map of
 * the first channels with the window grid, and a per-channel bar chart. Used by `anyres similarity`.
 */
import type { SimilarityReport } from '../posembed/similarity.ts';
import { heatmapGrid } from './heatmap.ts';
import { barChart, saveChart } from './charts.ts';
import { writeFileAtomicAsync } from '../util/atomic.ts';

/** Writes `<out>-heatmap.png` (first `channels` channels with the window grid) and `<out>-channels.{svg,png}`. */
export async function writeSimilarityFigures(r: SimilarityReport, out: string, channels: number, title: string): Promise<string[]> {
  const { grid } = r;
  const hw = grid.H * grid.W;
  const n = Math.min(channels, grid.C);
  const png = await heatmapGrid(
    Array.from({ length: n }, (_, c) => ({ data: grid.data.subarray(c * hw, (c + 1) * hw), shape: [grid.H, grid.W] as [number, number] })),
    { cols: Math.min(4, n), window: r.window, labels: Array.from({ length: n }, (_, c) => `ch ${c}: sim ${r.perChannel[c]!.toFixed(2)}`) },
  );
  const heat = `${out}-heatmap.png`;
  await writeFileAtomicAsync(heat, png, { createDir: true });
  const spec = barChart({
    title: `${title}: window similarity per channel (${r.window.join('x')} windows, mean ${r.similarity.toFixed(3)})`,
    x: { field: 'channel', title: 'channel' },
    y: { field: 'similarity', title: 'window similarity', domain: [-1, 1] },
    rows: r.perChannel.map((s, c) => ({ channel: c, similarity: s })),
    width: Math.max(360, Math.min(1600, 6 * grid.C)),
  });
  const chart = await saveChart(spec, `${out}-channels`);
  return [heat, chart.svgPath, chart.pngPath];
}
