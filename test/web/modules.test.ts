/** The page's pure modules, checked in Node (no browser needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import onnxProto from 'onnx-proto';
import { readOnnxSummary } from '../../web/src/onnx-meta.ts';
import { META, MODEL_FORMAT, parseModelMeta } from '../../src/io/model-meta.ts';
import { parseSafetensors } from '../../web/src/safetensors.ts';
import { serializeSafetensors, readSafetensors } from '../../src/io/safetensors.ts';
import { compareAt, fromLearned, tensorToGrid, tiledExample } from '../../web/src/posembed-model.ts';
import { fitImage, rgbaToChw, topK } from '../../web/src/preprocess.ts';
import { absWinEmbed } from '../../src/posembed/abswin.ts';
import { rdbu } from '../../web/src/heatmap.ts';

const { onnx } = onnxProto;

test('readOnnxSummary reads metadata_props and the first input shape of a ModelProto', () => {
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 9,
    metadataProps: [{ key: 'a', value: 'b' }, { key: META.format, value: MODEL_FORMAT }],
    graph: {
      name: 'g',
      initializer: [{ name: 'w', dims: [2], dataType: 1, rawData: new Uint8Array(8) }],
      input: [{ name: 'image', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimParam: 'N' }, { dimValue: 640 }] } } } }],
    },
  })).finish();
  const s = readOnnxSummary(bytes);
  assert.deepEqual(s.metadata, { a: 'b', [META.format]: MODEL_FORMAT });
  assert.deepEqual(s.input, { name: 'image', dims: [1, -1, 640] });
  assert.throws(() => readOnnxSummary(new Uint8Array([0x0a, 0x50, 1])), /runs past the end/);
});

test('parseModelMeta refuses files that are not anyres exports and names the bad key', () => {
  assert.throws(() => parseModelMeta({}, 'x.onnx'), /not an anyres export/);
  const ok = { [META.format]: MODEL_FORMAT, [META.inputSize]: '[32, 48]', [META.classes]: '["a","b"]', [META.model]: 'm' };
  assert.deepEqual(parseModelMeta(ok, 'x').inputSize, [32, 48]);
  assert.throws(() => parseModelMeta({ ...ok, [META.inputSize]: '[32]' }, 'x'), /input_size must be \[H, W\]/);
  assert.throws(() => parseModelMeta({ ...ok, [META.classes]: 'nope' }, 'x'), /classes is not JSON/);
});

test('the page safetensors reader agrees with the Node reader', () => {
  const tensors = new Map([
    ['pos_embed', { shape: [1, 5, 3], data: Float32Array.from({ length: 15 }, (_, i) => i * 0.5 - 3) }],
    ['other', { shape: [2], data: Float32Array.of(1, 2) }],
  ]);
  const bytes = serializeSafetensors(tensors, { 'anyres.config': '{}' });
  const page = parseSafetensors(bytes, (n) => n === 'pos_embed');
  const node = readSafetensors(bytes);
  assert.deepEqual([...page.tensors.keys()], ['pos_embed']);
  assert.deepEqual(page.tensors.get('pos_embed')!.data, node.tensors.get('pos_embed')!.data);
  assert.deepEqual(page.metadata, { 'anyres.config': '{}' });
  assert.throws(() => parseSafetensors(new Uint8Array(4)), /shorter than the 8-byte/);
});

test('tensorToGrid reads [1,C,H,W] and token layouts with a class token', () => {
  const C = 2, n = 9;
  const tokens = new Float32Array((n + 1) * C).map((_, i) => i);
  const { grid, prefix } = tensorToGrid([1, n + 1, C], tokens);
  assert.equal(prefix, 1);
  assert.deepEqual([grid.C, grid.H, grid.W], [2, 3, 3]);
  assert.equal(grid.data[0], tokens[1 * C + 0]); // channel 0 of the first patch token
  assert.equal(grid.data[9 + 4], tokens[(1 + 4) * C + 1]);
  assert.throws(() => tensorToGrid([1, 7, 2], new Float32Array(14)), /not a square grid/);
});

test('compareAt: equal at the training grid; off it, abs-win keeps windows alike and naive does not', () => {
  const src = tiledExample({ base: 16, win: 4, seed: 1 });
  const same = compareAt(src, 16, 16);
  for (let i = 0; i < same.naive.data.length; i++) assert.ok(Math.abs(same.naive.data[i]! - same.abswin.data[i]!) < 1e-9);
  for (const g of [13, 22, 27]) {
    const c = compareAt(src, g, g);
    assert.ok(c.simAbswin! > c.simNaive! + 0.2, `grid ${g}: abswin ${c.simAbswin} naive ${c.simNaive}`);
  }
  assert.equal(compareAt(src, 5, 5).simNaive, null); // one full 4x4 window only
});

test('fromLearned recovers an exact abs-win embedding', () => {
  const ex = tiledExample({ base: 12, win: 4, seed: 2 });
  const back = fromLearned('x', ex.learned, [4, 4], [3, 3]);
  assert.ok(back.relResidual < 1e-6, `residual ${back.relResidual}`);
  const at20 = absWinEmbed(back.global, back.window, 20, 20);
  const ref = absWinEmbed(ex.global, ex.window, 20, 20);
  let err = 0;
  for (let i = 0; i < ref.data.length; i++) err = Math.max(err, Math.abs(at20.data[i]! - ref.data[i]!));
  assert.ok(err < 1e-4, `max err ${err}`);
});

test('preprocess: fitImage crops the centre to the aspect ratio; topK; rgbaToChw; colour map ends', () => {
  // 4x2 image whose left and right quarters differ: a square crop keeps the middle two columns.
  const W = 4, H = 2;
  const data = new Float32Array(3 * W * H);
  for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[c * W * H + y * W + x] = x === 0 || x === 3 ? 1 : 0.25;
  const out = fitImage({ data, channels: 3, height: H, width: W }, 2, 2);
  for (const v of out) assert.ok(Math.abs(v - 0.25) < 1e-6);
  assert.deepEqual(topK([0.1, 0.5, 0.2, 0.2], 3).map((t) => t.index), [1, 2, 3]);
  assert.deepEqual(rgbaToChw(Uint8Array.of(255, 0, 51, 9), 1, 1).data, Float32Array.of(1, 0, 51 / 255));
  assert.deepEqual(rdbu(-1), [5, 48, 97]);
  assert.deepEqual(rdbu(1), [103, 0, 31]);
  assert.deepEqual(rdbu(0), [247, 247, 247]);
});
