/**
 * `anyres detect train|eval|predict`: the detection task on the command line.
 *
 * - `train`: an FCOS detector (src/det/detector.ts) on a ViTDet or HieraDet backbone, from a preset
 *   or a JSON spec, or initialised from a classification checkpoint (`--init`, src/det/init.ts)
 *   with the position-embedding and rel-pos choices of Bolya et al. 2024 (Sec. 5); data `synthetic`
 *   (src/det/data/synthetic.ts) or a COCO-format folder; large-scale jitter; progress, log.jsonl,
 *   atomic checkpoints and `--resume` from the trainer (src/det/trainer.ts).
 * - `eval`: COCO box AP (the 12 pycocotools numbers) of a checkpoint, printed and written as JSON.
 * - `predict`: detections of image files as JSON (original-image pixels) and a PNG per image with
 *   the boxes drawn and labelled.
 *
 * Everything is validated before the first compile, with messages naming the flag and what works.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { Runtime } from '../graph/runtime.ts';
import { createVit, type VitConfig } from '../models/vit.ts';
import { createHiera, type HieraConfig } from '../models/hiera.ts';
import { vitdetPresets } from '../models/vitdet.ts';
import { hieradetPresets } from '../models/hieradet.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { type CreateDetectorOptions, type Detector, type DetectorSpec, createDetector } from '../det/detector.ts';
import { POSEMBED_INITS, RELPOS_PLACEMENTS, type PosEmbedInit, type RelPosPlacement, hieradetFromHiera, vitdetFromVit } from '../det/init.ts';
import { trainDetector, loadDetector } from '../det/trainer.ts';
import { evaluateDetector } from '../det/evaluate.ts';
import { predictDetections } from '../det/predict.ts';
import { formatSummary } from '../det/coco-eval.ts';
import { drawDetectionsPng } from '../det/draw.ts';
import type { Box, DetDataset } from '../det/types.ts';
import { toCocoBox } from '../det/types.ts';
import { DET_SHAPE_CLASSES, type DetShapeClass, SyntheticDetDataset } from '../det/data/synthetic.ts';
import { readCocoFolder } from '../det/data/coco-format.ts';
import { applyPlan, evalPlan } from '../det/data/lsj.ts';
import { decodeImageFile } from '../det/data/png.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { num, sigintSignal } from './train.ts';

/** `128` -> [128, 128]; `96x160` -> [96, 160] (H x W). */
export function parseSize(flag: string, v: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  const H = m ? Number(m[1]) : NaN;
  const W = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || !(H >= 1 && W >= 1 && H <= 16384 && W <= 16384)) throw new Error(`${flag} '${v}' must be N or HxW with positive integers (e.g. 128 or 96x160)`);
  return [H, W];
}

function intFlag(flag: string, v: string | undefined, min: number): number | undefined {
  const x = num(flag, v, min);
  if (x !== undefined && !Number.isInteger(x)) throw new Error(`${flag} '${v}' must be an integer >= ${min}`);
  return x;
}

/** `a-b` or `a` -> [a, b]. */
function rangeFlag(flag: string, v: string | undefined, integer: boolean): [number, number] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split('-').map((s) => Number(s.trim()));
  const r: [number, number] = parts.length === 1 ? [parts[0]!, parts[0]!] : [parts[0]!, parts[1]!];
  if (parts.length > 2 || !r.every((x) => Number.isFinite(x) && (!integer || Number.isInteger(x))) || r[0] > r[1]) {
    throw new Error(`${flag} '${v}' must be a range lo-hi of ${integer ? 'integers' : 'numbers'} with lo <= hi (e.g. ${integer ? '1-6' : '0.04-0.22'})`);
  }
  return r;
}

/** How the data were chosen, stored in the checkpoint so `eval` rebuilds the same validation set. */
export interface DetDataInfo {
  spec: string;
  seed: number;
  trainSize?: number;
  valSize?: number;
  classes?: DetShapeClass[] | number;
  objects?: [number, number];
  sizeRange?: [number, number];
  /** Large-scale jitter scale range of the training view (default detectron2's 0.1-2.0). */
  lsj?: [number, number];
}

