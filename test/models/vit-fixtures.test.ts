/**
 * Golden fixtures of the ViT / ResFormer family, run through the fixture runner: every case file
 * in the fixtures directory whose JSON kind is one of ours gets its own test, so new cases (other
 * seeds, sizes, non-square inputs) are picked up without code changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import { Runtime } from '../../src/graph/runtime.ts';
import { formatReport, runCase } from '../../src/fixture/index.ts';

const KINDS = ['vit', 'resformer', 'grad_vit', 'grad_resformer', 'resformer_loss', 'grad_resformer_multires'];

const dir = fixturesDir();
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: path.join(dir, f), kind: (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { kind?: string }).kind }))
  .filter((c): c is { file: string; kind: string } => c.kind !== undefined && KINDS.includes(c.kind));

test('every ViT/ResFormer fixture kind has at least one case', () => {
  const found = new Set(cases.map((c) => c.kind));
  assert.deepEqual(KINDS.filter((k) => !found.has(k)), [], `no case files in ${dir} for these kinds`);
});

const rt = new Runtime();
for (const c of cases) {
  test(`fixture ${path.basename(c.file)} (${c.kind})`, async () => {
    const r = await runCase(c.file, rt);
    assert.equal(r.outcome, 'pass', formatReport(r));
  });
}
