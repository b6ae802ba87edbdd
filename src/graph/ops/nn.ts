/**
 * Fused neural-network ops that ONNX Runtime runs as single kernels:
 * softmax, log-softmax, layer norm, GELU and 2-D convolution. Their VJPs are
 * written with the primitive ops (conv differentiates its im2col decomposition).
 */
import { type Attrs, type OpDef, Tensor, fmtShape, normAxis } from '../tensor.ts';
import { add, erf, exp, mul, sub, tanh } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { reduceMean, reduceSum } from './reduce.ts';
import { ReshapeOp, concat, gather, pad, reshape, slice, transpose, unsqueeze } from './shape.ts';
import { backprop } from '../backprop.ts';

function apply1(op: OpDef, inputs: Tensor[], attrs: Attrs = {}): Tensor {
  return inputs[0]!.graph.apply(op, inputs, attrs)[0]!;
}

// ---------------------------------------------------------------- softmax
export const SoftmaxOp: OpDef = {
  name: 'softmax',
  infer: (inputs) => [{ shape: [...inputs[0]!.shape], dtype: inputs[0]!.dtype }],
  lower: (ctx, n) => ctx.emit('Softmax', [ctx.name(n.inputs[0]!)], [ctx.name(n.outputs[0]!)], { axis: n.attrs.axis as number }),
  vjp: (n, gs) => {
    const y = n.outputs[0]!;
    const g = gs[0]!;
    const axis = n.attrs.axis as number;
    return [mul(y, sub(g, reduceSum(mul(g, y), axis, true)))];
  },
};

export function softmax(x: Tensor, axis = -1): Tensor {
  return apply1(SoftmaxOp, [x], { axis: normAxis('softmax', axis, x.rank) });
}

export const LogSoftmaxOp: OpDef = {
  name: 'logSoftmax',
  infer: (inputs) => [{ shape: [...inputs[0]!.shape], dtype: inputs[0]!.dtype }],
  lower: (ctx, n) => ctx.emit('LogSoftmax', [ctx.name(n.inputs[0]!)], [ctx.name(n.outputs[0]!)], { axis: n.attrs.axis as number }),
  vjp: (n, gs) => {
    const g = gs[0]!;
    const axis = n.attrs.axis as number;
    return [sub(g, mul(exp(n.outputs[0]!), reduceSum(g, axis, true)))];
  },
};

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return apply1(LogSoftmaxOp, [x], { axis: normAxis('logSoftmax', axis, x.rank) });
}

// ---------------------------------------------------------------- layer norm
/**
 * LayerNormalization over the last axis. Outputs: y, mean, inverse std
 * (both [..., 1]); the VJP reuses mean and inverse std.
 * dx = rstd * (gx̂ - mean(gx̂) - x̂ * mean(gx̂ * x̂)), gx̂ = g * weight.
 */