export interface DetDataSplits {
  train: DetDataset;
  val?: DetDataset;
  info: DetDataInfo;
}

function hasCoco(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'instances.json'));
}

/**
 * Datasets from a spec: `synthetic` (train and val splits of the synthetic scenes, evaluated at
 * `size`) or `coco:<folder>` (`<folder>/train` and `<folder>/val` when both hold an instances.json,
 * else `<folder>` itself as the training set and no validation set).
 */
export async function parseDetData(info: DetDataInfo, size: [number, number]): Promise<DetDataSplits> {
  const spec = info.spec;
  const lsj = info.lsj ? { minScale: info.lsj[0], maxScale: info.lsj[1] } : undefined;
  if (spec === 'synthetic') {
    const common = { seed: info.seed, evalSize: size, classes: info.classes, objects: info.objects, sizeRange: info.sizeRange, lsj };
    return {
      info,
      train: new SyntheticDetDataset({ ...common, split: 'train', size: info.trainSize ?? 2000 }),
      val: new SyntheticDetDataset({ ...common, split: 'val', size: info.valSize ?? 200 }),
    };
  }
  if (spec.startsWith('coco:')) {
    const dir = spec.slice('coco:'.length);
    if (!dir || !fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`--data ${spec}: directory '${dir}' does not exist`);
    const tr = path.join(dir, 'train');
    const va = path.join(dir, 'val');
    if (hasCoco(tr) && hasCoco(va)) return { info, train: await readCocoFolder(tr, { lsj }), val: await readCocoFolder(va) };
    if (hasCoco(dir)) return { info, train: await readCocoFolder(dir, { lsj }) };
    throw new Error(`--data ${spec}: no instances.json in ${dir} (nor in ${tr} and ${va}); a COCO folder holds instances.json and its images (or images/)`);
  }
  throw new Error(`--data '${spec}' is not one of: synthetic, coco:<folder>`);
}

/** The evaluation set of a data spec: the validation split, or a COCO folder itself. */
async function evalSet(info: DetDataInfo, size: [number, number]): Promise<DetDataset> {
  const d = await parseDetData(info, size);
  return d.val ?? d.train;
}

function classesFlag(v: string | undefined): DetShapeClass[] | number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(DET_SHAPE_CLASSES as readonly string[]).includes(n));
  if (bad.length || !names.length) throw new Error(`--classes '${v}': ${bad.join(', ') || 'empty'} not among ${DET_SHAPE_CLASSES.join(', ')} (or give a count)`);
  return names as DetShapeClass[];
}

export interface HeadFlags {
  headConvs?: number;
  fpnDim?: number;
}

/** A detector from `--model`: a ViTDet/HieraDet preset name, a JSON file or inline JSON (CreateDetectorOptions or a full DetectorSpec). */
export function detectorFromModelFlag(model: string, numClasses: number, size: [number, number], h: HeadFlags): Detector {
  const head = h.headConvs !== undefined ? { numConvs: h.headConvs } : undefined;
  if (vitdetPresets[model]) {
    const pre = vitdetPresets[model]!;
    // detectron2 sets img_size to the training size: the global blocks' rel-pos tables are made for it.
    const imgSize = Math.ceil(Math.max(size[0], size[1]) / pre.patchSize) * pre.patchSize;
    const pyramid = pre.pyramid && h.fpnDim !== undefined ? { ...pre.pyramid, outChannels: h.fpnDim } : pre.pyramid;
    return createDetector({ backbone: { family: 'vitdet', config: model, overrides: { imgSize, pyramid } }, numClasses, head });
  }
  if (hieradetPresets[model]) {
    return createDetector({ backbone: { family: 'hieradet', config: model }, numClasses, head, neck: h.fpnDim !== undefined ? { dim: h.fpnDim } : undefined });
  }
  let text: string | undefined;
  if (model.trim().startsWith('{')) text = model;
  else if (fs.existsSync(model) && fs.statSync(model).isFile()) text = fs.readFileSync(model, 'utf8');
  if (text === undefined) {
    throw new Error(`--model '${model}' is neither a detection preset (${[...Object.keys(vitdetPresets), ...Object.keys(hieradetPresets)].join(', ')}) nor a JSON file or inline JSON spec`);
  }
  let spec: CreateDetectorOptions | DetectorSpec;
  try {
    spec = JSON.parse(text) as CreateDetectorOptions | DetectorSpec;
  } catch (e) {
    throw new Error(`--model: the spec is not valid JSON (${(e as Error).message})`);
  }
  if (typeof spec !== 'object' || spec === null || typeof spec.backbone !== 'object') {
    throw new Error(`--model: a spec needs { "backbone": { "family": "vitdet" | "hieradet", "config": <preset or config> }, ... }`);
  }
  if (spec.numClasses !== undefined && spec.numClasses !== numClasses) {
    throw new Error(`--model: the spec has numClasses ${spec.numClasses} but the data has ${numClasses} classes`);
  }
  return createDetector({ ...spec, numClasses } as CreateDetectorOptions | DetectorSpec);
}

