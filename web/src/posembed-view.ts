/**
 * The position-embedding panel: naive interpolation vs absolute win side by side at the grid the
 * slider picks, the window grid drawn over both, and the window similarity of each, with a
 * chart of similarity against grid size so the current point is seen in context.
 */
import type { Grid } from '../../src/posembed/reference.ts';
import { byId, fileBytes, h, s } from './dom.ts';
import { channelMaxAbs, drawHeatmap } from './heatmap.ts';
import { type EmbeddingSource, compareAt, fromAbsWin, fromLearned, tensorToGrid, tiledExample } from './posembed-model.ts';
import { parseSafetensors } from './safetensors.ts';

const SHOWN_CHANNELS = 4;

interface State {
  sources: EmbeddingSource[];
  current: number;
  channel0: number;
}

/** Builds the embedding sources a checkpoint offers (abs-win parts, or learned grids to split). */
export function sourcesFromCheckpoint(name: string, bytes: Uint8Array, win: [number, number]): EmbeddingSource[] {
  const st = parseSafetensors(bytes, (n) => /pos_embed(_window)?$/.test(n));
  const tokens = trainTokens(st.metadata['anyres.config']);
  const out: EmbeddingSource[] = [];
  for (const [key, t] of st.tensors) {
    if (key.endsWith('pos_embed_window')) continue;
    const { grid } = tensorToGrid(t.shape, t.data);
    const winT = st.tensors.get(key.replace(/pos_embed$/, 'pos_embed_window'));
    if (winT) {
      const { grid: w } = tensorToGrid(winT.shape, winT.data);
      // Shown at the model's training token grid when the checkpoint records its config.
      const base: [number, number] = tokens ?? [Math.ceil(Math.max(grid.H, 4 * w.H) / w.H) * w.H, Math.ceil(Math.max(grid.W, 4 * w.W) / w.W) * w.W];
      out.push(fromAbsWin(`${name}: ${key} + ${key}_window (abs-win parts)`, grid, w, base));
    } else {
      // A grid needs at least 2 windows per side to show anything; shrink the window to fit.
      const w: [number, number] = [Math.max(1, Math.min(win[0], Math.floor(grid.H / 2))), Math.max(1, Math.min(win[1], Math.floor(grid.W / 2)))];
      const gh = Math.max(1, Math.round(grid.H / w[0]));
      const gw = Math.max(1, Math.round(grid.W / w[1]));
      out.push(fromLearned(`${name}: ${key} ${grid.H}x${grid.W} (split into abs-win by least squares)`, grid, w, [gh, gw]));
    }
  }
  if (out.length === 0) throw new Error(`${name}: no tensor named *pos_embed (float) in this checkpoint`);
  return out;
}

/**
 * The training token grid from a checkpoint's `anyres.config` ({family, config}): Hiera's
 * inputSize / patchStride, or ViT's imgSize / patchSize; null when it does not say.
 */
function trainTokens(json: string | undefined): [number, number] | null {
  if (!json) return null;
  try {
    const c = (JSON.parse(json) as { config?: Record<string, unknown> }).config ?? {};
    const size = (c['inputSize'] ?? c['imgSize']) as [number, number] | undefined;
    const stride = c['patchStride'] ?? c['patchSize'];
    const st: [number, number] | undefined = typeof stride === 'number' ? [stride, stride] : (stride as [number, number] | undefined);
    return size && st ? [Math.round(size[0] / st[0]), Math.round(size[1] / st[1])] : null;
  } catch {
    return null;
  }
}

