/**
 * ViTDet: a plain ViT with window attention + a few global blocks and a simple feature pyramid
 * (Li, Mao, Girshick, He, "Exploring Plain Vision Transformer Backbones for Object Detection",
 * ECCV 2022). Semantics follow detectron2 `modeling/backbone/vit.py` (`ViT`, `Block`,
 * `SimpleFeaturePyramid`) and `utils.py` (`window_partition`, `get_abs_pos`, `get_rel_pos`).
 *
 * Position embedding, two recipes (`VitDetConfig.posEmbed`):
 * - 'interpolate' (the original ViTDet): the pretrained grid `pos_embed [1, 1+g·g, C]` (cls slot
 *   kept, as detectron2 stores it) is bicubically resized to the feature grid (`get_abs_pos`).
 * - 'abswin' (Bolya et al. 2024, "Window Attention is Bugged", Sec. 5): the pretrained grid IS the
 *   window embedding: tiled over the feature grid (cropped when the grid is not a multiple of the
 *   window), plus an optional coarse global embedding `pos_embed_global` interpolated on top
 *   (zero-initialised, so at the start the model equals pure tiling). With `relPos: 'global'` the
 *   window blocks lose their rel-pos tables, which the paper reports as both faster and better.
 *
 * Parameter names are detectron2's: the ViT under its own names (`patch_embed.proj`, `pos_embed`,
 * `blocks.i.*`), the pyramid as `simfp_{2..5}.*` (in a detectron2 checkpoint the ViT sits under
 * `backbone.net.` and the pyramid under `backbone.`; the key maps add/strip those prefixes).
 */
import {
  type Tensor, add, conv2d, fmtShape, gelu, layerNorm as lnOp, linear as linOp, matmul, reduceMax, reshape, slice, transpose,
} from '../graph/index.ts';
import { type ParamInfo, Params, collectParams, ones, truncNormal, zeros } from '../nn/params.ts';
import { dropPath, layerNorm, mlp } from '../nn/layers.ts';
import { relPosAttention } from '../nn/relpos-attention.ts';
import { windowPartition, windowUnpartition } from '../nn/window.ts';
import { absWin, resampleGrid, tileWindow, tokensToGrid } from '../posembed/graph.ts';
import { type ForwardOptions, type ForwardOutput, type Model, nearestMultiples } from './types.ts';
import { presetOrConfig } from './preset.ts';

export interface VitDetPyramidConfig {
  /** Output channels of every level (detectron2 `out_channels`, 256). */
  outChannels: number;
  /** Scales relative to the stride-16 map, detectron2 `scale_factors` (4, 2, 1, 0.5 -> strides 4..32). */
  scaleFactors: number[];
  /** detectron2 `LastLevelMaxPool`: p6 = the stride-32 level subsampled by 2 (kernel 1, stride 2). */
  topBlock: boolean;
  /** eps of the channel LayerNorms ('LN' norm in detectron2 = `layers.LayerNorm`, eps 1e-6). */
  normEps: number;
}

export interface VitDetConfig {
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  qkvBias: boolean;
  patchSize: number;
  /** detectron2 `img_size`: global blocks' rel-pos tables are made for `imgSize / patchSize` (64 at 1024). */
  imgSize: number;
  /** Window of the window-attention blocks (14: the pretrained 224/16 grid). */
  windowSize: number;
  /** Indices of the global-attention blocks (all others use windows). */
  globalBlocks: number[];
  /** Side of the pretrained square position-embedding grid (`pretrain_img_size / patch_size`, 14). */
  pretrainGrid: number;
  /** Whether `pos_embed` keeps the pretrained cls slot (`[1, 1 + g·g, C]`, detectron2 `pretrain_use_cls_token`). */
  pretrainUseClsToken: boolean;
  posEmbed: 'interpolate' | 'abswin';
  /** abswin only: size of the zero-initialised global embedding `pos_embed_global [1, C, gh, gw]`; null = none. */
  absWinGlobal: [number, number] | null;
  /** Where decomposed rel-pos lives: every block, only the global blocks, or nowhere. */
  relPos: 'all' | 'global' | 'none';
  /** LayerNorm eps of the blocks (detectron2 ViTDet configs: 1e-6; `Block`'s own default: 1e-5). */
  normEps: number;
  /** Stochastic depth, linear over the blocks (detectron2 `drop_path_rate`). */
  dropPathRate: number;
  /** Simple feature pyramid; null = return the stride-16 map only. */
  pyramid: VitDetPyramidConfig | null;
}

