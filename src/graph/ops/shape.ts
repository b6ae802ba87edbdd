/**
 * Shape ops: reshape, transpose, expand, slice (with steps), concat, pad,
 * tile, gather with constant indices and its adjoint scatter-add.
 */
import { type OpDef, Tensor, fmtShape, normAxis } from '../tensor.ts';
import { apply1, reduceSum, reshape } from './core.ts';

// reshape and expand are in core.ts with reduce-sum (each other's adjoints); re-exported here.
export { ExpandOp, ReshapeOp, expandTo, reduceSum, reshape } from './core.ts';
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------- transpose
export const TransposeOp: OpDef = {
  name: 'transpose',
  infer: (inputs, attrs) => {
    const x = inputs[0]!;
    const perm = attrs.perm as number[];
    if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
      throw new Error(`transpose: perm [${perm}] is not a permutation of the ${x.rank} axes of ${fmtShape(x.shape)}`);
    }
    return [{ shape: perm.map((p) => x.shape[p]!), dtype: x.dtype }];
  },
  lower: (ctx, n) => ctx.emit('Transpose', [ctx.name(n.inputs[0]!)], [ctx.name(n.outputs[0]!)], { perm: n.attrs.perm as number[] }),
  vjp: (n, gs) => {
    const perm = n.attrs.perm as number[];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [transpose(gs[0]!, inv)];
  },
};

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  const p = perm.map((a) => normAxis('transpose', a, x.rank));
  if (p.every((a, i) => a === i)) return x;
  // transpose∘transpose = one transpose with the composed permutation (often the identity: the
  // VJP of linear's W^T meets the transpose in matmul's VJP). out[i] = x[p[i]] = z[q[p[i]]].
  if (x.node?.op === TransposeOp) {
    const q = x.node.attrs.perm as number[];
    return transpose(x.node.inputs[0]!, p.map((a) => q[a]!));
  }
  return apply1(TransposeOp, [x], { perm: p });
}

/** Swaps two axes. */
export function swapAxes(x: Tensor, a: number, b: number): Tensor {
  const perm = x.shape.map((_, i) => i);
  const [i, j] = [normAxis('swapAxes', a, x.rank), normAxis('swapAxes', b, x.rank)];
  perm[i] = j;
  perm[j] = i;
  return transpose(x, perm);
}

export interface SliceSpec {
  axes: number[];
  starts: number[];
  ends: number[];
  steps?: number[];
}

function sliceLen(start: number, end: number, step: number): number {
  return Math.max(0, Math.ceil((end - start) / step));
}

export const SliceOp: OpDef = {
  name: 'slice',
  infer: (inputs, attrs) => {
    const x = inputs[0]!;
    const shape = [...x.shape];
    const axes = attrs.axes as number[];
    const starts = attrs.starts as number[];
    const ends = attrs.ends as number[];
    const steps = attrs.steps as number[];
    axes.forEach((a, i) => (shape[a] = sliceLen(starts[i]!, ends[i]!, steps[i]!)));
    return [{ shape, dtype: x.dtype }];
  },
  lower: (ctx, n) =>
    ctx.emit(
      'Slice',
      [ctx.name(n.inputs[0]!), ctx.int64(n.attrs.starts as number[]), ctx.int64(n.attrs.ends as number[]), ctx.int64(n.attrs.axes as number[]), ctx.int64(n.attrs.steps as number[])],
      [ctx.name(n.outputs[0]!)],
    ),
  vjp: (n, gs) => {
    // Adjoint of a strided slice: interleave zeros (step > 1), then pad back to the input extent.
    let g = gs[0]!;
    const x = n.inputs[0]!;
    const axes = n.attrs.axes as number[];
    const starts = n.attrs.starts as number[];
    const steps = n.attrs.steps as number[];
    axes.forEach((a, i) => {
      const step = steps[i]!;
      const start = starts[i]!;
      const len = g.shape[a]!;
      if (step > 1 && len > 0) {
        // [.., len, ..] -> [.., len, 1, ..] -> pad to [.., len, step, ..] -> [.., len*step, ..]
        const s1 = [...g.shape.slice(0, a + 1), 1, ...g.shape.slice(a + 1)];
        const padded = padAxis(reshape(g, s1), a + 1, 0, step - 1);
        const s2 = [...g.shape];
        s2[a] = len * step;
        g = reshape(padded, s2);
        g = slice(g, a, 0, (len - 1) * step + 1);
      }
      const after = x.shape[a]! - start - g.shape[a]!;
      g = padAxis(g, a, start, after);
    });
    return [g];
  },
};

