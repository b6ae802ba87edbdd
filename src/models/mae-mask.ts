/**
 * MAE mask sampling (Ryali et al. 2023; facebookresearch/hiera `hiera.py` `get_random_mask`) and the
 * host feeds that carry a mask into a compiled graph. Convention, stated once: **1 = KEEP**
 * (visible), the opposite of the original MAE. The masks are drawn in TypeScript from a seeded
 * generator, so a run is reproducible and one compiled session serves every mask.
 *
 * @example
 * const mask = randomMaskUnits(new Rng(0), 8, 16, 0.6);   // [8 * 16] of 0/1, 6 kept per image
 * const feeds = maskIndexFeeds(mask, 8, 16);              // { mask, keep, restore, lenKeep }
 */
import { type HostTensor, host } from '../graph/runtime.ts';
import type { Rng } from '../util/rng.ts';

/**
 * Per image, the `int(numUnits * (1 - ratio))` units with the smallest uniform noise are kept
 * (hiera.py `get_random_mask`: `noise = rand(B, #MUs)`, `argsort(noise)[:, :len_keep]`). Returns
 * `[B * numUnits]` of 0/1 with 1 = KEEP, drawn sample-major from `rng`.
 */
export function randomMaskUnits(rng: Rng, B: number, numUnits: number, ratio: number): Uint8Array {
  const K = lenKeepOf(numUnits, ratio, 'randomMaskUnits');
  const out = new Uint8Array(B * numUnits);
  for (let b = 0; b < B; b++) {
    const noise = Array.from({ length: numUnits }, () => rng.next());
    const order = noise.map((v, i) => [v, i] as const).sort((a, c) => a[0] - c[0] || a[1] - c[1]);
    for (let k = 0; k < K; k++) out[b * numUnits + order[k]![1]] = 1;
  }
  return out;
}

/** Kept units per image at `ratio`: `int(numUnits * (1 - ratio))`, checked to keep and mask at least one. */
export function lenKeepOf(numUnits: number, ratio: number, where: string): number {
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`${where}: mask ratio must be in [0, 1), got ${ratio}`);
  // Same float expression as the official int(num_windows * (1 - mask_ratio)): 16 * 0.4 -> 6.
  const K = Math.trunc(numUnits * (1 - ratio));
  if (K < 1 || K >= numUnits) {
    throw new RangeError(
      `${where}: ratio ${ratio} keeps ${K} of ${numUnits} mask units; the MAE needs at least one kept and one masked unit ` +
        `(use a ratio in (${(1 - (numUnits - 1) / numUnits).toFixed(3)}, ${(1 - 1 / numUnits).toFixed(3)}] or a larger image)`,
    );
  }
  return K;
}

/**
 * The host feeds of a mask `[B * #MUs]` (0/1, 1 = keep): `mask` [B, #MUs] float32, `keep` [B, K]
 * int64 (kept units ascending) and `restore` [B, #MUs] int64 (rank among the kept, or K for a masked
 * unit, which selects the mask token). Every sample must keep the same number of units.
 */
export function maskIndexFeeds(mask: ArrayLike<number>, B: number, numUnits: number): { mask: HostTensor; keep: HostTensor; restore: HostTensor; lenKeep: number } {
  if (mask.length !== B * numUnits) throw new Error(`maskIndexFeeds: ${mask.length} mask values for B=${B} x ${numUnits} mask units`);
  let K = -1;
  const keep: bigint[] = [];
  const restore = new BigInt64Array(B * numUnits);
  const m = new Float32Array(B * numUnits);
  for (let b = 0; b < B; b++) {
    const kept: number[] = [];
    for (let u = 0; u < numUnits; u++) {
      const v = mask[b * numUnits + u]!;
      if (v !== 0 && v !== 1) throw new Error(`maskIndexFeeds: mask values must be 0 or 1, got ${v} at sample ${b}, unit ${u}`);
      m[b * numUnits + u] = v;
      if (v === 1) kept.push(u);
    }
    if (K === -1) K = kept.length;
    if (kept.length !== K) throw new Error(`maskIndexFeeds: sample ${b} keeps ${kept.length} units but sample 0 keeps ${K}; every sample must keep the same number (hiera_mae.py)`);
    if (K === 0 || K === numUnits) throw new Error(`maskIndexFeeds: sample ${b} keeps ${K} of ${numUnits} units; keep at least one and mask at least one`);
    for (let u = 0, r = 0; u < numUnits; u++) restore[b * numUnits + u] = BigInt(m[b * numUnits + u] === 1 ? r++ : K);
    keep.push(...kept.map(BigInt));
  }
  return {
    mask: host(m, [B, numUnits]),
    keep: host(BigInt64Array.from(keep), [B, K]),
    restore: host(restore, [B, numUnits]),
    lenKeep: K,
  };
}
