/**
 * Report builder: one sequence of sections (text, tables, charts, images) written three ways
 * from the same content:
 * - `report.html`: self-contained (inline CSS, charts as inline SVG, images as base64 data
 *   URIs), so it can be mailed or attached to a CI run and opened offline;
 * - `report.md`: markdown tables, charts and images saved beside it as files and linked;
 * - `results.json`: the numbers themselves (raw, unformatted), chart specs with their data,
 *   and the run info; `validateResults` checks it in CI.
 *
 * Numbers are formatted per column, the same way in HTML and markdown: accuracy with one
 * decimal, a seed aggregate as `mean ± spread` with the same decimals for both.
 *
 * @example
 * ```ts
 * const r = new Report('Resolution sweep', { seeds: [0, 1, 2] });
 * r.section('Top-1 accuracy');
 * r.text('Models trained at **224 px**, tested at each size.');
 * r.table({
 *   columns: [{ key: 'model', title: 'Model' }, { key: 'acc', title: 'Top-1 (%)', format: 'accuracy' }],
 *   rows: [{ model: 'abs-win', acc: { mean: 82.31, spread: 0.12 } }],
 *   caption: 'ImageNet-1k val, mean ± std over 3 seeds',
 * });
 * r.chart('sweep', lineChart({ ... }));
 * r.image('posembed', await heatmapGrid(channels, { cols: 4, window: [8, 8] }), 'Pos. embedding, first 4 channels');
 * await r.write('runs/sweep-2024-05-01');
 * ```
 */
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { validatePairedData } from './paired.ts';
import { renderChart, writeFileAtomic, type ChartSpec } from './charts.ts';
import { DETECTION_SECTION, validateDetectionData } from './results-detection.ts';

/** A seed aggregate: `mean` and its spread (e.g. standard deviation) across seeds. */
export interface MeanSpread {
  mean: number;
  spread: number;
}

export type CellValue = number | string | null | MeanSpread;

/**
 * - `accuracy`: fixed 1 decimal (percent points), the papers' convention;
 * - `integer`: rounded;
 * - `number`: fixed `digits` decimals (default 3);
 * - `text` (default for string cells): as given.
 */
export type ColumnFormat = 'accuracy' | 'integer' | 'number' | 'text';

export interface Column {
  key: string;
  title: string;
  format?: ColumnFormat;
  /** decimals for accuracy/number; overrides the format's default */
  digits?: number;
}

export interface TableInput {
  columns: readonly Column[];
  rows: readonly Record<string, CellValue>[];
  caption?: string;
}

export interface RunInfo {
  /** the command line that produced the report */
  command: string;
  seeds: number[];
  /** seconds from the Report's construction to write(), unless set explicitly */
  wallTimeS: number;
  /** CPU model and count, memory, platform */
  machine: string;
  node: string;
  startedAt: string;
  /** anything else worth keeping (git commit, dataset, checkpoint) */
  extra: Record<string, string>;
}

export type Block =
  | { kind: 'text'; md: string }
  | { kind: 'table'; columns: Column[]; rows: Record<string, CellValue>[]; caption?: string }
  | { kind: 'chart'; name: string; spec: ChartSpec; caption?: string; files: { svg: string; png: string } }
  | { kind: 'image'; name: string; caption?: string; file: string };

export interface Section {
  /** null for content added before the first section() call */
  title: string | null;
  blocks: Block[];
}

/** The shape of results.json. */
export interface ResultsJson {
  schema: typeof RESULTS_SCHEMA;
  title: string;
  runInfo: RunInfo;
  sections: Section[];
  /**
   * Structured numbers of a section, by key (`Report.data`), for programs that read results.json.
   * Known keys are checked by `validateResults`: `detection` (src/eval/results-detection.ts),
   * `paired` (src/eval/paired.ts).
   */
  data?: Record<string, unknown>;
}

export const RESULTS_SCHEMA = 'anyres.results/1';

const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Format one table cell for display (HTML and markdown alike). */
export function formatCell(v: CellValue | undefined, col: Column): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  const format = col.format ?? 'number';
  if (format === 'text') return typeof v === 'number' ? String(v) : `${v.mean} ± ${v.spread}`;
  const digits = col.digits ?? (format === 'accuracy' ? 1 : format === 'integer' ? 0 : 3);
  const num = (x: number): string => {
    if (!Number.isFinite(x)) return String(x);
    const s = (format === 'integer' ? Math.round(x) : x).toFixed(digits);
    // toFixed keeps the sign of values that round to zero ("-0.0"): drop it.
    return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
  };
  return typeof v === 'number' ? num(v) : `${num(v.mean)} ± ${num(v.spread)}`;
}