/** Python-style slice along one axis: x[..., start:end:step, ...] (negative indices count from the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  const a = normAxis('slice', axis, x.rank);
  const d = x.shape[a]!;
  if (step < 1) throw new Error(`slice: step must be >= 1, got ${step}`);
  let s = start < 0 ? start + d : start;
  let e = end === undefined ? d : end < 0 ? end + d : end;
  s = Math.min(Math.max(s, 0), d);
  e = Math.min(Math.max(e, 0), d);
  if (s === 0 && e === d && step === 1) return x;
  return apply1(SliceOp, [x], { axes: [a], starts: [s], ends: [Math.max(e, s)], steps: [step] });
}

// ---------------------------------------------------------------- concat
export const ConcatOp: OpDef = {
  name: 'concat',
  infer: (inputs, attrs) => {
    const axis = attrs.axis as number;
    const first = inputs[0]!;
    const shape = [...first.shape];
    shape[axis] = 0;
    for (const t of inputs) {
      if (t.rank !== first.rank || t.shape.some((d, i) => i !== axis && d !== first.shape[i]) || t.dtype !== first.dtype) {
        throw new Error(`concat: along axis ${axis}, ${fmtShape(t.shape)} (${t.dtype}) does not match ${fmtShape(first.shape)} (${first.dtype})`);
      }
      shape[axis] += t.shape[axis]!;
    }
    return [{ shape, dtype: first.dtype }];
  },
  lower: (ctx, n) => ctx.emit('Concat', n.inputs.map((t) => ctx.name(t)), [ctx.name(n.outputs[0]!)], { axis: n.attrs.axis as number }),
  vjp: (n, gs) => {
    const axis = n.attrs.axis as number;
    let off = 0;
    return n.inputs.map((t) => {
      const s = slice(gs[0]!, axis, off, off + t.shape[axis]!);
      off += t.shape[axis]!;
      return s;
    });
  },
};

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: needs at least one tensor');
  if (xs.length === 1) return xs[0]!;
  const a = normAxis('concat', axis, xs[0]!.rank);
  return xs[0]!.graph.apply(ConcatOp, xs, { axis: a })[0]!;
}

/** Splits along an axis into pieces of the given sizes. */
export function split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  const a = normAxis('split', axis, x.rank);
  const total = sizes.reduce((p, q) => p + q, 0);
  if (total !== x.shape[a]) throw new Error(`split: sizes [${sizes}] sum to ${total} but axis ${a} of ${fmtShape(x.shape)} has ${x.shape[a]}`);
  let off = 0;
  return sizes.map((s) => {
    const t = slice(x, a, off, off + s);
    off += s;
    return t;
  });
}

// ---------------------------------------------------------------- pad
export const PadOp: OpDef = {
  name: 'pad',
  infer: (inputs, attrs) => {
    const x = inputs[0]!;
    const pads = attrs.pads as number[];
    return [{ shape: x.shape.map((d, i) => d + pads[i]! + pads[i + x.rank]!), dtype: x.dtype }];
  },
  lower: (ctx, n) => {
    const x = n.inputs[0]!;
    ctx.emit('Pad', [ctx.name(x), ctx.int64(n.attrs.pads as number[]), ctx.scalar(n.attrs.value as number, x.dtype)], [ctx.name(n.outputs[0]!)], { mode: 'constant' });
  },
  vjp: (n, gs) => {
    const x = n.inputs[0]!;
    const pads = n.attrs.pads as number[];
    let g = gs[0]!;
    for (let i = 0; i < x.rank; i++) {
      if (pads[i] !== 0 || pads[i + x.rank] !== 0) g = slice(g, i, pads[i]!, pads[i]! + x.shape[i]!);
    }
    return [g];
  },
};

/** Constant padding; `pads` = [begin_0..begin_{r-1}, end_0..end_{r-1}] as in ONNX (non-negative). */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length !== 2 * x.rank || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new Error(`pad: pads [${pads}] must be ${2 * x.rank} non-negative integers for ${fmtShape(x.shape)}`);
  }
  if (pads.every((p) => p === 0)) return x;
  return apply1(PadOp, [x], { pads: [...pads], value });
}

export function padAxis(x: Tensor, axis: number, before: number, after: number, value = 0): Tensor {
  const a = normAxis('padAxis', axis, x.rank);
  const pads = new Array<number>(2 * x.rank).fill(0);
  pads[a] = before;
  pads[a + x.rank] = after;
  return pad(x, pads, value);
}

// ---------------------------------------------------------------- tile
export const TileOp: OpDef = {
  name: 'tile',
  infer: (inputs, attrs) => {
    const reps = attrs.repeats as number[];
    return [{ shape: inputs[0]!.shape.map((d, i) => d * reps[i]!), dtype: inputs[0]!.dtype }];
  },
  lower: (ctx, n) => ctx.emit('Tile', [ctx.name(n.inputs[0]!), ctx.int64(n.attrs.repeats as number[])], [ctx.name(n.outputs[0]!)]),
  vjp: (n, gs) => {
    // [r0*d0, r1*d1, ...] -> [r0, d0, r1, d1, ...] and sum over the r axes.
    const x = n.inputs[0]!;
    const reps = n.attrs.repeats as number[];
    const split2: number[] = [];
    x.shape.forEach((d, i) => split2.push(reps[i]!, d));
    const axes = x.shape.map((_, i) => 2 * i);
    return [reshape(reduceSum(reshape(gs[0]!, split2), axes, false), x.shape)];
  },
};

