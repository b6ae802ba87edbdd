/**
 * Reverse-mode automatic differentiation as a graph transformation.
 *
 * Walks the nodes between `wrt` and `outputs` in reverse creation order (which
 * is a topological order), calls each op's VJP and sums the gradients of
 * tensors used more than once. The result is more nodes in the same graph, so
 * one ONNX run can do forward, backward and the optimizer update.
 */
import { type Node, Tensor, fmtShape, isFloat, sameShape } from './tensor.ts';
import { add } from './ops/elementwise.ts';
import { expandTo } from './ops/shape.ts';

/**
 * Gradients of `outputs` (weighted by `gradOutputs`) with respect to each of
 * `wrt`. A tensor that does not influence the outputs gets null.
 */
export function backprop(outputs: readonly Tensor[], gradOutputs: readonly Tensor[], wrt: readonly (Tensor | undefined)[]): (Tensor | null)[] {
  if (outputs.length === 0) return wrt.map(() => null);
  const graph = outputs[0]!.graph;
  const wrtSet = new Set<Tensor>(wrt.filter((t): t is Tensor => t !== undefined));

  // Ancestors of the outputs (the only nodes whose gradient can matter).
  const ancestor = new Set<Node>();
  const stack: Tensor[] = [...outputs];
  while (stack.length) {
    const t = stack.pop()!;
    if (t.node && !ancestor.has(t.node)) {
      ancestor.add(t.node);
      for (const i of t.node.inputs) stack.push(i);
    }
  }
  // Tensors that depend on wrt (forward reachability, creation order is topological).
  const depends = new Set<Tensor>(wrtSet);
  const active: Node[] = [];
  for (const node of [...ancestor].sort((a, b) => a.id - b.id)) {
    if (node.inputs.some((i) => depends.has(i))) {
      active.push(node);
      for (const o of node.outputs) depends.add(o);
    }
  }

  const grads = new Map<Tensor, Tensor>();
  const accumulate = (t: Tensor, g: Tensor): void => {
    if (!sameShape(g.shape, t.shape)) throw new Error(`backprop: gradient ${fmtShape(g.shape)} does not match ${t} (a VJP returned the wrong shape)`);
    const prev = grads.get(t);
    grads.set(t, prev ? add(prev, g) : g);
  };
  outputs.forEach((o, i) => {
    const g = gradOutputs[i]!;
    accumulate(o, sameShape(g.shape, o.shape) ? g : expandTo(g, o.shape));
  });

  for (let k = active.length - 1; k >= 0; k--) {
    const node = active[k]!;
    const gouts = node.outputs.map((o) => grads.get(o) ?? null);
    if (gouts.every((g) => g === null)) continue;
    if (!node.op.vjp) {
      if (node.outputs.some((o) => isFloat(o.dtype))) throw new Error(`backprop: op '${node.op.name}' has no gradient, but a gradient reaches its output`);
      continue;
    }
    const gins = node.op.vjp(node, gouts);
    node.inputs.forEach((inp, i) => {
      const g = gins[i];
      if (g && depends.has(inp) && isFloat(inp.dtype)) accumulate(inp, g);
    });
  }
  void graph;
  return wrt.map((t) => (t ? grads.get(t) ?? null : null));
}

/**
 * d(loss)/d(wrt) for a scalar loss. Inputs that do not influence the loss get
 * a zero gradient of their shape (so an optimizer can treat every parameter alike).
 */
export function grad(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  if (loss.size !== 1) throw new Error(`grad: loss must have one element, got ${fmtShape(loss.shape)}; reduce it (mean/sum) or use backprop() with a seed`);
  const seed = loss.graph.scalar(1, loss.dtype);
  const gs = backprop([loss], [expandTo(seed, loss.shape)], wrt);
  return gs.map((g, i) => g ?? expandTo(loss.graph.scalar(0, wrt[i]!.dtype), wrt[i]!.shape));
}
