/**
 * Fixed 2-D sine-cosine position embeddings: the ResFormer GPE table (normalised coordinates, so it
 * is recomputed per grid and never interpolated) and the MAE / big_vision tables.
 * Non-square grids are supported everywhere (the official ResFormer reads `g = int(sqrt(N−1))` and so
 * only runs square grids; we give each axis its own normaliser, which equals the official table on
 * square grids).
 */
import type { Grid } from './reference.ts';

export interface ResformerSincosOptions {
  /** Frequency base. ResFormer (DETR's `PositionEmbeddingSine`) uses 10000. */
  temperature?: number;
  /** Normaliser epsilon in `(i + 1) / (g + eps)`. Default 1e-6. */
  eps?: number;
  /**
   * Round the intermediate steps to float32 as the official float32 code does (default true). The
   * difference from exact math is about 1e-7, far inside the fixtures' 1e-4.
   */
  float32?: boolean;
}

/**
 * ResFormer's global positional embedding table (Tian et al. 2023, Sec. 3.2; ruitian12/resformer
 * `image_classification/models.py` `GlobalPosEmbed`, a DETR-style `PositionEmbeddingSine` with
 * `normalize=True, scale=2π`). Returns `[C, gh, gw]` with channels `[PE_y; PE_x]`, each `d = C/2`
 * channels interleaved sin, cos:
 *
 *   y = (i + 1) / (gh + eps) · 2π,  x = (j + 1) / (gw + eps) · 2π,
 *   dim_t[k] = T^(2·floor(k/2)/d),
 *   PE_y[2m] = sin(y / dim_t[2m]),  PE_y[2m+1] = cos(y / dim_t[2m+1])   (same for PE_x).
 *
 * @example
 * const table = resformerSincos(14, 14, 48); // aux.pos_embed_sincos of resformer_narrow_224
 */
export function resformerSincos(gh: number, gw: number, C: number, opts: ResformerSincosOptions = {}): Grid {
  if (C % 4 !== 0) throw new Error(`resformerSincos: C must be a multiple of 4 (sin/cos pairs per axis), got ${C}`);
  if (!Number.isInteger(gh) || !Number.isInteger(gw) || gh < 1 || gw < 1) {
    throw new Error(`resformerSincos: grid must be positive integers, got ${gh}x${gw}`);
  }
  const T = opts.temperature ?? 10000;
  const eps = opts.eps ?? 1e-6;
  const r = (opts.float32 ?? true) ? Math.fround : (v: number) => v;
  const d = C / 2;
  const scale = r(2 * Math.PI);
  const dimT = new Float64Array(d);
  for (let k = 0; k < d; k++) dimT[k] = r(T ** r((2 * Math.floor(k / 2)) / d));
  const coords = (g: number): Float64Array => {
    const den = r(g + eps);
    const out = new Float64Array(g);
    for (let i = 0; i < g; i++) out[i] = r(r((i + 1) / den) * scale);
    return out;
  };
  const ys = coords(gh), xs = coords(gw);
  const out = new Float64Array(C * gh * gw);
  for (let k = 0; k < d; k++) {
    const f = k % 2 === 0 ? Math.sin : Math.cos;
    for (let i = 0; i < gh; i++) {
      const vy = r(f(r(ys[i]! / dimT[k]!)));
      for (let j = 0; j < gw; j++) {
        out[(k * gh + i) * gw + j] = vy; // PE_y block: channels 0..d-1
        out[((d + k) * gh + i) * gw + j] = r(f(r(xs[j]! / dimT[k]!))); // PE_x block: d..C-1
      }
    }
  }
  return { data: out, C, H: gh, W: gw };
}

export type SincosLayout = 'mae' | 'big_vision';

/**
 * The MAE (facebookresearch/mae `util/pos_embed.py` `get_2d_sincos_pos_embed`) and big_vision
 * (`posemb_sincos_2d`) tables, as tokens `[gh·gw, D]` in row-major (h, w) order (no cls row;
 * MAE's optional cls row is zeros).
 *
 * - 'mae': `np.meshgrid(grid_w, grid_h)` puts the **w** coordinate first ("here w goes first"), so
 *   channels are `[sin(w·ω), cos(w·ω), sin(h·ω), cos(h·ω)]`, each D/4 wide, `ω_k = T^(−k/(D/4))`.
 * - 'big_vision': the same channel order `[sin x, cos x, sin y, cos y]` but
 *   `ω_k = T^(−k/(D/4 − 1))` (the last frequency is exactly 1/T).
 *
 * Coordinates are the integer token indices (not normalised), so these tables change with the
 * grid and are usually resampled, not recomputed, when a pretrained model changes resolution.
 */
export function sincos2dTokens(gh: number, gw: number, D: number, layout: SincosLayout = 'mae', temperature = 10000): Float64Array {
  if (D % 4 !== 0) throw new Error(`sincos2dTokens(${layout}): D must be a multiple of 4, got ${D}`);
  const q = D / 4;
  if (layout === 'big_vision' && q < 2) throw new Error(`sincos2dTokens(big_vision): D must be at least 8, got ${D}`);
  const omega = new Float64Array(q);
  for (let k = 0; k < q; k++) omega[k] = 1 / temperature ** (k / (layout === 'mae' ? q : q - 1));
  const out = new Float64Array(gh * gw * D);
  for (let i = 0; i < gh; i++) {
    for (let j = 0; j < gw; j++) {
      const base = (i * gw + j) * D;
      for (let k = 0; k < q; k++) {
        out[base + k] = Math.sin(j * omega[k]!);
        out[base + q + k] = Math.cos(j * omega[k]!);
        out[base + 2 * q + k] = Math.sin(i * omega[k]!);
        out[base + 3 * q + k] = Math.cos(i * omega[k]!);
      }
    }
  }
  return out;
}
