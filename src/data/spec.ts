/**
 * The `--data` spec: one grammar, one parser, for every command that takes data (train, finetune,
 * pretrain, eval, reproduce, export's class names).
 *
 * | spec                        | what it is                                                                  |
 * |-----------------------------|-----------------------------------------------------------------------------|
 * | `synthetic`                 | rendered shape scenes (src/data/synthetic.ts), any resolution               |
 * | `synthetic-clips[:T]`       | moving objects, T frames (default 8; src/data/clips.ts), for video models   |
 * | `fashion-mnist[:dir]`       | the Fashion-MNIST images themselves (28 x 28 grey, IDX files in `dir`)      |
 * | `fashion-mnist-scenes[:dir]`| Fashion-MNIST items placed at random positions in textured scenes (src/data/scenes.ts) |
 * | `folder:<root>`             | an image folder `<root>/<class>/<files>` (root/train and root/val when present) |
 *
 * `fashion-mnist` and `fashion-mnist-scenes` are two named datasets, not one name with two meanings:
 * `reproduce` needs objects at positions inside a larger image (the resolution experiments), so it
 * takes the scenes and says so when given the plain images.
 *
 * @example
 * parseDataSpec('synthetic-clips:4');   // { kind: 'synthetic-clips', frames: 4, spec: 'synthetic-clips:4' }
 * const { train, val } = dataSplits('synthetic', { seed: 0, trainSize: 100 });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Dataset } from './dataset.ts';
import { SyntheticDataset, SYNTHETIC_CLASS_NAMES } from './synthetic.ts';
import { SyntheticClipDataset } from './clips.ts';
import { FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_DIR, FASHION_MNIST_INSTALL, FashionMnistDataset, fashionMnistAvailable, loadFashionMnist } from './fashion-mnist.ts';
import { ScenesDataset } from './scenes.ts';
import { FolderDataset } from './folder.ts';

/** Default frames of `synthetic-clips` without `:T`. */
export const DEFAULT_CLIP_FRAMES = 8;

export type DataSpec =
  | { kind: 'synthetic'; spec: string }
  | { kind: 'synthetic-clips'; frames: number; spec: string }
  | { kind: 'fashion-mnist'; dir: string; spec: string }
  | { kind: 'fashion-mnist-scenes'; dir: string; spec: string }
  | { kind: 'folder'; root: string; spec: string };

export const DATA_SPECS = 'synthetic, synthetic-clips[:frames], fashion-mnist[:dir], fashion-mnist-scenes[:dir], folder:<path>';

/** Parses a `--data` spec (see the file comment); throws naming the specs that exist. */
export function parseDataSpec(spec: string): DataSpec {
  const after = (prefix: string): string | undefined => (spec.startsWith(`${prefix}:`) ? spec.slice(prefix.length + 1) : undefined);
  const is = (prefix: string): boolean => spec === prefix || spec.startsWith(`${prefix}:`);
  if (spec === 'synthetic') return { kind: 'synthetic', spec };
  if (is('synthetic-clips')) {
    const t = after('synthetic-clips');
    const frames = t === undefined ? DEFAULT_CLIP_FRAMES : Number(t);
    if (!Number.isInteger(frames) || frames < 1) throw new Error(`--data ${spec}: the frame count after 'synthetic-clips:' must be a positive integer (e.g. synthetic-clips:8)`);
    return { kind: 'synthetic-clips', frames, spec };
  }
  // The scenes prefix first: 'fashion-mnist-scenes' also starts with 'fashion-mnist'.
  if (is('fashion-mnist-scenes')) return { kind: 'fashion-mnist-scenes', dir: after('fashion-mnist-scenes') ?? FASHION_MNIST_DIR, spec };
  if (is('fashion-mnist')) return { kind: 'fashion-mnist', dir: after('fashion-mnist') ?? FASHION_MNIST_DIR, spec };
  if (spec.startsWith('folder:')) return { kind: 'folder', root: spec.slice('folder:'.length), spec };
  throw new Error(`--data '${spec}' is not one of: ${DATA_SPECS}`);
}

