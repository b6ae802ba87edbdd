/**
 * Reductions over axes (sum, mean, max, variance) and argmax. The sum itself is in core.ts
 * (re-exported here).
 * Opset 18+ takes the axes of ReduceSum/ReduceMax/ReduceMean as an input.
 */
import { type OpDef, Tensor, normAxis } from '../tensor.ts';
import { apply1, axesOf, reduceOp, reducedShape, reduceSum, spread } from './core.ts';
import { cast, div, equal, mul, sub } from './elementwise.ts';

export { ReduceSumOp, reduceSum } from './core.ts';

export const ReduceMaxOp = reduceOp('reduceMax', 'ReduceMax', (n, gs) => {
  // Gradient to the first arg-max only, as torch's max(dim) does.
  const x = n.inputs[0]!;
  const axes = n.attrs.axes as number[];
  if (axes.length !== 1) throw new Error(`reduceMax: gradient supports one axis, got [${axes}]`);
  const axis = axes[0]!;
  const am = argmax(x, axis, true); // int64 keepdims
  const len = x.shape[axis]!;
  const iotaShape = x.shape.map((_, i) => (i === axis ? len : 1));
  const iota = x.graph.constant(BigInt64Array.from({ length: len }, (_, i) => BigInt(i)), iotaShape, 'int64');
  const onehot = cast(equal(iota, am), x.dtype);
  return [mul(spread(gs[0]!, x, axes), onehot)];
});

export function reduceMax(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const a = axesOf('reduceMax', x, axes);
  return apply1(ReduceMaxOp, [x], { axes: a, keepdims });
}

export function reduceMean(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const a = axesOf('reduceMean', x, axes);
  const count = a.reduce((p, i) => p * x.shape[i]!, 1);
  return div(reduceSum(x, a, keepdims), count);
}

/** Population variance (divide by N), or unbiased with `unbiased`. */
export function variance(x: Tensor, axes?: number | readonly number[], keepdims = false, unbiased = false): Tensor {
  const a = axesOf('variance', x, axes);
  const count = a.reduce((p, i) => p * x.shape[i]!, 1);
  const mu = reduceMean(x, a, true);
  const d = sub(x, mu);
  return div(reduceSum(mul(d, d), a, keepdims), unbiased ? count - 1 : count);
}

export const ArgMaxOp: OpDef = {
  name: 'argmax',
  infer: (inputs, attrs) => [{ shape: reducedShape(inputs[0]!.shape, [attrs.axis as number], attrs.keepdims as boolean), dtype: 'int64' }],
  lower: (ctx, n) =>
    ctx.emit('ArgMax', [ctx.name(n.inputs[0]!)], [ctx.name(n.outputs[0]!)], { axis: n.attrs.axis as number, keepdims: n.attrs.keepdims ? 1 : 0, select_last_index: 0 }),
};

export function argmax(x: Tensor, axis: number, keepdims = false): Tensor {
  return apply1(ArgMaxOp, [x], { axis: normAxis('argmax', axis, x.rank), keepdims });
}
