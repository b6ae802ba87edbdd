/**
 * The one verdict rule of the main job (`anyres reproduce`): every comparison of two settings over
 * seeds is decided the same way, by `verdictOf` on their means and seed standard deviations.
 */
import type { MeanSpread } from './report.ts';

/** Mean and sample standard deviation (n − 1) of `xs`; spread 0 for one value. */
export function meanStd(xs: readonly number[]): MeanSpread {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.length > 1 ? xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1) : 0;
  return { mean: m, spread: Math.sqrt(v) };
}

/**
 * The verdict on `b − a` across seeds: a difference counts only when it exceeds twice the
 * larger of the two seed standard deviations; with one seed there is no spread to compare.
 */
export function verdictOf(a: MeanSpread, b: MeanSpread, seeds: number, names: [string, string], chance = 0): string {
  // Both within 5 points of chance: nothing was learned to compare.
  if (Math.max(a.mean, b.mean) < chance + 5) return 'both near chance';
  if (seeds < 2) return 'one seed: no spread';
  const diff = b.mean - a.mean;
  if (Math.abs(diff) <= 2 * Math.max(a.spread, b.spread)) return 'within the spread';
  return `${diff > 0 ? names[1] : names[0]} better (> 2 sd)`;
}
