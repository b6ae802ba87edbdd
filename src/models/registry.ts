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
import type { Model } from './types.ts';
import { countParams } from '../nn/params.ts';
import { type VitConfig, createVit, vitPresets } from './vit.ts';
import { type HieraConfig, createHiera, hieraPresets, hieraSizeStep } from './hiera.ts';
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

interface FamilyTable<C> {
  /** The families whose models this table builds (ViT's table builds both 'vit' and 'resformer'). */
  families: readonly ModelFamily[];
  presets: Record<string, C>;
  create(cfg: C): Model<C>;
  /** Whether the family ends in a classification head (its count at 1000 classes is published). */
  classifier: boolean;
  withClasses(cfg: C, numClasses: number): C;
  /** Which input sizes work, in words (mirrors the family's checkInputSize). */
  sizeRule(cfg: C): string;
}

const vitTable: FamilyTable<VitConfig> = {
  families: ['vit', 'resformer'],
  presets: vitPresets,
  create: (c) => createVit(c),
  classifier: true,
  withClasses: (c, n) => ({ ...c, numClasses: n }),
  sizeRule: (c) => `H and W multiples of ${c.patchSize} (the patch size)`,
};

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
};

const vitdetTable: FamilyTable<VitDetConfig> = {
  families: ['vitdet'],
  presets: vitdetPresets,
  create: (c) => createVitDet(c),
  classifier: false,
  withClasses: (c) => c,
  sizeRule: (c) => `H and W multiples of ${c.patchSize} and at least ${2 * c.patchSize}`,
};

const hieradetTable: FamilyTable<HieraDetConfig> = {
  families: ['hieradet'],
  presets: hieradetPresets,
  create: (c) => createHieraDet(c),
  classifier: false,
  withClasses: (c) => c,
  sizeRule: (c) => `H and W multiples of ${HieraDet.patchStride} and at least ${HieraDet.patchStride * 2 ** c.qPool}`,
};

// The tables are heterogeneous; each entry is used only with configs of its own table.
type AnyTable = FamilyTable<VitConfig> | FamilyTable<HieraConfig> | FamilyTable<HieraVideoConfig> | FamilyTable<VitDetConfig> | FamilyTable<HieraDetConfig>;
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
