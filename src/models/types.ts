/**
 * What every model family provides. A model is a config (plain data, what a
 * checkpoint stores) plus a forward function traced against `Params`.
 */
import type { Tensor } from '../graph/tensor.ts';
import type { ParamInfo, Params } from '../nn/params.ts';
import type { ResampleMode } from '../posembed/resample.ts';

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
  /**
   * Named intermediates (stage outputs, tokens...), for pictures and tests. One key every family
   * returns with one layout (the aux contract):
   *
   * - `pos_embed`: `[1, C, h, w]` (NCHW), the position embedding added to the patch tokens at this
   *   input's token grid `h x w` (`FamilyTable.tokenGrid`), whatever the scheme (learned and resampled,
   *   sin-cos, ResFormer GPE, abs-win interpolate(global) + tile(window)); prefix rows (a class
   *   token's) are not in it. Video Hiera: the spatial part (the temporal part differs per frame; see `pos_embed_tokens`).
   *
   * Family-specific extras in the layout the official code adds them: `pos_embed_tokens`
   * (ViT: `[1, prefix + h·w, C]`; Hiera: `[1, h·w, C]` row-major; video Hiera: `[1, T'·h·w, C]`),
   * `pos_embed_hw` (ViTDet, HieraDet: `[1, h, w, C]`, NHWC as detectron2 / sam2 add it).
   */
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

/** Where a model keeps a learned absolute position embedding `[1, prefix + h·w, C]`, and how it resamples it. */
export interface LearnedPosEmbed {
  name: string;
  /** Rows before the grid (the class token's), kept as they are. */
  prefix: number;
  /** The grid the model stores. */
  grid: [number, number];
  channels: number;
  /** The model's own resize rule for a new grid. */
  mode: ResampleMode;
}

// The size helper is in src/util/sizes.ts (shared with src/posembed/abswin.ts); re-exported for the models.
export { nearestMultiples } from '../util/sizes.ts';
