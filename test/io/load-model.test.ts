import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import { type FixtureCase, loadCase, need, paramsOf } from '../../src/fixture/case.ts';
import { vitConfigFromFixture } from '../../src/fixture/kinds/vit.ts';
import { hieraConfigFromFixture } from '../../src/fixture/kinds/hiera.ts';
import { hieradetConfigFromFixture } from '../../src/fixture/kinds/det.ts';
import type { Model } from '../../src/models/types.ts';
import { createVit } from '../../src/models/vit.ts';
import { createHiera } from '../../src/models/hiera.ts';
import { HieraDet } from '../../src/models/hieradet.ts';
import { createVitDet } from '../../src/models/vitdet.ts';
import { createModel } from '../../src/models/registry.ts';
import { type NamedTensor, saveSafetensors } from '../../src/io/index.ts';
import { learnedPosEmbedOf, loadWeightsFor, loadWeightsFromTensors, resampleLearnedPosEmbed } from '../../src/io/load-model.ts';
import { Params, type Weights } from '../../src/nn/params.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { contiguous, f32Storage, torchSave, type SaveValue } from './pth-writer.ts';

type Json = Record<string, unknown>;
const classes = (c: FixtureCase): number => { const s = c.meta['output.logits']!.shape; return s[s.length - 1]!; };

/**
 * The model a fixture case's weights belong to, by the JSON's kind and config. ViTDet cases hold
 * one detectron2 Block only (partial): it goes in as block 0 of a one-block ViTDet.
 * MAE and video Hiera cases have no model here (returns null).
 */
function modelOf(c: FixtureCase): { model: Model; blockOnly: boolean } | null {
  switch (c.kind) {
    case 'vit': case 'grad_vit': case 'step_adamw':
      return { model: createVit(vitConfigFromFixture(c, 'vit')), blockOnly: false };
    case 'resformer': case 'grad_resformer': case 'grad_resformer_multires':
      return { model: createVit(vitConfigFromFixture(c, 'resformer')), blockOnly: false };
    case 'hiera': case 'grad_hiera':
      return { model: createHiera(hieraConfigFromFixture(c.config as Json, classes(c), false)), blockOnly: false };
    case 'timm_hiera_abswin':
      return { model: createHiera(hieraConfigFromFixture(c.config as Json, classes(c), true)), blockOnly: false };
    case 'hieradet':
      return { model: new HieraDet(hieradetConfigFromFixture(c)), blockOnly: false };
    case 'vitdet': case 'grad_vitdet': {
      const cfg = c.config;
      const dim = Number(cfg.dim);
      const global = Number(cfg.window_size) === 0;
      const s = (cfg.input_size as number[])[0]!;
      const model = createVitDet('vitdet-mini', {
        embedDim: dim, numHeads: Number(cfg.num_heads), depth: 1, globalBlocks: global ? [0] : [], windowSize: global ? s : Number(cfg.window_size),
        imgSize: s * 16, relPos: 'all', pyramid: null, normEps: 1e-5,
      });
      return { model, blockOnly: true };
    }
    default:
      return null;
  }
}

/** Every case with stored official weights (`param.*`) and its `state_dict_keys`. */
function weightCases(): FixtureCase[] {
  const dir = fixturesDir();
  return fs.readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('index')).sort().map((f) => {
    const json = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Json;
    return Array.isArray(json.state_dict_keys) && (json.status ?? 'ok') === 'ok' ? loadCase(path.join(dir, f)) : null;
  }).filter((c): c is FixtureCase => c !== null && [...c.tensors.keys()].some((k) => k.startsWith('param.')));
}

const asTensors = (w: Weights, prefix = ''): Map<string, NamedTensor> => new Map([...w].map(([k, v]) => [prefix + k, { shape: v.shape, data: v.data }]));

function assertSameWeights(a: Weights, b: Weights, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), what);
  for (const [k, v] of a) {
    assert.deepEqual(v.shape, b.get(k)!.shape, `${what} ${k}`);
    assert.deepEqual(v.data, b.get(k)!.data, `${what} ${k}`);
  }
}

