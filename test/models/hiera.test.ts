/**
 * Hiera: token orders, the block plan, parameter counts, size errors, position embeddings at new
 * sizes, and our mask-unit-contiguous forward against a restatement of the official token order
 * (hiera.py as written: window index fastest, pooling over view(B, 4, N/4, C)) at non-square sizes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Tensor, add, concat, conv2d, gather, reduceMax, reduceMean, reshape, transpose } from '../../src/graph/index.ts';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { type ParamInfo, Params, type Weights, countParams } from '../../src/nn/params.ts';
import { layerNorm, linear, mlp, sdpa } from '../../src/nn/layers.ts';
import { Rng } from '../../src/util/rng.ts';
import {
  type HieraConfig, type HieraModel, createHiera, hieraOrder, hieraPlan, invertPermutation, patchGrid, unrollIndex,
} from '../../src/models/hiera.ts';
import { absWinEmbed, grid, gridToTokens, resample2d, tokensToGrid } from '../../src/posembed/index.ts';
import { resampleGrid, tokensToGrid as tokensToGridG } from '../../src/posembed/graph.ts';
import { fixturesDir } from '../../src/fixtures.ts';

const rt = new Runtime();

// ------------------------------------------------------------------ literal restatements of hiera_utils.py

/** numpy-style transpose of a flat array viewed as `shape`. */
function permuteFlat(data: Int32Array, shape: number[], perm: number[]): Int32Array {
  const rank = shape.length;
  const strides: number[] = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  assert.equal(s, data.length);
  const oshape = perm.map((p) => shape[p]!);
  const out = new Int32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d]! * strides[perm[d]!]!;
    out[o] = data[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < oshape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** hiera_utils.py `Unroll.forward` on token ids (B = 1, C dropped): returns seq[n_off] = row-major id. */
function officialUnroll(h: number, w: number, S: [number, number], steps: number): Int32Array {
  let data: Int32Array = Int32Array.from({ length: h * w }, (_, i) => i);
  let B = 1;
  let cur = [h, w];
  for (let k = 0; k < steps; k++) {
    cur = [cur[0]! / S[0], cur[1]! / S[1]];
    data = permuteFlat(data, [B, cur[0]!, S[0], cur[1]!, S[1]], [0, 2, 4, 1, 3]); // [B, Sy, Sx, H/Sy, W/Sx]
    B *= S[0] * S[1];
  }
  return data;
}

/** hiera_utils.py `Reroll.forward` (no mask) + `undo_windowing`: official-order seq -> row-major grid. */
function officialReroll(seq: Int32Array, hs: number, ws: number, S: [number, number], steps: number): Int32Array {
  let data: Int32Array = seq;
  let N = seq.length;
  const mu = [1, 1];
  for (let k = 0; k < steps; k++) {
    // [B, Sy, Sx, N/(SySx), MUy, MUx] -> [B, N/(SySx), Sy, MUy, Sx, MUx]
    data = permuteFlat(data, [1, S[0], S[1], N / (S[0] * S[1]), mu[0]!, mu[1]!], [0, 3, 1, 4, 2, 5]);
    mu[0]! *= S[0];
    mu[1]! *= S[1];
    N /= S[0] * S[1];
  }
  // [B, #MUy, #MUx, MUy, MUx] -> [B, #MUy, MUy, #MUx, MUx]
  return permuteFlat(data, [1, hs / mu[0]!, ws / mu[1]!, mu[0]!, mu[1]!], [0, 1, 3, 2, 4]);
}

const GRIDS: [number, number, [number, number], number][] = [
  [8, 8, [2, 2], 3],
  [16, 24, [2, 2], 3],
  [56, 56, [2, 2], 3],
  [12, 20, [2, 2], 2],
  [8, 16, [1, 2], 3],
];

test('unrollIndex equals a literal restatement of the official Unroll (square, non-square, anisotropic strides)', () => {
  for (const [h, w, S, steps] of GRIDS) {
    const seq = officialUnroll(h, w, S, steps);
    const idx = unrollIndex(h, w, S, steps);
    for (let n = 0; n < seq.length; n++) assert.equal(idx[seq[n]!], n, `${h}x${w} stride ${S} steps ${steps}: token ${seq[n]}`);
  }
});

test('the official Reroll inverts the unroll of every stage grid', () => {
  for (const [h, w, S, steps] of GRIDS) {
    for (let pools = 0; pools <= steps; pools++) {
      const hs = h / S[0] ** pools;
      const ws = w / S[1] ** pools;
      const seq = invertPermutation(unrollIndex(hs, ws, S, steps - pools)); // seq[n_off] = g
      const back = officialReroll(seq, hs, ws, S, steps - pools);
      back.forEach((g, i) => assert.equal(g, i, `${hs}x${ws}: reroll misplaces token ${g}`));
    }
  }
});

test('max-pooling the official order over view(4, N/4) gives the unroll of the pooled grid', () => {
  for (const [h, w, S, steps] of GRIDS) {
    const off = unrollIndex(h, w, S, steps);
    const pooled = unrollIndex(h / S[0], w / S[1], S, steps - 1);
    const N = h * w;
    const q = S[0] * S[1];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        // Token (y, x) lands in pooled slot off mod N/q, which must be the pooled grid cell (y/Sy, x/Sx).
        const slot = off[y * w + x]! % (N / q);
        assert.equal(slot, pooled[Math.floor(y / S[0]) * (w / S[1]) + Math.floor(x / S[1])]);
      }
    }
  }
});