function describeMachine(): string {
  const c = cpus();
  const gib = totalmem() / 2 ** 30;
  return `${c[0]?.model.trim() ?? 'unknown CPU'} × ${c.length}, ${gib.toFixed(1)} GiB RAM, ${process.platform}-${process.arch}`;
}

export interface ReportOptions {
  command?: string;
  seeds?: number[];
  extra?: Record<string, string>;
  /** clock in ms, for wall time; default Date.now */
  now?: () => number;
}

export class Report {
  readonly title: string;
  private readonly sections: Section[] = [];
  private readonly info: RunInfo;
  private wallTimeFixed = false;
  private readonly startMs: number;
  private readonly now: () => number;
  private readonly assets = new Map<string, { chart?: ChartSpec; png?: Buffer }>();
  private readonly structured: Record<string, unknown> = {};

  constructor(title: string, opts: ReportOptions = {}) {
    this.title = title;
    this.now = opts.now ?? Date.now;
    this.startMs = this.now();
    this.info = {
      command: opts.command ?? [basename(process.argv[1] ?? 'node'), ...process.argv.slice(2)].join(' '),
      seeds: opts.seeds ?? [],
      wallTimeS: 0,
      machine: describeMachine(),
      node: process.version,
      startedAt: new Date(this.startMs).toISOString(),
      extra: { ...(opts.extra ?? {}) },
    };
  }

  /** Override run info fields (e.g. seeds known only later, or a wall time measured elsewhere). */
  runInfo(info: Partial<RunInfo>): this {
    Object.assign(this.info, info);
    if (info.wallTimeS !== undefined) this.wallTimeFixed = true;
    return this;
  }

  section(title: string): this {
    this.sections.push({ title, blocks: [] });
    return this;
  }

  /** A paragraph (or several) of markdown: **bold**, *em*, `code`, [links](…), `- ` lists. */
  text(md: string): this {
    this.current().blocks.push({ kind: 'text', md });
    return this;
  }

  table(t: TableInput): this {
    const keys = new Set<string>();
    for (const c of t.columns) {
      if (keys.has(c.key)) throw new Error(`Report.table: column key '${c.key}' appears twice`);
      keys.add(c.key);
    }
    t.rows.forEach((row, i) => {
      for (const k of Object.keys(row)) {
        if (!keys.has(k)) {
          throw new Error(`Report.table: row ${i} has key '${k}' that is not a column (columns: ${[...keys].join(', ')})`);
        }
      }
    });
    this.current().blocks.push({
      kind: 'table',
      columns: t.columns.map((c) => ({ ...c })),
      rows: t.rows.map((r) => ({ ...r })),
      ...(t.caption !== undefined ? { caption: t.caption } : {}),
    });
    return this;
  }

  /** A chart, rendered at write(): inline SVG in HTML, `<name>.svg`/`<name>.png` beside the markdown. */
  chart(name: string, spec: ChartSpec, caption?: string): this {
    this.claim('chart', name, { chart: spec });
    this.current().blocks.push({
      kind: 'chart',
      name,
      spec,
      files: { svg: `${name}.svg`, png: `${name}.png` },
      ...(caption !== undefined ? { caption } : {}),
    });
    return this;
  }

  /** A PNG (e.g. a heat map): base64 data URI in HTML, `<name>.png` beside the markdown. */
  image(name: string, png: Buffer, caption?: string): this {
    this.checkName('image', name);
    if (png.length < 8 || png.readUInt32BE(0) !== 0x89504e47) {
      throw new Error(`Report.image: '${name}' is not a PNG (first bytes ${png.subarray(0, 4).toString('hex')})`);
    }
    this.claim('image', name, { png });
    this.current().blocks.push({ kind: 'image', name, file: `${name}.png`, ...(caption !== undefined ? { caption } : {}) });
    return this;
  }

  /** Keeps structured numbers under `data[key]` of results.json (not rendered; tables show them). */
  data(key: string, value: unknown): this {
    if (key in this.structured) throw new Error(`Report.data: key '${key}' is already set`);
    this.structured[key] = structuredClone(value);
    return this;
  }

  /** The results.json content (wall time measured now unless set explicitly). */
  toJSON(): ResultsJson {
    const runInfo = { ...this.info, seeds: [...this.info.seeds], extra: { ...this.info.extra } };
    if (!this.wallTimeFixed) runInfo.wallTimeS = (this.now() - this.startMs) / 1000;
    const out: ResultsJson = { schema: RESULTS_SCHEMA, title: this.title, runInfo, sections: structuredClone(this.sections) };
    if (Object.keys(this.structured).length) out.data = structuredClone(this.structured);
    return out;
  }

