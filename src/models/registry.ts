/**
 * One registry over every model family: the preset tables of vit.ts (ViT / DeiT / ResFormer),
 * hiera-config.ts, vitdet.ts and hieradet.ts, their factories, and the facts the CLI prints.
 *
 * Dispatch is by table membership (a preset name is looked up in each family's table) or by the
 * `family` a checkpoint records, never by parsing a name. The config object is what a checkpoint
 * stores (`anyres.config` metadata: `{family, config}` or `{family, preset, overrides}`; training
 * checkpoints: `{model: {family, config}}`), so `modelFromCheckpointConfig` rebuilds exactly the
 * model that was saved.
 *
 * @example
 * const m = createModel('hiera-tiny');                           // by preset
 * const same = createModel({ family: m.family, config: m.config }); // by stored config
 * describePreset('vit-base').params;                               // 86_567_656
 */
import type { LearnedPosEmbed, Model } from './types.ts';
import { countParams } from '../nn/params.ts';
import { type VitConfig, createVit, vitPresets } from './vit.ts';
import { type HieraConfig, createHiera, hieraPresets, hieraSizeStep } from './hiera.ts';
import { patchGrid } from './hiera-config.ts';
import { hieraToOfficial, hieraToTimm } from './hiera-naming.ts';
import { type VitDetConfig, createVitDet, vitdetPresets } from './vitdet.ts';
import { type HieraDetConfig, HieraDet, createHieraDet, hieradetPresets } from './hieradet.ts';
import { type HieraVideoConfig, createHieraVideo, hieraVideoPresets } from './hiera-video.ts';
import { type ModelSpecInput, normalizeOverrides, parseModelArg, specFromJson } from './spec.ts';

export type ModelFamily = 'vit' | 'resformer' | 'hiera' | 'hiera-video' | 'vitdet' | 'hieradet';
export type AnyModelConfig = VitConfig | HieraConfig | HieraVideoConfig | VitDetConfig | HieraDetConfig;

/** A model as a checkpoint records it. */
export interface ModelSpec {
  family: string;
  config: unknown;
}

/** What `train` may change in a preset (src/cli/train.ts flags). */
export interface TrainOverrides {
  numClasses?: number;
  /** Square training resolution (the stored default size). */
  res?: number;
  dropPathRate?: number;
  /** A position-embedding scheme of the family (see `posEmbedChoices`). */
  posEmbed?: string;
  /** Frames per clip of the data (1 or undefined = images). */
  frames?: number;
}

/**
 * Everything the library knows about a model family, in one row. Every member is required, so a
 * new family (one model file plus one row in `TABLES`) does not compile until it says how it
 * changes resolution, where its learned embedding is, which window it attends in, and so on.
 * Consumers (src/io/load-model.ts, src/io/convert-weights.ts, src/posembed-level similarity in
 * src/io/position-embedding.ts, src/train/finetune.ts, the CLI) call these methods through
 * {@link familyOf} instead of switching on the family string.
 */
export interface FamilyTable<C> {
  /** The families whose models this table builds (ViT's table builds both 'vit' and 'resformer'). */
  readonly families: readonly ModelFamily[];
  readonly presets: Record<string, C>;
  create(cfg: C): Model<C>;
  /** Whether the family ends in a classification head (what `train` / `finetune` can train; else a detection backbone). */
  readonly classifier: boolean;
  withClasses(cfg: C, numClasses: number): C;
  /** Which input sizes work, in words (mirrors the family's checkInputSize). */
  sizeRule(cfg: C): string;
  /** The config with its stored default input size (where position embeddings live) set to [H, W]. */
  atResolution(cfg: C, res: readonly [number, number]): C;
  /** The learned absolute embedding `[1, prefix + h·w, C]` and its resize rule, or null (resolution-independent schemes). */
  learnedPosEmbed(cfg: C): LearnedPosEmbed | null;
  /** Whether the embedding is absolute win (window + global, Bolya et al. 2024): nothing to split by a conversion. */
  usesAbsWin(cfg: C): boolean;
  /** The (first) attention window in tokens, what window similarity compares against; null for global attention only. */
  attentionWindow(cfg: C): [number, number] | null;
  /** The patch-token grid at input H x W (the grid of `aux.pos_embed`, src/models/types.ts). */
  tokenGrid(cfg: C, H: number, W: number): [number, number];
  /** Other names the family's own checkpoints use for a parameter (official vs timm naming). */
  alternateNames(cfg: C, name: string): string[];
  /** The position-embedding schemes `--posembed` may pick (empty: not trainable by `train`). */
  readonly posEmbedChoices: readonly string[];
  /** The config `train` builds from a preset (throws naming what is wrong). */
  forTraining(cfg: C, o: TrainOverrides, name: string): C;
}

