import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cosineLr, layerDecayScales, layerId } from '../../src/train/schedule.ts';
import { cutmixBox, mixBatch, mixTargets, sampleBeta } from '../../src/train/mixup.ts';
import { WeightEma, emaDecay } from '../../src/train/ema.ts';
import { Rng } from '../../src/util/rng.ts';

test('warmup + cosine: linear ramp, peak at warmup end, half at the midpoint of the decay, min at the end', () => {
  const s = { baseLr: 1e-3, totalSteps: 110, warmupSteps: 10, minLr: 1e-5 };
  assert.equal(cosineLr(s, 0), 0);
  assert.ok(Math.abs(cosineLr(s, 5) - 5e-4) < 1e-15);
  assert.equal(cosineLr(s, 10), 1e-3);
  assert.ok(Math.abs(cosineLr(s, 60) - (1e-5 + 0.5 * (1e-3 - 1e-5))) < 1e-15);
  assert.ok(Math.abs(cosineLr(s, 110) - 1e-5) < 1e-15);
  for (let t = 11; t <= 110; t++) assert.ok(cosineLr(s, t) <= cosineLr(s, t - 1), `monotone decay at ${t}`);
  assert.throws(() => cosineLr({ baseLr: 1, totalSteps: 5, warmupSteps: 6 }, 0), /warmupSteps/);
});

test('layer-wise lr decay: head 1, block i decay^(depth-i), embeddings decay^(depth+1)', () => {
  const names = ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', 'blocks.11.mlp.fc2.bias', 'norm.weight', 'head.weight'];
  const s = layerDecayScales(names, 12, 0.65);
  assert.equal(layerId('blocks.3.norm1.weight', 12), 4);
  assert.equal(s.get('head.weight'), 1);
  assert.equal(s.get('norm.weight'), 1);
  assert.ok(Math.abs(s.get('blocks.11.mlp.fc2.bias')! - 0.65) < 1e-15);
  assert.ok(Math.abs(s.get('blocks.0.attn.qkv.weight')! - 0.65 ** 12) < 1e-15);
  assert.ok(Math.abs(s.get('pos_embed')! - 0.65 ** 13) < 1e-15);
  assert.ok(Math.abs(s.get('patch_embed.proj.weight')! - 0.65 ** 13) < 1e-15);
});