function similarityChart(src: EmbeddingSource, lo: number, hi: number, current: number): SVGSVGElement {
  const Wd = 420, Ht = 150, m = { l: 36, r: 10, t: 10, b: 26 };
  const xs: number[] = [];
  for (let g = lo; g <= hi; g++) xs.push(g);
  const pts = xs.map((g) => ({ g, c: compareAt(src, g, g) }));
  const x = (g: number): number => m.l + ((g - lo) / Math.max(1, hi - lo)) * (Wd - m.l - m.r);
  const y = (v: number): number => m.t + (1 - (v + 0.2) / 1.2) * (Ht - m.t - m.b);
  const line = (key: 'simNaive' | 'simAbswin'): string =>
    pts.filter((p) => p.c[key] !== null).map((p, i) => `${i ? 'L' : 'M'}${x(p.g).toFixed(1)},${y(p.c[key]!).toFixed(1)}`).join('');
  const svg = s('svg', { viewBox: `0 0 ${Wd} ${Ht}`, width: Wd, height: Ht, id: 'pe-chart', role: 'img' });
  for (const v of [0, 0.5, 1]) {
    svg.append(s('line', { x1: m.l, x2: Wd - m.r, y1: y(v), y2: y(v), class: 'grid' }), s('text', { x: m.l - 4, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(1)));
  }
  const base = src.learned.H;
  svg.append(
    s('line', { x1: x(base), x2: x(base), y1: m.t, y2: Ht - m.b, class: 'base' }),
    s('text', { x: x(base) + 3, y: Ht - m.b - 4 }, 'train'),
    s('path', { d: line('simNaive'), class: 'naive' }),
    s('path', { d: line('simAbswin'), class: 'abswin' }),
    s('line', { x1: x(current), x2: x(current), y1: m.t, y2: Ht - m.b, class: 'cursor' }),
    s('text', { x: (m.l + Wd - m.r) / 2, y: Ht - 4, 'text-anchor': 'middle' }, 'grid (tokens per side)'),
  );
  for (const g of [lo, hi]) svg.append(s('text', { x: x(g), y: Ht - m.b + 12, 'text-anchor': 'middle' }, String(g)));
  return svg;
}

export interface PosembedPanel {
  loadCheckpoint(name: string, bytes: Uint8Array): Promise<void>;
}

export function mountPosembed(root: HTMLElement): PosembedPanel {
  const st: State = { sources: [tiledExample()], current: 0, channel0: 0 };
  const sourceSel = h('select', { id: 'pe-source' });
  const file = h('input', { type: 'file', id: 'pe-file', accept: '.safetensors' });
  const winIn = h('input', { type: 'number', id: 'pe-win', min: 1, max: 64, value: 4 });
  const slider = h('input', { type: 'range', id: 'pe-res', min: 8, max: 48, step: 1, value: 24 });
  const resLabel = h('output', { id: 'pe-res-label' });
  const chanSel = h('select', { id: 'pe-channel' });
  const err = h('p', { class: 'error', id: 'pe-error', role: 'alert' });
  const cols = { naive: h('div', { class: 'maps' }), abswin: h('div', { class: 'maps' }) };
  const sims = { naive: h('span', { id: 'sim-naive', class: 'sim' }), abswin: h('span', { id: 'sim-abswin', class: 'sim' }) };
  const chartBox = h('div', { class: 'chart' });
  const info = h('p', { class: 'note', id: 'pe-info' });

  root.append(
    h('h2', {}, 'Position embeddings across resolutions'),
    h('p', { class: 'lede' },
      'A window-attention model learns a pattern that repeats in every window. Bicubic interpolation to a new grid stretches it off the windows (black lines); ',
      h('b', {}, 'absolute win'), ' tiles the window part and interpolates only the global part, so it stays aligned at any size (Bolya et al. 2024, Fig. 1).'),
    h('div', { class: 'controls' },
      h('label', {}, 'Embedding ', sourceSel),
      h('label', {}, 'Checkpoint ', file),
      h('label', {}, 'Window (tokens) ', winIn),
      h('label', {}, 'Channels ', chanSel),
    ),
    h('div', { class: 'controls' }, h('label', { class: 'slider' }, 'Grid ', slider, ' ', resLabel)),
    err,
    h('div', { class: 'compare' },
      h('div', { class: 'col', id: 'pe-col-naive' }, h('h3', {}, 'naive bicubic interpolation'), cols.naive, h('p', {}, 'window similarity ', sims.naive)),
      h('div', { class: 'col', id: 'pe-col-abswin' }, h('h3', {}, 'absolute win'), cols.abswin, h('p', {}, 'window similarity ', sims.abswin)),
      h('div', { class: 'col' }, h('h3', {}, 'window similarity vs grid'), chartBox,
        h('p', { class: 'legend' }, h('span', { class: 'sw naive' }), ' naive  ', h('span', { class: 'sw abswin' }), ' absolute win')),
    ),
    info,
  );

  const canvases = { naive: [] as HTMLCanvasElement[], abswin: [] as HTMLCanvasElement[] };
  for (const k of ['naive', 'abswin'] as const) {
    for (let i = 0; i < SHOWN_CHANNELS; i++) {
      const c = h('canvas', { id: `pe-${k}-${i}` });
      canvases[k].push(c);
      cols[k].append(c);
    }
  }

  const refreshSources = (): void => {
    sourceSel.replaceChildren(...st.sources.map((src, i) => h('option', { value: i, selected: i === st.current }, src.label)));
  };
  const setupSource = (): void => {
    const src = st.sources[st.current]!;
    const base = src.learned.H;
    const lo = Math.max(src.window.H + 1, Math.round(base / 2));
    const hi = Math.max(lo + 1, Math.round(base * 3));
    slider.min = String(lo);
    slider.max = String(hi);
    slider.value = String(Math.min(hi, Math.round(base * 1.5)));
    chanSel.replaceChildren(
      ...[...Array(Math.ceil(src.learned.C / SHOWN_CHANNELS)).keys()].map((k) =>
        h('option', { value: k * SHOWN_CHANNELS }, `${k * SHOWN_CHANNELS}–${Math.min(src.learned.C, (k + 1) * SHOWN_CHANNELS) - 1}`)),
    );
    st.channel0 = 0;
    winIn.value = String(src.window.H);
    info.textContent = `${src.label}. Trained grid ${src.learned.H}×${src.learned.W}, window ${src.window.H}×${src.window.W}, global part ${src.global.H}×${src.global.W}` +
      (src.relResidual > 0 ? `; abs-win split reproduces it to a relative residual of ${src.relResidual.toExponential(2)}.` : '.');
  };
  const draw = (): void => {
    const src = st.sources[st.current]!;
    const g = Number(slider.value);
    const cmp = compareAt(src, g, g);
    resLabel.textContent = `${g}×${g} tokens (trained at ${src.learned.H}×${src.learned.W})`;
    const win: [number, number] = [src.window.H, src.window.W];
    for (let i = 0; i < SHOWN_CHANNELS; i++) {
      const c = st.channel0 + i;
      for (const [k, grid] of [['naive', cmp.naive], ['abswin', cmp.abswin]] as [keyof typeof canvases, Grid][]) {
        const cv = canvases[k][i]!;
        cv.hidden = c >= grid.C;
        if (c < grid.C) drawHeatmap(cv, grid, c, Math.max(channelMaxAbs(cmp.naive, c), channelMaxAbs(cmp.abswin, c)), win);
      }
    }
    const fmt = (v: number | null): string => (v === null ? 'n/a (fewer than 2 full windows)' : v.toFixed(3));
    sims.naive.textContent = fmt(cmp.simNaive);
    sims.abswin.textContent = fmt(cmp.simAbswin);
    chartBox.replaceChildren(similarityChart(src, Number(slider.min), Number(slider.max), g));
    root.dataset.grid = String(g);
  };

  slider.addEventListener('input', draw);
  chanSel.addEventListener('change', () => {
    st.channel0 = Number(chanSel.value);
    draw();
  });
  sourceSel.addEventListener('change', () => {
    st.current = Number(sourceSel.value);
    setupSource();
    draw();
  });
  const load = async (name: string, bytes: Uint8Array): Promise<void> => {
    err.textContent = '';
    try {
      const w = Number(winIn.value);
      const added = sourcesFromCheckpoint(name, bytes, [w, w]);
      st.sources.push(...added);
      st.current = st.sources.length - added.length;
      refreshSources();
      setupSource();
      draw();
    } catch (e) {
      err.textContent = `Could not read ${name}: ${(e as Error).message}`;
    }
  };
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f) void fileBytes(f).then((b) => load(f.name, b));
  });
  winIn.addEventListener('change', () => {
    // Re-split learned checkpoint embeddings with the new window; constructed/abs-win sources keep theirs.
    const src = st.sources[st.current]!;
    if (src.relResidual === 0) {
      winIn.value = String(src.window.H);
      err.textContent = 'This embedding defines its own window size; the window field applies to learned checkpoint embeddings.';
      return;
    }
    const w = Number(winIn.value);
    try {
      st.sources[st.current] = fromLearned(src.label, src.learned, [w, w], [Math.max(1, Math.round(src.learned.H / w)), Math.max(1, Math.round(src.learned.W / w))]);
      err.textContent = '';
      setupSource();
      draw();
    } catch (e) {
      err.textContent = (e as Error).message;
    }
  });

  refreshSources();
  setupSource();
  draw();

  byId('app').dataset.posembedReady = '1';
  return { loadCheckpoint: load };
}