const sfp = (outChannels = 256): VitDetPyramidConfig => ({ outChannels, scaleFactors: [4, 2, 1, 0.5], topBlock: true, normEps: 1e-6 });
const common = {
  mlpRatio: 4, qkvBias: true, patchSize: 16, imgSize: 1024, windowSize: 14, pretrainGrid: 14, pretrainUseClsToken: true,
  posEmbed: 'interpolate', absWinGlobal: null, relPos: 'all', normEps: 1e-6,
} as const;

/**
 * Presets: detectron2 `projects/ViTDet/configs/COCO/mask_rcnn_vitdet_{b,l,h}_100ep.py` (window 14,
 * global blocks 2,5,8,11 / 5,11,17,23 / 7,15,23,31, drop path 0.1 / 0.4 / 0.5, LN eps 1e-6, 1024 px,
 * SimpleFeaturePyramid 256 ch with LastLevelMaxPool). `vitdet-mini` is ours, for CPU tests and demos.
 */
export const vitdetPresets: Record<string, VitDetConfig> = {
  'vitdet-b': { ...common, embedDim: 768, depth: 12, numHeads: 12, globalBlocks: [2, 5, 8, 11], dropPathRate: 0.1, absWinGlobal: null, pyramid: sfp() },
  'vitdet-l': { ...common, embedDim: 1024, depth: 24, numHeads: 16, globalBlocks: [5, 11, 17, 23], dropPathRate: 0.4, absWinGlobal: null, pyramid: sfp() },
  'vitdet-h': { ...common, embedDim: 1280, depth: 32, numHeads: 16, globalBlocks: [7, 15, 23, 31], dropPathRate: 0.5, absWinGlobal: null, pyramid: sfp() },
  'vitdet-mini': {
    ...common, embedDim: 64, depth: 4, numHeads: 2, imgSize: 224, windowSize: 7, pretrainGrid: 7, globalBlocks: [1, 3],
    dropPathRate: 0, absWinGlobal: null, pyramid: sfp(32),
  },
};

export interface VitDetBlockOptions {
  heads: number;
  mlpHidden: number;
  /** 0 = global attention. */
  windowSize: number;
  /** Size the rel-pos tables were made for (detectron2 `input_size`, `(ws, ws)` in window blocks); null = no rel-pos. */
  relPosInput: readonly [number, number] | null;
  qkvBias: boolean;
  eps: number;
  /** Drop-path keep mask [B, 1, 1, 1] and keep probability. */
  dropMask?: Tensor;
  keep?: number;
}

/**
 * detectron2 `vit.Block.forward` on NHWC `x [B, H, W, C]`; parameters under `p` (e.g.
 * `p.scope('blocks.3.')`). Window blocks zero-pad `norm1(x)` to a multiple of the window, attend
 * within windows with no mask (padded tokens' keys/values are the qkv bias) and crop back.
 */
