/**
 * Detection backbones initialised from pretrained classifiers, with the position-embedding and
 * rel-pos choices of Bolya et al. 2024 ("Window Attention is Bugged", Sec. 5, Tabs. 3-5).
 *
 * Plain ViT (global attention, pretrained at a small grid g x g) -> ViTDet (window attention with
 * window = g, a few global blocks, fine-tuned at a much larger grid), `posEmbedInit`:
 * - 'interpolate': the original ViTDet (detectron2 `get_abs_pos`): the pretrained grid is resized
 *   bicubically to the feature grid. Each window then sees a stretched piece of it.
 * - 'tile': the pretrained grid IS the window embedding, tiled over the feature grid (cropped when
 *   the grid is not a multiple of the window): every window sees exactly the pretraining embedding.
 * - 'abswin': 'tile' plus a zero-initialised coarse global embedding `pos_embed_global`
 *   interpolated on top (so the start equals pure tiling; the paper's absolute win).
 * - 'scratch': the pretrained embedding is discarded; a learned embedding at the detection grid,
 *   freshly initialised (truncated normal 0.02, as ViT), is learned during fine-tuning (Tab. 4).
 * `relPos`: decomposed rel-pos tables in every block ('all', ViTDet), only in the global blocks
 * ('global', the paper's recipe) or nowhere. Tables are zero-initialised, as detectron2 does when
 * they are not pretrained (`rel_pos_zero_init=True`), so they change nothing at the start.
 *
 * Hiera classifier (absolute or abs-win embedding, mask-unit attention) -> HieraDet (sam2's window
 * attention layout; the blocks carry over one to one: same qkv, proj, MLP and norms, q-pooling inside
 * the same windows), `posEmbedInit`:
 * - 'interpolate': the pretrained embedding, evaluated at its own grid, becomes HieraDet's global
 *   embedding (bicubically interpolated to every grid); the window embedding is zero.
 * - 'abswin' (recursive absolute win, Sec. 5): that same embedding becomes the WINDOW embedding
 *   (`windowPosSize` = the pretrained grid), tiled; a new global embedding starts at zero
 *   (`recursiveAbsWinInit` of src/models/hieradet.ts for abs-win sources).
 *
 * Parameters the classifier does not have (rel-pos tables, pyramid, global embeddings) are drawn from
 * `(seed, parameter name)`, so two backbones built from the same checkpoint and seed share every
 * initial weight they have in common (paired comparisons). Dropped: the classifier's head and
 * final norm (and a class token). Every step is listed in `notes`.
 *
 * @example
 * const det = vitdetFromVit(vit, vitParams, { posEmbedInit: 'tile', relPos: 'global', imgSize: 128, seed: 0 });
 * // det.model: a VitDet (window = the ViT grid); det.params: Map<name, Float32Array>
 */
import type { HieraConfig, HieraModel } from '../models/hiera.ts';
import { patchGrid } from '../models/hiera-config.ts';
import { type HieraDetConfig, createHieraDet, HieraDet, recursiveAbsWinInit } from '../models/hieradet.ts';
import type { VitConfig, VitModel } from '../models/vit.ts';
import { type VitDetConfig, type VitDetPyramidConfig, VitDet } from '../models/vitdet.ts';
import { type ParamInfo, initParam } from '../nn/params.ts';
import { absWinEmbed } from '../posembed/abswin.ts';
import { grid as gridOf, tokensToGrid } from '../posembed/reference.ts';
import { Rng, hashSeed } from '../util/rng.ts';

export type PosEmbedInit = 'interpolate' | 'tile' | 'abswin' | 'scratch';
export const POSEMBED_INITS: readonly PosEmbedInit[] = ['interpolate', 'tile', 'abswin', 'scratch'];
export type RelPosPlacement = VitDetConfig['relPos'];
export const RELPOS_PLACEMENTS: readonly RelPosPlacement[] = ['all', 'global', 'none'];

