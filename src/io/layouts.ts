/**
 * Write-back layouts: our weights (official parameter names) in the key names and nesting of a
 * source's own code, the inverse of the key maps in `keymaps.ts`, so a model converted or trained
 * here continues in that code (and its multi-GPU training scripts):
 *
 * | layout       | families          | what the file holds                                                   | read back by |
 * |--------------|-------------------|-----------------------------------------------------------------------|--------------|
 * | `official`   | hiera             | `{'model_state': sd}` (facebookresearch/hiera hub loader)             | `Hiera.load_state_dict(ck['model_state'])` |
 * |              | vit               | `sd` (timm is the reference code of ViT/DeiT)                         | timm `model.load_state_dict(sd)` |
 * |              | resformer         | `{'model': sd}` (ruitian12/resformer main.py checkpoint)              | `model.load_state_dict(ck['model'])` |
 * |              | vitdet            | as `detectron2`                                                       | |
 * |              | hieradet          | as `sam2`                                                             | |
 * | `timm`       | vit, hiera        | `sd`; Hiera with timm's head/window names (`head.fc`, `head.norm`, `pos_embed_win`) | timm `load_state_dict` |
 * | `hf`         | hiera             | `hiera.embeddings...`, `hiera.encoder.stages.S.layers.L...`, `classifier` (transformers convert_hiera_to_hf.py, inverted) | `HieraForImageClassification` |
 * | `sam2`       | hieradet          | `{'model': {'image_encoder.trunk.' + k}}` (sam2 build_sam._load_checkpoint) | sam2 |
 * | `detectron2` | vitdet            | `{'model': {'backbone.net.' + k, 'backbone.simfp_*'}}` (SimpleFeaturePyramid(net=ViT)) | DetectionCheckpointer |
 * |              | vit               | `{'model': sd}` (a detectron2-style backbone file)                    | |
 *
 * Shapes are unchanged in every layout: the sources store the same tensors under other names.
 */
import type { Model } from '../models/types.ts';
import type { HieraConfig } from '../models/hiera-config.ts';
import type { NamedTensor } from './safetensors.ts';
import type { TorchSaveValue } from './pth-write.ts';

export type Layout = 'official' | 'timm' | 'hf' | 'sam2' | 'detectron2';
export const LAYOUTS: readonly Layout[] = ['official', 'timm', 'hf', 'sam2', 'detectron2'];

export interface LayoutResult {
  /** The nested object torch.save writes (`.pth`). */
  root: TorchSaveValue;
  /** The same tensors with dotted names of the nesting (what a `.safetensors` of this layout holds). */
  flat: Map<string, NamedTensor>;
  /** What was renamed, in words. */
  note: string;
}

// The official <-> timm Hiera renames are model knowledge (src/models/hiera-naming.ts); re-exported here.
export { hieraToOfficial, hieraToTimm } from '../models/hiera-naming.ts';
import { hieraToOfficial, hieraToTimm } from '../models/hiera-naming.ts';

/** official Hiera name -> transformers HieraForImageClassification name (convert_hiera_to_hf.py create_rename_keys, inverted). */
function hieraToHf(k: string, stages: readonly number[]): string {
  const block = /^blocks\.(\d+)\.(.*)$/.exec(k);
  if (block) {
    // Global block index b -> (stage s, layer l): b = Σ_{s' < s} stages[s'] + l.
    let b = Number(block[1]);
    let s = 0;
    while (s < stages.length && b >= stages[s]!) { b -= stages[s]!; s++; }
    if (s >= stages.length) throw new Error(`layout hf: block ${block[1]} is past the ${stages.reduce((a, c) => a + c, 0)} blocks of the config`);
    const rest = block[2]!
      .replace(/^norm1\./, 'layernorm_before.')
      .replace(/^norm2\./, 'layernorm_after.');
    return `hiera.encoder.stages.${s}.layers.${b}.${rest}`;
  }
  if (k.startsWith('patch_embed.proj.')) return `hiera.embeddings.patch_embeddings.projection.${k.slice('patch_embed.proj.'.length)}`;
  if (k === 'pos_embed') return 'hiera.embeddings.position_embeddings';
  if (k.startsWith('norm.')) return `hiera.pooler.layernorm.${k.slice('norm.'.length)}`;
  if (k.startsWith('head.projection.')) return `classifier.${k.slice('head.projection.'.length)}`;
  throw new Error(`layout hf: no HF name known for Hiera parameter '${k}'`);
}

