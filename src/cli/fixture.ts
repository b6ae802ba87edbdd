/**
 * `anyres fixture <case.json>...`: runs our implementation of each case's kind
 * and prints one line per checked tensor; exits non-zero when any check fails.
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Runtime } from '../graph/runtime.ts';
import { formatReport, runCase } from '../fixture/index.ts';
import { fixturesDir } from '../fixtures.ts';

export function registerFixtureCommand(program: Command): void {
  program
    .command('fixture')
    .description('check golden fixture cases (JSON + safetensors) against our implementation; dispatches on the JSON kind')
    .argument('[cases...]', 'case JSON files (default: every case in $ANYRES_FIXTURES or ../shared/fixtures)')
    .option('--strict', 'also fail on cases of kinds we do not support yet')
    .action(async (cases: string[], opts: { strict?: boolean }) => {
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
      const rt = new Runtime();
      const counts = { pass: 0, fail: 0, skipped: 0, unsupported: 0, error: 0 };
      for (const f of files) {
        if (!fs.existsSync(f)) throw new Error(`fixture: case file ${f} does not exist`);
        const r = await runCase(f, rt);
        counts[r.outcome]++;
        console.log(formatReport(r));
      }
      console.log(
        `\n${counts.pass} passed, ${counts.fail + counts.error} failed, ${counts.skipped} skipped (status not ok), ${counts.unsupported} unsupported kind`,
      );
      if (counts.fail || counts.error || (opts.strict && counts.unsupported)) process.exitCode = 1;
    });
}
