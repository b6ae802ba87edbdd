/**
 * Hiera (Ryali et al. 2023, "Hiera: A Hierarchical Vision Transformer without the Bells-and-Whistles")
 * for image classification, matching facebookresearch/hiera `hiera/hiera.py` and timm's abs-win
 * variant (`timm/models/hiera.py`, `hiera_small_abswin_256`) to float32 rounding (see the
 * `hiera_*`, `timm_hiera_*` and `grad_hiera_*` fixtures), at any input size the architecture takes.
 *
 * Differences from the official code, on purpose:
 * - Any input whose token grid is a multiple of the mask unit and of the total unroll runs. The
 *   official Unroll/Reroll are fixed to `input_size` at construction; ours are constant permutations
 *   computed for each traced size (hiera-layout.ts).
 * - posEmbed 'absolute' at a grid other than the stored one is interpolated with bicubic
 *   (F.interpolate, align_corners=False): the bugged baseline of Bolya et al. 2024. The official code
 *   raises instead (fixture `hiera_tiny_256`). 'abswin' tiles the window embedding and interpolates
 *   the global one to any grid.
 * - forward returns LOGITS in both modes. The official eval forward returns softmax(logits).
 * - Tokens run in an internal order where each mask unit is contiguous (hiera-layout.ts), so
 *   mask-unit attention and q-pooling are plain reshapes; intermediates are rerolled to [B, H, W, C].
 *
 * @example
 * const model = createHiera('hiera-tiny', { numClasses: 10 });
 * const rt = new Runtime();
 * const out = await rt.run((i, g) => ({ logits: model.forward(new Params(g, weights), i.x!).logits }), { x: host(img, [8, 3, 256, 256]) });
 */
import {
  type Tensor, add, concat, conv2d, gather, linear as linearOp, mul, reduceMax, reduceMean, reshape, transpose,
} from '../graph/index.ts';
import { dropPath, layerNorm, linear, mlp, multiHeadAttention, qkvProjections } from '../nn/layers.ts';
import { type Init, type ParamInfo, type Params, collectParams, truncNormal, zeros } from '../nn/params.ts';
import { absWin, gridToTokens, resampleGrid, tokensToGrid } from '../posembed/graph.ts';
import { type ForwardOptions, type ForwardOutput, type Model, nearestMultiples } from './types.ts';
import { type HieraBlockPlan, type HieraConfig, type HieraPlan, hieraPlan, hieraPresets, hieraSizeStep, patchGrid } from './hiera-config.ts';
import { hieraOrder, invertPermutation } from './hiera-layout.ts';
import { presetOrConfig } from './preset.ts';

export * from './hiera-config.ts';
export { hieraOrder, invertPermutation, unrollIndex } from './hiera-layout.ts';

export interface HieraForwardOptions extends ForwardOptions {
  /**
   * Drop-path keep masks ([B, 1, 1] of 0/1): either one per block (shared by the attention and MLP
   * branches) or two per block (index 2i: attention branch of block i, 2i+1: its MLP branch, the
   * independent draws of timm/official `drop_path1`/`drop_path2`). Keep rates come from the plan.
   */
  dropPathMasks?: readonly (Tensor | undefined)[];
}

export interface HieraModel extends Model<HieraConfig> {
  readonly family: 'hiera';
  readonly plan: HieraPlan;
  /**
   * Traces the forward for images x [B, C_in, H, W]. `logits` [B, numClasses] (pre-softmax),
   * `preLogits` [B, C_last]; aux: `pos_embed` [1, C, h, w] and `pos_embed_tokens` [1, h*w, C] (row-major, the embedding added to the
   * patch tokens) and `intermediates.<s>` [B, h_s, w_s, C_s] for every stage s.
   */
  forward(p: Params, x: Tensor, opts?: HieraForwardOptions): ForwardOutput;
  /** Token grid and mask-unit count at an input size (after checkInputSize). */
  layoutAt(H: number, W: number): { grid: [number, number]; numWindows: number; tokensPerWindow: number };
}

/** torch Conv2d default init (kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in))); hiera.py leaves the patch conv at it. */
const fanIn = (n: number): Init => ({ kind: 'fanIn', fanIn: n });

