import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatInterval,
  formatPerSeed,
  lnGamma,
  pairBySeed,
  pairedDifference,
  pairedVerdict,
  regularizedBeta,
  studentTCdf,
  studentTQuantile,
  validatePairedData,
} from '../../src/eval/paired.ts';

const near = (got: number, want: number, tol: number, what: string): void => assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

test('lnGamma matches factorials and Γ(1/2) = √π', () => {
  near(lnGamma(1), 0, 1e-14, 'lnΓ(1)');
  near(lnGamma(5), Math.log(24), 1e-13, 'lnΓ(5)');
  near(lnGamma(0.5), 0.5 * Math.log(Math.PI), 1e-13, 'lnΓ(1/2)');
  near(lnGamma(0.1), Math.log(9.513507698668732), 1e-12, 'lnΓ(0.1)');
  assert.throws(() => lnGamma(0), /x must be a finite number > 0, got 0/);
});

test('regularizedBeta: closed forms I_x(1,1) = x, I_x(a,1) = x^a, I_x(1,b) = 1 − (1−x)^b, symmetry', () => {
  for (const x of [0.01, 0.3, 0.5, 0.77, 0.99]) {
    near(regularizedBeta(x, 1, 1), x, 1e-13, `I_${x}(1,1)`);
    near(regularizedBeta(x, 3.5, 1), x ** 3.5, 1e-13, `I_${x}(3.5,1)`);
    near(regularizedBeta(x, 1, 2.5), 1 - (1 - x) ** 2.5, 1e-13, `I_${x}(1,2.5)`);
    near(regularizedBeta(x, 2, 5) + regularizedBeta(1 - x, 5, 2), 1, 1e-13, `symmetry at ${x}`);
  }
  assert.throws(() => regularizedBeta(1.5, 1, 1), /x must be in \[0, 1\], got 1.5/);
});

