/**
 * Hiera's configuration, its named sizes, and the per-block plan derived from them.
 *
 * Sources: facebookresearch/hiera `hiera/hiera.py` (class `Hiera`, the `hiera_*_224` factories) and
 * timm `timm/models/hiera.py` (the abs-win classification variant `hiera_small_abswin_256`:
 * `abs_win_pos_embed`, `global_pos_size`, `init_values` (LayerScale), `use_expand_proj`).
 * Sizes are data: one interface, one preset table, one factory (`createHiera` in hiera.ts).
 */

/** How the position embedding is stored and brought to the token grid of the input. */
export type HieraPosEmbed =
  /**
   * Learned `[1, h*w, C]` at `inputSize / patchStride` (official `pos_embed`). At another grid it is
   * INTERPOLATED (bicubic, align_corners=False, no antialias): the baseline "Window Attention is
   * Bugged" (Bolya et al. 2024) shows to be broken for window attention. The official code never
   * interpolates (a 224 model fed 256 raises); we do, so that the baseline can be measured.
   */
  | 'absolute'
  /**
   * Absolute win (Bolya et al. 2024, Sec. 4): a window embedding over one mask unit
   * `[1, C, MUy, MUx]` tiled over the grid + a global `[1, C, gh, gw]` embedding interpolated to
   * the grid. Both NCHW, as in timm's abs-win Hiera and sam2.
   */
  | 'abswin';

/** Parameter names of the head and the abs-win window embedding. */
export type HieraNaming =
  /** facebookresearch/hiera: `norm.*`, `head.projection.*`; window embedding `pos_embed_window` (sam2). */
  | 'official'
  /** timm: `head.norm.*`, `head.fc.*`; window embedding `pos_embed_win`. */
  | 'timm';

export interface HieraConfig {
  inChans: number;
  /** Width of stage 1; each later stage multiplies it by `dimMul`. */
  embedDim: number;
  /** Heads of stage 1; each later stage multiplies them by `headMul`. */
  numHeads: number;
  numClasses: number;
  /** Blocks per stage, e.g. [1, 2, 7, 2] for Hiera-T. */
  stages: number[];
  /** Number of stage transitions that pool q (and the residual) by `qStride`. */
  qPool: number;
  qStride: [number, number];
  /** Mask unit in tokens at stage 1 (the window of mask-unit attention). */
  maskUnitSize: [number, number];
  /** Per stage: mask-unit (window) attention or global attention (applied with a one-block lag). */
  maskUnitAttn: boolean[];
  dimMul: number;
  headMul: number;
  patchKernel: [number, number];
  patchStride: [number, number];
  patchPadding: [number, number];
  mlpRatio: number;
  /** The image size the position embedding is stored for ([H, W] in pixels). */
  inputSize: [number, number];
  posEmbed: HieraPosEmbed;
  /** Resampling of an 'absolute' embedding to a new grid (default 'bicubic', torch F.interpolate). */
  absResample: 'bicubic' | 'bicubic_aa';
  /** 'abswin' only: the grid of the global embedding ([7, 7] in the paper's Hiera; timm small_abswin: [16, 16]). */
  globalPosSize: [number, number];
  /** 'abswin' only: resampling of the global part ('bicubic' as sam2; timm's abs-win Hiera: 'bicubic_aa'). */
  globalResample: 'bicubic' | 'bicubic_aa';
  /** LayerScale init value (timm `init_values`); null = no LayerScale (official Hiera). */
  layerScale: number | null;
  /**
   * At a width change: true (official) projects the residual, `pool(proj(norm1(x)))`; false (timm
   * `use_expand_proj=False`) concatenates max- and avg-pool of the un-normalised x (needs dimMul 2).
   */
  expandProj: boolean;
  /** Stochastic depth: rate of the last block, linear from 0 (timm/official `drop_path_rate`). */
  dropPathRate: number;
  naming: HieraNaming;
  normEps: number;
  /**
   * hiera.py `head_init_scale`: the head's trunc-normal(0.02) init is multiplied by it. 0.001 is
   * the official value (for fine-tuning a pretrained trunk). Training a small Hiera from scratch,
   * 1.0 learns several times faster (measured: 61% vs 31% after 300 steps on 4 synthetic classes).
   */
  headInitScale: number;
}

