import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { exportCheckpoint, exportPathFor, loadCheckpointForExport, parseExportSizes } from '../../src/io/export.ts';
import { saveSafetensors } from '../../src/io/safetensors.ts';
import { initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { Runtime } from '../../src/graph/runtime.ts';
import { predict } from '../../src/eval/sweep.ts';
import { SyntheticDataset, SYNTHETIC_CLASS_NAMES } from '../../src/data/synthetic.ts';
import { modelFromSpec, type ModelSpec } from '../../src/io/export.ts';
import { readOnnxSummary } from '../../web/src/onnx-meta.ts';
import { saveCheckpoint } from '../../src/train/checkpoint.ts';
import { stateFromParams } from '../../src/train/state.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/transforms.ts';
import { parseModelMeta } from '../../web/src/model-meta.ts';

const NORM = { mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] };

function writeCheckpoint(dir: string, spec: ModelSpec, seed: number): string {
  const model = modelFromSpec(spec);
  const w = initWeights(model.paramInfos(), new Rng(seed));
  const file = path.join(dir, `${spec.preset}.safetensors`);
  saveSafetensors(file, w, {
    'anyres.config': JSON.stringify(spec),
    'anyres.dataset': 'synthetic',
    'anyres.train_res': JSON.stringify([model.defaultRes[0]]),
    'anyres.normalization': JSON.stringify(NORM),
  });
  return file;
}

function normalised(img: Float32Array, hw: number): Float32Array {
  const out = new Float32Array(img.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < hw; i++) out[c * hw + i] = (img[c * hw + i]! - NORM.mean[c]!) / NORM.std[c]!;
  return out;
}