test('hieraOrder is a permutation whose inverse composes to the identity, with mask units contiguous', () => {
  for (const [h, w, S, steps] of GRIDS) {
    const N = h * w;
    for (const nw of [1, N / 64, N / 16].filter((v) => Number.isInteger(v) && v >= 1)) {
      const ord = hieraOrder(h, w, S, steps, nw);
      const inv = invertPermutation(ord);
      for (let g = 0; g < N; g++) assert.equal(inv[ord[g]!], g);
      for (let n = 0; n < N; n++) assert.equal(ord[inv[n]!], n);
    }
  }
  // With one 8x8 mask unit per 8x8 block, internal positions 64u..64u+63 are exactly mask unit u.
  const ord = hieraOrder(16, 24, [2, 2], 3, 6);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 24; x++) assert.equal(Math.floor(ord[y * 24 + x]! / 64), Math.floor(y / 8) * 3 + Math.floor(x / 8));
  }
  assert.throws(() => invertPermutation([0, 0, 1]), /not a permutation/);
  assert.throws(() => unrollIndex(12, 12, [2, 2], 3), /not divisible/);
});

// ------------------------------------------------------------------ plan, counts, errors

test('the block plan matches the fixtures\' per-block records (lag of one block, pooled window sizes)', () => {
  const dir = fixturesDir();
  for (const [file, cfg] of [
    ['hiera_tiny_224_narrow.json', createHiera('hiera-tiny', { embedDim: 24, numClasses: 10 }).config],
    ['timm_hiera_small_abswin_narrow_256.json', createHiera('hiera-small-abswin', { embedDim: 24, numClasses: 10 }).config],
  ] as const) {
    const p = path.join(dir, file);
    assert.ok(fs.existsSync(p), `fixture ${p} is missing (set ANYRES_FIXTURES)`);
    const blocks = (JSON.parse(fs.readFileSync(p, 'utf8')) as { blocks: Record<string, number | boolean>[] }).blocks;
    const plan = hieraPlan(cfg);
    assert.equal(plan.blocks.length, blocks.length);
    blocks.forEach((b, i) => {
      const ours = plan.blocks[i]!;
      assert.deepEqual(
        [ours.dim, ours.dimOut, ours.heads, ours.qStride, ours.windowSize, ours.useMaskUnitAttn],
        [b.dim, b.dim_out, b.heads, b.q_stride_flat, b.window_size_flat, b.use_mask_unit_attn],
        `${file} block ${i}`,
      );
    });
  }
});

test('parameter counts: the official table (timm model cards) and the exact hiera_tiny_224(num_classes=10)', () => {
  // Published sizes in millions at 1000 classes (Hiera paper Table 1 / timm): T 27.9, S 35.0, B 51.5,
  // B+ 69.9, L 213.7, H 672.8; timm hiera_small_abswin_256: 34.4.
  const table: [string, number][] = [
    ['hiera-tiny', 27.9], ['hiera-small', 35.0], ['hiera-base', 51.5], ['hiera-base-plus', 69.9],
    ['hiera-large', 213.7], ['hiera-huge', 672.8], ['hiera-small-abswin', 34.4],
  ];
  for (const [name, millions] of table) {
    const n = countParams(createHiera(name).paramInfos());
    assert.equal(Math.round(n / 1e5) / 10, millions, `${name}: ${n} parameters`);
  }
  // hiera_tiny_224.json: "num_parameters": 27148906 for num_classes=10.
  const p = path.join(fixturesDir(), 'hiera_tiny_224.json');
  const expected = fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as { weights: { num_parameters: number } }).weights.num_parameters : 27148906;
  assert.equal(countParams(createHiera('hiera-tiny', { numClasses: 10 }).paramInfos()), expected);
});