test('every fixture with official weights loads into its model through the key maps', () => {
  const seen = new Set<string>();
  let loadedCases = 0;
  for (const c of weightCases()) {
    const m = modelOf(c);
    if (!m) { seen.add(`skip:${c.kind}`); continue; }
    const keys = c.json.state_dict_keys as string[];
    const params = paramsOf(c);
    assert.deepEqual([...params.keys()].sort(), [...keys].sort(), `${c.name}: param.* are the state_dict_keys`);
    const sd = asTensors(params, m.blockOnly ? 'blocks.0.' : '');
    const r = loadWeightsFromTensors(m.model, sd, { strict: !m.blockOnly });
    assert.deepEqual(r.match.unexpected, [], c.name);
    assert.deepEqual(r.reshaped, [], c.name);
    if (m.blockOnly) {
      // Partial: the case stores one Block, so only the stem of the one-block ViTDet is missing.
      assert.deepEqual(r.match.missing.sort(), ['patch_embed.proj.bias', 'patch_embed.proj.weight', 'pos_embed'], c.name);
    } else {
      assert.deepEqual(r.match.missing, [], c.name);
    }
    for (const k of keys) assert.deepEqual(r.weights.get(m.blockOnly ? `blocks.0.${k}` : k)!.data, params.get(k)!.data, `${c.name} ${k}`);
    seen.add(c.kind);
    loadedCases++;
  }
  for (const kind of ['vit', 'resformer', 'hiera', 'timm_hiera_abswin', 'hieradet', 'vitdet']) assert.ok(seen.has(kind), `no fixture of kind ${kind} was loaded`);
  // MAE and video Hiera weights have no model in this library (yet).
  assert.ok(seen.has('skip:mae_hiera') && seen.has('skip:video_hiera'));
  assert.ok(loadedCases >= 15, `${loadedCases} cases`);
});

/** How each source wraps the official names (and what else sits in such a file). */
const WRAPPERS: { kind: string; source: string; wrap: (sd: Map<string, NamedTensor>) => Map<string, NamedTensor>; prefix: string }[] = [
  { kind: 'hiera', source: 'hiera', prefix: 'model_state.', wrap: (sd) => prefixAll(sd, 'model_state.') },
  {
    kind: 'hieradet', source: 'sam2-trunk', prefix: 'model.image_encoder.trunk.',
    wrap: (sd) => new Map([...prefixAll(sd, 'model.image_encoder.trunk.'), ['model.image_encoder.neck.convs.0.conv.weight', t(2, 2)], ['model.sam_mask_decoder.iou_token.weight', t(1, 4)]]),
  },
  { kind: 'hieradet', source: 'sam2-trunk', prefix: 'image_encoder.trunk.', wrap: (sd) => prefixAll(sd, 'image_encoder.trunk.') },
  { kind: 'vit', source: 'timm-vit', prefix: 'model.', wrap: (sd) => prefixAll(sd, 'model.') },
  { kind: 'resformer', source: 'resformer', prefix: 'model.', wrap: (sd) => new Map([...prefixAll(sd, 'model_ema.', 0.5), ...prefixAll(sd, 'model.'), ['optimizer.state.0.exp_avg', t(3)]]) },
  { kind: 'vitdet', source: 'detectron2-vitdet', prefix: 'backbone.net.', wrap: (sd) => new Map([...prefixAll(sd, 'backbone.net.'), ['roi_heads.box_predictor.cls_score.weight', t(81, 4)]]) },
];
function t(...shape: number[]): NamedTensor { return { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }; }
function prefixAll(sd: Map<string, NamedTensor>, p: string, scale = 1): Map<string, NamedTensor> {
  return new Map([...sd].map(([k, v]) => [p + k, { shape: v.shape, data: v.data.map((x) => x * scale) }]));
}

test('wrapped checkpoints (model_state., image_encoder.trunk., model., backbone.net.) load identically', () => {
  const cases = weightCases();
  for (const w of WRAPPERS) {
    const c = cases.find((x) => x.kind === w.kind)!;
    const m = modelOf(c)!;
    const bare = asTensors(paramsOf(c), m.blockOnly ? 'blocks.0.' : '');
    const a = loadWeightsFromTensors(m.model, bare, { strict: !m.blockOnly });
    const b = loadWeightsFromTensors(m.model, w.wrap(bare), { strict: !m.blockOnly });
    assert.deepEqual(b.detection, { source: w.source, prefix: w.prefix }, `${w.kind} ${w.prefix}`);
    assertSameWeights(a.weights, b.weights, `${w.kind} ${w.prefix}`);
    assert.match(b.report, new RegExp(`source: ${w.source} \\(prefix '${w.prefix.replace(/\./g, '\\.')}' stripped\\)`));
  }
  // ResFormer's EMA copy on request.
  const c = cases.find((x) => x.kind === 'resformer')!;
  const m = modelOf(c)!;
  const ema = loadWeightsFromTensors(m.model, WRAPPERS[4]!.wrap(asTensors(paramsOf(c))), { strict: true, prefix: 'model_ema.' });
  assert.equal(ema.weights.get('blocks.0.attn.qkv.weight')!.data[1], paramsOf(c).get('blocks.0.attn.qkv.weight')!.data[1]! * 0.5);
});

