/**
 * The FCOS head (Tian, Shen, Chen, He, "FCOS: Fully Convolutional One-Stage Object Detection",
 * ICCV 2019), one set of weights shared by every pyramid level, as torchvision
 * `models/detection/fcos.py` (`FCOSHead`, `FCOSClassificationHead`, `FCOSRegressionHead`) and
 * AdelaiDet `modeling/fcos/fcos.py` lay it out:
 *
 * - two towers (classification, box) of `numConvs` × [3x3 conv → GroupNorm → ReLU]
 *   (`norm: 'gn'`, GroupNorm(32) in the paper; `'none'` drops the norm);
 * - `cls_logits` 3x3 conv → K logits per point, bias initialised to −log((1 − π)/π), π = 0.01
 *   (focal-loss prior, Lin et al. 2017 Sec. 4.1);
 * - `bbox_pred` 3x3 conv → (l, t, r, b) in units of the level's stride: exp(s_i · x) with one
 *   learnable scalar s_i per level (paper Sec. 3.1, "exp(s_i x)"); targets are normalised by the
 *   stride (AdelaiDet `norm_reg_targets`), so the loss is scale-free and GIoU is computed on them;
 * - `ctrness` 3x3 conv → one centre-ness logit per point, on the box tower (the "centre-ness on
 *   regression branch" improvement that torchvision and AdelaiDet use).
 *
 * Conv weights are N(0, 0.01²) with zero bias (torchvision / AdelaiDet init).
 */
import { type Tensor, concat, conv2d, exp, fmtShape, minimum, mul, relu, reshape } from '../graph/index.ts';
import { type Params, ones, zeros } from '../nn/params.ts';
import { groupNorm } from '../nn/group-norm.ts';

export interface FcosHeadConfig {
  /** Convs per tower (4 in the paper; fewer = cheaper). */
  numConvs: number;
  /** 'gn' = GroupNorm after each tower conv (the paper); 'none' = conv + ReLU only. */
  norm: 'gn' | 'none';
  /** GroupNorm groups (32 in the paper); must divide the feature width. */
  gnGroups: number;
  /** Prior probability of the classification bias init (0.01). */
  priorProb: number;
}

export const defaultFcosHead: FcosHeadConfig = { numConvs: 4, norm: 'gn', gnGroups: 32, priorProb: 0.01 };

/** Per-level raw head outputs, NCHW. */
export interface FcosLevelOutput {
  /** [B, K, h, w] classification logits. */
  cls: Tensor;
  /** [B, 4, h, w] (l, t, r, b) distances in units of the level's stride, > 0. */
  reg: Tensor;
  /** [B, 1, h, w] centre-ness logits. */
  ctr: Tensor;
}

/** Largest exponent the box branch may take (e^10 ≈ 22000 strides): keeps a diverging step finite. */
const MAX_LOG_DIST = 10;

function conv3(p: Params, name: string, x: Tensor, cin: number, cout: number, bias = 0): Tensor {
  const w = p.param(`${name}.weight`, [cout, cin, 3, 3], { kind: 'normal', std: 0.01 });
  const b = p.param(`${name}.bias`, [cout], bias === 0 ? zeros : { kind: 'const', value: bias });
  return conv2d(x, w, b, { padding: 1 });
}

function tower(p: Params, name: string, x: Tensor, cfg: FcosHeadConfig): Tensor {
  const C = x.shape[1]!;
  let h = x;
  for (let i = 0; i < cfg.numConvs; i++) {
    h = conv3(p, `${name}.${i}`, h, C, C);
    if (cfg.norm === 'gn') {
      h = groupNorm(h, cfg.gnGroups, p.param(`${name}.${i}.norm.weight`, [C], ones), p.param(`${name}.${i}.norm.bias`, [C], zeros));
    }
    h = relu(h);
  }
  return h;
}

/**
 * The head on a list of NCHW feature maps of equal width (one per level, finest first); `levelIds`
 * name the per-level scales (`scales.<id>`). Parameters are under `p` (the detector scopes `head.`).
 */
export function fcosHead(p: Params, feats: readonly Tensor[], levelIds: readonly string[], numClasses: number, cfg: FcosHeadConfig): FcosLevelOutput[] {
  if (!feats.length) throw new Error('fcosHead: no feature maps');
  if (feats.length !== levelIds.length) throw new Error(`fcosHead: ${feats.length} feature maps but ${levelIds.length} level ids`);
  const C = feats[0]!.shape[1]!;
  for (const f of feats) {
    if (f.rank !== 4 || f.shape[1] !== C) throw new Error(`fcosHead: every level must be NCHW with ${C} channels, got ${fmtShape(f.shape)}`);
  }
  if (cfg.norm === 'gn' && C % cfg.gnGroups) {
    throw new Error(`fcosHead: GroupNorm with ${cfg.gnGroups} groups needs a width divisible by it, the features have ${C} channels`);
  }
  if (!(cfg.priorProb > 0 && cfg.priorProb < 1)) throw new RangeError(`fcosHead: priorProb must be in (0, 1), got ${cfg.priorProb}`);
  const clsBias = -Math.log((1 - cfg.priorProb) / cfg.priorProb);
  return feats.map((f, li) => {
    const ct = tower(p, 'cls_tower', f, cfg);
    const bt = tower(p, 'bbox_tower', f, cfg);
    const cls = conv3(p, 'cls_logits', ct, C, numClasses, clsBias);
    const s = p.param(`scales.${levelIds[li]}`, [1], ones, { decay: false });
    const raw = conv3(p, 'bbox_pred', bt, C, 4);
    const reg = exp(minimum(mul(raw, reshape(s, [1, 1, 1, 1])), MAX_LOG_DIST));
    const ctr = conv3(p, 'ctrness', bt, C, 1);
    return { cls, reg, ctr };
  });
}

/**
 * Levels flattened and concatenated point-major in the order the targets use (level, then row,
 * then column): cls `[B, K, N]`, reg `[B, 4, N]`, ctr `[B, 1, N]`, N = Σ h·w.
 */
export function flattenLevels(outs: readonly FcosLevelOutput[]): { cls: Tensor; reg: Tensor; ctr: Tensor } {
  const flat = (t: Tensor): Tensor => reshape(t, [t.shape[0]!, t.shape[1]!, t.shape[2]! * t.shape[3]!]); // [B, C, h, w] -> [B, C, h·w]
  const cat = (ts: Tensor[]): Tensor => (ts.length === 1 ? ts[0]! : concat(ts, 2));
  return { cls: cat(outs.map((o) => flat(o.cls))), reg: cat(outs.map((o) => flat(o.reg))), ctr: cat(outs.map((o) => flat(o.ctr))) };
}
