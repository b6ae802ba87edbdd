import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/index.ts';
import { formatReport, runCase } from '../../src/fixture/index.ts';
import { fixturesDir } from '../../src/fixtures.ts';

test('step_adamw fixture: two compiled train steps (forward+backward+AdamW in one run) match torch', async () => {
  const r = await runCase(path.join(fixturesDir(), 'step_adamw_vit_tiny_224.json'), new Runtime());
  assert.equal(r.outcome, 'pass', formatReport(r));
  // 3 losses + 44 parameters after each of the 2 steps
  assert.equal(r.checks.length, 91);
});
