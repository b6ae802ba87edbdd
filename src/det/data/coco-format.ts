/**
 * COCO-format detection datasets on disk: a folder with the images and an `instances.json`
 * (Lin et al. 2014; format at cocodataset.org/#format-data): `images` (id, width, height,
 * file_name), `annotations` (id, image_id, category_id, bbox [x, y, w, h], area, iscrowd,
 * segmentation as polygons or RLE) and `categories` (id, name).
 *
 * `readCocoFolder` validates everything before training starts and names the file, the entry and
 * the bad field: unreadable or truncated JSON, missing fields, duplicate ids, an annotation pointing
 * at an unknown image or category, negative or non-finite boxes, malformed polygons or RLE whose
 * size is not its image's, image files that do not exist. Images are decoded by sharp at their
 * stored size (checked against the JSON), then the evaluation view or large-scale jitter
 * (`lsj.ts`) brings them to the requested size with boxes and masks following.
 *
 * Labels are contiguous: categories sorted by id get labels 0..K-1 and `categoryIds[label]` is the
 * COCO id, so predictions map back for `cocoEval`.
 *
 * `writeCocoFolder(dir, dataset, size)` writes every sample's evaluation view as PNG under
 * `dir/images/` and `dir/instances.json` (masks as compressed RLE), each file atomically; the JSON is written
 * last, so a reader never sees annotations of images that are not there yet.
 *
 * @example
 * const train = await readCocoFolder('data/shapes');         // data/shapes/instances.json + images/
 * const s = await train.get(0, [512, 512], new Rng(0));     // LSJ view
 * await writeCocoFolder('out/val', new SyntheticDetDataset({ seed: 0, split: 'val', size: 50 }), [128, 128]);
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { Image } from '../../data/image.ts';
import { writeFileAtomic, writeFileAtomicAsync } from '../../io/atomic.ts';
import type { Rng } from '../../util/rng.ts';
import { progress } from '../../eval/progress.ts';
import type { Box, CocoAnnotation, CocoCategory, CocoDataset, CocoImage, CocoRle, DetDataset, DetObject, DetSample } from '../types.ts';
import { fromCocoBox, toCocoBox } from '../types.ts';
import { annToRle, rleDecode, rleEncodeCounts, rleFromString, toCompressed } from '../mask.ts';
import { maskArea } from './bitmask.ts';
import { decodeImageFile, encodePng } from './png.ts';
import { type LsjOptions, applyPlan, evalPlan, lsjPlan } from './lsj.ts';

export interface CocoFolderOptions {
  /** The annotation file; default `<dir>/instances.json`. */
  annotations?: string;
  /** Where `file_name`s are resolved; default `<dir>/images` when it exists, else `<dir>`. */
  imagesDir?: string;
  /** Decode instance masks (default true); false gives box-only objects (faster). */
  masks?: boolean;
  /** Large-scale jitter for `get` with an rng; default detectron2's (0.1-2.0, flip). */
  lsj?: LsjOptions;
}

type Json = unknown;