  /**
   * Render charts and write every file into `dir` (created if missing), each via temp file +
   * rename; results.json is written last so its presence means the report is complete.
   * Returns the paths written and the problems `validateResults` finds (written anyway, so a
   * broken run can still be inspected).
   */
  async write(dir: string): Promise<{ html: string; md: string; json: string; assets: string[]; problems: string[] }> {
    const results = this.toJSON();
    const svgs = new Map<string, string>();
    const assets: string[] = [];
    for (const [name, a] of this.assets) {
      if (a.chart) {
        const r = await renderChart(a.chart);
        svgs.set(name, r.svg);
        await writeFileAtomic(join(dir, `${name}.svg`), r.svg);
        await writeFileAtomic(join(dir, `${name}.png`), await r.png());
        assets.push(join(dir, `${name}.svg`), join(dir, `${name}.png`));
      } else if (a.png) {
        await writeFileAtomic(join(dir, `${name}.png`), a.png);
        assets.push(join(dir, `${name}.png`));
      }
    }
    const paths = { md: join(dir, 'report.md'), html: join(dir, 'report.html'), json: join(dir, 'results.json') };
    await writeFileAtomic(paths.md, renderMarkdown(results));
    await writeFileAtomic(paths.html, renderHtml(results, svgs, this.pngs()));
    await writeFileAtomic(paths.json, serializeResults(results));
    return { ...paths, assets, problems: validateResults(JSON.parse(serializeResults(results))) };
  }

  private pngs(): Map<string, Buffer> {
    const m = new Map<string, Buffer>();
    for (const [name, a] of this.assets) if (a.png) m.set(name, a.png);
    return m;
  }

  private checkName(op: string, name: string): void {
    if (!ASSET_NAME.test(name)) {
      throw new Error(`Report.${op}: name '${name}' must be a file-name stem of letters, digits, '.', '_' or '-'`);
    }
    if (this.assets.has(name)) throw new Error(`Report.${op}: name '${name}' is already used by another chart or image`);
  }

  private claim(op: string, name: string, asset: { chart?: ChartSpec; png?: Buffer }): void {
    this.checkName(op, name);
    this.assets.set(name, asset);
  }

  private current(): Section {
    if (this.sections.length === 0) this.sections.push({ title: null, blocks: [] });
    return this.sections[this.sections.length - 1]!;
  }
}

/**
 * JSON cannot hold NaN or ±Infinity (JSON.stringify turns them into null, hiding the
 * failure): write them as the strings "NaN", "Infinity", "-Infinity" so the validator sees them.
 */
export function serializeResults(r: ResultsJson): string {
  return JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n';
}

// ---------------------------------------------------------------------------------------
// Markdown

function mdEscapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function isNumericColumn(c: Column): boolean {
  return (c.format ?? 'number') !== 'text';
}

function renderMarkdown(r: ResultsJson): string {
  const out: string[] = [`# ${r.title}`, '', ...runInfoLines(r.runInfo).map(([k, v]) => `- **${k}:** ${v}`), ''];
  for (const s of r.sections) {
    if (s.title !== null) out.push(`## ${s.title}`, '');
    for (const b of s.blocks) {
      if (b.kind === 'text') out.push(b.md.trim(), '');
      else if (b.kind === 'table') {
        if (b.caption) out.push(`*${b.caption}*`, '');
        out.push(`| ${b.columns.map((c) => mdEscapeCell(c.title)).join(' | ')} |`);
        out.push(`| ${b.columns.map((c) => (isNumericColumn(c) ? '---:' : ':---')).join(' | ')} |`);
        for (const row of b.rows) {
          out.push(`| ${b.columns.map((c) => mdEscapeCell(formatCell(row[c.key], c))).join(' | ')} |`);
        }
        out.push('');
      } else if (b.kind === 'chart') {
        out.push(`![${b.caption ?? b.name}](${b.files.png})`, '');
        out.push(`${b.caption ? `*${b.caption}* ` : ''}([SVG](${b.files.svg}))`, '');
      } else {
        out.push(`![${b.caption ?? b.name}](${b.file})`, '');
        if (b.caption) out.push(`*${b.caption}*`, '');
      }
    }
  }
  return out.join('\n');
}

