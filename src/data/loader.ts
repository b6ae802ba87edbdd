/**
 * Seeded batch loading at one or several resolutions.
 *
 * Multi-resolution training (ResFormer, Tian et al. 2023, Sec. 3.1): every batch
 * holds the SAME underlying samples at each training resolution, sorted descending
 * (the scale-consistency loss teaches each resolution from the next larger one).
 * With `sepAug: false` every resolution of a sample draws its augmentation from the
 * same random stream (same crop box fractions and flip); with `sepAug: true` each
 * resolution gets an independent stream (ResFormer's `--sep-aug`).
 *
 * Determinism: the order of epoch e is a permutation seeded by (seed, e); the
 * augmentation stream of sample j at resolution slot r in epoch e is seeded by
 * (seed, e, j, r). Batches are therefore pure functions of (seed, epoch, step), so
 * training resumes bit-for-bit from (epoch, step) without saving RNG state, and
 * the order in which batches are produced (prefetch) cannot change them.
 *
 * Prefetch: async double-buffering on the main thread. While the consumer awaits
 * its step (ONNX Runtime computes on its own native threads), the next batch is
 * produced in slices, yielding to the event loop between samples (setImmediate), so
 * CPU-side rendering/decoding overlaps the model's compute. There is no
 * worker_threads pool: datasets hold closures/instances that do not transfer to
 * workers, and synthetic rendering (~0.6 ms per 64 px image) is small next to a step.
 */
import { Rng, hashSeed } from '../util/rng.ts';
import type { Dataset } from './dataset.ts';
import { checkIndex, checkRes } from './dataset.ts';
import type { Batch, Sample } from './image.ts';
import type { Transform } from './transforms.ts';

export type { Dataset } from './dataset.ts';

/** A dataset whose images are produced by `base` at `sourceRes(res)` then passed through `transform`. */
export class TransformedDataset implements Dataset {
  readonly length: number;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly frames?: number;
  readonly mirrorInvariant?: boolean;

  constructor(
    readonly base: Dataset,
    readonly transform: Transform,
    /** Resolution to fetch from `base` for an output resolution; default the same. */
    readonly sourceRes: (res: number) => number = (r) => r,
  ) {
    this.length = base.length;
    this.numClasses = base.numClasses;
    this.classNames = base.classNames;
    if (base.frames !== undefined) this.frames = base.frames;
    if (base.mirrorInvariant !== undefined) this.mirrorInvariant = base.mirrorInvariant;
  }

  async get(i: number, res: number, rng: Rng): Promise<Sample> {
    const s = await this.base.get(i, this.sourceRes(res), rng);
    // Clips are frames stacked along the height: a per-pixel transform treats them as one tall image.
    const image = this.transform(s.image, res, rng);
    const T = this.frames ?? 1;
    if (image.height !== T * res || image.width !== res || image.channels !== 3) {
      throw new RangeError(`TransformedDataset.get: transform returned ${image.channels}x${image.height}x${image.width}, expected 3x${T * res}x${res}${T > 1 ? ` (${T} frames stacked)` : ''}`);
    }
    return { image, label: s.label };
  }
}

export interface LoaderOptions {
  batchSize: number;
  /** One or more resolutions; batches come sorted descending. */
  resolutions: number[];
  seed: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Independent augmentation per resolution (default false: shared). */
  sepAug?: boolean;
  /** Produce the next batch while the current one is in use (default true). */
  prefetch?: boolean;
}

export interface MultiResBatch {
  epoch: number;
  step: number;
  /** Dataset indices of the samples, in batch order. */
  indices: Int32Array;
  /** One batch per resolution, resolutions descending. */
  batches: Batch[];
  resolutions: number[];
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Loader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly resolutions: number[];
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly sepAug: boolean;
  readonly prefetch: boolean;

