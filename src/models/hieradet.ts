/**
 * HieraDet: the hierarchical Hiera trunk of SAM 2 (Ravi et al. 2024), with window attention per
 * stage, a few global blocks, q-pooling at stage changes and absolute-win position embeddings.
 * Semantics follow sam2 `sam2/modeling/backbones/hieradet.py` (`Hiera`, `MultiScaleBlock`,
 * `MultiScaleAttention`) and `backbones/utils.py` (`PatchEmbed`, window partition).
 *
 * Where sam2 has no answer we define one (fixtures README):
 * - Position embedding at any grid: `interpolate(pos_embed) + tile(pos_embed_window)` with the
 *   paper's crop rule (tile `ceil(h/wh) x ceil(w/ww)` and crop). sam2 floors the tile count and
 *   raises when the grid is not a multiple of the window (e.g. 60x60); on multiples we equal it.
 * - q-pooling blocks stitch the pooled windows on the partition's own window grid and crop to the
 *   pooled shortcut's size. sam2 recomputes the grid from the pooled size instead, which gives the
 *   same layout except for odd sizes `h = 2m + 1` with `2m` a multiple of the window, where sam2's
 *   reshape mixes images; ours stays well defined.
 *
 * Parameter names are sam2's trunk names (`patch_embed.proj`, `pos_embed`, `pos_embed_window`,
 * `blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.layers.0,mlp.layers.1,proj}`); a SAM 2 checkpoint
 * holds them under `image_encoder.trunk.`.
 */
import { type Tensor, add, conv2d, fmtShape, gelu, reduceMax, reshape, slice, transpose } from '../graph/index.ts';
import { type ParamInfo, Params, collectParams, truncNormal, zeros } from '../nn/params.ts';
import { dropPath, layerNorm, linear, multiHeadAttention, qkvProjections } from '../nn/layers.ts';
import { windowPartition, windowUnpartition } from '../nn/window.ts';
import { absWin } from '../posembed/graph.ts';
import { recursiveAbsWinWindow } from '../posembed/abswin.ts';
import type { Grid } from '../posembed/reference.ts';
import type { ResampleMode } from '../posembed/resample.ts';
import { type ForwardOptions, type ForwardOutput, type Model, nearestMultiples } from './types.ts';
import { presetOrConfig } from './preset.ts';

export interface HieraDetConfig {
  /** Stage-1 width (sam2 `embed_dim`). */
  embedDim: number;
  /** Stage-1 heads (sam2 `num_heads`). */
  numHeads: number;
  /** Blocks per stage. */
  stages: number[];
  /** Number of stage changes that pool (sam2 `q_pool`, 3). */
  qPool: number;
  qStride: [number, number];
  dimMul: number;
  headMul: number;
  /** Global embedding grid `pos_embed [1, C, gh, gw]` (sam2 `window_pos_embed_bkg_spatial_size`). */
  globalPosSize: [number, number];
  /** Attention window per stage (sam2 `window_spec`); the window embedding is `windowSpec[0]` square. */
  windowSpec: number[];
  /**
   * Window embedding size `pos_embed_window [1, C, wh, ww]`; null = `windowSpec[0]` square as in sam2.
   * The recursive abs-win init (`recursiveAbsWinInit`) sets it to the pretrained model's token grid.
   */
  windowPosSize: [number, number] | null;
  /** Blocks with global attention (sam2 `global_att_blocks`). */
  globalAttBlocks: number[];
  mlpRatio: number;
  /** LayerNorm eps (sam2: 1e-6). */
  normEps: number;
  dropPathRate: number;
  /** Default input side (SAM 2: 1024). */
  imgSize: number;
}

const hieraCommon = {
  qPool: 3, qStride: [2, 2] as [number, number], dimMul: 2, headMul: 2, windowSpec: [8, 4, 14, 7], windowPosSize: null,
  mlpRatio: 4, normEps: 1e-6, dropPathRate: 0, imgSize: 1024,
};

/**
 * Presets: sam2 `sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml` (trunk section; unspecified
 * arguments take `Hiera.__init__`'s defaults: stages (2,3,16,3), global blocks (12,16,20), global
 * embedding 14x14, window_spec (8,4,14,7)). `hieradet-mini` is ours, for CPU tests.
 */
