/**
 * The three ops every gradient rule needs, which are each other's adjoints: reshape, expand
 * (numpy broadcasting) and reduce-sum, with `sumTo` (the adjoint of broadcasting). They live in
 * one file so shape.ts, elementwise.ts and reduce.ts build on them without importing each other
 * in a circle (issue 14); those files re-export them.
 * Opset 18+ takes the axes of ReduceSum as an input.
 */
import { type Attrs, type OpDef, Tensor, checkShape, fmtShape, normAxis, sameShape } from '../tensor.ts';

export function apply1(op: OpDef, inputs: Tensor[], attrs: Attrs = {}): Tensor {
  return inputs[0]!.graph.apply(op, inputs, attrs)[0]!;
}
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------- reshape
export const ReshapeOp: OpDef = {
  name: 'reshape',
  infer: (inputs, attrs) => [{ shape: [...(attrs.shape as number[])], dtype: inputs[0]!.dtype }],
  lower: (ctx, n) => ctx.emit('Reshape', [ctx.name(n.inputs[0]!), ctx.int64(n.attrs.shape as number[])], [ctx.name(n.outputs[0]!)]),
  vjp: (n, gs) => [reshape(gs[0]!, n.inputs[0]!.shape)],
};

/** Reshape; one dim may be -1. Shapes in the error name both sides. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const neg1 = s.indexOf(-1);
  if (neg1 >= 0) {
    const known = prod(s.filter((_, i) => i !== neg1));
    if (known === 0 || x.size % known !== 0) throw new Error(`reshape: cannot infer -1 reshaping ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    s[neg1] = x.size / known;
  }
  checkShape('reshape', s);
  if (prod(s) !== x.size) throw new Error(`reshape: ${fmtShape(x.shape)} (${x.size} elements) cannot become ${fmtShape(shape)} (${prod(s)})`);
  if (sameShape(s, x.shape)) return x;
  // reshape∘reshape = one reshape (the intermediate node stays in the graph only if used elsewhere).
  if (x.node?.op === ReshapeOp) return reshape(x.node.inputs[0]!, s);
  return apply1(ReshapeOp, [x], { shape: s });
}

// ---------------------------------------------------------------- expand
export const ExpandOp: OpDef = {
  name: 'expand',
  infer: (inputs, attrs) => [{ shape: [...(attrs.shape as number[])], dtype: inputs[0]!.dtype }],
  lower: (ctx, n) => ctx.emit('Expand', [ctx.name(n.inputs[0]!), ctx.int64(n.attrs.shape as number[])], [ctx.name(n.outputs[0]!)]),
  vjp: (n, gs) => [sumTo(gs[0]!, n.inputs[0]!.shape)],
};

/** Broadcasts x to `shape` (numpy rules). */
export function expandTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const lead = shape.length - x.rank;
  if (lead < 0 || x.shape.some((d, i) => d !== 1 && d !== shape[lead + i])) {
    throw new Error(`expand: ${fmtShape(x.shape)} cannot broadcast to ${fmtShape(shape)}`);
  }
  return apply1(ExpandOp, [x], { shape: [...shape] });
}

// ---------------------------------------------------------------- slice

/** Sums `g` over broadcast dimensions so that it has `shape` (adjoint of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) throw new Error(`sumTo: cannot reduce ${fmtShape(g.shape)} to higher-rank ${fmtShape(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
  }
  const s = axes.length ? reduceSum(g, axes, true) : g;
  return reshape(s, shape);
}

// ---------------------------------------------------------------- reduce-sum
export function reducedShape(shape: readonly number[], axes: readonly number[], keep: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (axes.includes(i)) {
      if (keep) out.push(1);
    } else out.push(d);
  });
  return out;
}

export function reduceOp(name: string, onnx: string, vjp: OpDef['vjp']): OpDef {
  return {
    name,
    infer: (inputs, attrs) => [{ shape: reducedShape(inputs[0]!.shape, attrs.axes as number[], attrs.keepdims as boolean), dtype: inputs[0]!.dtype }],
    lower: (ctx, n) =>
      ctx.emit(onnx, [ctx.name(n.inputs[0]!), ctx.int64(n.attrs.axes as number[])], [ctx.name(n.outputs[0]!)], { keepdims: n.attrs.keepdims ? 1 : 0 }),
    vjp,
  };
}

/** The gradient of a reduction broadcast back over the reduced axes. */
export function spread(g: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  return expandTo(reshape(g, reducedShape(x.shape, axes, true)), x.shape);
}

const baseReduceSum = reduceOp('reduceSum', 'ReduceSum', (n, gs) => [spread(gs[0]!, n.inputs[0]!, n.attrs.axes as number[])]);

/**
 * Sum over LEADING axes (bias and LayerNorm-affine gradients: [B, N, C] -> [C]) lowers to one
 * product ones[1, M] @ x[M, K]: measured 1.6-2x faster than ONNX Runtime's CPU ReduceSum on such
 * axes for [32, 197, 768], and ~0.15 ms less per call on the small tensors of the main job's
 * models (scratch microbenchmark; bench/train.ts shows the step). Other axes stay ReduceSum.
 */
export const ReduceSumOp: OpDef = {
  ...baseReduceSum,
  lower: (ctx, n) => {
    const x = n.inputs[0]!;
    const axes = n.attrs.axes as number[];
    const k = axes.length;
    const prefix = k < x.rank && axes.every((a, i) => a === i);
    if (!prefix || (x.dtype !== 'float32' && x.dtype !== 'float64')) return baseReduceSum.lower(ctx, n);
    const M = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
    const K = x.size / M;
    const x2 = ctx.fresh('rsum_x2');
    const ones = ctx.fresh('rsum_ones');
    const y2 = ctx.fresh('rsum_y2');
    ctx.emit('Reshape', [ctx.name(x), ctx.int64([M, K])], [x2]); // [..lead.., ..rest..] -> [M, K]
    ctx.emit('Expand', [ctx.scalar(1, x.dtype), ctx.int64([1, M])], [ones]); // constant-folded by ORT
    ctx.emit('MatMul', [ones, x2], [y2]); // [1, K]
    ctx.emit('Reshape', [y2, ctx.int64(n.outputs[0]!.shape)], [ctx.name(n.outputs[0]!)]);
  },
};

export function axesOf(op: string, x: Tensor, axes: number | readonly number[] | undefined): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  return [...new Set(list.map((a) => normAxis(op, a, x.rank)))].sort((a, b) => a - b);
}

export function reduceSum(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const a = axesOf('reduceSum', x, axes);
  if (a.length === 0) return x;
  return apply1(ReduceSumOp, [x], { axes: a, keepdims });
}
