/**
 * A detector = a backbone (ViTDet or HieraDet) + optional neck + the FCOS head (src/det/fcos.ts),
 * with its whole configuration as plain data (`DetectorSpec`, what a checkpoint stores).
 *
 * - ViTDet: the simple feature pyramid (detectron2 `SimpleFeaturePyramid`) already gives p2..p6
 *   of equal width; `levels` picks which of them the head sees (default p3..p6).
 * - HieraDet: the four stage maps (strides 4, 8, 16, 32, widths growing ×2) go through a small
 *   FPN-like neck as sam2 `FpnNeck` (sam2/modeling/backbones/image_encoder.py): a 1x1 lateral conv
 *   per stage to `neck.dim` channels, plus (with `topDown`) the coarser level upsampled by nearest
 *   neighbour and added, from the coarsest down.
 * - Levels coarser than what the backbone gives (e.g. p6 on HieraDet, p7 on ViTDet) are made as
 *   detectron2 `LastLevelMaxPool` makes p6: the next finer level subsampled by 2 (kernel 1, stride 2).
 *
 * Parameters are named `backbone.<the backbone's official names>`, `neck.*`, `head.*`, so
 * layer-wise lr decay (`layerId`) sees the ViT blocks and puts neck and head at the top.
 *
 * @example
 * const det = createDetector({ backbone: { family: 'vitdet', config: 'vitdet-mini' }, numClasses: 3 });
 * const levels = det.levels(128, 192);          // strides, map sizes and scale ranges at that input
 */
import { Graph, type Tensor, conv2d, fmtShape, gather, slice, add } from '../graph/index.ts';
import { type ParamInfo, Params, collectParams, initWeights, zeros } from '../nn/params.ts';
import type { ForwardOptions } from '../models/types.ts';
import { VitDet, type VitDetConfig, createVitDet } from '../models/vitdet.ts';
import { HieraDet, type HieraDetConfig, createHieraDet } from '../models/hieradet.ts';
import { Rng, hashSeed } from '../util/rng.ts';
import { type FcosHeadConfig, type FcosLevelOutput, defaultFcosHead, fcosHead } from './fcos.ts';
import { type FcosLevel, defaultScaleRanges } from './fcos-targets.ts';

export type BackboneSpec = { family: 'vitdet'; config: VitDetConfig } | { family: 'hieradet'; config: HieraDetConfig };

export interface NeckConfig {
  /** Common width of every level (sam2 FpnNeck `d_model`, 256). */
  dim: number;
  /** Add the upsampled coarser level to each lateral (FPN top-down pathway). */
  topDown: boolean;
}

export interface FcosLossConfig {
  /** Focal loss α and γ (0.25, 2). */
  focalAlpha: number;
  focalGamma: number;
  /** Centre-sampling radius in strides (1.5; 0 = off). */
  centerSampling: number;
  /** Per-level (lo, hi) of max(l, t, r, b) in pixels (hi may be Infinity); null = torchvision's (4s, 8s) rule. */
  scaleRanges: [number, number][] | null;
  /** Weights of the classification, GIoU and centre-ness terms (1, 1, 1). */
  weights: { cls: number; box: number; ctr: number };
}

export interface DetectorSpec {
  backbone: BackboneSpec;
  numClasses: number;
  /** Pyramid levels the head sees, finest first, named p<log2 stride> ('p3' = stride 8). */
  levels: string[];
  /** HieraDet: required (its stages differ in width); ViTDet: null (the pyramid's levels are equal). */
  neck: NeckConfig | null;
  head: FcosHeadConfig;
  loss: FcosLossConfig;
}

export const defaultFcosLoss: FcosLossConfig = {
  focalAlpha: 0.25, focalGamma: 2, centerSampling: 1.5, scaleRanges: null, weights: { cls: 1, box: 1, ctr: 1 },
};

const levelIndex = (id: string): number => {
  const m = /^p(\d+)$/.exec(id);
  if (!m) throw new Error(`detector: level '${id}' is not of the form p<k> (p3 = stride 8)`);
  return Number(m[1]);
};

