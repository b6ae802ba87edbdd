/**
 * `--model` specs (preset / inline JSON / JSON file; snake_case and camelCase overrides; unknown
 * keys refused naming the valid ones), checkpoint wrappers (`state_dict.`, DDP `module.`), and the
 * one checkpoint reader: a run directory, its last.json and its ckpt tensors alone give the same
 * model and weights (issue 16: `similarity --checkpoint runs/h` no longer fails with EISDIR).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createModel, parseModelSpec } from '../../src/models/registry.ts';
import { detectSource } from '../../src/io/keymaps.ts';
import { initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { saveCheckpoint } from '../../src/train/checkpoint.ts';
import { stateFromParams } from '../../src/train/state.ts';
import { loadModelCheckpoint, readAnyCheckpoint } from '../../src/io/read-checkpoint.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import type { VitConfig } from '../../src/models/vit.ts';
import type { HieraConfig } from '../../src/models/hiera-config.ts';

test('--model: a preset, inline JSON and a JSON file name the same model; snake_case and camelCase overrides', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-spec-'));
  const file = path.join(dir, 'm.json');
  fs.writeFileSync(file, JSON.stringify({ family: 'vit', preset: 'vit-tiny', overrides: { depth: 3, numClasses: 10 } }));
  const a = parseModelSpec('{"family":"vit","preset":"vit-tiny","overrides":{"depth":3,"num_classes":10}}').model;
  const b = parseModelSpec(file).model;
  assert.deepEqual(a.config, b.config);
  assert.equal((a.config as VitConfig).depth, 3);
  assert.equal((a.config as VitConfig).numClasses, 10);
  assert.deepEqual(parseModelSpec('vit-tiny').model.config, createModel('vit-tiny').config);
  // A number for a [H, W] field is a square, as timm's img_size=224.
  const h = parseModelSpec('{"preset":"hiera-mini","overrides":{"input_size":96,"pos_embed":"abswin"}}').model.config as HieraConfig;
  assert.deepEqual(h.inputSize, [96, 96]);
  assert.equal(h.posEmbed, 'abswin');
  // A full config with overrides.
  const full = JSON.stringify({ family: 'vit', config: createModel('vit-mini-p4').config, overrides: { num_classes: 3 } });
  assert.equal((parseModelSpec(full).model.config as VitConfig).numClasses, 3);
  assert.throws(() => parseModelSpec('{"family":"vit","preset":"vit-tiny","overrides":{"num_class":10}}'), /unknown override 'num_class'; valid keys are .*numClasses.*num_classes/);
  assert.throws(() => parseModelSpec('{"family":"hiera","preset":"vit-tiny"}'), /preset 'vit-tiny' is a 'vit' model, the spec says family 'hiera'/);
  assert.throws(() => parseModelSpec('{"family":"vit","preset":"vit-tiny","extra":1}'), /unknown key\(s\) extra.*valid: family, preset, config, overrides/);
  assert.throws(() => parseModelSpec('vit-tinyy'), /neither a preset .*vit-tiny.*inline JSON/);
  assert.throws(() => parseModelSpec('{"family":'), /inline JSON does not parse/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('state_dict and DDP module. wrappers are stripped for every source', () => {
  assert.deepEqual(detectSource(['state_dict.cls_token', 'state_dict.blocks.0.attn.qkv.weight']), { source: 'timm-vit', prefix: 'state_dict.' });
  assert.deepEqual(detectSource(['module.cls_token']), { source: 'timm-vit', prefix: 'module.' });
  assert.deepEqual(detectSource(['model_state.module.blocks.1.proj.weight']), { source: 'hiera', prefix: 'model_state.module.' });
  assert.deepEqual(detectSource(['model.module.image_encoder.trunk.pos_embed_window']), { source: 'sam2-trunk', prefix: 'model.module.image_encoder.trunk.' });
  assert.deepEqual(detectSource(['state_dict.a', 'state_dict.b']), { source: 'plain', prefix: 'state_dict.' });
});

test('a run directory, its last.json and its ckpt tensors alone give the same model and weights', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-run-'));
  try {
    const model = createModel('hiera-mini-abswin');
    const w = initWeights(model.paramInfos(), new Rng(2));
    const run = path.join(dir, 'h');
    saveCheckpoint(run, stateFromParams(new Map([...w].map(([k, v]) => [k, v.data]))), {
      model: { family: model.family, config: model.config, preset: 'hiera-mini-abswin' }, run: { data: 'synthetic', resolutions: [64] }, epoch: 0, stepInEpoch: 0, rng: {},
    });
    const tensorFile = path.join(run, fs.readdirSync(run).find((f) => f.endsWith('.safetensors'))!);
    // The tensor file records real shapes and the model.
    const st = readSafetensors(fs.readFileSync(tensorFile));
    assert.deepEqual(st.tensors.get('pos_embed_window')!.shape, [1, 32, 8, 8]);
    assert.deepEqual(st.tensors.get('m.pos_embed_window')!.shape, [1, 32, 8, 8]);
    assert.equal(JSON.parse(st.metadata['anyres.config']!).family, 'hiera');
    const origins: string[] = [];
    for (const p of [run, path.join(run, 'last.json'), tensorFile]) {
      const r = loadModelCheckpoint(p);
      origins.push(r.origin);
      assert.deepEqual(r.model.config, model.config, p);
      for (const [k, v] of w) assert.deepEqual(r.weights.get(k)!.data, v.data, `${p}: ${k}`);
      assert.equal(r.tensors.has('m.pos_embed'), false, 'optimizer moments are not model tensors');
    }
    assert.deepEqual(origins, ['train-run', 'train-run', 'train-tensors']);
    // A directory that is not a run says so, listing its checkpoint files.
    fs.writeFileSync(path.join(dir, 'x.pth'), '');
    assert.throws(() => readAnyCheckpoint(dir), /not a training run\); checkpoint files in it: x\.pth/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
