import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyntheticDataset, renderScene, objectPixelBox, SYNTHETIC_CLASS_NAMES } from '../../src/data/synthetic.ts';

/** Bounding box of pixels whose value exceeds `thr` in any channel (object-only render on black). */
function measuredBox(img: Float32Array, W: number, H: number, thr = 0.02): { x0: number; y0: number; x1: number; y1: number } {
  let x0 = W;
  let y0 = H;
  let x1 = -1;
  let y1 = -1;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if (img[c * W * H + y * W + x]! > thr) {
          x0 = Math.min(x0, x);
          y0 = Math.min(y0, y);
          x1 = Math.max(x1, x + 1);
          y1 = Math.max(y1, y + 1);
        }
      }
    }
  }
  return { x0, y0, x1, y1 };
}

/** 2x2 box-filter downsample of a CHW image. */
function down2(img: Float32Array, W: number, H: number): Float32Array {
  const w = W / 2;
  const h = H / 2;
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = c * W * H;
        out[c * w * h + y * w + x] =
          (img[o + 2 * y * W + 2 * x]! + img[o + 2 * y * W + 2 * x + 1]! + img[o + (2 * y + 1) * W + 2 * x]! + img[o + (2 * y + 1) * W + 2 * x + 1]!) / 4;
      }
  return out;
}

const meanAbs = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
};

test('determinism: same (seed, split, i) gives identical descriptions and pixels; splits and seeds differ', () => {
  const a = new SyntheticDataset({ seed: 5, split: 'train', size: 100 });
  const b = new SyntheticDataset({ seed: 5, split: 'train', size: 100 });
  const v = new SyntheticDataset({ seed: 5, split: 'val', size: 100 });
  const s = new SyntheticDataset({ seed: 6, split: 'train', size: 100 });
  assert.deepEqual(a.describe(17), b.describe(17));
  assert.deepEqual(a.render(17, { res: 48 }).image, b.render(17, { res: 48 }).image);
  assert.notDeepEqual(a.describe(17), v.describe(17));
  assert.notDeepEqual(a.describe(17), s.describe(17));
  // Order independence: rendering other samples first changes nothing.
  const first = a.render(3, { res: 32 }).image;
  for (let i = 0; i < 10; i++) a.render(i, { res: 40 });
  assert.deepEqual(a.render(3, { res: 32 }).image, first);
});

test('values in [0,1], shape 3xHxW, non-square sizes work', () => {
  const ds = new SyntheticDataset({ seed: 0, split: 'train', size: 20 });
  for (let i = 0; i < 20; i++) {
    const { image } = ds.render(i, { width: 40, height: 24 });
    assert.equal(image.length, 3 * 40 * 24);
    assert.ok(image.every((x) => x >= 0 && x <= 1 && Number.isFinite(x)));
  }
  assert.throws(() => ds.render(0, {}), RangeError);
  assert.throws(() => ds.render(20, { res: 8 }), RangeError);
  assert.throws(() => ds.render(0, { res: 0 }), RangeError);
});

test('zoom scales the object box with the output; canvas keeps its pixel size and recentres', () => {
  const ds = new SyntheticDataset({ seed: 2, split: 'train', size: 50 });
  const only = { background: false, clutter: false, noise: false };
  for (let i = 0; i < 10; i++) {
    const desc = ds.describe(i);
    const z1 = measuredBox(renderScene(desc, { width: 64, height: 64, mode: 'zoom', layers: only }), 64, 64);
    const z2 = measuredBox(renderScene(desc, { width: 128, height: 128, mode: 'zoom', layers: only }), 128, 128);
    const c2 = measuredBox(renderScene(desc, { width: 128, height: 128, mode: 'canvas', baseRes: 64, layers: only }), 128, 128);
    const w1 = z1.x1 - z1.x0;
    const h1 = z1.y1 - z1.y0;
    assert.ok(w1 > 8 && h1 > 8, `object visible at 64px: ${JSON.stringify(z1)}`);
    // zoom: size doubles (within the one-pixel AA ramp at each edge).
    assert.ok(Math.abs(z2.x1 - z2.x0 - 2 * w1) <= 3, `zoom width ${z2.x1 - z2.x0} vs 2*${w1}`);
    assert.ok(Math.abs(z2.y1 - z2.y0 - 2 * h1) <= 3);
    // canvas: same size, shifted by the 32 px border of the larger field.
    assert.ok(Math.abs(c2.x1 - c2.x0 - w1) <= 1, `canvas width ${c2.x1 - c2.x0} vs ${w1}`);
    assert.ok(Math.abs(c2.y1 - c2.y0 - h1) <= 1);
    assert.ok(Math.abs(c2.x0 - (z1.x0 + 32)) <= 1 && Math.abs(c2.y0 - (z1.y0 + 32)) <= 1, `canvas ${JSON.stringify(c2)} zoom ${JSON.stringify(z1)}`);
    // The analytic box agrees with the measured one (it is a rotation-safe bound).
    const pb = objectPixelBox(desc, { width: 64, height: 64, mode: 'zoom' });
    assert.ok(pb.x0 <= z1.x0 + 1 && pb.y0 <= z1.y0 + 1 && pb.x1 >= z1.x1 - 1 && pb.y1 >= z1.y1 - 1, `analytic ${JSON.stringify(pb)} measured ${JSON.stringify(z1)}`);
    // At baseRes, canvas and zoom are the same render.
    assert.deepEqual(renderScene(desc, { width: 64, height: 64, mode: 'canvas', baseRes: 64 }), renderScene(desc, { width: 64, height: 64, mode: 'zoom' }));
  }
});

