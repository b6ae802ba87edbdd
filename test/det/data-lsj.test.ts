import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPlan, evalPlan, lsjPlan, transformObjects, visibleSize } from '../../src/det/data/lsj.ts';
import { maskBounds } from '../../src/det/data/bitmask.ts';
import { SyntheticDetDataset } from '../../src/det/data/synthetic.ts';
import type { DetObject } from '../../src/det/types.ts';
import { Rng } from '../../src/util/rng.ts';

/** A 3-channel image of size h x w with filled rectangles (each its own colour) and their masks. */
function rectScene(h: number, w: number, rects: [number, number, number, number][]): { data: Float32Array; objects: DetObject[] } {
  const data = new Float32Array(3 * h * w).fill(0.5);
  const objects = rects.map(([x0, y0, x1, y1], k) => {
    const mask = new Uint8Array(h * w);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        mask[y * w + x] = 1;
        data[y * w + x] = k === 0 ? 1 : 0;
        data[h * w + y * w + x] = k === 1 ? 1 : 0;
        data[2 * h * w + y * w + x] = k === 2 ? 1 : 0;
      }
    }
    return { label: k, box: [x0, y0, x1, y1] as [number, number, number, number], mask };
  });
  return { data, objects };
}

test('lsj plan: detectron2 ResizeScale + FixedSizeCrop geometry, deterministic from the rng', () => {
  const input: [number, number] = [60, 100];
  const out: [number, number] = [64, 48];
  let flips = 0;
  for (let s = 0; s < 200; s++) {
    const p = lsjPlan(new Rng(s), input, out);
    assert.deepEqual(p, lsjPlan(new Rng(s), input, out));
    const k = p.resized[1] / input[1];
    // min(s*H/h, s*W/w) with s in [0.1, 2]: here W/w = 0.48 is the binding ratio.
    assert.ok(k >= 0.1 * 0.48 - 0.02 && k <= 2 * 0.48 + 0.02, `scale ${k}`);
    assert.ok(Math.abs(p.resized[0] / input[0] - k) < 0.05, 'aspect kept');
    assert.ok(p.offset[0] >= 0 && p.offset[0] <= Math.max(p.resized[1] - out[1], 0));
    assert.ok(p.offset[1] >= 0 && p.offset[1] <= Math.max(p.resized[0] - out[0], 0));
    const [vh, vw] = visibleSize(p);
    assert.ok(vh >= 1 && vh <= out[0] && vw >= 1 && vw <= out[1]);
    if (p.flip) flips++;
  }
  assert.ok(flips > 70 && flips < 130, `flip probability 0.5, got ${flips}/200`);
  assert.equal(lsjPlan(new Rng(0), input, out, { flip: false }).flip, false);
  assert.throws(() => lsjPlan(new Rng(0), input, out, { minScale: 0 }), /0 < minScale <= maxScale/);
});

test('lsj: boxes stay inside the image, equal the bounds of their masks, and the pixels under a mask are its object', () => {
  const h = 50;
  const w = 70;
  const scene = rectScene(h, w, [[5, 6, 30, 26], [40, 10, 66, 45], [12, 30, 22, 47]]);
  const out: [number, number] = [64, 64];
  let kept = 0;
  let dropped = 0;
  for (let s = 0; s < 60; s++) {
    const p = lsjPlan(new Rng(s), [h, w], out);
    const r = applyPlan(p, { data: scene.data, channels: 3, height: h, width: w }, scene.objects);
    assert.equal(r.image.height, 64);
    assert.equal(r.image.width, 64);
    dropped += scene.objects.length - r.objects.length;
    const [vh, vw] = visibleSize(p);
    for (const o of r.objects) {
      kept++;
      const [x0, y0, x1, y1] = o.box;
      assert.ok(x0 >= 0 && y0 >= 0 && x1 <= vw && y1 <= vh && x1 > x0 && y1 > y0, `box ${o.box} outside the ${vh}x${vw} image`);
      assert.deepEqual(o.box, maskBounds(o.mask!, 64, 64));
      // Interior mask pixels (away from resampled edges) show the object's colour.
      const plane = 64 * 64;
      for (let y = 1; y < 63; y++) {
        for (let x = 1; x < 63; x++) {
          const q = y * 64 + x;
          const m = o.mask!;
          if (!(m[q] && m[q - 1] && m[q + 1] && m[q - 64] && m[q + 64] && m[q - 65] && m[q + 65] && m[q - 63] && m[q + 63])) continue;
          assert.ok(r.image.data[o.label * plane + q]! > 0.9, `object ${o.label} pixel (${x},${y}) has the wrong colour (seed ${s})`);
        }
      }
    }
    // Without masks, the clipped box follows the same geometry (within the resampling of edges).
    const boxesOnly = transformObjects(p, scene.objects.map((o) => ({ label: o.label, box: o.box })));
    for (const o of r.objects) {
      const b = boxesOnly.find((x) => x.label === o.label);
      assert.ok(b, `object ${o.label} kept with its mask but dropped without it (seed ${s})`);
      o.box.forEach((v, j) => assert.ok(Math.abs(v - b.box[j]!) <= 1 + p.scale[0], `seed ${s}: ${o.box} vs ${b.box}`));
    }
  }
  assert.ok(kept > 60 && dropped > 0, `kept ${kept}, dropped ${dropped}: large crops should drop objects sometimes`);
});