test('official parameter names and decay groups', () => {
  const infos = createHiera('hiera-tiny').paramInfos();
  for (const k of ['pos_embed', 'patch_embed.proj.weight', 'blocks.1.proj.weight', 'blocks.11.mlp.fc2.bias', 'norm.weight', 'head.projection.weight']) {
    assert.ok(infos.has(k), `missing ${k}`);
  }
  assert.equal(infos.get('pos_embed')!.decay, false);
  assert.equal(infos.get('blocks.0.attn.qkv.weight')!.decay, true);
  const timm = createHiera('hiera-small-abswin').paramInfos();
  for (const k of ['pos_embed', 'pos_embed_win', 'blocks.0.ls1.gamma', 'head.norm.weight', 'head.fc.weight']) assert.ok(timm.has(k), `missing ${k}`);
  assert.deepEqual(timm.get('pos_embed')!.shape, [1, 96, 16, 16]);
  assert.ok(!timm.has('blocks.1.proj.weight'), 'timm abs-win expands without a projection');
  assert.equal(timm.get('blocks.0.ls1.gamma')!.decay, false);
  assert.ok(createHiera('hiera-tiny', { posEmbed: 'abswin' }).paramInfos().has('pos_embed_window'));
});

test('unsupported sizes raise an error naming the nearest sizes that work', () => {
  const m = createHiera('hiera-tiny');
  assert.doesNotThrow(() => m.checkInputSize(224, 224));
  assert.doesNotThrow(() => m.checkInputSize(256, 192));
  assert.throws(() => m.checkInputSize(230, 224), /H must be a multiple of 32.*H 224 or 256/);
  assert.throws(() => m.checkInputSize(224, 100), /W 96 or 128/);
  assert.throws(() => createHiera('hiera-tiny', { qPool: 4 }), /qPool 4/);
  assert.throws(() => createHiera('nope'), /unknown preset 'nope'.*hiera-tiny/);
  assert.throws(() => createHiera('hiera-mini', { expandProj: false, dimMul: 3 }), /dimMul must be 2/);
});

// ------------------------------------------------------------------ weights for numerical tests

/** Random weights where every term matters (norm weights around 1, biases and embeddings not zero). */
function randomWeights(infos: ReadonlyMap<string, ParamInfo>, seed: number): Weights {
  const rng = new Rng(seed);
  const w: Weights = new Map();
  for (const info of infos.values()) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    const fanIn = info.shape.length >= 2 ? n / info.shape[0]! : 1;
    const isNorm = /norm\d?\.weight$|gamma$/.test(info.name);
    const isPos = info.name.startsWith('pos_embed');
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      d[i] = isNorm ? 1 + 0.1 * z : isPos ? 0.5 * z : info.shape.length >= 2 ? z / Math.sqrt(fanIn) : 0.05 * z;
    }
    w.set(info.name, { data: d, shape: [...info.shape] });
  }
  return w;
}

function feeds(x: Float32Array, xShape: number[], w: Weights): Record<string, { data: Float32Array; shape: number[] }> {
  const f: Record<string, { data: Float32Array; shape: number[] }> = { __x: { data: x, shape: xShape } };
  for (const [k, v] of w) f[k] = { data: v.data, shape: v.shape };
  return f;
}

const image = (B: number, C: number, H: number, W: number, seed: number): Float32Array => {
  const r = new Rng(seed);
  return Float32Array.from({ length: B * C * H * W }, () => r.normal());
};

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// ------------------------------------------------------------------ position embeddings at new sizes

test('absolute: a 224 model runs at 256 with its pos_embed bicubic-interpolated (the paper\'s baseline), unchanged at 224', async () => {
  const m = createHiera('hiera-mini', { inputSize: [64, 64] });
  const w = randomWeights(m.paramInfos(), 1);
  const stored = w.get('pos_embed')!.data; // [1, 16*16, 32]
  for (const S of [64, 96]) {
    const out = await rt.run((i, g) => ({ pe: m.forward(new Params(g), i.__x!).aux.pos_embed_tokens! }), feeds(image(1, 3, S, S, 2), [1, 3, S, S], w));
    const g = S / 4;
    const ref = gridToTokens(resample2d(tokensToGrid(stored, 32, 16, 16), 32, 16, 16, g, g, 'bicubic'), 32, g, g);
    assert.ok(maxAbs(out.pe!.data as Float32Array, ref) < 1e-5, `pos embed at ${S}`);
    if (S === 64) assert.equal(maxAbs(out.pe!.data as Float32Array, stored), 0);
  }
});

