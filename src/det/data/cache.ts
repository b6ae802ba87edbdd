/**
 * A detection dataset that keeps what it has rendered: the deterministic view (`rng` null) of each
 * example at each size is produced once and handed out again, so detectors trained one after
 * another on the same scenes (the main job's variants of one seed see the same batches) render
 * each scene once instead of once per detector. Augmented views (`rng` given) are never cached:
 * they differ per draw.
 *
 * Memory: one CHW float32 image per cached example (3 x 128 x 128 = 192 KiB), plus its boxes; with
 * `dropMasks` the instance masks are not kept (a box-only detector never reads them).
 *
 * @example
 * const train = cachedDetDataset(new SyntheticDetDataset({ ... }), { dropMasks: true });
 */
import type { Rng } from '../../util/rng.ts';
import type { CocoDataset, DetDataset, DetSample } from '../types.ts';

export interface CachedDetDataset extends DetDataset {
  /** Examples rendered so far (cache misses) and handed out from the cache (hits). */
  readonly stats: { misses: number; hits: number };
}

export function cachedDetDataset(inner: DetDataset, opts: { dropMasks?: boolean } = {}): CachedDetDataset {
  const cache = new Map<string, Promise<DetSample>>();
  const stats = { misses: 0, hits: 0 };
  return {
    length: inner.length,
    classNames: inner.classNames,
    categoryIds: inner.categoryIds,
    stats,
    get(i: number, size: [number, number], rng: Rng | null): DetSample | Promise<DetSample> {
      if (rng !== null) return inner.get(i, size, rng);
      const key = `${i}:${size[0]}x${size[1]}`;
      const hit = cache.get(key);
      if (hit) {
        stats.hits++;
        return hit;
      }
      stats.misses++;
      const made = Promise.resolve(inner.get(i, size, null)).then((s) =>
        opts.dropMasks ? { ...s, objects: s.objects.map(({ mask: _m, ...o }) => o) } : s,
      );
      made.catch(() => cache.delete(key)); // a failed render is retried, not remembered
      cache.set(key, made);
      return made;
    },
    cocoGroundTruth(): CocoDataset {
      return inner.cocoGroundTruth();
    },
  };
}
