/**
 * The classifier panel: exported models (one .onnx per resolution, grouped by their
 * `anyres.model` metadata) run in the page with onnxruntime-web (wasm; threads when the page is
 * cross-origin isolated, which `anyres explore` arranges with COOP/COEP headers). Shows the top-5
 * at a chosen resolution and, for every loaded model, the prediction at each of its resolutions.
 */
import * as ort from 'onnxruntime-web/wasm';
// The wasm binary and its JS glue as local asset URLs (Vite copies them into the build; no CDN).
// The glue must be a file of its own: ORT starts its worker threads from the glue's URL, and a
// worker started from the app bundle would run the whole page script without a document.
import ortWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import ortMjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.mjs?url';
import { byId, fileBytes, h, s } from './dom.ts';
import { type ModelMeta, parseModelMeta } from '../../src/io/model-meta.ts';
import { readOnnxSummary } from './onnx-meta.ts';
import { SAMPLE_SET, fitImage, rgbaToChw, sampleInput, samples, topK } from './preprocess.ts';
import type { Image } from '../../src/data/image.ts';

interface ModelFile {
  source: string;
  meta: ModelMeta;
  bytes: Uint8Array;
  session?: Promise<ort.InferenceSession>;
}

interface ModelGroup {
  name: string;
  files: ModelFile[];
}

type Picture = { kind: 'sample'; index: number } | { kind: 'file'; name: string; image: Image };

