import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lineChart } from '../../src/eval/charts.ts';
import { heatmapPng } from '../../src/eval/heatmap.ts';
import {
  formatCell,
  formatDuration,
  inlineSvg,
  markdownToHtml,
  Report,
  validateResults,
  validateResultsFile,
  type ResultsJson,
} from '../../src/eval/report.ts';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'anyres-report-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function sampleReport(): Report {
  let t = 1_000_000;
  const r = new Report('Resolution sweep', { command: 'anyres sweep --model tiny', seeds: [0, 1], now: () => (t += 61_500) });
  r.text('Intro before any section with `code`.');
  r.section('Accuracy');
  r.text('Trained at **224 px**; tested at each size.\n\n- one\n- two');
  r.table({
    caption: 'Top-1, mean ± std over 2 seeds',
    columns: [
      { key: 'model', title: 'Model', format: 'text' },
      { key: 'res', title: 'Res', format: 'integer' },
      { key: 'acc', title: 'Top-1 (%)', format: 'accuracy' },
      { key: 'loss', title: 'Loss' },
    ],
    rows: [
      { model: 'abs-win', res: 224, acc: { mean: 82.345, spread: 0.126 }, loss: 0.81234 },
      { model: 'interp', res: 448, acc: { mean: 70.06, spread: 1.0 }, loss: null },
    ],
  });
  r.chart(
    'sweep',
    lineChart({
      title: 'Top-1 vs resolution',
      x: { field: 'res', title: 'Resolution (px)' },
      y: { field: 'acc', title: 'Top-1 (%)' },
      color: { field: 'model' },
      rows: [
        { model: 'a', res: 224, acc: 80 },
        { model: 'a', res: 448, acc: 78 },
      ],
    }),
    'Sweep chart',
  );
  return r;
}

test('number formatting is consistent: accuracy 1 decimal, mean ± spread, integers, missing', () => {
  assert.equal(formatCell(82.345, { key: 'a', title: 'a', format: 'accuracy' }), '82.3');
  assert.equal(formatCell({ mean: 82.36, spread: 0.04 }, { key: 'a', title: 'a', format: 'accuracy' }), '82.4 ± 0.0');
  assert.equal(formatCell(-0.01, { key: 'a', title: 'a', format: 'accuracy' }), '0.0');
  assert.equal(formatCell(1234.6, { key: 'n', title: 'n', format: 'integer' }), '1235');
  assert.equal(formatCell(0.5, { key: 'l', title: 'l' }), '0.500');
  assert.equal(formatCell(0.5, { key: 'l', title: 'l', digits: 1 }), '0.5');
  assert.equal(formatCell(null, { key: 'l', title: 'l' }), '—');
  assert.equal(formatDuration(12.34), '12.3 s');
  assert.equal(formatDuration(3723.4), '1 h 2 min 3 s');
});

test('markdown subset to HTML escapes and formats', () => {
  assert.equal(markdownToHtml('a **b** <x>'), '<p>a <strong>b</strong> &lt;x&gt;</p>');
  assert.equal(markdownToHtml('- x\n- *y*'), '<ul><li>x</li><li><em>y</em></li></ul>');
  assert.equal(markdownToHtml('# Sub'), '<h3>Sub</h3>');
});