const noFrames = (name: string, o: TrainOverrides): void => {
  if (o.frames !== undefined && o.frames !== 1) {
    throw new Error(`model '${name}' takes images but the data has clips of ${o.frames} frames; use a video preset (${Object.keys(hieraVideoPresets).join(', ')})`);
  }
};
const checkChoice = (name: string, o: TrainOverrides, valid: readonly string[], what: string): void => {
  if (o.posEmbed !== undefined && !valid.includes(o.posEmbed)) throw new Error(`model '${name}': --posembed '${o.posEmbed}' is not one of ${valid.join(', ')} for ${what} presets`);
};
const notTrainable = (family: string) => (_c: unknown, _o: TrainOverrides, name: string): never => {
  throw new Error(`model '${name}' is a ${family} detection backbone without a classification head; train a classifier preset (${trainPresetNames().join(', ')}) or use 'anyres detect'`);
};
const square = (family: string, res: readonly [number, number]): number => {
  if (res[0] !== res[1]) throw new Error(`${family} stores a square default size; got ${res[0]}x${res[1]}`);
  return res[0];
};

const VIT_POSEMBEDS = ['learned', 'sincos', 'resformer'] as const;
const vitTable: FamilyTable<VitConfig> = {
  families: ['vit', 'resformer'],
  presets: vitPresets,
  create: (c) => createVit(c),
  classifier: true,
  withClasses: (c, n) => ({ ...c, numClasses: n }),
  sizeRule: (c) => `H and W multiples of ${c.patchSize} (the patch size)`,
  atResolution: (c, [H, W]) => ({ ...c, imgSize: [H, W] }),
  learnedPosEmbed: (c) => (c.posEmbed !== 'learned' ? null : {
    name: 'pos_embed', prefix: c.classToken ? 1 : 0, grid: [c.imgSize[0] / c.patchSize, c.imgSize[1] / c.patchSize], channels: c.embedDim, mode: c.posEmbedResample,
  }),
  usesAbsWin: () => false,
  attentionWindow: () => null,
  tokenGrid: (c, H, W) => [H / c.patchSize, W / c.patchSize],
  alternateNames: () => [],
  posEmbedChoices: VIT_POSEMBEDS,
  forTraining: (c, o, name) => {
    noFrames(name, o);
    checkChoice(name, o, VIT_POSEMBEDS, 'ViT');
    const out: VitConfig = { ...c, imgSize: [...c.imgSize] };
    if (o.posEmbed !== undefined) { out.posEmbed = o.posEmbed as VitConfig['posEmbed']; out.lpe = o.posEmbed === 'resformer'; }
    if (o.numClasses !== undefined) out.numClasses = o.numClasses;
    if (o.res !== undefined) out.imgSize = [o.res, o.res];
    if (o.dropPathRate !== undefined) out.dropPathRate = o.dropPathRate;
    return out;
  },
};