test('lsj eval view: long side fits, padding bottom/right, scale recorded', () => {
  const scene = rectScene(40, 100, [[10, 10, 30, 30]]);
  const p = evalPlan([40, 100], [64, 64]);
  assert.deepEqual(p.resized, [26, 64]);
  assert.deepEqual(p.offset, [0, 0]);
  assert.equal(p.flip, false);
  const r = applyPlan(p, { data: scene.data, channels: 3, height: 40, width: 100 }, scene.objects);
  for (let c = 0; c < 3; c++) for (let y = 26; y < 64; y++) for (let x = 0; x < 64; x++) assert.equal(r.image.data[c * 4096 + y * 64 + x], Math.fround(128 / 255));
  assert.equal(applyPlan(p, { data: scene.data, channels: 3, height: 40, width: 100 }, [], 0).image.data[40 * 64], 0, 'pad value option');
  assert.ok(r.image.data[5 * 64 + 5]! > 0.4, 'the image sits at the top-left');
  const b = r.objects[0]!.box;
  assert.ok(Math.abs(b[0] - 10 * 0.64) <= 1 && Math.abs(b[2] - 30 * 0.64) <= 1, `${b}`);
  assert.ok(Math.abs(b[1] - 10 * 0.65) <= 1 && Math.abs(b[3] - 30 * 0.65) <= 1, `${b}`);
  assert.throws(() => applyPlan(p, { data: scene.data, channels: 3, height: 50, width: 80 }, []), /image is 50x80 but the plan was made for 40x100/);
});

test('lsj on synthetic scenes: the exactly rendered jittered view agrees with transforming the plain view', () => {
  const ds = new SyntheticDetDataset({ seed: 2, split: 'train', size: 10, lsj: { minScale: 0.5, maxScale: 1.5 } });
  const size: [number, number] = [96, 80];
  for (let i = 0; i < ds.length; i++) {
    const plan = ds.plan(size, new Rng(100 + i));
    const jittered = ds.get(i, size, new Rng(100 + i));
    const moved = transformObjects(plan, ds.get(i, size, null).objects);
    const [vh, vw] = visibleSize(plan);
    // Outside the visible window: padding (bottom/right), as FixedSizeCrop pads.
    for (let y = 0; y < 96; y++) {
      for (let x = 0; x < 80; x++) {
        if (y < vh && x < vw) continue;
        assert.equal(jittered.image.data[y * 80 + x], Math.fround(128 / 255), `scene ${i}: pixel (${x},${y}) outside the ${vh}x${vw} window is not padding`);
      }
    }
    for (const o of jittered.objects) {
      assert.ok(o.box[2] <= vw && o.box[3] <= vh);
      assert.deepEqual(o.box, maskBounds(o.mask!, 96, 80));
    }
    // Objects whose resampled mask survives also exist in the exact render (tiny slivers may differ).
    for (const m of moved) {
      const area = (m.box[2] - m.box[0]) * (m.box[3] - m.box[1]);
      if (area < 16) continue;
      const o = jittered.objects.find((x) => x.label === m.label && Math.abs(x.box[0] - m.box[0]) <= 3 && Math.abs(x.box[3] - m.box[3]) <= 3);
      assert.ok(o, `scene ${i}: object at ${m.box} missing from the rendered LSJ view (${jittered.objects.map((x) => x.box).join(' | ')})`);
      o.box.forEach((v, j) => assert.ok(Math.abs(v - m.box[j]!) <= 1 + plan.scale[0], `scene ${i}: ${o.box} vs ${m.box}`));
    }
    assert.ok(jittered.scale[0] === plan.scale[0] * 80 / 128);
  }
});