test('report writes self-contained html, md with assets beside, and valid results.json', async () => {
  await withTempDir(async (dir) => {
    const r = sampleReport();
    const png = await heatmapPng({ data: Float32Array.of(-1, 0, 1, 0.5), shape: [2, 2] }, { scale: 4, window: [1, 1] });
    r.section('Position embeddings').image('posembed', png, 'Channel 0 with the window grid');
    const out = await r.write(join(dir, 'run'));
    assert.deepEqual(out.problems, []);
    const files = (await readdir(join(dir, 'run'))).sort();
    assert.deepEqual(files, ['posembed.png', 'report.html', 'report.md', 'results.json', 'sweep.png', 'sweep.svg']);

    const html = await readFile(out.html, 'utf8');
    assert.ok(html.startsWith('<!doctype html>'));
    // Self-contained: no URL of any scheme, no reference to a sibling file.
    assert.doesNotMatch(html, /https?:|ftp:|file:|\/\/[a-z]/i);
    assert.doesNotMatch(html, /<link|<script|url\((?!#)/i);
    for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) {
      assert.match(m[1]!, /^data:image\/png;base64,/, `resource ${m[1]!.slice(0, 40)} is inline`);
    }
    assert.match(html, /<style>/);
    assert.match(html, /<svg[^>]*>/, 'chart inlined as SVG');
    assert.ok(html.includes('Top-1 vs resolution') && html.includes('Resolution (px)'));
    assert.ok(html.includes(`data:image/png;base64,${png.toString('base64')}`), 'heat map embedded byte for byte');
    assert.ok(html.includes('<td class="num">82.3 ± 0.1</td>'), 'formatted mean ± spread');
    assert.ok(html.includes('<td class="num">—</td>'), 'missing value shown as a dash');
    assert.ok(html.includes('<h2>Accuracy</h2>') && html.includes('<strong>224 px</strong>'));
    assert.ok(html.includes('anyres sweep --model tiny') && html.includes('0, 1'), 'run info: command and seeds');
    assert.ok(html.includes('1 min 2 s'), 'wall time from the injected clock (61.5 s)');

    const md = await readFile(out.md, 'utf8');
    assert.ok(md.startsWith('# Resolution sweep\n'));
    assert.ok(md.includes('| Model | Res | Top-1 (%) | Loss |'));
    assert.ok(md.includes('| :--- | ---: | ---: | ---: |'));
    assert.ok(md.includes('| abs-win | 224 | 82.3 ± 0.1 | 0.812 |'));
    assert.ok(md.includes('| interp | 448 | 70.1 ± 1.0 | — |'));
    assert.ok(md.includes('![Sweep chart](sweep.png)') && md.includes('![Channel 0 with the window grid](posembed.png)'));
    assert.ok(md.includes('## Position embeddings'));

    const json = JSON.parse(await readFile(out.json, 'utf8')) as ResultsJson;
    assert.equal(json.title, 'Resolution sweep');
    assert.deepEqual(json.runInfo.seeds, [0, 1]);
    assert.equal(json.runInfo.wallTimeS, 61.5);
    const table = json.sections[1]!.blocks[1]!;
    assert.equal(table.kind, 'table');
    assert.deepEqual(table.kind === 'table' && table.rows[0]!['acc'], { mean: 82.345, spread: 0.126 }, 'raw numbers kept');
    assert.deepEqual(await validateResultsFile(out.json), []);
  });
});

test('validateResults flags NaN (even after a JSON round trip) and an empty table', async () => {
  await withTempDir(async (dir) => {
    const r = new Report('Broken run', { command: 'x' });
    r.section('S');
    r.table({ columns: [{ key: 'acc', title: 'Acc', format: 'accuracy' }], rows: [{ acc: NaN }], caption: 'nan table' });
    r.table({ columns: [{ key: 'acc', title: 'Acc' }], rows: [], caption: 'empty table' });
    r.table({ columns: [{ key: 'acc', title: 'Acc' }], rows: [{ acc: { mean: 1, spread: Infinity } }] });
    const out = await r.write(dir);
    const fromFile = await validateResultsFile(out.json);
    assert.equal(fromFile.length, 3, fromFile.join('\n'));
    assert.ok(fromFile.some((p) => /blocks\[0\]\.rows\[0\]\.acc: non-finite number NaN/.test(p)), fromFile.join('\n'));
    assert.ok(fromFile.some((p) => /blocks\[1\] \('empty table'\): table has no rows/.test(p)));
    assert.ok(fromFile.some((p) => /rows\[0\]\.acc\.spread: non-finite number Infinity/.test(p)));
    assert.deepEqual(out.problems.length, 3, 'write() reports the same problems');
    // The in-memory object (numbers not yet serialised) is checked the same way.
    assert.equal(validateResults(r.toJSON()).length, 3);
  });
  assert.deepEqual(validateResults([]), ['results: expected a JSON object']);
  assert.ok(validateResults({ schema: 'anyres.results/1', title: 't', runInfo: {}, sections: {} }).includes('sections: expected an array'));
});

test('report rejects bad asset names, duplicates, non-PNG images and unknown row keys', () => {
  const r = new Report('t');
  assert.throws(() => r.image('../evil', Buffer.alloc(10)), /must be a file-name stem/);
  assert.throws(() => r.image('ok', Buffer.from('not a png at all')), /is not a PNG/);
  r.chart('c', lineChart({ title: 't', x: { field: 'x', title: 'x' }, y: { field: 'y', title: 'y' }, rows: [{ x: 1, y: 1 }] }));
  assert.throws(
    () => r.chart('c', lineChart({ title: 't', x: { field: 'x', title: 'x' }, y: { field: 'y', title: 'y' }, rows: [{ x: 1, y: 1 }] })),
    /already used/,
  );
  assert.throws(() => r.table({ columns: [{ key: 'a', title: 'A' }], rows: [{ b: 1 }] }), /row 0 has key 'b' that is not a column/);
});

test('inlined chart SVGs get page-unique ids, and every url(#...) reference resolves', async () => {
  const raw = '<svg xmlns="http://www.w3.org/2000/svg"><defs><clipPath id="clip1"/></defs><g clip-path="url(#clip1)"/></svg>';
  assert.equal(inlineSvg(raw, 'c1'), '<svg><defs><clipPath id="c1-clip1"/></defs><g clip-path="url(#c1-clip1)"/></svg>');
  await withTempDir(async (dir) => {
    const r = new Report('two charts', { command: 'x' });
    const gradientChart = (title: string) => ({
      title,
      data: { values: [{ a: 1, b: 2, c: 3 }, { a: 2, b: 1, c: 5 }] },
      mark: { type: 'point' as const, clip: true },
      encoding: {
        x: { field: 'a', type: 'quantitative' as const, scale: { domain: [0, 1.5] } },
        y: { field: 'b', type: 'quantitative' as const },
        color: { field: 'c', type: 'quantitative' as const },
      },
    });
    r.chart('one', gradientChart('first')).chart('two', gradientChart('second'));
    const html = await readFile((await r.write(dir)).html, 'utf8');
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(ids.length >= 4, `ids: ${ids.join(', ')}`);
    assert.equal(new Set(ids).size, ids.length, `ids unique: ${ids.join(', ')}`);
    for (const m of html.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.includes(m[1]!), `url(#${m[1]}) resolves`);
  });
});
