import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.ts';
import { Params, type Weights, initWeights } from '../../src/nn/params.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import type { Model } from '../../src/models/types.ts';
import { createVit } from '../../src/models/vit.ts';
import { createHiera } from '../../src/models/hiera.ts';
import { resample2d } from '../../src/posembed/resample.ts';
import { recursiveAbsWin } from '../../src/posembed/abswin.ts';
import { grid, tokensToGrid } from '../../src/posembed/reference.ts';
import { evenGlobalBlocks, hieradetFromHiera, hieraEmbedAtGrid, vitdetFromVit } from '../../src/det/init.ts';

const rt = new Runtime();

const toWeights = (model: Model, params: ReadonlyMap<string, Float32Array>): Weights =>
  new Map([...model.paramInfos()].map(([k, info]) => [k, { data: params.get(k)!, shape: info.shape }]));
const fromWeights = (w: Weights): Map<string, Float32Array> => new Map([...w].map(([k, v]) => [k, v.data]));

function randomImage(seed: number, H: number, W: number, B = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: B * 3 * H * W }, () => r.normal());
}

async function aux(model: Model, w: Weights, keys: string[], H: number, W: number, x = randomImage(3, H, W)): Promise<Record<string, { data: Float32Array; shape: number[] }>> {
  const out = await rt.run((i, g) => {
    const a = model.forward(new Params(g, w), i.x!).aux;
    return Object.fromEntries(keys.map((k) => [k, a[k]!]));
  }, { x: host(x, [x.length / (3 * H * W), 3, H, W]) });
  return Object.fromEntries(keys.map((k) => [k, { data: out[k]!.data as Float32Array, shape: [...out[k]!.shape] }]));
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** NHWC [1, H, W, C] -> [C, H, W]. */
function nhwcToChw(d: ArrayLike<number>, H: number, W: number, C: number): Float64Array {
  const out = new Float64Array(C * H * W);
  for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) out[c * H * W + i] = d[i * C + c]!;
  return out;
}

/** A small global-attention ViT pretrained (here: random weights) at 32 px, 4x4 tokens. */
function pretrainedVit(classToken: boolean, seed = 1) {
  const vit = createVit('vit-mini-p8', { embedDim: 32, depth: 2, numHeads: 2, imgSize: [32, 32], classToken, globalPool: classToken ? 'token' : 'avg', numClasses: 5 });
  const w = initWeights(vit.paramInfos(), new Rng(seed));
  return { vit, params: fromWeights(w) };
}

/** The ViT's pos_embed grid [C, 4, 4] (class row skipped). */
function vitGrid(params: Map<string, Float32Array>, classToken: boolean): Float64Array {
  const pe = params.get('pos_embed')!;
  return tokensToGrid(pe.subarray(classToken ? 32 : 0), 32, 4, 4);
}

test('tile / abswin init: every window holds exactly the pretrained embedding (crop at a non-multiple grid)', async () => {
  for (const classToken of [true, false]) {
    const { vit, params } = pretrainedVit(classToken);
    const g = vitGrid(params, classToken);
    for (const how of ['tile', 'abswin'] as const) {
      const det = vitdetFromVit(vit, params, { posEmbedInit: how, relPos: 'global', imgSize: 128, seed: 0 });
      assert.equal(det.model.config.windowSize, 4, 'window = the pretrained grid');
      if (how === 'abswin') assert.ok(det.params.get('pos_embed_global')!.every((v) => v === 0), 'global part starts at zero');
      // 128 px = 16x16 tokens = 4x4 windows; 120x88 px = 15x11 tokens: windows cropped at the bottom/right.
      for (const [H, W] of [[128, 128], [120, 88]] as const) {
        const [h, w] = [H / 8, W / 8];
        const pos = (await aux(det.model, toWeights(det.model, det.params), ['pos_embed_hw'], H, W)).pos_embed_hw!;
        assert.deepEqual(pos.shape, [1, h, w, 32]);
        const chw = nhwcToChw(pos.data, h, w, 32);
        let worst = 0;
        for (let c = 0; c < 32; c++) {
          for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) worst = Math.max(worst, Math.abs(chw[c * h * w + i * w + j]! - g[c * 16 + (i % 4) * 4 + (j % 4)]!));
        }
        assert.ok(worst < 1e-6, `${how} cls=${classToken} ${H}x${W}: window differs from the pretrained grid by ${worst}`);
      }
    }
  }
});