export interface InitFlags {
  posEmbedInit: PosEmbedInit;
  /** Default 'all' for a ViT (the original ViTDet); a Hiera has none. */
  relPos?: RelPosPlacement;
  seed: number;
}

/**
 * A detector whose backbone is converted from a classification checkpoint (ViT -> ViTDet, Hiera ->
 * HieraDet) and its initial weights (backbone from the checkpoint, neck and head fresh from seed).
 */
export function detectorFromClassifier(ckptPath: string, numClasses: number, size: [number, number], f: InitFlags, h: HeadFlags): { detector: Detector; init: Map<string, Float32Array>; notes: string[] } {
  const ck = loadCheckpoint(ckptPath);
  const fam = ck.info.model.family;
  const side = Math.max(size[0], size[1]);
  const head = h.headConvs !== undefined ? { numConvs: h.headConvs } : undefined;
  let detector: Detector;
  let backbone: Map<string, Float32Array>;
  let notes: string[];
  if (fam === 'vit' || fam === 'resformer') {
    const vit = createVit(ck.info.model.config as VitConfig);
    const patch = vit.config.patchSize;
    // The pyramid levels the head reads (strides 8, 16, 32, then LastLevelMaxPool and subsampling
    // up to p6), with detectron2's scale factors (4, 2, 1, 0.5 of the patch stride); no finer level.
    const scaleFactors = [patch / 8, patch / 16, patch / 32].filter((s) => [4, 2, 1, 0.5].includes(s));
    if (!scaleFactors.length) throw new Error(`--init: a ViT with patch size ${patch} gives no pyramid level at stride 8-32 (supported patch sizes: 4, 8, 16, 32)`);
    const pyramid = { outChannels: h.fpnDim ?? 64, scaleFactors, topBlock: true, normEps: 1e-6 };
    const r = vitdetFromVit(vit, ck.state.params, { posEmbedInit: f.posEmbedInit, relPos: f.relPos ?? 'all', imgSize: Math.ceil(side / patch) * patch, pyramid, seed: f.seed });
    detector = createDetector({ backbone: { family: 'vitdet', config: r.model.config }, numClasses, head });
    backbone = r.params;
    notes = r.notes;
  } else if (fam === 'hiera') {
    if (f.posEmbedInit !== 'interpolate' && f.posEmbedInit !== 'abswin') {
      throw new Error(`--posembed-init ${f.posEmbedInit}: a Hiera checkpoint takes interpolate or abswin (recursive absolute win)`);
    }
    if (f.relPos !== undefined && f.relPos !== 'none') throw new Error(`--relpos ${f.relPos}: HieraDet has no relative position embeddings; omit --relpos (or give none) for a Hiera checkpoint`);
    const hiera = createHiera(ck.info.model.config as HieraConfig);
    const r = hieradetFromHiera(hiera, ck.state.params, { posEmbedInit: f.posEmbedInit, imgSize: side, seed: f.seed });
    detector = createDetector({ backbone: { family: 'hieradet', config: r.model.config }, numClasses, head, neck: h.fpnDim !== undefined ? { dim: h.fpnDim } : undefined });
    backbone = r.params;
    notes = r.notes;
  } else {
    throw new Error(`--init ${ckptPath}: a '${fam}' checkpoint cannot initialise a detector (needs a vit, resformer or hiera classifier)`);
  }
  const init = detector.init(f.seed);
  for (const [k, v] of backbone) {
    const name = `backbone.${k}`;
    const have = init.get(name);
    if (!have) throw new Error(`--init: the converted backbone has '${k}', which the detector does not (detector parameters: backbone.*, neck.*, head.*)`);
    if (have.length !== v.length) throw new Error(`--init: '${k}' has ${v.length} values from the checkpoint, the detector needs ${have.length}`);
    init.set(name, v);
  }
  return { detector, init, notes };
}

