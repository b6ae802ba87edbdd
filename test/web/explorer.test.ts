/**
 * End-to-end: the built explorer in a real headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core), served by `anyres explore`'s server with a run directory holding exported
 * models, a checkpoint and a results.json. Screenshots go to test/web/artifacts/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { type Browser, type Page, chromium } from 'playwright-core';
import { type ExploreServer, appNeedsBuild, buildApp, startExploreServer } from '../../src/cli/explore.ts';
import { exportCheckpoint, type LoadedCheckpoint, modelFromSpec, type ModelSpec } from '../../src/io/export.ts';
import { saveSafetensors } from '../../src/io/safetensors.ts';
import { initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { Runtime } from '../../src/graph/runtime.ts';
import { predict } from '../../src/eval/sweep.ts';
import { Report } from '../../src/eval/report.ts';
import { lineChart } from '../../src/eval/charts.ts';
import { fitImage, rgbaToChw, sampleInput } from '../../web/src/preprocess.ts';

const CHROMIUM = process.env.ANYRES_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(path.dirname(new URL(import.meta.url).pathname), 'artifacts');
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does this as root)`;
if (skip) console.log(`# explorer browser tests skipped: ${skip}`);

// Chromium flags for this closed network: no background traffic, no GPU, no sandbox as root.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let tmp: string;
let srv: ExploreServer;
let browser: Browser;
let page: Page;
const rt = new Runtime({ threads: 1 });
const ckpts = new Map<string, LoadedCheckpoint>();

function normalised(img: Float32Array): Float32Array {
  // Same normalisation the checkpoints record (and the export folds into the graph).
  const hw = img.length / 3;
  const out = new Float32Array(img.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < hw; i++) out[c * hw + i] = (img[c * hw + i]! - 0.5) / 0.25;
  return out;
}

async function nodeProbs(name: string, img: Float32Array, H: number, W: number): Promise<Float32Array> {
  const ck = ckpts.get(name)!;
  const logits = await predict(rt, ck.model, ck.weights, { data: normalised(img), shape: [1, 3, H, W] });
  const m = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (v) => v / z);
}

const argmax = (a: ArrayLike<number>): number => Array.from(a).reduce((b, v, i, arr) => (v > arr[b]! ? i : b), 0);

async function selectModel(name: string): Promise<void> {
  const idx = await page.$eval('#model', (sel, n) => [...(sel as HTMLSelectElement).options].findIndex((o) => o.text.startsWith(n)), name);
  assert.ok(idx >= 0, `model ${name} is not offered`);
  await page.selectOption('#model', String(idx));
}

async function shot(name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

before(async () => {
  if (skip) return;
  if (appNeedsBuild()) await buildApp({ quiet: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-explorer-'));
  const specs: [string, ModelSpec, [number, number][]][] = [
    ['vit-absolute', { family: 'vit', preset: 'vit-mini-p4' }, [[32, 32], [48, 48]]],
    ['hiera-abswin', { family: 'hiera', preset: 'hiera-mini-abswin' }, [[64, 64]]],
  ];
  for (const [name, spec, sizes] of specs) {
    const model = modelFromSpec(spec);
    const file = path.join(tmp, `${name}.safetensors`);
    saveSafetensors(file, initWeights(model.paramInfos(), new Rng(7)), {
      'anyres.config': JSON.stringify(spec),
      'anyres.dataset': 'synthetic',
      'anyres.train_res': JSON.stringify([sizes[0]![0]]),
      'anyres.normalization': JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }),
    });
    const { loaded } = await exportCheckpoint(file, sizes, path.join(tmp, 'models', `${name}.onnx`));
    ckpts.set(name, loaded);
  }
  const rep = new Report('Resolution sweep (test)');
  rep.section('Top-1 accuracy');
  rep.chart('sweep', lineChart({
    title: 'Accuracy vs resolution', x: { field: 'res', title: 'px' }, y: { field: 'acc', title: 'top-1 (%)' }, color: { field: 'model', title: 'model' },
    rows: [32, 48, 64].flatMap((r, i) => [{ res: r, acc: 60 + i, model: 'absolute' }, { res: r, acc: 70 - i, model: 'abswin' }]),
  }));
  await rep.write(tmp);
  srv = await startExploreServer({ runDir: tmp });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(srv.url);
  await page.waitForSelector('#app[data-ready="1"]', { timeout: 30_000 }).catch((e: Error) => {
    throw new Error(`${e.message}; page errors: ${errors.join('; ')}`);
  });
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await srv?.close();
  await rt.clear();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the page loads with the run: pos-embed maps, models, results chart', { skip }, async () => {
  assert.equal(await page.title(), 'anyres explorer');
  assert.ok(await page.isVisible('#pe-naive-0'));
  assert.ok(await page.isVisible('#pe-abswin-0'));
  assert.equal(await page.getAttribute('#classify-panel', 'data-models'), '2');
  assert.match((await page.textContent('#run-info')) ?? '', /3 exported model file\(s\), 2 checkpoint\(s\), results\.json/);
  assert.equal(await page.textContent('#pe-error'), '');
  assert.equal(await page.locator('#pe-source option').count(), 3);
  assert.equal(await page.getAttribute('#results', 'data-charts'), '1');
  assert.ok((await page.locator('#results-out svg').count()) >= 1);
  // Is the wasm runtime cross-origin isolated (threads)? The server sends COOP/COEP for it.
  assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
  await shot('explorer-loaded');
});

test('the resolution slider changes the drawing; naive drifts off the windows, absolute win stays aligned', { skip }, async () => {
  await page.selectOption('#pe-source', '0');
  const snap = (): Promise<{ naive: string; abswin: string; simN: string; simA: string }> =>
    page.evaluate(() => ({
      naive: (document.getElementById('pe-naive-0') as HTMLCanvasElement).toDataURL(),
      abswin: (document.getElementById('pe-abswin-0') as HTMLCanvasElement).toDataURL(),
      simN: document.getElementById('sim-naive')!.textContent ?? '',
      simA: document.getElementById('sim-abswin')!.textContent ?? '',
    }));
  const setGrid = (g: number): Promise<void> =>
    page.$eval('#pe-res', (el, v) => {
      const s = el as HTMLInputElement;
      s.value = String(v);
      s.dispatchEvent(new Event('input', { bubbles: true }));
    }, g);
  await setGrid(16); // the training grid: both are the same embedding
  const atTrain = await snap();
  assert.equal(atTrain.naive, atTrain.abswin);
  assert.equal(atTrain.simN, atTrain.simA);
  await setGrid(22);
  const moved = await snap();
  assert.notEqual(moved.naive, atTrain.naive);
  assert.notEqual(moved.naive, moved.abswin);
  assert.equal(await page.getAttribute('#posembed', 'data-grid'), '22');
  assert.ok(Number(moved.simA) > Number(moved.simN) + 0.2, `abs-win ${moved.simA} vs naive ${moved.simN}`);
  await shot('posembed-grid22');
});

for (const [model, res, sample] of [['vit-absolute', '32', 3], ['vit-absolute', '48', 5], ['hiera-abswin', '64', 2]] as const) {
  test(`a built-in sample classified in the page (${model} at ${res} px) has the same top-1 as anyres in Node`, { skip }, async () => {
    await selectModel(model);
    await page.selectOption('#res', res);
    await page.click(`#sample-${sample}`);
    await page.click('#classify');
    await page.waitForSelector('#classify-panel[data-top1]');
    const top1 = await page.getAttribute('#classify-panel', 'data-top1');
    const probs = JSON.parse((await page.getAttribute('#classify-panel', 'data-probs'))!) as number[];
    const r = Number(res);
    const ref = await nodeProbs(model, sampleInput(sample, r, r), r, r);
    const classes = ckpts.get(model)!.classes;
    assert.equal(top1, classes[argmax(ref)]);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(probs[i]! - ref[i]!) < 1e-4, `class ${i}: page ${probs[i]} node ${ref[i]}`);
    assert.equal(await page.locator('#top5 li').count(), 5);
  });
}

test('an uploaded image is cropped, resized and classified as in Node', { skip }, async () => {
  // A non-square PNG: the page centre-crops it to the model's aspect and resizes it.
  const W = 90, H = 70;
  const chw = sampleInput(9, H, W);
  const rgb = Buffer.alloc(W * H * 3);
  for (let i = 0; i < W * H; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(255 * chw[c * W * H + i]!);
  const png = path.join(tmp, 'upload.png');
  await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).png().toFile(png);
  await selectModel('vit-absolute');
  await page.selectOption('#res', '48');
  await page.setInputFiles('#image-file', png);
  await page.waitForSelector('#classify-panel[data-picture="file:upload.png"]');
  await page.click('#classify');
  await page.waitForSelector('#classify-panel[data-top1]');
  const raw = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const img = rgbaToChw(raw.data, raw.info.width, raw.info.height, raw.info.channels);
  const ref = await nodeProbs('vit-absolute', fitImage(img, 48, 48), 48, 48);
  assert.equal(await page.getAttribute('#classify-panel', 'data-top1'), ckpts.get('vit-absolute')!.classes[argmax(ref)]);
  const probs = JSON.parse((await page.getAttribute('#classify-panel', 'data-probs'))!) as number[];
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(probs[i]! - ref[i]!) < 1e-4);
});

test('every model at every resolution: the sweep table and chart', { skip }, async () => {
  await page.click('#sample-1');
  await page.click('#sweep');
  await page.waitForSelector('#classify-panel[data-sweep-done="1"]', { timeout: 20_000 });
  assert.equal(await page.locator('#sweep-out tbody tr').count(), 2);
  assert.equal(await page.locator('#sweep-out thead th').count(), 4); // model + 32, 48, 64
  assert.ok(await page.isVisible('#sweep-chart'));
  await shot('classify-sweep');
});
