/**
 * Where the golden fixtures live: `$ANYRES_FIXTURES`, else `../shared/fixtures`
 * relative to the repository root (the layout CI uses).
 */
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function fixturesDir(): string {
  return process.env.ANYRES_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
}