interface TrainFlags {
  model?: string;
  data: string;
  res: string;
  steps?: string;
  epochs?: string;
  batch: string;
  lr: string;
  wd?: string;
  warmup?: string;
  minLr?: string;
  clipGrad?: string;
  layerDecay?: string;
  seed: string;
  threads?: string;
  out: string;
  init?: string;
  posembedInit?: string;
  relpos?: string;
  resume?: boolean;
  augment: boolean;
  eval: boolean;
  evalEvery?: string;
  ckptEvery?: string;
  trainSize?: string;
  valSize?: string;
  classes?: string;
  objects?: string;
  sizes?: string;
  lsj?: string;
  headConvs?: string;
  fpnDim?: string;
}

function runtimeFor(threads: string | undefined): Runtime {
  return new Runtime(threads ? { threads: intFlag('--threads', threads, 1)! } : {});
}

/** The data info a checkpoint stored (train writes it as run.dataInfo). */
function storedDataInfo(run: Record<string, unknown>): DetDataInfo | undefined {
  const d = run['dataInfo'];
  return typeof d === 'object' && d !== null && typeof (d as DetDataInfo).spec === 'string' ? (d as DetDataInfo) : undefined;
}

function storedSize(run: Record<string, unknown>): [number, number] | undefined {
  const s = run['size'];
  return Array.isArray(s) && s.length === 2 && s.every((v) => Number.isInteger(v)) ? [s[0] as number, s[1] as number] : undefined;
}

function storedClassNames(run: Record<string, unknown>, n: number): string[] {
  const c = run['classNames'];
  return Array.isArray(c) && c.length === n && c.every((x) => typeof x === 'string') ? (c as string[]) : Array.from({ length: n }, (_, k) => `class ${k}`);
}

