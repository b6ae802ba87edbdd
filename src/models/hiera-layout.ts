/**
 * Hiera's token orders as constant permutations (pure TypeScript, any grid size).
 *
 * The official `Unroll` (facebookresearch/hiera `hiera_utils.py`) reshapes `[B, H, W, C]` so that
 * every 2x2 q-pooling is `x.view(B, 4, N/4, C).max(1)` and mask-unit attention windows are
 * `x.reshape(B, N/nw, nw, ...)` (window index fastest). For a token at (y, x) of an h x w grid and
 * an unroll schedule of k strides (Sy, Sx), write y = sy0 + Sy*(sy1 + Sy*(... + Sy*y')) (and the
 * same for x); then its official position is
 *
 *   n_off = ((sy0*Sx + sx0) * SySx + (sy1*Sx + sx1)) * ... ) * (h'w') + y'*w' + x'
 *
 * where h' = h / Sy^k. We run the blocks in a different, equivalent order where each mask unit is
 * contiguous: `n_int = (n_off mod nw) * T + floor(n_off / nw)`, nw = number of mask units and
 * T = tokens per mask unit. Then mask-unit attention is a plain reshape to `[B, nw, T, C]` (no
 * transpose) and q-pooling is a max over axis 2 of `[B, nw, qs, T/qs, C]`, which takes the max over
 * exactly the same token sets as the official `view(B, qs, N/qs, C).max(1)`: the pooled digit of
 * n_off is the leading digit of floor(n_off / nw) as long as T stays a multiple of qs.
 *
 * After p poolings the official order of the pooled grid (h/Sy^p x w/Sx^p) is the unroll of that
 * grid with the remaining k - p strides, which is what `Reroll` inverts; `hieraOrder` gives it.
 */

/** Official unrolled position of each row-major token (`n_off[y*w + x]`). */
export function unrollIndex(h: number, w: number, stride: readonly [number, number], steps: number): Int32Array {
  const [Sy, Sx] = stride;
  const hk = h / Sy ** steps;
  const wk = w / Sx ** steps;
  if (!Number.isInteger(hk) || !Number.isInteger(wk)) {
    throw new Error(`unrollIndex: grid ${h}x${w} is not divisible by ${Sy}^${steps} x ${Sx}^${steps}`);
  }
  const out = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let yy = y;
      let xx = x;
      let prefix = 0;
      for (let j = 0; j < steps; j++) {
        prefix = prefix * Sy * Sx + (yy % Sy) * Sx + (xx % Sx);
        yy = Math.floor(yy / Sy);
        xx = Math.floor(xx / Sx);
      }
      out[y * w + x] = prefix * hk * wk + yy * wk + xx;
    }
  }
  return out;
}

/**
 * Our internal position of each row-major token of an h x w grid at a stage whose official order is
 * the unroll with `steps` strides, for `numWindows` mask units: `n_int = (n_off % nw) * T + n_off / nw`.
 */
export function hieraOrder(h: number, w: number, stride: readonly [number, number], steps: number, numWindows: number): Int32Array {
  const N = h * w;
  if (N % numWindows !== 0) throw new Error(`hieraOrder: ${N} tokens (${h}x${w}) do not split into ${numWindows} mask units`);
  const T = N / numWindows;
  const off = unrollIndex(h, w, stride, steps);
  const out = new Int32Array(N);
  for (let g = 0; g < N; g++) {
    const n = off[g]!;
    out[g] = (n % numWindows) * T + Math.floor(n / numWindows);
  }
  return out;
}

/** The inverse of a permutation p (p[i] = j  =>  inv[j] = i); throws if p is not one. */
export function invertPermutation(p: ArrayLike<number>): Int32Array {
  const inv = new Int32Array(p.length).fill(-1);
  for (let i = 0; i < p.length; i++) {
    const j = p[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= p.length || inv[j] !== -1) {
      throw new Error(`invertPermutation: entry ${i} = ${j} is out of range or repeated; not a permutation of 0..${p.length - 1}`);
    }
    inv[j] = i;
  }
  return inv;
}
