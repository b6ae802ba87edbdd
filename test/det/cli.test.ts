import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { repoRoot } from '../../src/fixtures.ts';
import { createVit } from '../../src/models/vit.ts';
import { createHiera } from '../../src/models/hiera.ts';
import { detectorFromClassifier, parseSize } from '../../src/cli/detect.ts';
import { initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { saveCheckpoint } from '../../src/train/checkpoint.ts';
import { stateFromParams } from '../../src/train/state.ts';
import { loadDetector } from '../../src/det/trainer.ts';
import { SyntheticDetDataset } from '../../src/det/data/synthetic.ts';
import { writeCocoFolder } from '../../src/det/data/coco-format.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-detect-cli-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'detect', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, CI: '1' } });

const tiny = ['--head-convs', '1', '--batch', '2', '--threads', '2'];

test('detect train -> resume -> eval -> predict on synthetic scenes at a non-square size', async () => {
  const out = path.join(tmp, 'run');
  const t = run(['train', '--model', 'vitdet-mini', '--res', '64x96', '--steps', '2', '--train-size', '6', '--val-size', '3', '--classes', '3', '--lsj', '0.5-1.5', ...tiny, '--out', out]);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /done after 2 steps; last loss \d+\.\d+; val box AP \d+\.\d, AP50 \d+\.\d; checkpoint .*last\.json/);
  const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: number });
  assert.equal(log[0]!.type, 'start');
  assert.ok(log.some((r) => r.type === 'eval'));
  // Resume to a longer schedule: continues from step 2.
  const r = run(['train', '--model', 'vitdet-mini', '--res', '64x96', '--steps', '3', '--train-size', '6', '--val-size', '3', '--classes', '3', '--no-eval', ...tiny, '--out', out, '--resume']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /done after 3 steps/);
  const log2 = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8');
  assert.match(log2, /"type":"resume","step":2/);
  const ck = loadDetector(out);
  assert.equal(ck.detector.numClasses, 3);
  assert.equal(ck.info.step, 3);

  const e = run(['eval', '--checkpoint', out, '--threads', '2']);
  assert.equal(e.status, 0, e.stderr);
  const lines = e.stdout.split('\n').filter((l) => /Average (Precision|Recall)/.test(l));
  assert.equal(lines.length, 12);
  assert.match(e.stdout, /on synthetic \(3 images at 64x96/);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'eval-64x96.json'), 'utf8')) as { stats: Record<string, number>; perCategoryAP: Record<string, number> };
  assert.deepEqual(Object.keys(json.stats), ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl']);
  assert.deepEqual(Object.keys(json.perCategoryAP), ['disc', 'ring', 'square']);

  // Predict on image files of other sizes: JSON in the files' own pixels and a PNG with the boxes drawn.
  const img1 = path.join(tmp, 'wide.png');
  const img2 = path.join(tmp, 'tall.jpg');
  await sharp({ create: { width: 150, height: 70, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toFile(img1);
  await sharp({ create: { width: 40, height: 90, channels: 3, background: { r: 20, g: 30, b: 200 } } }).jpeg().toFile(img2);
  const pdir = path.join(tmp, 'pred');
  const p = run(['predict', '--checkpoint', out, '--score', '0', '--out', pdir, '--threads', '2', img1, img2]);
  assert.equal(p.status, 0, p.stderr);
  for (const [stem, W, H] of [['wide', 150, 70], ['tall', 40, 90]] as const) {
    const j = JSON.parse(fs.readFileSync(path.join(pdir, `${stem}.json`), 'utf8')) as { width: number; height: number; detections: { box: number[]; bbox: number[]; score: number; class: string }[] };
    assert.equal(j.width, W);
    assert.equal(j.height, H);
    assert.ok(j.detections.length > 0, 'score 0 keeps detections');
    for (const d of j.detections) {
      assert.ok(d.box[0]! >= 0 && d.box[1]! >= 0 && d.box[2]! <= W && d.box[3]! <= H, `box ${d.box} inside ${W}x${H}`);
      assert.ok(['disc', 'ring', 'square'].includes(d.class));
      assert.ok(Math.abs(d.bbox[2]! - (d.box[2]! - d.box[0]!)) < 1e-9);
    }
    const meta = await sharp(path.join(pdir, `${stem}.png`)).metadata();
    assert.equal(meta.width! / W, meta.height! / H, 'the picture is the image, upscaled');
  }
});

test('detect train --init: a ViT classification checkpoint becomes a tiled ViTDet backbone (relpos in the global blocks), on a COCO folder', async () => {
  // A small global-attention ViT "pretrained" at a 4x4 grid, saved as a real checkpoint.
  const vit = createVit('vit-mini-p4', { embedDim: 32, depth: 2, numHeads: 2, imgSize: [16, 16], numClasses: 5 });
  const params = new Map([...initWeights(vit.paramInfos(), new Rng(3))].map(([k, v]) => [k, v.data]));
  const ckDir = path.join(tmp, 'cls');
  saveCheckpoint(ckDir, stateFromParams(params), { model: { family: 'vit', config: vit.config }, run: {}, epoch: 0, stepInEpoch: 0, rng: {} });
  const coco = path.join(tmp, 'coco');
  await writeCocoFolder(path.join(coco, 'train'), new SyntheticDetDataset({ seed: 1, split: 'train', size: 4, classes: 2 }), [48, 64], { progress: false });
  await writeCocoFolder(path.join(coco, 'val'), new SyntheticDetDataset({ seed: 1, split: 'val', size: 2, classes: 2 }), [48, 64], { progress: false });
  const out = path.join(tmp, 'init-run');
  const t = run(['train', '--init', ckDir, '--posembed-init', 'tile', '--relpos', 'global', '--data', `coco:${coco}`, '--res', '32x48', '--steps', '2', '--fpn-dim', '16', ...tiny, '--out', out]);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stderr, /vitdetFromVit/);
  const ck = loadDetector(out);
  const spec = ck.detector.spec;
  assert.equal(spec.backbone.family, 'vitdet');
  if (spec.backbone.family !== 'vitdet') return;
  assert.equal(spec.backbone.config.windowSize, 4, 'window = the pretrained grid');
  assert.equal(spec.backbone.config.relPos, 'global');
  assert.equal(spec.numClasses, 2);
  assert.deepEqual(ck.info.run['classNames'], ['disc', 'ring']);
  // The patch embedding came from the classifier (training 2 steps moves it only slightly).
  const pe = ck.params.get('backbone.patch_embed.proj.weight')!;
  const src = params.get('patch_embed.proj.weight')!;
  let d = 0;
  for (let i = 0; i < pe.length; i++) d = Math.max(d, Math.abs(pe[i]! - src[i]!));
  assert.ok(d < 0.05, `patch embedding moved by ${d}`);
  const e = run(['eval', '--checkpoint', path.join(out, 'last.json'), '--threads', '2', '--json', path.join(tmp, 'coco-eval.json')]);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, new RegExp(`on coco:${coco.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(2 images at 32x48`));
  assert.ok(fs.existsSync(path.join(tmp, 'coco-eval.json')));
});