function isObj(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Checker {
  constructor(readonly file: string) {}
  fail(where: string, msg: string): never {
    throw new Error(`${this.file}: ${where}: ${msg}`);
  }
  int(where: string, o: Record<string, Json>, key: string, min: number): number {
    const v = o[key];
    if (v === undefined) this.fail(where, `missing field '${key}'`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(where, `'${key}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  }
  str(where: string, o: Record<string, Json>, key: string): string {
    const v = o[key];
    if (v === undefined) this.fail(where, `missing field '${key}'`);
    if (typeof v !== 'string' || v.length === 0) this.fail(where, `'${key}' must be a non-empty string, got ${JSON.stringify(v)}`);
    return v;
  }
  array(where: string, o: Record<string, Json>, key: string): Json[] {
    const v = o[key];
    if (v === undefined) this.fail(where, `missing field '${key}' (an array)`);
    if (!Array.isArray(v)) this.fail(where, `'${key}' must be an array, got ${typeof v}`);
    return v;
  }
}

function checkSegmentation(ck: Checker, where: string, seg: Json, img: CocoImage): CocoAnnotation['segmentation'] {
  if (Array.isArray(seg)) {
    seg.forEach((poly, k) => {
      if (!Array.isArray(poly) || poly.length < 6 || poly.length % 2 !== 0 || !poly.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        ck.fail(where, `segmentation[${k}] must be a polygon [x1, y1, x2, y2, ...] of at least 3 points (an even count >= 6 of finite numbers)`);
      }
    });
    return seg as number[][];
  }
  if (isObj(seg)) {
    const size = seg['size'];
    const counts = seg['counts'];
    if (!Array.isArray(size) || size.length !== 2 || size[0] !== img.height || size[1] !== img.width) {
      ck.fail(where, `RLE segmentation size must be [height, width] = [${img.height}, ${img.width}] of image ${img.id}, got ${JSON.stringify(size)}`);
    }
    const okCounts = typeof counts === 'string' || (Array.isArray(counts) && counts.every((c) => typeof c === 'number' && Number.isInteger(c) && c >= 0));
    if (!okCounts) ck.fail(where, `RLE segmentation counts must be a string (compressed) or an array of non-negative integers`);
    let total: number;
    if (Array.isArray(counts)) total = (counts as number[]).reduce((a, b) => a + b, 0);
    else {
      try {
        total = rleFromString(counts as string).reduce((a, b) => a + b, 0);
      } catch (err) {
        ck.fail(where, `RLE counts string does not decode (${(err as Error).message})`);
      }
    }
    if (total !== img.height * img.width) ck.fail(where, `RLE counts sum to ${total}, expected height*width = ${img.height * img.width}`);
    return { size: [img.height, img.width], counts: counts as number[] | string } satisfies CocoRle;
  }
  return ck.fail(where, `segmentation must be a list of polygons or an RLE object {size, counts}, got ${JSON.stringify(seg)?.slice(0, 60)}`);
}

/** Parse and validate an `instances.json`; `imagesDir` (if given) is where every `file_name` must exist. */
export function parseCocoJson(file: string, text: string, imagesDir?: string): CocoDataset {
  const ck: Checker = new Checker(file);
  let raw: Json;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message}); is the file truncated?`, { cause: err });
  }
  if (!isObj(raw)) ck.fail('top level', `expected an object with images, annotations and categories, got ${Array.isArray(raw) ? 'an array' : typeof raw}`);
  const categories: CocoCategory[] = [];
  const catIds = new Set<number>();
  ck.array('top level', raw, 'categories').forEach((c, k) => {
    const where = `categories[${k}]`;
    if (!isObj(c)) ck.fail(where, 'must be an object {id, name}');
    const id = ck.int(where, c, 'id', 0);
    if (catIds.has(id)) ck.fail(where, `duplicate category id ${id}`);
    catIds.add(id);
    const sup = c['supercategory'];
    categories.push({ id, name: ck.str(where, c, 'name'), ...(typeof sup === 'string' ? { supercategory: sup } : {}) });
  });
  if (categories.length === 0) ck.fail('categories', 'is empty; a detection dataset needs at least one category');
  const images: CocoImage[] = [];
  const byId = new Map<number, CocoImage>();
  ck.array('top level', raw, 'images').forEach((im, k) => {
    const where = `images[${k}]`;
    if (!isObj(im)) ck.fail(where, 'must be an object {id, width, height, file_name}');
    const id = ck.int(where, im, 'id', 0);
    if (byId.has(id)) ck.fail(where, `duplicate image id ${id}`);
    const img: CocoImage = { id, width: ck.int(where, im, 'width', 1), height: ck.int(where, im, 'height', 1), file_name: ck.str(where, im, 'file_name') };
    if (imagesDir !== undefined && !existsSync(path.join(imagesDir, img.file_name!))) {
      ck.fail(`${where} (id ${id})`, `image file '${img.file_name}' not found in ${imagesDir}`);
    }
    byId.set(id, img);
    images.push(img);
  });
  const annotations: CocoAnnotation[] = [];
  const annIds = new Set<number>();
  const rawAnns = raw['annotations'] === undefined ? [] : ck.array('top level', raw, 'annotations');
  rawAnns.forEach((a, k) => {
    const where = `annotations[${k}]`;
    if (!isObj(a)) ck.fail(where, 'must be an object {id, image_id, category_id, bbox, ...}');
    const id = ck.int(where, a, 'id', 0);
    if (annIds.has(id)) ck.fail(where, `duplicate annotation id ${id}`);
    annIds.add(id);
    const imageId = ck.int(where, a, 'image_id', 0);
    const img = byId.get(imageId);
    if (!img) ck.fail(`${where} (id ${id})`, `image_id ${imageId} is not the id of any entry in images`);
    const categoryId = ck.int(where, a, 'category_id', 0);
    if (!catIds.has(categoryId)) ck.fail(`${where} (id ${id})`, `category_id ${categoryId} is not one of the categories [${[...catIds].join(', ')}]`);
    const bbox = a['bbox'];
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      ck.fail(`${where} (id ${id})`, `bbox must be [x, y, width, height] of 4 finite numbers, got ${JSON.stringify(bbox)}`);
    }
    const [x, y, w, h] = bbox as [number, number, number, number];
    if (x < 0 || y < 0 || w < 0 || h < 0) ck.fail(`${where} (id ${id})`, `bbox [${bbox.join(', ')}] has a negative coordinate or size`);
    const crowd = a['iscrowd'] ?? 0;
    if (crowd !== 0 && crowd !== 1) ck.fail(`${where} (id ${id})`, `iscrowd must be 0 or 1, got ${JSON.stringify(crowd)}`);
    const area = a['area'];
    if (area !== undefined && (typeof area !== 'number' || !(area >= 0))) ck.fail(`${where} (id ${id})`, `area must be a number >= 0, got ${JSON.stringify(area)}`);
    const ann: CocoAnnotation = { id, image_id: imageId, category_id: categoryId, bbox: [x, y, w, h], area: typeof area === 'number' ? area : w * h, iscrowd: crowd };
    if (a['segmentation'] !== undefined) ann.segmentation = checkSegmentation(ck, `${where} (id ${id})`, a['segmentation'], img);
    annotations.push(ann);
  });
  const info = raw['info'];
  return { images, annotations, categories, ...(isObj(info) ? { info } : {}) };
}

export class CocoFolderDataset implements DetDataset {
  readonly length: number;
  readonly classNames: readonly string[];
  readonly categoryIds: readonly number[];
  readonly annotationFile: string;
  readonly imagesDir: string;
  readonly masks: boolean;
  readonly lsj: LsjOptions;
  private readonly gt: CocoDataset;
  private readonly labelOf = new Map<number, number>();
  private readonly annsOf = new Map<number, CocoAnnotation[]>();

  constructor(gt: CocoDataset, annotationFile: string, imagesDir: string, opts: CocoFolderOptions = {}) {
    this.gt = gt;
    this.annotationFile = annotationFile;
    this.imagesDir = imagesDir;
    this.masks = opts.masks ?? true;
    this.lsj = opts.lsj ?? {};
    const cats = [...gt.categories].sort((a, b) => a.id - b.id);
    this.classNames = cats.map((c) => c.name);
    this.categoryIds = cats.map((c) => c.id);
    cats.forEach((c, k) => this.labelOf.set(c.id, k));
    for (const im of gt.images) this.annsOf.set(im.id, []);
    for (const a of gt.annotations) this.annsOf.get(a.image_id)!.push(a);
    this.length = gt.images.length;
    if (this.length === 0) throw new Error(`${annotationFile}: images is empty`);
  }

  /** Objects of image `i` at its stored size. */
  objectsOf(i: number): DetObject[] {
    const img = this.gt.images[i]!;
    const { height: h, width: w } = img;
    return this.annsOf.get(img.id)!.map((a) => {
      const b = fromCocoBox(a.bbox);
      const box: Box = [Math.min(b[0], w), Math.min(b[1], h), Math.min(b[2], w), Math.min(b[3], h)];
      const o: DetObject = { label: this.labelOf.get(a.category_id)!, box, iscrowd: a.iscrowd === 1 };
      if (this.masks && a.segmentation !== undefined) o.mask = rleDecode(annToRle(a, h, w));
      return o;
    });
  }

  async get(i: number, size: [number, number], rng: Rng | null): Promise<DetSample> {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`CocoFolderDataset.get: index ${i} out of range [0, ${this.length})`);
    const img = this.gt.images[i]!;
    const file = path.join(this.imagesDir, img.file_name!);
    let image: Image;
    try {
      image = await decodeImageFile(file);
    } catch (err) {
      throw new Error(`CocoFolderDataset: cannot decode ${file} (image id ${img.id}): ${(err as Error).message}`, { cause: err });
    }
    if (image.height !== img.height || image.width !== img.width) {
      throw new Error(`${this.annotationFile}: image id ${img.id} says ${img.height}x${img.width} (height x width) but ${file} decodes to ${image.height}x${image.width}`);
    }
    const input: [number, number] = [img.height, img.width];
    const plan = rng ? lsjPlan(rng, input, size, this.lsj) : evalPlan(input, size);
    const view = applyPlan(plan, image, this.objectsOf(i));
    return { image: view.image, objects: view.objects, imageId: img.id, scale: plan.scale, originalSize: input };
  }

  cocoGroundTruth(): CocoDataset {
    return this.gt;
  }
}

