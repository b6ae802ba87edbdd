/**
 * Heat maps of position-embedding channels with the attention-window grid drawn on top.
 *
 * This is the picture of Bolya et al. 2024, "Window Attention is Bugged", Fig. 1: an
 * absolute position embedding learned at one size and bicubically interpolated to another
 * no longer repeats with the window period, so tokens at the same place in different
 * windows get different embeddings. Drawing each embedding channel with lines every `wh`
 * rows / `ww` columns makes the (mis)alignment visible; the "absolute win" embedding
 * (a window-sized tile repeated across the grid) lines up with them exactly.
 *
 * Colours: diverging blue-white-red, symmetric around 0 (v = -vmax → blue end,
 * 0 → near-white, v = +vmax → red end, vmax = max|v| of the data by default), so the sign
 * of an embedding value reads directly off the colour. Anchors are ColorBrewer's RdBu.
 *
 * Pixels are composed in a raw RGBA buffer (nearest-neighbour upscale by an integer
 * factor, grid lines painted over) and encoded by sharp; only title text goes through SVG.
 *
 * @example
 * ```ts
 * // pos: Float32Array of [C, H, W]; draw channel 0 of a 14x14 grid with 7x7 windows
 * const png = await heatmapPng({ data: pos.subarray(0, 14 * 14), shape: [14, 14] },
 *   { window: [7, 7], title: 'interpolated, ch 0' });
 * ```
 */
import sharp from 'sharp';

/** One 2-D channel, row-major: element (y, x) is `data[y * W + x]`; shape is [H, W]. */
export interface Channel {
  data: ArrayLike<number>;
  shape: readonly [number, number];
}

export type Rgb = readonly [number, number, number];

/** A raw RGBA image (4 bytes per pixel, row-major). */
export interface RgbaImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface HeatmapOptions {
  /** integer nearest-neighbour upscale factor; default brings the longest side to ~256 px */
  scale?: number;
  /** window size [wh, ww] in tokens: grid lines every wh rows and ww columns */
  window?: readonly [number, number];
  /** colour range is [-vmax, vmax]; default max |v| of the channel */
  vmax?: number;
  /** title strip above the map */
  title?: string;
  /** grid line colour, default black */
  gridColor?: Rgb;
}

export interface HeatmapGridOptions {
  /** cells per row */
  cols: number;
  window?: readonly [number, number];
  /** one label per channel, drawn above its cell */
  labels?: readonly string[];
  scale?: number;
  /**
   * 'each' (default): every channel uses its own max |v| (shape of each channel visible);
   * 'shared': one range over all channels (magnitudes comparable); a number: fixed range.
   */
  vmax?: 'each' | 'shared' | number;
  /** white gap between cells in px, default 8 */
  gap?: number;
  gridColor?: Rgb;
}

/** ColorBrewer RdBu (11 classes), ordered from t = -1 (dark blue) to t = +1 (dark red). */
const RDBU: readonly Rgb[] = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

/** The colour of the diverging colormap at t ∈ [-1, 1] (clamped), linear between anchors. */
export function divergingColor(t: number): Rgb {
  const c = Math.max(-1, Math.min(1, Number.isNaN(t) ? 0 : t));
  const pos = ((c + 1) / 2) * (RDBU.length - 1);
  const i = Math.min(Math.floor(pos), RDBU.length - 2);
  const f = pos - i;
  const a = RDBU[i]!;
  const b = RDBU[i + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

const TARGET_SIDE = 256;
const LABEL_HEIGHT = 18;
const LABEL_FONT_PX = 12;

function checkChannel(op: string, ch: Channel): void {
  const [h, w] = ch.shape;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h <= 0 || w <= 0) {
    throw new Error(`${op}: shape must be two positive integers [H, W], got [${ch.shape.join(', ')}]`);
  }
  if (ch.data.length !== h * w) {
    throw new Error(`${op}: data has ${ch.data.length} values but shape [${h}, ${w}] needs ${h * w}`);
  }
  for (let i = 0; i < ch.data.length; i++) {
    if (!Number.isFinite(ch.data[i]!)) {
      throw new Error(
        `${op}: value at (y=${Math.floor(i / w)}, x=${i % w}) is ${ch.data[i]}; a heat map needs finite values`,
      );
    }
  }
}

function checkWindow(op: string, window: readonly [number, number] | undefined): void {
  if (window === undefined) return;
  const [wh, ww] = window;
  if (!Number.isInteger(wh) || !Number.isInteger(ww) || wh <= 0 || ww <= 0) {
    throw new Error(`${op}: window must be two positive integers [wh, ww] in tokens, got [${window.join(', ')}]`);
  }
}

/** max |v| of a channel (0 for an all-zero channel). */
export function maxAbs(data: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) m = Math.max(m, Math.abs(data[i]!));
  return m;
}