test('Student t quantiles: the published 97.5% table values and the closed forms for df 1 and 2', () => {
  // Table values (upper 2.5% points): NIST/SEMATECH e-Handbook §1.3.6.7.2 "Critical values of Student's t
  // distribution" prints them to 3 decimals (12.706, 4.303, 3.182, 2.776, ...); the 6 decimals here are
  // R's qt(0.975, df). The closed forms below check more digits independently.
  const table: [number, number][] = [
    [1, 12.706205], [2, 4.302653], [3, 3.182446], [4, 2.776445], [5, 2.570582],
    [9, 2.262157], [10, 2.228139], [20, 2.085963], [30, 2.042272],
  ];
  for (const [df, t] of table) near(studentTQuantile(0.975, df), t, 2e-6, `t_0.975,${df}`);
  near(studentTQuantile(0.95, 4), 2.131847, 2e-6, 't_0.95,4');
  near(studentTQuantile(0.995, 2), 9.924843, 2e-6, 't_0.995,2');
  // df = 1 is the Cauchy distribution: t_p = tan(π (p − ½)); df = 2: t_p = (2p − 1) / sqrt(2 p (1 − p)).
  for (const p of [0.6, 0.9, 0.975, 0.999]) {
    near(studentTQuantile(p, 1), Math.tan(Math.PI * (p - 0.5)), 1e-9 * Math.max(1, Math.tan(Math.PI * (p - 0.5))), `Cauchy ${p}`);
    near(studentTQuantile(p, 2), (2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 1e-10, `df 2 at ${p}`);
  }
  // Symmetry, the median, and a large df approaching the normal quantile 1.959964.
  near(studentTQuantile(0.025, 7), -studentTQuantile(0.975, 7), 1e-12, 'symmetry');
  assert.equal(studentTQuantile(0.5, 3), 0);
  near(studentTQuantile(0.975, 1e6), 1.959966, 1e-5, 'df 1e6');
  near(studentTCdf(studentTQuantile(0.975, 6), 6), 0.975, 1e-12, 'CDF inverts the quantile');
  assert.throws(() => studentTQuantile(0.975, 0), /degrees of freedom must be a finite number > 0, got 0.*at least 2 seeds/);
  assert.throws(() => studentTQuantile(1, 3), /p must be in \(0, 1\), got 1/);
});

test('paired interval against a hand-computed case that excludes 0', () => {
  // a = 50, 60, 55; b = 52, 63, 57.5 → d = 2, 3, 2.5.
  // d̄ = 7.5 / 3 = 2.5; Σ(d − d̄)² = 0.25 + 0.25 + 0 = 0.5; s_d = sqrt(0.5 / 2) = 0.5;
  // se = 0.5 / √3 = 0.288675; t_{0.975, 2} = 4.302653; half-width = 4.302653 · 0.288675 = 1.242069;
  // interval = [1.257931, 3.742069] > 0 → b better.
  const r = pairedDifference([{ seed: 2, a: 55, b: 57.5 }, { seed: 0, a: 50, b: 52 }, { seed: 1, a: 60, b: 63 }]);
  assert.deepEqual(r.perSeed.map((p) => [p.seed, p.diff]), [[0, 2], [1, 3], [2, 2.5]], 'sorted by seed, diff = b − a');
  assert.equal(r.n, 3);
  assert.equal(r.df, 2);
  near(r.mean, 2.5, 1e-12, 'mean');
  near(r.sd, 0.5, 1e-12, 'sd');
  near(r.t!, 4.302653, 1e-6, 't');
  near(r.low!, 1.257931, 1e-5, 'low');
  near(r.high!, 3.742069, 1e-5, 'high');
  assert.equal(pairedVerdict(r, ['absolute', 'abs-win'], 10), 'abs-win better (95% CI excludes 0)');
  assert.equal(formatPerSeed(r), 's0 +2.0, s1 +3.0, s2 +2.5');
  assert.equal(formatInterval(r), '[1.3, 3.7]');
});

test('paired interval against a hand-computed case that includes 0, and a negative one', () => {
  // d = 2, 3, 0 → d̄ = 5/3 = 1.666667; Σ(d − d̄)² = 1/9 + 16/9 + 25/9 = 42/9 = 4.666667;
  // s_d = sqrt(4.666667 / 2) = 1.527525; se = 1.527525 / √3 = 0.881917;
  // half-width = 4.302653 · 0.881917 = 3.794580 → [−2.127913, 5.461247] contains 0.
  const r = pairedDifference([{ seed: 0, a: 50, b: 52 }, { seed: 1, a: 60, b: 63 }, { seed: 2, a: 55, b: 55 }]);
  near(r.sd, 1.527525, 1e-6, 'sd');
  near(r.low!, -2.127913, 1e-5, 'low');
  near(r.high!, 5.461247, 1e-5, 'high');
  assert.equal(pairedVerdict(r, ['absolute', 'abs-win'], 10), 'within noise (95% CI includes 0)');
  // Five seeds, d = −1, −2, −1.5, −1, −2: d̄ = −1.5, Σ(d − d̄)² = 4·0.25 = 1, s_d = sqrt(1/4) = 0.5,
  // se = 0.5/√5 = 0.223607, t_{0.975,4} = 2.776445 → half 0.620832 → [−2.120832, −0.879168] < 0 → a better.
  const neg = pairedDifference([-1, -2, -1.5, -1, -2].map((d, seed) => ({ seed, a: 40, b: 40 + d })));
  near(neg.low!, -2.120832, 1e-5, 'low');
  near(neg.high!, -0.879168, 1e-5, 'high');
  assert.equal(pairedVerdict(neg, ['absolute', 'abs-win']), 'absolute better (95% CI excludes 0)');
});

test('paired verdict: near chance and one seed; errors name the seed', () => {
  assert.equal(pairedVerdict(pairedDifference([{ seed: 0, a: 11, b: 12 }, { seed: 1, a: 10, b: 14 }]), ['a', 'b'], 10), 'both near chance');
  const one = pairedDifference([{ seed: 3, a: 50, b: 70 }]);
  assert.equal(one.low, null);
  assert.equal(one.t, null);
  assert.equal(pairedVerdict(one, ['a', 'b'], 10), 'one seed: no interval');
  assert.equal(formatInterval(one), '—');
  assert.throws(() => pairedDifference([{ seed: 1, a: 1, b: 2 }, { seed: 1, a: 3, b: 4 }]), /seed 1 appears twice/);
  assert.throws(() => pairedDifference([]), /no pairs given/);
  assert.throws(() => pairBySeed([{ seed: 0, value: 1 }, { seed: 1, value: 2 }], [{ seed: 0, value: 1 }], 'x'), /seed 1 has a value for a but none for b/);
  assert.deepEqual(pairBySeed([{ seed: 1, value: 5 }, { seed: 0, value: 1 }], [{ seed: 0, value: 2 }, { seed: 1, value: 7 }], 'x'), [{ seed: 0, a: 1, b: 2 }, { seed: 1, a: 5, b: 7 }]);
});

test('validatePairedData accepts what pairedDifference produces and catches wrong arithmetic', () => {
  const r = pairedDifference([{ seed: 0, a: 50, b: 52 }, { seed: 1, a: 60, b: 63 }, { seed: 2, a: 55, b: 57.5 }]);
  const row = { ...r, part: 'abswin', comparison: 'direct/zoom/96', a: 'absolute', b: 'abswin', verdict: pairedVerdict(r, ['absolute', 'abswin'], 10) };
  const one = pairedDifference([{ seed: 0, a: 50, b: 52 }]);
  const good = { rule: '95% t interval', rows: [row, { ...one, part: 'mae', comparison: 'x', a: 'p', b: 'q', verdict: 'one seed: no interval' }] };
  assert.deepEqual(validatePairedData(JSON.parse(JSON.stringify(good))), []);
  const bad = (edit: (x: typeof row) => void): string[] => {
    const c = structuredClone(row);
    edit(c);
    return validatePairedData({ rule: 'r', rows: [c] });
  };
  assert.match(bad((c) => (c.perSeed[1]!.diff = 2)).join(), /perSeed\[1\]\.diff: 2 is not b − a = 3/);
  assert.match(bad((c) => (c.high = 4)).join(), /interval \[.*\] is not mean ± t·sd\/√n/);
  assert.match(bad((c) => (c.t = 1.96)).join(), /\.t: 1.96, expected t_\{0.975, 2\}/);
  assert.match(bad((c) => (c.verdict = 'within noise (95% CI includes 0)')).join(), /verdict: .* disagrees with the interval/);
  assert.match(validatePairedData({ rule: 'r', rows: [] }).join(), /rows: expected a non-empty list/);
});
