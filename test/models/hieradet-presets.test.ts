/**
 * Smoke tests over every HieraDet preset. At the default size (1024 px) each full-depth preset is
 * traced only (shapes of the 4 features). Forward + backward run on small inputs, 128x128 and the
 * non-square 100x132 (25x33 tokens: crop rule and odd pooled sizes), every preset at REDUCED DEPTH
 * (stages [1, 2, 3, 1], one global block in stage 3; widths, heads, windows and global embedding as
 * in the preset): compiling the full-depth backward graphs takes tens of seconds on 2 cores. The
 * full-depth tiny trunk runs in hieradet.test.ts against the sam2 fixtures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, Runtime, host, type Tensor, add, concat, grad, mul, reduceMean, reduceSum, reshape } from '../../src/graph/index.ts';
import { Params, initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { type HieraDet, createHieraDet } from '../../src/models/hieradet.ts';

const rt = new Runtime({ threads: 2 });

function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

const reduced: Record<string, boolean> = { 'hieradet-tiny': true, 'hieradet-small': true, 'hieradet-base-plus': true, 'hieradet-large': true };

for (const [name, cut] of Object.entries(reduced)) {
  test(`${name}: full depth traced at the default 1024x1024`, () => {
    const model = createHieraDet(name);
    const g = new Graph();
    const r = model.forward(new Params(g), g.input('x', [1, 3, 1024, 1024]));
    const C = model.config.embedDim;
    [256, 128, 64, 32].forEach((s, k) => assert.deepEqual(r.aux[`features.${k}`]!.shape, [1, C * 2 ** k, s, s]));
  });

  test(`${name}${cut ? ' at reduced depth (stages 1,2,3,1)' : ' (full depth)'}: forward + backward at 128x128 and 100x132`, async () => {
    const model = createHieraDet(name, cut ? { stages: [1, 2, 3, 1], globalAttBlocks: [4] } : {});
    const infos = model.paramInfos();
    const weights = initWeights(infos, new Rng(name));
    const names = [...infos.keys()];
    for (const [H, W] of [[128, 128], [100, 132]] as const) {
      const feeds: Record<string, ReturnType<typeof host>> = { x: host(randn(3 * H * W, new Rng(H * W)), [1, 3, H, W]) };
      for (const [n, v] of weights) feeds[n] = host(v.data, v.shape);
      const out = await rt.run(
        (i, g) => {
          const r = model.forward(new Params(g), i.x!);
          let loss: Tensor = reduceMean(mul(r.logits, r.logits));
          for (let k = 0; k < 3; k++) loss = add(loss, reduceMean(mul(r.aux[`features.${k}`]!, r.aux[`features.${k}`]!)));
          const grads = grad(loss, names.map((n) => g.inputs.find((t) => t.name === n)!));
          const o: Record<string, Tensor> = { loss, norms: concat(grads.map((gr) => reshape(reduceSum(mul(gr!, gr!)), [1])), 0) };
          for (let k = 0; k < 4; k++) o[`f${k}`] = r.aux[`features.${k}`]!;
          return o;
        },
        feeds,
        `hieradet-presets:${JSON.stringify(model.config)}:${H}x${W}`,
      );
      const [h, w] = [H / 4, W / 4];
      const C = model.config.embedDim;
      const sizes = [[h, w], [Math.floor(h / 2), Math.floor(w / 2)], [Math.floor(h / 4), Math.floor(w / 4)], [Math.floor(h / 8), Math.floor(w / 8)]];
      sizes.forEach(([a, b], k) => assert.deepEqual(out[`f${k}`]!.shape, [1, C * 2 ** k, a, b], `${name} features.${k}`));
      assert.ok(Number.isFinite((out.loss!.data as Float32Array)[0]!));
      const nd = out.norms!.data as Float32Array;
      names.forEach((n, k) => assert.ok(Number.isFinite(nd[k]!), `${name}: grad of ${n} is not finite`));
      for (const n of ['pos_embed', 'pos_embed_window', 'patch_embed.proj.weight', 'blocks.1.proj.weight', `blocks.${model.blocks.length - 1}.mlp.layers.1.weight`]) {
        assert.ok(nd[names.indexOf(n)]! > 0, `${name}: no gradient reaches ${n}`);
      }
    }
  });
}
