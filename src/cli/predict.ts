/**
 * `anyres predict --checkpoint C [--model M] [--res N|HxW] [--top K] [--batch B] [--format jsonl|csv] images-or-folders...`:
 * classify image files with a checkpoint, as timm's `inference.py` does.
 *
 * Preprocessing is timm's eval transform (timm/data/transforms_factory.py `transforms_imagenet_eval`):
 * resize by `crop_pct` = 0.875 — a square size N resizes the shorter side to floor(N / crop_pct),
 * keeping the aspect; an H x W size resizes to floor(H / crop_pct) x floor(W / crop_pct) — with
 * bicubic interpolation (antialiased when shrinking, as PIL), then a centre crop to the size and the
 * checkpoint's normalisation: the one it records (our training runs: ImageNet statistics), ImageNet's
 * mean/std for an official checkpoint. Any size the model takes works; one it cannot take is refused
 * naming the nearest that work (the model's checkInputSize).
 *
 * Output: one line per image, JSON lines `{"file", "top": [{"rank", "index", "class", "prob"}]}`
 * or CSV `file,rank,index,class,prob`; progress goes to stderr.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import sharp from 'sharp';
import { type Image, hwcU8ToChw } from '../data/image.ts';
import { resize } from '../data/resample.ts';
import { centerCropImage } from '../data/transforms.ts';
import { IMAGE_EXTENSIONS } from '../data/folder.ts';
import { Runtime } from '../graph/runtime.ts';
import { predict } from '../eval/sweep.ts';
import { progress } from '../eval/progress.ts';
import { type LoadedCheckpoint, type Normalization, loadCheckpointForExport } from '../io/export.ts';
import { parseSize } from './convert.ts';

/** timm's default eval crop fraction (timm/data/constants.py DEFAULT_CROP_PCT). */
export const EVAL_CROP_PCT = 0.875;