export const LayerNormOp: OpDef = {
  name: 'layerNorm',
  infer: (inputs) => {
    const x = inputs[0]!;
    const stat = [...x.shape.slice(0, -1), 1];
    // Mean and inverse std come out in the stash type (ONNX 'U'): float32 for float32 input; float64
    // input is lowered to primitives in double (see lower).
    return [
      { shape: [...x.shape], dtype: x.dtype },
      { shape: stat, dtype: x.dtype },
      { shape: stat, dtype: x.dtype },
    ];
  },
  lower: (ctx, n) => {
    const [x, w, b] = n.inputs as [Tensor, Tensor, Tensor];
    const [y, mean, rstd] = n.outputs.map((t) => ctx.name(t)) as [string, string, string];
    if (x.dtype === 'float64') {
      // ONNX Runtime's CPU LayerNormalization has no double stash type (stash_type=11 has no
      // kernel) and stash_type=1 would compute in float32, so float64 graphs (gradient checks)
      // lower to the primitive definition, computed fully in double.
      const axes = ctx.int64([-1]);
      const d = ctx.fresh('ln_d');
      const v = ctx.fresh('ln_var');
      const ve = ctx.fresh('ln_vareps');
      const sd = ctx.fresh('ln_std');
      const xh = ctx.fresh('ln_xhat');
      const yw = ctx.fresh('ln_yw');
      const sq = ctx.fresh('ln_sq');
      ctx.emit('ReduceMean', [ctx.name(x), axes], [mean], { keepdims: 1 });
      ctx.emit('Sub', [ctx.name(x), mean], [d]);
      ctx.emit('Mul', [d, d], [sq]);
      ctx.emit('ReduceMean', [sq, axes], [v], { keepdims: 1 });
      ctx.emit('Add', [v, ctx.scalar(n.attrs.eps as number, 'float64')], [ve]);
      ctx.emit('Sqrt', [ve], [sd]);
      ctx.emit('Reciprocal', [sd], [rstd]);
      ctx.emit('Mul', [d, rstd], [xh]);
      ctx.emit('Mul', [xh, ctx.name(w)], [yw]);
      ctx.emit('Add', [yw, ctx.name(b)], [y]);
      return;
    }
    ctx.emit('LayerNormalization', [ctx.name(x), ctx.name(w), ctx.name(b)], [y, mean, rstd], { axis: -1, epsilon: n.attrs.eps as number, stash_type: 1 });
  },
  vjp: (n, gs) => {
    const [x, w] = n.inputs as [Tensor, Tensor];
    const [, mean, rstd] = n.outputs as [Tensor, Tensor, Tensor];
    const g = gs[0]!;
    const xhat = mul(sub(x, mean), rstd);
    const lead = x.shape.slice(0, -1).map((_, i) => i);
    const gw = reduceSum(mul(g, xhat), lead, false);
    const gb = reduceSum(g, lead, false);
    const gxhat = mul(g, w);
    const gx = mul(rstd, sub(sub(gxhat, reduceMean(gxhat, -1, true)), mul(xhat, reduceMean(mul(gxhat, xhat), -1, true))));
    return [gx, gw, gb];
  },
};

