import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countParams } from '../../src/nn/params.ts';
import {
  checkpointConfigOf, createModel, describePreset, modelFromCheckpointConfig, presetConfig, presetNames,
} from '../../src/models/registry.ts';
import { vitPresets } from '../../src/models/vit.ts';
import { hieraPresets } from '../../src/models/hiera.ts';
import { vitdetPresets } from '../../src/models/vitdet.ts';
import { hieradetPresets } from '../../src/models/hieradet.ts';
import { hieraVideoPresets } from '../../src/models/hiera-video.ts';
import { modelsTable } from '../../src/cli/models.ts';

const millions = (n: number): number => Math.round(n / 1e5) / 10;

test('presetNames is the union of every family table, without duplicates', () => {
  const names = presetNames();
  const union = [...Object.keys(vitPresets), ...Object.keys(hieraPresets), ...Object.keys(hieraVideoPresets), ...Object.keys(vitdetPresets), ...Object.keys(hieradetPresets)];
  assert.deepEqual(names, union);
  assert.equal(new Set(names).size, names.length);
});

test('published parameter counts at 1000 classes', () => {
  // ViT / DeiT: Touvron et al. 2021 Table 1; Hiera: Ryali et al. 2023 Table 1 (hiera.py model zoo).
  const published: [string, number][] = [
    ['vit-tiny', 5.7], ['vit-small', 22.1], ['vit-base', 86.6],
    ['hiera-tiny', 27.9], ['hiera-small', 35.0], ['hiera-base', 51.5], ['hiera-base-plus', 69.9], ['hiera-large', 213.7], ['hiera-huge', 672.8],
    // timm hiera_small_abswin_256 model card: 34.4M.
    ['hiera-small-abswin', 34.4],
  ];
  for (const [name, m] of published) assert.equal(millions(describePreset(name).params1000!), m, name);
});

test('counts of backbones follow from their classifiers (head, norm, cls token and pos embeds swapped)', () => {
  // sam2 trunk = Hiera-T minus head (768x1000+1000), final norm (2x768), learned 56x56x96 pos embed,
  // plus the 7x7 global and 8x8 window embeddings (96 channels).
  const hieraT = describePreset('hiera-tiny').params1000!;
  assert.equal(describePreset('hieradet-tiny').params, hieraT - (768 * 1000 + 1000) - 2 * 768 - 56 * 56 * 96 + (7 * 7 + 8 * 8) * 96);
  // ViTDet-B without the pyramid = ViT-B minus cls token, final norm, head, plus rel-pos tables:
  // 4 global blocks with 2 x (2*64-1) x 64, 8 window blocks with 2 x (2*14-1) x 64.
  const vitB = describePreset('vit-base').params1000!;
  const det = countParams(createModel('vitdet-b', { pyramid: null }).paramInfos());
  assert.equal(det, vitB - 768 - 2 * 768 - (768 * 1000 + 1000) + 4 * 2 * 127 * 64 + 8 * 2 * 27 * 64);
  // ResFormer-T = DeiT-T minus the learned pos embed (197x192) plus the GPE conv (192x9+192) and
  // one LPE conv per block (head_dim 64: 64x9+64).
  assert.equal(describePreset('resformer-tiny').params, describePreset('vit-tiny').params - 197 * 192 + (192 * 9 + 192) + 12 * (64 * 9 + 64));
});

test('describePreset: family, default resolution, size rule, classes', () => {
  const d = describePreset('hiera-mini');
  assert.equal(d.family, 'hiera');
  assert.deepEqual(d.defaultRes, [64, 64]);
  assert.equal(d.numClasses, 10);
  assert.ok(d.params1000! > d.params);
  assert.match(d.sizeRule, /multiple of 32/);
  assert.equal(describePreset('resformer-mini-p4').family, 'resformer');
  assert.equal(describePreset('vitdet-mini').params1000, null);
  assert.match(describePreset('hieradet-mini').sizeRule, /multiples of 4 and at least 32/);
  assert.throws(() => describePreset('hiera-tinyy'), /unknown model preset 'hiera-tinyy' \(known: vit-tiny, .*hieradet-mini\)/);
});

test('createModel by name and by stored config builds the same model, for every preset', () => {
  for (const name of presetNames()) {
    const m = createModel(name);
    const stored = JSON.parse(JSON.stringify(checkpointConfigOf(m))) as { family: string; config: unknown };
    const back = modelFromCheckpointConfig(JSON.stringify(stored));
    assert.equal(back.family, m.family, name);
    assert.deepEqual(back.config, m.config, name);
    assert.equal(presetConfig(name).family, m.family, name);
  }
});

test('modelFromCheckpointConfig accepts the export and training layouts, and rejects bad ones', () => {
  const a = modelFromCheckpointConfig({ family: 'hiera', preset: 'hiera-mini', overrides: { numClasses: 3 } });
  assert.equal((a.config as { numClasses: number }).numClasses, 3);
  const m = createModel('vit-mini-p4');
  const b = modelFromCheckpointConfig({ model: { family: 'vit', config: m.config, preset: 'vit-mini-p4' }, step: 3 });
  assert.deepEqual(b.config, m.config);
  assert.throws(() => modelFromCheckpointConfig({ family: 'hiera', preset: 'vit-mini-p4' }), /preset 'vit-mini-p4' is a 'vit' model, the spec says family 'hiera'/);
  assert.throws(() => modelFromCheckpointConfig({ family: 'convnext', config: {} }), /unknown model family 'convnext' \(known: vit, resformer, hiera, hiera-video, vitdet, hieradet\)/);
  const { numHeads: _drop, ...partial } = m.config as unknown as Record<string, unknown>;
  assert.throws(() => modelFromCheckpointConfig({ family: 'vit', config: { ...partial, foo: 1 } }), /missing \[numHeads\]; unknown \[foo\]/);
  assert.throws(() => modelFromCheckpointConfig({ family: 'resformer', config: m.config }), /builds a 'vit' model but the spec says family 'resformer'/);
  assert.throws(() => modelFromCheckpointConfig('{nope'), /not valid JSON/);
});

test('the models table lists every preset once', () => {
  const table = modelsTable(presetNames().map(describePreset));
  const lines = table.split('\n');
  assert.equal(lines.length, presetNames().length + 1);
  assert.match(lines.find((l) => l.startsWith('vit-base '))!, /vit\s+86\.57M\s+1000\s+86\.57M\s+224x224/);
  assert.match(lines.find((l) => l.startsWith('vitdet-b '))!, /vitdet\s+91\.45M\s+-\s+-\s+1024x1024/);
});