/** Max or mean over the q-stride digit, in our mask-unit-contiguous order: [B, nw, qs, T/qs, C] -> [B, N/qs, C]. */
function poolTokens(x: Tensor, qs: number, nw: number, how: 'max' | 'mean'): Tensor {
  if (qs === 1) return x;
  const [B, N, C] = x.shape as [number, number, number];
  const r = reshape(x, [B, nw, qs, N / (nw * qs), C]);
  const y = how === 'max' ? reduceMax(r, 2) : reduceMean(r, 2);
  return reshape(y, [B, N / qs, C]);
}

/**
 * hiera.py `MaskUnitAttention`: qkv, optional max-pooling of q by the block's q stride, attention
 * within each mask unit (or over all tokens), proj. x [B, N, dim] in our order -> [B, N/qs, dimOut].
 */
function maskUnitAttention(p: Params, x: Tensor, b: HieraBlockPlan, nw: number): Tensor {
  const [B, N] = x.shape as [number, number, number];
  const Co = b.dimOut;
  const heads = b.heads;
  const hd = Co / heads;
  const qs = b.qStride;
  const wn = b.useMaskUnitAttn ? nw : 1; // attention windows
  const Tw = N / wn; // tokens per window (before pooling)
  const T = N / nw; // tokens per mask unit
  // One qkv parameter as in hiera.py, applied as three products on its row blocks, so that q, k
  // and v come out contiguous as [B, N, Co]. Tokens are in mask-unit-contiguous order, so each
  // attention window is a contiguous run of Tw tokens: [B, N, Co] -> [B*wn, Tw, Co], no transpose.
  const [q0, k, v] = qkvProjections(p, 'qkv', x, b.dim, Co).map((y) => reshape(y, [B * wn, Tw, Co])) as [Tensor, Tensor, Tensor];
  let q = q0;
  if (qs > 1) {
    // Each window holds nw/wn mask units of T tokens; the pooled digit leads inside a mask unit.
    // [B*wn, nw/wn, qs, T/qs, Co] -> max over qs -> [B*wn, Tw/qs, Co]
    q = reshape(reduceMax(reshape(q0, [B * wn, nw / wn, qs, T / qs, Co]), 2), [B * wn, Tw / qs, Co]);
  }
  const o = multiHeadAttention(q, k, v, heads, hd ** -0.5); // [B*wn, Tw/qs, Co]
  const merged = reshape(o, [B, N / qs, Co]); // windows back in token order
  return linear(p, 'proj', merged, Co, Co);
}

/** timm LayerScale (`ls1.gamma`), or identity when the config has none. */
function layerScale(p: Params, name: string, x: Tensor, cfg: HieraConfig): Tensor {
  if (cfg.layerScale === null) return x;
  const C = x.shape[x.rank - 1]!;
  return mul(x, p.param(`${name}.gamma`, [C], { kind: 'const', value: cfg.layerScale }, { decay: false }));
}

/** hiera.py `HieraBlock` (with timm's LayerScale and expansion without projection as options). */
export function hieraBlock(p: Params, x: Tensor, b: HieraBlockPlan, cfg: HieraConfig, nw: number, masks: [Tensor | undefined, Tensor | undefined]): Tensor {
  const keep = 1 - b.dropPath;
  const xn = layerNorm(p, 'norm1', x, cfg.normEps);
  let res = x;
  if (b.dim !== b.dimOut) {
    if (cfg.expandProj) {
      // The residual is projected from the NORMALISED x, then max-pooled (hiera.py HieraBlock.forward).
      res = poolTokens(linear(p, 'proj', xn, b.dim, b.dimOut), b.qStride, nw, 'max');
    } else {
      // timm use_expand_proj=False: cat(max-pool, avg-pool) of the UN-normalised x, no parameters.
      res = concat([poolTokens(x, b.qStride, nw, 'max'), poolTokens(x, b.qStride, nw, 'mean')], -1);
    }
  }
  const a = layerScale(p, 'ls1', maskUnitAttention(p.scope('attn.'), xn, b, nw), cfg);
  let y = add(res, dropPath(a, masks[0], keep));
  const hidden = Math.trunc(b.dimOut * cfg.mlpRatio);
  const m = layerScale(p, 'ls2', mlp(p, 'mlp', layerNorm(p, 'norm2', y, cfg.normEps), b.dimOut, hidden), cfg);
  y = add(y, dropPath(m, masks[1], keep));
  return y;
}