/** Points onnxruntime-web at the wasm binary served with the app (never a CDN). */
export function configureOrt(): void {
  ort.env.wasm.wasmPaths = { wasm: new URL(ortWasmUrl, document.baseURI).href, mjs: new URL(ortMjsUrl, document.baseURI).href };
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

function resKey(f: ModelFile): string {
  const [H, W] = f.meta.inputSize;
  return H === W ? String(H) : `${H}x${W}`;
}

export interface ClassifyPanel {
  addModel(source: string, bytes: Uint8Array): void;
}

export function mountClassify(root: HTMLElement): ClassifyPanel {
  const groups: ModelGroup[] = [];
  let picture: Picture = { kind: 'sample', index: 0 };

  const modelSel = h('select', { id: 'model' });
  const resSel = h('select', { id: 'res' });
  const onnxIn = h('input', { type: 'file', id: 'onnx-file', accept: '.onnx', multiple: true });
  const imgIn = h('input', { type: 'file', id: 'image-file', accept: 'image/*' });
  const classifyBtn = h('button', { id: 'classify', type: 'button' }, 'Classify');
  const sweepBtn = h('button', { id: 'sweep', type: 'button' }, 'Every resolution, every model');
  const strip = h('div', { class: 'samples', id: 'samples' });
  const preview = h('canvas', { id: 'preview', width: 64, height: 64 });
  const pictureLabel = h('p', { id: 'picture-label', class: 'note' });
  const top5 = h('ol', { id: 'top5', class: 'top5' });
  const status = h('p', { id: 'cls-status', class: 'note', role: 'status' });
  const sweepBox = h('div', { id: 'sweep-out' });
  const drop = h('div', { class: 'drop', id: 'drop' }, 'Drop an image or .onnx files here');

  root.append(
    h('h2', {}, 'Classify in the page'),
    h('p', { class: 'lede' }, 'Exported models (', h('code', {}, 'anyres export'), ', one .onnx per resolution) run here with onnxruntime-web. Compare how an absolute and an abs-win model, or a single- and a multi-resolution one, hold up as the resolution moves away from training.'),
    h('div', { class: 'controls' },
      h('label', {}, 'Model ', modelSel), h('label', {}, 'Resolution ', resSel),
      h('label', {}, 'Add models ', onnxIn), h('label', {}, 'Image ', imgIn)),
    h('div', { class: 'row' },
      h('div', {}, h('h3', {}, `Samples (synthetic ${SAMPLE_SET.split} split)`), strip, drop),
      h('div', {}, h('h3', {}, 'Model input'), preview, pictureLabel),
      h('div', { class: 'grow' }, h('h3', {}, 'Top-5'), h('div', { class: 'controls' }, classifyBtn, sweepBtn), top5, status)),
    sweepBox,
  );

  for (let i = 0; i < 8; i++) {
    const c = h('canvas', { id: `sample-${i}`, width: 48, height: 48, title: samples.classNames[samples.describe(i).label] ?? '' });
    paint(c, { data: sampleInput(i, 48, 48), channels: 3, height: 48, width: 48 });
    c.addEventListener('click', () => {
      picture = { kind: 'sample', index: i };
      showPicture();
    });
    strip.append(c);
  }

  const currentGroup = (): ModelGroup | undefined => groups[Number(modelSel.value)];
  const currentFile = (): ModelFile | undefined => currentGroup()?.files.find((f) => resKey(f) === resSel.value);

  function refreshModels(keep?: string): void {
    modelSel.replaceChildren(...groups.map((g, i) => h('option', { value: i, selected: g.name === keep }, `${g.name} (${g.files[0]!.meta.family}, ${g.files[0]!.meta.posEmbed})`)));
    refreshRes();
  }
  function refreshRes(): void {
    const g = currentGroup();
    const train = new Set(g?.files[0]?.meta.trainRes ?? []);
    // Start at a training resolution: the reference point the other sizes are compared with.
    const first = (g?.files ?? []).find((f) => train.has(f.meta.inputSize[0]));
    resSel.replaceChildren(...(g?.files ?? []).map((f) => h('option', { value: resKey(f), selected: f === first }, `${resKey(f)} px${train.has(f.meta.inputSize[0]) ? ' (trained)' : ''}`)));
    classifyBtn.disabled = sweepBtn.disabled = !g;
    showPicture();
  }

  function inputFor(H: number, W: number): Float32Array {
    return picture.kind === 'sample' ? sampleInput(picture.index, H, W) : fitImage(picture.image, H, W);
  }
  function showPicture(): void {
    const f = currentFile();
    const [H, W] = f?.meta.inputSize ?? [64, 64];
    paint(preview, { data: inputFor(H, W), channels: 3, height: H, width: W });
    pictureLabel.textContent = picture.kind === 'sample'
      ? `sample ${picture.index}: ${samples.classNames[samples.describe(picture.index).label]} (rendered at ${W}×${H})`
      : `${picture.name} (${picture.image.width}×${picture.image.height}, cropped and resized to ${W}×${H})`;
    root.dataset.picture = picture.kind === 'sample' ? `sample-${picture.index}` : `file:${picture.name}`;
  }

  async function run(f: ModelFile): Promise<Float32Array> {
    f.session ??= ort.InferenceSession.create(f.bytes, { executionProviders: ['wasm'] });
    const sess = await f.session;
    const [H, W] = f.meta.inputSize;
    const out = await sess.run({ image: new ort.Tensor('float32', inputFor(H, W), [1, 3, H, W]) });
    return out['probs']!.data as Float32Array;
  }

  async function classify(): Promise<void> {
    const f = currentFile();
    if (!f) return;
    status.textContent = 'running…';
    delete root.dataset.top1;
    const t0 = performance.now();
    try {
      const probs = await run(f);
      const best = topK(probs, 5);
      top5.replaceChildren(...best.map((b) => h('li', { 'data-class': f.meta.classes[b.index] ?? String(b.index), 'data-prob': b.prob },
        h('span', { class: 'name' }, f.meta.classes[b.index] ?? String(b.index)),
        h('span', { class: 'bar' }, h('span', { style: `width:${(100 * b.prob).toFixed(1)}%` })),
        h('span', { class: 'p' }, `${(100 * b.prob).toFixed(1)}%`))));
      status.textContent = `${f.meta.model} at ${resKey(f)} px: ${(performance.now() - t0).toFixed(0)} ms (onnxruntime-web wasm, ${ort.env.wasm.numThreads} thread(s))`;
      root.dataset.top1 = f.meta.classes[best[0]!.index] ?? String(best[0]!.index);
      root.dataset.probs = JSON.stringify(Array.from(probs));
    } catch (e) {
      status.textContent = `error: ${(e as Error).message}`;
    }
  }

  async function sweep(): Promise<void> {
    status.textContent = 'running every model at every resolution…';
    delete root.dataset.sweepDone;
    const sizes = [...new Set(groups.flatMap((g) => g.files.map(resKey)))].sort((a, b) => parseInt(a) - parseInt(b));
    // The class whose probability is charted: the sample's label, or the first model's top-1 at its first training size.
    let target: number | null = picture.kind === 'sample' ? samples.describe(picture.index).label : null;
    const rows: { g: ModelGroup; cells: Map<string, { top: number; p: number; pTarget: number }> }[] = [];
    for (const g of groups) {
      const cells = new Map<string, { top: number; p: number; pTarget: number }>();
      for (const f of g.files) {
        const probs = await run(f);
        const [b] = topK(probs, 1);
        target ??= b!.index;
        cells.set(resKey(f), { top: b!.index, p: b!.prob, pTarget: probs[target]! });
      }
      rows.push({ g, cells });
    }
    const classes = groups[0]?.files[0]?.meta.classes ?? [];
    const table = h('table', { class: 'sweep' },
      h('thead', {}, h('tr', {}, h('th', {}, 'model'), ...sizes.map((r) => h('th', {}, `${r} px`)))),
      h('tbody', {}, ...rows.map(({ g, cells }) => h('tr', {}, h('th', {}, g.name),
        ...sizes.map((r) => {
          const c = cells.get(r);
          if (!c) return h('td', {}, '—');
          const train = g.files[0]!.meta.trainRes?.includes(parseInt(r));
          return h('td', { class: `${c.top === target ? 'hit' : 'miss'}${train ? ' train' : ''}` }, `${classes[c.top] ?? c.top} ${(100 * c.p).toFixed(0)}%`);
        })))));
    sweepBox.replaceChildren(
      h('h3', {}, `Across resolutions: P(${classes[target ?? 0] ?? target}) per model`),
      sweepChart(rows.map(({ g, cells }) => ({ name: g.name, pts: sizes.filter((r) => cells.has(r)).map((r) => [parseInt(r), cells.get(r)!.pTarget] as [number, number]) }))),
      table,
      h('p', { class: 'note' }, 'Green: predicts the charted class; bold border: a training resolution.'),
    );
    status.textContent = `ran ${rows.reduce((a, r) => a + r.cells.size, 0)} model files`;
    root.dataset.sweepDone = '1';
  }

  function addModel(source: string, bytes: Uint8Array): void {
    const meta = parseModelMeta(readOnnxSummary(bytes).metadata, source);
    let g = groups.find((x) => x.name === meta.model);
    if (!g) groups.push((g = { name: meta.model, files: [] }));
    const file: ModelFile = { source, meta, bytes };
    const same = g.files.findIndex((f) => resKey(f) === resKey(file));
    if (same >= 0) g.files[same] = file;
    else g.files.push(file);
    g.files.sort((a, b) => a.meta.inputSize[0] * a.meta.inputSize[1] - b.meta.inputSize[0] * b.meta.inputSize[1]);
    refreshModels(meta.model);
    root.dataset.models = String(groups.length);
  }

  const addFiles = async (files: Iterable<File>): Promise<void> => {
    for (const f of files) {
      try {
        if (f.name.endsWith('.onnx')) addModel(f.name, await fileBytes(f));
        else {
          picture = { kind: 'file', name: f.name, image: await decodeImage(f) };
          showPicture();
        }
        status.textContent = '';
      } catch (e) {
        status.textContent = `${f.name}: ${(e as Error).message}`;
      }
    }
  };

  modelSel.addEventListener('change', refreshRes);
  resSel.addEventListener('change', showPicture);
  classifyBtn.addEventListener('click', () => void classify());
  sweepBtn.addEventListener('click', () => void sweep());
  onnxIn.addEventListener('change', () => void addFiles(onnxIn.files ?? []));
  imgIn.addEventListener('change', () => void addFiles(imgIn.files ?? []));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void addFiles(e.dataTransfer?.files ?? []);
  });
  refreshModels();
  byId('app').dataset.classifyReady = '1';
  return { addModel };
}

