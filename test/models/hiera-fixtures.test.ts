/**
 * Hiera against the official PyTorch code: every fixture case of a Hiera kind (found by globbing
 * the fixtures directory and reading each JSON's `kind`) must pass within its own tolerance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/runtime.ts';
import { formatReport, runCase } from '../../src/fixture/index.ts';
import { fixturesDir } from '../../src/fixtures.ts';

const HIERA_KINDS = new Set(['hiera', 'timm_hiera_abswin', 'grad_hiera', 'video_hiera']);
const dir = fixturesDir();
const cases = fs.existsSync(dir)
  ? fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json') && !f.startsWith('index'))
      .map((f) => ({ f, json: JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { kind?: string; status?: string } }))
      .filter((c) => HIERA_KINDS.has(c.json.kind ?? ''))
  : [];
const rt = new Runtime();

test('the fixtures directory holds Hiera cases of every kind we implement', () => {
  const kinds = new Set(cases.map((c) => c.json.kind));
  for (const k of HIERA_KINDS) assert.ok(kinds.has(k), `no '${k}' case in ${dir} (set ANYRES_FIXTURES)`);
});

for (const { f, json } of cases) {
  test(`hiera fixture ${f} (${json.kind})`, async () => {
    const r = await runCase(path.join(dir, f), rt);
    if (json.status && json.status !== 'ok') {
      assert.equal(r.outcome, 'skipped');
      return;
    }
    assert.equal(r.outcome, 'pass', formatReport(r));
    assert.ok(r.checks.length >= 2, `${f}: only ${r.checks.length} tensors checked`);
  });
}
