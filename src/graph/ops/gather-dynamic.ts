/**
 * Per-sample row gather with DATA-DEPENDENT indices, and its adjoint scatter-add.
 *
 * `gatherRows(x [B, N, ...], idx int64 [B, K])` = `out[b, k, ...] = x[b, idx[b, k], ...]`.
 * The indices are a tensor of the graph (typically a feed computed in TypeScript from a mask that
 * is itself a feed), unlike `gather` in shape.ts whose indices are constants baked into the ONNX
 * model. The MAE (hiera-mae.ts) needs it: which mask units are kept changes every step, but how
 * many are kept does not, so shapes stay static and one compiled session serves every step.
 *
 * Lowering: ONNX GatherND with full `(b, idx)` index pairs (`[B, K, 2]`, built in the graph from a
 * constant batch iota and the fed indices). The VJP is ScatterND with reduction 'add' on the same
 * pairs into zeros `[B, N, ...]`, so repeated indices accumulate (the MAE's mask token is gathered
 * once per masked unit). Indices get no gradient.
 */
import { type LowerContext, type Node, type OpDef, type Tensor, fmtShape } from '../tensor.ts';

/** Emits the `[B, K, 2]` int64 (b, idx[b, k]) pairs for GatherND/ScatterND; returns their name. */
function indexPairs(ctx: LowerContext, idx: Tensor): string {
  const [B, K] = idx.shape as [number, number];
  const iota: number[] = [];
  for (let b = 0; b < B; b++) for (let k = 0; k < K; k++) iota.push(b);
  const col = ctx.fresh('idx_col');
  ctx.emit('Unsqueeze', [ctx.name(idx), ctx.int64([2])], [col]);
  const pairs = ctx.fresh('idx_pairs');
  ctx.emit('Concat', [ctx.int64Tensor(iota, [B, K, 1], 'batch_iota'), col], [pairs], { axis: 2 });
  return pairs;
}

function checkArgs(op: string, x: Tensor, idx: Tensor): void {
  if (x.rank < 2) throw new Error(`${op}: x must be [B, N, ...], got ${fmtShape(x.shape)}`);
  if (idx.dtype !== 'int64' || idx.rank !== 2 || idx.shape[0] !== x.shape[0]) {
    throw new Error(`${op}: indices must be int64 [B=${x.shape[0]}, K], got ${idx.dtype} ${fmtShape(idx.shape)}`);
  }
  if (x.graph !== idx.graph) throw new Error(`${op}: x and indices belong to different graphs`);
}

export const GatherRowsOp: OpDef = {
  name: 'gatherRows',
  infer: (inputs) => {
    const [x, idx] = inputs as [Tensor, Tensor];
    return [{ shape: [x.shape[0]!, idx.shape[1]!, ...x.shape.slice(2)], dtype: x.dtype }];
  },
  lower: (ctx, n: Node) => {
    const [x, idx] = n.inputs as [Tensor, Tensor];
    ctx.emit('GatherND', [ctx.name(x), indexPairs(ctx, idx)], [ctx.name(n.outputs[0]!)], { batch_dims: 0 });
  },
  vjp: (n, gs) => {
    const [x, idx] = n.inputs as [Tensor, Tensor];
    return [scatterAddRowsDynamic(gs[0]!, idx, x.shape[1]!), null];
  },
};

export const ScatterAddRowsDynamicOp: OpDef = {
  name: 'scatterAddRowsDynamic',
  infer: (inputs, attrs) => {
    const u = inputs[0]!;
    return [{ shape: [u.shape[0]!, attrs.n as number, ...u.shape.slice(2)], dtype: u.dtype }];
  },
  lower: (ctx, n: Node) => {
    const [u, idx] = n.inputs as [Tensor, Tensor];
    const out = n.outputs[0]!;
    const zeros = ctx.fresh('zeros');
    ctx.emit('Expand', [ctx.scalar(0, u.dtype), ctx.int64(out.shape)], [zeros]);
    ctx.emit('ScatterND', [zeros, indexPairs(ctx, idx), ctx.name(u)], [ctx.name(out)], { reduction: 'add' });
  },
  vjp: (n, gs) => [gatherRows(gs[0]!, n.inputs[1]!), null],
};

/**
 * `out[b, k, ...] = x[b, idx[b, k], ...]` with `idx` an int64 `[B, K]` tensor of the graph.
 * Out-of-range indices are an ONNX Runtime error at run time (check them where they are made).
 */
export function gatherRows(x: Tensor, idx: Tensor): Tensor {
  checkArgs('gatherRows', x, idx);
  return x.graph.apply(GatherRowsOp, [x, idx])[0]!;
}

/** `out = zeros [B, n, ...]; out[b, idx[b, k], ...] += u[b, k, ...]` (repeated indices accumulate). */
export function scatterAddRowsDynamic(u: Tensor, idx: Tensor, n: number): Tensor {
  checkArgs('scatterAddRowsDynamic', u, idx);
  if (idx.shape[1] !== u.shape[1]) throw new Error(`scatterAddRowsDynamic: ${idx.shape[1]} indices per sample for ${u.shape[1]} rows`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`scatterAddRowsDynamic: target rows must be a positive integer, got ${n}`);
  return u.graph.apply(ScatterAddRowsDynamicOp, [u, idx], { n })[0]!;
}