/** LayerNorm over the last axis; `weight`/`bias` of shape [C] (null = no affine). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  const C = x.shape[x.rank - 1]!;
  const w = weight ?? x.graph.constant(new (x.dtype === 'float64' ? Float64Array : Float32Array)(C).fill(1), [C], x.dtype);
  const b = bias ?? x.graph.constant(new (x.dtype === 'float64' ? Float64Array : Float32Array)(C), [C], x.dtype);
  if (w.rank !== 1 || w.shape[0] !== C || b.rank !== 1 || b.shape[0] !== C) {
    throw new Error(`layerNorm: weight ${fmtShape(w.shape)} / bias ${fmtShape(b.shape)} must be [${C}] for input ${fmtShape(x.shape)}`);
  }
  return x.graph.apply(LayerNormOp, [x, w, b], { eps })[0]!;
}

// ---------------------------------------------------------------- GELU
export const GeluOp: OpDef = {
  name: 'gelu',
  infer: (inputs) => [{ shape: [...inputs[0]!.shape], dtype: inputs[0]!.dtype }],
  lower: (ctx, n) => ctx.emit('Gelu', [ctx.name(n.inputs[0]!)], [ctx.name(n.outputs[0]!)], { approximate: n.attrs.approximate as string }),
  vjp: (n, gs) => {
    const x = n.inputs[0]!;
    const g = gs[0]!;
    if (n.attrs.approximate === 'tanh') {
      // y = 0.5x(1 + tanh(u)), u = c(x + 0.044715x³), c = sqrt(2/π)
      const c = Math.sqrt(2 / Math.PI);
      const x2 = mul(x, x);
      const t = tanh(mul(mul(x, add(mul(x2, 0.044715), 1)), c));
      const du = mul(add(mul(x2, 3 * 0.044715), 1), c);
      const dy = add(mul(add(t, 1), 0.5), mul(mul(mul(x, 0.5), sub(1, mul(t, t))), du));
      return [mul(g, dy)];
    }
    // y = x Φ(x): dy/dx = Φ(x) + x φ(x)
    const Phi = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
    const phi = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return [mul(g, add(Phi, mul(x, phi)))];
  },
};

export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return apply1(GeluOp, [x], { approximate });
}

// ---------------------------------------------------------------- conv2d
export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

function convGeometry(x: readonly number[], w: readonly number[], a: Attrs): { Ho: number; Wo: number } {
  const [sh, sw] = a.stride as number[];
  const [ph, pw] = a.padding as number[];
  const [dh, dw] = a.dilation as number[];
  const Ho = Math.floor((x[2]! + 2 * ph! - dh! * (w[2]! - 1) - 1) / sh!) + 1;
  const Wo = Math.floor((x[3]! + 2 * pw! - dw! * (w[3]! - 1) - 1) / sw!) + 1;
  return { Ho, Wo };
}

export const Conv2dOp: OpDef = {
  name: 'conv2d',
  infer: (inputs, attrs) => {
    const [x, w] = inputs as [Tensor, Tensor];
    const G = attrs.groups as number;
    if (x.rank !== 4 || w.rank !== 4) throw new Error(`conv2d: need x [B,C,H,W] and w [O,C/g,kh,kw], got ${fmtShape(x.shape)} and ${fmtShape(w.shape)}`);
    if (x.shape[1]! !== w.shape[1]! * G || w.shape[0]! % G !== 0) {
      throw new Error(`conv2d: input channels ${x.shape[1]} do not match weight ${fmtShape(w.shape)} with groups=${G}`);
    }
    const { Ho, Wo } = convGeometry(x.shape, w.shape, attrs);
    if (Ho < 1 || Wo < 1) throw new Error(`conv2d: input ${fmtShape(x.shape)} is too small for kernel ${fmtShape(w.shape)} (output ${Ho}x${Wo})`);
    return [{ shape: [x.shape[0]!, w.shape[0]!, Ho, Wo], dtype: x.dtype }];
  },
  lower: (ctx, n) => {
    const [ph, pw] = n.attrs.padding as number[];
    const w = n.inputs[1]!;
    ctx.emit('Conv', n.inputs.map((t) => ctx.name(t)), [ctx.name(n.outputs[0]!)], {
      strides: n.attrs.stride as number[],
      pads: [ph!, pw!, ph!, pw!],
      dilations: n.attrs.dilation as number[],
      group: n.attrs.groups as number,
      kernel_shape: [w.shape[2]!, w.shape[3]!],
    });
  },
  vjp: (n, gs) => {
    const [x, w, b] = n.inputs as [Tensor, Tensor, Tensor | undefined];
    const fast = conv2dStride1Vjp(x, w, b, gs[0]!, n.attrs);
    if (fast) return fast;
    // Differentiate the im2col restatement on proxies of reshape-produced inputs: reshape folds into
    // its producer (reshape(reshape(t)) -> reshape(t)), so im2col's reshape of such an input would
    // bypass the input tensor itself and its gradient would come out zero.
    const proxy = (t: Tensor | undefined): Tensor | undefined => (t && t.node?.op === ReshapeOp ? mul(t, 1) : t);
    const [xp, wp, bp] = [proxy(x)!, proxy(w)!, proxy(b)];
    const y = conv2dIm2col(xp, wp, bp ?? null, n.attrs);
    return backprop([y], [gs[0]!], bp ? [xp, wp, bp] : [xp, wp]);
  },
};

/**
 * conv2d's VJP as two convolutions, for stride 1, dilation 1, groups 1 and padding <= kernel − 1
 * (the 3x3 "same" convs of detection heads and pyramids): no im2col slices, whose adjoints are one
 * Pad per tap and dominated such steps.
 *   gx = conv2d(g, flip(w)ᵀ, padding k − 1 − p)       (full correlation with the flipped kernel)
 *   gw = conv2d(pad(x)ᵀ, gᵀ)ᵀ  with ᵀ swapping axes 0 and 1:  gw[o,c,i,j] = Σ_{b,y,x} g[b,o,y,x]·xp[b,c,y+i,x+j]
 *   gb = Σ_{b,y,x} g
 * Returns null when the conv is outside that case (the im2col restatement handles it).
 */
