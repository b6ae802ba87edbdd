/**
 * ViT / DeiT / ResFormer presets and behaviours beyond the golden fixtures: parameter counts vs the
 * published ones, a forward+backward smoke test of every preset at two sizes, input-size errors,
 * identity of the pos-embed resampling at the stored grid, drop path and average pooling.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Tensor, grad, oneHot, reduceSum, softCrossEntropy } from '../../src/graph/index.ts';
import { Runtime, host, type HostTensor } from '../../src/graph/runtime.ts';
import { Params, countParams, initWeights, type Weights } from '../../src/nn/index.ts';
import { type VitConfig, createVit, dropPathKeep, vitPresets } from '../../src/models/vit.ts';
import { Rng } from '../../src/util/rng.ts';

const rt = new Runtime();

function randomImage(rng: Rng, shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal();
  return host(d, shape);
}

function feedsOf(w: Weights): Record<string, HostTensor> {
  return Object.fromEntries([...w].map(([k, v]) => [k, host(v.data, v.shape)]));
}

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

test('parameter counts match the published ViT-Ti / DeiT-S / ViT-B (1000 classes)', () => {
  // timm vit_{tiny,small,base}_patch16_224: 5,717,416 / 22,050,664 / 86,567,656 (5.7M / 22.1M / 86.6M)
  assert.equal(countParams(createVit('vit-tiny').paramInfos()), 5_717_416);
  assert.equal(countParams(createVit('vit-small').paramInfos()), 22_050_664);
  assert.equal(countParams(createVit('vit-base').paramInfos()), 86_567_656);
});

test('ResFormer counts = ViT counts - learned pos_embed + GPE conv + one LPE conv per block', () => {
  for (const size of ['tiny', 'small', 'base']) {
    const vit = createVit(`vit-${size}`).config;
    const C = vit.embedDim;
    const hd = C / vit.numHeads;
    const expected = countParams(createVit(`vit-${size}`).paramInfos()) - 197 * C + (9 * C + C) + vit.depth * (9 * hd + hd);
    const infos = createVit(`resformer-${size}`).paramInfos();
    assert.equal(countParams(infos), expected, `resformer-${size}`);
    assert.ok(infos.has('pos_embed.embed_layer.weight') && infos.has('blocks.11.attn.get_v.bias') && !infos.has('pos_embed'));
  }
  // GPE/LPE are tiny: ResFormer-T/S/B stay within 0.2M parameters of their DeiT layouts
  // (5.69M / 22.0M / 86.4M here, vs 5.72M / 22.1M / 86.6M).
  for (const size of ['tiny', 'small', 'base']) {
    const d = countParams(createVit(`resformer-${size}`).paramInfos()) - countParams(createVit(`vit-${size}`).paramInfos());
    assert.ok(d < 0 && d > -2e5, `resformer-${size} differs from vit-${size} by ${d}`);
  }
});

test('official state-dict names of a timm ViT', () => {
  const names = [...createVit('vit-tiny', { depth: 1 }).paramInfos().keys()];
  assert.deepEqual(names, [
    'patch_embed.proj.weight', 'patch_embed.proj.bias', 'cls_token', 'pos_embed',
    'blocks.0.norm1.weight', 'blocks.0.norm1.bias', 'blocks.0.attn.qkv.weight', 'blocks.0.attn.qkv.bias',
    'blocks.0.attn.proj.weight', 'blocks.0.attn.proj.bias', 'blocks.0.norm2.weight', 'blocks.0.norm2.bias',
    'blocks.0.mlp.fc1.weight', 'blocks.0.mlp.fc1.bias', 'blocks.0.mlp.fc2.weight', 'blocks.0.mlp.fc2.bias',
    'norm.weight', 'norm.bias', 'head.weight', 'head.bias',
  ]);
  const infos = createVit('vit-tiny', { depth: 1 }).paramInfos();
  assert.equal(infos.get('pos_embed')!.decay, false);
  assert.equal(infos.get('cls_token')!.decay, false);
  assert.equal(infos.get('blocks.0.attn.qkv.weight')!.decay, true);
});

/** Sizes per preset: the default one and a non-square one (two patches off on each side). */
function otherSize(cfg: VitConfig): [number, number] {
  const p = cfg.patchSize;
  return [cfg.imgSize[0] - 2 * p, cfg.imgSize[1] + 2 * p];
}

