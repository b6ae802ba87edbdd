/**
 * Invariances and hand-checkable values of the position-embedding references (no fixtures).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  resampleMatrix, resample2d, resample2dAdjoint, resampleAbsPosEmbed, RESAMPLE_MODES,
  absWinEmbed, absWinFromLearned, recursiveAbsWin, tileCrop, tileCropAdjoint,
  resformerSincos, sincos2dTokens, getRelPosIndex, relPosResizeMatrix, getRelPos,
  windowSimilarity, tiledEnergyShare, grid, type Grid,
} from '../../src/posembed/index.ts';
import { maxAbsDiff } from './st.ts';

/** Seeded standard normals (mulberry32 + Box-Muller), so failures reproduce. */
function randn(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

const rgrid = (C: number, H: number, W: number, seed: number): Grid => grid(randn(C * H * W, seed), C, H, W);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

test('resampling to the same size is the identity in every mode', () => {
  for (const mode of RESAMPLE_MODES) {
    for (const n of [1, 2, 3, 7, 14, 16]) {
      const m = resampleMatrix(n, n, mode);
      for (let o = 0; o < n; o++) {
        for (let i = 0; i < n; i++) assert.ok(Math.abs(m.data[o * n + i]! - (o === i ? 1 : 0)) < 1e-15, `${mode} ${n}: [${o},${i}]`);
      }
    }
  }
});

test('every row of every matrix sums to 1 (up- and downsampling, all modes)', () => {
  for (const mode of RESAMPLE_MODES) {
    for (const [a, b] of [[7, 9], [14, 24], [14, 8], [24, 7], [5, 1], [1, 5], [3, 64], [64, 3], [27, 39]] as const) {
      const m = resampleMatrix(a, b, mode);
      for (let o = 0; o < b; o++) {
        let s = 0;
        for (let i = 0; i < a; i++) s += m.data[o * a + i]!;
        assert.ok(Math.abs(s - 1) < 1e-12, `${mode} ${a}->${b} row ${o} sums to ${s}`);
      }
    }
  }
});

test('known torch values: linear 2->4, nearest 3->5, PIL 2x bilinear reduce', () => {
  // F.interpolate(tensor([[[0., 1.]]]), size=4, mode='linear') == [0, 0.25, 0.75, 1]
  assert.deepEqual(Array.from(resampleMatrix(2, 4, 'bilinear').data), [1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1]);
  // F.interpolate(arange(3), size=5, mode='nearest') == [0, 0, 1, 1, 2]
  const nn = resampleMatrix(3, 5, 'nearest');
  const pick = Array.from({ length: 5 }, (_, o) => Array.from(nn.data.subarray(o * 3, o * 3 + 3)).indexOf(1));
  assert.deepEqual(pick, [0, 0, 1, 1, 2]);
  // antialiased 2x linear downsample: triangle of support 2 -> interior taps [1, 3, 3, 1] / 8
  const aa = resampleMatrix(8, 4, 'bilinear_aa');
  assert.deepEqual(Array.from(aa.data.subarray(1 * 8, 2 * 8)), [0, 1 / 8, 3 / 8, 3 / 8, 1 / 8, 0, 0, 0]);
  // the left edge drops the out-of-range tap and renormalises: [3, 3, 1] / 7
  assert.ok(maxAbsDiff(aa.data.subarray(0, 3), [3 / 7, 3 / 7, 1 / 7]) < 1e-15);
});

test('kernel parameter: A=-0.5 (antialias, upsampling) reproduces linear ramps, A=-0.75 does not', () => {
  // Keys' cubic convolution reproduces linear functions only for A = -0.5; torch's aa upsampling
  // uses the same source index (center - 0.5) with A = -0.5, the plain bicubic A = -0.75.
  const ramp = (mode: 'bicubic' | 'bicubic_aa'): number => {
    const m = resampleMatrix(10, 17, mode);
    let worst = 0;
    for (let o = 4; o < 13; o++) {
      let y = 0;
      for (let i = 0; i < 10; i++) y += m.data[o * 10 + i]! * i;
      worst = Math.max(worst, Math.abs(y - ((o + 0.5) * (10 / 17) - 0.5)));
    }
    return worst;
  };
  assert.ok(ramp('bicubic_aa') < 1e-12, `aa ramp error ${ramp('bicubic_aa')}`);
  assert.ok(ramp('bicubic') > 1e-3, `A=-0.75 ramp error ${ramp('bicubic')}`);
  // Output 0 of 7->9: src = 0.5*7/9 - 0.5 = -1/9 is NOT clamped, so i0 = -1, t = 8/9 and the taps
  // -2, -1, 0 all replicate onto index 0. The aa filter (center 7/18, support 2) instead keeps only
  // taps 0 and 1 and renormalises them.
  const k = (x: number, A: number): number => {
    const u = Math.abs(x);
    return u < 1 ? ((A + 2) * u - (A + 3)) * u * u + 1 : u < 2 ? ((A * u - 5 * A) * u + 8 * A) * u - 4 * A : 0;
  };
  const t = 8 / 9;
  const plain = [k(t + 1, -0.75) + k(t, -0.75) + k(1 - t, -0.75), k(2 - t, -0.75), 0, 0, 0, 0, 0];
  assert.ok(maxAbsDiff(resampleMatrix(7, 9, 'bicubic').data.subarray(0, 7), plain) < 1e-14);
  const c = 7 / 18;
  const w0 = k(0 - c + 0.5, -0.5), w1 = k(1 - c + 0.5, -0.5);
  const aa = [w0 / (w0 + w1), w1 / (w0 + w1), 0, 0, 0, 0, 0];
  assert.ok(maxAbsDiff(resampleMatrix(7, 9, 'bicubic_aa').data.subarray(0, 7), aa) < 1e-14);
});

test('resize adjoint: <M x, R> = <x, Mᵀ R> for all modes on non-square grids', () => {
  for (const mode of RESAMPLE_MODES) {
    const x = randn(3 * 7 * 12, 1), R = randn(3 * 10 * 5, 2);
    const lhs = dot(resample2d(x, 3, 7, 12, 10, 5, mode), R);
    const rhs = dot(x, resample2dAdjoint(R, 3, 7, 12, 10, 5, mode));
    assert.ok(Math.abs(lhs - rhs) < 1e-10 * (1 + Math.abs(lhs)), `${mode}: ${lhs} vs ${rhs}`);
  }
  const w = randn(2 * 8 * 4, 3), R = randn(2 * 13 * 10, 4);
  assert.ok(Math.abs(dot(tileCrop(w, 2, 8, 4, 13, 10), R) - dot(w, tileCropAdjoint(R, 2, 8, 4, 13, 10))) < 1e-10);
});

test('timm resample_abs_pos_embed: prefix kept, early return only for same count AND square', () => {
  const C = 4;
  const pe = randn((1 + 14 * 14) * C, 5);
  const same = resampleAbsPosEmbed(pe, [14, 14], [14, 14], 1);
  assert.equal(same.resampled, false);
  assert.deepEqual(same.data, pe);
  const nonSquare = randn((1 + 12 * 16) * C, 6);
  const flipped = resampleAbsPosEmbed(nonSquare, [16, 12], [12, 16], 1);
  assert.equal(flipped.resampled, true, '12x16 -> 16x12 has the same count but is not square: timm resizes');
  const up = resampleAbsPosEmbed(pe, [20, 15], [14, 14], 1, { antialias: false });
  assert.equal(up.tokens, 1 + 300);
  assert.deepEqual(Array.from(up.data.subarray(0, C)), Array.from(pe.subarray(0, C)));
  // Without oldHW, timm infers a square grid from the token count.
  const inferred = resampleAbsPosEmbed(pe, [20, 15], undefined, 1, { antialias: false, dim: C });
  assert.deepEqual(inferred.data, up.data);
  assert.throws(() => resampleAbsPosEmbed(pe, [20, 20], [13, 13], 1), /do not split/);
});

test('abs-win: element rule, paper crop = official at multiples, non-square, official rejects non-multiples', () => {
  const g = rgrid(3, 5, 7, 10), w = rgrid(3, 8, 4, 11);
  const H = 21, W = 18;
  const pos = absWinEmbed(g, w, H, W);
  const smooth = resample2d(g.data, 3, 5, 7, H, W, 'bicubic');
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const n = (c * H + i) * W + j;
        assert.ok(Math.abs(pos.data[n]! - (smooth[n]! + w.data[(c * 8 + (i % 8)) * 4 + (j % 4)]!)) < 1e-12);
      }
    }
  }
  const big = absWinEmbed(g, w, 24, 20, { cropRule: 'official' });
  const paper = absWinEmbed(g, w, 24, 20);
  assert.deepEqual(paper.data, big.data);
  assert.throws(() => absWinEmbed(g, w, H, W, { cropRule: 'official' }), /use 16 or 24 x 16 or 20/);
  assert.throws(() => absWinEmbed(g, rgrid(2, 8, 8, 1), 16, 16), /channels/);
});