function runInfoLines(info: RunInfo): [string, string][] {
  const lines: [string, string][] = [
    ['Command', `\`${info.command}\``],
    ['Seeds', info.seeds.length > 0 ? info.seeds.join(', ') : '—'],
    ['Wall time', formatDuration(info.wallTimeS)],
    ['Machine', info.machine],
    ['Node', info.node],
    ['Started', info.startedAt],
  ];
  for (const [k, v] of Object.entries(info.extra)) lines.push([k, v]);
  return lines;
}

/** 3723.4 s → "1 h 2 min 3 s"; under a minute with one decimal. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return String(s);
  if (s < 60) return `${s.toFixed(1)} s`;
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h > 0 ? `${h} h ${m} min ${sec} s` : `${m} min ${sec} s`;
}

// ---------------------------------------------------------------------------------------
// HTML

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Inline markdown on escaped text: `code`, **bold**, *em*, [text](url). */
function inlineMd(s: string): string {
  return esc(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, '<a href="$2">$1</a>');
}

/** The markdown subset report text uses: paragraphs, `- ` lists, `###` headings. */
export function markdownToHtml(md: string): string {
  return md
    .trim()
    .split(/\n\s*\n/)
    .map((block) => {
      const lines = block.split('\n');
      if (lines.every((l) => /^\s*[-*] /.test(l))) {
        return `<ul>${lines.map((l) => `<li>${inlineMd(l.replace(/^\s*[-*] /, ''))}</li>`).join('')}</ul>`;
      }
      const h = /^(#{1,6}) (.*)$/.exec(block);
      if (h && lines.length === 1) {
        // Report h1 = title, h2 = sections: headings inside text start at h3.
        const level = Math.min(6, h[1]!.length + 2);
        return `<h${level}>${inlineMd(h[2]!)}</h${level}>`;
      }
      return `<p>${inlineMd(lines.join(' '))}</p>`;
    })
    .join('\n');
}

/**
 * Prepare a standalone Vega SVG for inlining in HTML:
 * - drop the namespace declarations (HTML5 inline SVG needs none, and they are the only
 *   URLs in Vega's output, so the page stays free of external-looking references);
 * - prefix element ids with the chart name: Vega numbers its clip paths and gradients from
 *   1 in every chart (`clip1`, `gradient_0`), and ids must be unique across the page or the
 *   second chart's `url(#clip1)` would use the first chart's clip.
 */
export function inlineSvg(svg: string, name: string): string {
  const p = `${name}-`;
  return svg
    .replace(/\s+xmlns(:\w+)?="[^"]*"/g, '')
    .replace(/\sid="([^"]+)"/g, (_m, id: string) => ` id="${p}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${p}${id})`)
    .replace(/href="#([^"]+)"/g, (_m, id: string) => `href="#${p}${id}"`);
}

const CSS = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;margin:0;background:#fafafa}
main{max-width:960px;margin:0 auto;padding:24px 32px;background:#fff;min-height:100vh}
h1{font-size:1.7em;margin:.2em 0 .6em}h2{font-size:1.3em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e3e3e3}th{border-bottom:2px solid #999;text-align:left}
td.num,th.num{text-align:right}caption{caption-side:top;text-align:left;font-style:italic;color:#555;padding-bottom:4px}
figure{margin:1.2em 0}figcaption{font-style:italic;color:#555;margin-top:4px}
figure svg,figure img{max-width:100%;height:auto}
.runinfo{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;background:#f4f6f8;border:1px solid #dde3e8;border-radius:6px;padding:10px 14px;font-size:.92em}
.runinfo dt{font-weight:600;color:#444}.runinfo dd{margin:0;word-break:break-all}
code{background:#f1f1f1;padding:0 3px;border-radius:3px;font-size:.92em}
`;