/** The position embedding at an h x w token grid, NCHW [1, C, h, w]. */
export function posEmbedGrid(p: Params, cfg: HieraConfig, h: number, w: number): Tensor {
  const C = cfg.embedDim;
  if (cfg.posEmbed === 'absolute') {
    const [h0, w0] = patchGrid(cfg, cfg.inputSize[0], cfg.inputSize[1]);
    const pe = p.param('pos_embed', [1, h0 * w0, C], truncNormal(0.02), { decay: false });
    return resampleGrid(tokensToGrid(pe, h0, w0), h, w, cfg.absResample);
  }
  const [gh, gw] = cfg.globalPosSize;
  const [wh, ww] = cfg.maskUnitSize;
  const global = p.param('pos_embed', [1, C, gh, gw], truncNormal(0.02), { decay: false });
  const window = p.param(cfg.naming === 'timm' ? 'pos_embed_win' : 'pos_embed_window', [1, C, wh, ww], truncNormal(0.02), { decay: false });
  return absWin(global, window, h, w, { globalMode: cfg.globalResample });
}

function dropMasks(opts: HieraForwardOptions, depth: number, i: number): [Tensor | undefined, Tensor | undefined] {
  const m = opts.dropPathMasks;
  if (!m || m.length === 0) return [undefined, undefined];
  if (m.length === depth) return [m[i], m[i]];
  if (m.length === 2 * depth) return [m[2 * i], m[2 * i + 1]];
  throw new Error(`hiera forward: dropPathMasks has ${m.length} entries; give ${depth} (one per block) or ${2 * depth} (per branch)`);
}

/**
 * The block stack on patch tokens `[B, C, h*w]` (channels leading, row-major over an h x w grid,
 * position embedding already added): unroll to our mask-unit-contiguous order with one gather and
 * one transpose, run every block, reroll each stage output to `[B, h_s, w_s, C_s]`.
 * Returns the last stage's tokens `[B, N_last, C_last]` (in our order) and the stage outputs.
 * The video model calls this on frames stacked along the height (hiera-video.ts).
 */
export function hieraTrunk(
  p: Params,
  tokensCN: Tensor,
  cfg: HieraConfig,
  plan: HieraPlan,
  grid: [number, number],
  opts: HieraForwardOptions = {},
): { tokens: Tensor; intermediates: Tensor[] } {
  const [B, , N] = tokensCN.shape as [number, number, number];
  const [h, w] = grid;
  const mu0 = cfg.maskUnitSize[0] * cfg.maskUnitSize[1];
  const nw = N / mu0;
  const depth = plan.blocks.length;
  const toInternal = invertPermutation(hieraOrder(h, w, cfg.qStride, plan.numUnrolls, nw)); // internal n -> row-major g
  let t = transpose(gather(tokensCN, 2, Array.from(toInternal)), [0, 2, 1]); // [B, N, C]
  const intermediates: Tensor[] = [];
  let stage = 0;
  for (const b of plan.blocks) {
    t = hieraBlock(p.scope(`blocks.${b.index}.`), t, b, cfg, nw, dropMasks(opts, depth, b.index));
    if (plan.stageEnds.includes(b.index)) {
      // Reroll: the stage's tokens back to a row-major [B, h_s, w_s, C_s] grid.
      const pools = Math.min(stage, cfg.qPool);
      const hs = h / cfg.qStride[0] ** pools;
      const ws = w / cfg.qStride[1] ** pools;
      const order = hieraOrder(hs, ws, cfg.qStride, plan.numUnrolls - pools, nw);
      intermediates.push(reshape(gather(t, 1, Array.from(order)), [B, hs, ws, b.dimOut]));
      stage++;
    }
  }
  return { tokens: t, intermediates };
}

/** hiera.py head: mean over all tokens -> LayerNorm (`norm` / timm `head.norm`) -> linear (`head.projection` / timm `head.fc`). */
export function hieraHead(p: Params, tokens: Tensor, cfg: HieraConfig, plan: HieraPlan): { logits: Tensor; preLogits: Tensor } {
  const F = plan.numFeatures;
  const preLogits = layerNorm(p, cfg.naming === 'timm' ? 'head.norm' : 'norm', reduceMean(tokens, 1), cfg.normEps);
  const headName = cfg.naming === 'timm' ? 'head.fc' : 'head.projection';
  // hiera.py scales the head's init by head_init_scale (0.001 officially, meant for fine-tuning
  // pretrained trunks; from scratch at small scale 1.0 trains far faster: see headInitScale).
  const hw = p.param(`${headName}.weight`, [cfg.numClasses, F], truncNormal(0.02 * cfg.headInitScale));
  const hb = p.param(`${headName}.bias`, [cfg.numClasses], zeros);
  return { logits: linearOp(preLogits, hw, hb), preLogits };
}