const HIERA_POSEMBEDS = ['absolute', 'abswin'] as const;
// Hiera learns `pos_embed` [1, h·w, C] (official) and resizes it with plain bicubic (or the config's rule).
const hieraLearned = (c: HieraConfig): LearnedPosEmbed | null => (c.posEmbed !== 'absolute' ? null : {
  name: 'pos_embed', prefix: 0, grid: patchGrid(c, c.inputSize[0], c.inputSize[1]), channels: c.embedDim, mode: c.absResample,
});
// The official Hiera and timm name the head and the window embedding differently (src/models/hiera-naming.ts).
const hieraAlternates = (_c: HieraConfig, name: string): string[] => [hieraToTimm(name), hieraToOfficial(name)].filter((n) => n !== name);
function hieraTraining<C extends HieraConfig>(c: C, o: TrainOverrides, name: string, what: string): C {
  checkChoice(name, o, HIERA_POSEMBEDS, what);
  const out: C = { ...c };
  if (o.posEmbed !== undefined) out.posEmbed = o.posEmbed as HieraConfig['posEmbed'];
  if (o.numClasses !== undefined) out.numClasses = o.numClasses;
  if (o.res !== undefined) out.inputSize = [o.res, o.res];
  // hiera.py: drop_path_rate, linear over the blocks (the same rule as the trainer's masks).
  if (o.dropPathRate !== undefined) out.dropPathRate = o.dropPathRate;
  return out;
}

const hieraTable: FamilyTable<HieraConfig> = {
  families: ['hiera'],
  presets: hieraPresets,
  create: (c) => createHiera(c),
  classifier: true,
  withClasses: (c, n) => ({ ...c, numClasses: n }),
  sizeRule: (c) => {
    const [sh, sw] = hieraSizeStep(c);
    return `H multiple of ${sh}, W multiple of ${sw} (token grid a multiple of the mask unit and the total unroll)`;
  },
  atResolution: (c, [H, W]) => ({ ...c, inputSize: [H, W] }),
  learnedPosEmbed: hieraLearned,
  usesAbsWin: (c) => c.posEmbed === 'abswin',
  attentionWindow: (c) => [c.maskUnitSize[0], c.maskUnitSize[1]],
  tokenGrid: (c, H, W) => patchGrid(c, H, W),
  alternateNames: hieraAlternates,
  posEmbedChoices: HIERA_POSEMBEDS,
  forTraining: (c, o, name) => { noFrames(name, o); return hieraTraining(c, o, name, 'Hiera'); },
};

const hieraVideoTable: FamilyTable<HieraVideoConfig> = {
  families: ['hiera-video'],
  presets: hieraVideoPresets,
  create: (c) => createHieraVideo(c),
  classifier: true,
  withClasses: (c, n) => ({ ...c, numClasses: n }),
  sizeRule: (c) => {
    const [sh, sw] = hieraSizeStep(c);
    return `clips of any frame count; H multiple of ${sh}, W multiple of ${sw}`;
  },
  atResolution: (c, [H, W]) => ({ ...c, inputSize: [H, W] }),
  // Separable (spatial + temporal) embedding: converted by src/train/finetune.ts's video rule, not the image loader.
  learnedPosEmbed: () => null,
  usesAbsWin: (c) => c.posEmbed === 'abswin',
  attentionWindow: (c) => [c.maskUnitSize[0], c.maskUnitSize[1]],
  tokenGrid: (c, H, W) => patchGrid(c, H, W),
  alternateNames: hieraAlternates,
  posEmbedChoices: HIERA_POSEMBEDS,
  forTraining: (c, o, name) => {
    const out = hieraTraining(c, o, name, 'video Hiera');
    // The temporal embedding is stored for the clips it is trained on.
    if (o.frames !== undefined) out.inputFrames = o.frames;
    return out;
  },
};

