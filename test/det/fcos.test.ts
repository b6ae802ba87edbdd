/**
 * FCOS pieces: head output shapes at two sizes, target assignment against hand-computed cases,
 * NMS against a hand case, the loss functions against their formulas, and the gradient of the
 * whole FCOS loss against central differences (float64).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/graph/index.ts';
import { Params, collectParams } from '../../src/nn/params.ts';
import { fcosHead, flattenLevels } from '../../src/det/fcos.ts';
import { createDetector } from '../../src/det/detector.ts';
import { type FcosLevel, defaultScaleRanges, fcosTargets } from '../../src/det/fcos-targets.ts';
import { bceWithLogits, giouLossLtrb, sigmoidFocalLoss } from '../../src/det/losses.ts';
import { fcosLoss } from '../../src/det/fcos-loss.ts';
import { defaultFcosLoss } from '../../src/det/detector.ts';
import { boxIou, classwiseNms, decodeDetections } from '../../src/det/postprocess.ts';
import { groupNorm } from '../../src/nn/group-norm.ts';
import type { Detection } from '../../src/det/types.ts';

const rt = new F.Runtime({ threads: 1 });
after(() => rt.clear());

const tinyVitdet = { embedDim: 32, depth: 2, numHeads: 2, globalBlocks: [1], windowSize: 4, pretrainGrid: 4, imgSize: 64 };

test('head outputs: one cls/reg/ctr map per level at two sizes (non-square), ViTDet and HieraDet', () => {
  const dets = [
    createDetector({ backbone: { family: 'vitdet', config: 'vitdet-mini', overrides: tinyVitdet }, numClasses: 3, head: { numConvs: 1 } }),
    createDetector({ backbone: { family: 'hieradet', config: 'hieradet-mini' }, numClasses: 3, neck: { dim: 16 }, head: { numConvs: 1 } }),
  ];
  for (const det of dets) {
    for (const [H, W] of [[64, 64], [96, 160]] as [number, number][]) {
      const g = new F.Graph();
      const outs = det.forward(new Params(g), g.input('x', [2, 3, H, W]));
      assert.deepEqual(outs.map((o) => o.cls.shape), [8, 16, 32, 64].map((s) => [2, 3, Math.ceil(H / s), Math.ceil(W / s)]), `${det.spec.backbone.family} ${H}x${W}`);
      assert.deepEqual(outs.map((o) => o.reg.shape[1]), [4, 4, 4, 4]);
      assert.deepEqual(outs.map((o) => o.ctr.shape[1]), [1, 1, 1, 1]);
      assert.deepEqual(det.levels(H, W).map((l) => [l.stride, l.h, l.w]), outs.map((o, i) => [8 * 2 ** i, o.cls.shape[2], o.cls.shape[3]]));
    }
  }
  assert.throws(() => dets[0]!.levels(100, 64), /nearest sizes that work: 96 or 112 x 64/);
});

const level = (stride: number, h: number, w: number, range: [number, number] = [0, Infinity]): FcosLevel => ({ id: `s${stride}`, stride, h, w, range });

test('targets: a point inside two boxes takes the smaller; box and centre-ness targets', () => {
  const t = fcosTargets([[{ label: 0, box: [0, 0, 32, 32] }, { label: 1, box: [4, 4, 20, 20] }]], [level(8, 4, 4)], 2, { centerSampling: 0 });
  const N = 16;
  const at = (i: number, j: number): number => i * 4 + j; // point ((j+0.5)·8, (i+0.5)·8)
  const n = at(1, 1); // (12, 12): inside both
  assert.equal(t.matched[n], 1);
  assert.equal(t.cls[1 * N + n], 1);
  assert.equal(t.cls[0 * N + n], 0);
  assert.deepEqual([0, 1, 2, 3].map((c) => t.reg[c * N + n]), [1, 1, 1, 1]); // (8, 8, 8, 8) / 8
  assert.equal(t.ctr[n], 1);
  const m = at(3, 3); // (28, 28): only the big box: l,t,r,b = 28, 28, 4, 4
  assert.equal(t.matched[m], 0);
  assert.deepEqual([0, 1, 2, 3].map((c) => t.reg[c * N + m]), [3.5, 3.5, 0.5, 0.5]);
  assert.ok(Math.abs(t.ctr[m]! - 4 / 28) < 1e-6);
  assert.equal(t.numPos, 16);
  assert.equal(t.pos.reduce((a, b) => a + b, 0), 16);
});

test('targets: scale ranges send a large box to the coarse level only (torchvision ranges)', () => {
  assert.deepEqual(defaultScaleRanges([8, 16, 32]), [[0, 64], [64, 128], [128, Infinity]]);
  const levels = [level(8, 16, 16, [0, 64]), level(16, 8, 8, [64, Infinity])];
  const t = fcosTargets([[{ label: 0, box: [0, 0, 128, 100] }]], levels, 1, { centerSampling: 0 });
  let fine = 0;
  let coarse = 0;
  for (let n = 0; n < 256 + 64; n++) {
    if (!t.pos[n]) continue;
    // A positive's max distance must lie in its level's range.
    const s = n < 256 ? 8 : 16;
    const mx = Math.max(...[0, 1, 2, 3].map((c) => t.reg[c * 320 + n]!)) * s;
    if (n < 256) {
      fine++;
      assert.ok(mx < 64, `fine point ${n}: max distance ${mx}`);
    } else {
      coarse++;
      assert.ok(mx > 64, `coarse point ${n}: max distance ${mx}`);
    }
  }
  // A point at max distance < 64 from the sides of a 128-wide box cannot exist: all go coarse.
  assert.equal(fine, 0);
  assert.ok(coarse > 0);
});

test('targets: centre sampling keeps points within 1.5 strides of the centre; crowd regions are ignored', () => {
  const box = { label: 0, box: [0, 0, 64, 64] as [number, number, number, number] };
  const all = fcosTargets([[box]], [level(8, 8, 8)], 1, { centerSampling: 0 });
  assert.equal(all.numPos, 64);
  const cs = fcosTargets([[box]], [level(8, 8, 8)], 1, { centerSampling: 1.5 });
  // Centre 32; |(j+0.5)·8 − 32| < 12 holds for j = 3, 4 only (20 and 44 sit exactly at 12).
  assert.equal(cs.numPos, 4);
  assert.deepEqual([...cs.matched].flatMap((v, n) => (v === 0 ? [n] : [])), [27, 28, 35, 36]);
  const crowd = fcosTargets([[{ label: 0, box: [0, 0, 16, 16], iscrowd: true }, { label: 0, box: [32, 32, 64, 64] }]], [level(8, 8, 8)], 1, { centerSampling: 0 });
  assert.equal(crowd.clsWeight[0], 0); // (4, 4): inside the crowd box, background
  assert.equal(crowd.pos[0], 0);
  assert.equal(crowd.clsWeight[63], 1); // (60, 60): a positive of the other box
  assert.equal(crowd.pos[63], 1);
  assert.throws(() => fcosTargets([[{ label: 3, box: [0, 0, 8, 8] }]], [level(8, 2, 2)], 2), /label 3, outside 0\.\.1/);
});

test('NMS: same-class overlaps above the threshold are suppressed, other classes are not', () => {
  const d = (box: [number, number, number, number], score: number, label: number): Detection => ({ box, score, label });
  assert.ok(Math.abs(boxIou([0, 0, 10, 10], [1, 1, 11, 11]) - 81 / 119) < 1e-12);
  const dets = [d([1, 1, 11, 11], 0.8, 0), d([0, 0, 10, 10], 0.9, 0), d([0, 0, 10, 10], 0.7, 1), d([5, 0, 15, 10], 0.6, 0), d([30, 30, 40, 40], 0.5, 0)];
  const kept = classwiseNms(dets, 0.6);
  // IoU 81/119 = 0.68 > 0.6 -> suppressed; [5,0,15,10] vs [0,0,10,10] IoU 1/3 -> kept.
  assert.deepEqual(kept.map((k) => k.score), [0.9, 0.7, 0.6, 0.5]);
  assert.deepEqual(classwiseNms(dets, 0.7).map((k) => k.score), [0.9, 0.8, 0.7, 0.6, 0.5]);
});

test('decode: distances in strides around the point, clipped to the image, scored sqrt(σ(cls)·σ(ctr))', () => {
  const lv = [level(8, 2, 2)];
  const cls = new Float32Array(4).fill(-20);
  cls[3] = 2; // point (12, 12)
  const reg = new Float32Array(16).fill(1);
  reg[0 * 4 + 3] = 0.5;
  reg[2 * 4 + 3] = 3; // right edge 12 + 24 = 36 -> clipped to 16
  const ctr = new Float32Array(4).fill(0);
  const out = decodeDetections(cls, reg, ctr, lv, 1, [16, 16]);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.box, [8, 4, 16, 16]);
  assert.ok(Math.abs(out[0]!.score - Math.sqrt(0.5 / (1 + Math.exp(-2)))) < 1e-7);
});

test('losses: focal, BCE and GIoU equal their formulas', async () => {
  const xs = [-3, -0.7, 0, 0.4, 2.5, 9];
  const ts = [0, 1, 1, 0, 1, 0];
  const out = await rt.run((i) => ({ f: sigmoidFocalLoss(i.x!, i.t!), b: bceWithLogits(i.x!, i.t!) }), {
    x: F.host(Float64Array.from(xs), [6]), t: F.host(Float64Array.from(ts), [6]),
  });
  xs.forEach((x, k) => {
    const p = 1 / (1 + Math.exp(-x));
    const t = ts[k]!;
    const ce = -(t * Math.log(p) + (1 - t) * Math.log(1 - p));
    const pt = t ? p : 1 - p;
    const f = (t ? 0.25 : 0.75) * (1 - pt) ** 2 * ce;
    assert.ok(Math.abs((out.b!.data as Float64Array)[k]! - ce) < 1e-12, `bce(${x}, ${t})`);
    assert.ok(Math.abs((out.f!.data as Float64Array)[k]! - f) < 1e-12, `focal(${x}, ${t})`);
  });
  // GIoU: pred (l,t,r,b) = (1,1,1,1) is box [-1,-1,1,1]; target (0.5,0.5,3,1) is [-0.5,-0.5,3,1].
  const g = await rt.run((i) => ({ g: giouLossLtrb(i.p!, i.q!, 1) }), {
    p: F.host(Float64Array.from([1, 1, 1, 1, 2, 2, 2, 2]), [2, 4]), q: F.host(Float64Array.from([0.5, 0.5, 3, 1, 2, 2, 2, 2]), [2, 4]),
  });
  const inter = 1.5 * 1.5;
  const union = 4 + 3.5 * 1.5 - inter;
  const encl = 4 * 2;
  const giou = inter / union - (encl - union) / encl;
  const gd = g.g!.data as Float64Array;
  assert.ok(Math.abs(gd[0]! - (1 - giou)) < 1e-6, `giou loss ${gd[0]} vs ${1 - giou}`);
  assert.ok(Math.abs(gd[1]!) < 1e-6, 'identical boxes: loss 0');
});

test('GroupNorm equals the formula (mean/var per sample and group)', async () => {
  const x = Float64Array.from({ length: 2 * 4 * 3 * 2 }, (_, i) => Math.sin(i * 1.3) + 0.1 * i);
  const w = Float64Array.from([1, 2, 0.5, -1]);
  const b = Float64Array.from([0, 1, 2, 3]);
  const out = await rt.run((i) => ({ y: groupNorm(i.x!, 2, i.w!, i.b!, 1e-5) }), { x: F.host(x, [2, 4, 3, 2]), w: F.host(w, [4]), b: F.host(b, [4]) });
  const y = out.y!.data as Float64Array;
  for (let n = 0; n < 2; n++) {
    for (let gi = 0; gi < 2; gi++) {
      const idx = Array.from({ length: 12 }, (_, k) => n * 24 + gi * 12 + k);
      const mean = idx.reduce((a, k) => a + x[k]!, 0) / 12;
      const v = idx.reduce((a, k) => a + (x[k]! - mean) ** 2, 0) / 12;
      for (const k of idx) {
        const c = Math.floor((k % 24) / 6);
        const ref = ((x[k]! - mean) / Math.sqrt(v + 1e-5)) * w[c]! + b[c]!;
        assert.ok(Math.abs(y[k]! - ref) < 1e-10);
      }
    }
  }
});

test('grad: the whole FCOS loss (focal + GIoU + centre-ness BCE, masked and normalised) and GroupNorm, float64', async () => {
  const B = 2, K = 2, N = 5;
  const rnd = (n: number, s: number, f: (v: number) => number = (v) => v): Float64Array => Float64Array.from({ length: n }, (_, i) => f(Math.sin(i * 12.9898 + s) * 43758.5453 % 1));
  const clsT = new Float64Array(B * K * N);
  const pos = Float64Array.from([1, 0, 1, 1, 0, 0, 1, 0, 0, 1]);
  pos.forEach((p, i) => p && (clsT[(Math.floor(i / N) * K + (i % 2)) * N + (i % N)] = 1));
  const consts = {
    clsT: F.host(clsT, [B, K, N]), regT: F.host(rnd(B * 4 * N, 3, (v) => 0.3 + Math.abs(v) * 2), [B, 4, N]),
    ctrT: F.host(rnd(B * N, 4, (v) => Math.abs(v)), [B, 1, N]), pos: F.host(pos, [B, 1, N]),
    w: F.host(Float64Array.from(pos.map((_, i) => (i === 4 ? 0 : 1))), [B, 1, N]), np: F.host(Float64Array.of(5), []),
  };
  await F.gradcheck((i) => fcosLoss({
    cls: i.cls!, reg: F.exp(i.reg!), ctr: i.ctr!, clsTarget: i.clsT!, regTarget: i.regT!, ctrTarget: i.ctrT!, pos: i.pos!, clsWeight: i.w!, numPos: i.np!,
  }, defaultFcosLoss).total, {
    cls: F.host(rnd(B * K * N, 1, (v) => 3 * v), [B, K, N]), reg: F.host(rnd(B * 4 * N, 2), [B, 4, N]), ctr: F.host(rnd(B * N, 5, (v) => 2 * v), [B, 1, N]), ...consts,
  }, { runtime: rt, wrt: ['cls', 'reg', 'ctr'], eps: 1e-6, tol: 1e-6 });
  await F.gradcheck((i) => groupNorm(i.x!, 2, i.w!, i.b!), {
    x: F.host(rnd(2 * 4 * 3, 7, (v) => 2 * v), [2, 4, 3, 1]), w: F.host(rnd(4, 8), [4]), b: F.host(rnd(4, 9), [4]),
  }, { runtime: rt, eps: 1e-6, tol: 1e-6 });
});

test('grad: the FCOS head + loss end to end (convs, GroupNorm, exp box branch, two levels), float32 central differences', async () => {
  const head = { numConvs: 1, norm: 'gn' as const, gnGroups: 2, priorProb: 0.01 };
  const K = 2;
  const C = 4;
  const shapes: [number, number][] = [[4, 3], [2, 2]];
  const N = shapes.reduce((a, [h, w]) => a + h * w, 0);
  const infos = collectParams((p, g) => {
    fcosHead(p, shapes.map(([h, w], i) => g.input(`f${i}`, [1, C, h, w])), ['p3', 'p4'], K, head);
  });
  const r = (n: number, s: number, a = 1): Float32Array => Float32Array.from({ length: n }, (_, i) => a * Math.sin(i * 2.3 + s));
  const feeds: Record<string, F.HostTensor> = {};
  shapes.forEach(([h, w], i) => (feeds[`f${i}`] = F.host(r(C * h * w, i), [1, C, h, w])));
  let s = 10;
  for (const [name, info] of infos) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    // Larger weights than the init so that every term has a sizeable gradient.
    feeds[name] = F.host(name.includes('norm.weight') || name.includes('scales') ? r(n, s++, 0.3).map((v) => 1 + v) : r(n, s++, 0.4), info.shape);
  }
  const pos = Float32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const clsT = new Float32Array(K * N);
  pos.forEach((p, i) => p && (clsT[(i % K) * N + i] = 1));
  const consts: Record<string, F.HostTensor> = {
    clsT: F.host(clsT, [1, K, N]), regT: F.host(r(4 * N, 40).map((v) => 1.2 + v), [1, 4, N]), ctrT: F.host(r(N, 41).map((v) => 0.5 + 0.4 * v), [1, 1, N]),
    pos: F.host(pos, [1, 1, N]), w: F.host(new Float32Array(N).fill(1), [1, 1, N]), np: F.host(Float32Array.of(pos.reduce((a, b) => a + b, 0)), []),
  };
  await F.gradcheck((i, g) => {
    const outs = fcosHead(new Params(g), shapes.map((_, k) => i[`f${k}`]!), ['p3', 'p4'], K, head);
    const f = flattenLevels(outs);
    return fcosLoss({ ...f, clsTarget: i.clsT!, regTarget: i.regT!, ctrTarget: i.ctrT!, pos: i.pos!, clsWeight: i.w!, numPos: i.np! }, defaultFcosLoss).total;
  }, { ...feeds, ...consts }, {
    runtime: rt, wrt: ['f0', 'f1', ...infos.keys()], eps: 1e-2, tol: 2e-2, perElementMax: 8,
  });
});
