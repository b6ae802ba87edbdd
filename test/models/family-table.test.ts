/**
 * The family table (src/models/registry.ts) is the one place that knows a family: every registered
 * family answers every method consistently with the model it builds, the aux contract
 * (src/models/types.ts) holds in every family, and the loader / converter take their answers from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/graph/tensor.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { Params, initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import {
  MODEL_FAMILIES, createModel, familyOf, familyOfPreset, modelForTraining, presetNames, trainPresetNames,
} from '../../src/models/registry.ts';
import { learnedPosEmbedOf } from '../../src/io/load-model.ts';
import { convertWeights } from '../../src/io/convert-weights.ts';
import { attentionWindowOf, positionEmbeddingAt } from '../../src/index.ts';
import { hieraMaeDecoders } from '../../src/models/hiera-mae.ts';

const MINIS = ['vit-mini-p8', 'resformer-mini-p8', 'hiera-mini', 'hiera-mini-abswin', 'hiera-video-mini', 'vitdet-mini', 'hieradet-mini'];

/** Traces a forward at H x W without running it (shapes only). */
function traceAux(name: string, H: number, W: number): Record<string, number[]> {
  const m = createModel(name);
  const g = new Graph();
  const x = g.input('x', m.inputKind === 'clip' ? [1, 3, 2, H, W] : [1, 3, H, W]);
  const out = m.forward(new Params(g), x);
  return Object.fromEntries(Object.entries(out.aux).map(([k, t]) => [k, [...t.shape]]));
}

test('every family is registered and every preset belongs to the table of its family', () => {
  assert.deepEqual([...MODEL_FAMILIES].sort(), ['hiera', 'hiera-video', 'hieradet', 'resformer', 'vit', 'vitdet']);
  for (const name of presetNames()) {
    const m = createModel(name);
    const t = familyOf(m);
    assert.equal(familyOfPreset(name), t, name);
    assert.ok(t.families.includes(m.family as never), `${name}: ${m.family} in [${t.families.join(', ')}]`);
    // The learned embedding the table names is the parameter the model declares, at the grid it says.
    const pe = t.learnedPosEmbed(m.config);
    if (pe) {
      const info = m.paramInfos().get(pe.name);
      assert.deepEqual(info?.shape, [1, pe.prefix + pe.grid[0] * pe.grid[1], pe.channels], name);
    }
    const grid = t.tokenGrid(m.config, ...m.defaultRes);
    assert.ok(grid.every((n) => Number.isInteger(n) && n > 0), `${name}: token grid ${grid}`);
    const win = t.attentionWindow(m.config);
    if (win) assert.ok(win.every((n) => Number.isInteger(n) && n > 0), `${name}: window ${win}`);
    assert.equal(t.classifier, trainPresetNames().includes(name), name);
  }
});

test('atResolution sets the stored default size of every family (the model reports it back)', () => {
  for (const name of MINIS) {
    const m = createModel(name);
    const t = familyOf(m);
    const [H, W] = m.defaultRes;
    const res: [number, number] = [2 * H, 2 * W];
    const at = createModel({ family: m.family, config: t.atResolution(m.config, res) });
    assert.deepEqual(at.defaultRes, res, name);
    if (t.learnedPosEmbed(m.config)) {
      const g0 = t.learnedPosEmbed(m.config)!.grid, g1 = t.learnedPosEmbed(at.config)!.grid;
      // ViTDet stores the pretrain grid, which a new input size does not change; the others store their default grid.
      if (m.family !== 'vitdet') assert.deepEqual(g1, [2 * g0[0], 2 * g0[1]], name);
    }
  }
  // Square-only families say so, naming the size.
  assert.throws(() => familyOf(createModel('vitdet-mini')).atResolution(createModel('vitdet-mini').config, [64, 96]), /vitdet stores a square default size; got 64x96/);
});

test('aux contract: aux.pos_embed is [1, C, h, w] at the token grid in every family, at any input size', () => {
  for (const name of MINIS) {
    const m = createModel(name);
    const t = familyOf(m);
    const [H, W] = m.defaultRes;
    for (const [h, w] of [[H, W], [2 * H, W]] as const) {
      const aux = traceAux(name, h, w);
      const [gh, gw] = t.tokenGrid(m.config, h, w);
      assert.equal(aux.pos_embed?.length, 4, `${name} ${h}x${w}: aux.pos_embed ${aux.pos_embed}`);
      assert.deepEqual(aux.pos_embed!.slice(2), [gh, gw], `${name} at ${h}x${w}`);
      assert.equal(aux.pos_embed![0], 1);
    }
  }
});

