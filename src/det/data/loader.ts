/**
 * Seeded batches of detection samples: images stacked into one NCHW Float32Array (optionally
 * normalised by a per-channel mean and std), the per-image objects alongside.
 *
 * Conventions of the classification loader (`src/data/loader.ts`): the order of epoch e is a
 * permutation seeded by (seed, e); the augmentation stream of sample j in epoch e is seeded by
 * (seed, e, j), so a batch is a pure function of (seed, epoch, step), training resumes
 * bit-for-bit from (epoch, step), and prefetch cannot change what a batch holds. With
 * `augment: false` the dataset's deterministic evaluation view is used (`rng = null`).
 *
 * Prefetch: while the consumer awaits its step, the next batch is produced, yielding to the event
 * loop between samples (see the classification loader for why there is no worker pool).
 *
 * @example
 * const loader = new DetLoader(ds, { batchSize: 8, size: [128, 128], seed: 0, mean: IMAGENET_MEAN, std: IMAGENET_STD });
 * for await (const b of loader.epoch(0)) { b.x; b.shape; b.targets[k].objects; }
 */
import { Rng, hashSeed } from '../../util/rng.ts';
import type { DetDataset, DetObject } from '../types.ts';

export interface DetLoaderOptions {
  batchSize: number;
  /** [H, W] of every image in the batch. */
  size: [number, number];
  seed: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Draw augmentation (large-scale jitter) from a seeded rng (default true); false = evaluation view. */
  augment?: boolean;
  /** Per-channel mean subtracted from [0, 1] pixels (default none). */
  mean?: readonly number[];
  /** Per-channel std divided into the centred pixels (default none). */
  std?: readonly number[];
  /** Produce the next batch while the current one is in use (default true). */
  prefetch?: boolean;
}

/** Everything of a DetSample except its pixels (those are in the batch tensor). */
export interface DetTarget {
  objects: DetObject[];
  imageId: number;
  scale: [number, number];
  originalSize: [number, number];
}

export interface DetBatch {
  epoch: number;
  step: number;
  /** Dataset indices, in batch order. */
  indices: Int32Array;
  /** NCHW [B, 3, H, W]. */
  x: Float32Array;
  shape: [number, number, number, number];
  targets: DetTarget[];
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function channelStats(name: string, v: readonly number[] | undefined, def: number, positive: boolean): number[] {
  if (v === undefined) return [def, def, def];
  if (v.length !== 3 || !v.every((x) => Number.isFinite(x) && (!positive || x > 0))) {
    throw new RangeError(`DetLoader: ${name} must be 3 finite numbers${positive ? ' > 0' : ''} (one per RGB channel), got [${v.join(', ')}]`);
  }
  return [...v];
}

export class DetLoader {
  readonly dataset: DetDataset;
  readonly batchSize: number;
  readonly size: [number, number];
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly augment: boolean;
  readonly prefetch: boolean;
  readonly mean: readonly number[];
  readonly std: readonly number[];

  constructor(dataset: DetDataset, opts: DetLoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`DetLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    if (opts.size.length !== 2 || !opts.size.every((v) => Number.isInteger(v) && v >= 1 && v <= 16384)) {
      throw new RangeError(`DetLoader: size must be [H, W] positive integers, got [${opts.size.join(', ')}]`);
    }
    if (dataset.length < 1) throw new RangeError('DetLoader: dataset is empty');
    this.dataset = dataset;
    this.batchSize = opts.batchSize;
    this.size = [opts.size[0], opts.size[1]];
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    this.augment = opts.augment ?? true;
    this.prefetch = opts.prefetch ?? true;
    this.mean = channelStats('mean', opts.mean, 0, false);
    this.std = channelStats('std', opts.std, 1, true);
    if (this.dropLast && dataset.length < this.batchSize) {
      throw new RangeError(`DetLoader: dropLast with batchSize ${this.batchSize} > dataset length ${dataset.length} gives no batches`);
    }
  }

  get stepsPerEpoch(): number {
    const n = this.dataset.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  order(epoch: number): Int32Array {
    if (!this.shuffle) return Int32Array.from({ length: this.dataset.length }, (_, i) => i);
    return new Rng(hashSeed(this.seed, 'det-loader-order', epoch)).permutation(this.dataset.length);
  }

  /** The augmentation stream of sample `index` in `epoch` (null without augmentation). */
  sampleRng(epoch: number, index: number): Rng | null {
    return this.augment ? new Rng(hashSeed(this.seed, 'det-loader-aug', epoch, index)) : null;
  }

  /** Batch `step` of `epoch`: a pure function of (seed, epoch, step). */
  async batch(epoch: number, step: number, order: Int32Array = this.order(epoch)): Promise<DetBatch> {
    if (!Number.isInteger(step) || step < 0 || step >= this.stepsPerEpoch) {
      throw new RangeError(`DetLoader.batch: step ${step} out of range [0, ${this.stepsPerEpoch})`);
    }
    const lo = step * this.batchSize;
    const indices = order.slice(lo, Math.min(lo + this.batchSize, order.length));
    const B = indices.length;
    const [H, W] = this.size;
    const plane = H * W;
    const x = new Float32Array(B * 3 * plane);
    const targets: DetTarget[] = [];
    for (let b = 0; b < B; b++) {
      const idx = indices[b]!;
      const s = await this.dataset.get(idx, this.size, this.sampleRng(epoch, idx));
      const im = s.image;
      if (im.channels !== 3 || im.height !== H || im.width !== W) {
        throw new RangeError(`DetLoader: dataset.get(${idx}, [${H}, ${W}]) returned ${im.channels}x${im.height}x${im.width}, expected 3x${H}x${W}`);
      }
      for (let c = 0; c < 3; c++) {
        const m = this.mean[c]!;
        const k = 1 / this.std[c]!;
        const src = c * plane;
        const dst = (b * 3 + c) * plane;
        for (let p = 0; p < plane; p++) x[dst + p] = (im.data[src + p]! - m) * k;
      }
      targets.push({ objects: s.objects, imageId: s.imageId, scale: s.scale, originalSize: s.originalSize });
      if (this.prefetch) await nextTick();
    }
    return { epoch, step, indices, x, shape: [B, 3, H, W], targets };
  }

  /** The batches of `epoch` from `startStep`; with prefetch the next batch starts before the current one is handed out. */
  async *epoch(epoch: number, startStep = 0): AsyncGenerator<DetBatch> {
    const steps = this.stepsPerEpoch;
    if (!Number.isInteger(startStep) || startStep < 0 || startStep > steps) {
      throw new RangeError(`DetLoader.epoch: startStep must be in [0, ${steps}], got ${startStep}`);
    }
    const order = this.order(epoch);
    if (!this.prefetch) {
      for (let s = startStep; s < steps; s++) yield await this.batch(epoch, s, order);
      return;
    }
    let pending: Promise<DetBatch> | null = startStep < steps ? this.batch(epoch, startStep, order) : null;
    for (let s = startStep; s < steps; s++) {
      const current = await pending!;
      pending = s + 1 < steps ? this.batch(epoch, s + 1, order) : null;
      pending?.catch(() => undefined);
      yield current;
    }
  }
}