test('abswin at a multiple of the window equals the official construction (sam2/timm tile + interpolate), and runs at other sizes', async () => {
  for (const [name, over] of [['hiera-mini-abswin', {}], ['hiera-mini-abswin', { globalResample: 'bicubic_aa' as const, naming: 'timm' as const }]] as const) {
    const m = createHiera(name, over);
    const w = randomWeights(m.paramInfos(), 3);
    const winName = m.config.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window';
    const glob = grid(w.get('pos_embed')!.data, 32, 4, 4);
    const win = grid(w.get(winName)!.data, 32, 8, 8);
    for (const [H, W] of [[64, 64], [96, 64], [128, 96]]) {
      const out = await rt.run((i, g) => ({ pe: m.forward(new Params(g), i.__x!).aux.pos_embed_tokens! }), feeds(image(1, 3, H, W, 4), [1, 3, H, W], w));
      const ref = absWinEmbed(glob, win, H / 4, W / 4, { globalMode: m.config.globalResample, cropRule: 'official' });
      assert.ok(maxAbs(out.pe!.data as Float32Array, gridToTokens(ref.data, 32, H / 4, W / 4)) < 1e-5, `${name} ${JSON.stringify(over)} at ${H}x${W}`);
    }
  }
});

test('hiera-tiny (absolute, 224) and hiera-small-abswin (256) run at another size', async () => {
  for (const [name, S] of [['hiera-tiny', 256], ['hiera-small-abswin', 224]] as const) {
    const m = createHiera(name, { stages: [1, 1, 1, 1], numClasses: 5 }); // depth reduced: this checks sizes, not depth
    const w = randomWeights(m.paramInfos(), 5);
    const out = await rt.run((i, g) => {
      const o = m.forward(new Params(g), i.__x!);
      return { logits: o.logits, i3: o.aux['intermediates.3']! };
    }, feeds(image(1, 3, S, S, 6), [1, 3, S, S], w));
    assert.deepEqual(out.logits!.shape, [1, 5]);
    assert.deepEqual(out.i3!.shape, [1, S / 32, S / 32, 768]);
    assert.ok(Array.from(out.logits!.data as Float32Array).every(Number.isFinite));
  }
});

// ------------------------------------------------------------------ official token order, restated

/**
 * hiera.py's forward as written, on the graph: unroll to the official order, MaskUnitAttention with
 * `reshape(B, -1, nw, 3, heads, hd).permute(3, 0, 4, 2, 1, 5)`, pooling by `view(B, qs, N/qs, C).max(1)`,
 * Reroll at stage ends. Position embedding: absolute, resampled like ours (not under test here).
 */
function officialOrderForward(p: Params, x: Tensor, model: HieraModel): { logits: Tensor; inter: Tensor[] } {
  const cfg = model.config;
  const plan = model.plan;
  const [B, , H, W] = x.shape as [number, number, number, number];
  const [h, w] = patchGrid(cfg, H, W);
  const C = cfg.embedDim;
  const feat = conv2d(x, p.param('patch_embed.proj.weight', [C, 3, 7, 7], { kind: 'zeros' }), p.param('patch_embed.proj.bias', [C], { kind: 'zeros' }), { stride: 4, padding: 3 });
  const [h0, w0] = patchGrid(cfg, cfg.inputSize[0], cfg.inputSize[1]);
  const pos = resampleGrid(tokensToGridG(p.param('pos_embed', [1, h0 * w0, C], { kind: 'zeros' }), h0, w0), h, w, 'bicubic');
  let t = transpose(reshape(add(feat, pos), [B, C, h * w]), [0, 2, 1]); // row-major [B, N, C]
  t = gather(t, 1, Array.from(invertPermutation(unrollIndex(h, w, cfg.qStride, plan.numUnrolls))));
  const maxPool = (v: Tensor, qs: number): Tensor => {
    const [b, n, c] = v.shape as [number, number, number];
    return qs === 1 ? v : reduceMax(reshape(v, [b, qs, n / qs, c]), 1);
  };
  const inter: Tensor[] = [];
  let stage = 0;
  for (const b of plan.blocks) {
    const q = p.scope(`blocks.${b.index}.`);
    const N = t.shape[1]!;
    const xn = layerNorm(q, 'norm1', t, 1e-6);
    let res = t;
    if (b.dim !== b.dimOut) {
      res = cfg.expandProj
        ? maxPool(linear(q, 'proj', xn, b.dim, b.dimOut), b.qStride)
        : concat([maxPool(t, b.qStride), reduceMean(reshape(t, [B, b.qStride, N / b.qStride, b.dim]), 1)], -1);
    }
    const nw = b.useMaskUnitAttn ? N / (b.qStride * b.windowSize) : 1;
    const hd = b.dimOut / b.heads;
    const qkv = transpose(reshape(linear(q, 'attn.qkv', xn, b.dim, 3 * b.dimOut), [B, N / nw, nw, 3, b.heads, hd]), [3, 0, 4, 2, 1, 5]);
    const part = (i: number) => reshape(gather(qkv, 0, [i]), [B, b.heads, nw, N / nw, hd]);
    let qq = part(0);
    if (b.qStride > 1) qq = reduceMax(reshape(qq, [B, b.heads, nw, b.qStride, N / nw / b.qStride, hd]), 3);
    const o = sdpa(qq, part(1), part(2), hd ** -0.5); // [B, heads, nw, Tq, hd]
    const merged = reshape(transpose(o, [0, 3, 2, 1, 4]), [B, N / b.qStride, b.dimOut]); // x.transpose(1, 3)
    t = add(res, linear(q, 'attn.proj', merged, b.dimOut, b.dimOut));
    t = add(t, mlp(q, 'mlp', layerNorm(q, 'norm2', t, 1e-6), b.dimOut, b.dimOut * cfg.mlpRatio));
    if (plan.stageEnds.includes(b.index)) {
      const pools = Math.min(stage, cfg.qPool);
      const hs = h / cfg.qStride[0] ** pools;
      const ws = w / cfg.qStride[1] ** pools;
      inter.push(reshape(gather(t, 1, Array.from(unrollIndex(hs, ws, cfg.qStride, plan.numUnrolls - pools))), [B, hs, ws, b.dimOut]));
      stage++;
    }
  }
  const pre = layerNorm(p, 'norm', reduceMean(t, 1), 1e-6);
  return { logits: linear(p, 'head.projection', pre, plan.numFeatures, cfg.numClasses), inter };
}

