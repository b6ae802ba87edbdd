import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Report, validateResults } from '../../src/eval/report.ts';
import type { AbsWinResults, GlobalSizeRow } from '../../src/eval/experiments/abswin.ts';
import { globalSizeSection } from '../../src/eval/experiments/abswin-report.ts';
import type { PairedRowData } from '../../src/eval/paired.ts';
import { plan } from '../../src/eval/reproduce.ts';

test('global-size section: a table per test size, each size paired by seed with the trained size; data.paired validates', () => {
  const o = { ...plan(false).abswin, seeds: [0, 1, 2] };
  // Made-up accuracies: 16x16 is 3 ± 0.5 points below 4x4 at 128 px on every seed, 2x2 equals 4x4 ± noise.
  const acc: Record<string, number[]> = { '2x2': [60, 61, 59], '4x4': [60, 60, 60], '16x16': [57, 56.5, 57.5] };
  const rows: GlobalSizeRow[] = [];
  for (const [k, v] of Object.entries(acc)) {
    const g = k.split('x').map(Number) as [number, number];
    v.forEach((a, seed) => {
      for (const res of o.globalSizes!.evalRes) rows.push({ seed, global: g, res, accuracy: res === 128 ? a : 70 });
    });
  }
  const res = { globalSize: rows, baseGrid: [16, 16], window: [4, 4] } as unknown as AbsWinResults;
  const r = new Report('t');
  const paired: PairedRowData[] = [];
  const v = globalSizeSection(r, res, o, paired);
  assert.equal(paired.length, 2 * o.globalSizes!.evalRes.length, 'two comparisons (2x2, 16x16 vs 4x4) per test size');
  const at128 = v['16x16-vs-4x4/128'] as { diff: number; verdict: string; paired: { low: number; high: number } };
  // d = −3, −3.5, −2.5: mean −3, sd 0.5, half-width 4.302653 · 0.5/√3 = 1.242 → [−4.242, −1.758].
  assert.ok(Math.abs(at128.diff + 3) < 1e-9);
  assert.ok(Math.abs(at128.paired.high + 1.757931) < 1e-5, `high ${at128.paired.high}`);
  assert.equal(at128.verdict, 'global 4x4 better (95% CI excludes 0)');
  assert.equal((v['2x2-vs-4x4/128'] as { verdict: string }).verdict, 'within noise (95% CI includes 0)');
  const json = r.toJSON();
  const table = json.sections[0]!.blocks.find((b) => b.kind === 'table');
  assert.ok(table && table.kind === 'table');
  assert.deepEqual(table.columns.map((c) => c.key), ['res', 'g2x2', 'g4x4', 'g16x16', 'd2x2', 'v2x2', 'd16x16', 'v16x16']);
  assert.equal(table.rows.length, o.globalSizes!.evalRes.length);
  assert.equal(table.rows.find((x) => x['res'] === 128)!['d16x16'], '−3.0 [−4.2, −1.8]');
  r.data('paired', { rule: 'r', rows: paired });
  assert.deepEqual(validateResults(JSON.parse(JSON.stringify(r.toJSON()))), []);
  const broken = JSON.parse(JSON.stringify(r.toJSON()));
  broken.data.paired.rows[0].mean += 1;
  assert.match(validateResults(broken).join('\n'), /data\.paired\.rows\[0\]\.mean: .* is not the mean of the diffs/);
});