/** torch F.interpolate(mode='nearest', size=(h, w)) on NCHW: source index floor(dst · in / out). */
function nearestResize(x: Tensor, h: number, w: number): Tensor {
  const [, , hi, wi] = x.shape as [number, number, number, number];
  const rows = Array.from({ length: h }, (_, i) => Math.min(hi - 1, Math.floor((i * hi) / h)));
  const cols = Array.from({ length: w }, (_, j) => Math.min(wi - 1, Math.floor((j * wi) / w)));
  return gather(gather(x, 2, rows), 3, cols);
}

/** LastLevelMaxPool: max_pool2d(kernel 1, stride 2) = every other pixel, NCHW. */
const subsample2 = (x: Tensor): Tensor => slice(slice(x, 2, 0, undefined, 2), 3, 0, undefined, 2);

export class Detector {
  readonly backbone: VitDet | HieraDet;
  private readonly levelCache = new Map<string, FcosLevel[]>();
  private infos: Map<string, ParamInfo> | null = null;

  constructor(readonly spec: DetectorSpec) {
    const bad = (m: string): never => {
      throw new Error(`detector: ${m}`);
    };
    if (!Number.isInteger(spec.numClasses) || spec.numClasses < 1) bad(`numClasses must be a positive integer, got ${spec.numClasses}`);
    if (!spec.levels.length) bad('levels is empty; name the pyramid levels the head sees, e.g. ["p3", "p4", "p5", "p6"]');
    const idx = spec.levels.map(levelIndex);
    for (let i = 1; i < idx.length; i++) if (idx[i]! !== idx[i - 1]! + 1) bad(`levels must be consecutive, finest first; got [${spec.levels.join(', ')}]`);
    if (spec.loss.scaleRanges && spec.loss.scaleRanges.length !== spec.levels.length) {
      bad(`loss.scaleRanges has ${spec.loss.scaleRanges.length} ranges for ${spec.levels.length} levels`);
    }
    if (spec.head.numConvs < 0 || !Number.isInteger(spec.head.numConvs)) bad(`head.numConvs must be an integer >= 0, got ${spec.head.numConvs}`);
    if (spec.backbone.family === 'vitdet') {
      this.backbone = new VitDet(spec.backbone.config);
      const pyr = spec.backbone.config.pyramid;
      if (!pyr) bad('the ViTDet backbone has no pyramid (config.pyramid is null); the head needs p2..p6');
      if (spec.neck) bad('a ViTDet backbone takes no neck (its pyramid levels already share one width); set neck: null');
    } else if (spec.backbone.family === 'hieradet') {
      this.backbone = new HieraDet(spec.backbone.config);
      if (!spec.neck) bad('a HieraDet backbone needs a neck ({ dim, topDown }): its stages differ in width');
      const qs = spec.backbone.config.qStride;
      if (qs[0] !== 2 || qs[1] !== 2) bad(`HieraDet levels need q stride [2, 2] (strides 4, 8, 16, 32), got [${qs.join(', ')}]`);
    } else {
      throw new Error(`detector: unknown backbone family '${(spec.backbone as { family: string }).family}' (known: vitdet, hieradet)`);
    }
    const avail = this.backboneLevels();
    if (idx[0]! < avail[0]!) bad(`level p${idx[0]} is finer than the backbone gives (finest: p${avail[0]})`);
  }

  /** Levels (log2 strides) the backbone + neck produce before any extra subsampled level. */
  private backboneLevels(): number[] {
    const s = this.spec;
    if (s.backbone.family === 'vitdet') {
      const c = s.backbone.config;
      const pyr = c.pyramid!;
      const ks = pyr.scaleFactors.map((f) => Math.round(Math.log2(c.patchSize / f))).sort((a, b) => a - b);
      if (pyr.topBlock) ks.push(ks[ks.length - 1]! + 1);
      return ks;
    }
    const c = s.backbone.config;
    return c.stages.map((_, k) => 2 + Math.min(k, c.qPool));
  }

  get numClasses(): number {
    return this.spec.numClasses;
  }

  /** Strides of the head's levels, finest first. */
  strides(): number[] {
    return this.spec.levels.map((l) => 2 ** levelIndex(l));
  }