/** Decodes an image file (JPEG, PNG, WebP) to CHW float RGB in [0, 1] at its own size. */
export async function decodeImage(file: string): Promise<Image> {
  try {
    const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const img = hwcU8ToChw(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.height, info.width, info.channels);
    if (img.channels === 3) return img;
    if (img.channels === 1) return { ...img, channels: 3, data: Float32Array.from({ length: 3 * img.height * img.width }, (_, k) => img.data[k % (img.height * img.width)]!) };
    throw new Error(`decoded to ${img.channels} channels`);
  } catch (e) {
    throw new Error(`predict: cannot decode ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** timm's eval transform to H x W (see the file comment); returns CHW in [0, 1], not yet normalised. */
export function evalTransform(img: Image, H: number, W: number, cropPct = EVAL_CROP_PCT): Image {
  let h: number;
  let w: number;
  if (H === W) {
    // Resize(int): the shorter side to floor(N / crop_pct), the other by the aspect (torchvision rounds it down).
    const s = Math.floor(H / cropPct);
    if (img.height <= img.width) { h = s; w = Math.floor((s * img.width) / img.height); } else { w = s; h = Math.floor((s * img.height) / img.width); }
  } else {
    h = Math.floor(H / cropPct);
    w = Math.floor(W / cropPct);
  }
  const r = h === img.height && w === img.width ? img : resize(img, h, w, { interpolation: 'bicubic', antialias: true });
  return centerCropImage(r, H, W);
}

/** (x - mean) / std per channel, in place on a copy. */
export function normalizeImage(img: Image, norm: Normalization | null): Float32Array {
  const out = Float32Array.from(img.data);
  if (!norm) return out;
  const hw = img.height * img.width;
  for (let c = 0; c < 3; c++) for (let i = 0; i < hw; i++) out[c * hw + i] = (out[c * hw + i]! - norm.mean[c]!) / norm.std[c]!;
  return out;
}

/** Image files named by `inputs` (files, or folders searched recursively), in a stable order. */
export function collectImages(inputs: readonly string[]): string[] {
  const out: string[] = [];
  const isImage = (f: string): boolean => (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(f).toLowerCase());
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (isImage(e.name)) out.push(p);
    }
  };
  for (const i of inputs) {
    const st = fs.statSync(i, { throwIfNoEntry: false });
    if (!st) throw new Error(`predict: ${i} does not exist`);
    if (st.isDirectory()) walk(i);
    else out.push(i);
  }
  if (out.length === 0) throw new Error(`predict: no images (${IMAGE_EXTENSIONS.join(', ')}) in ${inputs.join(', ')}`);
  return out;
}

export interface Prediction {
  file: string;
  /** Softmax probabilities over the classes. */
  probs: Float32Array;
  top: { rank: number; index: number; class: string; prob: number }[];
}

export interface PredictOptions {
  res?: [number, number];
  top?: number;
  batch?: number;
  /** Progress on stderr (default true). */
  progress?: boolean;
  rt?: Runtime;
}

/** Classifies `files` with a loaded checkpoint. */
export async function predictImages(ck: LoadedCheckpoint, files: readonly string[], o: PredictOptions = {}): Promise<Prediction[]> {
  const [H, W] = o.res ?? ck.model.defaultRes;
  ck.model.checkInputSize(H, W);
  const K = ck.classes.length;
  const top = Math.min(o.top ?? 5, K);
  const B = o.batch ?? 8;
  if (!(Number.isInteger(B) && B >= 1)) throw new Error(`predict: --batch must be a positive integer, got ${B}`);
  const rt = o.rt ?? new Runtime();
  const bar = o.progress === false ? null : progress(files.length, `predict ${H}x${W}`);
  const out: Prediction[] = [];
  for (let s = 0; s < files.length; s += B) {
    const chunk = files.slice(s, s + B);
    // The last batch is padded to B so that one compiled graph serves every batch.
    const x = new Float32Array(B * 3 * H * W);
    for (const [j, f] of chunk.entries()) x.set(normalizeImage(evalTransform(await decodeImage(f), H, W), ck.normalization), j * 3 * H * W);
    const logits = await predict(rt, ck.model, ck.weights, { data: x, shape: [B, 3, H, W] });
    for (const [j, f] of chunk.entries()) {
      const l = logits.subarray(j * K, (j + 1) * K);
      const m = Math.max(...l);
      const e = Float32Array.from(l, (v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      const probs = e.map((v) => v / z);
      const order = [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!).slice(0, top);
      out.push({ file: f, probs, top: order.map((index, r) => ({ rank: r + 1, index, class: ck.classes[index]!, prob: probs[index]! })) });
    }
    bar?.tick(chunk.length);
  }
  bar?.done();
  if (!o.rt) await rt.clear();
  return out;
}

const csvField = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** The lines `predict` prints. */
export function formatPredictions(preds: readonly Prediction[], format: 'jsonl' | 'csv'): string {
  if (format === 'jsonl') return preds.map((p) => JSON.stringify({ file: p.file, top: p.top })).join('\n') + '\n';
  const rows = ['file,rank,index,class,prob'];
  for (const p of preds) for (const t of p.top) rows.push([csvField(p.file), t.rank, t.index, csvField(t.class), t.prob.toPrecision(6)].join(','));
  return rows.join('\n') + '\n';
}

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description("classify images with a checkpoint (timm's eval transform: resize by crop_pct 0.875, centre crop, the checkpoint's normalisation)")
    .argument('<images...>', 'image files (.jpg, .png, .webp) or folders (searched recursively)')
    .requiredOption('--checkpoint <path>', 'a training run directory, its last.json or ckpt-*.safetensors, an anyres .safetensors, or an official file with --model')
    .option('--model <preset|json|file>', 'the model, for checkpoints that do not record it')
    .option('--res <size>', "input size N or HxW (default: the model's own)")
    .option('--top <k>', 'classes per image', (v) => Number(v), 5)
    .option('--batch <n>', 'images per forward pass', (v) => Number(v), 8)
    .option('--format <f>', 'jsonl | csv', 'jsonl')
    .option('--out <file>', 'write the results here instead of stdout')
    .action(async (images: string[], o: { checkpoint: string; model?: string; res?: string; top: number; batch: number; format: string; out?: string }) => {
      if (o.format !== 'jsonl' && o.format !== 'csv') throw new Error(`predict: --format must be jsonl or csv, got '${o.format}'`);
      if (!(Number.isInteger(o.top) && o.top >= 1)) throw new Error(`predict: --top must be a positive integer, got ${o.top}`);
      const ck = loadCheckpointForExport(o.checkpoint, o.model !== undefined ? { model: o.model } : {});
      const res = o.res !== undefined ? parseSize(o.res) : undefined;
      if (res) ck.model.checkInputSize(res[0], res[1]);
      const files = collectImages(images);
      const preds = await predictImages(ck, files, { top: o.top, batch: o.batch, ...(res ? { res } : {}) });
      const text = formatPredictions(preds, o.format);
      if (o.out) {
        fs.writeFileSync(o.out, text);
        process.stderr.write(`predict: ${preds.length} images -> ${o.out}\n`);
      } else {
        process.stdout.write(text);
      }
    });
}
