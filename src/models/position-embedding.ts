/**
 * The position embedding a model adds, read from its own forward (the `aux.pos_embed` contract of
 * src/models/types.ts: `[1, C, h, w]` in every family), and the window it attends in. What
 * `anyres similarity` and the conversion tests measure.
 *
 * @example
 * const grid = await positionEmbeddingAt(model, weights);            // { data, C, H, W }
 * similarityOf(grid, attentionWindowOf(model)!).similarity;            // src/posembed/similarity.ts
 */
import type { Model } from './types.ts';
import { familyOf } from './registry.ts';
import { Params, type Weights } from '../nn/params.ts';
import { Runtime, host } from '../graph/runtime.ts';
import type { Grid } from '../posembed/reference.ts';

/** The attention window a model's position embedding is compared against (its first-stage window; the family's table). */
export function attentionWindowOf(model: Model): [number, number] | null {
  return familyOf(model).attentionWindow(model.config);
}

/**
 * The position embedding a model ADDS at its default resolution, as a `[C, h, w]` grid: for a
 * learned absolute embedding that is the stored embedding itself; for abs-win the combined
 * `interpolate(global) + tile(window)`. Computed by the model's own forward (`aux.pos_embed`), so
 * no embedding rule is restated here; only the position-embedding branch of the graph is run.
 */
export async function positionEmbeddingAt(model: Model, weights: Weights, rt = new Runtime()): Promise<Grid> {
  const [H, W] = model.defaultRes;
  const shape = model.inputKind === 'clip' ? [1, 3, 1, H, W] : [1, 3, H, W];
  const out = await rt.run((i, g) => {
    const a = model.forward(new Params(g, weights), i.x!).aux.pos_embed;
    if (!a) throw new Error(`positionEmbeddingAt: ${model.family} does not return aux.pos_embed (the contract of src/models/types.ts)`);
    return { pos: a };
  }, { x: host(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape) });
  const pos = out.pos!;
  const [, C, h, w] = pos.shape as [number, number, number, number];
  const [th, tw] = familyOf(model).tokenGrid(model.config, H, W);
  if (pos.shape.length !== 4 || h !== th || w !== tw) {
    throw new Error(`positionEmbeddingAt: ${model.family} returned aux.pos_embed [${pos.shape.join(', ')}]; the contract is [1, C, ${th}, ${tw}] at ${H}x${W}`);
  }
  return { data: Float64Array.from(pos.data as Float32Array), C, H: h, W: w };
}