  /** Throws naming the nearest sizes that work (the backbone's rule). */
  checkInputSize(H: number, W: number): void {
    this.backbone.checkInputSize(H, W);
  }

  /** Backbone levels as NCHW maps of equal width, keyed p<k>. */
  private features(p: Params, x: Tensor, opts: ForwardOptions): Map<number, Tensor> {
    const s = this.spec;
    const out = this.backbone.forward(p.scope('backbone.'), x, opts);
    const feats = new Map<number, Tensor>();
    if (s.backbone.family === 'vitdet') {
      for (const [k, t] of Object.entries(out.aux)) {
        const m = /^p(\d+)$/.exec(k);
        if (m) feats.set(Number(m[1]), t);
      }
      return feats;
    }
    const neck = s.neck!;
    const bb = this.backbone as HieraDet;
    const chans = bb.channels();
    const lv = this.backboneLevels();
    const np = p.scope('neck.');
    // Only the stages at or above the finest level the head sees get a lateral (no dead stride-4 conv).
    const first = Math.max(0, lv.findIndex((l) => l >= levelIndex(s.levels[0]!)));
    const lat: Tensor[] = [];
    chans.forEach((c, k) => {
      if (k < first) return;
      const w = np.param(`lateral.${k}.weight`, [neck.dim, c, 1, 1], { kind: 'fanIn', fanIn: c });
      const b = np.param(`lateral.${k}.bias`, [neck.dim], zeros);
      lat[k] = conv2d(out.aux[`features.${k}`]!, w, b);
    });
    for (let k = lat.length - 1; k >= first; k--) {
      // sam2 FpnNeck: lateral + nearest-upsampled coarser level (its output, so the sum cascades).
      if (neck.topDown && k < lat.length - 1) lat[k] = add(lat[k]!, nearestResize(lat[k + 1]!, lat[k]!.shape[2]!, lat[k]!.shape[3]!));
      feats.set(lv[k]!, lat[k]!);
    }
    return feats;
  }

  /**
   * x `[B, 3, H, W]` (normalised images) -> per level of `spec.levels`: cls `[B, K, h, w]` logits,
   * reg `[B, 4, h, w]` distances in strides, ctr `[B, 1, h, w]` logits.
   */
  forward(p: Params, x: Tensor, opts: ForwardOptions = {}): FcosLevelOutput[] {
    if (x.rank !== 4 || x.shape[1] !== 3) throw new Error(`detector.forward: expected images [B, 3, H, W], got ${fmtShape(x.shape)}`);
    this.checkInputSize(x.shape[2]!, x.shape[3]!);
    const feats = this.features(p, x, opts);
    const want = this.spec.levels.map(levelIndex);
    const maps = want.map((k) => {
      let t = feats.get(k);
      if (!t) {
        // A level coarser than the backbone gives: subsample the next finer one (made first).
        const finer = feats.get(k - 1);
        if (!finer) throw new Error(`detector: level p${k} is neither produced by the backbone (p${[...feats.keys()].join(', p')}) nor one step coarser than one`);
        t = subsample2(finer);
        feats.set(k, t);
      }
      return t;
    });
    return fcosHead(p.scope('head.'), maps, this.spec.levels, this.spec.numClasses, this.spec.head);
  }

  /** Strides, feature sizes and scale ranges of the head's levels at input `H x W` (traced once per size). */
  levels(H: number, W: number): FcosLevel[] {
    const key = `${H}x${W}`;
    let lv = this.levelCache.get(key);
    if (!lv) {
      this.checkInputSize(H, W);
      const g = new Graph();
      const outs = this.forward(new Params(g), g.input('x', [1, 3, H, W]));
      const strides = this.strides();
      const ranges = this.spec.loss.scaleRanges ?? defaultScaleRanges(strides);
      lv = outs.map((o, i) => ({ id: this.spec.levels[i]!, stride: strides[i]!, h: o.cls.shape[2]!, w: o.cls.shape[3]!, range: ranges[i]! }));
      this.levelCache.set(key, lv);
    }
    return lv;
  }