test('our mask-unit-contiguous forward equals the official token order at non-square sizes and other layouts', async () => {
  const variants: [string, Partial<HieraConfig>, [number, number]][] = [
    ['mini 64x96', {}, [64, 96]],
    ['mini 96x64, all mask-unit attention, 2 heads', { maskUnitAttn: [true, true, true, true], numHeads: 2 }, [96, 64]],
    ['mini q_pool 2 (stage 4 widens without pooling)', { qPool: 2 }, [64, 128]],
    ['mini, window attention off in stage 1', { maskUnitAttn: [false, true, false, false] }, [64, 64]],
  ];
  for (const [label, over, [H, W]] of variants) {
    const m = createHiera('hiera-mini', over);
    const w = randomWeights(m.paramInfos(), 7);
    const out = await rt.run((i, g) => {
      const ours = m.forward(new Params(g), i.__x!);
      const ref = officialOrderForward(new Params(g), i.__x!, m);
      const o: Record<string, Tensor> = { a: ours.logits, b: ref.logits };
      ref.inter.forEach((t, s) => {
        o[`ia${s}`] = ours.aux[`intermediates.${s}`]!;
        o[`ib${s}`] = t;
      });
      return o;
    }, feeds(image(2, 3, H, W, 8), [2, 3, H, W], w));
    assert.ok(maxAbs(out.a!.data as Float32Array, out.b!.data as Float32Array) < 1e-4, `${label}: logits`);
    for (let s = 0; s < 4; s++) {
      assert.deepEqual(out[`ia${s}`]!.shape, out[`ib${s}`]!.shape);
      assert.ok(maxAbs(out[`ia${s}`]!.data as Float32Array, out[`ib${s}`]!.data as Float32Array) < 1e-4, `${label}: stage ${s}`);
    }
  }
});

test('drop path: wrong mask count is an error; all-ones masks at rate 0 change nothing', async () => {
  const m = createHiera('hiera-mini');
  const w = randomWeights(m.paramInfos(), 9);
  const depth = m.plan.blocks.length;
  const f = { ...feeds(image(2, 3, 64, 64, 10), [2, 3, 64, 64], w), __ones: host(new Float32Array(2).fill(1), [2, 1, 1]) };
  const out = await rt.run((i, g) => {
    const masks = Array.from({ length: 2 * depth }, () => i.__ones!);
    assert.throws(() => m.forward(new Params(g), i.__x!, { dropPathMasks: masks.slice(1) }), /dropPathMasks has/);
    return { a: m.forward(new Params(g), i.__x!).logits, b: m.forward(new Params(g), i.__x!, { dropPathMasks: masks }).logits };
  }, f);
  assert.equal(maxAbs(out.a!.data as Float32Array, out.b!.data as Float32Array), 0);
});
