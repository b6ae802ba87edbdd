/**
 * Video Hiera as a registered family (issue 16 item 5): presets of the official video configs in
 * the registry and `anyres models`, official-layout checkpoints (`model_state` .pth) loading through
 * the key maps, training on synthetic clips of any frame count and size, and fine-tuning that
 * interpolates the temporal embedding linearly and converts the spatial one (interpolate / abs-win).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { Params, initWeights, type Weights } from '../../src/nn/params.ts';
import { createModel, describePreset, presetNames } from '../../src/models/registry.ts';
import { type HieraVideoConfig, hieraVideoPresets } from '../../src/models/hiera-video.ts';
import { modelsTable } from '../../src/cli/models.ts';
import { registerTrainCommands } from '../../src/cli/train.ts';
import { fixturesDir } from '../../src/fixtures.ts';
import { loadCase, need, paramsOf } from '../../src/fixture/case.ts';
import { hieraVideoConfigFromFixture } from '../../src/fixture/kinds/hiera.ts';
import { loadWeightsFor } from '../../src/io/load-model.ts';
import { SyntheticClipDataset } from '../../src/data/clips.ts';
import { renderScene } from '../../src/data/synthetic.ts';
import { loadCheckpoint } from '../../src/io/train-checkpoint.ts';
import { convertForResolution } from '../../src/train/finetune.ts';
import { evalCheckpoint } from '../../src/cli/eval.ts';
import { absWinEmbed } from '../../src/posembed/abswin.ts';
import { Rng } from '../../src/util/rng.ts';
import { contiguous, f32Storage, torchSave, type SaveValue } from '../io/pth-writer.ts';

const rt = new Runtime({ threads: 1 });
const tmp = (n: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `anyres-video-${n}-`));

async function logits(model: ReturnType<typeof createModel>, w: Weights, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const out = await rt.run((i, g) => ({ y: model.forward(new Params(g, w), i.x!).logits }), { x: host(x, shape) });
  return out.y!.data as Float32Array;
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test('the official video configs are registered presets that `anyres models` lists', () => {
  for (const n of ['hiera-base-16x224', 'hiera-base-plus-16x224', 'hiera-large-16x224', 'hiera-huge-16x224']) assert.ok(presetNames().includes(n), n);
  const table = modelsTable(Object.keys(hieraVideoPresets).map(describePreset));
  assert.match(table, /hiera-base-16x224\s+hiera-video\s+51\.09M\s+400/);
  // hiera_base_16x224 = the image Hiera-B with a (3,7,7) Conv3d, a separate temporal embedding
  // (8 token frames) and a 400-class head: the counts differ by exactly those tensors.
  const img = describePreset('hiera-base').params1000!;
  const vid = describePreset('hiera-base-16x224');
  assert.equal(vid.params, img - (768 * 1000 + 1000) + (768 * 400 + 400) + 96 * 3 * 2 * 49 + 8 * 96);
  assert.equal(vid.family, 'hiera-video');
  assert.match(vid.sizeRule, /any frame count/);
});

test('an official video checkpoint (torch .pth, model_state) loads through the key map and reproduces the reference', async () => {
  const c = loadCase(path.join(fixturesDir(), 'video_hiera_tiny_narrow.json'));
  const cfg = hieraVideoConfigFromFixture(c.config, 10);
  const model = createModel({ family: 'hiera-video', config: cfg });
  const params = paramsOf(c);
  const sd = new Map<string, SaveValue>();
  let n = 0;
  for (const [k, v] of params) sd.set(k, contiguous(f32Storage(String(n++), v.data), v.shape));
  const dir = tmp('pth');
  const file = path.join(dir, 'hiera_video.pth');
  fs.writeFileSync(file, torchSave(new Map<string, SaveValue>([['model_state', sd], ['epoch', 10]])));
  const r = loadWeightsFor(model, file, { strict: true });
  assert.deepEqual(r.detection, { source: 'hiera', prefix: 'model_state.' });
  assert.ok(r.weights.has('pos_embed_spatial') && r.weights.has('pos_embed_temporal'));
  const x = need(c, 'input.x');
  const got = await logits(model, r.weights, x.data, x.shape);
  const want = need(c, 'output.logits').data;
  assert.ok(maxDiff(got, want) < 1e-4, `logits differ by ${maxDiff(got, want)}`);
});

test('synthetic clips: the object moves along the label direction, for any frame count and size', () => {
  for (const [T, res] of [[5, 32], [3, 48]] as const) {
    const ds = new SyntheticClipDataset({ seed: 1, split: 'train', size: 8, frames: T });
    const s = ds.get(0, res);
    assert.deepEqual([s.image.channels, s.image.height, s.image.width], [3, T * res, res]);
    for (let i = 0; i < 4; i++) {
      const centroid = (t: number): [number, number] => {
        const img = renderScene(ds.frameScene(i, t), { width: res, height: res, layers: { background: false, clutter: false, noise: false } });
        let sx = 0, sy = 0, m = 0;
        for (let y = 0; y < res; y++) for (let x = 0; x < res; x++) {
          const v = img[y * res + x]! + img[res * res + y * res + x]! + img[2 * res * res + y * res + x]!;
          sx += v * x; sy += v * y; m += v;
        }
        return [sx / m, sy / m];
      };
      const [x0, y0] = centroid(0);
      const [x1, y1] = centroid(T - 1);
      const angle = Math.atan2(-(y1 - y0), x1 - x0); // image y grows downwards
      const want = (2 * Math.PI * (i % 4)) / 4;
      const d = Math.atan2(Math.sin(angle - want), Math.cos(angle - want));
      assert.ok(Math.abs(d) < 0.2, `clip ${i} (T=${T}, ${res}px): moves at ${angle.toFixed(2)} rad, label says ${want.toFixed(2)}`);
      assert.ok(Math.hypot(x1 - x0, y1 - y0) > 0.25 * res, 'it travels a good part of the field');
    }
  }
});

test('train and finetune a video Hiera on synthetic clips (CLI), with another clip length and size', { timeout: 300_000 }, async () => {
  const p = new Command();
  p.exitOverride();
  registerTrainCommands(p);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  const run = tmp('run');
  const ft = tmp('ft');
  try {
    await p.parseAsync(['node', 'anyres', 'train', '--model', 'hiera-video-mini', '--data', 'synthetic-clips:4', '--res', '32', '--epochs', '1', '--batch', '4', '--train-size', '8', '--val-size', '4', '--threads', '1', '--out', run]);
    const ck = loadCheckpoint(run);
    assert.equal(ck.info.model.family, 'hiera-video');
    assert.equal((ck.info.model.config as HieraVideoConfig).inputFrames, 4);
    assert.equal(ck.state.params.get('pos_embed_temporal')!.length, 2 * 32); // 4 frames -> 2 token frames
    const p2 = new Command();
    p2.exitOverride();
    registerTrainCommands(p2);
    await p2.parseAsync(['node', 'anyres', 'finetune', '--from', run, '--res', '64', '--data', 'synthetic-clips:8', '--posembed-convert', 'interpolate', '--epochs', '1', '--batch', '2', '--train-size', '2', '--val-size', '2', '--threads', '1', '--out', ft]);
  } finally {
    console.log = log;
  }
  assert.ok(lines.some((l) => /pos_embed_temporal \[1, 2, 32\] -> \[1, 4, 32\] \(linear, 4 -> 8 frames\)/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /pos_embed_spatial \[1, 64, 32\] -> \[1, 256, 32\] \(bicubic 8x8 -> 16x16\)/.test(l)), lines.join('\n'));
  const ck2 = loadCheckpoint(ft);
  assert.deepEqual((ck2.info.model.config as HieraVideoConfig).inputSize, [64, 64]);
  assert.equal((ck2.info.model.config as HieraVideoConfig).inputFrames, 8);
  // `anyres eval` on the clip run: its data spec (synthetic-clips:4) is read from the checkpoint.
  const ev = await evalCheckpoint({ checkpoint: run, res: [32, 64], valSize: 4, batch: 2, rt });
  assert.equal(ev.data, 'synthetic-clips:4');
  assert.deepEqual(ev.rows.map((r) => [r.res, r.count]), [[32, 4], [64, 4]]);
});

test('video fine-tune conversions: interpolate equals the source model on the new clips; abs-win splits the spatial part', async () => {
  const src = createModel('hiera-video-mini');
  const cfg = src.config as HieraVideoConfig;
  const w = initWeights(src.paramInfos(), new Rng(5));
  const flat = new Map([...w].map(([k, v]) => [k, v.data]));
  // interpolate: the stored embeddings resampled on the host = what the source model does in its graph.
  const conv = convertForResolution('hiera-video', cfg, flat, 64, 'interpolate', { frames: 6 });
  const infos = conv.model.paramInfos();
  const w2: Weights = new Map([...conv.params].map(([k, v]) => [k, { data: v, shape: [...infos.get(k)!.shape] }]));
  const x = Float32Array.from({ length: 3 * 6 * 64 * 64 }, (_, i) => Math.sin(i * 0.013));
  const a = await logits(src, w, x, [1, 3, 6, 64, 64]);
  const b = await logits(conv.model, w2, x, [1, 3, 6, 64, 64]);
  assert.ok(maxDiff(a, b) < 1e-4, `converted model differs by ${maxDiff(a, b)}`);
  // abswin: a spatial embedding that IS window-tiled + smooth global splits with ~0 residual.
  const C = cfg.embedDim;
  const r = new Rng(9);
  const glob = { data: Float64Array.from({ length: C * 16 }, () => r.normal()), C, H: 4, W: 4 };
  const win = { data: Float64Array.from({ length: C * 64 }, () => r.normal()), C, H: 8, W: 8 };
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let i = 0; i < 64; i++) m += win.data[c * 64 + i]!;
    for (let i = 0; i < 64; i++) win.data[c * 64 + i]! -= m / 64;
  }
  // 64 px clips: 16x16 tokens = 2x2 mask units
  const big = createModel('hiera-video-mini', { inputSize: [64, 64] });
  const wb = new Map([...initWeights(big.paramInfos(), new Rng(6))].map(([k, v]) => [k, v.data]));
  const full = absWinEmbed(glob, win, 16, 16, { globalMode: cfg.globalResample });
  const sp = new Float32Array(256 * C);
  for (let t = 0; t < 256; t++) for (let c = 0; c < C; c++) sp[t * C + c] = full.data[c * 256 + t]!;
  wb.set('pos_embed_spatial', sp);
  const aw = convertForResolution('hiera-video', big.config, wb, 96, 'abswin', { globalSize: [4, 4] });
  assert.equal((aw.model.config as HieraVideoConfig).posEmbed, 'abswin');
  assert.ok(aw.relResidual! < 1e-4, `residual ${aw.relResidual}`);
  assert.ok(aw.notes.some((n) => /learned pos_embed_spatial \[1, 256, 32\]/.test(n)), aw.notes.join('\n'));
  assert.equal(aw.params.has('pos_embed_spatial'), false);
  assert.equal(aw.params.get('pos_embed_window')!.length, C * 64);
  assert.throws(() => convertForResolution('hiera-video', cfg, flat, 64, 'tile'), /plain ViT/);
});
