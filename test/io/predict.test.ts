/**
 * `anyres predict`: its probabilities equal the exported ONNX model's on the same images (same
 * preprocessing, normalisation inside the ONNX graph vs ours), at a square and a non-square size,
 * through the padded last batch; timm's eval transform geometry; output formats; refused sizes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { saveSafetensors } from '../../src/io/safetensors.ts';
import { exportCheckpoint, loadCheckpointForExport, modelFromSpec } from '../../src/io/export.ts';
import { initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { SYNTHETIC_CLASS_NAMES } from '../../src/data/synthetic.ts';
import { collectImages, decodeImage, evalTransform, formatPredictions, predictImages } from '../../src/cli/predict.ts';
import { makeImage } from '../../src/data/image.ts';

const NORM = { mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] };

async function writeImages(dir: string): Promise<string[]> {
  const sizes: [string, number, number][] = [['a.png', 90, 60], ['b.png', 50, 120], ['sub/c.png', 64, 64], ['d.png', 33, 47], ['e.png', 200, 150]];
  const rng = new Rng(3);
  for (const [name, w, h] of sizes) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    const d = Buffer.alloc(w * h * 3);
    // Smooth gradients plus noise: something a resize changes measurably.
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) d[(y * w + x) * 3 + c] = Math.min(255, Math.floor(((x * (c + 1)) / w) * 200 + (y / h) * 40 + rng.uniform(0, 15)));
    await sharp(d, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(dir, name));
  }
  return sizes.map(([n]) => path.join(dir, n));
}

test('predict matches the exported ONNX probabilities on the same images (square and non-square, padded last batch)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-predict-'));
  try {
    const spec = { family: 'vit', preset: 'vit-mini-p4' };
    const model = modelFromSpec(spec);
    const ckpt = path.join(dir, 'm.safetensors');
    saveSafetensors(ckpt, initWeights(model.paramInfos(), new Rng(11)), {
      'anyres.config': JSON.stringify(spec), 'anyres.dataset': 'synthetic', 'anyres.normalization': JSON.stringify(NORM),
    });
    await writeImages(path.join(dir, 'img'));
    const files = collectImages([path.join(dir, 'img')]);
    assert.equal(files.length, 5);
    assert.ok(files.some((f) => f.endsWith(path.join('sub', 'c.png'))));
    const ck = loadCheckpointForExport(ckpt);
    for (const [H, W] of [[32, 32], [40, 48]] as [number, number][]) {
      const preds = await predictImages(ck, files, { res: [H, W], top: 3, batch: 2, progress: false });
      assert.equal(preds.length, 5);
      const [onnxFile] = (await exportCheckpoint(ckpt, [[H, W]], path.join(dir, `m-${H}x${W}.onnx`))).written;
      const sess = await ort.InferenceSession.create(fs.readFileSync(onnxFile!));
      const x = new Float32Array(5 * 3 * H * W);
      for (const [i, f] of files.entries()) x.set(evalTransform(await decodeImage(f), H, W).data, i * 3 * H * W);
      const probs = (await sess.run({ image: new ort.Tensor('float32', x, [5, 3, H, W]) })).probs!.data as Float32Array;
      let err = 0;
      for (const [i, p] of preds.entries()) for (let k = 0; k < 10; k++) err = Math.max(err, Math.abs(p.probs[k]! - probs[i * 10 + k]!));
      assert.ok(err <= 1e-5, `${H}x${W}: max |prob diff| vs ONNX ${err}`);
      for (const p of preds) {
        assert.equal(p.top.length, 3);
        assert.ok(p.top[0]!.prob >= p.top[1]!.prob && p.top[1]!.prob >= p.top[2]!.prob);
        assert.equal(p.top[0]!.class, SYNTHETIC_CLASS_NAMES[p.top[0]!.index]);
      }
      await sess.release();
    }
    const preds = await predictImages(ck, files.slice(0, 2), { res: [32, 32], top: 2, progress: false });
    const csv = formatPredictions(preds, 'csv').trim().split('\n');
    assert.equal(csv[0], 'file,rank,index,class,prob');
    assert.equal(csv.length, 1 + 2 * 2);
    const jl = formatPredictions(preds, 'jsonl').trim().split('\n').map((l) => JSON.parse(l) as { file: string; top: unknown[] });
    assert.deepEqual(jl.map((j) => j.file), files.slice(0, 2));
    // A size the model cannot take is refused, naming the nearest that work.
    await assert.rejects(predictImages(ck, files, { res: [30, 32], progress: false }), /nearest sizes that work/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("evalTransform is timm's: shorter side to floor(N / 0.875) keeping the aspect, then a centre crop; HxW resizes each side", () => {
  const img = makeImage(3, 100, 200);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i % 200) / 200;
  // 64 / 0.875 = 73.14 -> 73; 200 x 100 -> 146 x 73, centre crop 64 x 64.
  const sq = evalTransform(img, 64, 64);
  assert.deepEqual([sq.height, sq.width], [64, 64]);
  // A horizontal ramp stays a ramp centred on the middle column: the crop is centred.
  const mid = sq.data[32 * 64 + 31]! + sq.data[32 * 64 + 32]!;
  assert.ok(Math.abs(mid / 2 - 0.5) < 0.02, `centre value ${mid / 2}`);
  const rect = evalTransform(img, 32, 48);
  assert.deepEqual([rect.height, rect.width], [32, 48]);
});
