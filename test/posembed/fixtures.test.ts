/**
 * Golden checks of the pure position-embedding references against ../shared/fixtures.
 * Cases are discovered by globbing the fixtures directory and dispatched on the JSON's `kind` and
 * `config` (never the file name). Every checked tensor must be within its own tolerance:
 * `tolerance.max_abs` for forward cases, `tolerance.bound` for gradient cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fixturesDir } from '../../src/fixtures.ts';
import {
  resample2d, resample2dAdjoint, resampleAbsPosEmbed, absWinEmbed, absWinEmbedGrad, resformerSincos, getRelPos,
  gridToTokens, tokensToGrid, grid, type ResampleMode,
} from '../../src/posembed/index.ts';
import { loadCase, getTensor, maxAbsDiff, type FixtureCase, type StTensor } from './st.ts';

interface TensorSpec {
  shape: number[];
  checked?: boolean;
  tolerance?: { max_abs?: number; bound?: number; use?: string };
}

function spec(c: FixtureCase, name: string): TensorSpec {
  const tensors = c.json.tensors as Record<string, TensorSpec> | undefined;
  const s = tensors?.[name];
  if (s === undefined) throw new Error(`${c.name}: JSON has no tensor ${name}`);
  return s;
}

/** The tolerance the fixture prescribes for a tensor: `bound` for grad cases, else `max_abs`. */
function tolerance(c: FixtureCase, name: string): number {
  const t = spec(c, name).tolerance;
  const tol = t?.bound ?? t?.max_abs;
  if (tol === undefined) throw new Error(`${c.name}: tensor ${name} has no tolerance`);
  return tol;
}

function expectClose(c: FixtureCase, name: string, actual: ArrayLike<number>): number {
  const s = spec(c, name);
  assert.equal(s.checked, true, `${c.name}: ${name} is not a checked tensor`);
  const ref = getTensor(c.tensors(), name);
  assert.equal(actual.length, ref.data.length, `${c.name}: ${name} length`);
  const err = maxAbsDiff(actual, ref.data);
  const tol = tolerance(c, name);
  assert.ok(err <= tol, `${c.name}: ${name} max |diff| ${err} > tolerance ${tol}`);
  if (process.env.ANYRES_VERBOSE) console.log(`${c.name} ${name}: max |diff| ${err.toExponential(2)} (tolerance ${tol})`);
  return err;
}

function cfg<T>(c: FixtureCase, key: string): T {
  const config = c.json.config as Record<string, unknown> | undefined;
  const v = config?.[key];
  if (v === undefined) throw new Error(`${c.name}: config has no ${key}`);
  return v as T;
}

function hasCfg(c: FixtureCase, key: string): boolean {
  const config = c.json.config as Record<string, unknown> | undefined;
  return config !== undefined && key in config;
}

const t = (c: FixtureCase, name: string): StTensor => getTensor(c.tensors(), name);
const bicubic = (antialias: boolean): ResampleMode => (antialias ? 'bicubic_aa' : 'bicubic');

function float64Dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

const cases = readdirSync(fixturesDir())
  .filter((f) => f.endsWith('.json') && !f.startsWith('index'))
  .map((f) => loadCase(f.slice(0, -'.json'.length)));

const handled = new Set<string>();