test('recursive abs-win: the pretrained embedding at its grid becomes the window', () => {
  const g = rgrid(4, 4, 4, 20), w = rgrid(4, 4, 4, 21);
  const outer = rgrid(4, 3, 3, 22);
  const inner = { global: g, window: w, gridHW: [16, 16] as const };
  const { embed, window } = recursiveAbsWin(inner, outer, 40, 48);
  assert.deepEqual(window.data, absWinEmbed(g, w, 16, 16).data);
  assert.deepEqual(embed.data, absWinEmbed(outer, window, 40, 48).data);
  const tiledOnly = recursiveAbsWin(inner, null, 40, 48);
  assert.ok(maxAbsDiff(tiledOnly.embed.data, tileCrop(window.data, 4, 16, 16, 40, 48)) < 1e-15);
  assert.ok(Math.abs(windowSimilarity(tiledOnly.embed, 16, 16) - 1) < 1e-12);
});

test('absWinFromLearned round-trips an abs-win embedding and never increases the error with iterations', () => {
  for (const [H, W] of [[32, 32], [30, 20]] as const) {
    const C = 3;
    const g0 = rgrid(C, 4, 4, 30);
    const w0 = rgrid(C, 8, 8, 31);
    const learned = absWinEmbed(g0, w0, H, W);
    const plain = absWinFromLearned(learned, [8, 8], [4, 4], { iterations: 0 });
    const few = absWinFromLearned(learned, [8, 8], [4, 4], { iterations: 5 });
    const full = absWinFromLearned(learned, [8, 8], [4, 4], { iterations: 200 });
    assert.ok(plain.relResidual < 0.5, `${H}x${W}: plain split residual ${plain.relResidual}`);
    assert.ok(few.relResidual <= plain.relResidual + 1e-12 && full.relResidual <= few.relResidual + 1e-12,
      `${H}x${W}: residuals ${plain.relResidual}, ${few.relResidual}, ${full.relResidual}`);
    assert.ok(full.relResidual < 1e-8, `${H}x${W}: refined residual ${full.relResidual}`);
    // Gauge: the window carries no per-channel mean.
    for (let c = 0; c < C; c++) {
      const m = full.window.data.subarray(c * 64, c * 64 + 64).reduce((a, b) => a + b, 0) / 64;
      assert.ok(Math.abs(m) < 1e-12);
    }
  }
  // A purely tiled embedding splits into window = tile pattern (zero-mean), global = constant.
  const tiled = grid(tileCrop(rgrid(2, 8, 8, 40).data, 2, 8, 8, 32, 32), 2, 32, 32);
  const split = absWinFromLearned(tiled, [8, 8], [4, 4]);
  assert.ok(split.relResidual < 1e-8, `tiled residual ${split.relResidual}`);
});

