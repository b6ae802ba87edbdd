/**
 * Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist):
 * 70k 28x28 grey images of 10 clothing classes in IDX files.
 *
 * Default location is where the Debian package `dataset-fashion-mnist` installs it:
 * /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
 * The loader also accepts the uncompressed names (no `.gz`).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Dataset } from './dataset.ts';
import { checkIndex, checkRes } from './dataset.ts';
import type { Rng } from '../util/rng.ts';
import type { Image, Sample } from './image.ts';
import { greyTo3 } from './image.ts';
import { DataFormatError, readIdxFile } from './idx.ts';
import { resize, type Interpolation } from './resample.ts';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_INSTALL = 'apt-get install dataset-fashion-mnist';

/** Label names in label order (zalandoresearch/fashion-mnist README, "Labels"). */
export const FASHION_MNIST_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

export type FashionMnistSplit = 'train' | 'test';

/** Raw split: `count` images of `height x width` uint8 (0 = background), labels 0..9. */
export interface GreyImageSet {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

const PREFIX: Record<FashionMnistSplit, string> = { train: 'train', test: 't10k' };

function findFile(dir: string, base: string): string | undefined {
  for (const name of [`${base}.gz`, base]) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Expected file names for a split, gz form first. */
export function fashionMnistFileNames(split: FashionMnistSplit): { images: string; labels: string } {
  return { images: `${PREFIX[split]}-images-idx3-ubyte`, labels: `${PREFIX[split]}-labels-idx1-ubyte` };
}

export function fashionMnistAvailable(dir: string = FASHION_MNIST_DIR): boolean {
  return (['train', 'test'] as const).every((s) => {
    const n = fashionMnistFileNames(s);
    return findFile(dir, n.images) !== undefined && findFile(dir, n.labels) !== undefined;
  });
}

/** Load one split as raw uint8. Throws a clear error when files are missing, `DataFormatError` when malformed. */
export function loadFashionMnist(split: FashionMnistSplit, dir: string = FASHION_MNIST_DIR): GreyImageSet {
  if (split !== 'train' && split !== 'test') throw new RangeError(`loadFashionMnist: split must be 'train' or 'test', got '${String(split)}'`);
  const names = fashionMnistFileNames(split);
  const imgPath = findFile(dir, names.images);
  const lblPath = findFile(dir, names.labels);
  if (!imgPath || !lblPath) {
    const missing = [imgPath ? null : names.images, lblPath ? null : names.labels].filter((x): x is string => x !== null);
    throw new Error(
      `loadFashionMnist: ${missing.map((m) => `${m}.gz (or ${m})`).join(' and ')} not found in ${dir}. ` +
        `Install the Debian package (${FASHION_MNIST_INSTALL}, which puts the files in ${FASHION_MNIST_DIR}) ` +
        `or pass the directory holding ${names.images}.gz and ${names.labels}.gz.`,
    );
  }
  const img = readIdxFile(imgPath);
  const lbl = readIdxFile(lblPath);
  if (img.dtype !== 'uint8' || img.dims.length !== 3) {
    throw new DataFormatError(`expected uint8 images of rank 3 [N, H, W], got ${img.dtype} [${img.dims.join(', ')}]`, imgPath);
  }
  if (lbl.dtype !== 'uint8' || lbl.dims.length !== 1) {
    throw new DataFormatError(`expected uint8 labels of rank 1 [N], got ${lbl.dtype} [${lbl.dims.join(', ')}]`, lblPath);
  }
  const [count, height, width] = img.dims as [number, number, number];
  if (lbl.dims[0] !== count) {
    throw new DataFormatError(`${count} images but ${lbl.dims[0]} labels (from ${lblPath})`, imgPath);
  }
  const labels = lbl.data as Uint8Array;
  for (let i = 0; i < count; i++) {
    if (labels[i]! >= FASHION_MNIST_CLASS_NAMES.length) {
      throw new DataFormatError(`label ${labels[i]} at index ${i} is outside 0..${FASHION_MNIST_CLASS_NAMES.length - 1}`, lblPath);
    }
  }
  return { images: img.data as Uint8Array, labels, count, height, width };
}

/** Item `i` of a grey set as a 1-channel float image in [0, 1]. */
export function greyItem(set: GreyImageSet, i: number): Image {
  checkIndex('greyItem', i, set.count);
  const n = set.height * set.width;
  const data = new Float32Array(n);
  const off = i * n;
  for (let k = 0; k < n; k++) data[k] = set.images[off + k]! / 255;
  return { data, channels: 1, height: set.height, width: set.width };
}

export interface FashionMnistOptions {
  split: FashionMnistSplit;
  dir?: string;
  /** Already loaded data (skips reading files). */
  data?: GreyImageSet;
  /** Resize filter from 28x28 to the requested resolution; default bilinear. */
  interpolation?: Interpolation;
}

/** Fashion-MNIST as a `Dataset`: grey → 3 channels, resized to any resolution. */
export class FashionMnistDataset implements Dataset {
  readonly length: number;
  readonly numClasses = FASHION_MNIST_CLASS_NAMES.length;
  readonly classNames: readonly string[] = FASHION_MNIST_CLASS_NAMES;
  readonly data: GreyImageSet;
  private readonly interpolation: Interpolation;

  constructor(opts: FashionMnistOptions) {
    this.data = opts.data ?? loadFashionMnist(opts.split, opts.dir);
    this.length = this.data.count;
    this.interpolation = opts.interpolation ?? 'bilinear';
  }

  get(i: number, res: number, _rng?: Rng): Sample {
    checkIndex('FashionMnistDataset.get', i, this.length);
    checkRes('FashionMnistDataset.get', res);
    let img = greyItem(this.data, i);
    if (res !== img.height || res !== img.width) img = resize(img, res, res, { interpolation: this.interpolation });
    return { image: greyTo3(img), label: this.data.labels[i]! };
  }
}