function conv2dStride1Vjp(x: Tensor, w: Tensor, b: Tensor | undefined, g: Tensor, a: Attrs): (Tensor | null)[] | null {
  const [sh, sw] = a.stride as number[];
  const [ph, pw] = a.padding as number[];
  const [dh, dw] = a.dilation as number[];
  const [, , kh, kw] = w.shape as [number, number, number, number];
  if (sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1 || (a.groups as number) !== 1 || ph! > kh - 1 || pw! > kw - 1) return null;
  const flipped = gather(gather(w, 2, Array.from({ length: kh }, (_, i) => kh - 1 - i)), 3, Array.from({ length: kw }, (_, j) => kw - 1 - j));
  const gx = conv2d(g, transpose(flipped, [1, 0, 2, 3]), null, { padding: [kh - 1 - ph!, kw - 1 - pw!] }); // [B, C, H, W]
  const xp = ph || pw ? pad(x, [0, 0, ph!, pw!, 0, 0, ph!, pw!]) : x;
  // [C, B, Hp, Wp] ⋆ [O, B, Ho, Wo] -> [C, O, kh, kw] -> [O, C, kh, kw]
  const gw = transpose(conv2d(transpose(xp, [1, 0, 2, 3]), transpose(g, [1, 0, 2, 3]), null), [1, 0, 2, 3]);
  return b ? [gx, gw, reduceSum(g, [0, 2, 3])] : [gx, gw];
}

/** torch.nn.functional.conv2d on NCHW with weight [O, C/groups, kh, kw]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const attrs = { stride: pair(opts.stride, 1), padding: pair(opts.padding, 0), dilation: pair(opts.dilation, 1), groups: opts.groups ?? 1 };
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return x.graph.apply(Conv2dOp, inputs, attrs)[0]!;
}

/**
 * The same convolution as pad + strided slices (im2col) + one batched matmul.
 * Differentiating this gives conv's VJP from primitive adjoints.
 */
export function conv2dIm2col(x: Tensor, w: Tensor, b: Tensor | null, attrs: Attrs): Tensor {
  const [sh, sw] = attrs.stride as number[];
  const [ph, pw] = attrs.padding as number[];
  const [dh, dw] = attrs.dilation as number[];
  const G = attrs.groups as number;
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const [O, Cg, kh, kw] = w.shape as [number, number, number, number];
  const { Ho, Wo } = convGeometry(x.shape, w.shape, attrs);
  let cols: Tensor;
  if (kh === sh && kw === sw && ph === 0 && pw === 0 && dh === 1 && dw === 1 && H === Ho * kh && W === Wo * kw) {
    // Non-overlapping patches: [B,C,Ho,kh,Wo,kw] -> [B,C,kh,kw,Ho,Wo]
    cols = transpose(reshape(x, [B, C, Ho, kh, Wo, kw]), [0, 1, 3, 5, 2, 4]);
  } else {
    const xp = pad(x, [0, 0, ph!, pw!, 0, 0, ph!, pw!]);
    const taps: Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const r = slice(xp, 2, i * dh!, i * dh! + sh! * (Ho - 1) + 1, sh!);
        taps.push(unsqueeze(slice(r, 3, j * dw!, j * dw! + sw! * (Wo - 1) + 1, sw!), 2)); // [B,C,1,Ho,Wo]
      }
    }
    cols = concat(taps, 2); // [B, C, kh*kw, Ho, Wo]
  }
  const K = Cg * kh * kw;
  const colsG = reshape(cols, [B, G, K, Ho * Wo]);
  const wG = reshape(w, [1, G, O / G, K]);
  let y = reshape(matmul(wG, colsG), [B, O, Ho, Wo]);
  if (b) y = add(y, reshape(b, [1, O, 1, 1]));
  void C;
  return y;
}
