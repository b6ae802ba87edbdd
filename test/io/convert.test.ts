import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../../src/fixtures.ts';
import { Rng } from '../../src/util/rng.ts';
import { Params, type Weights, initWeights } from '../../src/nn/params.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import type { Model } from '../../src/models/types.ts';
import { checkpointConfigOf, createModel, modelFromCheckpointConfig } from '../../src/models/registry.ts';
import { loadSafetensors, saveSafetensors } from '../../src/io/index.ts';
import { absWinEmbed } from '../../src/posembed/abswin.ts';
import { gridToTokens, tileCrop } from '../../src/posembed/reference.ts';
import { convertCheckpoint, positionEmbeddingAt, similarityOf } from '../../src/index.ts';

const rt = new Runtime();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-convert-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function save(model: Model, weights: Weights, name: string): string {
  const file = path.join(tmp, name);
  saveSafetensors(file, new Map([...weights].map(([k, v]) => [k, v])), { 'anyres.config': JSON.stringify(checkpointConfigOf(model)), 'anyres.classes': '["a"]' });
  return file;
}

function randomImage(seed: number, H: number, W: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: 3 * H * W }, () => r.normal());
}

async function logits(model: Model, w: Weights, x: Float32Array, H: number, W: number): Promise<Float32Array> {
  const out = await rt.run((i, g) => ({ y: model.forward(new Params(g, w), i.x!).logits }), { x: host(x, [1, 3, H, W]) });
  return out.y!.data as Float32Array;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test('interpolate to the same grid is the identity (bit for bit), metadata round-trips', () => {
  const model = createModel('hiera-mini');
  const w = initWeights(model.paramInfos(), new Rng(1));
  const src = save(model, w, 'hiera-mini.safetensors');
  const out = path.join(tmp, 'same.safetensors');
  const r = convertCheckpoint({ from: src, to: out, posembedConvert: 'interpolate', res: [64, 64] });
  assert.match(r.notes[0]!, /already at this grid/);
  const { tensors, metadata } = loadSafetensors(out);
  for (const [k, v] of w) assert.deepEqual(tensors.get(k)!.data, v.data, k);
  assert.deepEqual(modelFromCheckpointConfig(metadata['anyres.config']!).config, model.config);
  assert.equal(metadata['anyres.classes'], '["a"]');
  assert.equal(metadata['anyres.converted_from'], 'hiera-mini.safetensors');
});

test('interpolate to a new size: the converted ViT at that size equals the original fed that size', async () => {
  const model = createModel('vit-mini-p4');
  const w = initWeights(model.paramInfos(), new Rng(2));
  const src = save(model, w, 'vit.safetensors');
  const out = path.join(tmp, 'vit-48x40.safetensors');
  const r = convertCheckpoint({ from: src, to: out, res: [48, 40] });
  assert.match(r.notes[0]!, /pos_embed \[1, 65, 96\] -> \[1, 121, 96\] \(bicubic_aa 8x8 -> 12x10\)/);
  const { tensors, metadata } = loadSafetensors(out);
  const conv = modelFromCheckpointConfig(metadata['anyres.config']!);
  assert.deepEqual(conv.defaultRes, [48, 40]);
  const cw: Weights = new Map([...tensors].map(([k, v]) => [k, { data: v.data, shape: v.shape }]));
  const x = randomImage(3, 48, 40);
  const d = maxDiff(await logits(conv, cw, x, 48, 40), await logits(model, w, x, 48, 40));
  assert.ok(d < 1e-5, `max diff ${d}`);
});

/** A Hiera-mini whose learned pos_embed is exactly interpolate(global 4x4) + tile(window 8x8). */
function tiledHiera(): { model: Model; w: Weights; global: Float64Array; window: Float64Array } {
  const model = createModel('hiera-mini');
  const w = initWeights(model.paramInfos(), new Rng(4));
  const C = 32;
  const r = new Rng(5);
  const global = Float64Array.from({ length: C * 16 }, () => r.normal() * 0.5);
  const window = Float64Array.from({ length: C * 64 }, () => r.normal() * 0.5);
  // Zero mean per channel: the split's gauge puts each channel's constant into the global part.
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let k = 0; k < 64; k++) m += window[c * 64 + k]! / 64;
    for (let k = 0; k < 64; k++) window[c * 64 + k]! -= m;
  }
  const learned = absWinEmbed({ data: global, C, H: 4, W: 4 }, { data: window, C, H: 8, W: 8 }, 16, 16);
  w.set('pos_embed', { data: Float32Array.from(gridToTokens(learned.data, C, 16, 16)), shape: [1, 256, C] });
  return { model, w, global, window };
}

