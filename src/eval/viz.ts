/**
 * Drawing and reporting for evaluation runs: charts (Vega-Lite → SVG/PNG), position-embedding
 * heat maps with the window grid, self-contained reports, progress bars.
 */
export {
  barChart,
  lineChart,
  renderChart,
  saveChart,
  svgToPng,
  type BarChartOptions,
  type ChartSpec,
  type ColorBy,
  type Datum,
  type LineChartOptions,
  type RenderedChart,
  type Spread,
  type XAxis,
  type XScale,
  type YAxis,
} from './charts.ts';
export {
  defaultScale,
  divergingColor,
  heatmapGrid,
  heatmapPng,
  heatmapRaster,
  maxAbs,
  type Channel,
  type HeatmapGridOptions,
  type HeatmapOptions,
  type Rgb,
  type RgbaImage,
} from './heatmap.ts';
export {
  formatCell,
  formatDuration,
  inlineSvg,
  markdownToHtml,
  Report,
  RESULTS_SCHEMA,
  serializeResults,
  validateResults,
  validateResultsFile,
  type Block,
  type CellValue,
  type Column,
  type ColumnFormat,
  type MeanSpread,
  type ReportOptions,
  type ResultsJson,
  type RunInfo,
  type Section,
  type TableInput,
} from './report.ts';
export {
  formatEta,
  formatMetric,
  progress,
  type Metrics,
  type Progress,
  type ProgressOptions,
  type ProgressStream,
} from '../util/progress.ts';