test('window similarity and tiled energy share: tiled = 1, random ≈ 0 / 1/n, full windows only', () => {
  const w = rgrid(4, 8, 8, 50);
  for (const [H, W] of [[32, 32], [30, 44]] as const) {
    const tiled = grid(tileCrop(w.data, 4, 8, 8, H, W), 4, H, W);
    assert.ok(Math.abs(windowSimilarity(tiled, 8, 8) - 1) < 1e-12);
    assert.ok(Math.abs(tiledEnergyShare(tiled, 8, 8) - 1) < 1e-12);
    const rnd = rgrid(4, H, W, 51);
    const n = Math.floor(H / 8) * Math.floor(W / 8);
    assert.ok(Math.abs(windowSimilarity(rnd, 8, 8)) < 0.05, `random similarity ${windowSimilarity(rnd, 8, 8)}`);
    const share = tiledEnergyShare(rnd, 8, 8);
    assert.ok(share > 0.5 / n && share < 2 / n, `random energy share ${share}, 1/n = ${1 / n}`);
  }
  // A smooth global field plus a tiled pattern lands in between.
  const mix = absWinEmbed(rgrid(4, 3, 3, 52), w, 32, 32);
  const s = windowSimilarity(mix, 8, 8);
  assert.ok(s > 0.05 && s < 1, `mixed similarity ${s}`);
  assert.throws(() => windowSimilarity(rgrid(1, 8, 12, 1), 8, 8), /at least 2/);
});