const base: HieraConfig = {
  inChans: 3,
  embedDim: 96,
  numHeads: 1,
  numClasses: 1000,
  stages: [2, 3, 16, 3],
  qPool: 3,
  qStride: [2, 2],
  maskUnitSize: [8, 8],
  maskUnitAttn: [true, true, false, false],
  dimMul: 2,
  headMul: 2,
  patchKernel: [7, 7],
  patchStride: [4, 4],
  patchPadding: [3, 3],
  mlpRatio: 4,
  inputSize: [224, 224],
  posEmbed: 'absolute',
  absResample: 'bicubic',
  globalPosSize: [7, 7],
  globalResample: 'bicubic',
  layerScale: null,
  expandProj: true,
  dropPathRate: 0,
  naming: 'official',
  normEps: 1e-6,
  headInitScale: 0.001,
};

const preset = (o: Partial<HieraConfig>): HieraConfig => ({ ...base, ...o });

/**
 * Named sizes. The `hiera-*` image presets are the official `hiera_*_224` factories of
 * facebookresearch/hiera `hiera.py` (paper Table 1 sizes, ImageNet-1k head):
 * T 27.9M, S 35.0M, B 51.5M, B+ 69.9M, L 213.7M, H 672.8M parameters (exact counts in the tests).
 *
 * `hiera-small-abswin` is timm `hiera_small_abswin_256`: abs-win position embedding with a 16x16
 * global part resampled with antialiased bicubic, LayerScale 1e-5, no expansion projection.
 *
 * The `mini` presets are ours, for CPU experiments (seconds per epoch on small images): the Hiera
 * layout (patch 7/4/3, 8x8-token mask units, 2x2 q-stride pooled 3 times, mask-unit attention in
 * stages 1-2) shrunk to stages (1, 1, 2, 1):
 *  - `hiera-mini`: width 32, heads 1, 64 px (16x16 tokens, 2x2 mask units), absolute pos embed.
 *  - `hiera-mini-abswin`: the same with abs-win (8x8 window + 4x4 global).
 *  - `hiera-mini-wide`: width 64, heads 2, 128 px (32x32 tokens, 4x4 mask units), absolute.
 */
export const hieraPresets: Record<string, HieraConfig> = {
  'hiera-tiny': preset({ embedDim: 96, numHeads: 1, stages: [1, 2, 7, 2] }),
  'hiera-small': preset({ embedDim: 96, numHeads: 1, stages: [1, 2, 11, 2] }),
  'hiera-base': preset({ embedDim: 96, numHeads: 1, stages: [2, 3, 16, 3] }),
  'hiera-base-plus': preset({ embedDim: 112, numHeads: 2, stages: [2, 3, 16, 3] }),
  'hiera-large': preset({ embedDim: 144, numHeads: 2, stages: [2, 6, 36, 4] }),
  'hiera-huge': preset({ embedDim: 256, numHeads: 4, stages: [2, 6, 36, 4] }),
  'hiera-small-abswin': preset({
    embedDim: 96, numHeads: 1, stages: [1, 2, 11, 2], inputSize: [256, 256], posEmbed: 'abswin',
    globalPosSize: [16, 16], globalResample: 'bicubic_aa', layerScale: 1e-5, expandProj: false, naming: 'timm',
  }),
  'hiera-mini': preset({ embedDim: 32, numHeads: 1, stages: [1, 1, 2, 1], inputSize: [64, 64], numClasses: 10 }),
  'hiera-mini-abswin': preset({
    embedDim: 32, numHeads: 1, stages: [1, 1, 2, 1], inputSize: [64, 64], numClasses: 10, posEmbed: 'abswin', globalPosSize: [4, 4],
  }),
  'hiera-mini-wide': preset({ embedDim: 64, numHeads: 2, stages: [1, 1, 2, 1], inputSize: [128, 128], numClasses: 10 }),
};

/** One block of the plan: what `hiera.py`'s constructor loop builds at index i. */
export interface HieraBlockPlan {
  index: number;
  stage: number;
  dim: number;
  dimOut: number;
  heads: number;
  /** Flat q stride (4 for 2x2) at the first block of a pooling stage, else 1. */
  qStride: number;
  /** Flat mask-unit size after this block's pooling (official `window_size`). */
  windowSize: number;
  useMaskUnitAttn: boolean;
  /** Drop-path rate of this block (linspace(0, rate, depth)). */
  dropPath: number;
}

export interface HieraPlan {
  blocks: HieraBlockPlan[];
  /** Index of the last block of each stage (official `stage_ends`). */
  stageEnds: number[];
  /** Unroll steps: one per stage transition (official `[q_stride] * len(stage_ends[:-1])`). */
  numUnrolls: number;
  /** Width of the last stage (the head's input). */
  numFeatures: number;
}

