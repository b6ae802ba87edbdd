/**
 * `anyres fixture <case.json>...`: runs our implementation of each case's kind
 * and prints one line per checked tensor. Exits non-zero when any check fails, a case errors,
 * or a case's kind has no handler (an unchecked case is never counted as checked); the summary
 * names the unhandled kinds and their files.
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Runtime } from '../graph/runtime.ts';
import { type CaseReport, formatReport, runCase, supportedKinds } from '../fixture/index.ts';
import { fixturesDir } from '../fixtures.ts';

export interface FixtureSummary {
  counts: Record<CaseReport['outcome'], number>;
  /** Kind -> case files that have no handler. */
  unsupported: Map<string, string[]>;
  /** Process exit status: 1 when anything failed, errored or had no handler. */
  exitCode: 0 | 1;
  /** The closing lines printed after the per-case reports. */
  lines: string[];
}

/** Totals and exit status of a list of case reports. */
export function summarizeFixtures(reports: readonly CaseReport[]): FixtureSummary {
  const counts = { pass: 0, fail: 0, skipped: 0, unsupported: 0, error: 0 };
  const unsupported = new Map<string, string[]>();
  for (const r of reports) {
    counts[r.outcome]++;
    if (r.outcome === 'unsupported') unsupported.set(r.kind, [...(unsupported.get(r.kind) ?? []), r.file]);
  }
  const lines = [`${counts.pass} passed, ${counts.fail + counts.error} failed, ${counts.skipped} skipped (status not ok), ${counts.unsupported} with no handler`];
  for (const [kind, files] of unsupported) {
    lines.push(`no handler for kind '${kind}' (${files.length} case${files.length > 1 ? 's' : ''}: ${files.map((f) => path.basename(f)).join(', ')}); supported kinds: ${supportedKinds().join(', ')}`);
  }
  const exitCode = counts.fail || counts.error || counts.unsupported ? 1 : 0;
  return { counts, unsupported, exitCode, lines };
}

export function registerFixtureCommand(program: Command): void {
  program
    .command('fixture')
    .description('check golden fixture cases (JSON + safetensors) against our implementation; dispatches on the JSON kind; fails when a case fails or its kind has no handler')
    .argument('[cases...]', 'case JSON files (default: every case in $ANYRES_FIXTURES or ../shared/fixtures)')
    .option('--strict', 'accepted for old scripts: failing on cases with no handler is now the default')
    .action(async (cases: string[]) => {
      let files = cases;
      if (files.length === 0) {
        const dir = fixturesDir();
        if (!fs.existsSync(dir)) throw new Error(`fixture: no case files given and the fixtures directory ${dir} does not exist (set ANYRES_FIXTURES)`);
        files = fs
          .readdirSync(dir)
          .filter((f) => f.endsWith('.json') && !f.startsWith('index'))
          .sort()
          .map((f) => path.join(dir, f));
      }
      for (const f of files) if (!fs.existsSync(f)) throw new Error(`fixture: case file ${f} does not exist`);
      const rt = new Runtime();
      const reports: CaseReport[] = [];
      for (const f of files) {
        const r = await runCase(f, rt);
        reports.push(r);
        console.log(formatReport(r));
      }
      const s = summarizeFixtures(reports);
      console.log(`\n${s.lines.join('\n')}`);
      if (s.exitCode) process.exitCode = s.exitCode;
    });
}
