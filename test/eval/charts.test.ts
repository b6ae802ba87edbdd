import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { barChart, lineChart, renderChart, saveChart, type Datum } from '../../src/eval/charts.ts';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Per-seed sweep rows: two models x three resolutions x three seeds. */
function sweepRows(): Datum[] {
  const rows: Datum[] = [];
  for (const model of ['interp', 'abswin']) {
    for (const res of [224, 448, 896]) {
      for (const seed of [0, 1, 2]) {
        rows.push({ model, res, seed, acc: (model === 'interp' ? 80 - res / 50 : 82) + seed });
      }
    }
  }
  return rows;
}

test('lineChart renders SVG with title, axis titles, legend and the sweep ticks', async () => {
  const spec = lineChart({
    title: 'Top-1 vs resolution',
    x: { field: 'res', title: 'Test resolution (px)', scale: 'log2' },
    y: { field: 'acc', title: 'Top-1 accuracy (%)' },
    color: { field: 'model', title: 'Model' },
    rows: sweepRows(),
    spread: { from: 'seeds', extent: 'stdev' },
  });
  const r = await renderChart(spec);
  assert.ok(r.svg.startsWith('<svg'), 'output is an SVG document');
  for (const text of ['Top-1 vs resolution', 'Test resolution (px)', 'Top-1 accuracy (%)', 'Model', 'interp', 'abswin', '>224<', '>896<']) {
    assert.ok(r.svg.includes(text), `SVG contains ${text}`);
  }
  assert.deepEqual(r.warnings, []);
  const png = await r.png();
  assert.deepEqual(png.subarray(0, 8), PNG_MAGIC);
  assert.ok(png.length > 5000, `PNG has real content (${png.length} bytes)`);
  const meta = await sharp(png).metadata();
  assert.ok((meta.width ?? 0) > 400 && (meta.height ?? 0) > 250, `PNG is ${meta.width}x${meta.height}`);
  // Not a blank page: the rasterised chart has many distinct colours (lines, band, text).
  const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const colours = new Set<number>();
  for (let i = 0; i < data.length; i += 3 * 97) colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
  assert.ok(colours.size > 10, `PNG has ${colours.size} sampled colours`);
});

test('lineChart with seeds spread plots the per-group mean', async () => {
  const spec = lineChart({
    title: 't',
    x: { field: 'res', title: 'x' },
    y: { field: 'acc', title: 'y', domain: [60, 90] },
    color: { field: 'model' },
    rows: sweepRows(),
    spread: { from: 'seeds', mark: 'bars' },
  });
  // The central line aggregates the per-seed rows to their mean; the bars layer uses the
  // same raw field with vega-lite's extent aggregate.
  const layers = (spec as unknown as { layer: { mark: { type: string; extent?: string }; encoding: { y: { aggregate?: string } } }[] }).layer;
  assert.deepEqual(layers.map((l) => l.mark.type), ['errorbar', 'line']);
  assert.equal(layers[0]!.mark.extent, 'stdev');
  assert.equal(layers[1]!.encoding.y.aggregate, 'mean');
  const r = await renderChart(spec);
  assert.ok(r.svg.includes('>90<') && r.svg.includes('>60<'), 'fixed y domain ends are labelled');
});

test('barChart groups by colour, precomputed error bars, and saveChart writes both files', async () => {
  const rows: Datum[] = [
    { res: '224', model: 'a', acc: 80, lo: 79, hi: 81 },
    { res: '224', model: 'b', acc: 70, lo: 69, hi: 71 },
    { res: '448', model: 'a', acc: 78, lo: 77, hi: 79 },
    { res: '448', model: 'b', acc: 60, lo: 58, hi: 62 },
  ];
  const spec = barChart({
    title: 'Bars at two sizes',
    x: { field: 'res', title: 'Resolution' },
    y: { field: 'acc', title: 'Top-1' },
    color: { field: 'model', title: 'Model' },
    rows,
    spread: { from: 'fields', lower: 'lo', upper: 'hi' },
  });
  const dir = await mkdtemp(join(tmpdir(), 'anyres-charts-'));
  try {
    const { svgPath, pngPath } = await saveChart(spec, join(dir, 'bars'));
    const svg = await readFile(svgPath, 'utf8');
    assert.ok(svg.includes('Bars at two sizes') && svg.includes('Resolution'));
    assert.deepEqual((await readFile(pngPath)).subarray(0, 8), PNG_MAGIC);
    assert.deepEqual((await readdir(dir)).sort(), ['bars.png', 'bars.svg'], 'no temp files left behind');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('chart helpers reject empty rows and missing fields, naming them', () => {
  assert.throws(
    () => lineChart({ title: 't', x: { field: 'res', title: 'x' }, y: { field: 'acc', title: 'y' }, rows: [] }),
    /lineChart: rows is empty/,
  );
  assert.throws(
    () => barChart({ title: 't', x: { field: 'res', title: 'x' }, y: { field: 'acc', title: 'y' }, rows: [{ res: 1 }] }),
    /barChart: row 0 has no field 'acc'/,
  );
});

test('renderChart refuses to fetch data from a URL', async () => {
  await assert.rejects(
    renderChart({ data: { url: 'http://example.invalid/data.csv' }, mark: 'point', encoding: { x: { field: 'a', type: 'quantitative' } } }),
    /charts render offline/,
  );
});