const vitdetTable: FamilyTable<VitDetConfig> = {
  families: ['vitdet'],
  presets: vitdetPresets,
  create: (c) => createVitDet(c),
  classifier: false,
  withClasses: (c) => c,
  sizeRule: (c) => `H and W multiples of ${c.patchSize} and at least ${2 * c.patchSize}`,
  atResolution: (c, res) => ({ ...c, imgSize: square('vitdet', res) }),
  // detectron2 get_abs_pos: the pretrained grid, F.interpolate(bicubic, align_corners=False) in both recipes.
  learnedPosEmbed: (c) => ({ name: 'pos_embed', prefix: c.pretrainUseClsToken ? 1 : 0, grid: [c.pretrainGrid, c.pretrainGrid], channels: c.embedDim, mode: 'bicubic' }),
  usesAbsWin: (c) => c.posEmbed === 'abswin',
  attentionWindow: (c) => [c.windowSize, c.windowSize],
  tokenGrid: (c, H, W) => [H / c.patchSize, W / c.patchSize],
  alternateNames: () => [],
  posEmbedChoices: [],
  forTraining: notTrainable('vitdet'),
};

const hieradetTable: FamilyTable<HieraDetConfig> = {
  families: ['hieradet'],
  presets: hieradetPresets,
  create: (c) => createHieraDet(c),
  classifier: false,
  withClasses: (c) => c,
  sizeRule: (c) => `H and W multiples of ${HieraDet.patchStride} and at least ${HieraDet.patchStride * 2 ** c.qPool}`,
  atResolution: (c, res) => ({ ...c, imgSize: square('hieradet', res) }),
  learnedPosEmbed: () => null,
  usesAbsWin: () => true,
  attentionWindow: (c) => [c.windowSpec[0]!, c.windowSpec[0]!],
  tokenGrid: (_c, H, W) => [H / HieraDet.patchStride, W / HieraDet.patchStride],
  alternateNames: () => [],
  posEmbedChoices: [],
  forTraining: notTrainable('hieradet'),
};

// The tables are heterogeneous; each entry is used only with configs of its own table.
type AnyTable = FamilyTable<VitConfig> | FamilyTable<HieraConfig> | FamilyTable<HieraVideoConfig> | FamilyTable<VitDetConfig> | FamilyTable<HieraDetConfig>;
/** One row per family: adding a family is its model file plus one row here. */
const TABLES: readonly AnyTable[] = [vitTable, hieraTable, hieraVideoTable, vitdetTable, hieradetTable];

/** Every family the registry knows. */
export const MODEL_FAMILIES: readonly ModelFamily[] = TABLES.flatMap((t) => t.families);

function tableOfPreset(name: string): AnyTable | undefined {
  return TABLES.find((t) => Object.prototype.hasOwnProperty.call(t.presets, name));
}

function tableOfFamily(family: string): AnyTable {
  const t = TABLES.find((x) => (x.families as readonly string[]).includes(family));
  if (!t) throw new Error(`registry: unknown model family '${family}' (known: ${MODEL_FAMILIES.join(', ')})`);
  return t;
}

/**
 * The table of a model's family, typed over an untyped config: the one place a family string is
 * looked up. Each method takes the model's own config.
 *
 * @example
 * const t = familyOf(model);
 * t.atResolution(model.config, [96, 96]); t.tokenGrid(model.config, 96, 96);
 */
export function familyOf(model: { family: string }): FamilyTable<unknown> {
  return tableOfFamily(model.family) as unknown as FamilyTable<unknown>;
}

/** A preset's table (for callers that hold a name, not a model), or undefined. */
export function familyOfPreset(name: string): FamilyTable<unknown> | undefined {
  return tableOfPreset(name) as unknown as FamilyTable<unknown> | undefined;
}

/** Every trainable (classifier) preset name. */
export function trainPresetNames(): string[] {
  return TABLES.filter((t) => t.classifier).flatMap((t) => Object.keys(t.presets));
}

/**
 * The model `train` builds from a preset with its overrides (classes, resolution, drop path,
 * position-embedding scheme, clip frames); the family's table checks and applies them.
 */
export function modelForTraining(name: string, o: TrainOverrides = {}): Model {
  const t = familyOfPreset(name);
  if (!t) throw new Error(`unknown model preset '${name}'; valid presets: ${trainPresetNames().join(', ')}`);
  return t.create(t.forTraining(structuredClone(t.presets[name]), o, name));
}