// Presets deeper than 6 blocks (the Ti/S/B layouts, 12 blocks) run at depth 1 to keep each case
// at a second or two; every block has the same structure, and the counts above use the full depth.
for (const [name, preset] of Object.entries(vitPresets)) {
  const reduced = preset.depth > 6;
  const model = createVit(name, reduced ? { depth: 1 } : {});
  for (const [H, W] of [model.config.imgSize, otherSize(model.config)]) {
    test(`smoke: ${name}${reduced ? ' (depth 1)' : ''} forward+backward at ${H}x${W}`, async () => {
      const cfg = model.config;
      const rng = new Rng(`${name}-${H}x${W}`);
      const weights = initWeights(model.paramInfos(), rng);
      const names = [...weights.keys()];
      const K = cfg.numClasses;
      const out = await rt.run(
        (i, g) => {
          const o = model.forward(new Params(g), i.x!, { train: true });
          const loss = softCrossEntropy(o.logits, i.target!);
          const gs = grad(loss, [i.x!, ...names.map((n) => i[n]!)]);
          const r: Record<string, Tensor> = { logits: o.logits, loss, gx: gs[0]! };
          names.forEach((n, k) => (r[`g${k}`] = gs[k + 1]!));
          return r;
        },
        { x: randomImage(rng, [1, cfg.inChans, H, W]), target: host(oneHot([1], K), [1, K]), ...feedsOf(weights) },
        `smoke-${name}-${reduced}`,
      );
      assert.deepEqual(out.logits!.shape, [1, K]);
      assert.ok(allFinite(out.logits!.data as Float32Array) && allFinite(out.loss!.data as Float32Array));
      assert.ok(maxAbs(out.gx!.data as Float32Array) > 0, 'the image gets a gradient');
      names.forEach((n, k) => {
        const gk = out[`g${k}`]!;
        assert.deepEqual(gk.shape, weights.get(n)!.shape, n);
        assert.ok(allFinite(gk.data as Float32Array), `${n} gradient is finite`);
      });
      // Parameters that must feel the loss at any size (the LPE is zero-initialised, so its
      // conv weight gets no gradient yet, and the cls row of a learned pos embed is always used).
      for (const n of ['head.weight', 'patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', cfg.posEmbed === 'learned' ? 'pos_embed' : 'cls_token']) {
        assert.ok(maxAbs(out[`g${names.indexOf(n)}`]!.data as Float32Array) > 0, `${n} gets a gradient at ${H}x${W}`);
      }
    });
  }
}

test('a size that is not a multiple of the patch names the nearest sizes that work', () => {
  const m = createVit('vit-tiny');
  assert.throws(() => m.checkInputSize(225, 200), /input 225x200.*multiples of 16.*H 224 or 240, W 192 or 208/);
  assert.throws(() => m.checkInputSize(8, 224), /H 16 or 32/);
  m.checkInputSize(288, 224);
  m.checkInputSize(16, 400);
});

test('forward rejects a bad size while tracing, with the same message', async () => {
  const m = createVit('vit-mini-p4');
  const w = initWeights(m.paramInfos(), new Rng(1));
  await assert.rejects(
    rt.run((i, g) => ({ y: m.forward(new Params(g, w), i.x!).logits }), { x: host(new Float32Array(3 * 30 * 32), [1, 3, 30, 32]) }),
    /input 30x32.*H 28 or 32, W 32 or 36/,
  );
});

test('the learned pos embed at its stored grid is used as stored (resampling to the same grid is the identity)', async () => {
  // square and non-square stored grids; at another grid it must change
  for (const imgSize of [[32, 32], [24, 40]] as [number, number][]) {
    const m = createVit('vit-mini-p4', { imgSize, depth: 1 });
    const w = initWeights(m.paramInfos(), new Rng(3));
    const stored = w.get('pos_embed')!.data;
    const run = async (H: number, W: number): Promise<Float32Array> => {
      const o = await rt.run((i, g) => ({ pos: m.forward(new Params(g, w), i.x!).aux.pos_embed_tokens! }), { x: host(new Float32Array(3 * H * W), [1, 3, H, W]) });
      return o.pos!.data as Float32Array;
    };
    const same = await run(...imgSize);
    assert.deepEqual(Array.from(same), Array.from(stored), `identity at ${imgSize}`);
    const other = await run(imgSize[0] + 8, imgSize[1]);
    assert.equal(other.length, stored.length + 2 * (imgSize[1] / 4) * 96);
    // the cls row is kept as is; the grid rows are resampled
    assert.deepEqual(Array.from(other.subarray(0, 96)), Array.from(stored.subarray(0, 96)));
  }
});

