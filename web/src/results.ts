/**
 * The results panel: a `results.json` written by `anyres reproduce` (src/eval/report.ts, schema
 * anyres.results/1) drawn in the page: its text, its tables, and its charts, which are Vega-Lite
 * specs with the data inline, rendered here by Vega to SVG.
 */
import { compile, type TopLevelSpec } from 'vega-lite';
import { View, parse } from 'vega';
import { byId, fileBytes, h } from './dom.ts';

interface Column { key: string; title: string; format?: string; digits?: number }
type Cell = number | string | null | { mean: number; spread: number };
type Block =
  | { kind: 'text'; md: string }
  | { kind: 'table'; columns: Column[]; rows: Record<string, Cell>[]; caption?: string }
  | { kind: 'chart'; name: string; spec: TopLevelSpec; caption?: string }
  | { kind: 'image'; name: string; caption?: string; file: string };
interface Results { schema: string; title: string; sections: { title: string | null; blocks: Block[] }[] }

const SCHEMA = 'anyres.results/1';

/** The table formats of src/eval/report.ts `formatCell`: accuracy 1 decimal, integer, number 3. */
function cellText(v: Cell | undefined, col: Column): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  const digits = col.digits ?? (col.format === 'accuracy' ? 1 : col.format === 'integer' ? 0 : 3);
  const num = (x: number): string => (col.format === 'text' ? String(x) : x.toFixed(digits));
  return typeof v === 'number' ? num(v) : `${num(v.mean)} ± ${num(v.spread)}`;
}

export interface ResultsPanel {
  show(json: unknown, source: string, runBase?: string): Promise<void>;
}

export function mountResults(root: HTMLElement): ResultsPanel {
  const fileIn = h('input', { type: 'file', id: 'results-file', accept: '.json' });
  const out = h('div', { id: 'results-out' });
  const err = h('p', { class: 'error', role: 'alert' });
  root.append(
    h('h2', {}, 'Accuracy across resolutions'),
    h('p', { class: 'lede' }, 'The charts and tables of a ', h('code', {}, 'results.json'), ' from ', h('code', {}, 'anyres reproduce'), ' (served from the run, or opened here).'),
    h('div', { class: 'controls' }, h('label', {}, 'results.json ', fileIn)),
    err,
    out,
  );

  async function show(json: unknown, source: string, runBase?: string): Promise<void> {
    err.textContent = '';
    const r = json as Results;
    if (typeof r !== 'object' || r === null || r.schema !== SCHEMA || !Array.isArray(r.sections)) {
      err.textContent = `${source}: not an anyres results file (schema ${JSON.stringify((r as { schema?: unknown } | null)?.schema ?? null)}, expected '${SCHEMA}')`;
      return;
    }
    const parts: HTMLElement[] = [h('h3', {}, r.title)];
    let charts = 0;
    for (const sec of r.sections) {
      if (sec.title) parts.push(h('h4', {}, sec.title));
      for (const b of sec.blocks) {
        if (b.kind === 'text') parts.push(h('p', {}, b.md.replace(/\*\*/g, '')));
        else if (b.kind === 'table') {
          parts.push(h('table', { class: 'results' },
            b.caption ? h('caption', {}, b.caption) : null,
            h('thead', {}, h('tr', {}, ...b.columns.map((c) => h('th', {}, c.title)))),
            h('tbody', {}, ...b.rows.map((row) => h('tr', {}, ...b.columns.map((c) => h('td', {}, cellText(row[c.key], c))))))));
        } else if (b.kind === 'chart') {
          const box = h('figure', { class: 'chart', 'data-chart': b.name });
          parts.push(box);
          try {
            const view = new View(parse(compile(b.spec).spec), { renderer: 'svg' });
            await view.initialize(box).runAsync();
            charts++;
          } catch (e) {
            box.append(h('p', { class: 'error' }, `chart ${b.name}: ${(e as Error).message}`));
          }
          if (b.caption) box.append(h('figcaption', {}, b.caption));
        } else if (b.kind === 'image' && runBase) {
          parts.push(h('figure', {}, h('img', { src: runBase + b.file, alt: b.caption ?? b.name }), b.caption ? h('figcaption', {}, b.caption) : null));
        }
      }
    }
    out.replaceChildren(...parts);
    root.dataset.charts = String(charts);
  }

  fileIn.addEventListener('change', () => {
    const f = fileIn.files?.[0];
    if (!f) return;
    void fileBytes(f).then((b) => {
      try {
        return show(JSON.parse(new TextDecoder().decode(b)), f.name);
      } catch (e) {
        err.textContent = `${f.name}: ${(e as Error).message}`;
        return undefined;
      }
    });
  });
  byId('app').dataset.resultsReady = '1';
  return { show };
}
