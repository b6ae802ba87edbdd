import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { divergingColor, heatmapGrid, heatmapPng, heatmapRaster, type Channel } from '../../src/eval/heatmap.ts';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

async function decode(png: Buffer): Promise<{ px: (x: number, y: number) => [number, number, number]; width: number; height: number }> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    px: (x, y) => {
      const o = (y * info.width + x) * 4;
      return [data[o]!, data[o + 1]!, data[o + 2]!];
    },
  };
}

/** 4x6 channel: value = x - y scaled so (0, 5) holds the max +2 and (3, 0) the min -1.5. */
function ramp(): Channel {
  const [h, w] = [4, 6];
  const data = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = (x - y) * 0.4;
  data[0 * w + 5] = 2; // max |v|: colour range is [-2, 2]
  data[3 * w + 0] = -2; // min: exactly -vmax
  data[1 * w + 1] = 0;
  return { data, shape: [h, w] };
}

test('colormap: -1 is the blue end, 0 near-white, +1 the red end, monotone in red', () => {
  const blue = divergingColor(-1);
  const mid = divergingColor(0);
  const red = divergingColor(1);
  assert.ok(blue[2] > 80 && blue[0] < 20, `blue end ${blue}`);
  assert.ok(red[0] > 90 && red[2] < 40, `red end ${red}`);
  assert.ok(mid.every((c) => c > 240), `midpoint ${mid}`);
  assert.deepEqual(divergingColor(5), red, 'clamped above');
  let prev = -1;
  for (let t = -1; t <= 0; t += 0.05) {
    const r = divergingColor(t)[0];
    assert.ok(r >= prev, `red channel rises from blue end to white at t=${t}`);
    prev = r;
  }
});

test('heat map pixels: max -> red end, min -> blue end, zero -> white, nearest-neighbour blocks', async () => {
  const scale = 5;
  const img = await decode(await heatmapPng(ramp(), { scale }));
  assert.equal(img.width, 6 * scale);
  assert.equal(img.height, 4 * scale);
  const centre = (x: number, y: number) => img.px(x * scale + 2, y * scale + 2);
  assert.deepEqual(centre(5, 0), [...divergingColor(1)], 'max token is the red end');
  assert.deepEqual(centre(0, 3), [...divergingColor(-1)], 'min token is the blue end');
  assert.deepEqual(centre(1, 1), [...divergingColor(0)], 'zero token is the midpoint');
  // Every pixel of a token's block has the token's colour (no smoothing at block edges).
  for (let dy = 0; dy < scale; dy++) {
    for (let dx = 0; dx < scale; dx++) assert.deepEqual(img.px(5 * scale + dx, dy), [...divergingColor(1)]);
  }
  // The range is symmetric: value 0.4 (token (2,1)) maps to t = 0.4 / 2 = 0.2.
  assert.deepEqual(centre(2, 1), [...divergingColor(0.2)]);
});

test('window grid lines sit on window boundaries and nowhere else', async () => {
  const scale = 4;
  const [h, w] = [8, 12];
  // Constant positive channel: every non-grid pixel is the red end.
  const ch: Channel = { data: new Float32Array(h * w).fill(1), shape: [h, w] };
  const raster = heatmapRaster(ch, { scale, window: [4, 5] });
  assert.equal(raster.width, w * scale + 1);
  assert.equal(raster.height, h * scale + 1);
  const img = await decode(await heatmapPng(ch, { scale, window: [4, 5] }));
  const black = [0, 0, 0];
  const red = [...divergingColor(1)];
  // Columns at token 0, 5, 10 (windows of 5) and the right border at 12 tokens.
  const gridCols = new Set([0, 5 * scale, 10 * scale, w * scale]);
  const gridRows = new Set([0, 4 * scale, h * scale]);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const expected = gridCols.has(x) || gridRows.has(y) ? black : red;
      assert.deepEqual(img.px(x, y), expected, `pixel (${x}, ${y})`);
    }
  }
});

test('title strip adds height above the map; grid composes cells with labels', async () => {
  const scale = 3;
  const plain = await decode(await heatmapPng(ramp(), { scale }));
  const titled = await decode(await heatmapPng(ramp(), { scale, title: 'channel 0' }));
  assert.equal(titled.width, plain.width);
  assert.ok(titled.height > plain.height, 'title strip on top');
  const top = titled.height - plain.height;
  assert.deepEqual(titled.px(5 * scale + 1, top + 1), [...divergingColor(1)], 'map shifted below the strip');
  // The strip holds dark text pixels somewhere.
  let dark = 0;
  for (let y = 0; y < top; y++) for (let x = 0; x < titled.width; x++) if (titled.px(x, y)[0] < 128) dark++;
  assert.ok(dark > 5, `title text drawn (${dark} dark pixels)`);

  const a = ramp();
  const b: Channel = { data: new Float32Array(4 * 6).fill(-3), shape: [4, 6] };
  const png = await heatmapGrid([a, b, a], { cols: 2, window: [2, 3], labels: ['a', 'b', 'a again'], scale, gap: 4, vmax: 'shared' });
  assert.deepEqual(png.subarray(0, 8), PNG_MAGIC);
  const grid = await decode(png);
  const cellW = 6 * scale + 1;
  assert.equal(grid.width, 2 * cellW + 4);
  // With a shared range (vmax 3 from channel b) a's max 2 is no longer the red end.
  const cellTop = (grid.height - 4) / 2 - (4 * scale + 1); // label strip height
  assert.ok(Number.isInteger(cellTop) && cellTop > 0, `label strip ${cellTop}`);
  assert.deepEqual(grid.px(5 * scale + 1, cellTop + 1), [...divergingColor(2 / 3)]);
  assert.deepEqual(grid.px(cellW + 4 + 2, cellTop + 2), [...divergingColor(-1)], 'cell b is all blue end');
  // The gap between cells stays white.
  assert.deepEqual(grid.px(cellW + 1, cellTop + 5), [255, 255, 255]);
});

test('heat map errors name the problem', async () => {
  assert.throws(() => heatmapRaster({ data: new Float32Array(5), shape: [2, 3] }), /has 5 values but shape \[2, 3\] needs 6/);
  assert.throws(() => heatmapRaster({ data: Float32Array.of(0, NaN), shape: [1, 2] }), /\(y=0, x=1\) is NaN/);
  assert.throws(() => heatmapRaster({ data: new Float32Array(4), shape: [2, 2] }, { window: [0, 2] }), /window must be two positive integers/);
  await assert.rejects(heatmapGrid([], { cols: 1 }), /no channels given/);
  assert.throws(() => heatmapRaster({ data: new Float32Array(4), shape: [2, 2] }, { scale: 1.5 }), /scale must be an integer/);
});

test('an all-zero channel renders as the neutral midpoint', () => {
  const r = heatmapRaster({ data: new Float32Array(4), shape: [2, 2] }, { scale: 1 });
  assert.deepEqual([...r.data.subarray(0, 3)], [...divergingColor(0)]);
});