/** The default upscale: longest side close to 256 px, at least 1. */
export function defaultScale(shape: readonly [number, number]): number {
  return Math.max(1, Math.floor(TARGET_SIDE / Math.max(shape[0], shape[1])));
}

function resolveScale(op: string, scale: number | undefined, shape: readonly [number, number]): number {
  const s = scale ?? defaultScale(shape);
  if (!Number.isInteger(s) || s < 1 || s > 256) {
    throw new Error(`${op}: scale must be an integer in [1, 256], got ${s}`);
  }
  return s;
}

/**
 * Rasterise one channel without title: token (y, x) fills the `scale`×`scale` block whose
 * top-left pixel is (y·scale, x·scale). With a window, the image gets one extra pixel row
 * and column and 1-px grid lines are painted at pixel rows k·wh·scale and columns
 * k·ww·scale (k = 0, 1, ...), plus the closing border at H·scale / W·scale: the lines sit
 * on the first pixel row/column of each window.
 */
export function heatmapRaster(ch: Channel, opts: Omit<HeatmapOptions, 'title'> = {}): RgbaImage {
  checkChannel('heatmapRaster', ch);
  checkWindow('heatmapRaster', opts.window);
  const [h, w] = ch.shape;
  const s = resolveScale('heatmapRaster', opts.scale, ch.shape);
  const vmax = opts.vmax ?? maxAbs(ch.data);
  if (!(vmax >= 0) || !Number.isFinite(vmax)) {
    throw new Error(`heatmapRaster: vmax must be finite and >= 0, got ${vmax}`);
  }
  const extra = opts.window ? 1 : 0;
  const width = w * s + extra;
  const height = h * s + extra;
  const out = new Uint8Array(width * height * 4).fill(255);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // An all-zero channel has vmax 0: draw it as the neutral midpoint rather than 0/0.
      const v = ch.data[y * w + x]!;
      const [r, g, b] = divergingColor(vmax > 0 ? v / vmax : 0);
      for (let py = y * s; py < (y + 1) * s; py++) {
        let o = (py * width + x * s) * 4;
        for (let px = 0; px < s; px++, o += 4) {
          out[o] = r;
          out[o + 1] = g;
          out[o + 2] = b;
        }
      }
    }
  }
  if (opts.window) {
    const [wh, ww] = opts.window;
    const [gr, gg, gb] = opts.gridColor ?? [0, 0, 0];
    const paint = (px: number, py: number): void => {
      const o = (py * width + px) * 4;
      out[o] = gr;
      out[o + 1] = gg;
      out[o + 2] = gb;
      out[o + 3] = 255;
    };
    const rows = new Set<number>([h * s]);
    for (let k = 0; k * wh < h; k++) rows.add(k * wh * s);
    const cols = new Set<number>([w * s]);
    for (let k = 0; k * ww < w; k++) cols.add(k * ww * s);
    for (const py of rows) for (let px = 0; px < width; px++) paint(px, py);
    for (const px of cols) for (let py = 0; py < height; py++) paint(px, py);
  }
  return { data: out, width, height };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Blit `src` into `dst` (both RGBA) with its top-left at (left, top). */
function blit(dst: RgbaImage, src: RgbaImage, left: number, top: number): void {
  for (let y = 0; y < src.height; y++) {
    const from = y * src.width * 4;
    dst.data.set(src.data.subarray(from, from + src.width * 4), ((top + y) * dst.width + left) * 4);
  }
}

interface Placed {
  img: RgbaImage;
  left: number;
  top: number;
  label?: string;
}

