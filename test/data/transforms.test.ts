import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.ts';
import { makeImage, type Image } from '../../src/data/image.ts';
import { resize } from '../../src/data/resample.ts';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  compose,
  hflip,
  horizontalFlip,
  normalize,
  randomResizedCrop,
  randomResizedCropBox,
  resizeCenterCrop,
} from '../../src/data/transforms.ts';

function randomImage(h: number, w: number, seed: number): Image {
  const r = new Rng(seed);
  return makeImage(3, h, w, Float32Array.from({ length: 3 * h * w }, () => r.next()));
}

test('flip twice is the identity; flip mirrors columns', () => {
  const img = randomImage(5, 7, 1);
  assert.deepEqual(hflip(hflip(img)).data, img.data);
  const f = hflip(img);
  assert.equal(f.data[2 * 35 + 3 * 7 + 0], img.data[2 * 35 + 3 * 7 + 6]);
  // horizontalFlip(1) always flips, (0) never.
  assert.deepEqual(horizontalFlip(1)(img, 7, new Rng(0)).data, f.data);
  assert.deepEqual(horizontalFlip(0)(img, 7, new Rng(0)).data, img.data);
});

test('resize to the same size is the identity; constant images stay constant', () => {
  const img = randomImage(9, 11, 2);
  for (const interpolation of ['bilinear', 'bicubic'] as const) {
    const same = resize(img, 9, 11, { interpolation });
    for (let i = 0; i < img.data.length; i++) assert.ok(Math.abs(same.data[i]! - img.data[i]!) < 1e-6);
    const c = makeImage(3, 13, 17, new Float32Array(3 * 13 * 17).fill(0.3));
    for (const [h, w] of [[5, 4], [40, 31]] as const) {
      assert.ok(resize(c, h, w, { interpolation }).data.every((v) => Math.abs(v - 0.3) < 1e-5));
    }
  }
});

test('resize + center crop (ResFormer eval) gives r x r and resizes the shorter side to round(r*256/224)', () => {
  const t = resizeCenterCrop();
  for (const [h, w, r] of [[300, 400, 224], [400, 300, 128], [64, 64, 56], [50, 90, 32]] as const) {
    const out = t(randomImage(h, w, 3), r, new Rng(0));
    assert.equal(out.height, r);
    assert.equal(out.width, r);
    assert.equal(out.data.length, 3 * r * r);
  }
  // A horizontal ramp keeps its centre value after center crop (symmetry).
  const W = 100;
  const ramp = makeImage(3, 80, W, Float32Array.from({ length: 3 * 80 * W }, (_, i) => (i % W) / (W - 1)));
  const out = t(ramp, 64, new Rng(0));
  const mid = (out.data[32 * 64 + 31]! + out.data[32 * 64 + 32]!) / 2;
  assert.ok(Math.abs(mid - 0.5) < 0.02, `centre ${mid}`);
});

test('random resized crop: timm box semantics, shapes, determinism, fallback', () => {
  const rng = new Rng(5);
  for (let k = 0; k < 500; k++) {
    const b = randomResizedCropBox(120, 160, rng, [0.08, 1], [3 / 4, 4 / 3]);
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 120 && b.left + b.width <= 160);
    const area = (b.height * b.width) / (120 * 160);
    assert.ok(area >= 0.07 && area <= 1.01, `area ${area}`);
  }
  // scale (1,1) on a 1:4 image with ratio (3/4,4/3) never fits: center-crop fallback clamped to ratio 4/3.
  const fb = randomResizedCropBox(40, 160, new Rng(0), [1, 1], [3 / 4, 4 / 3]);
  assert.deepEqual(fb, { top: 0, left: Math.floor((160 - 53) / 2), height: 40, width: 53 });
  const t = randomResizedCrop({ scale: [0.3, 1] });
  const img = randomImage(64, 80, 7);
  const a = t(img, 32, new Rng(9));
  assert.equal(a.data.length, 3 * 32 * 32);
  assert.deepEqual(t(img, 32, new Rng(9)).data, a.data);
  assert.notDeepEqual(t(img, 32, new Rng(10)).data, a.data);
  assert.throws(() => randomResizedCropBox(10, 10, new Rng(0), [0.5, 0.2]), RangeError);
});

test('normalize: per-channel (x - mean) / std with ImageNet defaults; composes', () => {
  const img = makeImage(3, 2, 2, Float32Array.from([0, 0.5, 1, 0.25, 0, 0.5, 1, 0.25, 0, 0.5, 1, 0.25]));
  const out = normalize()(img, 2, new Rng(0));
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < 4; i++) {
      const exp = (img.data[c * 4 + i]! - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
      assert.ok(Math.abs(out.data[c * 4 + i]! - exp) < 1e-6);
    }
  assert.throws(() => normalize([0.5], [0.5])(img, 2, new Rng(0)), RangeError);
  const pipe = compose(randomResizedCrop(), horizontalFlip(), normalize());
  assert.equal(pipe(randomImage(50, 60, 1), 24, new Rng(1)).data.length, 3 * 24 * 24);
});