/** Read and validate a COCO-format folder (see the file comment). */
export async function readCocoFolder(dir: string, opts: CocoFolderOptions = {}): Promise<CocoFolderDataset> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`readCocoFolder: '${dir}' is not a directory; expected a folder with instances.json and the images (or images/)`);
  }
  const annFile = opts.annotations ?? path.join(dir, 'instances.json');
  const sub = path.join(dir, 'images');
  const imagesDir = opts.imagesDir ?? (existsSync(sub) && statSync(sub).isDirectory() ? sub : dir);
  let text: string;
  try {
    text = readFileSync(annFile, 'utf8');
  } catch (err) {
    throw new Error(`readCocoFolder: cannot read ${annFile} (${(err as Error).message}); a COCO folder needs an instances.json (or pass annotations)`, { cause: err });
  }
  return new CocoFolderDataset(parseCocoJson(annFile, text, imagesDir), annFile, imagesDir, opts);
}

export interface WriteCocoOptions {
  /** Show progress on stderr (default true). */
  progress?: boolean;
}

/**
 * Write `dataset`'s evaluation views at `size` as a COCO folder: `dir/images/<id>.png` and
 * `dir/instances.json` (boxes in the written images' pixels, masks as RLE, iscrowd kept).
 * Returns the written ground truth.
 */