/** The frame count of a 'synthetic-clips[:T]' spec, or undefined for other specs. */
export function clipFramesOf(spec: string): number | undefined {
  if (spec !== 'synthetic-clips' && !spec.startsWith('synthetic-clips:')) return undefined;
  const d = parseDataSpec(spec); // a bad frame count is an error
  return d.kind === 'synthetic-clips' ? d.frames : undefined;
}

function parseDataSpecOrNull(spec: string): DataSpec | null {
  try {
    return parseDataSpec(spec);
  } catch {
    return null;
  }
}

/** Class names of a spec's dataset when the spec alone says them ('synthetic', Fashion-MNIST); null otherwise. */
export function dataSpecClassNames(spec: string | undefined, numClasses: number): string[] | null {
  const d = spec === undefined ? null : parseDataSpecOrNull(spec);
  if (d?.kind === 'synthetic') return SYNTHETIC_CLASS_NAMES.slice(0, numClasses);
  if (d?.kind === 'fashion-mnist' || d?.kind === 'fashion-mnist-scenes') return [...FASHION_MNIST_CLASS_NAMES];
  return null;
}

export interface DataSplits {
  train: Dataset;
  val?: Dataset;
  spec: string;
}

function checkFashionMnist(d: { dir: string; spec: string }): void {
  if (!fashionMnistAvailable(d.dir)) throw new Error(`--data ${d.spec}: no Fashion-MNIST IDX files in ${d.dir} (install with '${FASHION_MNIST_INSTALL}' or give ${d.spec.split(':')[0]}:<dir>)`);
}

/**
 * The training and validation sets of a spec for the classification commands (train, finetune,
 * pretrain, eval): synthetic sets of `trainSize` / `valSize` (defaults 5000 / 1000; clips 2000 / 400)
 * drawn from `seed`; Fashion-MNIST train / test; a folder's train / val subfolders when present.
 */
export function dataSplits(spec: string, opts: { seed: number; trainSize?: number; valSize?: number } = { seed: 0 }): DataSplits {
  const d = parseDataSpec(spec);
  switch (d.kind) {
    case 'synthetic-clips':
      return {
        spec,
        train: new SyntheticClipDataset({ seed: opts.seed, split: 'train', size: opts.trainSize ?? 2000, frames: d.frames }),
        val: new SyntheticClipDataset({ seed: opts.seed, split: 'val', size: opts.valSize ?? 400, frames: d.frames }),
      };
    case 'synthetic':
      return {
        spec,
        train: new SyntheticDataset({ seed: opts.seed, split: 'train', size: opts.trainSize ?? 5000 }),
        val: new SyntheticDataset({ seed: opts.seed, split: 'val', size: opts.valSize ?? 1000 }),
      };
    case 'fashion-mnist':
      checkFashionMnist(d);
      return { spec, train: new FashionMnistDataset({ split: 'train', dir: d.dir }), val: new FashionMnistDataset({ split: 'test', dir: d.dir }) };
    case 'fashion-mnist-scenes': {
      checkFashionMnist(d);
      const tr = loadFashionMnist('train', d.dir), te = loadFashionMnist('test', d.dir);
      return {
        spec,
        train: new ScenesDataset({ items: tr, seed: opts.seed, split: 'train', size: opts.trainSize ?? 5000 }),
        val: new ScenesDataset({ items: te, seed: opts.seed, split: 'val', size: opts.valSize ?? 1000 }),
      };
    }
    case 'folder': {
      const root = d.root;
      if (!root || !fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`--data ${spec}: directory '${root}' does not exist`);
      const sub = (x: string): string | undefined => (fs.existsSync(path.join(root, x)) ? path.join(root, x) : undefined);
      const trainRoot = sub('train') ?? root;
      const valRoot = sub('val');
      const tr = new FolderDataset({ root: trainRoot });
      if (tr.length === 0) throw new Error(`--data ${spec}: no images under ${trainRoot} (expected <root>/<class>/<image files>)`);
      const val = valRoot ? new FolderDataset({ root: valRoot }) : undefined;
      return { spec, train: tr, val: val && val.length > 0 ? val : undefined };
    }
  }
}