/** Parameters by name (what `initState(...).params` and the trainers hold). */
export type ParamMap = Map<string, Float32Array>;

export interface InitResult<M> {
  model: M;
  params: ParamMap;
  /** What was copied, converted, initialised and dropped, one line each. */
  notes: string[];
}

/**
 * Draws parameter `info` from its initialiser with a stream keyed by `(seed, name)`: the same name
 * gets the same values whatever else the model holds.
 */
export function initByName(info: ParamInfo, seed: number): Float32Array {
  return initParam(info, new Rng(hashSeed(seed, 'det-init', info.name)));
}

/** Evenly spaced global blocks: the last block of each of `n` equal parts (detectron2 ViTDet-B: 2, 5, 8, 11 of 12). */
export function evenGlobalBlocks(depth: number, n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > depth) throw new Error(`evenGlobalBlocks: ${n} global blocks do not fit in depth ${depth}`);
  return Array.from({ length: n }, (_, k) => Math.round(((k + 1) * depth) / n) - 1);
}

export interface VitDetInitOptions {
  posEmbedInit: PosEmbedInit;
  relPos: RelPosPlacement;
  /** Input side the detector is built for (its rel-pos tables of the global blocks are made for imgSize / patch). */
  imgSize: number;
  /** Window of the window blocks; default the pretrained grid (so 'tile' gives each window exactly the pretraining embedding). */
  windowSize?: number;
  /** Global-attention blocks; default a third of them, evenly spaced (`evenGlobalBlocks`; detectron2: 4 of 12). */
  globalBlocks?: number[];
  /** 'abswin': grid of the zero-initialised global embedding; default the pretrained grid. */
  absWinGlobal?: [number, number];
  /** Simple feature pyramid; default none (the detector head builds its own levels). */
  pyramid?: VitDetPyramidConfig | null;
  dropPathRate?: number;
  /** Seed of every parameter the ViT does not provide. */
  seed: number;
}

/** ViTDet parameters a ViT classifier does not have: rel-pos tables, the abs-win global embedding, the pyramid. */
const VITDET_ONLY = /(^|\.)rel_pos_[hw]$|^pos_embed_global$|^simfp_/;

/** Copies `name` from the source weights, checking the length. */
function take(src: ReadonlyMap<string, Float32Array>, name: string, info: ParamInfo, op: string): Float32Array {
  const v = src.get(name);
  const n = info.shape.reduce((a, b) => a * b, 1);
  if (!v) throw new Error(`${op}: the pretrained weights have no '${name}' (needed for [${info.shape}])`);
  if (v.length !== n) throw new Error(`${op}: pretrained '${name}' has ${v.length} values, the detection backbone needs [${info.shape}] = ${n}`);
  return Float32Array.from(v);
}

/**
 * A plain global-attention ViT with a learned embedding -> ViTDet (see the file comment).
 * The ViT's blocks, patch embedding and (except for 'scratch') its embedding grid carry over.
 */