/** Validates a config and derives the per-block plan (the official constructor loop, restated). */
export function hieraPlan(cfg: HieraConfig): HieraPlan {
  const S = cfg.stages.length;
  const fail = (what: string): never => {
    throw new Error(`hieraPlan: ${what}`);
  };
  if (S < 1 || cfg.stages.some((d) => !Number.isInteger(d) || d < 1)) fail(`stages must be positive integers, got [${cfg.stages}]`);
  if (cfg.maskUnitAttn.length !== S) fail(`maskUnitAttn has ${cfg.maskUnitAttn.length} entries for ${S} stages`);
  if (!Number.isInteger(cfg.qPool) || cfg.qPool < 0 || cfg.qPool >= S) fail(`qPool ${cfg.qPool} must be in [0, ${S - 1}] (one less than the number of stages)`);
  const qFlat = cfg.qStride[0] * cfg.qStride[1];
  const mu0 = cfg.maskUnitSize[0] * cfg.maskUnitSize[1];
  // Our internal token order keeps each mask unit contiguous (see hiera-layout.ts); that needs every
  // pooling to stay inside a mask unit. The official code would floor-divide the window size instead.
  if (mu0 % qFlat ** cfg.qPool !== 0) {
    fail(`mask unit ${cfg.maskUnitSize.join('x')} cannot be pooled ${cfg.qPool} times by ${cfg.qStride.join('x')}; use a mask unit that is a multiple of q_stride^q_pool`);
  }
  if (!cfg.expandProj && cfg.dimMul !== 2) fail(`expandProj=false concatenates max- and avg-pool, so dimMul must be 2 (got ${cfg.dimMul})`);
  const stageEnds = cfg.stages.map((_, i) => cfg.stages.slice(0, i + 1).reduce((a, b) => a + b, 0) - 1);
  const qPoolBlocks = new Set(stageEnds.slice(0, cfg.qPool).map((e) => e + 1));
  const depth = stageEnds[S - 1]! + 1;
  const blocks: HieraBlockPlan[] = [];
  let dim = cfg.embedDim;
  let heads = cfg.numHeads;
  let flatMu = mu0;
  let stage = 0;
  for (let i = 0; i < depth; i++) {
    let dimOut = dim;
    // Mask-unit or global attention lags by one block: the pooling block of a stage still uses the
    // previous stage's setting (hiera.py: "Lag by 1 block, so that global attention, applied post
    // pooling on lower resolution").
    const useMaskUnitAttn = cfg.maskUnitAttn[stage]!;
    if (stageEnds.includes(i - 1)) {
      dimOut = Math.trunc(dim * cfg.dimMul);
      heads = Math.trunc(heads * cfg.headMul);
      stage++;
      if (qPoolBlocks.has(i)) flatMu = Math.floor(flatMu / qFlat);
    }
    if (dimOut % heads !== 0) fail(`block ${i}: width ${dimOut} is not divisible by ${heads} heads`);
    blocks.push({
      index: i,
      stage,
      dim,
      dimOut,
      heads,
      qStride: qPoolBlocks.has(i) ? qFlat : 1,
      windowSize: flatMu,
      useMaskUnitAttn,
      dropPath: depth > 1 ? (cfg.dropPathRate * i) / (depth - 1) : 0,
    });
    dim = dimOut;
  }
  return { blocks, stageEnds, numUnrolls: S - 1, numFeatures: dim };
}

/**
 * Token grid of a conv patch embedding: floor((n + 2p - k) / s) + 1 per axis (torch Conv2d).
 */
export function patchGrid(cfg: HieraConfig, H: number, W: number): [number, number] {
  const g = (n: number, a: 0 | 1) => Math.floor((n + 2 * cfg.patchPadding[a] - cfg.patchKernel[a]) / cfg.patchStride[a]) + 1;
  return [g(H, 0), g(W, 1)];
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Pixel step per axis: the input must be a multiple of `patchStride * lcm(maskUnit, qStride^unrolls)`.
 * The token grid must be the exact image size over the patch stride (the official Unroll sizes
 * itself from `input_size // patch_stride`), a multiple of the total unroll (each unroll halves
 * it), and a multiple of the mask unit (mask-unit attention windows).
 */
export function hieraSizeStep(cfg: HieraConfig): [number, number] {
  const S = cfg.stages.length;
  const step = (a: 0 | 1): number => {
    const unroll = cfg.qStride[a] ** (S - 1);
    const mu = cfg.maskUnitSize[a];
    return cfg.patchStride[a] * ((unroll * mu) / gcd(unroll, mu));
  };
  return [step(0), step(1)];
}