/** Our weights as layout `layout` of `model`'s source (see the file comment). */
export function toLayout(model: Model, weights: ReadonlyMap<string, NamedTensor>, layout: Layout): LayoutResult {
  const fam = model.family;
  const refuse = (): never => {
    const ok = LAYOUTS.filter((l) => { try { layoutPlan(fam, l, model); return true; } catch { return false; } });
    throw new Error(`convert --layout ${layout}: no ${layout} layout for a ${fam} model; ${fam} can be written as ${ok.join(', ') || 'safetensors only'}`);
  };
  const plan = layoutPlan(fam, layout, model, refuse);
  const inner = new Map<string, NamedTensor>();
  for (const [k, t] of weights) {
    const name = plan.rename(k);
    if (inner.has(name)) throw new Error(`layout ${layout}: '${k}' and another parameter both map to '${name}'`);
    inner.set(name, t);
  }
  const root: TorchSaveValue = plan.wrap ? new Map([[plan.wrap, inner as Map<string, TorchSaveValue>]]) : (inner as Map<string, TorchSaveValue>);
  const flat = new Map([...inner].map(([k, t]) => [plan.wrap ? `${plan.wrap}.${k}` : k, t] as const));
  return { root, flat, note: plan.note };
}

interface Plan { wrap: string | null; rename: (k: string) => string; note: string }

function layoutPlan(fam: string, layout: Layout, model: Model, refuse: () => never = () => { throw new Error('no layout'); }): Plan {
  const hiera = fam === 'hiera' ? (model.config as HieraConfig) : null;
  switch (layout) {
    case 'official':
      if (hiera) return { wrap: 'model_state', rename: hieraToOfficial, note: "official Hiera: {'model_state': state_dict} with norm / head.projection / pos_embed_window" };
      if (fam === 'vit') return { wrap: null, rename: (k) => k, note: 'timm ViT (the reference ViT code): a plain state dict' };
      if (fam === 'resformer') return { wrap: 'model', rename: (k) => k, note: "ResFormer main.py: {'model': state_dict}" };
      if (fam === 'vitdet') return layoutPlan(fam, 'detectron2', model, refuse);
      if (fam === 'hieradet') return layoutPlan(fam, 'sam2', model, refuse);
      return refuse();
    case 'timm':
      if (hiera) return { wrap: null, rename: hieraToTimm, note: 'timm Hiera: a plain state dict with head.norm / head.fc / pos_embed_win' };
      if (fam === 'vit') return { wrap: null, rename: (k) => k, note: 'timm ViT: a plain state dict' };
      return refuse();
    case 'hf':
      // transformers' Hiera has the learned absolute embedding only (no abs-win).
      if (hiera && hiera.posEmbed === 'absolute') {
        const stages = hiera.stages;
        return { wrap: null, rename: (k) => hieraToHf(hieraToOfficial(k), stages), note: 'transformers HieraForImageClassification: hiera.embeddings / hiera.encoder.stages.S.layers.L / hiera.pooler / classifier' };
      }
      return refuse();
    case 'sam2':
      if (fam === 'hieradet') return { wrap: 'model', rename: (k) => `image_encoder.trunk.${k}`, note: "SAM 2: {'model': {'image_encoder.trunk.*'}}" };
      return refuse();
    case 'detectron2':
      if (fam === 'vitdet') {
        // SimpleFeaturePyramid(net=ViT) is the backbone: the ViT under backbone.net, the pyramid beside it.
        return { wrap: 'model', rename: (k) => (k.startsWith('simfp_') ? `backbone.${k}` : `backbone.net.${k}`), note: "detectron2 ViTDet: {'model': {'backbone.net.*', 'backbone.simfp_*'}}" };
      }
      if (fam === 'vit') return { wrap: 'model', rename: (k) => k, note: "detectron2-style: {'model': state_dict}" };
      return refuse();
  }
}

export function isLayout(s: string): s is Layout {
  return (LAYOUTS as readonly string[]).includes(s);
}