/** Every preset name, family by family (ViT/ResFormer, Hiera, video Hiera, ViTDet, HieraDet), in table order. */
export function presetNames(): string[] {
  return TABLES.flatMap((t) => Object.keys(t.presets));
}

/** A preset's config (a fresh copy, safe to modify). Throws naming the known presets. */
export function presetConfig(name: string): { family: ModelFamily; config: AnyModelConfig } {
  const t = tableOfPreset(name);
  if (!t) throw new Error(`registry: unknown model preset '${name}' (known: ${presetNames().join(', ')})`);
  const config = structuredClone(t.presets[name]!) as AnyModelConfig;
  return { family: (t.create as (c: AnyModelConfig) => Model)(config).family as ModelFamily, config };
}

/**
 * A model from a preset name or from a `{family, config}` (what a checkpoint stores).
 * `overrides` are merged over the preset's config (shallow, like the family factories).
 */
export function createModel(spec: string | ModelSpec, overrides: Record<string, unknown> = {}): Model {
  if (typeof spec === 'string') {
    const t = tableOfPreset(spec);
    if (!t) throw new Error(`createModel: unknown model preset '${spec}' (known: ${presetNames().join(', ')})`);
    const cfg = { ...structuredClone(t.presets[spec]!), ...structuredClone(overrides) };
    return (t.create as (c: unknown) => Model)(cfg);
  }
  const t = tableOfFamily(spec.family);
  const cfg = checkConfig(t, spec.family, spec.config);
  const model = (t.create as (c: unknown) => Model)({ ...cfg, ...structuredClone(overrides) });
  if (model.family !== spec.family) {
    throw new Error(`createModel: the config builds a '${model.family}' model but the spec says family '${spec.family}'`);
  }
  return model;
}

/**
 * A stored config must carry exactly the fields of its family's config (compared with the family's
 * first preset): a missing field would silently take some default, an unknown one means the file
 * was written for another family or version.
 */
function checkConfig(t: AnyTable, family: string, config: unknown): Record<string, unknown> {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Error(`registry: the config of a '${family}' model must be an object, got ${JSON.stringify(config)?.slice(0, 80)}`);
  }
  const ref = Object.values(t.presets)[0] as object;
  const want = Object.keys(ref);
  const have = Object.keys(config);
  const missing = want.filter((k) => !have.includes(k));
  const unknown = have.filter((k) => !want.includes(k));
  if (missing.length || unknown.length) {
    throw new Error(
      `registry: the stored '${family}' config does not match this version's ${family} config: ` +
        `${missing.length ? `missing [${missing.join(', ')}]` : ''}${missing.length && unknown.length ? '; ' : ''}${unknown.length ? `unknown [${unknown.join(', ')}]` : ''}`,
    );
  }
  return structuredClone(config) as Record<string, unknown>;
}

/**
 * Rebuilds a model from the JSON a checkpoint stores (a string or the parsed object). Accepted
 * layouts: `{family, config}`, `{family, preset, overrides?}` (the `anyres.config` metadata of
 * src/io/export.ts) and a training checkpoint's `{model: {family, config}}` (src/io/train-checkpoint.ts).
 */
export function modelFromCheckpointConfig(json: string | unknown): Model {
  let v: unknown = json;
  if (typeof json === 'string') {
    try {
      v = JSON.parse(json);
    } catch (e) {
      throw new Error(`modelFromCheckpointConfig: not valid JSON (${(e as Error).message}): ${json.slice(0, 80)}`);
    }
  }
  if (typeof v !== 'object' || v === null) throw new Error(`modelFromCheckpointConfig: expected an object, got ${JSON.stringify(v)?.slice(0, 80)}`);
  const o = v as Record<string, unknown>;
  if (typeof o.model === 'object' && o.model !== null && o.family === undefined) return modelFromCheckpointConfig(o.model);
  if (typeof o.family !== 'string') {
    throw new Error(`modelFromCheckpointConfig: no 'family' field; expected {family, config} or {family, preset, overrides} (got keys ${Object.keys(o).join(', ')})`);
  }
  if (o.config === undefined && typeof o.preset !== 'string') throw new Error(`modelFromCheckpointConfig: a '${o.family}' spec needs a 'config' object or a 'preset' name`);
  return modelFromSpec(specFromJson(o, 'modelFromCheckpointConfig'));
}

