import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/runtime.ts';
import { SyntheticDataset } from '../../src/data/synthetic.ts';
import { hieraPresets } from '../../src/models/hiera-config.ts';
import { createHiera } from '../../src/models/hiera.ts';
import { type HieraMaeConfig, createHieraMae } from '../../src/models/hiera-mae.ts';
import { type MaeLogRecord, posEmbedSimilarity, pretrainMae } from '../../src/train/mae.ts';
import { loadCheckpoint } from '../../src/io/train-checkpoint.ts';
import { checkStateMatches } from '../../src/train/state.ts';

const rt = new Runtime({ threads: 2 });
const quiet = { write: () => true };
const tiny: HieraMaeConfig = {
  encoder: {
    ...hieraPresets['hiera-mini']!, embedDim: 16, numHeads: 1, stages: [1, 1, 1], maskUnitAttn: [true, true, false],
    maskUnitSize: [4, 4], qPool: 2, inputSize: [64, 64], numClasses: 10,
  },
  decoderEmbedDim: 32, decoderDepth: 1, decoderNumHeads: 2, maskRatio: 0.6, normPixLoss: true,
};
const data = new SyntheticDataset({ size: 64, seed: 1, split: 'train' });
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-mae-'));

test('a tiny MAE pretraining run lowers the norm-pix loss and logs the pos-embed similarity', async () => {
  const recs: MaeLogRecord[] = [];
  const out = tmp();
  const r = await pretrainMae({ model: tiny, data, res: 64, steps: 40, batch: 8, lr: 2e-3, warmupSteps: 5, seed: 0, logEvery: 1, similarityEvery: 10, rt, out, onLog: (x) => recs.push(x), progressStream: quiet });
  assert.equal(r.steps, 40);
  const mean = (xs: { loss: number }[]) => xs.reduce((a, b) => a + b.loss, 0) / xs.length;
  const first = mean(r.losses.slice(0, 5));
  const last = mean(r.losses.slice(-5));
  // Predicting 0 for a normalised patch costs (n-1)/n ~ 1: the start; learning must cut it clearly.
  assert.ok(first > 0.9 && last < 0.75 * first, `loss did not decrease enough: first ${first.toFixed(3)}, last ${last.toFixed(3)}`);
  assert.deepEqual(r.similarity.map((s) => s.step), [0, 10, 20, 30, 40]);
  for (const s of r.similarity) assert.ok(Number.isFinite(s.embed) && Math.abs(s.embed) <= 1);
  // The curve is the one posEmbedSimilarity gives for the final weights.
  assert.equal(r.similarity.at(-1)!.embed, posEmbedSimilarity(r.model, r.state.params, 64, 64).embed);
  // JSON-lines log = what onLog saw.
  const lines = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MaeLogRecord);
  assert.deepEqual(lines, JSON.parse(JSON.stringify(recs)));
  assert.equal(lines[0]!.type, 'start');
  assert.equal(lines.at(-1)!.type, 'done');

  // Encoder weights carry the classifier's names and shapes; the written classifier checkpoint loads.
  const cls = createHiera({ ...tiny.encoder, qPool: 2 });
  const infos = cls.paramInfos();
  for (const [n, d] of r.encoder) assert.equal(d.length, infos.get(n)!.shape.reduce((a, b) => a * b, 1), n);
  assert.ok(r.encoder.has('pos_embed') && r.encoder.has('blocks.0.attn.qkv.weight') && !r.encoder.has('decoder_embed.weight'));
  const ck = loadCheckpoint(path.join(out, 'encoder'));
  assert.equal(ck.info.model.family, 'hiera');
  checkStateMatches(ck.state, createHiera(ck.info.model.config as typeof tiny.encoder).paramInfos(), 'encoder checkpoint');
  assert.deepEqual(ck.state.params.get('blocks.1.mlp.fc1.weight'), r.encoder.get('blocks.1.mlp.fc1.weight'));
});

test('interrupted and resumed pretraining ends with the same weights and curves as an uninterrupted run', async () => {
  const opts = { model: tiny, data, res: 64, steps: 6, batch: 8, lr: 1e-3, seed: 3, logEvery: 1, similarityEvery: 2, progressStream: quiet };
  const rt1 = new Runtime({ threads: 1 });
  const a = await pretrainMae({ ...opts, rt: rt1, out: tmp() });
  const outB = tmp();
  const ac = new AbortController();
  const b1 = await pretrainMae({ ...opts, rt: rt1, out: outB, signal: ac.signal, onLog: (x) => x.type === 'step' && x.step === 3 && ac.abort() });
  assert.equal(b1.interrupted, true);
  assert.equal(b1.steps, 3);
  const b = await pretrainMae({ ...opts, rt: rt1, out: outB, resume: true });
  assert.equal(b.steps, 6);
  for (const [n, d] of a.state.params) assert.deepEqual(b.state.params.get(n), d, n);
  assert.deepEqual(b.losses, a.losses);
  assert.deepEqual(b.similarity, a.similarity);
});

test('abs-win encoders also report the similarity of the combined embedding', () => {
  const cfg: HieraMaeConfig = { ...tiny, encoder: { ...tiny.encoder, posEmbed: 'abswin', globalPosSize: [4, 4] } };
  const model = createHieraMae(cfg);
  const infos = model.paramInfos();
  const C = tiny.encoder.embedDim;
  // A window pattern and a zero global embedding: perfectly tiled, similarity 1.
  const params = new Map<string, Float32Array>([
    ['pos_embed', new Float32Array(C * 16)],
    ['pos_embed_window', Float32Array.from({ length: C * 16 }, (_, i) => Math.sin(i))],
  ]);
  assert.deepEqual(infos.get('pos_embed_window')!.shape, [1, C, 4, 4]);
  const s = posEmbedSimilarity(model, params, 64, 64);
  assert.ok(Math.abs(s.combined! - 1) < 1e-12);
  assert.equal(s.embed, 0); // the all-zero global part has no direction
});

test('pretrainMae rejects bad options naming the value', async () => {
  await assert.rejects(pretrainMae({ model: tiny, data, res: 64, batch: 8, lr: 1e-3, seed: 0 }), /give epochs or steps/);
  await assert.rejects(pretrainMae({ model: tiny, data, res: 60, steps: 1, batch: 8, lr: 1e-3, seed: 0 }), /input 60x60 is not supported.*H 48 or 64/);
  await assert.rejects(pretrainMae({ model: tiny, data, res: 64, steps: 1, batch: 8, lr: 1e-3, seed: 0, maskRatio: 0.99 }), /keeps 0 of 16 mask units/);
});