test('Beta sampler has the right mean and variance', () => {
  const rng = new Rng(1);
  for (const a of [0.2, 1, 0.8]) {
    let s = 0, s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = sampleBeta(rng, a, a);
      assert.ok(x >= 0 && x <= 1);
      s += x;
      s2 += x * x;
    }
    const mean = s / n;
    const v = s2 / n - mean * mean;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean} for a=${a}`);
    assert.ok(Math.abs(v - 1 / (4 * (2 * a + 1))) < 0.01, `var ${v} for a=${a}`);
  }
});

test('mixed targets sum to 1 per row and put lam on y, 1-lam on the flipped label', () => {
  const t = mixTargets([0, 1, 2, 3], 5, 0.7, 0.1);
  for (let i = 0; i < 4; i++) {
    let s = 0;
    for (let k = 0; k < 5; k++) s += t[i * 5 + k]!;
    assert.ok(Math.abs(s - 1) < 1e-6);
  }
  const off = 0.1 / 5, on = 1 - 0.1 + off;
  assert.ok(Math.abs(t[0]! - (0.7 * on + 0.3 * off)) < 1e-6);
  assert.ok(Math.abs(t[3]! - (0.3 * on + 0.7 * off)) < 1e-6); // sample 0's partner is sample 3
});

test('mixup: x = lam x + (1-lam) flip(x) at every resolution with one lambda', () => {
  const rng = new Rng(5);
  const B = 4;
  const a = Float32Array.from({ length: B * 3 * 8 * 8 }, (_, i) => Math.floor(i / (3 * 64)));
  const b = Float32Array.from({ length: B * 3 * 4 * 4 }, (_, i) => Math.floor(i / (3 * 16)));
  const r = mixBatch(rng, [a, b], [[B, 3, 8, 8], [B, 3, 4, 4]], [0, 1, 2, 3], { mixupAlpha: 0.8, numClasses: 4 });
  assert.equal(r.mode, 'mixup');
  assert.ok(r.lam > 0 && r.lam < 1);
  assert.ok(Math.abs(a[0]! - (1 - r.lam) * 3) < 1e-6);
  assert.ok(Math.abs(b[16 * 3 * 1 + 5]! - (r.lam * 1 + (1 - r.lam) * 2)) < 1e-6);
});

test('cutmix: pasted area equals the box, lambda corrected to 1 - area, targets consistent', () => {
  const rng = new Rng(11);
  const B = 2, H = 16, W = 16;
  let corrected = 0;
  for (let trial = 0; trial < 30; trial++) {
    const x = Float32Array.from({ length: B * 3 * H * W }, (_, i) => (i < 3 * H * W ? 0 : 1));
    const r = mixBatch(rng, [x], [[B, 3, H, W]], [0, 1], { cutmixAlpha: 1, numClasses: 2 });
    assert.equal(r.mode, 'cutmix');
    const [y0, y1, x0, x1] = r.box!;
    const area = (y1 - y0) * (x1 - x0);
    let pasted = 0;
    for (let i = 0; i < H * W; i++) pasted += x[i]!; // sample 0 is zeros, its partner ones
    assert.equal(pasted, area);
    assert.ok(Math.abs(r.lam - (1 - area / (H * W))) < 1e-12);
    assert.ok(Math.abs(r.targets[0]! - r.lam) < 1e-6 && Math.abs(r.targets[1]! - (1 - r.lam)) < 1e-6);
    // A box clipped at the border covers less than the drawn size: lambda was corrected upwards.
    if (y0 === 0 || x0 === 0 || y1 === H || x1 === W) corrected++;
  }
  const [a0, a1] = cutmixBox(new Rng(0), 10, 10, 0);
  assert.ok(a1 - a0 <= 10 && a0 >= 0);
  assert.ok(corrected > 0, 'some boxes were clipped at the border');
});

test('no mixing when prob is 0: images untouched, plain smoothed one-hot', () => {
  const x = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const copy = Float32Array.from(x);
  const r = mixBatch(new Rng(0), [x], [[2, 3, 2, 2]], [1, 0], { mixupAlpha: 1, cutmixAlpha: 1, prob: 0, numClasses: 2, labelSmoothing: 0.2 });
  assert.equal(r.mode, 'none');
  assert.deepEqual(x, copy);
  assert.ok(Math.abs(r.targets[1]! - 0.9) < 1e-6 && Math.abs(r.targets[0]! - 0.1) < 1e-6);
});

test('EMA (timm ModelEmaV3 get_decay): the first update copies, then d*ema + (1-d)*p; warm-up 1 - (1+s)^(-2/3) capped at decay', () => {
  const e = new WeightEma(new Map([['w', Float32Array.of(1, 2)]]), { decay: 0.9 });
  assert.equal(e.update(new Map([['w', Float32Array.of(3, 4)]]), 1), 0); // step 1: s = 0 -> decay 0
  assert.deepEqual([...e.weights.get('w')!], [3, 4]);
  assert.equal(e.update(new Map([['w', Float32Array.of(13, 4)]]), 2), 0.9);
  assert.ok(Math.abs(e.weights.get('w')![0]! - (0.9 * 3 + 0.1 * 13)) < 1e-6);
  // warm-up values computed by hand from timm's formula (gamma 1, power 2/3)
  assert.ok(Math.abs(emaDecay(2, { decay: 0.999, warmup: true }) - (1 - 2 ** (-2 / 3))) < 1e-15); // 0.370
  assert.ok(Math.abs(emaDecay(10, { decay: 0.999, warmup: true }) - 0.7845565309968) < 1e-9);
  assert.equal(emaDecay(100, { decay: 0.9, warmup: true }), 0.9); // 0.9536 capped at the target
  assert.equal(emaDecay(5, { decay: 0.9, warmup: true, updateAfterStep: 4 }), 0);
  assert.equal(emaDecay(3, { decay: 0.5, warmup: true, minDecay: 0.6 }), 0.6); // max(min(0.519, 0.5), 0.6)
  assert.throws(() => new WeightEma(new Map(), { decay: 1 }), /decay must be in \[0, 1\), got 1/);
});