/** Compose placed rasters and their labels onto a white canvas and encode PNG. */
async function encode(width: number, height: number, cells: readonly Placed[]): Promise<Buffer> {
  const canvas: RgbaImage = { data: new Uint8Array(width * height * 4).fill(255), width, height };
  for (const c of cells) blit(canvas, c.img, c.left, c.top);
  const labelled = cells.filter((c) => c.label !== undefined && c.label !== '');
  let img = sharp(Buffer.from(canvas.data.buffer, canvas.data.byteOffset, canvas.data.byteLength), {
    raw: { width, height, channels: 4 },
  });
  if (labelled.length > 0) {
    // Text is the one thing a raw buffer cannot draw: one SVG overlay holds every label,
    // each clipped to its cell width by the cell-sized <svg> it sits in.
    const texts = labelled
      .map((c) => {
        const w = Math.max(c.img.width, 1);
        return `<svg x="${c.left}" y="${c.top - LABEL_HEIGHT}" width="${w}" height="${LABEL_HEIGHT}">` +
          `<text x="${w / 2}" y="${LABEL_HEIGHT - 5}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" ` +
          `font-size="${LABEL_FONT_PX}" fill="#222">${escapeXml(c.label!)}</text></svg>`;
      })
      .join('');
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${texts}</svg>`;
    img = sharp(await img.png().toBuffer()).composite([{ input: Buffer.from(svg), top: 0, left: 0 }]);
  }
  return img.png().toBuffer();
}

/** One channel → PNG heat map (optional window grid and title strip). */
export async function heatmapPng(ch: Channel, opts: HeatmapOptions = {}): Promise<Buffer> {
  const img = heatmapRaster(ch, opts);
  const top = opts.title ? LABEL_HEIGHT : 0;
  return encode(img.width, img.height + top, [
    { img, left: 0, top, ...(opts.title ? { label: opts.title } : {}) },
  ]);
}

/**
 * Several channels → one PNG, `cols` per row, each cell with its label. Channels may differ
 * in shape (e.g. the same embedding at two resolutions); cells are sized to the largest.
 */
export async function heatmapGrid(channels: readonly Channel[], opts: HeatmapGridOptions): Promise<Buffer> {
  if (channels.length === 0) throw new Error('heatmapGrid: no channels given; pass at least one [H, W] channel');
  if (!Number.isInteger(opts.cols) || opts.cols < 1) {
    throw new Error(`heatmapGrid: cols must be a positive integer, got ${opts.cols}`);
  }
  if (opts.labels && opts.labels.length !== channels.length) {
    throw new Error(`heatmapGrid: ${opts.labels.length} labels for ${channels.length} channels; give one label per channel`);
  }
  const gap = opts.gap ?? 8;
  if (!Number.isInteger(gap) || gap < 0) throw new Error(`heatmapGrid: gap must be an integer >= 0, got ${gap}`);
  channels.forEach((c, i) => checkChannel(`heatmapGrid (channel ${i})`, c));
  // One scale for all cells, so a token is the same size everywhere and sizes compare.
  const largest: [number, number] = [
    Math.max(...channels.map((c) => c.shape[0])),
    Math.max(...channels.map((c) => c.shape[1])),
  ];
  const scale = resolveScale('heatmapGrid', opts.scale, largest);
  const mode = opts.vmax ?? 'each';
  const shared = mode === 'shared' ? Math.max(...channels.map((c) => maxAbs(c.data))) : undefined;
  const rasters = channels.map((c) =>
    heatmapRaster(c, {
      scale,
      ...(opts.window ? { window: opts.window } : {}),
      ...(opts.gridColor ? { gridColor: opts.gridColor } : {}),
      ...(typeof mode === 'number' ? { vmax: mode } : shared !== undefined ? { vmax: shared } : {}),
    }),
  );
  const labelH = opts.labels ? LABEL_HEIGHT : 0;
  const cellW = Math.max(...rasters.map((r) => r.width));
  const cellH = Math.max(...rasters.map((r) => r.height)) + labelH;
  const cols = Math.min(opts.cols, channels.length);
  const rows = Math.ceil(channels.length / cols);
  const width = cols * cellW + (cols - 1) * gap;
  const height = rows * cellH + (rows - 1) * gap;
  const cells: Placed[] = rasters.map((img, i) => ({
    img,
    left: (i % cols) * (cellW + gap),
    top: Math.floor(i / cols) * (cellH + gap) + labelH,
    ...(opts.labels ? { label: opts.labels[i]! } : {}),
  }));
  return encode(width, height, cells);
}