  constructor(dataset: Dataset, opts: LoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`Loader: batchSize must be a positive integer, got ${opts.batchSize}`);
    if (opts.resolutions.length === 0) throw new RangeError('Loader: resolutions must not be empty');
    for (const r of opts.resolutions) checkRes('Loader', r);
    if (new Set(opts.resolutions).size !== opts.resolutions.length) throw new RangeError(`Loader: duplicate resolutions in [${opts.resolutions.join(', ')}]`);
    if (dataset.length < 1) throw new RangeError('Loader: dataset is empty');
    this.dataset = dataset;
    this.batchSize = opts.batchSize;
    this.resolutions = [...opts.resolutions].sort((a, b) => b - a);
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    this.sepAug = opts.sepAug ?? false;
    this.prefetch = opts.prefetch ?? true;
    if (this.dropLast && dataset.length < this.batchSize) {
      throw new RangeError(`Loader: dropLast with batchSize ${this.batchSize} > dataset length ${dataset.length} gives no batches`);
    }
  }

  get stepsPerEpoch(): number {
    const n = this.dataset.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** Sample order of an epoch. */
  order(epoch: number): Int32Array {
    if (!this.shuffle) return Int32Array.from({ length: this.dataset.length }, (_, i) => i);
    return new Rng(hashSeed(this.seed, 'loader-order', epoch)).permutation(this.dataset.length);
  }

  /** The augmentation stream of sample `index` at resolution slot `slot` in `epoch`. */
  sampleRng(epoch: number, index: number, slot: number): Rng {
    return new Rng(hashSeed(this.seed, 'loader-aug', epoch, index, this.sepAug ? slot : -1));
  }

  /** Batch `step` of `epoch` (a pure function of seed, epoch, step). */
  async batch(epoch: number, step: number, order: Int32Array = this.order(epoch)): Promise<MultiResBatch> {
    checkIndex('Loader.batch', step, this.stepsPerEpoch);
    const lo = step * this.batchSize;
    const indices = order.slice(lo, Math.min(lo + this.batchSize, order.length));
    const B = indices.length;
    // Clip datasets: T frames stacked along the height, so a batch is [B, 3, T*r, r] = NCTHW memory.
    const T = this.dataset.frames ?? 1;
    const batches: Batch[] = this.resolutions.map((r) => ({ x: new Float32Array(B * 3 * T * r * r), shape: [B, 3, T * r, r], labels: new Int32Array(B) }));
    for (let b = 0; b < B; b++) {
      const idx = indices[b]!;
      for (let slot = 0; slot < this.resolutions.length; slot++) {
        const r = this.resolutions[slot]!;
        const s = await this.dataset.get(idx, r, this.sampleRng(epoch, idx, slot));
        const im = s.image;
        if (im.channels !== 3 || im.height !== T * r || im.width !== r) {
          throw new RangeError(`Loader: dataset.get(${idx}, ${r}) returned ${im.channels}x${im.height}x${im.width}, expected 3x${T * r}x${r}${T > 1 ? ` (${T} frames stacked)` : ''}`);
        }
        const out = batches[slot]!;
        out.x.set(im.data, b * 3 * T * r * r);
        out.labels[b] = s.label;
      }
      // Let the consumer's pending work (e.g. an ONNX Runtime step) make progress.
      if (this.prefetch) await nextTick();
    }
    return { epoch, step, indices, batches, resolutions: [...this.resolutions] };
  }

  /**
   * Iterate the batches of `epoch` from `startStep` (resume point). With prefetch the
   * next batch is started before the current one is handed out.
   */
  async *epoch(epoch: number, startStep = 0): AsyncGenerator<MultiResBatch> {
    const steps = this.stepsPerEpoch;
    if (!Number.isInteger(startStep) || startStep < 0 || startStep > steps) {
      throw new RangeError(`Loader.epoch: startStep must be in [0, ${steps}], got ${startStep}`);
    }
    const order = this.order(epoch);
    if (!this.prefetch) {
      for (let s = startStep; s < steps; s++) yield await this.batch(epoch, s, order);
      return;
    }
    let pending: Promise<MultiResBatch> | null = startStep < steps ? this.batch(epoch, startStep, order) : null;
    for (let s = startStep; s < steps; s++) {
      const current = await pending!;
      pending = s + 1 < steps ? this.batch(epoch, s + 1, order) : null;
      // Avoid an unhandled rejection if the consumer stops early and the prefetch fails.
      pending?.catch(() => undefined);
      yield current;
    }
  }
}