/**
 * The model a spec `{family?, preset?, config?, overrides?}` names (src/models/spec.ts): overrides
 * may use snake_case official names and are checked against the config they change.
 */
export function modelFromSpec(spec: ModelSpecInput): Model {
  let family: string;
  let base: Record<string, unknown>;
  if (spec.config === undefined && spec.preset !== undefined) {
    const p = presetConfig(spec.preset);
    if (spec.family !== undefined && spec.family !== p.family && !tableOfFamily(spec.family).families.includes(p.family)) {
      throw new Error(`model spec: preset '${spec.preset}' is a '${p.family}' model, the spec says family '${spec.family}'`);
    }
    family = p.family;
    base = p.config as unknown as Record<string, unknown>;
  } else {
    family = spec.family!;
    base = checkConfig(tableOfFamily(family), family, spec.config);
  }
  const overrides = normalizeOverrides(base, spec.overrides ?? {}, `model spec (${spec.preset ?? family})`);
  const model = createModel({ family, config: base }, overrides);
  if (spec.family !== undefined && model.family !== spec.family) {
    throw new Error(`model spec: the config builds a '${model.family}' model but the spec says family '${spec.family}'`);
  }
  return model;
}

/** `--model`: a preset name, inline JSON or a JSON file (see src/models/spec.ts), as a model. */
export function parseModelSpec(arg: string): { spec: ModelSpecInput; model: Model } {
  const spec = parseModelArg(arg, (n) => tableOfPreset(n) !== undefined, presetNames);
  return { spec, model: modelFromSpec(spec) };
}

/** The JSON object to store with a model's weights (inverse of {@link modelFromCheckpointConfig}). */
export function checkpointConfigOf(model: Model): { family: string; config: unknown } {
  return { family: model.family, config: structuredClone(model.config) };
}

export interface PresetDescription {
  name: string;
  family: ModelFamily;
  /** Parameters at the preset's own numClasses. */
  params: number;
  numClasses: number | null;
  /** Classifier families: parameters with a 1000-class head (the count papers publish). */
  params1000: number | null;
  defaultRes: [number, number];
  /** Which input sizes the model takes. */
  sizeRule: string;
}

const describeCache = new Map<string, PresetDescription>();

/** Family, parameter counts, default resolution and the size rule of a preset. */
export function describePreset(name: string): PresetDescription {
  const hit = describeCache.get(name);
  if (hit) return hit;
  const t = tableOfPreset(name);
  if (!t) throw new Error(`describePreset: unknown model preset '${name}' (known: ${presetNames().join(', ')})`);
  const cfg = t.presets[name]!;
  const create = t.create as (c: AnyModelConfig) => Model;
  const model = create(cfg);
  const params = countParams(model.paramInfos());
  const numClasses = t.classifier ? (cfg as VitConfig | HieraConfig).numClasses : null;
  let params1000: number | null = null;
  if (t.classifier) {
    params1000 = numClasses === 1000 ? params : countParams(create((t.withClasses as (c: AnyModelConfig, n: number) => AnyModelConfig)(cfg, 1000)).paramInfos());
  }
  const d: PresetDescription = {
    name,
    family: model.family as ModelFamily,
    params,
    numClasses,
    params1000,
    defaultRes: [model.defaultRes[0], model.defaultRes[1]],
    sizeRule: (t.sizeRule as (c: AnyModelConfig) => string)(cfg),
  };
  describeCache.set(name, d);
  return d;
}
