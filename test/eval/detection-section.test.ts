/**
 * The main job's detection section in quick mode: it runs end to end (pretraining, every kind of
 * fine-tuning, the control, HieraDet, pictures) and writes a report whose results.json validates,
 * with `data.detection` holding every variant for every seed. The validator refuses broken data.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/runtime.ts';
import { plan } from '../../src/eval/reproduce.ts';
import { runDetectionExperiment } from '../../src/eval/experiments/detection.ts';
import { detectionSection } from '../../src/eval/experiments/detection-report.ts';
import { Report, validateResults, validateResultsFile, type ResultsJson } from '../../src/eval/report.ts';
import type { DetectionData } from '../../src/eval/results-detection.ts';
import { PAIRED_RULE, type PairedRowData, validatePairedData } from '../../src/eval/paired.ts';

const rt = new Runtime();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-det-section-'));
after(async () => {
  fs.rmSync(tmp, { recursive: true, force: true });
  await rt.clear();
});

test('quick detection plan: every variant, the control and HieraDet give well-formed, validated results', async () => {
  const o = structuredClone(plan(true).detection);
  assert.deepEqual(o.variants, ['a', 'b', 'c', 'd', 'e'], 'quick mode runs every ViTDet variant');
  assert.ok(o.control && o.hiera, 'quick mode runs the control and HieraDet');
  // Smaller still than --quick, to keep the unit test short: two variants, two seeds, 2 steps.
  o.variants = ['b', 'c'];
  o.seeds = [3, 4];
  o.det.steps = 2;
  o.det.valSize = 4;
  o.hiera!.det.steps = 2;
  o.pictures = { variants: ['c'], images: 1, scoreThresh: 0 };
  const res = await runDetectionExperiment(rt, o, () => {});
  assert.equal(res.rows.length, 2 * (2 + 1 + 2), 'per seed: 2 ViTDet variants, the control, 2 HieraDet variants');
  for (const row of res.rows) {
    for (const k of ['ap', 'ap50', 'ap75'] as const) assert.ok(row[k] >= 0 && row[k] <= 100, `${row.variant} ${k} = ${row[k]}`);
    assert.ok(row.msPerImage > 0 && Number.isFinite(row.finalLoss));
  }
  assert.deepEqual(res.grids, { pretrain: 4, det: 16, window: 4, hieraPretrain: [8, 8], hieraDet: [32, 32] });
  assert.equal(res.pictures.length, 1);
  const r = new Report('detection section test', { command: 'test' });
  const paired: PairedRowData[] = [];
  const summary = await detectionSection(r, res, o, 6, paired);
  // Every comparison is paired by seed with its t interval, and joins the main job's data.paired.
  assert.deepEqual(paired.map((p) => `${p.part}:${p.comparison}:${p.n}`), ['detection:c vs b:2', 'detection:abswin vs interp:2']);
  assert.deepEqual(validatePairedData({ rule: PAIRED_RULE, rows: paired }), []);
  for (const p of paired) assert.ok(p.low !== null && p.high !== null && p.low <= p.mean && p.mean <= p.high);
  assert.ok(summary['c vs b'] && summary['abswin vs interp'] && summary['d vs control'] === undefined, Object.keys(summary).join(', '));
  const out = await r.write(path.join(tmp, 'report'));
  assert.deepEqual(out.problems, []);
  assert.deepEqual(await validateResultsFile(out.json), []);
  const json = JSON.parse(fs.readFileSync(out.json, 'utf8')) as ResultsJson;
  const data = json.data!['detection'] as DetectionData;
  assert.deepEqual(data.seeds, [3, 4]);
  assert.deepEqual(data.variants.map((v) => v.variant).sort(), ['abswin', 'b', 'c', 'control', 'interp']);
  assert.ok(data.variants.every((v) => v.perSeed.length === 2));
  assert.deepEqual(data.comparisons.map((c) => `${c.b} vs ${c.a}`), ['c vs b', 'abswin vs interp'], 'only comparisons whose two variants ran');
  const html = fs.readFileSync(out.html, 'utf8');
  assert.match(html, /<img alt="\(c\) abs-win \(tiled\), no relpos, test image 0/);
  assert.match(html, /box AP/);
  const md = fs.readFileSync(out.md, 'utf8');
  assert.match(md, /\| \(b\) interp\., no relpos \| interpolated \| none \|/);

  // The validator refuses a detection section with a missing seed, an AP out of range or an unknown variant.
  const bad = structuredClone(json);
  const d = bad.data!['detection'] as DetectionData;
  d.variants[0]!.perSeed.pop();
  d.variants[1]!.ap = { mean: 140, spread: 1 };
  d.comparisons[0]!.a = 'zz';
  // A verdict that contradicts its interval is refused too.
  d.comparisons[1]!.low = 0.5;
  d.comparisons[1]!.high = 0.5 + Math.abs(d.comparisons[1]!.diff) + 1;
  d.comparisons[1]!.diff = 0.5 + Math.abs(d.comparisons[1]!.diff) / 2;
  d.comparisons[1]!.verdict = 'within noise (95% CI includes 0)';
  const problems = validateResults(bad);
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.ok(problems.some((p) => /comparisons\[1\]\.verdict: 'within noise .*' disagrees with the interval/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /variants\[0\]\.perSeed: expected one entry per seed \(2\), got 1/.test(p)));
  assert.ok(problems.some((p) => /variants\[1\]\.ap: mean 140 outside \[0, 100\]/.test(p)));
  assert.ok(problems.some((p) => /comparisons\[0\]\.a: 'zz' is not one of the variants/.test(p)));
  const noData = structuredClone(json);
  delete noData.data;
  assert.deepEqual(validateResults(noData), ['data.detection: the report has a detection section but results.json holds no data.detection']);
});