test('interpolate init equals the bicubic resize of the pretrained grid (square and non-square)', async () => {
  const { vit, params } = pretrainedVit(true);
  const g = vitGrid(params, true);
  const det = vitdetFromVit(vit, params, { posEmbedInit: 'interpolate', relPos: 'all', imgSize: 128, seed: 0 });
  for (const [H, W] of [[128, 128], [96, 136]] as const) {
    const [h, w] = [H / 8, W / 8];
    const pos = (await aux(det.model, toWeights(det.model, det.params), ['pos_embed_hw'], H, W)).pos_embed_hw!;
    const ref = resample2d(g, 32, 4, 4, h, w, 'bicubic'); // detectron2 get_abs_pos: F.interpolate bicubic, align_corners=False
    assert.ok(maxDiff(nhwcToChw(pos.data, h, w, 32), ref) < 1e-5, `${H}x${W}`);
    // And it is not the tiling: a 4x4 window of the interpolated grid differs from the pretrained grid.
    const tiledGap = maxDiff(Array.from({ length: 16 }, (_, k) => ref[Math.floor(k / 4) * w + (k % 4)]!), Array.from(g.subarray(0, 16)));
    assert.ok(tiledGap > 1e-3, 'interpolation stretches the embedding');
  }
});

test('invariance: at the pretrained size, ViTDet with window = grid computes the ViT tokens (every init but scratch, every relpos)', async () => {
  const { vit, params } = pretrainedVit(false);
  const x = randomImage(7, 32, 32, 2);
  const ref = (await aux(vit, toWeights(vit, params), ['block.1'], 32, 32, x))['block.1']!; // [2, 16, 32]
  for (const how of ['interpolate', 'tile', 'abswin'] as const) {
    for (const relPos of ['all', 'global', 'none'] as const) {
      const det = vitdetFromVit(vit, params, { posEmbedInit: how, relPos, imgSize: 128, seed: 3 });
      const last = (await aux(det.model, toWeights(det.model, det.params), ['last_feat'], 32, 32, x)).last_feat!; // [2, 32, 4, 4] NCHW
      assert.deepEqual(last.shape, [2, 32, 4, 4]);
      const tokens = new Float32Array(2 * 16 * 32);
      for (let b = 0; b < 2; b++) for (let c = 0; c < 32; c++) for (let k = 0; k < 16; k++) tokens[(b * 16 + k) * 32 + c] = last.data[(b * 32 + c) * 16 + k]!;
      assert.ok(maxDiff(tokens, ref.data) < 1e-4, `${how}/${relPos}: ${maxDiff(tokens, ref.data)}`);
    }
  }
});

test('scratch init: a fresh embedding at the detection grid; shared weights are identical across variants of one seed', () => {
  const { vit, params } = pretrainedVit(true);
  const scratch = vitdetFromVit(vit, params, { posEmbedInit: 'scratch', relPos: 'global', imgSize: 128, seed: 5 });
  const pe = scratch.params.get('pos_embed')!;
  assert.equal(pe.length, 16 * 16 * 32, '16x16 grid, no class slot');
  const std = Math.sqrt(pe.reduce((a, v) => a + v * v, 0) / pe.length);
  assert.ok(std > 0.01 && std < 0.03, `truncated normal 0.02, got std ${std}`);
  const tile = vitdetFromVit(vit, params, { posEmbedInit: 'tile', relPos: 'global', imgSize: 128, seed: 5 });
  const other = vitdetFromVit(vit, params, { posEmbedInit: 'tile', relPos: 'all', imgSize: 128, seed: 6 });
  for (const [k, v] of tile.params) {
    if (k === 'pos_embed') continue;
    assert.deepEqual(scratch.params.get(k), v, `${k} shared between variants of one seed`);
  }
  // The global blocks' rel-pos tables are zero (detectron2 rel_pos_zero_init), the ViT blocks copied.
  const gb = tile.model.config.globalBlocks;
  assert.deepEqual(gb, evenGlobalBlocks(2, 1));
  assert.deepEqual(evenGlobalBlocks(12, 4), [2, 5, 8, 11], 'detectron2 ViTDet-B');
  assert.ok(tile.params.get(`blocks.${gb[0]}.attn.rel_pos_h`)!.every((v) => v === 0));
  assert.equal(tile.params.get('blocks.0.attn.rel_pos_h'), undefined, "relPos 'global': window blocks have no tables");
  assert.ok(other.params.has('blocks.0.attn.rel_pos_h'));
  assert.deepEqual(tile.params.get('blocks.1.mlp.fc2.weight'), params.get('blocks.1.mlp.fc2.weight'));
  assert.match(tile.notes.join('\n'), /dropped .*cls_token.*head\.weight/);
});

test('vitdetFromVit refuses what it cannot convert, naming the problem', () => {
  const { vit, params } = pretrainedVit(true);
  assert.throws(() => vitdetFromVit(createVit('resformer-mini-p8'), params, { posEmbedInit: 'tile', relPos: 'none', imgSize: 128, seed: 0 }), /plain ViT with a learned pos_embed/);
  assert.throws(() => vitdetFromVit(vit, params, { posEmbedInit: 'bogus' as 'tile', relPos: 'none', imgSize: 128, seed: 0 }), /posEmbedInit must be one of interpolate, tile, abswin, scratch/);
  assert.throws(() => vitdetFromVit(vit, params, { posEmbedInit: 'tile', relPos: 'none', imgSize: 100, seed: 0 }), /multiple of the patch size 8/);
  const missing = new Map(params);
  missing.delete('blocks.0.attn.qkv.weight');
  assert.throws(() => vitdetFromVit(vit, missing, { posEmbedInit: 'tile', relPos: 'none', imgSize: 128, seed: 0 }), /no 'blocks.0.attn.qkv.weight'/);
});