test('window similarity equals the brute-force mean over pairs (zero windows count as 0)', () => {
  const C = 2, wh = 3, ww = 2, H = 7, W = 9; // 2x4 full windows; the last row and column are partial
  const pos = rgrid(C, H, W, 70);
  for (let c = 0; c < C; c++) for (let a = 0; a < wh; a++) for (let b = 0; b < ww; b++) pos.data[(c * H + 3 + a) * W + 2 + b] = 0;
  const vec = (p: number, q: number): number[] => {
    const v: number[] = [];
    for (let c = 0; c < C; c++) for (let a = 0; a < wh; a++) for (let b = 0; b < ww; b++) v.push(pos.data[(c * H + p * wh + a) * W + q * ww + b]!);
    return v;
  };
  const vs: number[][] = [];
  for (let p = 0; p < 2; p++) for (let q = 0; q < 4; q++) vs.push(vec(p, q));
  let sum = 0, pairs = 0;
  for (let a = 0; a < vs.length; a++) {
    for (let b = a + 1; b < vs.length; b++) {
      pairs++;
      const na = Math.sqrt(dot(vs[a]!, vs[a]!)), nb = Math.sqrt(dot(vs[b]!, vs[b]!));
      if (na > 0 && nb > 0) sum += dot(vs[a]!, vs[b]!) / (na * nb);
    }
  }
  assert.ok(Math.abs(windowSimilarity(pos, wh, ww) - sum / pairs) < 1e-12);
});

test('ResFormer sin-cos: non-square grids, [PE_y; PE_x] layout, interleaved sin/cos', () => {
  const C = 16, gh = 5, gw = 9;
  const t = resformerSincos(gh, gw, C, { float32: false });
  const d = C / 2;
  for (let k = 0; k < d; k++) {
    const dimT = 10000 ** ((2 * Math.floor(k / 2)) / d);
    const f = k % 2 === 0 ? Math.sin : Math.cos;
    for (let i = 0; i < gh; i++) {
      for (let j = 0; j < gw; j++) {
        const y = ((i + 1) / (gh + 1e-6)) * 2 * Math.PI, x = ((j + 1) / (gw + 1e-6)) * 2 * Math.PI;
        assert.ok(Math.abs(t.data[(k * gh + i) * gw + j]! - f(y / dimT)) < 1e-12);
        assert.ok(Math.abs(t.data[((d + k) * gh + i) * gw + j]! - f(x / dimT)) < 1e-12);
      }
    }
  }
  assert.ok(maxAbsDiff(resformerSincos(gh, gw, C).data, t.data) < 1e-6, 'float32 emulation stays close to exact');
  assert.throws(() => resformerSincos(4, 4, 18), /multiple of 4/);
});

test('MAE and big_vision sin-cos tables: w first, frequencies', () => {
  const D = 16, q = 4;
  const mae = sincos2dTokens(3, 5, D, 'mae');
  const bv = sincos2dTokens(3, 5, D, 'big_vision');
  const i = 2, j = 3, base = (i * 5 + j) * D;
  for (let k = 0; k < q; k++) {
    const om = 1 / 10000 ** (k / q);
    assert.ok(Math.abs(mae[base + k]! - Math.sin(j * om)) < 1e-15, 'MAE: first quarter is sin of the w coordinate');
    assert.ok(Math.abs(mae[base + 3 * q + k]! - Math.cos(i * om)) < 1e-15);
  }
  assert.ok(Math.abs(bv[base + q - 1]! - Math.sin(j / 10000)) < 1e-15, 'big_vision: last frequency is 1/T');
  assert.ok(Math.abs(bv[base + 2 * q]! - Math.sin(i)) < 1e-15);
});

test('detectron2 rel-pos index and table resize', () => {
  const idx = getRelPosIndex(5, 5);
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) assert.equal(idx[i * 5 + j], i - j + 4);
  // q = 4 pooled queries against k = 8 keys: q_coords = 2i, rel = 2i - j + 7, spanning [0, 2*8-2].
  const pooled = getRelPosIndex(4, 8);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 8; j++) assert.equal(pooled[i * 8 + j], 2 * i - j + 7);
  const rev = getRelPosIndex(8, 4); // k_coords = 2j, rel = i - 2j + 6
  for (let i = 0; i < 8; i++) for (let j = 0; j < 4; j++) assert.equal(rev[i * 4 + j], i - 2 * j + 6);
  const m = relPosResizeMatrix(27, 14, 14);
  assert.equal(m.out, 27);
  for (let o = 0; o < 27; o++) assert.equal(m.data[o * 27 + o], 1);
  const table = randn(27 * 3, 60);
  const R = getRelPos(14, 14, table, 27);
  assert.deepEqual(Array.from(R.subarray((2 * 14 + 5) * 3, (2 * 14 + 5) * 3 + 3)), Array.from(table.subarray((2 - 5 + 13) * 3, (2 - 5 + 13) * 3 + 3)));
  assert.equal(relPosResizeMatrix(27, 20, 20).out, 39);
});
