/**
 * Seeded pseudo-random numbers for reproducible training: data order, augmentation,
 * drop-path masks, MAE masks. Everything random in anyres draws from an `Rng`.
 *
 * Generator: xoshiro128** (Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", 2018; reference C at https://prng.di.unimi.it/xoshiro128starstar.c),
 * 128 bits of state as four uint32 words, seeded through splitmix32 so that nearby
 * seeds (0, 1, 2, ...) give unrelated streams and the all-zero state cannot occur.
 *
 * Independent streams: `fork(label)` derives a child from the parent's current state
 * and a label WITHOUT advancing the parent (so adding a new consumer elsewhere does
 * not shift anyone's numbers); `split()` advances the parent and returns a child.
 * `state()` / `setState()` round-trip exactly through JSON for bit-for-bit resume.
 *
 * @example
 * const rng = new Rng(42);
 * const order = rng.shuffle([...Array(10).keys()]);
 * const dropPath = rng.fork('drop-path');
 * const saved = rng.state();           // number[] of 4 uint32
 * const again = Rng.fromState(saved);  // continues identically
 */

/** The four uint32 words of xoshiro128** state. */
export type RngState = [number, number, number, number];

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** splitmix32 step (a 32-bit variant of Steele et al.'s SplitMix finaliser, as used to seed xoshiro). */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** 32-bit avalanche mix (murmur3 fmix32). */
export function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Hash a path of numbers and strings into one uint32 seed. Used to make a value a pure
 * function of its coordinates, e.g. `hashSeed(seed, 'train', i)` for sample i.
 * Numbers must be finite; non-integers are hashed through their float64 bits.
 */
export function hashSeed(...parts: ReadonlyArray<number | string>): number {
  let h = 0x811c9dc5;
  const feed = (word: number): void => {
    h = mix32((h ^ mix32(word >>> 0)) + 0x9e3779b9);
  };
  const f64 = new Float64Array(1);
  const u32 = new Uint32Array(f64.buffer);
  for (const p of parts) {
    if (typeof p === 'string') {
      feed(0x5354520a ^ p.length); // type tag so 'a' and 97 differ
      for (let i = 0; i < p.length; i++) feed(p.charCodeAt(i));
    } else {
      if (!Number.isFinite(p)) throw new RangeError(`hashSeed: parts must be finite numbers or strings, got ${p}`);
      if (Number.isInteger(p) && Math.abs(p) < TWO_POW_32) {
        feed(0x4e554d0a);
        feed(p < 0 ? p + TWO_POW_32 : p);
        feed(p < 0 ? 1 : 0);
      } else {
        f64[0] = p;
        feed(0x464c540a);
        feed(u32[0]!);
        feed(u32[1]!);
      }
    }
  }
  return h >>> 0;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** @param seed any finite number or string; hashed, so 0, 1, 2 give unrelated streams. */
  constructor(seed: number | string = 0) {
    this.seedFrom(hashSeed(seed));
  }

  static fromState(state: ReadonlyArray<number>): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  private seedFrom(seed32: number): void {
    const sm = { s: seed32 >>> 0 };
    this.s0 = splitmix32(sm);
    this.s1 = splitmix32(sm);
    this.s2 = splitmix32(sm);
    this.s3 = splitmix32(sm);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero is a fixed point
  }

  /** Next raw uint32 (xoshiro128** step). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / TWO_POW_32;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n), unbiased (rejection of the short final block). n in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n); // accept u < limit: limit is a multiple of n
    for (;;) {
      const u = this.nextU32();
      if (u < limit) return u % n;
    }
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /**
   * Standard normal via Box-Muller. Uses two uniforms per call and keeps no cached
   * spare, so the state is exactly the four words (resume stays bit-for-bit).
   */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.next(); // (0, 1]: log is finite
    const u2 = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** In-place Fisher-Yates shuffle; returns the same array. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = tmp;
    }
    return arr;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = p[i]!;
      p[i] = p[j]!;
      p[j] = tmp;
    }
    return p;
  }

  /**
   * An independent child stream named by `label`, derived from the current state;
   * the parent is NOT advanced. Same state + same label → same child.
   */
  fork(label: string | number): Rng {
    const child = new Rng(0);
    child.seedFrom(hashSeed(this.s0, this.s1, this.s2, this.s3, label));
    return child;
  }

  /** An independent child stream; advances the parent by two draws. */
  split(): Rng {
    const a = this.nextU32();
    const b = this.nextU32();
    const child = new Rng(0);
    child.seedFrom(hashSeed(a, b, 'split'));
    return child;
  }

  /** Serialisable snapshot: four uint32 numbers. */
  state(): RngState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  setState(state: ReadonlyArray<number>): void {
    if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)) {
      throw new RangeError(`Rng.setState: expected 4 uint32 words, got [${state.join(', ')}]`);
    }
    if (state.every((w) => w === 0)) throw new RangeError('Rng.setState: the all-zero state is invalid for xoshiro128**');
    this.s0 = state[0]!;
    this.s1 = state[1]!;
    this.s2 = state[2]!;
    this.s3 = state[3]!;
  }
}
