/**
 * Paired comparisons over seeds: when two settings are run with the same seed (same initial
 * value of every shared weight, same batches, same augmentation: src/nn/params.ts `initWeights`,
 * src/data/loader.ts), the seed-to-seed luck is shared, so the question "is b better than a?" is
 * asked of the per-seed differences d_s = b_s − a_s, not of two unpaired spreads.
 *
 * The interval is the textbook paired t interval (e.g. NIST/SEMATECH e-Handbook of Statistical
 * Methods, §7.3.1 "Do two processes have the same mean?" and §7.2.2 for the one-sample case):
 *   mean d̄ = Σ d_s / n,  s_d = sqrt(Σ (d_s − d̄)² / (n − 1)),  half-width = t_{1−α/2, n−1} · s_d / √n.
 * The verdict rule: the 95% interval excludes 0 → one setting is better; it includes 0 → within noise.
 *
 * The t quantile is computed here, by inverting the Student t CDF written with the regularized
 * incomplete beta function: for t ≥ 0, P(T ≤ t) = 1 − ½·I_{ν/(ν+t²)}(ν/2, ½)
 * (Abramowitz & Stegun 26.7.1 with 26.5.27; Numerical Recipes 3rd ed. §6.14.9). I_x(a, b) is the
 * continued fraction of Numerical Recipes §6.4 (eq. 6.4.5) evaluated by the modified Lentz method,
 * ln Γ by the Lanczos approximation (g = 7, 9 coefficients, Godfrey's set as printed in many
 * references, relative error < 1e-15).
 *
 * @example
 * const r = pairedDifference([{ seed: 0, a: 50, b: 52 }, { seed: 1, a: 60, b: 63 }, { seed: 2, a: 55, b: 57.5 }]);
 * // r.mean = 2.5, r.low ≈ 1.258, r.high ≈ 3.742 → pairedVerdict(r, ...) = 'b better (95% CI excludes 0)'
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; the reflection formula below 0.5). */
export function lnGamma(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`lnGamma: x must be a finite number > 0, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let s = LANCZOS[0]!;
  for (let i = 1; i < 9; i++) s += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** Continued fraction of I_x(a, b) (Numerical Recipes §6.4, modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const TINY = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    // even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m))
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    // odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) return h;
  }
  throw new Error(`regularizedBeta: the continued fraction did not converge for x=${x}, a=${a}, b=${b}`);
}

/** The regularized incomplete beta function I_x(a, b), x in [0, 1], a, b > 0. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0)) throw new RangeError(`regularizedBeta: a and b must be > 0, got a=${a}, b=${b}`);
  if (!(x >= 0 && x <= 1)) throw new RangeError(`regularizedBeta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  // The fraction converges fast for x < (a + 1) / (a + b + 2); otherwise use I_x(a,b) = 1 − I_{1−x}(b,a).
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

function checkDf(df: number, op: string): void {
  if (!(df > 0) || !Number.isFinite(df)) throw new RangeError(`${op}: degrees of freedom must be a finite number > 0, got ${df} (a paired interval needs at least 2 seeds: df = seeds − 1)`);
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  checkDf(df, 'studentTCdf');
  if (Number.isNaN(t)) throw new RangeError('studentTCdf: t is NaN');
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = 0.5 * regularizedBeta(df / (df + t * t), df / 2, 0.5); // P(T > |t|)
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (p in (0, 1)), by bisection on the
 * CDF to double precision; e.g. studentTQuantile(0.975, 2) = 4.302653, (0.975, 4) = 2.776445.
 */
export function studentTQuantile(p: number, df: number): number {
  checkDf(df, 'studentTQuantile');
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) throw new Error(`studentTQuantile: no quantile found for p=${p}, df=${df}`);
  }
  for (let i = 0; i < 200 && hi - lo > 1e-14 * Math.max(1, hi); i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** One seed of a paired comparison: setting a's and setting b's value with that seed. */
export interface PairedSeed {
  seed: number;
  a: number;
  b: number;
}

export interface PairedResult {
  /** The pairs, each with its difference b − a, in seed order. */
  perSeed: (PairedSeed & { diff: number })[];
  n: number;
  /** Mean of the differences d̄. */
  mean: number;
  /** Sample standard deviation of the differences (n − 1); 0 for one seed. */
  sd: number;
  /** Confidence level of the interval (0.95). */
  level: number;
  /** Degrees of freedom n − 1, and the t quantile t_{(1+level)/2, n−1}; null below 2 seeds. */
  df: number;
  t: number | null;
  /** The interval d̄ ± t · s_d / √n; null below 2 seeds (no spread to estimate). */
  low: number | null;
  high: number | null;
}

/** The paired difference b − a over seeds with its t interval (see the module comment). */
export function pairedDifference(pairs: readonly PairedSeed[], level = 0.95): PairedResult {
  if (!pairs.length) throw new RangeError('pairedDifference: no pairs given; give one {seed, a, b} per seed');
  if (!(level > 0 && level < 1)) throw new RangeError(`pairedDifference: level must be in (0, 1), got ${level}`);
  const seen = new Set<number>();
  for (const p of pairs) {
    if (seen.has(p.seed)) throw new Error(`pairedDifference: seed ${p.seed} appears twice; give one pair per seed`);
    seen.add(p.seed);
    if (!Number.isFinite(p.a) || !Number.isFinite(p.b)) throw new RangeError(`pairedDifference: seed ${p.seed} has a non-finite value (a=${p.a}, b=${p.b})`);
  }
  const perSeed = [...pairs].sort((x, y) => x.seed - y.seed).map((p) => ({ ...p, diff: p.b - p.a }));
  const n = perSeed.length;
  const mean = perSeed.reduce((s, p) => s + p.diff, 0) / n;
  const sd = n > 1 ? Math.sqrt(perSeed.reduce((s, p) => s + (p.diff - mean) ** 2, 0) / (n - 1)) : 0;
  if (n < 2) return { perSeed, n, mean, sd, level, df: 0, t: null, low: null, high: null };
  const t = studentTQuantile((1 + level) / 2, n - 1);
  const half = (t * sd) / Math.sqrt(n);
  return { perSeed, n, mean, sd, level, df: n - 1, t, low: mean - half, high: mean + half };
}

/**
 * Pairs two lists of per-seed values by seed. Throws naming the seed when one side lacks it or has
 * it twice, since an unmatched seed would silently turn a paired comparison into an unpaired one.
 */
export function pairBySeed(a: readonly { seed: number; value: number }[], b: readonly { seed: number; value: number }[], what: string): PairedSeed[] {
  const index = (xs: readonly { seed: number; value: number }[], side: string): Map<number, number> => {
    const m = new Map<number, number>();
    for (const x of xs) {
      if (m.has(x.seed)) throw new Error(`pairBySeed(${what}): seed ${x.seed} appears twice on side ${side}`);
      m.set(x.seed, x.value);
    }
    return m;
  };
  const ma = index(a, 'a');
  const mb = index(b, 'b');
  for (const s of ma.keys()) if (!mb.has(s)) throw new Error(`pairBySeed(${what}): seed ${s} has a value for a but none for b (b has seeds ${[...mb.keys()].join(', ')})`);
  for (const s of mb.keys()) if (!ma.has(s)) throw new Error(`pairBySeed(${what}): seed ${s} has a value for b but none for a (a has seeds ${[...ma.keys()].join(', ')})`);
  return [...ma.keys()].sort((x, y) => x - y).map((seed) => ({ seed, a: ma.get(seed)!, b: mb.get(seed)! }));
}

/**
 * The verdict on a paired comparison: 'both near chance' when neither mean is 5 points above
 * chance (the rule of src/eval/verdict.ts), 'one seed: no interval' below 2 seeds, otherwise
 * the interval decides: it excludes 0 → `<name> better (95% CI excludes 0)`, it includes 0 →
 * 'within noise (95% CI includes 0)'.
 */
export function pairedVerdict(r: PairedResult, names: [a: string, b: string], chance = 0): string {
  const meanA = r.perSeed.reduce((s, p) => s + p.a, 0) / r.n;
  const meanB = r.perSeed.reduce((s, p) => s + p.b, 0) / r.n;
  if (Math.max(meanA, meanB) < chance + 5) return 'both near chance';
  if (r.low === null || r.high === null) return 'one seed: no interval';
  const pct = `${Math.round(r.level * 100)}% CI`;
  if (r.low > 0) return `${names[1]} better (${pct} excludes 0)`;
  if (r.high < 0) return `${names[0]} better (${pct} excludes 0)`;
  return `within noise (${pct} includes 0)`;
}

/** Per-seed differences as table text, e.g. "s0 +2.0, s1 −1.5". */
export function formatPerSeed(r: PairedResult, digits = 1): string {
  return r.perSeed.map((p) => `s${p.seed} ${p.diff >= 0 ? '+' : '−'}${Math.abs(p.diff).toFixed(digits)}`).join(', ');
}

/** The interval as table text, "[low, high]", or "—" below 2 seeds. */
export function formatInterval(r: PairedResult, digits = 1): string {
  if (r.low === null || r.high === null) return '—';
  const f = (x: number): string => {
    const s = x.toFixed(digits);
    if (/^-0(\.0*)?$/.test(s)) return s.slice(1);
    return s.startsWith('-') ? `−${s.slice(1)}` : s; // the minus sign of formatPerSeed
  };
  return `[${f(r.low)}, ${f(r.high)}]`;
}

/** One paired row as results.json keeps it (`data.paired.rows[i]`). */
export interface PairedRowData extends PairedResult {
  /** Which table: 'abswin', 'mechanism', 'mae', 'global-size'. */
  part: string;
  /** The row's key, e.g. 'direct/zoom/96'. */
  comparison: string;
  /** Names of settings a and b (the difference is b − a). */
  a: string;
  b: string;
  verdict: string;
}

export interface PairedData {
  /** The rule, in words, as the report states it. */
  rule: string;
  rows: PairedRowData[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Problems of a `data.paired` value, each with its path; empty = valid. Checks the arithmetic
 * too: every diff is b − a, the mean is the mean of the diffs, the interval is centred on it and
 * its half-width is t · sd / √n with t = the quantile for df = n − 1, and the verdict agrees with
 * the interval (so a hand-edited or stale results.json is caught).
 */
export function validatePairedData(v: unknown, at = 'data.paired'): string[] {
  const p: string[] = [];
  if (!isObj(v)) return [`${at}: expected an object`];
  if (typeof v['rule'] !== 'string') p.push(`${at}.rule: expected a string`);
  const rows = v['rows'];
  if (!Array.isArray(rows) || rows.length === 0) return [...p, `${at}.rows: expected a non-empty list`];
  const close = (x: number, y: number): boolean => Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x), Math.abs(y));
  rows.forEach((r: unknown, i) => {
    const here = `${at}.rows[${i}]`;
    if (!isObj(r)) return void p.push(`${here}: expected an object`);
    for (const k of ['part', 'comparison', 'a', 'b', 'verdict']) if (typeof r[k] !== 'string') p.push(`${here}.${k}: expected a string`);
    const per = r['perSeed'];
    if (!Array.isArray(per) || per.length === 0) return void p.push(`${here}.perSeed: expected a non-empty list of {seed, a, b, diff}`);
    const diffs: number[] = [];
    per.forEach((s: unknown, j) => {
      if (!isObj(s) || !Number.isInteger(s['seed']) || !isNum(s['a']) || !isNum(s['b']) || !isNum(s['diff'])) return void p.push(`${here}.perSeed[${j}]: expected {seed: integer, a, b, diff: finite numbers}`);
      if (!close(s['diff'], s['b'] - s['a'])) p.push(`${here}.perSeed[${j}].diff: ${s['diff']} is not b − a = ${s['b'] - s['a']}`);
      diffs.push(s['diff']);
    });
    if (diffs.length !== per.length) return;
    const n = diffs.length;
    if (r['n'] !== n) p.push(`${here}.n: ${String(r['n'])} but perSeed has ${n} entries`);
    const mean = diffs.reduce((a, b) => a + b, 0) / n;
    if (!isNum(r['mean']) || !close(r['mean'], mean)) p.push(`${here}.mean: ${String(r['mean'])} is not the mean of the diffs (${mean})`);
    const level = r['level'];
    if (!isNum(level) || !(level > 0 && level < 1)) return void p.push(`${here}.level: expected a number in (0, 1)`);
    const { low, high, t, df } = r;
    if (n < 2) {
      if (low !== null || high !== null || t !== null) p.push(`${here}: one seed has no interval; low, high and t must be null`);
      return;
    }
    if (df !== n - 1) p.push(`${here}.df: ${String(df)}, expected n − 1 = ${n - 1}`);
    if (!isNum(low) || !isNum(high) || !isNum(t)) return void p.push(`${here}: low, high and t must be finite numbers for ${n} seeds`);
    const sd = Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
    const tq = studentTQuantile((1 + level) / 2, n - 1);
    if (!close(t, tq)) p.push(`${here}.t: ${t}, expected t_{${(1 + level) / 2}, ${n - 1}} = ${tq}`);
    const half = (tq * sd) / Math.sqrt(n);
    if (!close(low, mean - half) || !close(high, mean + half)) p.push(`${here}: interval [${low}, ${high}] is not mean ± t·sd/√n = [${mean - half}, ${mean + half}]`);
    const verdict = String(r['verdict']);
    if (verdict !== 'both near chance') {
      const excludes = low > 0 || high < 0;
      if (excludes !== verdict.includes('excludes 0')) p.push(`${here}.verdict: '${verdict}' disagrees with the interval [${low}, ${high}]`);
    }
  });
  return p;
}

/** One paired row from two per-seed lists: pairs them by seed, computes the interval and the verdict. */
export function comparePaired(
  part: string,
  comparison: string,
  a: readonly { seed: number; value: number }[],
  b: readonly { seed: number; value: number }[],
  names: [a: string, b: string],
  chance = 0,
): PairedRowData {
  const r = pairedDifference(pairBySeed(a, b, `${part} ${comparison}`));
  return { ...r, part, comparison, a: names[0], b: names[1], verdict: pairedVerdict(r, names, chance) };
}

/** The rule as the report states it. */
export const PAIRED_RULE =
  'd = b − a per seed (same initial weights, batches and flips), 95% t interval d̄ ± t_{0.975, n−1}·s_d/√n; ' +
  'it excludes 0 → one setting is better, it includes 0 → within noise; fewer than 2 seeds → no interval; both within 5 points of chance → both near chance';
