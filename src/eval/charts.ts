/**
 * Charts for reports: typed helpers that build declarative Vega-Lite specs, compiled to
 * Vega and rendered headless to SVG, then rasterised to PNG with sharp (librsvg).
 *
 * Why Vega-Lite rather than hand-drawn SVG: the resolution sweeps of the papers
 * (Bolya et al. 2024 Fig. 4/Table 2; Tian et al. 2023 Fig. 1) are "accuracy vs test
 * resolution, one line per model, mean ± spread over seeds". Vega-Lite expresses that as
 * a line layer over an errorband layer that aggregates the raw per-seed rows itself, so
 * the numbers drawn are computed from exactly the rows stored in results.json.
 *
 * Rendering runs without a DOM and without node-canvas: `renderer: 'none'` + `toSVG()`
 * uses Vega's string SVG renderer. Without canvas, Vega estimates text widths from a
 * per-character table instead of measuring them; labels may be laid out a few pixels
 * off, which is harmless for reports.
 *
 * @example
 * ```ts
 * const spec = lineChart({
 *   title: 'Top-1 vs test resolution',
 *   x: { field: 'res', title: 'Resolution (px)', scale: 'log2' },
 *   y: { field: 'acc', title: 'Top-1 (%)' },
 *   color: { field: 'model', title: 'Model' },
 *   rows, // one row per (model, res, seed)
 *   spread: { from: 'seeds', extent: 'stdev', mark: 'band' },
 * });
 * await saveChart(spec, 'out/sweep'); // out/sweep.svg, out/sweep.png
 * ```
 */
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { writeFileAtomicAsync } from '../util/atomic.ts';

/** A Vega-Lite top-level spec, as accepted by `vega-lite`'s compiler. */
export type ChartSpec = vl.TopLevelSpec;

/** One data row of a chart (inline data only: charts never fetch anything). */
export type Datum = Record<string, string | number | boolean | null>;

/** Continuous x axes: linear, log base 2 (resolution doublings) or log base 10; or categorical. */
export type XScale = 'linear' | 'log2' | 'log10' | 'ordinal';

export interface XAxis {
  field: string;
  title: string;
  /** default 'linear'; 'ordinal' treats x values as evenly spaced categories */
  scale?: XScale;
}

export interface YAxis {
  field: string;
  title: string;
  /** fixed [min, max]; otherwise fitted to the data without forcing 0 in */
  domain?: readonly [number, number];
  /** d3-format string for tick labels, e.g. '.1f' */
  format?: string;
}

export interface ColorBy {
  field: string;
  title?: string;
}

/**
 * How to show spread across seeds.
 * - `from: 'seeds'`: `rows` hold one row per seed; the line/bar shows the mean of `y.field`
 *   over rows sharing (x, color), the band/bars show `extent` of the same rows
 *   (stdev = mean ± 1 standard deviation; stderr = mean ± standard error; ci = 95 %
 *   bootstrap interval; iqr = quartiles).
 * - `from: 'fields'`: rows are already aggregated; `lower`/`upper` hold the interval ends.
 */
export type Spread =
  | { from: 'seeds'; extent?: 'stdev' | 'stderr' | 'ci' | 'iqr'; mark?: 'band' | 'bars' }
  | { from: 'fields'; lower: string; upper: string; mark?: 'band' | 'bars' };

export interface LineChartOptions {
  title: string;
  x: XAxis;
  y: YAxis;
  color?: ColorBy;
  rows: readonly Datum[];
  spread?: Spread;
  /** draw a dot at every data point (default true: sweeps have few x values) */
  points?: boolean;
  width?: number;
  height?: number;
}

export interface BarChartOptions {
  title: string;
  /** categorical axis (bars) */
  x: { field: string; title: string };
  y: YAxis;
  /** when set (and different from x), bars are grouped side by side within each x */
  color?: ColorBy;
  rows: readonly Datum[];
  spread?: Spread;
  width?: number;
  height?: number;
}

const DEFAULT_WIDTH = 360;
const DEFAULT_HEIGHT = 240;

function checkRows(op: string, rows: readonly Datum[], fields: readonly string[]): void {
  if (rows.length === 0) {
    throw new Error(`${op}: rows is empty; a chart needs at least one data row`);
  }
  for (const f of fields) {
    const i = rows.findIndex((r) => !(f in r));
    if (i >= 0) {
      throw new Error(
        `${op}: row ${i} has no field '${f}' (row keys: ${Object.keys(rows[i]!).join(', ')})`,
      );
    }
  }
}

function spreadFields(spread: Spread | undefined): string[] {
  return spread?.from === 'fields' ? [spread.lower, spread.upper] : [];
}