async function trainAction(f: TrainFlags): Promise<void> {
  const size = parseSize('--res', f.res);
  const seed = intFlag('--seed', f.seed, 0)!;
  const batch = intFlag('--batch', f.batch, 1)!;
  const lr = num('--lr', f.lr, 0)!;
  if (f.steps !== undefined && f.epochs !== undefined) throw new Error('give either --steps or --epochs, not both');
  if (f.init && f.model) throw new Error('give either --model (a fresh detector) or --init (a backbone converted from a classification checkpoint), not both');
  if (!f.init && !f.model) throw new Error('give --model <preset or spec> or --init <classification checkpoint>');
  if (!f.init && (f.posembedInit || f.relpos)) throw new Error('--posembed-init and --relpos choose how --init converts a classifier; they need --init');
  const posEmbedInit = (f.posembedInit ?? 'interpolate') as PosEmbedInit;
  if (!POSEMBED_INITS.includes(posEmbedInit)) throw new Error(`--posembed-init '${f.posembedInit}' is not one of ${POSEMBED_INITS.join(', ')}`);
  const relPos = f.relpos as RelPosPlacement | undefined;
  if (relPos !== undefined && !RELPOS_PLACEMENTS.includes(relPos)) throw new Error(`--relpos '${f.relpos}' is not one of ${RELPOS_PLACEMENTS.join(', ')}`);
  const info: DetDataInfo = {
    spec: f.data, seed,
    trainSize: intFlag('--train-size', f.trainSize, 1), valSize: intFlag('--val-size', f.valSize, 1),
    classes: classesFlag(f.classes), objects: rangeFlag('--objects', f.objects, true) as [number, number] | undefined, sizeRange: rangeFlag('--sizes', f.sizes, false),
    lsj: rangeFlag('--lsj', f.lsj, false),
  };
  if (info.lsj && !(info.lsj[0] > 0)) throw new Error(`--lsj '${f.lsj}': the scales must be > 0 (detectron2's LSJ: 0.1-2.0)`);
  if (info.spec !== 'synthetic' && (info.trainSize || info.valSize || info.classes || info.objects || info.sizeRange)) {
    throw new Error('--train-size, --val-size, --classes, --objects and --sizes shape the synthetic scenes; they need --data synthetic');
  }
  const data = await parseDetData(info, size);
  const K = data.train.classNames.length;
  const headFlags: HeadFlags = { headConvs: intFlag('--head-convs', f.headConvs, 0), fpnDim: intFlag('--fpn-dim', f.fpnDim, 1) };
  let detector: Detector;
  let init: Map<string, Float32Array> | undefined;
  if (f.init) {
    const r = detectorFromClassifier(f.init, K, size, { posEmbedInit, relPos, seed }, headFlags);
    detector = r.detector;
    init = r.init;
    for (const n of r.notes) process.stderr.write(`${n}\n`);
  } else {
    detector = detectorFromModelFlag(f.model!, K, size, headFlags);
  }
  detector.checkInputSize(size[0], size[1]);
  const perEpoch = Math.floor(data.train.length / batch);
  if (perEpoch < 1) throw new Error(`--batch ${batch} is larger than the training set (${data.train.length} images)`);
  const steps = f.steps !== undefined ? intFlag('--steps', f.steps, 1)! : (intFlag('--epochs', f.epochs ?? '1', 1)! * perEpoch);
  const rt = runtimeFor(f.threads);
  const sig = sigintSignal();
  try {
    const r = await trainDetector(
      {
        rt, detector, train: data.train, val: f.eval ? data.val : undefined, out: f.out, resume: !!f.resume, init, signal: sig.signal,
        runInfo: {
          dataInfo: info, classNames: [...data.train.classNames], categoryIds: [...data.train.categoryIds],
          ...(f.init ? { init: path.resolve(f.init), posEmbedInit, relPos: relPos ?? null } : { model: f.model }),
        },
      },
      {
        size, batch, steps, lr, seed,
        weightDecay: num('--wd', f.wd, 0), warmupSteps: intFlag('--warmup', f.warmup, 0), minLr: num('--min-lr', f.minLr, 0),
        clipGradNorm: num('--clip-grad', f.clipGrad, 0), layerDecay: num('--layer-decay', f.layerDecay, 0),
        augment: f.augment, evalEverySteps: intFlag('--eval-every', f.evalEvery, 0), checkpointEverySteps: intFlag('--ckpt-every', f.ckptEvery, 0),
      },
    );
    const ap = r.eval ? `; val box AP ${(100 * r.eval.stats[0]!).toFixed(1)}, AP50 ${(100 * r.eval.stats[1]!).toFixed(1)}` : '';
    console.log(`${r.interrupted ? 'stopped' : 'done'} after ${r.steps} steps; last loss ${r.lastLoss.toFixed(4)}${ap}; checkpoint ${r.checkpoint}`);
  } finally {
    sig.dispose();
  }
}

interface EvalFlags {
  checkpoint: string;
  data?: string;
  res?: string;
  valSize?: string;
  limit?: string;
  json?: string;
  threads?: string;
}