export const hieradetPresets: Record<string, HieraDetConfig> = {
  'hieradet-tiny': { ...hieraCommon, embedDim: 96, numHeads: 1, stages: [1, 2, 7, 2], globalAttBlocks: [5, 7, 9], globalPosSize: [7, 7] },
  'hieradet-small': { ...hieraCommon, embedDim: 96, numHeads: 1, stages: [1, 2, 11, 2], globalAttBlocks: [7, 10, 13], globalPosSize: [7, 7] },
  'hieradet-base-plus': { ...hieraCommon, embedDim: 112, numHeads: 2, stages: [2, 3, 16, 3], globalAttBlocks: [12, 16, 20], globalPosSize: [14, 14] },
  'hieradet-large': {
    ...hieraCommon, embedDim: 144, numHeads: 2, stages: [2, 6, 36, 4], globalAttBlocks: [23, 33, 43], globalPosSize: [7, 7], windowSpec: [8, 4, 16, 8],
  },
  'hieradet-mini': { ...hieraCommon, embedDim: 16, numHeads: 1, stages: [1, 1, 2, 1], globalAttBlocks: [3], globalPosSize: [4, 4], imgSize: 128 },
};

/** One block's geometry (what sam2 `Hiera.__init__` derives per block). */
export interface HieraDetBlockSpec {
  index: number;
  dim: number;
  dimOut: number;
  heads: number;
  /** 0 = global attention. */
  windowSize: number;
  /** q-pooling stride at a stage change, else null. */
  qStride: [number, number] | null;
  stage: number;
}

/** The per-block layout: widths, heads, windows (lagging by one block) and pooling. */
export function hieradetBlocks(cfg: HieraDetConfig): HieraDetBlockSpec[] {
  const depth = cfg.stages.reduce((a, b) => a + b, 0);
  const ends = stageEndsOf(cfg);
  const qPoolBlocks = ends.slice(0, -1).map((e) => e + 1).slice(0, cfg.qPool);
  const out: HieraDetBlockSpec[] = [];
  let dim = cfg.embedDim;
  let heads = cfg.numHeads;
  let stage = 1;
  for (let i = 0; i < depth; i++) {
    let dimOut = dim;
    // The window lags by one block: the first block of a stage still uses the previous stage's window.
    let ws = cfg.windowSpec[stage - 1]!;
    if (cfg.globalAttBlocks.includes(i)) ws = 0;
    if (ends.includes(i - 1)) {
      dimOut = Math.trunc(dim * cfg.dimMul);
      heads = Math.trunc(heads * cfg.headMul);
      stage++;
    }
    out.push({ index: i, dim, dimOut, heads, windowSize: ws, qStride: qPoolBlocks.includes(i) ? cfg.qStride : null, stage });
    dim = dimOut;
  }
  return out;
}

function stageEndsOf(cfg: HieraDetConfig): number[] {
  const ends: number[] = [];
  let s = 0;
  for (const n of cfg.stages) ends.push((s += n) - 1);
  return ends;
}

/** MaxPool2d(kernel = stride = [sh, sw], ceil_mode=False) on NHWC. */
function maxPoolNhwc(x: Tensor, [sh, sw]: readonly [number, number]): Tensor {
  const [B, h, w, C] = x.shape as [number, number, number, number];
  const h2 = Math.floor(h / sh);
  const w2 = Math.floor(w / sw);
  const xc = slice(slice(x, 1, 0, h2 * sh), 2, 0, w2 * sw);
  // Two single-axis maxima (max is associative); the engine's reduceMax VJP takes one axis.
  return reduceMax(reduceMax(reshape(xc, [B, h2, sh, w2, sw, C]), 4), 2);
}

/** sam2 `MultiScaleAttention` on `x [Bw, h, w, dim]` -> `[Bw, h', w', dimOut]` (pooled q when qStride). */
function multiScaleAttention(p: Params, x: Tensor, b: HieraDetBlockSpec): Tensor {
  const [Bw, h, w] = x.shape as [number, number, number, number];
  const C = b.dimOut;
  // One qkv parameter (sam2 `qkv`), applied as three products on its row blocks: q, k, v [Bw, h, w, C].
  const [q0, k, v] = qkvProjections(p, 'qkv', x, b.dim, C);
  const q = b.qStride ? maxPoolNhwc(q0, b.qStride) : q0; // q pooling at a stage change
  const [hq, wq] = [q.shape[1]!, q.shape[2]!];
  // [Bw, h, w, C] -> [Bw, h*w, C]; SDPA with scale 1/sqrt(d)
  const o = multiHeadAttention(reshape(q, [Bw, hq * wq, C]), reshape(k, [Bw, h * w, C]), reshape(v, [Bw, h * w, C]), b.heads, (C / b.heads) ** -0.5);
  return linear(p, 'proj', reshape(o, [Bw, hq, wq, C]), C, C);
}