/** Builds a Hiera model from a preset name or a config, with overrides. */
export function createHiera(cfgOrName: HieraConfig | string, overrides: Partial<HieraConfig> = {}): HieraModel {
  const baseCfg = presetOrConfig(cfgOrName, hieraPresets, 'createHiera');
  const cfg: HieraConfig = structuredClone({ ...baseCfg, ...overrides });
  const plan = hieraPlan(cfg);
  const step = hieraSizeStep(cfg);
  const mu0 = cfg.maskUnitSize[0] * cfg.maskUnitSize[1];

  const checkInputSize = (H: number, W: number): void => {
    const okH = Number.isInteger(H) && H > 0 && H % step[0] === 0;
    const okW = Number.isInteger(W) && W > 0 && W % step[1] === 0;
    if (okH && okW) return;
    const [h0, h1] = nearestMultiples(H, step[0]);
    const [w0, w1] = nearestMultiples(W, step[1]);
    throw new Error(
      `hiera: input ${H}x${W} is not supported: the token grid (input / patch stride ${cfg.patchStride.join('x')}) must be a ` +
        `multiple of the mask unit ${cfg.maskUnitSize.join('x')} and of the total unroll ${cfg.qStride.map((s) => s ** (cfg.stages.length - 1)).join('x')}, ` +
        `so H must be a multiple of ${step[0]} and W of ${step[1]}; nearest sizes that work: H ${h0} or ${h1}, W ${w0} or ${w1}`,
    );
  };

  const layoutAt = (H: number, W: number) => {
    checkInputSize(H, W);
    const grid = patchGrid(cfg, H, W);
    const N = grid[0] * grid[1];
    return { grid, numWindows: N / mu0, tokensPerWindow: mu0 };
  };

  const forward = (p: Params, x: Tensor, opts: HieraForwardOptions = {}): ForwardOutput => {
    if (x.rank !== 4 || x.shape[1] !== cfg.inChans) {
      throw new Error(`hiera forward: expected images [B, ${cfg.inChans}, H, W], got [${x.shape}]`);
    }
    const [B, , H, W] = x.shape as [number, number, number, number];
    const { grid, numWindows: nw } = layoutAt(H, W);
    const [h, w] = grid;
    const C = cfg.embedDim;
    const N = h * w;
    const [kh, kw] = cfg.patchKernel;
    const pw = p.param('patch_embed.proj.weight', [C, cfg.inChans, kh, kw], fanIn(cfg.inChans * kh * kw));
    const pb = p.param('patch_embed.proj.bias', [C], fanIn(cfg.inChans * kh * kw));
    const feat = conv2d(x, pw, pb, { stride: cfg.patchStride, padding: cfg.patchPadding }); // [B, C, h, w]
    const pos = posEmbedGrid(p, cfg, h, w); // [1, C, h, w]
    const withPos = add(reshape(feat, [B, C, N]), reshape(pos, [1, C, N]));
    const { tokens, intermediates } = hieraTrunk(p, withPos, cfg, plan, [h, w], opts);
    const aux: Record<string, Tensor> = { pos_embed: pos, pos_embed_tokens: gridToTokens(pos) };
    intermediates.forEach((t, s) => (aux[`intermediates.${s}`] = t));
    const { logits, preLogits } = hieraHead(p, tokens, cfg, plan);
    return { logits, preLogits, aux };
  };

  let infos: Map<string, ParamInfo> | undefined;
  const model: HieraModel = {
    family: 'hiera',
    config: cfg,
    plan,
    defaultRes: [cfg.inputSize[0], cfg.inputSize[1]],
    forward,
    checkInputSize,
    layoutAt,
    paramInfos: () => {
      infos ??= collectParams((p, g) => {
        forward(p, g.input('__x', [1, cfg.inChans, cfg.inputSize[0], cfg.inputSize[1]]));
      });
      return infos;
    },
  };
  return model;
}