test('a 2x render box-downsampled matches the 1x render (same scene, not resampled pixels)', () => {
  const ds = new SyntheticDataset({ seed: 9, split: 'val', size: 40 });
  let same = 0;
  let other = 0;
  const noNoise = { noise: false };
  for (let i = 0; i < 20; i++) {
    const hi = ds.render(i, { res: 96, layers: noNoise }).image;
    const lo = ds.render(i, { res: 48, layers: noNoise }).image;
    const lo2 = ds.render((i + 1) % 40, { res: 48, layers: noNoise }).image;
    same += meanAbs(down2(hi, 96, 96), lo);
    other += meanAbs(lo2, lo);
  }
  same /= 20;
  other /= 20;
  assert.ok(same < 0.02, `mean |down2(render 96) - render 48| = ${same.toFixed(4)}`);
  assert.ok(other > 5 * same, `different scenes differ by ${other.toFixed(4)} vs same scene ${same.toFixed(4)}`);
  // With sensor noise on, still close (noise is per pixel by design).
  const hi = ds.render(0, { res: 96 }).image;
  const lo = ds.render(0, { res: 48 }).image;
  assert.ok(meanAbs(down2(hi, 96, 96), lo) < 0.05);
});

test('classes are exactly balanced and numClasses selects a prefix of the class list', () => {
  const ds = new SyntheticDataset({ seed: 1, split: 'train', size: 1003, numClasses: 10 });
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < ds.length; i++) counts[ds.describe(i).label]!++;
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts ${counts}`);
  const d4 = new SyntheticDataset({ seed: 1, split: 'train', size: 10, numClasses: 4 });
  assert.deepEqual(d4.classNames, SYNTHETIC_CLASS_NAMES.slice(0, 4));
  assert.ok(Array.from({ length: 10 }, (_, i) => d4.describe(i).label).every((l) => l < 4));
  assert.throws(() => new SyntheticDataset({ seed: 1, split: 'train', size: 10, numClasses: 11 }), RangeError);
});

test('blob-pair orientation classes really are horizontal vs vertical', () => {
  const ds = new SyntheticDataset({ seed: 4, split: 'train', size: 200 });
  for (let i = 8; i < 200; i += 10) {
    for (const j of [i, i + 1]) {
      const d = ds.describe(j);
      const [a, b] = d.objects as [typeof d.objects[0], typeof d.objects[0]];
      const horizontal = Math.abs(a.cx - b.cx) > Math.abs(a.cy - b.cy);
      assert.equal(horizontal, SYNTHETIC_CLASS_NAMES[d.label] === 'blob-pair-horizontal', `sample ${j}`);
      for (const o of d.objects) assert.ok(o.cx - o.size >= 0 && o.cx + o.size <= 1 && o.cy - o.size >= 0 && o.cy + o.size <= 1);
    }
  }
});

test('rendering is fast: 64x64 well under a few ms', () => {
  const ds = new SyntheticDataset({ seed: 0, split: 'train', size: 100 });
  for (let i = 0; i < 10; i++) ds.render(i, { res: 64 }); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) ds.render(i, { res: 64 });
  const ms = (performance.now() - t0) / 100;
  console.log(`synthetic render 64x64: ${ms.toFixed(3)} ms/image`);
  assert.ok(ms < 5, `${ms} ms per 64x64 image`);
});
