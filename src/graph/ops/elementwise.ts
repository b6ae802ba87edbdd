/**
 * Elementwise ops with numpy broadcasting, comparisons, where and cast.
 * Every differentiable op reduces its input gradients back to the input's
 * shape with `sumTo` (the adjoint of broadcasting).
 */
import { type Attrs, type DType, type Node, type OpDef, Tensor, broadcastShapes, fmtShape, isFloat } from '../tensor.ts';
import { expandTo, reduceSum, reshape } from './shape.ts';

export type Operand = Tensor | number;

function lift(a: Operand, like: Tensor): Tensor {
  return typeof a === 'number' ? like.graph.scalar(a, like.dtype) : a;
}

function pair(op: string, a: Operand, b: Operand): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: at least one operand must be a Tensor`);
  const ta = typeof a === 'number' ? lift(a, b as Tensor) : a;
  const tb = typeof b === 'number' ? lift(b, ta) : b;
  if (ta.dtype !== tb.dtype) throw new Error(`${op}: dtypes differ (${ta.dtype} vs ${tb.dtype}); cast one operand first`);
  return [ta, tb];
}

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

function binaryOp(name: string, onnx: string, vjp?: OpDef['vjp'], outDtype?: DType): OpDef {
  return {
    name,
    infer: (inputs) => [{ shape: broadcastShapes(name, inputs[0]!.shape, inputs[1]!.shape), dtype: outDtype ?? inputs[0]!.dtype }],
    lower: (ctx, node) => ctx.emit(onnx, [ctx.name(node.inputs[0]!), ctx.name(node.inputs[1]!)], [ctx.name(node.outputs[0]!)]),
    vjp,
  };
}

function unaryOp(name: string, onnx: string, vjp?: OpDef['vjp'], attrs?: (a: Attrs) => Record<string, number | string>): OpDef {
  return {
    name,
    infer: (inputs) => [{ shape: [...inputs[0]!.shape], dtype: inputs[0]!.dtype }],
    lower: (ctx, node) => ctx.emit(onnx, [ctx.name(node.inputs[0]!)], [ctx.name(node.outputs[0]!)], attrs?.(node.attrs)),
    vjp,
  };
}

const g0 = (gs: readonly (Tensor | null)[]): Tensor => gs[0]!;
const in0 = (n: Node): Tensor => n.inputs[0]!;
const in1 = (n: Node): Tensor => n.inputs[1]!;
const out0 = (n: Node): Tensor => n.outputs[0]!;

export const AddOp = binaryOp('add', 'Add', (n, gs) => [sumTo(g0(gs), in0(n).shape), sumTo(g0(gs), in1(n).shape)]);
export const SubOp = binaryOp('sub', 'Sub', (n, gs) => [sumTo(g0(gs), in0(n).shape), sumTo(neg(g0(gs)), in1(n).shape)]);
export const MulOp = binaryOp('mul', 'Mul', (n, gs) => [sumTo(mul(g0(gs), in1(n)), in0(n).shape), sumTo(mul(g0(gs), in0(n)), in1(n).shape)]);
export const DivOp = binaryOp('div', 'Div', (n, gs) => {
  const g = g0(gs);
  const gb = neg(div(mul(g, out0(n)), in1(n)));
  return [sumTo(div(g, in1(n)), in0(n).shape), sumTo(gb, in1(n).shape)];
});
export const PowOp = binaryOp('pow', 'Pow', (n, gs) => {
  const g = g0(gs);
  const [a, b] = [in0(n), in1(n)];
  const ga = mul(g, mul(b, pow(a, sub(b, 1))));
  const gb = mul(g, mul(out0(n), log(a)));
  return [sumTo(ga, a.shape), sumTo(gb, b.shape)];
});
export const MaxOp = binaryOp('maximum', 'Max', (n, gs) => {
  const m = cast(greaterEqual(in0(n), in1(n)), in0(n).dtype);
  const g = g0(gs);
  return [sumTo(mul(g, m), in0(n).shape), sumTo(mul(g, sub(1, m)), in1(n).shape)];
});
export const MinOp = binaryOp('minimum', 'Min', (n, gs) => {
  const m = cast(lessEqual(in0(n), in1(n)), in0(n).dtype);
  const g = g0(gs);
  return [sumTo(mul(g, m), in0(n).shape), sumTo(mul(g, sub(1, m)), in1(n).shape)];
});

export const LessOp = binaryOp('less', 'Less', undefined, 'bool');
export const GreaterOp = binaryOp('greater', 'Greater', undefined, 'bool');
export const EqualOp = binaryOp('equal', 'Equal', undefined, 'bool');
export const LessEqualOp = binaryOp('lessEqual', 'LessOrEqual', undefined, 'bool');
export const GreaterEqualOp = binaryOp('greaterEqual', 'GreaterOrEqual', undefined, 'bool');
export const AndOp = binaryOp('and', 'And', undefined, 'bool');

export const NegOp = unaryOp('neg', 'Neg', (_n, gs) => [neg(g0(gs))]);
export const SqrtOp = unaryOp('sqrt', 'Sqrt', (n, gs) => [div(g0(gs), mul(out0(n), 2))]);
export const ExpOp = unaryOp('exp', 'Exp', (n, gs) => [mul(g0(gs), out0(n))]);
export const LogOp = unaryOp('log', 'Log', (n, gs) => [div(g0(gs), in0(n))]);
export const TanhOp = unaryOp('tanh', 'Tanh', (n, gs) => [mul(g0(gs), sub(1, mul(out0(n), out0(n))))]);
export const ErfOp = unaryOp('erf', 'Erf', (n, gs) => {
  const x = in0(n);
  return [mul(g0(gs), mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))];
});
export const AbsOp = unaryOp('abs', 'Abs', (n, gs) => [mul(g0(gs), sign(in0(n)))]);
// sign is piecewise constant: zero gradient almost everywhere (as torch.sign).
export const SignOp = unaryOp('sign', 'Sign', () => [null]);
export const ReluOp = unaryOp('relu', 'Relu', (n, gs) => [mul(g0(gs), cast(greater(in0(n), 0), in0(n).dtype))]);
export const SigmoidOp = unaryOp('sigmoid', 'Sigmoid', (n, gs) => [mul(g0(gs), mul(out0(n), sub(1, out0(n))))]);
export const NotOp = unaryOp('not', 'Not');

/**
 * softplus(x) = log(1 + e^x), lowered in the overflow-free form max(x, 0) + log(1 + e^(-|x|))
 * (ONNX Softplus has no double kernel in ONNX Runtime's CPU provider, and this form is exact for
 * both dtypes). d/dx = sigmoid(x). log-sigmoid(x) = -softplus(-x) (see `logSigmoid`).
 */
export const SoftplusOp: OpDef = {
  name: 'softplus',
  infer: (inputs) => [{ shape: [...inputs[0]!.shape], dtype: inputs[0]!.dtype }],
  lower: (ctx, node) => {
    const x = ctx.name(node.inputs[0]!);
    const dt = node.inputs[0]!.dtype;
    const [a, na, e, e1, l, r] = ['sp_abs', 'sp_nabs', 'sp_exp', 'sp_1pe', 'sp_log', 'sp_relu'].map((n) => ctx.fresh(n)) as [string, string, string, string, string, string];
    ctx.emit('Abs', [x], [a]);
    ctx.emit('Neg', [a], [na]);
    ctx.emit('Exp', [na], [e]);
    ctx.emit('Add', [e, ctx.scalar(1, dt)], [e1]);
    ctx.emit('Log', [e1], [l]);
    ctx.emit('Max', [x, ctx.scalar(0, dt)], [r]);
    ctx.emit('Add', [r, l], [ctx.name(node.outputs[0]!)]);
  },
  vjp: (n, gs) => [mul(g0(gs), sigmoid(in0(n)))],
};

export const WhereOp: OpDef = {
  name: 'where',
  infer: (inputs) => {
    const [c, a, b] = inputs as [Tensor, Tensor, Tensor];
    if (c.dtype !== 'bool') throw new Error(`where: condition must be bool, got ${c.dtype}`);
    return [{ shape: broadcastShapes('where', broadcastShapes('where', c.shape, a.shape), b.shape), dtype: a.dtype }];
  },
  lower: (ctx, node) => ctx.emit('Where', node.inputs.map((t) => ctx.name(t)), [ctx.name(node.outputs[0]!)]),
  vjp: (n, gs) => {
    const g = g0(gs);
    const zero = g.graph.scalar(0, g.dtype);
    return [null, sumTo(where(n.inputs[0]!, g, zero), n.inputs[1]!.shape), sumTo(where(n.inputs[0]!, zero, g), n.inputs[2]!.shape)];
  },
};

const onnxDtype: Record<DType, number> = { float32: 1, float64: 11, int64: 7, bool: 9 };
export { onnxDtype };

export const CastOp: OpDef = {
  name: 'cast',
  infer: (inputs, attrs) => [{ shape: [...inputs[0]!.shape], dtype: attrs.to as DType }],
  lower: (ctx, node) => ctx.emit('Cast', [ctx.name(node.inputs[0]!)], [ctx.name(node.outputs[0]!)], { to: onnxDtype[node.attrs.to as DType] }),
  vjp: (n, gs) => (isFloat(in0(n).dtype) ? [cast(g0(gs), in0(n).dtype)] : [null]),
};

function apply1(op: OpDef, inputs: Tensor[], attrs: Attrs = {}): Tensor {
  return inputs[0]!.graph.apply(op, inputs, attrs)[0]!;
}

export const add = (a: Operand, b: Operand): Tensor => apply1(AddOp, pair('add', a, b));
export const sub = (a: Operand, b: Operand): Tensor => apply1(SubOp, pair('sub', a, b));
export const mul = (a: Operand, b: Operand): Tensor => apply1(MulOp, pair('mul', a, b));
export const div = (a: Operand, b: Operand): Tensor => apply1(DivOp, pair('div', a, b));
export const pow = (a: Operand, b: Operand): Tensor => apply1(PowOp, pair('pow', a, b));
export const maximum = (a: Operand, b: Operand): Tensor => apply1(MaxOp, pair('maximum', a, b));
export const minimum = (a: Operand, b: Operand): Tensor => apply1(MinOp, pair('minimum', a, b));
export const less = (a: Operand, b: Operand): Tensor => apply1(LessOp, pair('less', a, b));
export const greater = (a: Operand, b: Operand): Tensor => apply1(GreaterOp, pair('greater', a, b));
export const equal = (a: Operand, b: Operand): Tensor => apply1(EqualOp, pair('equal', a, b));
export const lessEqual = (a: Operand, b: Operand): Tensor => apply1(LessEqualOp, pair('lessEqual', a, b));
export const greaterEqual = (a: Operand, b: Operand): Tensor => apply1(GreaterEqualOp, pair('greaterEqual', a, b));
export const and = (a: Tensor, b: Tensor): Tensor => apply1(AndOp, [a, b]);
export const neg = (a: Tensor): Tensor => apply1(NegOp, [a]);
export const sqrt = (a: Tensor): Tensor => apply1(SqrtOp, [a]);
export const exp = (a: Tensor): Tensor => apply1(ExpOp, [a]);
export const log = (a: Tensor): Tensor => apply1(LogOp, [a]);
export const tanh = (a: Tensor): Tensor => apply1(TanhOp, [a]);
export const erf = (a: Tensor): Tensor => apply1(ErfOp, [a]);
export const abs = (a: Tensor): Tensor => apply1(AbsOp, [a]);
export const sign = (a: Tensor): Tensor => apply1(SignOp, [a]);
export const relu = (a: Tensor): Tensor => apply1(ReluOp, [a]);
export const sigmoid = (a: Tensor): Tensor => apply1(SigmoidOp, [a]);
export const not = (a: Tensor): Tensor => apply1(NotOp, [a]);
export const softplus = (a: Tensor): Tensor => apply1(SoftplusOp, [a]);
/** log(sigmoid(x)) without overflow: -softplus(-x). */
export const logSigmoid = (a: Tensor): Tensor => neg(softplus(neg(a)));
export const square = (a: Tensor): Tensor => mul(a, a);

export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair('where', a, b);
  return apply1(WhereOp, [cond, ta, tb]);
}

export function cast(a: Tensor, to: DType): Tensor {
  if (a.dtype === to) return a;
  return apply1(CastOp, [a], { to });
}

/** Broadcasts `a` to `shape` explicitly (re-exported convenience). */
export const broadcastTo = expandTo;
