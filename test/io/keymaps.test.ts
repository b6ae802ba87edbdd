import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import { detectSource, mapKeys, matchStateDict, formatLoadReport, type NamedTensor } from '../../src/io/index.ts';

const t = (...shape: number[]): NamedTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
const fromKeys = (keys: string[]): Map<string, NamedTensor> => new Map(keys.map((k) => [k, t(1)]));
const fixtureKeys = (name: string): string[] =>
  (JSON.parse(fs.readFileSync(path.join(fixturesDir(), `${name}.json`), 'utf8')) as { state_dict_keys: string[] }).state_dict_keys;
const prefixed = (p: string, keys: string[]): string[] => keys.map((k) => p + k);

test('detectSource on the official key sets of the fixtures, bare and wrapped', () => {
  const hiera = fixtureKeys('hiera_tiny_224_narrow');
  const sam2 = fixtureKeys('hieradet_tiny_256');
  const vit = fixtureKeys('vit_tiny_224');
  const resformer = fixtureKeys('resformer_narrow_224');
  const cases: [string[], string, string][] = [
    [hiera, 'hiera', ''],
    [prefixed('model_state.', hiera), 'hiera', 'model_state.'],
    [sam2, 'sam2-trunk', ''],
    [[...prefixed('model.image_encoder.trunk.', sam2), 'model.image_encoder.neck.convs.0.conv.weight', 'model.sam_mask_decoder.iou_token.weight'], 'sam2-trunk', 'model.image_encoder.trunk.'],
    [prefixed('image_encoder.trunk.', sam2), 'sam2-trunk', 'image_encoder.trunk.'],
    [vit, 'timm-vit', ''],
    [prefixed('model.', vit), 'timm-vit', 'model.'],
    [resformer, 'resformer', ''],
    [[...prefixed('model_ema.', resformer), ...prefixed('model.', resformer), 'optimizer.state.0.exp_avg'], 'resformer', 'model.'],
    [prefixed('model_ema.', resformer), 'resformer', 'model_ema.'],
    [['norm.weight', 'fc.bias'], 'plain', ''],
  ];
  for (const [keys, source, prefix] of cases) assert.deepEqual(detectSource(keys), { source, prefix }, `${source} ${prefix} ${keys[0]}`);
});

test('detectron2 ViTDet: backbone.net is kept, FPN and heads are ignored', () => {
  const block = fixtureKeys('vitdet_block_window14_relpos_20x20');
  const net = ['pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias', ...prefixed('blocks.0.', block), ...prefixed('blocks.1.', block)];
  const ckpt = fromKeys([
    ...prefixed('model.backbone.net.', net),
    'model.backbone.simfp_2.0.weight', 'model.proposal_generator.rpn_head.conv.weight', 'model.roi_heads.box_predictor.cls_score.weight',
  ]);
  const det = detectSource([...ckpt.keys()]);
  assert.deepEqual(det, { source: 'detectron2-vitdet', prefix: 'model.backbone.net.' });
  const { tensors, ignored } = mapKeys(ckpt, det);
  assert.deepEqual([...tensors.keys()], net);
  assert.deepEqual(ignored, ['model.backbone.simfp_2.0.weight', 'model.proposal_generator.rpn_head.conv.weight', 'model.roi_heads.box_predictor.cls_score.weight']);
});

/** The official Hiera-Tiny layout (depths [1, 2, 7, 2]), written the way HF's converter renames it. */
function hfHieraKeys(classification: boolean): { hf: string[]; official: string[] } {
  const depths = [1, 2, 7, 2];
  const hf: string[] = [];
  const official: string[] = [];
  const p = classification ? 'hiera.' : '';
  const pair = (h: string, o: string): void => { hf.push(h); official.push(o); };
  pair(`${p}embeddings.position_embeddings`, 'pos_embed');
  for (const wb of ['weight', 'bias']) pair(`${p}embeddings.patch_embeddings.projection.${wb}`, `patch_embed.proj.${wb}`);
  let g = 0;
  depths.forEach((d, s) => {
    for (let l = 0; l < d; l++, g++) {
      const h = `${p}encoder.stages.${s}.layers.${l}`;
      for (const wb of ['weight', 'bias']) {
        pair(`${h}.layernorm_before.${wb}`, `blocks.${g}.norm1.${wb}`);
        pair(`${h}.attn.qkv.${wb}`, `blocks.${g}.attn.qkv.${wb}`);
        pair(`${h}.attn.proj.${wb}`, `blocks.${g}.attn.proj.${wb}`);
        pair(`${h}.layernorm_after.${wb}`, `blocks.${g}.norm2.${wb}`);
        pair(`${h}.mlp.fc1.${wb}`, `blocks.${g}.mlp.fc1.${wb}`);
        pair(`${h}.mlp.fc2.${wb}`, `blocks.${g}.mlp.fc2.${wb}`);
        if (s > 0 && l === 0) pair(`${h}.proj.${wb}`, `blocks.${g}.proj.${wb}`);
      }
    }
  });
  for (const wb of ['weight', 'bias']) pair(`${p}pooler.layernorm.${wb}`, `norm.${wb}`);
  if (classification) for (const wb of ['weight', 'bias']) pair(`classifier.${wb}`, `head.projection.${wb}`);
  return { hf, official };
}

