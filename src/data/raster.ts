/**
 * Resolution-independent rasterisation shared by the synthetic datasets.
 *
 * A scene lives in continuous *scene units*: the unit square [0,1]^2 (y down) is the
 * field of view at the base resolution. A render maps output pixels to scene units:
 *  - `zoom`:   the unit square is stretched over the output, so objects grow with the
 *              output size (what a resize of the same photo does);
 *  - `canvas`: one pixel is always 1/baseRes scene units, centred on the unit square,
 *              so objects keep their pixel size and a larger output shows more of the
 *              (procedurally infinite) field around them (what a larger camera sensor
 *              at the same focal length does).
 * ResFormer (Tian et al. 2023, Sec. 4 and the REPRODUCTION notes) evaluates both
 * kinds of resolution change; rendering from a vector description makes both exact.
 *
 * Anti-aliasing is analytic: a shape's signed distance d (scene units) gives pixel
 * coverage clamp(0.5 - d / pixelSize, 0, 1), a one-pixel linear ramp across the edge,
 * which matches a box filter for straight edges. Procedural textures fade octaves
 * whose period approaches two pixels, so no resolution aliases.
 */
import { mix32 } from '../util/rng.ts';

export type RenderMode = 'zoom' | 'canvas';
export type RGB = [number, number, number];

export interface RenderOptions {
  width: number;
  height: number;
  /** Default 'zoom'. */
  mode?: RenderMode;
  /** Size in pixels of the unit square in 'canvas' mode (ignored by 'zoom'). Default 64. */
  baseRes?: number;
  /** Which layers to draw; all default true. Tests turn layers off to measure geometry. */
  layers?: { background?: boolean; clutter?: boolean; objects?: boolean; noise?: boolean };
}

/** Affine pixel → scene mapping: u = u0 + (x + 0.5) * du, v = v0 + (y + 0.5) * dv. */
export interface PixelMap {
  width: number;
  height: number;
  u0: number;
  v0: number;
  du: number;
  dv: number;
  /** Pixel footprint used for anti-aliasing (the larger of du, dv). */
  aa: number;
}

export const DEFAULT_BASE_RES = 64;

export function pixelMap(opts: RenderOptions): PixelMap {
  const { width, height } = opts;
  const mode = opts.mode ?? 'zoom';
  const baseRes = opts.baseRes ?? DEFAULT_BASE_RES;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 16384 || height > 16384) {
    throw new RangeError(`renderScene: width and height must be integers in [1, 16384], got ${width}x${height}`);
  }
  if (mode === 'zoom') {
    return { width, height, u0: 0, v0: 0, du: 1 / width, dv: 1 / height, aa: Math.max(1 / width, 1 / height) };
  }
  if (mode !== 'canvas') throw new RangeError(`renderScene: mode must be 'zoom' or 'canvas', got '${String(mode)}'`);
  if (!(baseRes > 0) || !Number.isFinite(baseRes)) {
    throw new RangeError(`renderScene: canvas mode needs a positive baseRes, got ${baseRes}`);
  }
  const d = 1 / baseRes;
  return { width, height, u0: 0.5 - (width / 2) * d, v0: 0.5 - (height / 2) * d, du: d, dv: d, aa: d };
}

/** Inclusive-exclusive pixel range covering scene interval [lo, hi] plus one pixel of AA margin. */
export function pixelRange(lo: number, hi: number, o0: number, d: number, n: number): [number, number] {
  const a = Math.max(0, Math.floor((lo - o0) / d - 1.5));
  const b = Math.min(n, Math.ceil((hi - o0) / d + 0.5));
  return [a, b];
}

export function coverage(sd: number, aa: number): number {
  const c = 0.5 - sd / aa;
  return c <= 0 ? 0 : c >= 1 ? 1 : c;
}

/** Hash of a lattice point to [0, 1). */
function lattice(ix: number, iy: number, seed: number): number {
  return mix32((Math.imul(ix | 0, 0x27d4eb2d) ^ Math.imul(iy | 0, 0x165667b1) ^ seed) >>> 0) / 4294967296;
}

/** Smooth value noise in [0,1] at scene point (u, v), lattice frequency `freq` per unit. */
export function valueNoise(u: number, v: number, freq: number, seed: number): number {
  const x = u * freq;
  const y = v * freq;
  const ix = Math.floor(x);
  const iy = Math.floor(y);
  const fx = x - ix;
  const fy = y - iy;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const a = lattice(ix, iy, seed);
  const b = lattice(ix + 1, iy, seed);
  const c = lattice(ix, iy + 1, seed);
  const d = lattice(ix + 1, iy + 1, seed);
  return a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy;
}

