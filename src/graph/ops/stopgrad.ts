/**
 * Stop-gradient: the identity in the forward pass, no gradient in the backward pass
 * (torch's `.detach()`, jax's `lax.stop_gradient`). ResFormer's scale-consistency loss
 * needs it: the teacher class token is `outputs_kd.detach()` in the official
 * `engine.train_one_epoch` (ruitian12/resformer), so the distillation term sends
 * gradient only through the student.
 */
import type { OpDef, Tensor } from '../tensor.ts';

export const StopGradientOp: OpDef = {
  name: 'stopGradient',
  infer: (inputs) => [{ shape: [...inputs[0]!.shape], dtype: inputs[0]!.dtype }],
  lower: (ctx, n) => ctx.emit('Identity', [ctx.name(n.inputs[0]!)], [ctx.name(n.outputs[0]!)]),
  // The VJP exists (so backprop does not reject the op) and returns no gradient for the input.
  vjp: () => [null],
};

/** `x` unchanged in value; gradients do not flow back through it. */
export function stopGradient(x: Tensor): Tensor {
  return x.graph.apply(StopGradientOp, [x])[0]!;
}
