/**
 * `anyres fixture` must not report success for a case it could not check: a case whose kind has no
 * handler makes the command exit 1 and the summary names the kind and the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';

const bin = path.resolve('bin/anyres.mjs');
const anyres = (args: string[]): { status: number | null; out: string } => {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ANYRES_FIXTURES: fixturesDir() } });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
};

test('fixture exits 1 and names the kind when a given case has no handler; 0 when every case passes', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-fixture-'));
  // A case of a kind nobody handles, next to a real one (copied JSON pointing at the shared tensors).
  const alien = path.join(dir, 'alien_case.json');
  fs.writeFileSync(alien, JSON.stringify({ case: 'alien_case', kind: 'no_such_kind_xyz', status: 'ok', config: {}, tensors: {} }));
  const real = path.join(fixturesDir(), 'interp_bicubic_7to9.json');
  const ok = anyres(['fixture', real]);
  assert.equal(ok.status, 0, ok.out);
  assert.match(ok.out, /1 passed, 0 failed/);
  const bad = anyres(['fixture', real, alien]);
  assert.equal(bad.status, 1, bad.out);
  assert.match(bad.out, /1 with no handler/);
  assert.match(bad.out, /no handler for kind 'no_such_kind_xyz' \(1 case: alien_case\.json\)/);
});
