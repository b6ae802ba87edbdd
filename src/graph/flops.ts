/**
 * Counts the multiply-add work of a traced graph (2 FLOPs per MAC) in its
 * matrix products and convolutions, the ops that dominate transformers. Used by
 * the benchmarks to turn img/s into a fraction of the machine's matmul rate.
 */
import type { Node, Tensor } from './tensor.ts';

function nodeFlops(n: Node): number {
  const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
  if (n.op.name === 'matmul') {
    const [a] = n.inputs as [Tensor, Tensor];
    const out = n.outputs[0]!;
    const k = a.shape[a.rank - 1]!;
    return 2 * prod(out.shape) * k;
  }
  if (n.op.name === 'attention') {
    // q k^T ([B, Sq, heads*dk] x [B, Sk, heads*dk]) and P v (Sq x Sk x heads*dv), as the explicit form.
    const [q, k, v] = n.inputs as [Tensor, Tensor, Tensor];
    const [B, Sq, Ck] = q.shape as [number, number, number];
    return 2 * B * Sq * k.shape[1]! * (Ck + v.shape[2]!);
  }
  if (n.op.name === 'conv2d') {
    const w = n.inputs[1]!;
    const out = n.outputs[0]!;
    return 2 * prod(out.shape) * w.shape[1]! * w.shape[2]! * w.shape[3]!;
  }
  return 0;
}

/** FLOPs of every matmul/conv node that the given outputs depend on. */
export function countFlops(outputs: readonly Tensor[]): number {
  const seen = new Set<Node>();
  const stack = [...outputs];
  let total = 0;
  while (stack.length) {
    const t = stack.pop()!;
    const n = t.node;
    if (!n || seen.has(n)) continue;
    seen.add(n);
    total += nodeFlops(n);
    stack.push(...n.inputs);
  }
  return total;
}
