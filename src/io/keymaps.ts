/**
 * Checkpoint key maps, in the spirit of timm's `checkpoint_filter_fn`: detect where a state
 * dict came from by its keys, strip the wrapper prefix, rename to the official names our
 * models use, and drop what belongs to other parts of a bigger model (detector necks, heads,
 * optimizer state), reporting those keys as ignored.
 *
 * Each source is one row of {@link SOURCE_RULES}; detection walks the rows in order (most
 * specific first) and takes the first row whose signature key exists under one of its prefixes.
 */
import type { NamedTensor } from './safetensors.ts';

export type CheckpointSource = 'hiera' | 'hf-hiera' | 'sam2-trunk' | 'timm-vit' | 'detectron2-vitdet' | 'resformer' | 'plain';

export interface SourceDetection {
  source: CheckpointSource;
  /** The wrapper prefix that is stripped ('' for none), e.g. 'model.image_encoder.trunk.'. */
  prefix: string;
}

/**
 * A rename. `to` may use `$1`-style groups and `{block}`: the global block index computed from
 * named groups `stage` and `layer` and the per-stage layer counts found in the whole key set
 * (HF stores `encoder.stages.S.layers.L`, official Hiera numbers blocks globally).
 */
export interface RenameRule { from: RegExp; to: string }

export interface SourceRule {
  source: CheckpointSource;
  /** Where the rule comes from (file / function we follow). */
  reference: string;
  /** Wrapper prefixes in preference order; '' means keys at top level. */
  prefixes: string[];
  /** A key (after the prefix) that only this source has. */
  signature: RegExp;
  /** Renames applied, first match wins, to keys under the prefix. */
  renames: RenameRule[];
  /** Keys outside the prefix that still belong to the model (HF's `classifier` sits beside `hiera.`). */
  outside?: RenameRule[];
}

const HF_LAYER = String.raw`encoder\.stages\.(?<stage>\d+)\.layers\.(?<layer>\d+)`;

export const SOURCE_RULES: readonly SourceRule[] = [
  {
    source: 'hf-hiera',
    // Inverse of the table in transformers/models/hiera/convert_hiera_to_hf.py (create_rename_keys).
    reference: 'huggingface/transformers models/hiera/convert_hiera_to_hf.py',
    prefixes: ['hiera.', ''],
    signature: /^embeddings\.patch_embeddings\.projection\.weight$/,
    renames: [
      { from: /^embeddings\.patch_embeddings\.projection\.(weight|bias)$/, to: 'patch_embed.proj.$1' },
      { from: /^embeddings\.position_embeddings$/, to: 'pos_embed' },
      { from: new RegExp(`^${HF_LAYER}\\.layernorm_before\\.(weight|bias)$`), to: 'blocks.{block}.norm1.$3' },
      { from: new RegExp(`^${HF_LAYER}\\.layernorm_after\\.(weight|bias)$`), to: 'blocks.{block}.norm2.$3' },
      { from: new RegExp(`^${HF_LAYER}\\.attn\\.(qkv|proj)\\.(weight|bias)$`), to: 'blocks.{block}.attn.$3.$4' },
      { from: new RegExp(`^${HF_LAYER}\\.mlp\\.(fc1|fc2)\\.(weight|bias)$`), to: 'blocks.{block}.mlp.$3.$4' },
      { from: new RegExp(`^${HF_LAYER}\\.proj\\.(weight|bias)$`), to: 'blocks.{block}.proj.$3' },
      { from: /^pooler\.layernorm\.(weight|bias)$/, to: 'norm.$1' },
    ],
    outside: [{ from: /^classifier\.(weight|bias)$/, to: 'head.projection.$1' }],
  },
  {
    source: 'sam2-trunk',
    // sam2/modeling/backbones/hieradet.py lives at `image_encoder.trunk` of SAM2Base; checkpoints nest it under 'model'.
    reference: 'facebookresearch/sam2 sam2/build_sam.py (_load_checkpoint reads sd["model"])',
    prefixes: ['model.image_encoder.trunk.', 'image_encoder.trunk.', ''],
    signature: /^pos_embed_window$/,
    renames: [],
  },
  {
    source: 'detectron2-vitdet',
    // detectron2 ViTDet: SimpleFeaturePyramid(net=ViT(...)) is `backbone`, so the ViT is `backbone.net`.
    reference: 'facebookresearch/detectron2 projects/ViTDet configs (model.backbone.net = ViT)',
    prefixes: ['model.backbone.net.', 'backbone.net.', ''],
    signature: /^blocks\.\d+\.attn\.rel_pos_h$/,
    renames: [],
  },
  {
    source: 'resformer',
    // ruitian12/resformer main.py saves {'model', 'model_ema', 'optimizer', ...}; prefer the raw model.
    reference: 'ruitian12/resformer main.py (utils.save_on_master checkpoint dict)',
    prefixes: ['model.', 'model_ema.', ''],
    signature: /^(pos_embed\.embed_layer\.weight|blocks\.\d+\.attn\.get_v\.weight)$/,
    renames: [],
  },
  {
    source: 'hiera',
    // facebookresearch/hiera hiera.py hub loader reads state_dict["model_state"]. A Hiera block changing
    // width has `blocks.N.proj` (ViTs never do); the head is `head.projection`.
    reference: 'facebookresearch/hiera hiera/hiera.py (pretrained_model: state_dict["model_state"])',
    prefixes: ['model_state.', 'model.', ''],
    signature: /^(blocks\.\d+\.proj\.weight|head\.projection\.weight)$/,
    renames: [],
  },
  {
    source: 'timm-vit',
    // timm vision_transformer.py names; DeiT releases nest the state dict under 'model'.
    reference: 'huggingface/pytorch-image-models timm/models/vision_transformer.py; facebookresearch/deit main.py',
    prefixes: ['model.', ''],
    signature: /^(cls_token|blocks\.\d+\.attn\.qkv\.weight)$/,
    renames: [],
  },
];