/** Fade factor for a texture of period `period` (scene units) at pixel size `aa`: 0 at <= 2 px, 1 at >= 4 px. */
export function octaveFade(period: number, aa: number): number {
  const px = period / aa;
  return px <= 2 ? 0 : px >= 4 ? 1 : (px - 2) / 2;
}

export interface BackgroundDesc {
  colorA: RGB;
  colorB: RGB;
  /** Direction of the linear gradient between the two colours, radians. */
  gradientAngle: number;
  gradientWeight: number;
  /** Base lattice frequency (cells per scene unit) of the value-noise texture. */
  noiseFreq: number;
  noiseWeight: number;
  noiseSeed: number;
}

export interface PixelNoiseDesc {
  /** Std of additive per-pixel noise (approximately Gaussian). */
  sigma: number;
  seed: number;
}

/** Fill a CHW float buffer with the procedural background (two fBm octaves + gradient). */
export function drawBackground(out: Float32Array, m: PixelMap, bg: BackgroundDesc): void {
  const { width: W, height: H } = m;
  const plane = W * H;
  const gx = Math.cos(bg.gradientAngle);
  const gy = Math.sin(bg.gradientAngle);
  const f1 = bg.noiseFreq;
  const f2 = bg.noiseFreq * 2.3;
  // Octave amplitudes fade as their cell size nears two pixels (no aliasing at low res).
  const w1 = 0.65 * octaveFade(1 / f1, m.aa);
  const w2 = 0.35 * octaveFade(1 / f2, m.aa);
  // Faded octaves contribute their mean (0.5) so the average colour is resolution independent.
  const noiseMean = 0.5 * (0.65 - w1) + 0.5 * (0.35 - w2);
  const seed2 = mix32(bg.noiseSeed ^ 0x5bd1e995);
  const [ar, ag, ab] = bg.colorA;
  const dr = bg.colorB[0] - ar;
  const dg = bg.colorB[1] - ag;
  const db = bg.colorB[2] - ab;
  for (let y = 0; y < H; y++) {
    const v = m.v0 + (y + 0.5) * m.dv;
    for (let x = 0; x < W; x++) {
      const u = m.u0 + (x + 0.5) * m.du;
      let g = 0.5 + (u - 0.5) * gx + (v - 0.5) * gy;
      g = g < 0 ? 0 : g > 1 ? 1 : g;
      let n = noiseMean;
      if (w1 > 0) n += w1 * valueNoise(u, v, f1, bg.noiseSeed);
      if (w2 > 0) n += w2 * valueNoise(u, v, f2, seed2);
      let t = bg.gradientWeight * g + bg.noiseWeight * n;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const i = y * W + x;
      out[i] = ar + dr * t;
      out[plane + i] = ag + dg * t;
      out[2 * plane + i] = ab + db * t;
    }
  }
}

/**
 * Additive pixel noise (sum of four hashed uniforms: near-Gaussian, cheap) then clamp
 * to [0,1]. Depends on (seed, x, y, W, H): noise is a property of the sensor, so it is
 * per-pixel at every resolution by design.
 */
export function addPixelNoiseAndClamp(out: Float32Array, W: number, H: number, noise: PixelNoiseDesc | null): void {
  const n = W * H * 3;
  if (noise && noise.sigma > 0) {
    const base = mix32(noise.seed ^ Math.imul(W, 0x9e3779b1) ^ Math.imul(H, 0x85ebca77));
    // Irwin-Hall(4) has variance 4/12 = 1/3: scale by sqrt(3) for unit variance.
    const k = noise.sigma * Math.sqrt(3);
    for (let i = 0; i < n; i++) {
      let h = mix32(base + i);
      const a = h & 0xff;
      const b = (h >>> 8) & 0xff;
      const c = (h >>> 16) & 0xff;
      const d = h >>> 24;
      h = (a + b + c + d + 2) / 256 - 2; // four uniforms on (0,1) each, centred
      out[i] = out[i]! + k * h;
    }
  }
  for (let i = 0; i < n; i++) {
    const v = out[i]!;
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}

/** Alpha-composite a colour at pixel i with coverage a. */
export function blend(out: Float32Array, plane: number, i: number, a: number, r: number, g: number, b: number): void {
  out[i] = out[i]! + (r - out[i]!) * a;
  out[plane + i] = out[plane + i]! + (g - out[plane + i]!) * a;
  out[2 * plane + i] = out[2 * plane + i]! + (b - out[2 * plane + i]!) * a;
}

/** Rec. 601 luma, for contrast checks between object and background colours. */
export function luma(c: RGB): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}
