/**
 * The detection section's numbers as `results.json` keeps them (`data.detection`), and their
 * check: `validateResults` (src/eval/report.ts) runs `validateDetectionData` whenever the key is
 * present, so CI refuses a detection section with missing variants, seeds or out-of-range AP.
 */
import type { MeanSpread } from './verdict.ts';

export interface DetectionVariantData {
  /** 'vitdet' | 'hieradet' | 'control'. */
  family: string;
  variant: string;
  title: string;
  /** COCO box AP / AP50 / AP75 in percent, mean ± sd over seeds. */
  ap: MeanSpread;
  ap50: MeanSpread;
  ap75: MeanSpread;
  msPerImage: MeanSpread;
  perSeed: { seed: number; ap: number; ap50: number; ap75: number; msPerImage: number }[];
}

export interface DetectionComparisonData {
  /** Variant names (`a` ... `e`, `interp`, `abswin`, `control`). */
  a: string;
  b: string;
  /** Mean over seeds of AP(b) − AP(a), points (paired by seed). */
  diff: number;
  /** AP(b) − AP(a) per seed (same seed = same pretrained weights and batches), mean ± sd. */
  paired: MeanSpread;
  /** 95% t interval of the paired mean (src/eval/paired.ts); null below 2 seeds. */
  low: number | null;
  high: number | null;
  /** Seeds paired. */
  n: number;
  /** The paired verdict (src/eval/paired.ts `pairedVerdict`). */
  verdict: string;
}

export interface DetectionData {
  seeds: number[];
  variants: DetectionVariantData[];
  comparisons: DetectionComparisonData[];
  /** Per pretraining run: top-1 % for classification (null for the MAE) and the final training loss. */
  pretrain: { model: string; kind: string; seed: number; accuracy: number | null; finalLoss: number }[];
  /** Largest seed sd of AP over the variants and largest sd of a paired difference (points). */
  spread: { apSd: number; pairedSd: number };
}

/** Title of the main job's detection section (`detectionSection`); its data must be present. */
export const DETECTION_SECTION = /^\d+\. Detection: /;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Problems of a `data.detection` value, each with its path; empty = valid. */
export function validateDetectionData(v: unknown, at = 'data.detection'): string[] {
  const p: string[] = [];
  if (!isObj(v)) return [`${at}: expected an object`];
  const seeds = v['seeds'];
  if (!Array.isArray(seeds) || seeds.length === 0 || !seeds.every((s) => Number.isInteger(s))) p.push(`${at}.seeds: expected a non-empty list of integer seeds`);
  const nSeeds = Array.isArray(seeds) ? seeds.length : 0;
  const ms = (x: unknown, path: string, lo: number, hi: number): void => {
    if (!isObj(x) || !isNum(x['mean']) || !isNum(x['spread'])) p.push(`${path}: expected {mean, spread} numbers`);
    else if (x['mean'] < lo || x['mean'] > hi || x['spread'] < 0) p.push(`${path}: mean ${x['mean']} outside [${lo}, ${hi}] or negative spread ${x['spread']}`);
  };
  const variants = v['variants'];
  const names = new Set<string>();
  if (!Array.isArray(variants) || variants.length === 0) p.push(`${at}.variants: expected a non-empty list`);
  else {
    variants.forEach((x: unknown, i) => {
      const path = `${at}.variants[${i}]`;
      if (!isObj(x)) return p.push(`${path}: expected an object`);
      if (typeof x['variant'] !== 'string' || typeof x['title'] !== 'string' || typeof x['family'] !== 'string') p.push(`${path}: variant, title and family must be strings`);
      else names.add(x['variant']);
      for (const k of ['ap', 'ap50', 'ap75']) ms(x[k], `${path}.${k}`, 0, 100);
      ms(x['msPerImage'], `${path}.msPerImage`, 0, Number.MAX_VALUE);
      const per = x['perSeed'];
      if (!Array.isArray(per) || per.length !== nSeeds) p.push(`${path}.perSeed: expected one entry per seed (${nSeeds}), got ${Array.isArray(per) ? per.length : 'none'}`);
      else {
        per.forEach((r: unknown, j) => {
          if (!isObj(r) || !['ap', 'ap50', 'ap75'].every((k) => isNum(r[k]) && r[k] >= 0 && r[k] <= 100) || !isNum(r['msPerImage']) || r['msPerImage'] <= 0) {
            p.push(`${path}.perSeed[${j}]: expected ap, ap50, ap75 in [0, 100] and msPerImage > 0`);
          } else if ((r['ap'] as number) > (r['ap50'] as number) + 1e-9) p.push(`${path}.perSeed[${j}]: AP ${String(r['ap'])} exceeds AP50 ${String(r['ap50'])} (AP averages AP50 ... AP95, which fall)`);
        });
      }
    });
  }
  const comps = v['comparisons'];
  if (!Array.isArray(comps)) p.push(`${at}.comparisons: expected a list`);
  else {
    comps.forEach((c: unknown, i) => {
      const path = `${at}.comparisons[${i}]`;
      if (!isObj(c)) return p.push(`${path}: expected an object`);
      for (const k of ['a', 'b']) if (typeof c[k] !== 'string' || !names.has(c[k] as string)) p.push(`${path}.${k}: '${String(c[k])}' is not one of the variants (${[...names].join(', ')})`);
      if (!isNum(c['diff'])) p.push(`${path}.diff: expected a number`);
      ms(c['paired'], `${path}.paired`, -100, 100);
      if (typeof c['verdict'] !== 'string' || !c['verdict']) p.push(`${path}.verdict: expected a non-empty string`);
      if (!Number.isInteger(c['n']) || (c['n'] as number) < 1 || (c['n'] as number) > nSeeds) p.push(`${path}.n: expected the number of paired seeds (1..${nSeeds}), got ${String(c['n'])}`);
      const lo = c['low'];
      const hi = c['high'];
      if ((c['n'] as number) >= 2) {
        if (!isNum(lo) || !isNum(hi) || lo > hi) p.push(`${path}: low/high must be an interval for ${String(c['n'])} seeds, got [${String(lo)}, ${String(hi)}]`);
        else if (isNum(c['diff']) && (c['diff'] < lo - 1e-9 || c['diff'] > hi + 1e-9)) p.push(`${path}: diff ${c['diff']} lies outside its interval [${lo}, ${hi}]`);
        else if (typeof c['verdict'] === 'string' && c['verdict'] !== 'both near chance' && (lo > 0 || hi < 0) !== c['verdict'].includes('excludes 0')) {
          p.push(`${path}.verdict: '${c['verdict']}' disagrees with the interval [${lo}, ${hi}]`);
        }
      } else if (lo !== null || hi !== null) p.push(`${path}: one seed has no interval; low and high must be null`);
    });
  }
  const sp = v['spread'];
  if (!isObj(sp) || !isNum(sp['apSd']) || !isNum(sp['pairedSd'])) p.push(`${at}.spread: expected {apSd, pairedSd} numbers`);
  if (!Array.isArray(v['pretrain'])) p.push(`${at}.pretrain: expected a list`);
  return p;
}