function renderHtml(r: ResultsJson, svgs: Map<string, string>, pngs: Map<string, Buffer>): string {
  const parts: string[] = [];
  parts.push(`<h1>${esc(r.title)}</h1>`);
  parts.push(
    `<dl class="runinfo">${runInfoLines(r.runInfo)
      .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${inlineMd(v)}</dd>`)
      .join('')}</dl>`,
  );
  for (const s of r.sections) {
    if (s.title !== null) parts.push(`<h2>${esc(s.title)}</h2>`);
    for (const b of s.blocks) {
      if (b.kind === 'text') parts.push(markdownToHtml(b.md));
      else if (b.kind === 'table') {
        const cls = (c: Column): string => (isNumericColumn(c) ? ' class="num"' : '');
        parts.push(
          `<table>${b.caption ? `<caption>${esc(b.caption)}</caption>` : ''}` +
            `<thead><tr>${b.columns.map((c) => `<th${cls(c)}>${esc(c.title)}</th>`).join('')}</tr></thead><tbody>` +
            b.rows
              .map((row) => `<tr>${b.columns.map((c) => `<td${cls(c)}>${esc(formatCell(row[c.key], c))}</td>`).join('')}</tr>`)
              .join('') +
            `</tbody></table>`,
        );
      } else if (b.kind === 'chart') {
        parts.push(
          `<figure>${inlineSvg(svgs.get(b.name)!, b.name)}${b.caption ? `<figcaption>${esc(b.caption)}</figcaption>` : ''}</figure>`,
        );
      } else {
        const data = pngs.get(b.name)!.toString('base64');
        parts.push(
          `<figure><img alt="${esc(b.caption ?? b.name)}" src="data:image/png;base64,${data}">` +
            `${b.caption ? `<figcaption>${esc(b.caption)}</figcaption>` : ''}</figure>`,
        );
      }
    }
  }
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(r.title)}</title><style>${CSS}</style></head>\n<body><main>\n${parts.join('\n')}\n</main></body></html>\n`
  );
}

// ---------------------------------------------------------------------------------------
// Validation

const NON_FINITE_MARKERS = new Set(['NaN', 'Infinity', '-Infinity']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Check a parsed results.json: the structure, every table has columns and at least one row,
 * every number anywhere is finite (NaN / ±Infinity, written as strings by `serializeResults`,
 * are caught too). Returns the problems found, each with its JSON path; empty means valid.
 */
export function validateResults(json: unknown): string[] {
  const problems: string[] = [];
  if (!isRecord(json)) return ['results: expected a JSON object'];
  if (json['schema'] !== RESULTS_SCHEMA) problems.push(`schema: expected '${RESULTS_SCHEMA}', got ${JSON.stringify(json['schema'])}`);
  if (typeof json['title'] !== 'string') problems.push('title: expected a string');
  if (!isRecord(json['runInfo'])) problems.push('runInfo: expected an object');
  const sections = json['sections'];
  if (!Array.isArray(sections)) {
    problems.push('sections: expected an array');
  } else {
    sections.forEach((s: unknown, si) => {
      const blocks = isRecord(s) ? s['blocks'] : undefined;
      if (!Array.isArray(blocks)) {
        problems.push(`sections[${si}].blocks: expected an array`);
        return;
      }
      blocks.forEach((b: unknown, bi) => {
        const path = `sections[${si}].blocks[${bi}]`;
        if (!isRecord(b) || b['kind'] !== 'table') return;
        const label = typeof b['caption'] === 'string' ? ` ('${b['caption']}')` : '';
        const cols = b['columns'];
        const rows = b['rows'];
        if (!Array.isArray(cols) || cols.length === 0) problems.push(`${path}${label}: table has no columns`);
        if (!Array.isArray(rows) || rows.length === 0) problems.push(`${path}${label}: table has no rows`);
      });
    });
  }
  if (json['data'] !== undefined) {
    const data = json['data'];
    if (!isRecord(data)) problems.push('data: expected an object');
    else if (data['detection'] !== undefined) problems.push(...validateDetectionData(data['detection']));
    if (isRecord(data) && data['paired'] !== undefined) problems.push(...validatePairedData(data['paired']));
  }
  // A detection section's numbers must be there to check (the main job's section writes them).
  const detSection = Array.isArray(sections) && sections.some((s: unknown) => isRecord(s) && typeof s['title'] === 'string' && DETECTION_SECTION.test(s['title']));
  if (detSection && !(isRecord(json['data']) && json['data']['detection'] !== undefined)) {
    problems.push('data.detection: the report has a detection section but results.json holds no data.detection');
  }
  // Every number in the document, wherever it sits (table cells, mean/spread, chart data,
  // run info), must be finite.
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) problems.push(`${path}: non-finite number ${v}`);
    } else if (typeof v === 'string') {
      if (NON_FINITE_MARKERS.has(v)) problems.push(`${path}: non-finite number ${v}`);
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`));
    } else if (isRecord(v)) {
      // Prose may legitimately say "NaN"; only data is checked.
      if (v['kind'] === 'text') return;
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    }
  };
  walk(json, '');
  return problems;
}

/** Read and validate a results.json file (for CI); returns the problems, empty when valid. */
export async function validateResultsFile(path: string): Promise<string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    return [`${path}: cannot read as JSON: ${(e as Error).message}`];
  }
  return validateResults(parsed).map((p) => `${path}: ${p}`);
}