test('HF Hiera names map back to the official Hiera names (global block index)', () => {
  for (const classification of [true, false]) {
    const { hf, official } = hfHieraKeys(classification);
    const ckpt = new Map(hf.map((k, i) => [k, t(i + 1)]));
    const det = detectSource(hf);
    assert.deepEqual(det, { source: 'hf-hiera', prefix: classification ? 'hiera.' : '' });
    const { tensors, ignored, renamed } = mapKeys(ckpt, det);
    assert.deepEqual(ignored, []);
    assert.deepEqual([...tensors.keys()], official);
    // Tensors travel with their names: key i keeps the tensor of shape [i + 1].
    official.forEach((k, i) => assert.deepEqual(tensors.get(k)?.shape, [i + 1], k));
    assert.equal(renamed.length, hf.length);
    // Every official Hiera-Tiny parameter name is produced (compared with the fixture's list).
    const expected = fixtureKeys('hiera_tiny_224_narrow').filter((k) => classification || !k.startsWith('head.'));
    assert.deepEqual([...tensors.keys()].sort(), expected.sort());
  }
});

test('prefix stripping for sam2, deit nesting and resformer EMA', () => {
  const sam2 = fixtureKeys('hieradet_tiny_256');
  const sam = fromKeys([...prefixed('model.image_encoder.trunk.', sam2), 'model.image_encoder.neck.convs.0.conv.weight']);
  const r = mapKeys(sam, detectSource([...sam.keys()]));
  assert.deepEqual([...r.tensors.keys()], sam2);
  assert.deepEqual(r.ignored, ['model.image_encoder.neck.convs.0.conv.weight']);
  const res = fixtureKeys('resformer_narrow_224');
  const ck = fromKeys([...prefixed('model.', res), ...prefixed('model_ema.', res)]);
  const r2 = mapKeys(ck, detectSource([...ck.keys()]));
  assert.deepEqual([...r2.tensors.keys()], res);
  assert.equal(r2.ignored.length, res.length);
  assert.ok(r2.ignored.every((k) => k.startsWith('model_ema.')));
});

test('matchStateDict and formatLoadReport list loaded, missing, unexpected and mismatched', () => {
  const expected = new Map<string, number[]>([['a', [2, 3]], ['b', [4]], ['c', [1]]]);
  const got = new Map([['a', t(2, 3)], ['b', t(5)], ['z', t(1)]]);
  const m = matchStateDict(expected, got);
  assert.deepEqual(m, { loaded: ['a'], missing: ['c'], unexpected: ['z'], mismatched: [{ name: 'b', expected: [4], got: [5] }] });
  const report = formatLoadReport(m, { detection: { source: 'timm-vit', prefix: 'model.' }, ignored: ['optimizer.x'] });
  assert.match(report, /source: timm-vit \(prefix 'model\.' stripped\)/);
  assert.match(report, /loaded 1 tensors/);
  assert.match(report, /missing 1 .*\n {4}c/);
  assert.match(report, /b: expected \[4\], checkpoint has \[5\]/);
  assert.match(report, /unexpected 1 .*\n {4}z/);
  assert.match(report, /ignored 1 keys outside the model prefix:\n {4}optimizer\.x/);
  const many = matchStateDict(new Map(Array.from({ length: 15 }, (_, i) => [`k${i}`, [1]])), new Map());
  assert.match(formatLoadReport(many, { maxList: 3 }), /k2\n {4}\.\.\. and 12 more/);
});