for (const c of cases) {
  const kind = String(c.json.kind);
  const status = String(c.json.status);

  if (kind === 'interp' && hasCfg(c, 'in_hw')) {
    handled.add(c.name);
    test(`interp ${c.name}`, () => {
      const C = cfg<number>(c, 'C');
      const [h, w] = cfg<[number, number]>(c, 'in_hw');
      const [H, W] = cfg<[number, number]>(c, 'out_hw');
      const y = resample2d(t(c, 'input.x').data, C, h, w, H, W, bicubic(cfg<boolean>(c, 'antialias')));
      expectClose(c, 'output.y', y);
    });
  } else if (kind === 'interp' && hasCfg(c, 'num_prefix_tokens')) {
    handled.add(c.name);
    test(`timm resample_abs_pos_embed ${c.name}`, () => {
      const res = resampleAbsPosEmbed(
        t(c, 'input.posemb').data, cfg<[number, number]>(c, 'new_size'), cfg<[number, number]>(c, 'old_size'),
        cfg<number>(c, 'num_prefix_tokens'), { interpolation: 'bicubic', antialias: cfg<boolean>(c, 'antialias') });
      assert.equal(res.resampled, true);
      expectClose(c, 'output.posemb_resampled', res.data);
    });
  } else if (kind === 'abswin' || kind === 'abswin_crop') {
    handled.add(c.name);
    test(`${kind} ${c.name} (status ${status})`, (tc) => {
      const C = cfg<number>(c, 'C');
      const [gh, gw] = cfg<[number, number]>(c, 'global_size');
      const win = cfg<number>(c, 'window_size');
      const [H, W] = cfg<[number, number]>(c, 'feature_hw');
      const glob = grid(t(c, 'input.pos_embed').data, C, gh, gw);
      const window = grid(t(c, 'input.pos_embed_window').data, C, win, win);
      if (c.json.tensors !== undefined && 'aux.global_interpolated' in (c.json.tensors as object)) {
        expectClose(c, 'aux.global_interpolated', resample2d(glob.data, C, gh, gw, H, W, 'bicubic'));
      }
      if (status !== 'ok') {
        tc.diagnostic(`${c.name}: status ${status}; no output to compare. Checking that the official rule rejects it.`);
        assert.throws(() => absWinEmbed(glob, window, H, W, { cropRule: 'official' }), /not a multiple of the window/);
        return;
      }
      // 'abswin' cases come from sam2 (official rule); 'abswin_crop' from the paper's crop rule.
      const pos = absWinEmbed(glob, window, H, W, { cropRule: kind === 'abswin' ? 'official' : 'paper' });
      expectClose(c, 'output.pos_embed_hw', gridToTokens(pos.data, C, H, W)); // NHWC
      if (kind === 'abswin') {
        const paper = absWinEmbed(glob, window, H, W, { cropRule: 'paper' });
        assert.deepEqual(paper.data, pos.data, 'paper crop rule equals sam2 at multiples of the window');
      }
    });
  } else if (kind === 'grad_interp') {
    handled.add(c.name);
    test(`grad ${c.name}`, () => {
      const C = cfg<number>(c, 'C');
      const [h, w] = cfg<[number, number]>(c, 'in_hw');
      const [H, W] = cfg<[number, number]>(c, 'out_hw');
      const mode = bicubic(cfg<boolean>(c, 'antialias'));
      const x = t(c, 'input.x').data, R = t(c, 'input.R').data;
      expectClose(c, 'output.loss', [float64Dot(resample2d(x, C, h, w, H, W, mode), R)]);
      // dL/dx = M_hᵀ R M_w: the adjoint through the same matrices.
      const g = resample2dAdjoint(R, C, h, w, H, W, mode);
      expectClose(c, 'grad.input.x', g);
    });
  } else if (kind === 'grad_abswin') {
    handled.add(c.name);
    test(`grad ${c.name}`, () => {
      const C = cfg<number>(c, 'C');
      const [gh, gw] = cfg<[number, number]>(c, 'global_size');
      const win = cfg<number>(c, 'window_size');
      const [H, W] = cfg<[number, number]>(c, 'feature_hw');
      const glob = grid(t(c, 'input.pos_embed').data, C, gh, gw);
      const window = grid(t(c, 'input.pos_embed_window').data, C, win, win);
      const Rnhwc = t(c, 'input.R').data;
      const pos = absWinEmbed(glob, window, H, W);
      expectClose(c, 'output.loss', [float64Dot(gridToTokens(pos.data, C, H, W), Rnhwc)]);
      const g = absWinEmbedGrad(tokensToGrid(Rnhwc, C, H, W), C, [gh, gw], [win, win], H, W);
      expectClose(c, 'grad.input.pos_embed', g.global.data);
      expectClose(c, 'grad.input.pos_embed_window', g.window.data);
    });
  } else if (kind === 'resformer') {
    handled.add(c.name);
    test(`resformer sin-cos table ${c.name}`, () => {
      const C = cfg<number>(c, 'embed_dim');
      const [gh, gw] = cfg<[number, number]>(c, 'grid');
      const gpe = cfg<{ temperature: number; eps: number }>(c, 'gpe');
      const table = resformerSincos(gh, gw, C, { temperature: gpe.temperature, eps: gpe.eps });
      expectClose(c, 'aux.pos_embed_sincos', table.data);
    });
  } else if (kind === 'vitdet' && cfg<boolean>(c, 'use_rel_pos')) {
    handled.add(c.name);
    test(`detectron2 get_rel_pos ${c.name}`, () => {
      const [ih, iw] = cfg<[number, number]>(c, 'input_hw');
      const ws = cfg<number>(c, 'window_size');
      // Global blocks attend over the whole grid, window blocks over one (padded) window.
      const [qh, qw] = ws > 0 ? [ws, ws] : [ih, iw];
      for (const [axis, q] of [['h', qh], ['w', qw]] as const) {
        const table = t(c, `param.attn.rel_pos_${axis}`);
        const R = getRelPos(q, q, table.data, table.shape[0]!);
        expectClose(c, `aux.R${axis}`, R);
      }
    });
  } else if (kind === 'vit' && c.json.tensors !== undefined && 'aux.pos_embed_resampled' in (c.json.tensors as object)) {
    handled.add(c.name);
    test(`timm ViT dynamic_img_size pos_embed ${c.name}`, () => {
      const ps = cfg<number>(c, 'patch_size');
      const img = cfg<number>(c, 'img_size');
      const [gh, gw] = cfg<[number, number]>(c, 'grid_hw');
      const res = resampleAbsPosEmbed(t(c, 'param.pos_embed').data, [gh, gw], [img / ps, img / ps], 1); // timm defaults
      expectClose(c, 'aux.pos_embed_resampled', res.data);
    });
  } else if (kind === 'hieradet') {
    handled.add(c.name);
    test(`sam2 hieradet abs-win pos embed ${c.name}`, () => {
      const C = cfg<number>(c, 'embed_dim');
      const [gh, gw] = cfg<[number, number]>(c, 'window_pos_embed_bkg_spatial_size');
      const [, H, W] = spec(c, 'aux.pos_embed_hw').shape as [number, number, number, number];
      const wshape = t(c, 'param.pos_embed_window').shape;
      const pos = absWinEmbed(
        grid(t(c, 'param.pos_embed').data, C, gh, gw), grid(t(c, 'param.pos_embed_window').data, C, wshape[2]!, wshape[3]!),
        H, W, { cropRule: 'official' });
      expectClose(c, 'aux.pos_embed_hw', gridToTokens(pos.data, C, H, W));
    });
  } else if (kind === 'timm_hiera_abswin') {
    handled.add(c.name);
    test(`timm hiera abswin pos embed ${c.name}`, () => {
      const C = cfg<number>(c, 'embed_dim');
      const [gh, gw] = cfg<[number, number]>(c, 'global_pos_size');
      const [H, W] = cfg<[number, number]>(c, 'token_grid');
      const [wh, ww] = cfg<[number, number]>(c, 'mask_unit_size');
      const pos = absWinEmbed(
        grid(t(c, 'param.pos_embed').data, C, gh, gw), grid(t(c, 'param.pos_embed_win').data, C, wh, ww),
        H, W, { globalMode: 'bicubic_aa', cropRule: 'official' });
      expectClose(c, 'aux.pos_embed', gridToTokens(pos.data, C, H, W));
    });
  }
}

test('every interp / abswin / grad_interp / grad_abswin / resformer fixture was dispatched', () => {
  const expectedKinds = new Set(['interp', 'abswin', 'abswin_crop', 'grad_interp', 'grad_abswin', 'resformer']);
  const mine = cases.filter((c) => expectedKinds.has(String(c.json.kind)));
  assert.ok(mine.length >= 20, `found only ${mine.length} posembed fixtures in ${fixturesDir()}`);
  for (const c of mine) assert.ok(handled.has(c.name), `${c.name} (kind ${String(c.json.kind)}) was not dispatched`);
});