test('drop path: all-zero masks make every block the identity; timm linspace keep rates', async () => {
  const m = createVit('vit-mini-p4', { dropPathRate: 0.2, depth: 3 });
  assert.deepEqual(dropPathKeep(m.config).map((v) => +v.toFixed(6)), [1, 0.9, 0.8]);
  const w = initWeights(m.paramInfos(), new Rng(5));
  const x = randomImage(new Rng(6), [2, 3, 32, 32]);
  const out = await rt.run(
    (i, g) => {
      const masks = [0, 1, 2].map(() => g.constant(new Float32Array(2), [2, 1, 1]));
      const o = m.forward(new Params(g, w), i.x!, { train: true, dropPathMasks: masks });
      const free = m.forward(new Params(g, w), i.x!, { train: false, dropPathMasks: masks });
      return { b0: o.aux['block.0']!, b2: o.aux['block.2']!, pos: o.aux.pos_embed_tokens!, free: free.aux['block.2']! };
    },
    { x },
  );
  assert.deepEqual(Array.from(out.b0!.data as Float32Array), Array.from(out.b2!.data as Float32Array));
  // in eval mode the masks are ignored
  assert.ok(maxAbs(Float32Array.from(out.free!.data as Float32Array, (v, k) => v - (out.b2!.data as Float32Array)[k]!)) > 1e-3);
  await assert.rejects(
    rt.run((i, g) => ({ y: m.forward(new Params(g, w), i.x!, { train: true, dropPathMasks: [g.constant(new Float32Array(2), [2, 1, 1])] }).logits }), { x }),
    /dropPathMasks has 1 entries; give 3 .* or 6/,
  );
});

test('global average pooling without a class token uses fc_norm (timm use_fc_norm)', async () => {
  const m = createVit('vit-mini-p4', { classToken: false, globalPool: 'avg', depth: 1 });
  const infos = m.paramInfos();
  assert.ok(!infos.has('cls_token') && !infos.has('norm.weight') && infos.has('fc_norm.weight'));
  assert.deepEqual(infos.get('pos_embed')!.shape, [1, 64, 96]);
  const w = initWeights(infos, new Rng(7));
  const out = await rt.run((i, g) => {
    const o = m.forward(new Params(g, w), i.x!);
    return { logits: o.logits, s: reduceSum(o.aux.tokens!) };
  }, { x: randomImage(new Rng(8), [1, 3, 16, 20]) });
  assert.deepEqual(out.logits!.shape, [1, 10]);
  assert.throws(() => createVit('vit-mini-p4', { classToken: false }).paramInfos(), /globalPool 'token' needs classToken/);
});

test('createVit validates configs and names the presets', () => {
  assert.throws(() => createVit('vit-huge'), /unknown preset 'vit-huge' \(known: vit-tiny, /);
  assert.throws(() => createVit('vit-tiny', { numHeads: 5 }), /embedDim 192 is not divisible by numHeads 5/);
  assert.throws(() => createVit('vit-tiny', { imgSize: [100, 224] }), /imgSize 100x224 must be a multiple of patchSize 16/);
  assert.throws(() => createVit('resformer-mini-p4', { embedDim: 90, numHeads: 3 }), /needs embedDim divisible by 4/);
  assert.equal(createVit('resformer-tiny').family, 'resformer');
  assert.equal(createVit('vit-tiny').family, 'vit');
  // presets are data: overriding does not mutate the table
  createVit('vit-tiny', { imgSize: [32, 32], patchSize: 8 });
  assert.deepEqual(vitPresets['vit-tiny']!.imgSize, [224, 224]);
});