/** An abs-win Hiera at 32 px: 8x8 tokens, 4x4 mask units (2x2 windows), 2x2 global embedding. */
function absWinHiera() {
  const hiera = createHiera('hiera-mini-abswin', { stages: [1, 2, 2], qPool: 2, maskUnitSize: [4, 4], maskUnitAttn: [true, true, false], globalPosSize: [2, 2], inputSize: [32, 32] });
  return { hiera, params: fromWeights(initWeights(hiera.paramInfos(), new Rng(4))) };
}

test('HieraDet recursive abs-win init on a multiple of the window equals the official rule', async () => {
  const { hiera, params } = absWinHiera();
  const det = hieradetFromHiera(hiera, params, { posEmbedInit: 'abswin', imgSize: 128, globalPosSize: [3, 3], seed: 0 });
  assert.deepEqual(det.model.windowPosSize(), [8, 8], 'window embedding = the pretrained 8x8 grid');
  const C = 32;
  const inner = {
    global: grid(params.get('pos_embed')!, C, 2, 2), window: grid(params.get('pos_embed_window')!, C, 4, 4), gridHW: [8, 8] as const,
  };
  for (const side of [128, 64]) {
    const h = side / 4;
    const pos = (await aux(det.model, toWeights(det.model, det.params), ['pos_embed_hw'], side, side)).pos_embed_hw!;
    // Official rule (sam2 _get_pos_embed applied recursively, Bolya et al. Sec. 5): the pretrained embedding at its grid, tiled; global 0.
    const ref = recursiveAbsWin(inner, null, h, h, { cropRule: 'official' }).embed;
    assert.ok(maxDiff(nhwcToChw(pos.data, h, h, C), ref.data) < 1e-5, `${side} px`);
  }
  // An absolute Hiera: the learned grid itself is the window.
  const abs = createHiera('hiera-mini', { stages: [1, 2, 1], qPool: 2, maskUnitSize: [4, 4], maskUnitAttn: [true, true, false], inputSize: [32, 32] });
  const ap = fromWeights(initWeights(abs.paramInfos(), new Rng(9)));
  const rec = hieradetFromHiera(abs, ap, { posEmbedInit: 'abswin', imgSize: 128, seed: 0 });
  const E = hieraEmbedAtGrid(abs.config, ap);
  assert.deepEqual(rec.params.get('pos_embed_window'), Float32Array.from(E.data));
  assert.ok(rec.params.get('pos_embed')!.every((v) => v === 0));
});

test('HieraDet interpolate init: the pretrained embedding bicubically resized; at the pretrained size HieraDet computes the Hiera stage outputs', async () => {
  const { hiera, params } = absWinHiera();
  const det = hieradetFromHiera(hiera, params, { posEmbedInit: 'interpolate', imgSize: 128, seed: 0 });
  const E = hieraEmbedAtGrid(hiera.config, params);
  const pos = (await aux(det.model, toWeights(det.model, det.params), ['pos_embed_hw'], 96, 96)).pos_embed_hw!;
  assert.ok(maxDiff(nhwcToChw(pos.data, 24, 24, 32), resample2d(E.data, 32, 8, 8, 24, 24, 'bicubic')) < 1e-5);
  // Invariance at 32 px (the pretrained grid): the Hiera's mask-unit blocks and HieraDet's window blocks agree stage by stage.
  const x = randomImage(11, 32, 32, 2);
  const keysH = [0, 1, 2].map((s) => `intermediates.${s}`);
  const keysD = [0, 1, 2].map((s) => `features.${s}`);
  const ref = await aux(hiera, toWeights(hiera, params), keysH, 32, 32, x);
  for (const how of ['interpolate', 'abswin'] as const) {
    const d = hieradetFromHiera(hiera, params, { posEmbedInit: how, imgSize: 32, seed: 0 });
    assert.deepEqual(d.model.config.globalAttBlocks, [4], 'the last stage attends globally after the lag block');
    const got = await aux(d.model, toWeights(d.model, d.params), keysD, 32, 32, x);
    for (let s = 0; s < 3; s++) {
      const r = ref[keysH[s]!]!; // [B, h, w, C]
      const [B, hs, ws, Cs] = r.shape as [number, number, number, number];
      const f = got[keysD[s]!]!; // [B, C, h, w]
      const nhwc = new Float32Array(r.data.length);
      for (let b = 0; b < B; b++) for (let c = 0; c < Cs; c++) for (let k = 0; k < hs * ws; k++) nhwc[(b * hs * ws + k) * Cs + c] = f.data[(b * Cs + c) * hs * ws + k]!;
      assert.ok(maxDiff(nhwc, r.data) < 1e-4, `${how} stage ${s}: ${maxDiff(nhwc, r.data)}`);
    }
  }
});