/**
 * Wrappers around any source's own prefix, tried in this order: none; a training script's
 * `{'state_dict': ...}` (PyTorch Lightning, mmcv, many repos); DistributedDataParallel's `module.`
 * (a state dict taken from the wrapped model, also inside `model.` / `model_state.` / `state_dict.`).
 */
const OUTER_WRAPPERS = ['', 'state_dict.', 'module.', 'state_dict.module.'];
const INNER_WRAPPERS = ['', 'module.'];

/** Every prefix to try for a rule, most specific first. */
function candidatePrefixes(rule: SourceRule): string[] {
  const out: string[] = [];
  for (const p of rule.prefixes) {
    for (const outer of OUTER_WRAPPERS) {
      for (const inner of INNER_WRAPPERS) {
        if (p === '' && inner !== '') continue; // '' + 'module.' is the outer 'module.' already
        const c = outer + p + inner;
        if (!out.includes(c)) out.push(c);
        // {'model': ddp.state_dict()}: DDP's module. sits after the checkpoint's own key.
        const dot = p.indexOf('.');
        if (inner === '' && dot > 0 && dot < p.length - 1) {
          const d = outer + p.slice(0, dot + 1) + 'module.' + p.slice(dot + 1);
          if (!out.includes(d)) out.push(d);
        }
      }
    }
  }
  return out;
}

/** Detect the checkpoint source from its (flattened, dotted) key names. Unknown layouts are 'plain'. */
export function detectSource(keys: readonly string[]): SourceDetection {
  for (const rule of SOURCE_RULES) {
    for (const prefix of candidatePrefixes(rule)) {
      if (keys.some((k) => k.startsWith(prefix) && rule.signature.test(k.slice(prefix.length)))) {
        return { source: rule.source, prefix };
      }
    }
  }
  // A plain state dict in a wrapper: strip the wrapper when every key has it.
  for (const w of OUTER_WRAPPERS.slice(1).concat(['model.', 'model.module.'])) {
    if (keys.length > 0 && keys.every((k) => k.startsWith(w))) return { source: 'plain', prefix: w };
  }
  return { source: 'plain', prefix: '' };
}

function applyRenames(key: string, renames: readonly RenameRule[], blockIndex: (stage: number, layer: number) => number): string | undefined {
  for (const r of renames) {
    const m = r.from.exec(key);
    if (!m) continue;
    let out = r.to.replace(/\$(\d+)/g, (_, i: string) => m[Number(i)] ?? '');
    if (out.includes('{block}')) {
      const g = m.groups ?? {};
      out = out.replace('{block}', String(blockIndex(Number(g['stage']), Number(g['layer']))));
    }
    return out;
  }
  return undefined;
}