export function vitdetBlock(p: Params, x: Tensor, o: VitDetBlockOptions): { y: Tensor; Rh?: Tensor; Rw?: Tensor } {
  const C = x.shape[3]!;
  const [H, W] = [x.shape[1]!, x.shape[2]!];
  let h = layerNorm(p, 'norm1', x, o.eps);
  const attnOpts = { dim: C, heads: o.heads, qkvBias: o.qkvBias, relPosInput: o.relPosInput };
  let Rh: Tensor | undefined;
  let Rw: Tensor | undefined;
  if (o.windowSize > 0) {
    const part = windowPartition(h, o.windowSize);
    const a = relPosAttention(p.scope('attn.'), part.windows, attnOpts);
    h = windowUnpartition(a.out, part.grid, [H, W]);
    ({ Rh, Rw } = a);
  } else {
    const a = relPosAttention(p.scope('attn.'), h, attnOpts);
    h = a.out;
    ({ Rh, Rw } = a);
  }
  const keep = o.keep ?? 1;
  let y = add(x, dropPath(h, o.dropMask, keep));
  y = add(y, dropPath(mlp(p, 'mlp', layerNorm(p, 'norm2', y, o.eps), C, o.mlpHidden), o.dropMask, keep));
  const out: { y: Tensor; Rh?: Tensor; Rw?: Tensor } = { y };
  if (Rh) out.Rh = Rh;
  if (Rw) out.Rw = Rw;
  return out;
}

/** Whether block `i` of `cfg` attends globally. */
const isGlobal = (cfg: VitDetConfig, i: number): boolean => cfg.globalBlocks.includes(i);

/** The rel-pos input size of block i, or null when it has no rel-pos tables under `cfg.relPos`. */
export function vitdetRelPosInput(cfg: VitDetConfig, i: number): [number, number] | null {
  const global = isGlobal(cfg, i);
  if (cfg.relPos === 'none' || (cfg.relPos === 'global' && !global)) return null;
  const g = cfg.imgSize / cfg.patchSize;
  return global ? [g, g] : [cfg.windowSize, cfg.windowSize];
}

/**
 * The position embedding added after the patch embedding, NHWC `[1, H, W, C]` for an `H x W`
 * token grid: detectron2 `get_abs_pos` ('interpolate') or absolute win ('abswin').
 */
export function vitdetPosEmbed(p: Params, cfg: VitDetConfig, H: number, W: number): Tensor {
  const C = cfg.embedDim;
  const g = cfg.pretrainGrid;
  const cls = cfg.pretrainUseClsToken ? 1 : 0;
  const pos = p.param('pos_embed', [1, cls + g * g, C], truncNormal(0.02), { decay: false });
  const grid = tokensToGrid(slice(pos, 1, cls), g, g); // [1, C, g, g]
  let out: Tensor;
  if (cfg.posEmbed === 'interpolate') {
    out = resampleGrid(grid, H, W, 'bicubic'); // get_abs_pos: F.interpolate bicubic, align_corners=False
  } else {
    // The pretrained grid becomes the window embedding; bring it to the window size if they differ.
    const ws = cfg.windowSize;
    const win = resampleGrid(grid, ws, ws, 'bicubic');
    if (cfg.absWinGlobal) {
      const [gh, gw] = cfg.absWinGlobal;
      out = absWin(p.param('pos_embed_global', [1, C, gh, gw], zeros, { decay: false }), win, H, W);
    } else {
      out = tileWindow(win, H, W);
    }
  }
  return transpose(out, [0, 2, 3, 1]);
}

/**
 * torch `ConvTranspose2d(cin, cout, kernel_size=2, stride=2)` on NHWC `x [B, h, w, cin]` -> `[B, 2h, 2w, cout]`.
 * With kernel = stride every output pixel comes from exactly one input pixel, so the transposed conv is
 * one matmul per pixel (`[cin] @ [cin, cout·2·2]`) followed by a pixel shuffle (reshape + transpose).
 */