/** sam2 `MultiScaleBlock.forward` on NHWC `x [B, H, W, dim]`. */
export function hieradetBlock(
  p: Params, x: Tensor, b: HieraDetBlockSpec, eps: number, mlpRatio: number,
  dropMask?: Tensor | [Tensor | undefined, Tensor | undefined], keep = 1,
): Tensor {
  const [dropAttn, dropMlp] = Array.isArray(dropMask) ? dropMask : [dropMask, dropMask];
  let shortcut = x;
  const xn = layerNorm(p, 'norm1', x, eps);
  if (b.dim !== b.dimOut) {
    // The residual is projected from the NORMALISED x, then pooled (sam2 do_pool(self.proj(x), self.pool)).
    const proj = linear(p, 'proj', xn, b.dim, b.dimOut);
    shortcut = b.qStride ? maxPoolNhwc(proj, b.qStride) : proj;
  }
  let y: Tensor;
  if (b.windowSize > 0) {
    const part = windowPartition(xn, b.windowSize); // zero padding after norm1
    const a = multiScaleAttention(p.scope('attn.'), part.windows, b);
    // Pooled windows have side ws / stride; stitch them on the partition grid and crop to the shortcut.
    y = windowUnpartition(a, part.grid, [shortcut.shape[1]!, shortcut.shape[2]!]);
  } else {
    y = multiScaleAttention(p.scope('attn.'), xn, b);
  }
  let out = add(shortcut, dropPath(y, dropAttn, keep));
  const hidden = Math.trunc(b.dimOut * mlpRatio);
  // sam2 MLP(num_layers=2): layers.0 -> GELU -> layers.1
  const m = linear(p, 'mlp.layers.1', gelu(linear(p, 'mlp.layers.0', layerNorm(p, 'norm2', out, eps), b.dimOut, hidden)), hidden, b.dimOut);
  out = add(out, dropPath(m, dropMlp, keep));
  return out;
}

function validate(cfg: HieraDetConfig): void {
  const bad = (m: string): never => {
    throw new Error(`hieradet config: ${m}`);
  };
  if (cfg.stages.length !== cfg.windowSpec.length) bad(`stages (${cfg.stages.length}) and windowSpec (${cfg.windowSpec.length}) must have one entry per stage`);
  if (cfg.qPool < 0 || cfg.qPool > cfg.stages.length - 1) bad(`qPool ${cfg.qPool} must be in 0..${cfg.stages.length - 1}`);
  for (const b of hieradetBlocks(cfg)) {
    if (b.dimOut % b.heads) bad(`block ${b.index}: width ${b.dimOut} is not divisible by ${b.heads} heads`);
    if (b.qStride && b.windowSize > 0 && b.windowSize % b.qStride[0] !== 0) {
      bad(`block ${b.index}: window ${b.windowSize} is not divisible by the q stride ${b.qStride[0]}`);
    }
  }
}

export class HieraDet implements Model<HieraDetConfig> {
  readonly family = 'hieradet';
  readonly defaultRes: [number, number];
  readonly blocks: HieraDetBlockSpec[];
  constructor(readonly config: HieraDetConfig) {
    validate(config);
    this.blocks = hieradetBlocks(config);
    this.defaultRes = [config.imgSize, config.imgSize];
  }

  /** Indices of the last block of each stage (sam2 `stage_ends`). */
  stageEnds(): number[] {
    return stageEndsOf(this.config);
  }

  /** Output channels per stage, highest resolution first (sam2's `channel_list` is the reverse). */
  channels(): number[] {
    return this.stageEnds().map((e) => this.blocks[e]!.dimOut);
  }

  /** Overall stride of the patch embedding (sam2 PatchEmbed: 7x7 conv, stride 4, padding 3). */
  static readonly patchStride = 4;

