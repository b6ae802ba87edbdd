/**
 * Timing on a shared machine: every variant runs once per round, rounds repeat, and each
 * variant's median is reported, so that load drifting during the run affects all variants alike
 * and ratios within one run stay meaningful even when absolute times do not.
 */

export interface Variant {
  name: string;
  /** One timed unit of work (a forward, a train step). */
  run: () => Promise<void>;
}

export interface Timing {
  name: string;
  /** Median seconds per run. */
  median: number;
  /** All rounds, seconds. */
  times: number[];
}

/** Warms every variant up once (compiles), then `rounds` interleaved rounds; medians per variant. */
export async function interleaved(variants: readonly Variant[], rounds: number, log: (m: string) => void = () => {}): Promise<Map<string, Timing>> {
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`interleaved: rounds must be a positive integer, got ${rounds}`);
  for (const v of variants) {
    const t0 = performance.now();
    await v.run();
    log(`  warm-up ${v.name}: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  }
  const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const t0 = performance.now();
      await v.run();
      times.get(v.name)!.push((performance.now() - t0) / 1000);
    }
  }
  const out = new Map<string, Timing>();
  for (const [name, t] of times) {
    const s = [...t].sort((a, b) => a - b);
    const mid = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    out.set(name, { name, median: mid, times: t });
  }
  return out;
}