export function convTranspose2x2(p: Params, name: string, x: Tensor, cin: number, cout: number): Tensor {
  const [B, h, w] = x.shape as [number, number, number, number];
  // torch ConvTranspose2d weight [Cin, Cout, 2, 2]; default init U(±1/sqrt(fan_in)), fan_in = Cout·2·2.
  const wt = p.param(`${name}.weight`, [cin, cout, 2, 2], { kind: 'fanIn', fanIn: cout * 4 });
  const b = p.param(`${name}.bias`, [cout], zeros);
  // y[b, 2i+a, 2j+c, o] = Σ_k x[b, i, j, k] W[k, o, a, c] + bias[o]
  const y = matmul(x, reshape(wt, [cin, cout * 4])); // [B, h, w, Cout*4] ordered (o, a, c)
  // [B, h, w, Cout, 2, 2] -> [B, h, 2, w, 2, Cout] -> [B, 2h, 2w, Cout]
  const shuffled = reshape(transpose(reshape(y, [B, h, w, cout, 2, 2]), [0, 1, 4, 2, 5, 3]), [B, 2 * h, 2 * w, cout]);
  return add(shuffled, b);
}

/** MaxPool2d(2, 2) with floor (ceil_mode=False) on NHWC. */
function maxPool2x2Nhwc(x: Tensor): Tensor {
  const [B, h, w, C] = x.shape as [number, number, number, number];
  const h2 = Math.floor(h / 2);
  const w2 = Math.floor(w / 2);
  const xc = slice(slice(x, 1, 0, 2 * h2), 2, 0, 2 * w2);
  // Two single-axis maxima (max is associative); the engine's reduceMax VJP takes one axis.
  return reduceMax(reduceMax(reshape(xc, [B, h2, 2, w2, 2, C]), 4), 2);
}

/** detectron2 `Conv2d(..., bias=False, norm=LayerNorm)` on NHWC (1x1 as a matmul, 3x3 via Conv). */
function convNorm(p: Params, name: string, x: Tensor, cin: number, cout: number, k: 1 | 3, eps: number): Tensor {
  // c2_msra_fill: kaiming normal, fan_out, relu gain -> std sqrt(2 / (cout·k·k)).
  const wt = p.param(`${name}.weight`, [cout, cin, k, k], { kind: 'normal', std: Math.sqrt(2 / (cout * k * k)) });
  let y: Tensor;
  if (k === 1) y = linOp(x, reshape(wt, [cout, cin]));
  else y = transpose(conv2d(transpose(x, [0, 3, 1, 2]), wt, null, { padding: 1 }), [0, 2, 3, 1]);
  return lnOp(y, p.param(`${name}.norm.weight`, [cout], ones), p.param(`${name}.norm.bias`, [cout], zeros), eps);
}

/**
 * detectron2 `SimpleFeaturePyramid` on the stride-16 NHWC map: per scale 4 / 2 / 1 / 0.5
 * (deconv-LN-GELU-deconv / deconv / identity / maxpool), then 1x1 conv + LN and 3x3 conv + LN.
 * Returns NCHW levels keyed `p{log2 stride}` (p2..p5, p6 with the top block).
 */