async function evalAction(f: EvalFlags): Promise<void> {
  const { detector, params, info, mean, std } = loadDetector(f.checkpoint);
  const size = f.res ? parseSize('--res', f.res) : storedSize(info.run);
  if (!size) throw new Error(`--res: the checkpoint does not record its training size; give --res N or HxW`);
  detector.checkInputSize(size[0], size[1]);
  const stored = storedDataInfo(info.run);
  const dataInfo: DetDataInfo = f.data ? { ...(stored && stored.spec === f.data ? stored : { seed: stored?.seed ?? 0 }), spec: f.data } : stored ?? { spec: 'synthetic', seed: 0 };
  if (f.valSize) dataInfo.valSize = intFlag('--val-size', f.valSize, 1);
  const ds = await evalSet(dataInfo, size);
  if (ds.classNames.length !== detector.numClasses) {
    throw new Error(`the detector has ${detector.numClasses} classes but the data '${dataInfo.spec}' has ${ds.classNames.length} (${ds.classNames.join(', ')})`);
  }
  const rt = runtimeFor(f.threads);
  const r = await evaluateDetector(rt, detector, params, ds, size, { mean, std, limit: intFlag('--limit', f.limit, 1) });
  console.log(`COCO box evaluation of ${f.checkpoint} on ${dataInfo.spec} (${r.images.length} images at ${size[0]}x${size[1]}, ${r.msPerImage.toFixed(1)} ms/image):`);
  console.log(formatSummary(r.coco));
  const out = f.json ?? path.join(fs.statSync(f.checkpoint).isDirectory() ? f.checkpoint : path.dirname(f.checkpoint), `eval-${size[0]}x${size[1]}.json`);
  const perCategory = Object.fromEntries(ds.classNames.map((n, k) => [n, r.perCategoryAP[k]]));
  writeFileAtomic(out, JSON.stringify({
    checkpoint: path.resolve(f.checkpoint), data: dataInfo, size, images: r.images.length, msPerImage: r.msPerImage,
    stats: Object.fromEntries(r.statsNames.map((n, k) => [n, r.stats[k]])), perCategoryAP: perCategory,
  }, null, 1) + '\n');
  console.log(`wrote ${out}`);
}

interface PredictFlags {
  checkpoint: string;
  res?: string;
  score: string;
  out: string;
  threads?: string;
}

async function predictAction(files: string[], f: PredictFlags): Promise<void> {
  if (!files.length) throw new Error('detect predict: give one or more image files');
  const missing = files.filter((p) => !fs.existsSync(p) || !fs.statSync(p).isFile());
  if (missing.length) throw new Error(`detect predict: no such image file: ${missing.join(', ')}`);
  const stems = files.map((p) => path.basename(p, path.extname(p)));
  const dup = stems.find((s, i) => stems.indexOf(s) !== i);
  if (dup) throw new Error(`detect predict: two inputs are named '${dup}' (outputs are <name>.json and <name>.png in --out); rename one`);
  const score = num('--score', f.score, 0)!;
  if (score > 1) throw new Error(`--score ${f.score} must be in [0, 1]`);
  const { detector, params, info, mean, std } = loadDetector(f.checkpoint);
  const size = f.res ? parseSize('--res', f.res) : storedSize(info.run);
  if (!size) throw new Error('--res: the checkpoint does not record its training size; give --res N or HxW');
  detector.checkInputSize(size[0], size[1]);
  const names = storedClassNames(info.run, detector.numClasses);
  fs.mkdirSync(f.out, { recursive: true });
  const rt = runtimeFor(f.threads);
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    let img;
    try {
      img = await decodeImageFile(file);
    } catch (e) {
      throw new Error(`detect predict: cannot decode ${file}: ${(e as Error).message}`, { cause: e });
    }
    // The evaluation view: long side fits the input, padding bottom/right; boxes map back by 1/scale.
    const plan = evalPlan([img.height, img.width], size);
    const view = applyPlan(plan, img, []);
    const [dets] = await predictDetections(rt, detector, params, [view.image], size, { mean, std, postprocess: { scoreThresh: score } });
    const [sx, sy] = plan.scale;
    const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
    const boxes = dets!.map((d) => {
      const box: Box = [clip(d.box[0] / sx, img.width), clip(d.box[1] / sy, img.height), clip(d.box[2] / sx, img.width), clip(d.box[3] / sy, img.height)];
      return { label: d.label, class: names[d.label]!, score: d.score, box, bbox: toCocoBox(box) };
    });
    const stem = stems[i]!;
    writeFileAtomic(path.join(f.out, `${stem}.json`), JSON.stringify({ file: path.resolve(file), width: img.width, height: img.height, inputSize: size, detections: boxes }, null, 1) + '\n');
    writeFileAtomic(path.join(f.out, `${stem}.png`), await drawDetectionsPng(img, [{ boxes }], names));
    console.log(`${file}: ${boxes.length} detections >= ${score} -> ${path.join(f.out, stem)}.{json,png}`);
  }
}