export function vitdetFromVit(vit: VitModel, weights: ReadonlyMap<string, Float32Array>, o: VitDetInitOptions): InitResult<VitDet> {
  const op = 'vitdetFromVit';
  const v: VitConfig = vit.config;
  if (vit.family !== 'vit' || v.posEmbed !== 'learned' || v.lpe) {
    throw new Error(`${op}: needs a plain ViT with a learned pos_embed (posEmbed 'learned', no LPE); got ${vit.family} with posEmbed '${v.posEmbed}'`);
  }
  if (!POSEMBED_INITS.includes(o.posEmbedInit)) throw new Error(`${op}: posEmbedInit must be one of ${POSEMBED_INITS.join(', ')}, got '${String(o.posEmbedInit)}'`);
  if (!RELPOS_PLACEMENTS.includes(o.relPos)) throw new Error(`${op}: relPos must be one of ${RELPOS_PLACEMENTS.join(', ')}, got '${String(o.relPos)}'`);
  const [gh, gw] = [v.imgSize[0] / v.patchSize, v.imgSize[1] / v.patchSize];
  if (gh !== gw) throw new Error(`${op}: the ViT grid ${gh}x${gw} is not square; ViTDet stores a square pretrain grid (pretrain the ViT at a square size)`);
  if (!Number.isInteger(o.imgSize) || o.imgSize % v.patchSize) {
    throw new Error(`${op}: imgSize ${o.imgSize} must be a multiple of the patch size ${v.patchSize} (e.g. ${Math.max(2, Math.round(o.imgSize / v.patchSize)) * v.patchSize})`);
  }
  const newGrid = o.imgSize / v.patchSize;
  const scratch = o.posEmbedInit === 'scratch';
  const cls = v.classToken ? 1 : 0;
  const cfg: VitDetConfig = {
    embedDim: v.embedDim,
    depth: v.depth,
    numHeads: v.numHeads,
    mlpRatio: v.mlpRatio,
    qkvBias: v.qkvBias,
    patchSize: v.patchSize,
    imgSize: o.imgSize,
    windowSize: o.windowSize ?? gh,
    globalBlocks: o.globalBlocks ?? evenGlobalBlocks(v.depth, Math.max(1, Math.round(v.depth / 3))),
    // 'scratch': a fresh embedding stored at the detection grid (get_abs_pos is the identity there).
    pretrainGrid: scratch ? newGrid : gh,
    pretrainUseClsToken: scratch ? false : cls === 1,
    posEmbed: o.posEmbedInit === 'tile' || o.posEmbedInit === 'abswin' ? 'abswin' : 'interpolate',
    absWinGlobal: o.posEmbedInit === 'abswin' ? (o.absWinGlobal ?? [gh, gw]) : null,
    relPos: o.relPos,
    normEps: v.layerNormEps,
    dropPathRate: o.dropPathRate ?? 0,
    pyramid: o.pyramid ?? null,
  };
  const model = new VitDet(cfg);
  const params: ParamMap = new Map();
  const initialised: string[] = [];
  for (const [name, info] of model.paramInfos()) {
    if (name === 'pos_embed' && scratch) {
      params.set(name, initByName(info, o.seed));
      initialised.push(name);
    } else if (weights.has(name) || !VITDET_ONLY.test(name)) {
      params.set(name, take(weights, name, info, op));
    } else {
      params.set(name, initByName(info, o.seed));
      initialised.push(name);
    }
  }
  const dropped = [...weights.keys()].filter((k) => !params.has(k));
  const how = {
    interpolate: `the ViT's ${gh}x${gw} pos_embed is kept and bicubically interpolated to every feature grid (detectron2 get_abs_pos)`,
    tile: `the ViT's ${gh}x${gw} pos_embed is the window embedding, tiled over the feature grid (window ${cfg.windowSize}${cfg.windowSize !== gh ? `, bicubic ${gh} -> ${cfg.windowSize}` : ''})`,
    abswin: `the ViT's ${gh}x${gw} pos_embed is the window embedding, tiled, plus a zero-initialised ${cfg.absWinGlobal?.join('x')} global embedding interpolated on top`,
    scratch: `the ViT's pos_embed is discarded; a ${newGrid}x${newGrid} embedding is initialised from scratch (truncated normal 0.02)`,
  }[o.posEmbedInit];
  const notes = [
    `${op}: ${how}`,
    `${op}: window ${cfg.windowSize}, global blocks ${cfg.globalBlocks.join(', ')}, rel-pos ${cfg.relPos}${cfg.relPos === 'none' ? '' : ' (tables zero-initialised)'}`,
    `${op}: initialised ${initialised.length ? initialised.join(', ') : 'nothing'}`,
    `${op}: dropped ${dropped.length ? dropped.join(', ') : 'nothing'}`,
  ];
  return { model, params, notes };
}

export interface HieraDetInitOptions {
  /** 'interpolate' or 'abswin' (recursive absolute win). */
  posEmbedInit: 'interpolate' | 'abswin';
  imgSize: number;
  /** 'abswin': grid of the new zero-initialised global embedding; default the source's `globalPosSize`. */
  globalPosSize?: [number, number];
  dropPathRate?: number;
  seed: number;
}