export function simpleFeaturePyramid(p: Params, x: Tensor, cfg: VitDetPyramidConfig, patchSize: number): Record<string, Tensor> {
  const dim = x.shape[3]!;
  const out: Record<string, Tensor> = {};
  for (const scale of cfg.scaleFactors) {
    const stage = Math.round(Math.log2(patchSize / scale));
    const n = `simfp_${stage}`;
    let y = x;
    let c = dim;
    let idx = 0;
    if (scale === 4) {
      y = convTranspose2x2(p, `${n}.0`, y, dim, dim / 2);
      y = gelu(lnOp(y, p.param(`${n}.1.weight`, [dim / 2], ones), p.param(`${n}.1.bias`, [dim / 2], zeros), cfg.normEps));
      y = convTranspose2x2(p, `${n}.3`, y, dim / 2, dim / 4);
      c = dim / 4;
      idx = 4;
    } else if (scale === 2) {
      y = convTranspose2x2(p, `${n}.0`, y, dim, dim / 2);
      c = dim / 2;
      idx = 1;
    } else if (scale === 0.5) {
      y = maxPool2x2Nhwc(y);
      idx = 1;
    } else if (scale !== 1) {
      throw new Error(`simpleFeaturePyramid: scale factor ${scale} is not supported (use 4, 2, 1 or 0.5, as detectron2)`);
    }
    y = convNorm(p, `${n}.${idx}`, y, c, cfg.outChannels, 1, cfg.normEps);
    y = convNorm(p, `${n}.${idx + 1}`, y, cfg.outChannels, cfg.outChannels, 3, cfg.normEps);
    out[`p${stage}`] = transpose(y, [0, 3, 1, 2]);
  }
  if (cfg.topBlock) {
    const last = out[`p${Math.round(Math.log2(patchSize / Math.min(...cfg.scaleFactors)))}`]!;
    // LastLevelMaxPool: max_pool2d(kernel 1, stride 2) = every other pixel.
    out[`p${Math.round(Math.log2(patchSize / Math.min(...cfg.scaleFactors))) + 1}`] = slice(slice(last, 2, 0, undefined, 2), 3, 0, undefined, 2);
  }
  return out;
}

function validate(cfg: VitDetConfig): void {
  const bad = (msg: string): never => {
    throw new Error(`vitdet config: ${msg}`);
  };
  if (cfg.embedDim % cfg.numHeads) bad(`embedDim ${cfg.embedDim} is not divisible by numHeads ${cfg.numHeads}`);
  if (cfg.imgSize % cfg.patchSize) bad(`imgSize ${cfg.imgSize} is not a multiple of patchSize ${cfg.patchSize}`);
  for (const i of cfg.globalBlocks) if (!Number.isInteger(i) || i < 0 || i >= cfg.depth) bad(`global block ${i} is outside 0..${cfg.depth - 1}`);
  if (cfg.windowSize < 1) bad(`windowSize must be >= 1, got ${cfg.windowSize}`);
  if (cfg.pyramid && cfg.embedDim % 4) bad(`the pyramid's deconvs need embedDim divisible by 4, got ${cfg.embedDim}`);
}

export class VitDet implements Model<VitDetConfig> {
  readonly family = 'vitdet';
  readonly defaultRes: [number, number];
  constructor(readonly config: VitDetConfig) {
    validate(config);
    this.defaultRes = [config.imgSize, config.imgSize];
  }

  /** H and W must be multiples of the patch size and at least two patches (the stride-32 level). */
  checkInputSize(H: number, W: number): void {
    const s = this.config.patchSize;
    const ok = (v: number): boolean => Number.isInteger(v) && v % s === 0 && v >= 2 * s;
    if (ok(H) && ok(W)) return;
    const near = (v: number): string => (ok(v) ? `${v}` : v < 2 * s ? `${2 * s}` : nearestMultiples(v, s, 2 * s).join(' or '));
    throw new Error(
      `vitdet: input ${H}x${W} is not supported: H and W must be multiples of the patch size ${s} and at least ${2 * s}; ` +
      `nearest sizes that work: ${near(H)} x ${near(W)}`);
  }

