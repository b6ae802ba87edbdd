/**
 * `finetune --posembed-convert interpolate|abswin|tile` does the conversion it names, through the same
 * library code as `anyres convert` (convertWeights), and prints what it did (issue 16 item 2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { registerTrainCommands } from '../../src/cli/train.ts';
import { convertWeights } from '../../src/io/convert-weights.ts';
import { positionEmbeddingAt } from '../../src/models/position-embedding.ts';
import { loadCheckpoint, saveCheckpoint } from '../../src/io/train-checkpoint.ts';
import { stateFromParams } from '../../src/train/state.ts';
import { convertForResolution } from '../../src/train/finetune.ts';
import { createModel, modelFromCheckpointConfig } from '../../src/models/registry.ts';
import { type HieraConfig } from '../../src/models/hiera-config.ts';
import { initWeights } from '../../src/nn/params.ts';
import { absWinEmbed } from '../../src/posembed/abswin.ts';
import { readCheckpointFile } from '../../src/io/load-model.ts';
import { Runtime } from '../../src/graph/runtime.ts';
import { Rng } from '../../src/util/rng.ts';

const tmp = (n: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `anyres-ft-${n}-`));
async function cli(args: string[]): Promise<string[]> {
  const p = new Command();
  p.exitOverride();
  p.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerTrainCommands(p);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    await p.parseAsync(['node', 'anyres', ...args]);
  } finally {
    console.log = log;
  }
  return lines;
}
/** A run directory holding `model` with `params` (what `anyres train` leaves). */
function runDir(model: ReturnType<typeof createModel>, params: Map<string, Float32Array>, name: string): string {
  const dir = tmp(name);
  saveCheckpoint(dir, stateFromParams(params), { model: { family: model.family, config: model.config }, run: { data: 'synthetic' }, epoch: 1, stepInEpoch: 0, rng: {} });
  return dir;
}
const flat = (model: ReturnType<typeof createModel>, seed: number): Map<string, Float32Array> =>
  new Map([...initWeights(model.paramInfos(), new Rng(seed))].map(([k, v]) => [k, v.data]));

test('abswin: a learned Hiera embedding is split by least squares into window + global (exact when it is tiled + smooth)', { timeout: 300_000 }, async () => {
  const src = createModel('hiera-mini', { numClasses: 10 });
  const cfg = src.config as HieraConfig;
  assert.equal(cfg.posEmbed, 'absolute');
  const C = cfg.embedDim;
  const r = new Rng(11);
  const glob = { data: Float64Array.from({ length: C * 16 }, () => r.normal()), C, H: 4, W: 4 };
  const win = { data: Float64Array.from({ length: C * 64 }, () => r.normal()), C, H: 8, W: 8 };
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let i = 0; i < 64; i++) m += win.data[c * 64 + i]!;
    for (let i = 0; i < 64; i++) win.data[c * 64 + i]! -= m / 64;
  }
  const full = absWinEmbed(glob, win, 16, 16, { globalMode: cfg.globalResample }); // [C, 16, 16]
  const params = flat(src, 1);
  const pe = new Float32Array(256 * C);
  for (let t = 0; t < 256; t++) for (let c = 0; c < C; c++) pe[t * C + c] = full.data[c * 256 + t]!;
  params.set('pos_embed', pe);

  const conv = convertForResolution('hiera', cfg, params, 64, 'abswin', { globalSize: [4, 4] });
  assert.equal((conv.model.config as HieraConfig).posEmbed, 'abswin');
  assert.ok(conv.relResidual! < 1e-4, `residual ${conv.relResidual}`);
  const w = conv.params.get('pos_embed_window')!;
  let err = 0;
  for (let i = 0; i < w.length; i++) err = Math.max(err, Math.abs(w[i]! - win.data[i]!));
  assert.ok(err < 1e-3, `window embedding recovered (max err ${err})`);
  // The same code as `anyres convert`: convertWeights on the same weights gives the same tensors.
  const weights = new Map([...src.paramInfos()].map(([k, info]) => [k, { data: params.get(k)!, shape: [...info.shape] }]));
  const direct = convertWeights(src, weights, { posembedConvert: 'abswin', res: [64, 64], globalSize: [4, 4] });
  for (const [k, v] of conv.params) assert.deepEqual(v, direct.weights.get(k)!.data, k);

  // The command: prints the conversion, trains the abs-win model.
  const from = runDir(src, params, 'hiera-abs');
  const out = tmp('hiera-abswin');
  const lines = await cli(['finetune', '--from', from, '--res', '64', '--posembed-convert', 'abswin', '--global-size', '4', '--epochs', '1', '--batch', '4', '--train-size', '4', '--val-size', '4', '--threads', '1', '--out', out]);
  assert.ok(lines.some((l) => /^finetune: abswin: learned pos_embed \[1, 256, 32\] \(16x16\) split into window \[1, 32, 8, 8\]/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^finetune: abswin: relative residual .* = \d\.\d+e-\d+/.test(l)), lines.join('\n'));
  const ck = loadCheckpoint(out);
  assert.equal((ck.info.model.config as HieraConfig).posEmbed, 'abswin');
  assert.deepEqual((ck.info.model.config as HieraConfig).globalPosSize, [4, 4]);
  assert.equal(ck.state.params.get('pos_embed_window')!.length, 32 * 64);
  // A ViT has no window to split into: refused with the strategy that would work.
  const vit = createModel('vit-mini-p4', { numClasses: 10 });
  assert.throws(() => convertForResolution('vit', vit.config, flat(vit, 0), 32, 'abswin'), /needs a Hiera with a learned absolute pos_embed.*use --posembed-convert tile --target/);
});