test('abswin from an exactly tiled + global learned embedding recovers it; the abs-win Hiera reproduces the logits', async () => {
  const { model, w, global, window } = tiledHiera();
  const src = save(model, w, 'hiera-tiled.pth.safetensors');
  const out = path.join(tmp, 'hiera-abswin.safetensors');
  const r = convertCheckpoint({ from: src, to: out, posembedConvert: 'abswin', globalSize: [4, 4] });
  assert.ok(r.relResidual! < 1e-6, `residual ${r.relResidual}`);
  const { tensors, metadata } = loadSafetensors(out);
  assert.equal(metadata['anyres.posembed_convert'], 'abswin');
  const conv = modelFromCheckpointConfig(metadata['anyres.config']!);
  assert.equal((conv.config as { posEmbed: string }).posEmbed, 'abswin');
  assert.deepEqual(tensors.get('pos_embed')!.shape, [1, 32, 4, 4]);
  assert.deepEqual(tensors.get('pos_embed_window')!.shape, [1, 32, 8, 8]);
  assert.ok(maxDiff(tensors.get('pos_embed')!.data, global) < 1e-4, 'global recovered');
  assert.ok(maxDiff(tensors.get('pos_embed_window')!.data, window) < 1e-4, 'window recovered');
  const cw: Weights = new Map([...tensors].map(([k, v]) => [k, { data: v.data, shape: v.shape }]));
  const x = randomImage(6, 64, 64);
  const d = maxDiff(await logits(conv, cw, x, 64, 64), await logits(model, w, x, 64, 64));
  assert.ok(d < 1e-4, `logits differ by ${d} at the pretrain size`);
  // At another size the abs-win model tiles the window (aligned) instead of interpolating the whole grid.
  const pos = await positionEmbeddingAt(createModel({ family: 'hiera', config: { ...(conv.config as object), inputSize: [128, 128] } }), cw, rt);
  const expect = absWinEmbed({ data: global, C: 32, H: 4, W: 4 }, { data: window, C: 32, H: 8, W: 8 }, 32, 32);
  assert.ok(maxDiff(pos.data, expect.data) < 1e-4);
});

test('abswin on a learned embedding that is not tiled reports the residual; bad sources are refused', () => {
  const model = createModel('hiera-mini');
  const w = initWeights(model.paramInfos(), new Rng(7)); // i.i.d. truncated normal pos_embed
  const src = save(model, w, 'hiera-random.safetensors');
  const r = convertCheckpoint({ from: src, to: path.join(tmp, 'x.safetensors'), posembedConvert: 'abswin', iterations: 5 });
  assert.ok(r.relResidual! > 0.3, `residual ${r.relResidual}`);
  assert.match(r.notes[1]!, /not exactly window-tiled/);
  const vit = createModel('vit-mini-p4');
  const vsrc = save(vit, initWeights(vit.paramInfos(), new Rng(8)), 'vit2.safetensors');
  assert.throws(() => convertCheckpoint({ from: vsrc, to: path.join(tmp, 'y.safetensors'), posembedConvert: 'abswin' }), /needs a Hiera with a learned absolute pos_embed[\s\S]*use --posembed-convert tile/);
  assert.throws(() => convertCheckpoint({ from: vsrc, to: path.join(tmp, 'y.safetensors'), posembedConvert: 'tile', target: 'vitdet-mini' }), /the ViT has embedDim 96, --target vitdet-mini has 64/);
  assert.throws(() => convertCheckpoint({ from: vsrc, to: path.join(tmp, 'y.safetensors'), res: [50, 50] }), /imgSize 50x50 must be a multiple of patchSize 4/);
  assert.ok(!fs.existsSync(path.join(tmp, 'y.safetensors')));
});