export function tile(x: Tensor, repeats: readonly number[]): Tensor {
  if (repeats.length !== x.rank) throw new Error(`tile: ${repeats.length} repeats for rank-${x.rank} ${fmtShape(x.shape)}`);
  if (repeats.every((r) => r === 1)) return x;
  return apply1(TileOp, [x], { repeats: [...repeats] });
}

// ---------------------------------------------------------------- gather / scatter-add
/**
 * Gather along `axis` with constant indices (shape `indicesShape`); output shape
 * = x.shape[:axis] + indicesShape + x.shape[axis+1:]. The adjoint is a
 * scatter-add; when the indices are a permutation it is the inverse gather.
 */
export const GatherOp: OpDef = {
  name: 'gather',
  infer: (inputs, attrs) => {
    const x = inputs[0]!;
    const axis = attrs.axis as number;
    const ishape = attrs.indicesShape as number[];
    return [{ shape: [...x.shape.slice(0, axis), ...ishape, ...x.shape.slice(axis + 1)], dtype: x.dtype }];
  },
  lower: (ctx, n) => {
    const idx = ctx.int64Tensor(n.attrs.indices as number[], n.attrs.indicesShape as number[]);
    ctx.emit('Gather', [ctx.name(n.inputs[0]!), idx], [ctx.name(n.outputs[0]!)], { axis: n.attrs.axis as number });
  },
  vjp: (n, gs) => {
    const x = n.inputs[0]!;
    const axis = n.attrs.axis as number;
    const indices = n.attrs.indices as number[];
    const ishape = n.attrs.indicesShape as number[];
    const N = x.shape[axis]!;
    const g = gs[0]!;
    if (ishape.length === 1 && indices.length === N) {
      const inv = new Array<number>(N).fill(-1);
      let isPerm = true;
      indices.forEach((v, i) => {
        if (inv[v] !== -1) isPerm = false;
        inv[v] = i;
      });
      if (isPerm) return [gather(g, axis, inv)];
    }
    // Move the gathered axes to the front, scatter-add rows into zeros, move back.
    const M = indices.length;
    const before = x.shape.slice(0, axis);
    const after = x.shape.slice(axis + 1);
    const gFlat = reshape(g, [prod(before), M, prod(after)]);
    const front = transpose(gFlat, [1, 0, 2]); // [M, B, A]
    const summed = scatterAddRows(front, indices, N); // [N, B, A]
    const back = transpose(summed, [1, 0, 2]);
    return [reshape(back, x.shape)];
  },
};

export function gather(x: Tensor, axis: number, indices: readonly number[], indicesShape?: readonly number[]): Tensor {
  const a = normAxis('gather', axis, x.rank);
  const ishape = indicesShape ? [...indicesShape] : [indices.length];
  if (prod(ishape) !== indices.length) throw new Error(`gather: ${indices.length} indices do not fill shape ${fmtShape(ishape)}`);
  const N = x.shape[a]!;
  for (const v of indices) {
    if (!Number.isInteger(v) || v < 0 || v >= N) throw new Error(`gather: index ${v} out of range [0, ${N}) on axis ${a} of ${fmtShape(x.shape)}`);
  }
  return apply1(GatherOp, [x], { axis: a, indices: [...indices], indicesShape: ishape });
}

/** out[N, ...] = zeros; out[idx[m]] += rows[m] (ScatterND with reduction 'add'). */
export const ScatterAddRowsOp: OpDef = {
  name: 'scatterAddRows',
  infer: (inputs, attrs) => [{ shape: [attrs.n as number, ...inputs[0]!.shape.slice(1)], dtype: inputs[0]!.dtype }],
  lower: (ctx, n) => {
    const rows = n.inputs[0]!;
    const indices = n.attrs.indices as number[];
    const zerosShape = [n.attrs.n as number, ...rows.shape.slice(1)];
    const zeros = ctx.fresh('zeros');
    ctx.emit('Expand', [ctx.scalar(0, rows.dtype), ctx.int64(zerosShape)], [zeros]);
    ctx.emit('ScatterND', [zeros, ctx.int64Tensor(indices, [indices.length, 1]), ctx.name(rows)], [ctx.name(n.outputs[0]!)], { reduction: 'add' });
  },
  vjp: (n, gs) => [gather(gs[0]!, 0, n.attrs.indices as number[])],
};

export function scatterAddRows(rows: Tensor, indices: readonly number[], n: number): Tensor {
  if (indices.length !== rows.shape[0]) throw new Error(`scatterAddRows: ${indices.length} indices for ${rows.shape[0]} rows`);
  return apply1(ScatterAddRowsOp, [rows], { indices: [...indices], n });
}

/** x with a new axis of size 1 at `axis`. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

export function flatten(x: Tensor, startAxis = 0, endAxis = -1): Tensor {
  const s = normAxis('flatten', startAxis, x.rank);
  const e = normAxis('flatten', endAxis, x.rank);
  return reshape(x, [...x.shape.slice(0, s), prod(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