test('tile: a ViT becomes a ViTDet (target preset) whose window embedding is the ViT grid, tiled', { timeout: 300_000 }, async () => {
  // A ViT of vitdet-mini's width/depth/heads/patch with a 7x7 grid (112 px): the ViTDet window is 7.
  const vit = createModel('vit-tiny', { embedDim: 64, depth: 4, numHeads: 2, patchSize: 16, imgSize: [112, 112], numClasses: 10 });
  const params = flat(vit, 2);
  const from = runDir(vit, params, 'vit');
  const out = tmp('vitdet');
  const lines = await cli(['finetune', '--from', from, '--res', '224', '--posembed-convert', 'tile', '--target', 'vitdet-mini', '--out', out]);
  assert.ok(lines.some((l) => /^finetune: tile: the ViT pos_embed \(7x7 grid\) is the window embedding of vitdet-mini/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /detection backbone without a classification head.*wrote the converted backbone/.test(l)), lines.join('\n'));
  const file = path.join(out, 'vitdet.safetensors');
  const { tensors, metadata } = readCheckpointFile(file);
  const det = modelFromCheckpointConfig(metadata['anyres.config']!);
  assert.equal(det.family, 'vitdet');
  assert.deepEqual(det.defaultRes, [224, 224]);
  const weights = new Map([...tensors].map(([k, t]) => [k, { data: t.data, shape: t.shape }]));
  const grid = await positionEmbeddingAt(det, weights, new Runtime({ threads: 1 }));
  assert.deepEqual([grid.C, grid.H, grid.W], [64, 14, 14]);
  const vpe = params.get('pos_embed')!; // [1, 1 + 49, 64], class token row first
  let err = 0;
  for (let c = 0; c < 64; c++) for (let y = 0; y < 14; y++) for (let x = 0; x < 14; x++) {
    err = Math.max(err, Math.abs(grid.data[c * 196 + y * 14 + x]! - vpe[(1 + (y % 7) * 7 + (x % 7)) * 64 + c]!));
  }
  assert.ok(err < 1e-6, `each 7x7 window holds the ViT grid (max err ${err})`);
  assert.throws(() => convertForResolution('vit', vit.config, params, 224, 'tile'), /pass --target <vitdet preset>/);
});

test('interpolate: a learned Hiera embedding is resampled to the new grid; abs-win carries over', async () => {
  const src = createModel('hiera-mini-abswin', { numClasses: 10 });
  const conv = convertForResolution('hiera', src.config, flat(src, 3), 96, 'abswin');
  assert.match(conv.notes[0]!, /already uses absolute win/);
  assert.deepEqual(conv.model.defaultRes, [96, 96]);
  const abs = createModel('hiera-mini', { numClasses: 10 });
  const i = convertForResolution('hiera', abs.config, flat(abs, 3), 96, 'interpolate');
  assert.equal(i.params.get('pos_embed')!.length, 24 * 24 * 32);
  assert.ok(i.notes.some((n) => /interpolate: pos_embed \[1, 256, 32\] -> \[1, 576, 32\]/.test(n)), i.notes.join('\n'));
});