function xEncoding(x: XAxis, rows: readonly Datum[]): Record<string, unknown> {
  const scale = x.scale ?? 'linear';
  if (scale === 'ordinal') return { field: x.field, type: 'ordinal', title: x.title };
  const enc: Record<string, unknown> = { field: x.field, type: 'quantitative', title: x.title };
  if (scale === 'log2') {
    // Default log ticks (250, 300, ...) hide the sweep's own resolutions (224, 448, 896):
    // tick exactly at the x values present.
    const ticks = [...new Set(rows.map((r) => r[x.field]).filter((v): v is number => typeof v === 'number'))];
    enc['scale'] = { type: 'log', base: 2, nice: false };
    enc['axis'] = { values: ticks.sort((a, b) => a - b) };
  } else if (scale === 'log10') enc['scale'] = { type: 'log', base: 10 };
  else enc['scale'] = { zero: false };
  return enc;
}

function yScale(y: YAxis): Record<string, unknown> {
  return y.domain ? { domain: [y.domain[0], y.domain[1]], zero: false } : { zero: false };
}

function yAxis(y: YAxis): Record<string, unknown> | undefined {
  return y.format ? { format: y.format } : undefined;
}

/** The y encoding of the central mark: the per-group mean when rows are per-seed. */
function centreY(y: YAxis, spread: Spread | undefined): Record<string, unknown> {
  const enc: Record<string, unknown> = {
    field: y.field,
    type: 'quantitative',
    title: y.title,
    scale: yScale(y),
  };
  if (spread?.from === 'seeds') enc['aggregate'] = 'mean';
  const axis = yAxis(y);
  if (axis) enc['axis'] = axis;
  return enc;
}

/** The errorband / errorbar layer's mark and y encodings. */
function spreadLayer(
  y: YAxis,
  spread: Spread,
  kind: 'errorband' | 'errorbar',
  scale: Record<string, unknown>,
): { mark: Record<string, unknown>; y: Record<string, unknown>; y2?: Record<string, unknown> } {
  if (spread.from === 'seeds') {
    return {
      mark: { type: kind, extent: spread.extent ?? 'stdev' },
      y: { field: y.field, type: 'quantitative', title: y.title, scale },
    };
  }
  return {
    mark: { type: kind },
    y: { field: spread.lower, type: 'quantitative', title: y.title, scale },
    y2: { field: spread.upper },
  };
}

function colorEncoding(color: ColorBy | undefined): Record<string, unknown> {
  return color ? { color: { field: color.field, type: 'nominal', title: color.title ?? color.field } } : {};
}

/**
 * Line chart, one line per `color` value; with `spread`, mean ± spread across seeds as a
 * shaded band (default) or error bars.
 */
export function lineChart(o: LineChartOptions): ChartSpec {
  checkRows('lineChart', o.rows, [o.x.field, o.y.field, ...(o.color ? [o.color.field] : []), ...spreadFields(o.spread)]);
  const color = colorEncoding(o.color);
  const x = xEncoding(o.x, o.rows);
  const line = {
    mark: { type: 'line', point: o.points ?? true },
    encoding: { x, y: centreY(o.y, o.spread), ...color },
  };
  const layers: Record<string, unknown>[] = [];
  if (o.spread) {
    const s = spreadLayer(o.y, o.spread, o.spread.mark === 'bars' ? 'errorbar' : 'errorband', yScale(o.y));
    layers.push({
      mark: s.mark,
      encoding: { x, y: s.y, ...(s.y2 ? { y2: s.y2 } : {}), ...color },
    });
  }
  layers.push(line);
  return asSpec({
    title: o.title,
    width: o.width ?? DEFAULT_WIDTH,
    height: o.height ?? DEFAULT_HEIGHT,
    data: { values: o.rows.map((r) => ({ ...r })) },
    layer: layers,
  });
}

/**
 * Bar chart over a categorical x; grouped side by side by `color` when given; with
 * `spread`, bars show the mean and error bars the spread across seeds.
 */
export function barChart(o: BarChartOptions): ChartSpec {
  checkRows('barChart', o.rows, [o.x.field, o.y.field, ...(o.color ? [o.color.field] : []), ...spreadFields(o.spread)]);
  const color = colorEncoding(o.color);
  const grouped = o.color !== undefined && o.color.field !== o.x.field;
  const offset = grouped ? { xOffset: { field: o.color!.field, type: 'nominal' } } : {};
  const x = { field: o.x.field, type: 'nominal', title: o.x.title, axis: { labelAngle: 0 } };
  const yBar = centreY(o.y, o.spread);
  // Bars grow from 0 unless the caller fixes a domain: a bar's length is its value.
  if (!o.y.domain) yBar['scale'] = { zero: true };
  const barScale = yBar['scale'] as Record<string, unknown>;
  const layers: Record<string, unknown>[] = [{ mark: { type: 'bar' }, encoding: { x, y: yBar, ...color, ...offset } }];
  if (o.spread) {
    const s = spreadLayer(o.y, o.spread, 'errorbar', barScale);
    layers.push({
      mark: { ...s.mark, color: 'black' },
      encoding: { x, y: s.y, ...(s.y2 ? { y2: s.y2 } : {}), ...offset },
    });
  }
  return asSpec({
    title: o.title,
    width: o.width ?? DEFAULT_WIDTH,
    height: o.height ?? DEFAULT_HEIGHT,
    data: { values: o.rows.map((r) => ({ ...r })) },
    layer: layers,
  });
}

