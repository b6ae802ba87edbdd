/**
 * Nearest valid sizes for error messages ("use 224 or 240"): the one helper behind the input-size
 * checks of the models and the absolute-win crop rule.
 */

/** Multiples of `step` around `v` that are >= minimum: `[below, above]` (above > below). */
export function nearestMultiples(v: number, step: number, minimum = step): [number, number] {
  const lo = Math.max(minimum, Math.floor(v / step) * step);
  const hi = Math.max(minimum, Math.ceil(v / step) * step);
  return [lo, hi === lo ? lo + step : hi];
}

/**
 * `v` itself when it is a multiple of `step` (and >= minimum); `minimum` when `v` is below it;
 * otherwise the two nearest multiples, as text: "48 or 64".
 */
export function nearestMultiplesText(v: number, step: number, minimum = step): string {
  if (v % step === 0 && v >= minimum) return `${v}`;
  if (v < minimum) return `${minimum}`;
  return nearestMultiples(v, step, minimum).join(' or ');
}
