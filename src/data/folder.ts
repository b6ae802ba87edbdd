/**
 * Image-folder dataset (torchvision `ImageFolder` layout): `root/<class>/<file>`, one
 * sub-folder per class, class names sorted, files sorted within a class. JPEG, PNG and
 * WebP are decoded by sharp (libvips).
 *
 * `get(i, res)` decodes the file, resizes with sharp so the shorter side is
 * `loadSize(res)` (default `res`), then applies the transform (default: center crop
 * to res x res). With `loadSize: r => Math.round(r * 256 / 224)` and the default
 * center crop this is the ResFormer evaluation pipeline.
 *
 * Undecodable files: `onError: 'throw'` (default) fails with the file name;
 * `'skip'` substitutes the next decodable file of the same class (so indices stay
 * stable and batches full) and counts the failures in `skipped`.
 */
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Rng } from '../util/rng.ts';
import type { Dataset } from './dataset.ts';
import { checkIndex, checkRes } from './dataset.ts';
import type { Image, Sample } from './image.ts';
import { hwcU8ToChw } from './image.ts';
import { centerCropImage, type Transform } from './transforms.ts';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'] as const;

export interface FolderOptions {
  root: string;
  onError?: 'throw' | 'skip';
  /** Shorter side after decoding, given the requested resolution. Default identity. */
  loadSize?: (res: number) => number;
  /** Applied after decoding; default center crop to res x res. */
  transform?: Transform;
}

export class FolderDataset implements Dataset {
  readonly root: string;
  readonly classNames: readonly string[];
  readonly numClasses: number;
  readonly length: number;
  readonly files: readonly string[];
  readonly labels: Int32Array;
  /** Undecodable files seen so far (with onError 'skip'). */
  readonly failed = new Set<string>();
  private readonly onError: 'throw' | 'skip';
  private readonly loadSize: (res: number) => number;
  private readonly transform: Transform | undefined;

  constructor(opts: FolderOptions) {
    this.root = opts.root;
    this.onError = opts.onError ?? 'throw';
    this.loadSize = opts.loadSize ?? ((r) => r);
    this.transform = opts.transform;
    let entries: string[];
    try {
      entries = readdirSync(opts.root);
    } catch (err) {
      throw new Error(`FolderDataset: cannot read root directory ${opts.root} (${(err as Error).message}); expected root/<class>/<image files>`, { cause: err });
    }
    const classes = entries.filter((e) => statSync(path.join(opts.root, e)).isDirectory()).sort();
    if (classes.length === 0) throw new Error(`FolderDataset: ${opts.root} has no class sub-directories; expected root/<class>/<image files>`);
    const files: string[] = [];
    const labels: number[] = [];
    classes.forEach((cls, k) => {
      const dir = path.join(opts.root, cls);
      const imgs = readdirSync(dir)
        .filter((f) => (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(f).toLowerCase()))
        .sort();
      for (const f of imgs) {
        files.push(path.join(dir, f));
        labels.push(k);
      }
    });
    if (files.length === 0) {
      throw new Error(`FolderDataset: no images (${IMAGE_EXTENSIONS.join(', ')}) under the ${classes.length} class folders of ${opts.root}`);
    }
    this.classNames = classes;
    this.numClasses = classes.length;
    this.files = files;
    this.labels = Int32Array.from(labels);
    this.length = files.length;
  }

  get skipped(): number {
    return this.failed.size;
  }

  /** Decode file i with its shorter side resized to `shorter` px. */
  async decode(i: number, shorter: number): Promise<Image> {
    checkIndex('FolderDataset.decode', i, this.length);
    const file = this.files[i]!;
    try {
      const meta = await sharp(file).metadata();
      const w0 = meta.width;
      const h0 = meta.height;
      if (!w0 || !h0) throw new Error('no dimensions in header');
      const scale = shorter / Math.min(w0, h0);
      const w = Math.max(1, Math.round(w0 * scale));
      const h = Math.max(1, Math.round(h0 * scale));
      const { data, info } = await sharp(file)
        .rotate() // honour EXIF orientation
        .removeAlpha()
        .toColourspace('srgb')
        .resize(w, h, { fit: 'fill', kernel: 'lanczos3' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      const img = hwcU8ToChw(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.height, info.width, info.channels);
      if (img.channels === 3) return img;
      if (img.channels === 1) return { ...img, data: Float32Array.from({ length: 3 * info.height * info.width }, (_, k) => img.data[k % (info.height * info.width)]!), channels: 3 };
      throw new Error(`decoded to ${img.channels} channels`);
    } catch (err) {
      throw new Error(`FolderDataset: cannot decode ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  async get(i: number, res: number, rng: Rng): Promise<Sample> {
    checkIndex('FolderDataset.get', i, this.length);
    checkRes('FolderDataset.get', res);
    const label = this.labels[i]!;
    const shorter = this.loadSize(res);
    // With 'skip', walk forward through the same class for a decodable file.
    for (let k = 0; k < this.length; k++) {
      const j = (i + k) % this.length;
      if (this.labels[j] !== label) continue;
      if (this.failed.has(this.files[j]!)) continue;
      try {
        const img = await this.decode(j, shorter);
        const out = this.transform ? this.transform(img, res, rng) : centerCropImage(img, res, res);
        return { image: out, label };
      } catch (err) {
        if (this.onError === 'throw') throw err;
        this.failed.add(this.files[j]!);
      }
    }
    throw new Error(`FolderDataset: no decodable image in class '${this.classNames[label]}' (${this.failed.size} files failed to decode)`);
  }
}
