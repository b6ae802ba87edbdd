/**
 * Smoke test over every Hiera preset: forward + cross-entropy + backward at the preset's default
 * size and at one other size, with every parameter receiving a finite, nonzero gradient.
 *
 * To keep each test within a few seconds on 2 cores, batch 1, and presets bigger than Hiera-T run
 * with depth reduced to stages (1, 1, 1, 1) (every code path — pooling, width change, window and
 * global attention, abs-win — is still exercised; only the repetition count drops). Hiera-L/H
 * take their second size small (64x96).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Tensor, grad, oneHot, softCrossEntropy } from '../../src/graph/index.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { type ParamInfo, Params, type Weights } from '../../src/nn/params.ts';
import { type HieraConfig, createHiera, hieraPresets } from '../../src/models/hiera.ts';
import { createHieraVideo, hieraVideoPresets } from '../../src/models/hiera-video.ts';

const rt = new Runtime();

/** Per preset: overrides (depth) and the two sizes [H, W] to run. */
function planFor(name: string, cfg: HieraConfig): { over: Partial<HieraConfig>; sizes: [number, number][]; note: string } {
  const [H, W] = cfg.inputSize;
  if (name.startsWith('hiera-mini')) return { over: {}, sizes: [[H, W], [H + 32, W]], note: 'full depth' };
  if (name === 'hiera-tiny') return { over: {}, sizes: [[H, W], [H - 64, W - 32]], note: 'full depth' };
  const big = cfg.embedDim >= 144;
  return {
    over: { stages: [1, 1, 1, 1] },
    sizes: [[H, W], big ? [64, 96] : [H - 64, W - 32]],
    note: 'depth reduced to stages (1,1,1,1)',
  };
}

/**
 * Cheap deterministic weights (a 32-bit LCG, uniform with the variance of N(0, 1/fan_in)); the
 * seeded normal initialiser takes seconds for Hiera-H's 70M parameters, which this test does not need.
 */
function quickWeights(infos: ReadonlyMap<string, ParamInfo>, seed: number): Weights {
  let s = seed >>> 0;
  const w: Weights = new Map();
  for (const info of infos.values()) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    const fanIn = info.shape.length >= 2 ? n / info.shape[0]! : 1;
    const isNorm = /norm\d?\.weight$|gamma$/.test(info.name);
    const scale = isNorm ? 0.1 : info.shape.length >= 2 ? Math.sqrt(3 / fanIn) : 0.05;
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      d[i] = (isNorm ? 1 : 0) + scale * (s / 2147483648 - 1);
    }
    w.set(info.name, { data: d, shape: [...info.shape] });
  }
  return w;
}

for (const [name, preset] of Object.entries(hieraPresets)) {
  const { over, sizes, note } = planFor(name, preset);
  test(`${name} forward + backward at ${sizes.map((s) => s.join('x')).join(' and ')} (${note})`, async () => {
    const m = createHiera(name, { ...over, numClasses: 7 });
    const infos = m.paramInfos();
    const w = quickWeights(infos, name.length * 7919);
    const names = [...infos.keys()];
    for (const [H, W] of sizes) {
      const B = 1;
      const feeds: Record<string, { data: Float32Array; shape: number[] }> = {
        __x: host(Float32Array.from({ length: B * 3 * H * W }, (_, i) => Math.sin(i * 0.37)), [B, 3, H, W]) as { data: Float32Array; shape: number[] },
        __t: host(oneHot([4], 7), [B, 7]) as { data: Float32Array; shape: number[] },
      };
      for (const [k, v] of w) feeds[k] = v;
      const out = await rt.run((i, g) => {
        const o = m.forward(new Params(g), i.__x!, { train: true });
        const loss = softCrossEntropy(o.logits, i.__t!);
        const gs = grad(loss, names.map((n) => i[n]!));
        const r: Record<string, Tensor> = { loss, logits: o.logits };
        gs.forEach((t, j) => (r[`g:${names[j]}`] = t));
        return r;
      }, feeds);
      assert.deepEqual(out.logits!.shape, [B, 7]);
      assert.ok(Number.isFinite(out.loss!.data[0] as number));
      for (const n of names) {
        const gd = out[`g:${n}`]!.data as Float32Array;
        assert.ok(gd.every(Number.isFinite), `${name} ${H}x${W}: gradient of ${n} is not finite`);
        assert.ok(gd.some((v) => v !== 0), `${name} ${H}x${W}: ${n} receives no gradient`);
      }
    }
  });
}

for (const name of Object.keys(hieraVideoPresets)) {
  test(`${name} (video) forward + backward at 8x64x64 and 6x96x64 (depth reduced to stages (1,1,1,1), small clips)`, async () => {
    const m = createHieraVideo(name, { stages: [1, 1, 1, 1], numClasses: 7 });
    const infos = m.paramInfos();
    const C = m.config.embedDim;
    assert.deepEqual(infos.get('patch_embed.proj.weight')!.shape, [C, 3, 3, 7, 7]);
    // 16 frames, temporal kernel 3 / stride 2 / padding 1 -> 8 token frames (hiera_base_16x224)
    assert.deepEqual(infos.get('pos_embed_temporal')!.shape, [1, m.tokenFrames(m.config.inputFrames), C]);
    const w = quickWeights(infos, 17);
    const names = [...infos.keys()];
    for (const [T, H, W] of [[8, 64, 64], [6, 96, 64]] as const) {
      const feeds: Record<string, { data: Float32Array; shape: number[] }> = {
        __x: { data: Float32Array.from({ length: 3 * T * H * W }, (_, i) => Math.cos(i * 0.11)), shape: [1, 3, T, H, W] },
        __t: { data: oneHot([2], 7), shape: [1, 7] },
      };
      for (const [k, v] of w) feeds[k] = v;
      const out = await rt.run((i, g) => {
        const o = m.forward(new Params(g), i.__x!, { train: true });
        const gs = grad(softCrossEntropy(o.logits, i.__t!), names.map((n) => i[n]!));
        const r: Record<string, Tensor> = { i0: o.aux['intermediates.0']! };
        gs.forEach((t, j) => (r[`g:${names[j]}`] = t));
        return r;
      }, feeds);
      assert.deepEqual(out.i0!.shape, [1, m.tokenFrames(T), H / 4, W / 4, C]);
      for (const n of names) {
        const gd = out[`g:${n}`]!.data as Float32Array;
        assert.ok(gd.every(Number.isFinite) && gd.some((v) => v !== 0), `${T}x${H}x${W}: gradient of ${n}`);
      }
    }
  });
}