test('detect: bad flags fail early with messages that say what works', () => {
  const out = path.join(tmp, 'bad');
  const cases: [string[], RegExp][] = [
    [['train', '--model', 'vitdet-mini', '--res', '50', '--steps', '1', '--out', out], /input 50x50 is not supported: .*nearest sizes that work: 48 or 64 x 48 or 64/],
    [['train', '--model', 'vitdet-nope', '--steps', '1', '--out', out], /--model 'vitdet-nope' is neither a detection preset \(vitdet-b, .*vitdet-mini.*hieradet-mini/],
    [['train', '--model', 'vitdet-mini', '--posembed-init', 'tile', '--steps', '1', '--out', out], /--posembed-init and --relpos choose how --init converts a classifier; they need --init/],
    [['train', '--model', 'vitdet-mini', '--data', 'imagenet', '--steps', '1', '--out', out], /--data 'imagenet' is not one of: synthetic, coco:<folder>/],
    [['train', '--model', 'vitdet-mini', '--data', `coco:${tmp}`, '--steps', '1', '--out', out], /no instances\.json in/],
    [['train', '--model', 'vitdet-mini', '--res', '64x', '--steps', '1', '--out', out], /--res '64x' must be N or HxW/],
    [['train', '--model', 'vitdet-mini', '--classes', 'disc,hexagon', '--steps', '1', '--out', out], /--classes 'disc,hexagon': hexagon not among disc, ring/],
    [['train', '--model', 'vitdet-mini', '--lsj', '0-2', '--steps', '1', '--out', out], /--lsj '0-2': the scales must be > 0/],
    [['train', '--model', 'vitdet-mini', '--data', `coco:${tmp}`, '--objects', '1-3', '--steps', '1', '--out', out], /shape the synthetic scenes; they need --data synthetic/],
    [['eval', '--checkpoint', path.join(tmp, 'missing')], /does not exist/],
    [['predict', '--checkpoint', path.join(tmp, 'missing'), '--out', out, path.join(tmp, 'no.png')], /no such image file/],
  ];
  for (const [args, re] of cases) {
    const r = run(args);
    assert.notEqual(r.status, 0, `${args.join(' ')} should fail`);
    assert.match(r.stderr, re, args.join(' '));
  }
  assert.ok(!fs.existsSync(path.join(out, 'last.json')), 'nothing trained');
});

test('detectorFromClassifier: a Hiera checkpoint becomes HieraDet (weights carried over, fresh neck and head), with clear refusals', () => {
  const hiera = createHiera('hiera-mini-abswin', { stages: [1, 2, 2], qPool: 2, maskUnitSize: [4, 4], maskUnitAttn: [true, true, false], globalPosSize: [2, 2], inputSize: [32, 32], numClasses: 4 });
  const params = new Map([...initWeights(hiera.paramInfos(), new Rng(4))].map(([k, v]) => [k, v.data]));
  const dir = path.join(tmp, 'hiera-cls');
  saveCheckpoint(dir, stateFromParams(params), { model: { family: 'hiera', config: hiera.config }, run: {}, epoch: 0, stepInEpoch: 0, rng: {} });
  const r = detectorFromClassifier(dir, 3, [64, 96], { posEmbedInit: 'abswin', seed: 1 }, { headConvs: 1, fpnDim: 16 });
  assert.equal(r.detector.spec.backbone.family, 'hieradet');
  assert.equal(r.detector.numClasses, 3);
  assert.deepEqual(r.detector.spec.neck, { dim: 16, topDown: true });
  assert.deepEqual([...r.detector.paramInfos().keys()].sort(), [...r.init.keys()].sort(), 'every detector parameter has an initial value');
  assert.deepEqual(r.init.get('backbone.patch_embed.proj.weight'), params.get('patch_embed.proj.weight'));
  assert.ok(r.notes.some((n) => /recursive absolute win/.test(n)));
  assert.deepEqual(r.detector.levels(64, 96).map((l) => [l.stride, l.h, l.w]), [[8, 8, 12], [16, 4, 6], [32, 2, 3], [64, 1, 2]]);
  assert.throws(() => detectorFromClassifier(dir, 3, [64, 96], { posEmbedInit: 'tile', seed: 1 }, {}), /a Hiera checkpoint takes interpolate or abswin/);
  assert.throws(() => detectorFromClassifier(dir, 3, [64, 96], { posEmbedInit: 'abswin', relPos: 'global', seed: 1 }, {}), /HieraDet has no relative position embeddings/);
  assert.deepEqual(parseSize('--res', '96x160'), [96, 160]);
  assert.deepEqual(parseSize('--res', '128'), [128, 128]);
});
