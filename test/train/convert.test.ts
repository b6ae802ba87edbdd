import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interpolatePosEmbed, tilePosEmbed, absWinFromLearnedPosEmbed, type WeightsMap } from '../../src/posembed/convert.ts';
import { resampleAbsPosEmbed } from '../../src/posembed/resample.ts';
import { absWinEmbed } from '../../src/posembed/abswin.ts';
import { Rng } from '../../src/util/rng.ts';

const C = 4;
function learned(g: number, prefix = 1, seed = 0): WeightsMap {
  const r = new Rng(seed);
  return new Map([['pos_embed', { data: Float32Array.from({ length: (prefix + g * g) * C }, () => r.normal()), shape: [1, prefix + g * g, C] }], ['other', { data: Float32Array.of(1), shape: [1] }]]);
}

test('interpolate: equals timm resample_abs_pos_embed, keeps the cls row, same grid is the identity', () => {
  const w = learned(6);
  const out = interpolatePosEmbed(w, { prefix: 1, grid: [6, 6] }, [9, 5]);
  const ref = resampleAbsPosEmbed(w.get('pos_embed')!.data, [9, 5], [6, 6], 1, { interpolation: 'bicubic', antialias: true });
  const got = out.get('pos_embed')!;
  assert.deepEqual(got.shape, [1, 1 + 45, C]);
  for (let i = 0; i < ref.data.length; i++) assert.ok(Math.abs(got.data[i]! - ref.data[i]!) < 1e-6);
  const same = interpolatePosEmbed(w, { prefix: 1, grid: [6, 6] }, [6, 6]).get('pos_embed')!;
  for (let i = 0; i < same.data.length; i++) assert.ok(Math.abs(same.data[i]! - w.get('pos_embed')!.data[i]!) < 1e-5);
  assert.equal(w.get('pos_embed')!.shape[1], 37, 'input untouched');
  assert.throws(() => interpolatePosEmbed(w, { prefix: 1, grid: [5, 5] }, [8, 8]), /not \[1, 1 \+ 5x5, C\]/);
});

test('tile: the pretrained grid becomes the window embedding (NCHW), global starts at zero', () => {
  const w = learned(4);
  const out = tilePosEmbed(w, { prefix: 1, grid: [4, 4] }, { windowName: 'pos_embed_window', window: [4, 4], globalName: 'pos_embed_global', global: [2, 2] });
  assert.equal(out.has('pos_embed'), false);
  const win = out.get('pos_embed_window')!;
  assert.deepEqual(win.shape, [1, C, 4, 4]);
  const src = w.get('pos_embed')!.data;
  // token (y, x) channel c of the source = window[c, y, x]
  for (let t = 0; t < 16; t++) for (let c = 0; c < C; c++) assert.equal(win.data[c * 16 + t], src[(1 + t) * C + c]);
  assert.ok(out.get('pos_embed_global')!.data.every((v) => v === 0));
  assert.deepEqual(out.get('other'), w.get('other'));
});

test('abs-win from learned: an exact abs-win embedding splits back with ~0 residual', () => {
  const r = new Rng(2);
  const glob = { data: Float64Array.from({ length: C * 3 * 3 }, () => r.normal()), C, H: 3, W: 3 };
  const win = { data: Float64Array.from({ length: C * 4 * 4 }, () => r.normal()), C, H: 4, W: 4 };
  // remove the window's per-channel mean (the convention of the split)
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let i = 0; i < 16; i++) m += win.data[c * 16 + i]!;
    for (let i = 0; i < 16; i++) win.data[c * 16 + i]! -= m / 16;
  }
  const full = absWinEmbed(glob, win, 8, 8);
  const tokens = new Float32Array(64 * C);
  for (let t = 0; t < 64; t++) for (let c = 0; c < C; c++) tokens[t * C + c] = full.data[c * 64 + t]!;
  const w: WeightsMap = new Map([['pos_embed', { data: tokens, shape: [1, 64, C] }]]);
  const { weights, relResidual } = absWinFromLearnedPosEmbed(w, { prefix: 0, grid: [8, 8] }, { globalName: 'pos_embed', global: [3, 3], windowName: 'pos_embed_window', window: [4, 4] });
  assert.ok(relResidual < 1e-3, `residual ${relResidual}`);
  assert.deepEqual(weights.get('pos_embed')!.shape, [1, C, 3, 3]);
  assert.deepEqual(weights.get('pos_embed_window')!.shape, [1, C, 4, 4]);
});