test('detectron2: the simple feature pyramid beside backbone.net is loaded into ViTDet', () => {
  const model = createModel('vitdet-mini');
  const infos = model.paramInfos();
  const sd = new Map<string, NamedTensor>();
  let i = 0;
  for (const [k, info] of infos) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    const v: NamedTensor = { shape: [...info.shape], data: new Float32Array(n).fill(++i) };
    sd.set(k.startsWith('simfp_') ? `model.backbone.${k}` : `model.backbone.net.${k}`, v);
  }
  sd.set('model.proposal_generator.rpn_head.conv.weight', t(4, 4));
  const r = loadWeightsFromTensors(model, sd, { strict: true });
  assert.deepEqual(r.detection, { source: 'detectron2-vitdet', prefix: 'model.backbone.net.' });
  assert.deepEqual(r.ignored, ['model.proposal_generator.rpn_head.conv.weight']);
  assert.ok(r.match.loaded.some((k) => k.startsWith('simfp_')));
  i = 0;
  for (const k of infos.keys()) assert.equal(r.weights.get(k)!.data[0], ++i, k);
});

test('a torch .pth written like torch.save loads (official Hiera model_state)', () => {
  const c = loadCase(path.join(fixturesDir(), 'hiera_tiny_224_narrow.json'));
  const model = modelOf(c)!.model;
  const params = paramsOf(c);
  const sd = new Map<string, SaveValue>();
  let n = 0;
  for (const [k, v] of params) sd.set(k, contiguous(f32Storage(String(n++), v.data), v.shape));
  const bytes = torchSave(new Map<string, SaveValue>([['model_state', sd], ['epoch', 300]]));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-load-'));
  try {
    const file = path.join(dir, 'hiera.pth');
    fs.writeFileSync(file, bytes);
    const r = loadWeightsFor(model, file, { strict: true });
    assert.deepEqual(r.detection, { source: 'hiera', prefix: 'model_state.' });
    assertSameWeights(r.weights, new Map([...params].map(([k, v]) => [k, { data: v.data, shape: v.shape }])), 'pth');
    // The same weights through safetensors.
    const st = path.join(dir, 'hiera.safetensors');
    saveSafetensors(st, asTensors(params), { note: 'x' });
    const r2 = loadWeightsFor(model, st, { strict: true });
    assertSameWeights(r2.weights, r.weights, 'safetensors');
    assert.equal(r2.metadata.note, 'x');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('shape mismatches name both shapes; strict lists missing and unexpected; abs-win gets a hint', () => {
  const model = createModel('vit-mini-p4');
  const sd = asTensors(new Map([...model.paramInfos()].map(([k, v]) => [k, { shape: [...v.shape], data: new Float32Array(v.shape.reduce((a, b) => a * b, 1)) }])));
  sd.set('blocks.1.attn.qkv.weight', t(96, 96));
  assert.throws(() => loadWeightsFromTensors(model, sd), /shape mismatch for 1 tensor\(s\):\n {2}blocks\.1\.attn\.qkv\.weight: model needs \[288, 96\], checkpoint has \[96, 96\]/);
  sd.delete('blocks.1.attn.qkv.weight');
  sd.set('extra.weight', t(2));
  assert.throws(() => loadWeightsFromTensors(model, sd, { strict: true }), /strict\): 1 missing and 1 unexpected[\s\S]*missing 1[\s\S]*blocks\.1\.attn\.qkv\.weight[\s\S]*unexpected 1[\s\S]*extra\.weight/);
  const r = loadWeightsFromTensors(model, sd, { seed: 3 });
  assert.deepEqual(r.match.missing, ['blocks.1.attn.qkv.weight']);
  assert.deepEqual(r.match.unexpected, ['extra.weight']);
  // The missing one is initialised (truncated normal, std 0.02), not zero.
  const q = r.weights.get('blocks.1.attn.qkv.weight')!.data;
  assert.ok(q.some((v) => v !== 0) && q.every((v) => Math.abs(v) <= 2));
  // A learned Hiera embedding into an abs-win Hiera: shape error with both shapes and the fix.
  const abs = createModel('hiera-mini');
  const win = createModel('hiera-mini-abswin');
  const hsd = asTensors(new Map([...abs.paramInfos()].map(([k, v]) => [k, { shape: [...v.shape], data: new Float32Array(v.shape.reduce((a, b) => a * b, 1)) }])));
  assert.throws(() => loadWeightsFromTensors(win, hsd), /pos_embed: model needs \[1, 32, 4, 4\], checkpoint has \[1, 256, 32\][\s\S]*anyres convert --posembed-convert abswin/);
});

test('a learned pos embed at another grid is resampled by the model rule: ViT 224 weights at 288x224 reproduce timm', async () => {
  // vit_tiny_224 and vit_tiny_288x224 share weights; timm resamples 14x14 -> 18x14 at run time.
  const c224 = loadCase(path.join(fixturesDir(), 'vit_tiny_224.json'));
  const c288 = loadCase(path.join(fixturesDir(), 'vit_tiny_288x224.json'));
  const model = createVit(vitConfigFromFixture(c224, 'vit'), { imgSize: [288, 224] });
  const r = loadWeightsFromTensors(model, asTensors(paramsOf(c224)), { strict: true });
  assert.deepEqual(r.reshaped, [{ name: 'pos_embed', from: [1, 197, 192], to: [1, 1 + 18 * 14, 192], how: 'bicubic_aa 14x14 -> 18x14' }]);
  assert.match(r.report, /reshaped 1 position embedding\(s\)[\s\S]*pos_embed: \[1, 197, 192\] -> \[1, 253, 192\]/);
  const x = need(c288, 'input.x');
  const rt = new Runtime();
  const out = await rt.run((i, g) => ({ logits: model.forward(new Params(g, r.weights), i.x!).logits }), { x: host(x.data, x.shape) });
  const want = need(c288, 'output.logits').data;
  const got = out.logits!.data as Float32Array;
  const tol = c288.meta['output.logits']!.tolerance!.max_abs!;
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!));
  assert.ok(err <= tol, `max error ${err} > ${tol}`);
});