  /**
   * x `[B, 3, H, W]` -> `logits` = the stride-16 map NCHW (detectron2 `last_feat`), `aux`: `p2..p6`
   * (NCHW, with the pyramid), `pos_embed` (`[1, C, H/16, W/16]`), `pos_embed_hw` (the same NHWC, as added), `last_feat`.
   */
  forward(p: Params, x: Tensor, opts: ForwardOptions = {}): ForwardOutput {
    const cfg = this.config;
    if (x.rank !== 4 || x.shape[1] !== 3) throw new Error(`vitdet.forward: expected images [B, 3, H, W], got ${fmtShape(x.shape)}`);
    const [, , Hpx, Wpx] = x.shape as [number, number, number, number];
    this.checkInputSize(Hpx, Wpx);
    const C = cfg.embedDim;
    const s = cfg.patchSize;
    // detectron2 PatchEmbed: Conv2d(3, C, k=s, stride=s), then NCHW -> NHWC. torch default init.
    const pw = p.param('patch_embed.proj.weight', [C, 3, s, s], { kind: 'fanIn', fanIn: 3 * s * s });
    const pb = p.param('patch_embed.proj.bias', [C], zeros);
    let h = transpose(conv2d(x, pw, pb, { stride: s }), [0, 2, 3, 1]);
    const [gh, gw] = [h.shape[1]!, h.shape[2]!];
    const pos = vitdetPosEmbed(p, cfg, gh, gw);
    h = add(h, pos);
    const hidden = Math.floor(C * cfg.mlpRatio);
    for (let i = 0; i < cfg.depth; i++) {
      const keep = 1 - (cfg.depth > 1 ? (cfg.dropPathRate * i) / (cfg.depth - 1) : 0);
      const bo: VitDetBlockOptions = {
        heads: cfg.numHeads, mlpHidden: hidden, windowSize: isGlobal(cfg, i) ? 0 : cfg.windowSize,
        relPosInput: vitdetRelPosInput(cfg, i), qkvBias: cfg.qkvBias, eps: cfg.normEps, keep,
      };
      const m = opts.train ? opts.dropPathMasks?.[i] : undefined;
      if (m) bo.dropMask = m;
      h = vitdetBlock(p.scope(`blocks.${i}.`), h, bo).y;
    }
    const last = transpose(h, [0, 3, 1, 2]);
    const aux: Record<string, Tensor> = { last_feat: last, pos_embed: transpose(pos, [0, 3, 1, 2]), pos_embed_hw: pos };
    if (cfg.pyramid) Object.assign(aux, simpleFeaturePyramid(p, h, cfg.pyramid, s));
    return { logits: last, aux };
  }

  paramInfos(): Map<string, ParamInfo> {
    const [H, W] = this.defaultRes;
    return collectParams((p, g) => {
      this.forward(p, g.input('x', [1, 3, H, W]));
    });
  }
}

/** Builds a ViTDet from a preset name or a config, with overrides (e.g. `{ posEmbed: 'abswin', relPos: 'global' }`). */
export function createVitDet(cfg: VitDetConfig | string, overrides: Partial<VitDetConfig> = {}): VitDet {
  const base = presetOrConfig(cfg, vitdetPresets, 'createVitDet');
  return new VitDet({ ...base, ...overrides });
}

export interface VitDetSpeedPair {
  inputHW: [number, number];
  /** The original ViTDet: interpolated pos embed, rel-pos in every block. */
  baseline: VitDetConfig;
  /** Bolya et al. 2024: absolute win (tiled pretrained embedding), rel-pos only in the global blocks. */
  abswin: VitDetConfig;
}

/**
 * The two configurations the speed benchmark compares at `res` (square side or `[H, W]`):
 * `baseline` (posEmbed 'interpolate', relPos 'all') and `abswin` (posEmbed 'abswin', relPos
 * 'global'). Throws, naming sizes that work, when the preset cannot take `res`.
 *
 * @example
 * const { baseline, abswin, inputHW } = vitdetSpeedConfigs('vitdet-b', 1024);
 */
export function vitdetSpeedConfigs(preset: string | VitDetConfig, res: number | [number, number]): VitDetSpeedPair {
  const base = createVitDet(preset).config;
  const inputHW: [number, number] = typeof res === 'number' ? [res, res] : [res[0], res[1]];
  new VitDet(base).checkInputSize(inputHW[0], inputHW[1]);
  return {
    inputHW,
    baseline: { ...base, posEmbed: 'interpolate', relPos: 'all', absWinGlobal: null },
    abswin: { ...base, posEmbed: 'abswin', relPos: 'global' },
  };
}