test('tile: a plain ViT becomes a ViTDet whose window embedding is the ViT grid', async () => {
  const det = createModel('vitdet-mini');
  // A ViT of the same size as vitdet-mini (64 wide, 4 blocks, 2 heads, patch 16) at 112 px: 7x7 grid.
  const vit = createModel('vit-tiny', { embedDim: 64, depth: 4, numHeads: 2, imgSize: [112, 112], numClasses: 5 });
  const w = initWeights(vit.paramInfos(), new Rng(9));
  const src = save(vit, w, 'vit-64.safetensors');
  const out = path.join(tmp, 'vitdet.safetensors');
  const r = convertCheckpoint({ from: src, to: out, posembedConvert: 'tile', target: 'vitdet-mini' });
  assert.equal(r.model.family, 'vitdet');
  assert.match(r.notes[1]!, /missing \d+ \(left at their initial values\)[\s\S]*rel_pos/);
  assert.match(r.notes[1]!, /unexpected 5 [\s\S]*cls_token[\s\S]*head\.weight/);
  const { tensors, metadata } = loadSafetensors(out);
  const conv = modelFromCheckpointConfig(metadata['anyres.config']!);
  assert.deepEqual((conv.config as { posEmbed: string; pretrainGrid: number }).posEmbed, 'abswin');
  assert.deepEqual(tensors.get('pos_embed')!.data, w.get('pos_embed')!.data);
  assert.deepEqual(tensors.get('blocks.3.mlp.fc2.weight')!.data, w.get('blocks.3.mlp.fc2.weight')!.data);
  assert.equal(conv.paramInfos().size, det.paramInfos().size);
  // The ViTDet adds the ViT's 7x7 grid tiled over its 14x14 feature map (224 px).
  const cw: Weights = new Map([...tensors].map(([k, v]) => [k, { data: v.data, shape: v.shape }]));
  const pos = await positionEmbeddingAt(conv, cw, rt);
  const grid7 = new Float64Array(64 * 49);
  const pe = w.get('pos_embed')!.data;
  for (let k = 0; k < 49; k++) for (let c = 0; c < 64; c++) grid7[c * 49 + k] = pe[(1 + k) * 64 + c]!;
  assert.ok(maxDiff(pos.data, tileCrop(grid7, 64, 7, 7, 14, 14)) < 1e-6);
  assert.ok(similarityOf(pos, [7, 7]).similarity > 0.999);
});

test('CLI: convert and similarity end to end (report, heat map, chart)', () => {
  const { model, w } = tiledHiera();
  const src = save(model, w, 'cli-src.safetensors');
  const out = path.join(tmp, 'cli-out.safetensors');
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), ...args], { cwd: repoRoot, encoding: 'utf8' });
  const c = run(['convert', '--from', src, '--to', out, '--posembed-convert', 'abswin', '--global-size', '4', '--res', '128']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`source: hiera\nloaded ${model.paramInfos().size} tensors\n`));
  assert.match(c.stdout, /relative residual .* = \d\.\d+e-\d+/);
  assert.match(c.stdout, /wrote .*cli-out\.safetensors \(hiera, default 128x128/);
  const s = run(['similarity', '--checkpoint', out, '--out', path.join(tmp, 'sim'), '--channels', '4']);
  assert.equal(s.status, 0, s.stderr);
  // The abs-win embedding at 128 px (32x32 tokens) is a tiled window plus a smooth global part.
  const m = /window similarity (\d\.\d+)/.exec(s.stdout);
  assert.ok(m && Number(m[1]) > 0.3, s.stdout);
  for (const f of ['sim-heatmap.png', 'sim-channels.svg', 'sim-channels.png']) {
    const b = fs.readFileSync(path.join(tmp, f));
    assert.ok(b.length > 100, f);
  }
  assert.equal(fs.readFileSync(path.join(tmp, 'sim-heatmap.png')).subarray(1, 4).toString(), 'PNG');
  const bad = run(['convert', '--from', src, '--to', out, '--posembed-convert', 'nope']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /must be one of interpolate, abswin, tile/);
  const help = run(['convert', '--help']);
  assert.match(help.stdout, /smooth field plus a pattern periodic in the mask unit/);
});