for (const [spec, sizes] of [
  [{ family: 'vit', preset: 'vit-mini-p4' }, [[32, 32], [48, 48], [40, 56]]],
  [{ family: 'hiera', preset: 'hiera-mini-abswin' }, [[64, 64], [96, 96]]],
] as [ModelSpec, [number, number][]][]) {
  test(`export ${spec.preset}: a fresh onnxruntime-node session matches our runtime within 1e-5 at every size`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-export-'));
    try {
      const ckpt = writeCheckpoint(dir, spec, 3);
      const out = path.join(dir, 'm.onnx');
      const { written, loaded } = await exportCheckpoint(ckpt, sizes, out);
      assert.deepEqual(written, sizes.map((s) => exportPathFor(out, s, true)));
      assert.ok(written[0]!.endsWith(`m-${sizes[0]![0]}.onnx`));
      const rt = new Runtime({ threads: 1 });
      const ds = new SyntheticDataset({ seed: 0, split: 'val', size: 4 });
      for (const [k, file] of written.entries()) {
        const [H, W] = sizes[k]!;
        const bytes = fs.readFileSync(file);
        const meta = parseModelMeta(readOnnxSummary(bytes).metadata, file);
        assert.deepEqual(meta.inputSize, [H, W]);
        assert.deepEqual(meta.classes, SYNTHETIC_CLASS_NAMES.slice(0, 10));
        assert.equal(meta.model, spec.preset);
        assert.deepEqual(readOnnxSummary(bytes).input, { name: 'image', dims: [-1, 3, H, W] }); // dynamic batch
        const img = ds.render(1, { width: W, height: H }).image;
        const sess = await ort.InferenceSession.create(bytes);
        const res = await sess.run({ image: new ort.Tensor('float32', img, [1, 3, H, W]) });
        const got = res.logits!.data as Float32Array;
        const ref = await predict(rt, loaded.model, loaded.weights, { data: normalised(img, H * W), shape: [1, 3, H, W] });
        assert.equal(got.length, 10);
        let maxErr = 0;
        for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - ref[i]!));
        assert.ok(maxErr <= 1e-5, `${file}: max |logit diff| ${maxErr}`);
        const probs = res.probs!.data as Float32Array;
        assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
        await sess.release();
      }
      await rt.clear();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('export: a size the model cannot take fails before any file is written, naming sizes that work', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-export-'));
  try {
    const ckpt = writeCheckpoint(dir, { family: 'hiera', preset: 'hiera-mini-abswin' }, 1);
    await assert.rejects(exportCheckpoint(ckpt, [[64, 64], [70, 70]], path.join(dir, 'x.onnx')), /nearest sizes that work/);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('export: a checkpoint without a model spec, or missing a parameter, is refused with the reason', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-export-'));
  try {
    const bare = path.join(dir, 'bare.safetensors');
    saveSafetensors(bare, new Map([['w', { data: new Float32Array(2), shape: [2] }]]));
    assert.throws(() => loadCheckpointForExport(bare), /anyres\.config/);
    const partial = path.join(dir, 'partial.safetensors');
    saveSafetensors(partial, new Map([['w', { data: new Float32Array(2), shape: [2] }]]), { 'anyres.config': JSON.stringify({ family: 'vit', preset: 'vit-mini-p4' }) });
    assert.throws(() => loadCheckpointForExport(partial), /strict\): \d+ missing and 1 unexpected key/);
    saveSafetensors(partial, new Map([['w', { data: new Float32Array(2), shape: [2] }]]), { 'anyres.config': JSON.stringify({ family: 'vit', preset: 'no-such-preset' }) });
    assert.throws(() => loadCheckpointForExport(partial), /unknown model preset 'no-such-preset'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('export: a training checkpoint (run directory, flat tensors) exports with its resolutions, classes and ImageNet normalisation', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-export-'));
  try {
    const model = modelFromSpec({ family: 'vit', preset: 'vit-mini-p4' });
    const w = initWeights(model.paramInfos(), new Rng(5));
    const state = stateFromParams(new Map([...w].map(([k, t]) => [k, t.data])));
    const run = path.join(dir, 'run');
    saveCheckpoint(run, state, { model: { family: model.family, config: model.config, preset: 'vit-mini-p4' }, run: { resolutions: [32, 48], data: 'synthetic' }, epoch: 0, stepInEpoch: 0, rng: {} });
    const { written, loaded } = await exportCheckpoint(run, [[32, 32]], path.join(dir, 'out.onnx'));
    assert.deepEqual(loaded.trainRes, [32, 48]);
    assert.equal(loaded.classes[0], SYNTHETIC_CLASS_NAMES[0]);
    assert.deepEqual(loaded.normalization, { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] });
    const bytes = fs.readFileSync(written[0]!);
    const sess = await ort.InferenceSession.create(bytes);
    const img = new SyntheticDataset({ seed: 0, split: 'val', size: 2 }).render(0, { res: 32 }).image;
    const got = (await sess.run({ image: new ort.Tensor('float32', img, [1, 3, 32, 32]) })).logits!.data as Float32Array;
    const x = new Float32Array(img.length);
    for (let c = 0; c < 3; c++) for (let i = 0; i < 1024; i++) x[c * 1024 + i] = (img[c * 1024 + i]! - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
    const rt = new Runtime({ threads: 1 });
    const ref = await predict(rt, loaded.model, loaded.weights, { data: x, shape: [1, 3, 32, 32] });
    for (let i = 0; i < 10; i++) assert.ok(Math.abs(got[i]! - ref[i]!) <= 1e-5);
    await sess.release();
    await rt.clear();
    // Its tensor file alone is enough: it records its shapes and model spec (issue 16).
    const tensorFile = fs.readdirSync(run).find((f) => f.endsWith('.safetensors'))!;
    const alone = loadCheckpointForExport(path.join(run, tensorFile));
    assert.deepEqual(alone.trainRes, [32, 48]);
    assert.equal(alone.classes[0], SYNTHETIC_CLASS_NAMES[0]);
    for (const [k, v] of loaded.weights) assert.deepEqual(alone.weights.get(k)!.data, v.data, k);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('export: --res parsing and per-size file names', () => {
  assert.deepEqual(parseExportSizes(['64,96', '40x56']), [[64, 64], [96, 96], [40, 56]]);
  assert.throws(() => parseExportSizes(['64px']), /not a size/);
  assert.equal(exportPathFor('a/m.onnx', [64, 64], false), 'a/m.onnx');
  assert.equal(exportPathFor('a/m.onnx', [64, 64], true), 'a/m-64.onnx');
  assert.equal(exportPathFor('a/m.onnx', [40, 56], true), 'a/m-40x56.onnx');
});

for (const preset of ['vit-mini-p4', 'hiera-mini-abswin', 'resformer-mini-p4']) {
  test(`export ${preset}: one file serves batch 1 and 5 in a fresh onnxruntime-node session; --fp16 halves it within float16 rounding`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-export-'));
    try {
      const ckpt = writeCheckpoint(dir, { family: preset.split('-')[0]!, preset }, 4);
      const [res] = (await exportCheckpoint(ckpt, [[64, 32]], path.join(dir, 'd.onnx'))).written;
      const [half] = (await exportCheckpoint(ckpt, [[64, 32]], path.join(dir, 'h.onnx'), { fp16: true })).written;
      const loaded = loadCheckpointForExport(ckpt);
      const ds = new SyntheticDataset({ seed: 1, split: 'val', size: 8 });
      const rt = new Runtime({ threads: 1 });
      const sess = await ort.InferenceSession.create(fs.readFileSync(res!));
      const sessHalf = await ort.InferenceSession.create(fs.readFileSync(half!));
      assert.equal(readOnnxSummary(fs.readFileSync(half!)).metadata['anyres.weights_dtype'], 'float16');
      assert.ok(fs.statSync(half!).size < 0.6 * fs.statSync(res!).size, `fp16 file ${fs.statSync(half!).size} vs ${fs.statSync(res!).size} bytes`);
      for (const B of [1, 5]) {
        const hw = 64 * 32;
        const x = new Float32Array(B * 3 * hw);
        for (let b = 0; b < B; b++) x.set(ds.render(b, { width: 32, height: 64 }).image, b * 3 * hw);
        const got = (await sess.run({ image: new ort.Tensor('float32', x, [B, 3, 64, 32]) })).logits!;
        assert.deepEqual(got.dims, [B, 10]);
        const xs = new Float32Array(x.length);
        for (let b = 0; b < B; b++) xs.set(normalised(x.subarray(b * 3 * hw, (b + 1) * 3 * hw), hw), b * 3 * hw);
        const ref = await predict(rt, loaded.model, loaded.weights, { data: xs, shape: [B, 3, 64, 32] });
        const g = got.data as Float32Array;
        let err = 0;
        for (let i = 0; i < g.length; i++) err = Math.max(err, Math.abs(g[i]! - ref[i]!));
        assert.ok(err <= 1e-5, `batch ${B}: max |logit diff| ${err}`);
        const h = (await sessHalf.run({ image: new ort.Tensor('float32', x, [B, 3, 64, 32]) })).logits!.data as Float32Array;
        let errH = 0;
        for (let i = 0; i < h.length; i++) errH = Math.max(errH, Math.abs(h[i]! - ref[i]!));
        assert.ok(errH > 0 && errH < 2e-2, `batch ${B} fp16: max |logit diff| ${errH}`);
      }
      await sess.release();
      await sessHalf.release();
      await rt.clear();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