/**
 * The HieraDet layout that runs a Hiera's blocks unchanged: window per stage = the mask unit pooled
 * with the stage (0 where the Hiera attends globally), global blocks = the blocks where the Hiera's
 * mask-unit attention is off (both lag one block behind the stage, in both codes).
 */
export function hieradetConfigOf(h: HieraConfig, imgSize: number): Omit<HieraDetConfig, 'globalPosSize' | 'windowPosSize' | 'dropPathRate'> {
  if (h.maskUnitSize[0] !== h.maskUnitSize[1] || h.qStride[0] !== h.qStride[1]) {
    throw new Error(`hieradetConfigOf: HieraDet uses square windows and q strides; the Hiera has mask unit ${h.maskUnitSize.join('x')} and q stride ${h.qStride.join('x')}`);
  }
  if (h.layerScale !== null) throw new Error('hieradetConfigOf: the Hiera has LayerScale (timm abs-win Hiera); HieraDet has none, so its blocks cannot carry over');
  if (!h.expandProj) throw new Error('hieradetConfigOf: the Hiera concatenates pools at width changes (expandProj false); HieraDet projects the residual');
  const windowSpec = h.stages.map((_, s) => (h.maskUnitAttn[s] ? h.maskUnitSize[0] / h.qStride[0] ** Math.min(s, h.qPool) : 0));
  const ends = h.stages.map((_, i) => h.stages.slice(0, i + 1).reduce((a, b) => a + b, 0) - 1);
  const depth = ends[ends.length - 1]! + 1;
  const globalAttBlocks: number[] = [];
  let stage = 0;
  for (let i = 0; i < depth; i++) {
    // As hieraPlan: block i takes the setting of block i - 1's stage (the one-block lag).
    if (!h.maskUnitAttn[stage]) globalAttBlocks.push(i);
    if (ends.includes(i - 1)) stage++;
  }
  // HieraDet looks up windowSpec of the lagged stage; a global stage's entry is never used by a
  // windowed block except the lag block, which takes the previous stage's window.
  return {
    embedDim: h.embedDim, numHeads: h.numHeads, stages: [...h.stages], qPool: h.qPool, qStride: [h.qStride[0], h.qStride[1]],
    dimMul: h.dimMul, headMul: h.headMul, windowSpec: windowSpec.map((w) => (w === 0 ? 1 : w)), globalAttBlocks,
    mlpRatio: h.mlpRatio, normEps: h.normEps, imgSize,
  };
}