test('aux.pos_embed holds the same numbers as the family layout (tokens / NHWC) it is documented beside', async () => {
  const rt = new Runtime();
  for (const name of ['vit-mini-p8', 'hiera-mini-abswin', 'hieradet-mini']) {
    const m = createModel(name);
    const w = initWeights(m.paramInfos(), new Rng(3));
    const [H, W] = m.defaultRes;
    const other = name.startsWith('hieradet') ? 'pos_embed_hw' : 'pos_embed_tokens';
    const o = await rt.run((i, g) => {
      const a = m.forward(new Params(g, w), i.x!).aux;
      return { grid: a.pos_embed!, other: a[other]! };
    }, { x: host(new Float32Array(3 * H * W), [1, 3, H, W]) });
    const [, C, h, ww] = o.grid!.shape as number[];
    const g = o.grid!.data as Float32Array, t = o.other!.data as Float32Array;
    const prefix = t.length / C - h! * ww!;
    let worst = 0;
    for (let c = 0; c < C!; c++) for (let k = 0; k < h! * ww!; k++) worst = Math.max(worst, Math.abs(g[c * h! * ww! + k]! - t[(prefix + k) * C! + c]!));
    assert.equal(worst, 0, name);
    // positionEmbeddingAt reads the contract, whatever the family.
    const pos = await positionEmbeddingAt(m, w, rt);
    assert.deepEqual([pos.C, pos.H, pos.W], [C, h, ww]);
    assert.deepEqual(Array.from(pos.data), Array.from(g));
  }
});

test('the table drives the loader and the converter', () => {
  for (const name of MINIS) {
    const m = createModel(name);
    assert.deepEqual(learnedPosEmbedOf(m), familyOf(m).learnedPosEmbed(m.config), name);
    assert.deepEqual(attentionWindowOf(m), familyOf(m).attentionWindow(m.config), name);
  }
  // convert --res: the table's atResolution and the table's learned embedding, for each image family.
  for (const name of ['vit-mini-p8', 'hiera-mini', 'hieradet-mini']) {
    const m = createModel(name);
    const res: [number, number] = [2 * m.defaultRes[0], 2 * m.defaultRes[1]];
    const conv = convertWeights(m, initWeights(m.paramInfos(), new Rng(0)), { res });
    assert.deepEqual(conv.model.defaultRes, res, name);
    const pe = learnedPosEmbedOf(conv.model);
    if (pe) assert.deepEqual(conv.weights.get(pe.name)!.shape, [1, pe.prefix + pe.grid[0] * pe.grid[1], pe.channels], name);
  }
  const v = createModel('hiera-video-mini');
  assert.throws(() => convertWeights(v, initWeights(v.paramInfos(), new Rng(0)), { res: [64, 64] }), /separable \(spatial \+ temporal\) embedding.*anyres finetune --res/);
});

test('modelForTraining applies the overrides through the table and names what is wrong', () => {
  const m = modelForTraining('hiera-mini', { numClasses: 3, res: 32, dropPathRate: 0.1, posEmbed: 'abswin' });
  assert.deepEqual([m.family, m.defaultRes, (m.config as { numClasses: number }).numClasses], ['hiera', [32, 32], 3]);
  const v = modelForTraining('vit-mini-p8', { posEmbed: 'resformer' });
  assert.equal(v.family, 'resformer');
  assert.equal(modelForTraining('hiera-video-mini', { frames: 4 }).config && (modelForTraining('hiera-video-mini', { frames: 4 }).config as { inputFrames: number }).inputFrames, 4);
  assert.throws(() => modelForTraining('vit-mini-p8', { posEmbed: 'abswin' }), /--posembed 'abswin' is not one of learned, sincos, resformer for ViT presets/);
  assert.throws(() => modelForTraining('hiera-mini', { frames: 8 }), /takes images but the data has clips of 8 frames; use a video preset/);
  assert.throws(() => modelForTraining('vitdet-mini'), /detection backbone without a classification head/);
  assert.throws(() => modelForTraining('nope'), /unknown model preset 'nope'; valid presets: vit-tiny/);
});

test('MAE decoder sizes are data: every Hiera preset has a decoder row, not a rule on its name', () => {
  for (const name of presetNames().filter((n) => familyOfPreset(n)?.families.includes('hiera'))) assert.ok(hieraMaeDecoders[name], name);
});
