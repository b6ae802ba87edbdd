/**
 * Smoke tests over every ViTDet preset. At the preset's default size (1024 px) the full-depth model
 * is traced only (shapes of every output and parameter; running it is far too slow for CI on 2
 * cores). Forward + backward run at REDUCED DEPTH for vitdet-b/l/h (2 blocks: one window block,
 * one global block, full width, the real window 14 and 1024-px rel-pos tables) on small inputs:
 * 128x128 (8x8 tokens: one padded window) and the non-square 96x160. vitdet-mini runs at full
 * depth in vitdet.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, Runtime, host, type Tensor, add, concat, grad, mul, reduceMean, reduceSum, reshape } from '../../src/graph/index.ts';
import { type ParamInfo, type Weights, Params, countParams } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { type VitDet, createVitDet } from '../../src/models/vitdet.ts';

const rt = new Runtime({ threads: 2 });

function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Backbone parameter counts (ViT only, no pyramid) of the MAE ViT-B/L/H these presets are built on. */
/**
 * Weights with each initialiser's scale from a fast integer hash (uniform with the init's std):
 * the seeded Gaussian initialiser costs seconds for the ~50M parameters of a 2-block ViT-H.
 */
function fastWeights(infos: Map<string, ParamInfo>, seed: number): Weights {
  const w: Weights = new Map();
  let s = seed >>> 0;
  for (const info of infos.values()) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    const init = info.init;
    const std = init.kind === 'normal' || init.kind === 'truncNormal' ? init.std : init.kind === 'fanIn' ? 1 / Math.sqrt(3 * init.fanIn) : 0;
    if (init.kind === 'ones') d.fill(1);
    else if (std > 0) {
      const a = std * Math.sqrt(3) * 2 / 4294967296;
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
        d[i] = (s - 2147483648) * a;
      }
    }
    w.set(info.name, { data: d, shape: [...info.shape] });
  }
  return w;
}

const backboneParams: Record<string, [number, number]> = {
  'vitdet-b': [85e6, 87e6],
  'vitdet-l': [302e6, 306e6],
  'vitdet-h': [630e6, 636e6],
};

for (const name of ['vitdet-b', 'vitdet-l', 'vitdet-h']) {
  test(`${name}: full depth traced at the default 1024x1024 (shapes, parameter count)`, () => {
    const model = createVitDet(name);
    const g = new Graph();
    const r = model.forward(new Params(g), g.input('x', [1, 3, 1024, 1024]));
    const C = model.config.embedDim;
    assert.deepEqual(r.logits.shape, [1, C, 64, 64]);
    for (const [k, s] of Object.entries({ p2: 256, p3: 128, p4: 64, p5: 32, p6: 16 })) assert.deepEqual(r.aux[k]!.shape, [1, 256, s, s], k);
    const infos = model.paramInfos();
    const vit = new Map([...infos].filter(([n]) => !n.startsWith('simfp_')));
    const [lo, hi] = backboneParams[name]!;
    const n = countParams(vit);
    assert.ok(n > lo && n < hi, `${name} backbone has ${n} parameters`);
  });

  test(`${name} at reduced depth 2 (window + global block): forward + backward at 128x128 and 96x160`, async () => {
    const model = createVitDet(name, { depth: 2, globalBlocks: [1] });
    const infos = model.paramInfos();
    const weights = fastWeights(infos, 1234);
    for (const [H, W] of [[128, 128], [96, 160]] as const) {
      const r = await forwardBackward(model, weights, H, W);
      assert.deepEqual(r.p2, [1, 256, H / 4, W / 4]);
      assert.deepEqual(r.p5, [1, 256, H / 32, W / 32]);
      assert.ok(Number.isFinite(r.loss));
      for (const [n, v] of r.gradNorms) assert.ok(Number.isFinite(v), `${name}: grad of ${n} is not finite`);
      for (const n of ['pos_embed', 'blocks.0.attn.rel_pos_h', 'blocks.1.attn.rel_pos_w', 'blocks.1.mlp.fc2.weight', 'simfp_2.3.weight', 'simfp_5.1.weight']) {
        assert.ok(r.gradNorms.get(n)! > 0, `${name}: no gradient reaches ${n}`);
      }
    }
  });
}

async function forwardBackward(
  model: VitDet, weights: Weights, H: number, W: number,
): Promise<{ loss: number; p2: number[]; p5: number[]; gradNorms: Map<string, number> }> {
  const names = [...weights.keys()];
  const feeds: Record<string, ReturnType<typeof host>> = { x: host(randn(3 * H * W, new Rng(H + W)), [1, 3, H, W]) };
  for (const [n, v] of weights) feeds[n] = host(v.data, v.shape);
  const out = await rt.run(
    (i, g) => {
      const r = model.forward(new Params(g), i.x!);
      let loss: Tensor = reduceMean(mul(r.logits, r.logits));
      for (const k of ['p2', 'p3', 'p4', 'p5', 'p6']) loss = add(loss, reduceMean(mul(r.aux[k]!, r.aux[k]!)));
      const grads = grad(loss, names.map((n) => g.inputs.find((t) => t.name === n)!));
      return { loss, p2: r.aux.p2!, p5: r.aux.p5!, norms: concat(grads.map((gr) => reshape(reduceSum(mul(gr!, gr!)), [1])), 0) };
    },
    feeds,
    `vitdet-presets:${JSON.stringify(model.config)}:${H}x${W}`,
  );
  const nd = out.norms!.data as Float32Array;
  return {
    loss: (out.loss!.data as Float32Array)[0]!, p2: out.p2!.shape, p5: out.p5!.shape,
    gradNorms: new Map(names.map((n, k) => [n, Math.sqrt(nd[k]!)])),
  };
}