/**
 * Rename a flattened checkpoint to official names for `detection` (from {@link detectSource}).
 * Keys outside the detected prefix (optimizer state, detector FPN and heads, EMA copies) are
 * returned in `ignored`. Keys under the prefix that no rename matches keep their name.
 */
export function mapKeys<T extends NamedTensor>(
  tensors: ReadonlyMap<string, T>,
  detection: SourceDetection,
): { tensors: Map<string, T>; ignored: string[]; renamed: [string, string][] } {
  const rule = SOURCE_RULES.find((r) => r.source === detection.source);
  const { prefix } = detection;
  // Layers per stage, for HF's stage-local numbering: block = Σ_{s' < s} depth(s') + layer.
  const depth = new Map<number, number>();
  for (const k of tensors.keys()) {
    const m = /encoder\.stages\.(\d+)\.layers\.(\d+)\./.exec(k.startsWith(prefix) ? k.slice(prefix.length) : k);
    if (m) depth.set(Number(m[1]), Math.max(depth.get(Number(m[1])) ?? 0, Number(m[2]) + 1));
  }
  const blockIndex = (stage: number, layer: number): number => {
    let base = 0;
    for (let s = 0; s < stage; s++) base += depth.get(s) ?? 0;
    return base + layer;
  };
  const out = new Map<string, T>();
  const ignored: string[] = [];
  const renamed: [string, string][] = [];
  for (const [key, t] of tensors) {
    let name: string | undefined;
    if (key.startsWith(prefix)) {
      const rest = key.slice(prefix.length);
      name = (rule && applyRenames(rest, rule.renames, blockIndex)) ?? rest;
    } else if (rule?.outside) {
      name = applyRenames(key, rule.outside, blockIndex);
    }
    if (name === undefined) { ignored.push(key); continue; }
    if (out.has(name)) throw new Error(`mapKeys(${detection.source}): keys map to the same name '${name}' (second one: '${key}')`);
    out.set(name, t);
    if (name !== key) renamed.push([key, name]);
  }
  return { tensors: out, ignored, renamed };
}

export interface StateDictMatch {
  loaded: string[];
  missing: string[];
  unexpected: string[];
  mismatched: { name: string; expected: number[]; got: number[] }[];
}

/** Compare a model's expected parameters (name → shape) with loaded tensors, like torch's load_state_dict(strict=False). */
export function matchStateDict(expected: ReadonlyMap<string, readonly number[]>, got: ReadonlyMap<string, NamedTensor>): StateDictMatch {
  const loaded: string[] = [];
  const missing: string[] = [];
  const mismatched: StateDictMatch['mismatched'] = [];
  for (const [name, shape] of expected) {
    const t = got.get(name);
    if (!t) { missing.push(name); continue; }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      mismatched.push({ name, expected: [...shape], got: [...t.shape] });
    } else {
      loaded.push(name);
    }
  }
  const unexpected = [...got.keys()].filter((k) => !expected.has(k));
  return { loaded, missing, unexpected, mismatched };
}

/** Human-readable load report (what a user reads after `anyres convert` or a fine-tune start). */
export function formatLoadReport(match: StateDictMatch, opts: { detection?: SourceDetection; ignored?: readonly string[]; maxList?: number } = {}): string {
  const max = opts.maxList ?? 10;
  const list = (xs: readonly string[]): string => xs.slice(0, max).map((x) => `    ${x}`).join('\n') + (xs.length > max ? `\n    ... and ${xs.length - max} more` : '');
  const lines: string[] = [];
  if (opts.detection) lines.push(`source: ${opts.detection.source}${opts.detection.prefix ? ` (prefix '${opts.detection.prefix}' stripped)` : ''}`);
  lines.push(`loaded ${match.loaded.length} tensors`);
  if (match.missing.length) lines.push(`missing ${match.missing.length} (left at their initial values):\n${list(match.missing)}`);
  if (match.mismatched.length) {
    lines.push(`shape mismatch ${match.mismatched.length} (not loaded):\n${list(match.mismatched.map((m) => `${m.name}: expected [${m.expected.join(', ')}], checkpoint has [${m.got.join(', ')}]`))}`);
  }
  if (match.unexpected.length) lines.push(`unexpected ${match.unexpected.length} (not used by the model):\n${list(match.unexpected)}`);
  if (opts.ignored?.length) lines.push(`ignored ${opts.ignored.length} keys outside the model prefix:\n${list(opts.ignored)}`);
  return lines.join('\n');
}