/**
 * The helpers build specs as plain objects (the encodings vary with the options, which
 * Vega-Lite's deep union types cannot follow); the compiler validates them in `renderChart`.
 */
function asSpec(o: Record<string, unknown>): ChartSpec {
  return o as unknown as ChartSpec;
}

/**
 * A Vega loader that refuses every fetch (report charts are built from inline data only)
 * and records what was asked for: Vega reports a failed load only as a warning.
 */
function offlineLoader(refused: string[]): vega.Loader {
  const refuse = (uri: string): Promise<never> => {
    refused.push(uri);
    return Promise.reject(new Error(`offline: refused to load '${uri}'`));
  };
  return {
    ...vega.loader(),
    load: refuse,
    sanitize: refuse,
    http: refuse,
    file: refuse,
  };
}

// Methods are arrow properties: vega calls the logger's methods detached from the object.
class ChartLog {
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  private lvl = 2;
  level = (l?: number): number => {
    if (l !== undefined) this.lvl = l;
    return this.lvl;
  };
  error = (...a: unknown[]): this => {
    this.errors.push(a.map((x) => (x instanceof Error ? x.message : String(x))).join(' '));
    return this;
  };
  warn = (...a: unknown[]): this => {
    this.warnings.push(a.map(String).join(' '));
    return this;
  };
  info = (): this => this;
  debug = (): this => this;
}

export interface RenderedChart {
  /** standalone SVG document */
  svg: string;
  /** vega-lite compiler warnings (e.g. a field type it had to guess), for the caller to show */
  warnings: string[];
  /** rasterise the SVG; `scale` 2 (default) gives a crisp image on high-DPI screens */
  png(scale?: number): Promise<Buffer>;
}

/** Compile a Vega-Lite spec and render it headless to SVG (PNG on demand). */
export async function renderChart(spec: ChartSpec): Promise<RenderedChart> {
  const log = new ChartLog();
  let compiled: vega.Spec;
  try {
    compiled = vl.compile(spec, { logger: log }).spec;
  } catch (e) {
    throw new Error(`renderChart: vega-lite could not compile the spec: ${(e as Error).message}`);
  }
  if (log.errors.length > 0) {
    throw new Error(`renderChart: vega-lite reported errors: ${log.errors.join('; ')}`);
  }
  const refused: string[] = [];
  const view = new vega.View(vega.parse(compiled), {
    renderer: 'none',
    loader: offlineLoader(refused),
    logger: log,
    logLevel: vega.Warn,
  });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  if (refused.length > 0) {
    throw new Error(
      `renderChart: spec asks to load ${refused.map((u) => `'${u}'`).join(', ')}; charts render offline, pass data inline as data.values`,
    );
  }
  // Vega's dataflow logs (rather than throws) errors such as a failed data load and then
  // renders an empty chart; a report must not silently contain one.
  if (log.errors.length > 0) {
    throw new Error(`renderChart: vega failed while rendering: ${log.errors.join('; ')}`);
  }
  return {
    svg,
    warnings: log.warnings,
    png: (scale = 2) => svgToPng(svg, scale),
  };
}

/** Rasterise an SVG string; librsvg renders at 72 dpi for scale 1. */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  if (!(scale > 0 && scale <= 8)) {
    throw new Error(`svgToPng: scale must be in (0, 8], got ${scale}`);
  }
  return sharp(Buffer.from(svg), { density: 72 * scale }).png().toBuffer();
}

/** Render `spec` and write `<basePath>.svg` and `<basePath>.png`, each atomically. */
export async function saveChart(
  spec: ChartSpec,
  basePath: string,
  scale = 2,
): Promise<{ svgPath: string; pngPath: string }> {
  const r = await renderChart(spec);
  const svgPath = `${basePath}.svg`;
  const pngPath = `${basePath}.png`;
  await writeFileAtomicAsync(svgPath, r.svg, { createDir: true });
  await writeFileAtomicAsync(pngPath, await r.png(scale), { createDir: true });
  return { svgPath, pngPath };
}
