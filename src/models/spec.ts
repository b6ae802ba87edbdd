/**
 * What a user writes to name a model (`--model`, a fixture's `model`, a checkpoint's stored spec):
 *
 *   'vit-tiny'                                                   a preset name
 *   '{"family":"vit","preset":"vit-tiny","overrides":{"depth":3,"num_classes":10}}'   inline JSON
 *   'model.json'                                                 a file holding such JSON
 *
 * each as `{family, preset?, config?, overrides?}`: a preset with overrides, or a full config
 * (what a checkpoint stores) with optional overrides; with both, the config is the model and the
 * preset only says where it came from (training checkpoints record both). Override keys are the config's own camelCase
 * names or the official constructors' snake_case ones (timm `num_classes`, `embed_dim`,
 * `img_size`; hiera.py `input_size`, `q_pool`, ...), so an official config line can be pasted as it
 * is. An unknown key is refused, naming the valid ones: a silently ignored override would build
 * another model than the one asked for.
 *
 * @example
 * const spec = parseModelArg('{"family":"hiera","preset":"hiera-tiny","overrides":{"embed_dim":24}}');
 * const model = modelFromSpec(spec);
 */
import * as fs from 'node:fs';

/** A model as users and checkpoints name it. */
export interface ModelSpecInput {
  family?: string;
  preset?: string;
  config?: unknown;
  overrides?: Record<string, unknown>;
}

const SPEC_KEYS = ['family', 'preset', 'config', 'overrides'] as const;

/** 'num_classes' → 'numClasses'. */
export function snakeToCamel(k: string): string {
  return k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Official argument names whose config field has another name here (timm ViT `img_size` vs Hiera `input_size`). */
const ALIASES: Record<string, readonly string[]> = {
  imgSize: ['imgSize', 'inputSize'],
  inputSize: ['inputSize', 'imgSize'],
  numClasses: ['numClasses'],
};

/**
 * Overrides in this version's config field names, checked against `reference` (the config they
 * apply to). A number given for a [H, W] field means a square ([n, n]), as timm's `img_size=224`.
 */
export function normalizeOverrides(reference: Record<string, unknown>, overrides: Record<string, unknown>, what = 'model spec'): Record<string, unknown> {
  const valid = Object.keys(reference);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(overrides)) {
    const camel = snakeToCamel(key);
    const field = (ALIASES[camel] ?? [camel]).find((f) => valid.includes(f));
    if (field === undefined) {
      const snake = valid.map((v) => v.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
      throw new Error(`${what}: unknown override '${key}'; valid keys are ${valid.join(', ')} (or snake_case: ${snake.join(', ')})`);
    }
    if (field in out) throw new Error(`${what}: override '${key}' sets '${field}' a second time`);
    const ref = reference[field];
    const isPair = Array.isArray(ref) && ref.length === 2 && ref.every((x) => typeof x === 'number');
    out[field] = isPair && typeof value === 'number' ? [value, value] : value;
  }
  return out;
}

/** Parses the JSON of a spec and checks its top-level keys. */
export function specFromJson(v: unknown, where: string): ModelSpecInput {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: a model spec must be a JSON object {family, preset?, config?, overrides?}`);
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !(SPEC_KEYS as readonly string[]).includes(k));
  if (unknown.length) throw new Error(`${where}: unknown key(s) ${unknown.join(', ')} in the model spec; valid: ${SPEC_KEYS.join(', ')}`);
  if (o.family !== undefined && typeof o.family !== 'string') throw new Error(`${where}: 'family' must be a string`);
  if (o.preset !== undefined && typeof o.preset !== 'string') throw new Error(`${where}: 'preset' must be a preset name (string)`);
  if (o.overrides !== undefined && (typeof o.overrides !== 'object' || o.overrides === null || Array.isArray(o.overrides))) {
    throw new Error(`${where}: 'overrides' must be an object of config fields`);
  }
  if (o.preset === undefined && o.config === undefined) throw new Error(`${where}: a model spec needs a 'preset' name or a full 'config'`);
  if (o.config !== undefined && typeof o.family !== 'string') throw new Error(`${where}: a spec with a full 'config' must name its 'family'`);
  return o as ModelSpecInput;
}

/**
 * `--model` as written on the command line: a preset name, inline JSON (starts with '{') or a
 * JSON file. `isPreset` tells preset names apart without importing the registry here.
 */
export function parseModelArg(arg: string, isPreset: (name: string) => boolean, presets: () => readonly string[]): ModelSpecInput {
  const s = arg.trim();
  if (isPreset(s)) return { preset: s };
  if (s.startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      throw new Error(`--model: inline JSON does not parse (${(e as Error).message}): ${s.slice(0, 80)}`);
    }
    return specFromJson(v, '--model');
  }
  if (fs.existsSync(s) && fs.statSync(s).isFile()) {
    let v: unknown;
    try {
      v = JSON.parse(fs.readFileSync(s, 'utf8'));
    } catch (e) {
      throw new Error(`--model ${s}: not valid JSON (${(e as Error).message})`);
    }
    return specFromJson(v, `--model ${s}`);
  }
  throw new Error(`--model '${s.slice(0, 60)}' is neither a preset (${presets().join(', ')}), inline JSON {family, preset?, config?, overrides?}, nor a JSON file`);
}