test('resampleLearnedPosEmbed: identity at the same grid, class slot added or dropped', () => {
  const model = createModel('vitdet-mini');
  const pe = learnedPosEmbedOf(model)!;
  assert.deepEqual(pe, { name: 'pos_embed', prefix: 1, grid: [7, 7], channels: 64, mode: 'bicubic' });
  const data = Float32Array.from({ length: 49 * 64 }, (_, i) => Math.sin(i));
  const noCls = resampleLearnedPosEmbed({ shape: [1, 49, 64], data }, pe);
  assert.deepEqual(noCls.tensor.shape, [1, 50, 64]);
  assert.deepEqual(noCls.tensor.data.subarray(0, 64), new Float32Array(64));
  assert.deepEqual(noCls.tensor.data.subarray(64), data);
  assert.equal(noCls.how, 'class-token slot added as zeros');
  const back = resampleLearnedPosEmbed(noCls.tensor, { ...pe, prefix: 0 });
  assert.deepEqual(back.tensor.data, data);
  assert.equal(learnedPosEmbedOf(createModel('hiera-mini-abswin')), null);
  assert.equal(learnedPosEmbedOf(createModel('resformer-mini-p4')), null);
  assert.throws(() => resampleLearnedPosEmbed({ shape: [1, 50, 64], data: new Float32Array(50 * 64) }, { ...pe, prefix: 0 }, [6, 6]), /50 tokens do not hold a 6x6 grid/);
});

/** Official Hiera name -> HF transformers name (inverse of convert_hiera_to_hf.py's table), for stage depths `depths`. */
function toHf(name: string, depths: number[]): string {
  const starts = depths.map((_, s) => depths.slice(0, s).reduce((a, b) => a + b, 0));
  const blk = /^blocks\.(\d+)\.(.*)$/.exec(name);
  if (blk) {
    const g = Number(blk[1]);
    const s = starts.filter((st) => st <= g).length - 1;
    const rest = blk[2]!.replace(/^norm1\./, 'layernorm_before.').replace(/^norm2\./, 'layernorm_after.');
    return `hiera.encoder.stages.${s}.layers.${g - starts[s]!}.${rest}`;
  }
  const table: Record<string, string> = {
    pos_embed: 'hiera.embeddings.position_embeddings',
    'patch_embed.proj.weight': 'hiera.embeddings.patch_embeddings.projection.weight',
    'patch_embed.proj.bias': 'hiera.embeddings.patch_embeddings.projection.bias',
    'norm.weight': 'hiera.pooler.layernorm.weight', 'norm.bias': 'hiera.pooler.layernorm.bias',
    'head.projection.weight': 'classifier.weight', 'head.projection.bias': 'classifier.bias',
  };
  return table[name]!;
}

test('an HF transformers Hiera checkpoint (hiera. + classifier, stage-local layers) loads like the official one', () => {
  const c = loadCase(path.join(fixturesDir(), 'hiera_tiny_224_narrow.json'));
  const model = modelOf(c)!.model;
  const params = paramsOf(c);
  const depths = (c.config.stages as number[]).map(Number);
  const hf = new Map([...params].map(([k, v]) => [toHf(k, depths), { shape: v.shape, data: v.data }]));
  assert.ok([...hf.keys()].every((k) => k !== undefined));
  const r = loadWeightsFromTensors(model, hf, { strict: true });
  assert.deepEqual(r.detection, { source: 'hf-hiera', prefix: 'hiera.' });
  assertSameWeights(r.weights, new Map([...params].map(([k, v]) => [k, { data: v.data, shape: v.shape }])), 'hf');
});