/** Decodes an image file to CHW [0,1] without colour management (raw pixel values, as sharp gives). */
async function decodeImage(f: File): Promise<Image> {
  const bmp = await createImageBitmap(f, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const c = document.createElement('canvas');
  c.width = bmp.width;
  c.height = bmp.height;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('canvas 2d context unavailable');
  ctx.drawImage(bmp, 0, 0);
  return rgbaToChw(ctx.getImageData(0, 0, bmp.width, bmp.height).data, bmp.width, bmp.height);
}

/** Paints a CHW [0,1] image onto a canvas at its own size (CSS scales it up, pixelated). */
function paint(c: HTMLCanvasElement, img: Image): void {
  c.width = img.width;
  c.height = img.height;
  const ctx = c.getContext('2d');
  if (!ctx) return;
  const out = ctx.createImageData(img.width, img.height);
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) out.data[4 * i + k] = Math.round(255 * img.data[k * n + i]!);
    out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

const LINE_COLORS = ['#1b6ca8', '#d1495b', '#2a9d8f', '#e9a23b', '#6c4f9c', '#555'];

function sweepChart(series: { name: string; pts: [number, number][] }[]): SVGSVGElement {
  const Wd = 680, Ht = 180, m = { l: 40, r: 260, t: 10, b: 28 };
  const xs = series.flatMap((s0) => s0.pts.map((p) => p[0]));
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const x = (v: number): number => m.l + ((v - lo) / Math.max(1, hi - lo)) * (Wd - m.l - m.r);
  const y = (p: number): number => m.t + (1 - p) * (Ht - m.t - m.b);
  const svg = s('svg', { viewBox: `0 0 ${Wd} ${Ht}`, width: Wd, height: Ht, id: 'sweep-chart' });
  for (const v of [0, 0.5, 1]) svg.append(s('line', { x1: m.l, x2: Wd - m.r, y1: y(v), y2: y(v), class: 'grid' }), s('text', { x: m.l - 4, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(1)));
  for (const v of [...new Set(xs)]) svg.append(s('text', { x: x(v), y: Ht - m.b + 14, 'text-anchor': 'middle' }, String(v)));
  series.forEach((se, i) => {
    const col = LINE_COLORS[i % LINE_COLORS.length]!;
    svg.append(s('path', { d: se.pts.map((p, k) => `${k ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(''), stroke: col, fill: 'none', 'stroke-width': 2 }));
    for (const p of se.pts) svg.append(s('circle', { cx: x(p[0]), cy: y(p[1]), r: 3, fill: col }));
    svg.append(s('text', { x: Wd - m.r + 8, y: m.t + 14 + 16 * i, style: `fill:${col}` }, se.name));
  });
  svg.append(s('text', { x: (m.l + Wd - m.r) / 2, y: Ht - 2, 'text-anchor': 'middle' }, 'input resolution (px)'));
  return svg;
}