/** The embedding a Hiera adds at its own token grid, [C, h, w] (float64): learned, or abs-win evaluated there. */
export function hieraEmbedAtGrid(h: HieraConfig, weights: ReadonlyMap<string, Float32Array>): { data: Float64Array; C: number; H: number; W: number } {
  const [ph, pw] = patchGrid(h, h.inputSize[0], h.inputSize[1]);
  const C = h.embedDim;
  const pe = weights.get('pos_embed');
  if (!pe) throw new Error('hieraEmbedAtGrid: the weights have no pos_embed');
  if (h.posEmbed === 'absolute') return { data: tokensToGrid(pe, C, ph, pw), C, H: ph, W: pw };
  const win = weights.get(h.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window');
  if (!win) throw new Error('hieraEmbedAtGrid: the abs-win Hiera weights have no window embedding');
  return absWinEmbed(gridOf(pe, C, ...h.globalPosSize), gridOf(win, C, ...h.maskUnitSize), ph, pw, { globalMode: h.globalResample });
}

/** Hiera classifier -> HieraDet (see the file comment). */
export function hieradetFromHiera(hiera: HieraModel, weights: ReadonlyMap<string, Float32Array>, o: HieraDetInitOptions): InitResult<HieraDet> {
  const op = 'hieradetFromHiera';
  const h = hiera.config;
  if (o.posEmbedInit !== 'interpolate' && o.posEmbedInit !== 'abswin') {
    throw new Error(`${op}: posEmbedInit must be 'interpolate' or 'abswin' (recursive), got '${String(o.posEmbedInit)}'`);
  }
  const base = hieradetConfigOf(h, o.imgSize);
  const C = h.embedDim;
  const E = hieraEmbedAtGrid(h, weights); // [C, ph, pw]
  const [ph, pw] = [E.H, E.W];
  let globalPosSize: [number, number];
  let windowPosSize: [number, number];
  let posEmbed: Float32Array;
  let posEmbedWindow: Float32Array;
  if (o.posEmbedInit === 'interpolate') {
    globalPosSize = [ph, pw];
    windowPosSize = [base.windowSpec[0]!, base.windowSpec[0]!];
    posEmbed = Float32Array.from(E.data);
    posEmbedWindow = new Float32Array(C * windowPosSize[0] * windowPosSize[1]);
  } else {
    const g = o.globalPosSize ?? (h.posEmbed === 'abswin' ? h.globalPosSize : [Math.max(1, ph / h.maskUnitSize[0]), Math.max(1, pw / h.maskUnitSize[1])] as [number, number]);
    globalPosSize = [g[0], g[1]];
    if (h.posEmbed === 'abswin') {
      const r = recursiveAbsWinInit({
        posEmbed: weights.get('pos_embed')!, globalHW: h.globalPosSize,
        posEmbedWindow: weights.get(h.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window')!, windowHW: h.maskUnitSize,
        channels: C, pretrainGrid: [ph, pw], globalMode: h.globalResample,
      }, globalPosSize);
      windowPosSize = r.windowPosSize;
      posEmbed = r.posEmbed.data;
      posEmbedWindow = r.posEmbedWindow.data;
    } else {
      windowPosSize = [ph, pw];
      posEmbed = new Float32Array(C * globalPosSize[0] * globalPosSize[1]);
      posEmbedWindow = Float32Array.from(E.data);
    }
  }
  const model = createHieraDet({ ...base, globalPosSize, windowPosSize, dropPathRate: o.dropPathRate ?? 0 });
  const params: ParamMap = new Map();
  const initialised: string[] = [];
  const used = new Set<string>(['pos_embed', 'pos_embed_window', 'pos_embed_win']);
  for (const [name, info] of model.paramInfos()) {
    if (name === 'pos_embed') params.set(name, posEmbed);
    else if (name === 'pos_embed_window') params.set(name, posEmbedWindow);
    else {
      // sam2 MLP(num_layers=2) names its layers `layers.0/1`; the official Hiera `fc1/fc2`.
      const src = name.replace(/\.mlp\.layers\.0\./, '.mlp.fc1.').replace(/\.mlp\.layers\.1\./, '.mlp.fc2.');
      if (weights.has(src)) {
        params.set(name, take(weights, src, info, op));
        used.add(src);
      } else {
        params.set(name, initByName(info, o.seed));
        initialised.push(name);
      }
    }
  }
  const dropped = [...weights.keys()].filter((k) => !used.has(k));
  const notes = [
    o.posEmbedInit === 'interpolate'
      ? `${op}: the Hiera's embedding at its ${ph}x${pw} grid is HieraDet's global pos_embed (bicubic to every grid); window embedding zero`
      : `${op}: recursive absolute win: the Hiera's embedding at its ${ph}x${pw} grid is the window embedding (tiled); new ${globalPosSize.join('x')} global embedding at zero`,
    `${op}: windows per stage ${base.windowSpec.join(', ')}, global blocks ${base.globalAttBlocks.join(', ') || 'none'}`,
    `${op}: initialised ${initialised.length ? initialised.join(', ') : 'nothing'}`,
    `${op}: dropped ${dropped.length ? dropped.join(', ') : 'nothing'}`,
  ];
  return { model, params, notes };
}

/** Re-export for callers that check input sizes before building. */
export { HieraDet };