export function registerDetectCommands(program: Command): void {
  const det = program.command('detect').description('object detection: FCOS on ViTDet / HieraDet backbones (train, eval, predict)');
  det
    .command('train')
    .description('train a detector on synthetic scenes or a COCO-format folder, from scratch or from a classification checkpoint')
    .option('--model <preset|spec>', `detection preset (${[...Object.keys(vitdetPresets), ...Object.keys(hieradetPresets)].join(', ')}) or a JSON spec (file or inline)`)
    .option('--init <ckpt>', 'classification checkpoint (run dir or last.json) whose ViT/Hiera becomes the backbone')
    .option('--posembed-init <kind>', `with --init: ${POSEMBED_INITS.join('|')} (default interpolate)`)
    .option('--relpos <where>', `with --init from a ViT: ${RELPOS_PLACEMENTS.join('|')} (default all)`)
    .option('--data <spec>', 'synthetic | coco:<folder>', 'synthetic')
    .option('--res <N|HxW>', 'input size', '128')
    .option('--steps <n>', 'optimizer steps')
    .option('--epochs <n>', 'epochs (instead of --steps; default 1)')
    .option('--batch <n>', 'batch size', '8')
    .option('--lr <x>', 'peak learning rate (AdamW)', '1e-3')
    .option('--wd <x>', 'weight decay (default 0.05)')
    .option('--warmup <steps>', 'linear warm-up steps')
    .option('--min-lr <x>', 'final lr of the cosine')
    .option('--clip-grad <norm>', 'clip the global gradient norm')
    .option('--layer-decay <x>', 'layer-wise lr decay of the backbone blocks (ViTDet: 0.7)')
    .option('--no-augment', 'train on the evaluation view (no large-scale jitter)')
    .option('--lsj <lo-hi>', 'large-scale jitter scale range (default 0.1-2.0, as ViTDet)')
    .option('--no-eval', 'skip the COCO evaluation on the validation set at the end')
    .option('--eval-every <steps>', 'also evaluate every N steps')
    .option('--ckpt-every <steps>', 'also checkpoint every N steps')
    .option('--train-size <n>', 'synthetic: training scenes (default 2000)')
    .option('--val-size <n>', 'synthetic: validation scenes (default 200)')
    .option('--classes <names|n>', `synthetic: shape classes (${DET_SHAPE_CLASSES.join(',')}) or a count (default 5)`)
    .option('--objects <lo-hi>', 'synthetic: objects per scene (default 1-6)')
    .option('--sizes <lo-hi>', 'synthetic: object circumradius / image side (default 0.04-0.22)')
    .option('--head-convs <n>', 'convs per FCOS tower (default 4)')
    .option('--fpn-dim <n>', 'width of the pyramid levels (ViTDet pyramid / HieraDet neck)')
    .option('--seed <n>', 'seed', '0')
    .option('--threads <n>', 'ONNX Runtime threads (fix it for bit-for-bit reproducibility)')
    .option('--resume', "continue from the run directory's last checkpoint")
    .requiredOption('--out <dir>', 'run directory (checkpoints, log.jsonl)')
    .action(trainAction);
  det
    .command('eval')
    .description('COCO box AP of a detector checkpoint (prints the 12 numbers, writes JSON)')
    .requiredOption('--checkpoint <ckpt>', 'run directory or last.json')
    .option('--data <spec>', 'synthetic | coco:<folder> (default: what it was trained on)')
    .option('--res <N|HxW>', 'input size (default: the training size)')
    .option('--val-size <n>', 'synthetic: validation scenes')
    .option('--limit <n>', 'evaluate only the first n images')
    .option('--json <file>', 'where to write the numbers (default <run dir>/eval-<H>x<W>.json)')
    .option('--threads <n>', 'ONNX Runtime threads')
    .action(evalAction);
  det
    .command('predict')
    .description('detect objects in image files: <name>.json (boxes in image pixels) and <name>.png (boxes drawn) per image')
    .argument('<images...>', 'image files (PNG, JPEG, WebP)')
    .requiredOption('--checkpoint <ckpt>', 'run directory or last.json')
    .option('--res <N|HxW>', 'input size (default: the training size); images are fitted by their long side and padded')
    .option('--score <x>', 'minimum score', '0.3')
    .requiredOption('--out <dir>', 'output directory')
    .option('--threads <n>', 'ONNX Runtime threads')
    .action(predictAction);
}
