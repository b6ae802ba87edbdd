/**
 * The one interface every dataset implements, so loaders, training and evaluation
 * never care where pixels come from.
 */
import type { Sample } from './image.ts';
import type { Rng } from '../util/rng.ts';

export interface Dataset {
  readonly length: number;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  /**
   * Example `i` as a 3 x res x res CHW image in [0,1] (before normalisation) and its
   * label. `rng` drives any randomness (augmentation); datasets without randomness
   * ignore it. May return a promise (file decoding is asynchronous).
   */
  get(i: number, res: number, rng: Rng): Sample | Promise<Sample>;
  /**
   * Clip datasets: frames per example. A clip is returned as a 3 x (frames*res) x res image, the
   * frames stacked along the height (the memory of an NCTHW clip, src/data/clips.ts). Absent = 1 (images).
   */
  readonly frames?: number;
  /** False when mirroring an example changes its class (motion directions): training then never flips. */
  readonly mirrorInvariant?: boolean;
}

export function checkIndex(op: string, i: number, length: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new RangeError(`${op}: index ${i} out of range [0, ${length})`);
  }
}

export function checkRes(op: string, res: number): void {
  if (!Number.isInteger(res) || res < 1 || res > 16384) {
    throw new RangeError(`${op}: resolution must be an integer in [1, 16384], got ${res}`);
  }
}