  /** Every parameter (traced once at the backbone's default size, then cached; do not mutate). */
  paramInfos(): Map<string, ParamInfo> {
    if (!this.infos) {
      const [H, W] = this.backbone.defaultRes;
      this.infos = collectParams((p, g) => {
        this.forward(p, g.input('x', [1, 3, H, W]));
      });
    }
    return this.infos;
  }

  /** Fresh parameters from the initialisers, drawn from (seed, 'init'). */
  init(seed: number): Map<string, Float32Array> {
    const w = initWeights(this.paramInfos(), new Rng(hashSeed(seed, 'init')));
    return new Map([...w].map(([k, t]) => [k, t.data]));
  }
}

export interface CreateDetectorOptions {
  /** Backbone family and config: a preset name (`vitdet-mini`, `hieradet-tiny`...) or a full config, plus overrides. */
  backbone:
    | { family: 'vitdet'; config: string | VitDetConfig; overrides?: Partial<VitDetConfig> }
    | { family: 'hieradet'; config: string | HieraDetConfig; overrides?: Partial<HieraDetConfig> };
  numClasses: number;
  /** Default ['p3', 'p4', 'p5', 'p6']. */
  levels?: string[];
  /** HieraDet neck; default { dim: 64, topDown: true }. Ignored (null) for ViTDet. */
  neck?: Partial<NeckConfig>;
  /** Default: 4 convs, GroupNorm with the largest group count <= 32 that divides the width, prior 0.01. */
  head?: Partial<FcosHeadConfig>;
  loss?: Partial<FcosLossConfig>;
}

/** Largest divisor of c that is <= 32 (GroupNorm(32) when the width allows it). */
const gnGroupsFor = (c: number): number => {
  for (let g = Math.min(32, c); g > 1; g--) if (c % g === 0) return g;
  return 1;
};

/**
 * Builds a Detector, filling every default into the spec (so `detector.spec` is complete data).
 *
 * @example
 * const det = createDetector({
 *   backbone: { family: 'hieradet', config: 'hieradet-mini' }, numClasses: 5,
 *   neck: { dim: 32 }, head: { numConvs: 2 },
 * });
 */
export function createDetector(o: CreateDetectorOptions | DetectorSpec): Detector {
  // A complete DetectorSpec (e.g. from a checkpoint) goes through the same path: its fields
  // override every default, so the result equals it.
  const opts: CreateDetectorOptions = { ...o, neck: o.neck ?? undefined };
  let backbone: BackboneSpec;
  let width: number;
  let neck: NeckConfig | null = null;
  if (opts.backbone.family === 'vitdet') {
    const cfg = createVitDet(opts.backbone.config, opts.backbone.overrides ?? {}).config;
    backbone = { family: 'vitdet', config: cfg };
    if (!cfg.pyramid) throw new Error('createDetector: the ViTDet config has no pyramid (pyramid: null); give it a SimpleFeaturePyramid');
    width = cfg.pyramid.outChannels;
  } else if (opts.backbone.family === 'hieradet') {
    const cfg = createHieraDet(opts.backbone.config, opts.backbone.overrides ?? {}).config;
    backbone = { family: 'hieradet', config: cfg };
    neck = { dim: opts.neck?.dim ?? 64, topDown: opts.neck?.topDown ?? true };
    width = neck.dim;
  } else {
    throw new Error(`createDetector: unknown backbone family '${(opts.backbone as { family: string }).family}' (known: vitdet, hieradet)`);
  }
  const head: FcosHeadConfig = { ...defaultFcosHead, gnGroups: gnGroupsFor(width), ...(opts.head ?? {}) };
  const loss: FcosLossConfig = { ...defaultFcosLoss, ...(opts.loss ?? {}), weights: { ...defaultFcosLoss.weights, ...(opts.loss?.weights ?? {}) } };
  // JSON (a checkpoint) stores an infinite upper bound as null: read it back as ∞.
  if (loss.scaleRanges) loss.scaleRanges = loss.scaleRanges.map(([lo, hi]) => [lo ?? 0, hi ?? Infinity]);
  return new Detector({ backbone, numClasses: opts.numClasses, levels: opts.levels ?? ['p3', 'p4', 'p5', 'p6'], neck, head, loss });
}