export async function writeCocoFolder(dir: string, dataset: DetDataset, size: [number, number], opts: WriteCocoOptions = {}): Promise<CocoDataset> {
  const imagesDir = path.join(dir, 'images');
  mkdirSync(imagesDir, { recursive: true });
  const [H, W] = size;
  const images: CocoImage[] = [];
  const annotations: CocoAnnotation[] = [];
  const ids = new Set<number>();
  const bar = opts.progress === false ? null : progress(dataset.length, `write COCO ${dir}`);
  for (let i = 0; i < dataset.length; i++) {
    const s = await dataset.get(i, size, null);
    if (ids.has(s.imageId)) throw new Error(`writeCocoFolder: samples ${i} and an earlier one share image id ${s.imageId}`);
    ids.add(s.imageId);
    const fileName = `${String(s.imageId).padStart(6, '0')}.png`;
    await writeFileAtomicAsync(path.join(imagesDir, fileName), await encodePng(s.image));
    images.push({ id: s.imageId, width: W, height: H, file_name: fileName });
    for (const o of s.objects) {
      const ann: CocoAnnotation = {
        id: annotations.length + 1,
        image_id: s.imageId,
        category_id: dataset.categoryIds[o.label]!,
        bbox: toCocoBox(o.box),
        area: o.mask ? maskArea(o.mask) : (o.box[2] - o.box[0]) * (o.box[3] - o.box[1]),
        iscrowd: o.iscrowd ? 1 : 0,
      };
      // Compressed RLE strings, as the official COCO files store masks.
      if (o.mask) ann.segmentation = toCompressed(rleEncodeCounts(o.mask, H, W));
      annotations.push(ann);
    }
    bar?.tick();
  }
  bar?.done();
  const gt: CocoDataset = {
    info: { description: `written by anyres writeCocoFolder at ${H}x${W}` },
    images,
    annotations,
    categories: dataset.classNames.map((name, k) => ({ id: dataset.categoryIds[k]!, name })),
  };
  writeFileAtomic(path.join(dir, 'instances.json'), JSON.stringify(gt));
  return gt;
}
