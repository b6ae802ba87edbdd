/**
 * Heat maps of one channel of a `[C, H, W]` grid on a canvas, with the attention windows drawn
 * over it. Colours: ColorBrewer RdBu (reversed: blue negative, red positive), the same anchors as
 * the report pictures (src/eval/heatmap.ts), symmetric around 0 with a scale shared by the panels
 * being compared so equal values get equal colours.
 */
import type { Grid } from '../../src/posembed/reference.ts';

const RDBU: readonly (readonly [number, number, number])[] = [
  [5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31],
];

/** RdBu colour at t ∈ [-1, 1] (clamped), linear between the 11 anchors. */
export function rdbu(t: number): [number, number, number] {
  const c = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0));
  const pos = ((c + 1) / 2) * (RDBU.length - 1);
  const i = Math.min(Math.floor(pos), RDBU.length - 2);
  const f = pos - i;
  const a = RDBU[i]!;
  const b = RDBU[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

export function channelMaxAbs(g: Grid, c: number): number {
  let m = 0;
  const n = g.H * g.W;
  for (let i = c * n; i < (c + 1) * n; i++) m = Math.max(m, Math.abs(g.data[i]!));
  return m;
}

/**
 * Draws channel `c` of `g` into `canvas` (its CSS size stays `side` px; pixels are crisp token
 * blocks) and the window grid every `win` tokens, with the partial windows of a cropped grid
 * visible at the bottom/right edge.
 */
export function drawHeatmap(canvas: HTMLCanvasElement, g: Grid, c: number, scale: number, win: readonly [number, number] | null, side = 168): void {
  const { H, W } = g;
  const px = Math.max(1, Math.floor(side / Math.max(H, W)));
  canvas.width = W * px;
  canvas.height = H * px;
  canvas.style.width = `${(W * side) / Math.max(H, W)}px`;
  canvas.style.height = `${(H * side) / Math.max(H, W)}px`;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('heatmap: canvas 2d context unavailable');
  const img = ctx.createImageData(W * px, H * px);
  const inv = scale > 0 ? 1 / scale : 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [r, gg, b] = rdbu(g.data[c * H * W + y * W + x]! * inv);
      for (let dy = 0; dy < px; dy++) {
        let o = ((y * px + dy) * W * px + x * px) * 4;
        for (let dx = 0; dx < px; dx++, o += 4) {
          img.data[o] = r;
          img.data[o + 1] = gg;
          img.data[o + 2] = b;
          img.data[o + 3] = 255;
        }
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  if (!win) return;
  ctx.strokeStyle = 'rgba(0, 0, 0, 0.85)';
  ctx.lineWidth = Math.max(1, Math.round(px / 4));
  ctx.beginPath();
  for (let y = 0; y <= H; y += win[0]) {
    ctx.moveTo(0, y * px);
    ctx.lineTo(W * px, y * px);
  }
  for (let x = 0; x <= W; x += win[1]) {
    ctx.moveTo(x * px, 0);
    ctx.lineTo(x * px, H * px);
  }
  ctx.rect(0, 0, W * px, H * px);
  ctx.stroke();
}
