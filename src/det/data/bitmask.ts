/**
 * Small operations on binary instance masks (row-major `H*W` 0/1 bytes, the convention of
 * `src/det/types.ts`) that the detection data layer needs: tight bounds, area, nearest-neighbour
 * resampling. RLE and polygons live in `src/det/mask.ts`.
 */
import type { Box } from '../types.ts';

/**
 * Tight box of the mask's set pixels in continuous pixel coordinates (a mask covering columns
 * 3..5 gives x0 = 3, x1 = 6), or null for an empty mask.
 */
export function maskBounds(mask: Uint8Array, height: number, width: number): Box | null {
  if (mask.length !== height * width) {
    throw new RangeError(`maskBounds: mask has ${mask.length} values, expected ${height}x${width} = ${height * width}`);
  }
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (mask[row + x] === 0) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? null : [x0, y0, x1 + 1, y1 + 1];
}

/** Number of set pixels. */
export function maskArea(mask: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i] ? 1 : 0;
  return n;
}

/**
 * Nearest-neighbour resampling of a mask through an axis-aligned map: output pixel (x, y) reads
 * source pixel (floor((x + 0.5 + offX) / scaleX), floor((y + 0.5 + offY) / scaleY)), i.e. the
 * output is a window at offset (offX, offY) of the source scaled by (scaleX, scaleY). Pixels whose
 * source falls outside the mask are 0 (padding). `flip` mirrors the scaled source horizontally
 * (width `flipWidth` in scaled pixels) before the window is taken.
 */
export function resampleMask(
  mask: Uint8Array,
  srcH: number,
  srcW: number,
  outH: number,
  outW: number,
  map: { scaleX: number; scaleY: number; offX: number; offY: number; flipWidth?: number },
): Uint8Array {
  if (mask.length !== srcH * srcW) {
    throw new RangeError(`resampleMask: mask has ${mask.length} values, expected ${srcH}x${srcW}`);
  }
  const out = new Uint8Array(outH * outW);
  const cols = new Int32Array(outW);
  for (let x = 0; x < outW; x++) {
    let u = x + 0.5 + map.offX; // in scaled pixels
    if (map.flipWidth !== undefined) u = map.flipWidth - u;
    const sx = Math.floor(u / map.scaleX);
    cols[x] = sx >= 0 && sx < srcW ? sx : -1;
  }
  for (let y = 0; y < outH; y++) {
    const sy = Math.floor((y + 0.5 + map.offY) / map.scaleY);
    if (sy < 0 || sy >= srcH) continue;
    const srow = sy * srcW;
    const orow = y * outW;
    for (let x = 0; x < outW; x++) {
      const sx = cols[x]!;
      if (sx >= 0 && mask[srow + sx]) out[orow + x] = 1;
    }
  }
  return out;
}
