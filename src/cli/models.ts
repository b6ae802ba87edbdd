/**
 * `anyres models`: every preset of every family with its parameter count, default resolution and
 * the input sizes it takes. Classifier presets also show the count with a 1000-class head, the
 * figure papers publish (ViT-B 86.6M, Hiera-B 51.5M, ...).
 */
import type { Command } from 'commander';
import { type PresetDescription, describePreset, presetNames } from '../models/registry.ts';

/** 5717416 -> '5.72M'. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 1 : 2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** The table `anyres models` prints (one row per preset). */
export function modelsTable(rows: readonly PresetDescription[]): string {
  const head = ['preset', 'family', 'params', 'classes', 'params@1000', 'default res', 'sizes'];
  const body = rows.map((d) => [
    d.name,
    d.family,
    formatCount(d.params),
    d.numClasses === null ? '-' : String(d.numClasses),
    d.params1000 === null ? '-' : formatCount(d.params1000),
    `${d.defaultRes[0]}x${d.defaultRes[1]}`,
    d.sizeRule,
  ]);
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function registerModelsCommand(program: Command): void {
  program
    .command('models')
    .description('list every model preset: family, parameter count (also with a 1000-class head for classifiers), default resolution, valid sizes')
    .option('--family <name>', 'only this family (vit, resformer, hiera, hiera-video, vitdet, hieradet)')
    .option('--json', 'print JSON instead of a table')
    .action((o: { family?: string; json?: boolean }) => {
      let rows = presetNames().map(describePreset);
      if (o.family) {
        const known = [...new Set(rows.map((r) => r.family))];
        if (!known.includes(o.family as PresetDescription['family'])) throw new Error(`models: unknown family '${o.family}' (known: ${known.join(', ')})`);
        rows = rows.filter((r) => r.family === o.family);
      }
      console.log(o.json ? JSON.stringify(rows, null, 1) : modelsTable(rows));
    });
}
