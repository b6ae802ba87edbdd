import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { classColor, detectionsSvg, drawDetectionsPng } from '../../src/det/draw.ts';

test('drawDetectionsPng: boxes land on the upscaled image in their class colour; labels escaped', async () => {
  const H = 40;
  const W = 60;
  const image = { data: new Float32Array(3 * H * W).fill(0.5), channels: 3, height: H, width: W };
  const png = await drawDetectionsPng(image, [{ boxes: [{ box: [10, 20, 30, 35], label: 2, score: 0.9 }] }], ['a', 'b', 'c<&>']);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const k = Math.ceil(384 / 60); // 7
  assert.equal(info.width, W * k);
  assert.equal(info.height, H * k);
  const at = (x: number, y: number): number[] => [0, 1, 2].map((c) => data[(y * info.width + x) * info.channels + c]!);
  const want = classColor(2).match(/[0-9a-f]{2}/g)!.map((h) => parseInt(h, 16));
  const edge = at(20 * k, 35 * k); // bottom edge, middle
  want.forEach((v, c) => assert.ok(Math.abs(edge[c]! - v) < 40, `edge pixel ${edge} vs ${want}`));
  const inside = at(20 * k, 28 * k);
  inside.forEach((v) => assert.ok(Math.abs(v - 128) <= 1, `inside stays grey: ${inside}`));
  assert.match(detectionsSvg(100, 100, 1, [{ boxes: [{ box: [0, 0, 5, 5], label: 0 }] }], ['x<y']), /x&lt;y/);
});