  /**
   * Sizes that work: multiples of the patch stride 4 (so the token grid is exactly H/4 x W/4),
   * large enough that the last stage keeps at least one token (4 · 2^qPool pixels).
   * Any token grid works for the position embedding (crop rule), including 60x60.
   */
  checkInputSize(H: number, W: number): void {
    const s = HieraDet.patchStride;
    const min = s * 2 ** this.config.qPool;
    const ok = (v: number): boolean => Number.isInteger(v) && v % s === 0 && v >= min;
    if (ok(H) && ok(W)) return;
    const near = (v: number): string => (ok(v) ? `${v}` : v < min ? `${min}` : nearestMultiples(v, s, min).join(' or '));
    throw new Error(
      `hieradet: input ${H}x${W} is not supported: H and W must be multiples of the patch stride ${s} and at least ${min}; ` +
      `nearest sizes that work: ${near(H)} x ${near(W)}`);
  }

  /** The window embedding size (sam2: windowSpec[0] square). */
  windowPosSize(): [number, number] {
    const w0 = this.config.windowSpec[0]!;
    return this.config.windowPosSize ?? [w0, w0];
  }

  /**
   * x `[B, 3, H, W]` -> `aux['features.k']` (NCHW, stage k, highest resolution first),
   * `aux.pos_embed` (`[1, C, H/4, W/4]`), `aux.pos_embed_hw` (the same NHWC, as sam2 adds it); `logits` = the last stage.
   */
  forward(p: Params, x: Tensor, opts: ForwardOptions = {}): ForwardOutput {
    const cfg = this.config;
    if (x.rank !== 4 || x.shape[1] !== 3) throw new Error(`hieradet.forward: expected images [B, 3, H, W], got ${fmtShape(x.shape)}`);
    this.checkInputSize(x.shape[2]!, x.shape[3]!);
    const C = cfg.embedDim;
    const pw = p.param('patch_embed.proj.weight', [C, 3, 7, 7], { kind: 'fanIn', fanIn: 3 * 49 });
    const pb = p.param('patch_embed.proj.bias', [C], zeros);
    let h = transpose(conv2d(x, pw, pb, { stride: 4, padding: 3 }), [0, 2, 3, 1]); // [B, H/4, W/4, C]
    const [gh, gw] = [h.shape[1]!, h.shape[2]!];
    const [wh, ww] = this.windowPosSize();
    const glob = p.param('pos_embed', [1, C, ...cfg.globalPosSize], truncNormal(0.02), { decay: false });
    const win = p.param('pos_embed_window', [1, C, wh, ww], truncNormal(0.02), { decay: false });
    const posGrid = absWin(glob, win, gh, gw, { globalMode: 'bicubic' }); // [1, C, gh, gw]
    const pos = transpose(posGrid, [0, 2, 3, 1]); // NHWC
    h = add(h, pos);
    const ends = this.stageEnds();
    const aux: Record<string, Tensor> = { pos_embed: posGrid, pos_embed_hw: pos };
    const depth = this.blocks.length;
    const masks = opts.train ? opts.dropPathMasks : undefined;
    if (masks && masks.length && masks.length !== depth && masks.length !== 2 * depth) {
      throw new Error(`hieradet.forward: dropPathMasks has ${masks.length} entries; give ${depth} (one per block) or ${2 * depth} (attention and MLP branch of each block)`);
    }
    // [B, 1, 1] masks (what the train step feeds) -> [B, 1, 1, 1] for the NHWC activations.
    const nhwc = (m: Tensor | undefined): Tensor | undefined => (m && m.rank === 3 ? reshape(m, [m.shape[0]!, 1, 1, 1]) : m);
    for (const b of this.blocks) {
      const keep = 1 - (depth > 1 ? (cfg.dropPathRate * b.index) / (depth - 1) : 0);
      // sam2 MultiScaleBlock calls its DropPath twice (attention, MLP): independent draws when given per branch.
      const pair: [Tensor | undefined, Tensor | undefined] = !masks?.length ? [undefined, undefined]
        : masks.length === depth ? [nhwc(masks[b.index]), nhwc(masks[b.index])] : [nhwc(masks[2 * b.index]), nhwc(masks[2 * b.index + 1])];
      h = hieradetBlock(p.scope(`blocks.${b.index}.`), h, b, cfg.normEps, cfg.mlpRatio, pair, keep);
      const k = ends.indexOf(b.index);
      if (k >= 0) aux[`features.${k}`] = transpose(h, [0, 3, 1, 2]);
    }
    return { logits: aux[`features.${ends.length - 1}`]!, aux };
  }

