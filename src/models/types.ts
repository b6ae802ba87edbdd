/**
 * What every model family provides. A model is a config (plain data, what a
 * checkpoint stores) plus a forward function traced against `Params`.
 */
import type { Tensor } from '../graph/tensor.ts';
import type { ParamInfo, Params } from '../nn/params.ts';

export interface ForwardOptions {
  /** Training mode (drop path active where masks are given; Hiera returns logits in both modes here). */
  train?: boolean;
  /**
   * Per-block drop-path keep masks, [B, 1, 1] 0/1 tensors fed as graph inputs
   * (drawn in TypeScript from a seeded generator). Missing = no drop path.
   */
  dropPathMasks?: readonly (Tensor | undefined)[];
}

export interface ForwardOutput {
  /** [B, numClasses] pre-softmax logits (or the last feature map for backbones without a head). */
  logits: Tensor;
  /** Pooled, normed features before the head, [B, C]. */
  preLogits?: Tensor;
  /** Named intermediates (stage outputs, tokens, the added position embedding...), for pictures and tests. */
  aux: Record<string, Tensor>;
}

export interface Model<C = unknown> {
  /** Family name ('vit', 'resformer', 'hiera', 'vitdet', 'hieradet'). */
  readonly family: string;
  readonly config: C;
  /** What `forward` takes: images `[B, 3, H, W]` (default) or clips `[B, 3, T, H, W]` (video models). */
  readonly inputKind?: 'image' | 'clip';
  /** The input size the preset was built for (position embeddings are stored at this grid). */
  readonly defaultRes: [number, number];
  /** Traces the forward pass for images x [B, 3, H, W]. */
  forward(p: Params, x: Tensor, opts?: ForwardOptions): ForwardOutput;
  /** Throws an error naming the nearest sizes that work when H x W is not supported. */
  checkInputSize(H: number, W: number): void;
  /** Every parameter with shape, init and decay flag (traced once at the default size). */
  paramInfos(): Map<string, ParamInfo>;
}

// The size helper is in src/util/sizes.ts (shared with src/posembed/abswin.ts); re-exported for the models.
export { nearestMultiples } from '../util/sizes.ts';