  paramInfos(): Map<string, ParamInfo> {
    const [H, W] = this.defaultRes;
    return collectParams((p, g) => {
      this.forward(p, g.input('x', [1, 3, H, W]));
    });
  }
}

/** Builds a HieraDet from a preset name or a config, with overrides. */
export function createHieraDet(cfg: HieraDetConfig | string, overrides: Partial<HieraDetConfig> = {}): HieraDet {
  const base = presetOrConfig(cfg, hieradetPresets, 'createHieraDet');
  return new HieraDet({ ...base, ...overrides });
}

export interface RecursiveAbsWinInitInput {
  /** The pretrained model's global embedding, `[1, C, gh, gw]` (or `[C, gh, gw]`) row-major. */
  posEmbed: ArrayLike<number>;
  globalHW: readonly [number, number];
  /** The pretrained model's window embedding, `[1, C, wh, ww]`. */
  posEmbedWindow: ArrayLike<number>;
  windowHW: readonly [number, number];
  channels: number;
  /** The pretrained model's token grid where its embedding is evaluated (e.g. 56x56 for 224 px at stride 4). */
  pretrainGrid: readonly [number, number];
  /** Resize of the pretrained global part: sam2 'bicubic' (default); timm's abs-win Hiera 'bicubic_aa'. */
  globalMode?: ResampleMode;
}

export interface RecursiveAbsWinInitOutput {
  /** The detection backbone's `pos_embed_window`, `[1, C, ph, pw]` = the pretrained embedding at its own grid. */
  posEmbedWindow: { data: Float32Array; shape: [number, number, number, number] };
  /** The detection backbone's new global `pos_embed`, zeros `[1, C, gh', gw']` (so the start equals pure tiling). */
  posEmbed: { data: Float32Array; shape: [number, number, number, number] };
  /** Set this as `windowPosSize` of the detection config. */
  windowPosSize: [number, number];
}

/**
 * The paper's recursive absolute win (Bolya et al. 2024, Sec. 5): evaluate the pretrained abs-win
 * embedding (`interpolate(global) + tile(window)`) at the pretrained grid and use the result as the
 * WINDOW embedding of the detection backbone, tiled over the (larger) detection grid; a new coarse
 * global embedding, zero-initialised, learns what varies across the image. An adapter to the
 * backbone's parameter layout over `recursiveAbsWinWindow` of src/posembed/abswin.ts (float64).
 *
 * The pretrained grid should be a multiple of the stage-1 attention window (56 = 7 · 8) so that every
 * tile stays aligned with the windows.
 *
 * @example
 * const init = recursiveAbsWinInit({ posEmbed, globalHW: [7, 7], posEmbedWindow, windowHW: [8, 8], channels: 96, pretrainGrid: [56, 56] }, [7, 7]);
 * const det = createHieraDet('hieradet-tiny', { windowPosSize: init.windowPosSize });
 */
export function recursiveAbsWinInit(pre: RecursiveAbsWinInitInput, newGlobalHW: readonly [number, number]): RecursiveAbsWinInitOutput {
  const C = pre.channels;
  const [gh, gw] = pre.globalHW;
  const [wh, ww] = pre.windowHW;
  const [ph, pw] = pre.pretrainGrid;
  if (pre.posEmbed.length !== C * gh * gw) {
    throw new Error(`recursiveAbsWinInit: posEmbed has ${pre.posEmbed.length} values, [1, ${C}, ${gh}, ${gw}] needs ${C * gh * gw}`);
  }
  if (pre.posEmbedWindow.length !== C * wh * ww) {
    throw new Error(`recursiveAbsWinInit: posEmbedWindow has ${pre.posEmbedWindow.length} values, [1, ${C}, ${wh}, ${ww}] needs ${C * wh * ww}`);
  }
  const g: Grid = { data: Float64Array.from(pre.posEmbed), C, H: gh, W: gw };
  const w: Grid = { data: Float64Array.from(pre.posEmbedWindow), C, H: wh, W: ww };
  const inner = recursiveAbsWinWindow({ global: g, window: w, gridHW: [ph, pw], globalMode: pre.globalMode ?? 'bicubic' }); // [C, ph, pw]
  const [nh, nw] = newGlobalHW;
  return {
    posEmbedWindow: { data: Float32Array.from(inner.data), shape: [1, C, ph, pw] },
    posEmbed: { data: new Float32Array(C * nh * nw), shape: [1, C, nh, nw] },
    windowPosSize: [ph, pw],
  };
}
