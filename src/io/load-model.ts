/**
 * Load a checkpoint into one of our models: read the file (safetensors, or torch .pth through the
 * restricted unpickler: nothing executes), detect where it came from by its keys, strip the wrapper
 * prefix and rename to the official names (src/io/keymaps.ts), then compare with the parameters the
 * model declares (`paramInfos()`).
 *
 * What happens to a mismatch:
 * - A learned absolute position embedding stored at another grid is converted to the model's grid by
 *   the model's OWN rule (the one its forward uses at a new size): timm ViT resamples with
 *   `posEmbedResample` (antialiased bicubic), official Hiera and ViTDet with plain bicubic
 *   (`F.interpolate`, align_corners=False). Prefix rows (the class token's) pass through; a missing
 *   cls slot is added as zeros, a superfluous one dropped (detectron2 discards it anyway). Reported
 *   as 'reshaped'. Abs-win embeddings (window + global) do not depend on the input size, so they
 *   are never resampled: a different shape there means a different model.
 * - Any other shape mismatch is an error naming both shapes.
 * - Missing keys: an error with `strict`, otherwise filled from the model's own initialisers (seeded)
 *   and listed. Unexpected keys: an error with `strict`, otherwise listed.
 *
 * Sources (detectSource): official Hiera (`model_state.`), HF transformers Hiera (`hiera.` +
 * `classifier`), SAM 2 trunk (`[model.]image_encoder.trunk.`), timm ViT/DeiT (`model.` for DeiT
 * releases), detectron2 ViTDet (`[model.]backbone.net.`; the simple feature pyramid beside it as
 * `backbone.simfp_*`), ResFormer (`model.` preferred over `model_ema.`; `prefix` picks the EMA),
 * and plain official names (our own files).
 *
 * @example
 * const model = createModel('hiera-tiny');
 * const { weights, report } = loadWeightsFor(model, 'hiera_tiny_224.pth', { strict: true });
 * console.log(report);
 */
import * as fs from 'node:fs';
import { Rng } from '../util/rng.ts';
import { fmtShape } from '../graph/tensor.ts';
import { initParam, type Weights } from '../nn/params.ts';
import type { LearnedPosEmbed, Model } from '../models/types.ts';
import { familyOf } from '../models/registry.ts';
import { type ResampleMode, resample2d } from '../posembed/resample.ts';
import { type NamedTensor, readSafetensors } from './safetensors.ts';
import { readCheckpoint, sniffCheckpoint } from './checkpoint.ts';
import {
  type SourceDetection, type StateDictMatch, detectSource, formatLoadReport, mapKeys, matchStateDict,
} from './keymaps.ts';

export type { LearnedPosEmbed } from '../models/types.ts';

/**
 * The learned absolute embedding of a model, or null when it has none (ResFormer's GPE, abs-win
 * Hiera, HieraDet): the family's table says (`FamilyTable.learnedPosEmbed`, src/models/registry.ts).
 */
export function learnedPosEmbedOf(model: Model): LearnedPosEmbed | null {
  return familyOf(model).learnedPosEmbed(model.config);
}

const isSquare = (n: number): boolean => n >= 1 && Number.isInteger(Math.sqrt(n));

/**
 * The grid and prefix-row count of a stored `[1, T, C]` embedding. The grid is given (`sourceGrid`)
 * or taken as square, as timm and detectron2 do for every released checkpoint; prefix rows are the
 * model's own count when that leaves a square, else 0 or 1, whichever does.
 */
export function storedGridOf(t: NamedTensor, target: LearnedPosEmbed, sourceGrid?: readonly [number, number]): { prefix: number; grid: [number, number] } {
  if (t.shape.length !== 3 || t.shape[0] !== 1 || t.shape[2] !== target.channels) {
    throw new Error(`position embedding '${target.name}': checkpoint has [${t.shape.join(', ')}], expected [1, tokens, ${target.channels}]`);
  }
  const T = t.shape[1]!;
  if (sourceGrid) {
    const prefix = T - sourceGrid[0] * sourceGrid[1];
    if (prefix < 0 || prefix > 1) throw new Error(`position embedding '${target.name}': ${T} tokens do not hold a ${sourceGrid[0]}x${sourceGrid[1]} grid (plus 0 or 1 class token)`);
    return { prefix, grid: [sourceGrid[0], sourceGrid[1]] };
  }
  for (const prefix of [target.prefix, 0, 1]) {
    if (isSquare(T - prefix)) {
      const s = Math.sqrt(T - prefix);
      return { prefix, grid: [s, s] };
    }
  }
  throw new Error(`position embedding '${target.name}': ${T} tokens are not a square grid with 0 or 1 class token; give the stored grid (sourceGrid / --source-grid HxW)`);
}

/**
 * Converts a stored learned embedding to `target` (grid, prefix rows) with the target's resize rule.
 * At the same grid the data is returned unchanged (resampling to the same size is the identity for
 * every mode, so skipping it is exact).
 */
export function resampleLearnedPosEmbed(
  t: NamedTensor, target: LearnedPosEmbed, sourceGrid?: readonly [number, number], mode: ResampleMode = target.mode,
): { tensor: NamedTensor; from: [number, number]; how: string } {
  const { prefix, grid: [h, w] } = storedGridOf(t, target, sourceGrid);
  const C = target.channels;
  const [H, W] = target.grid;
  const notes: string[] = [];
  // [1, prefix + h*w, C] tokens -> [C, h, w] grid
  const g = new Float64Array(C * h * w);
  for (let k = 0; k < h * w; k++) for (let c = 0; c < C; c++) g[c * h * w + k] = t.data[(prefix + k) * C + c]!;
  const same = h === H && w === W;
  const r = same ? g : resample2d(g, C, h, w, H, W, mode);
  if (!same) notes.push(`${mode} ${h}x${w} -> ${H}x${W}`);
  const out = new Float32Array((target.prefix + H * W) * C);
  // Prefix rows: copied where both have them; a slot only the target has stays zero.
  const keep = Math.min(prefix, target.prefix);
  out.set(t.data.subarray(0, keep * C), 0);
  if (target.prefix > prefix) notes.push(`class-token slot added as zeros`);
  if (prefix > target.prefix) notes.push(`class-token slot dropped`);
  for (let k = 0; k < H * W; k++) for (let c = 0; c < C; c++) out[(target.prefix + k) * C + c] = r[c * H * W + k]!;
  return { tensor: { shape: [1, target.prefix + H * W, C], data: out }, from: [h, w], how: notes.join(', ') || 'unchanged' };
}

export interface LoadOptions {
  /** Missing or unexpected keys are errors (torch load_state_dict strict). Default false. */
  strict?: boolean;
  /** Seed of the initialisers that fill missing parameters (non-strict). Default 0. */
  seed?: number;
  /** The stored grid of a learned position embedding when it is not square. */
  sourceGrid?: readonly [number, number];
  /** Use this wrapper prefix instead of the detected one (e.g. 'model_ema.' for ResFormer's EMA weights). */
  prefix?: string;
}

export interface ReshapedTensor {
  name: string;
  from: number[];
  to: number[];
  how: string;
}

export interface LoadResult {
  /** Every parameter of the model (loaded, converted, or initialised when missing and not strict). */
  weights: Weights;
  detection: SourceDetection;
  match: StateDictMatch;
  /** Keys outside the model's prefix (optimizer state, heads of a detector, EMA copies). */
  ignored: string[];
  reshaped: ReshapedTensor[];
  /** safetensors `__metadata__` (empty for .pth). */
  metadata: Record<string, string>;
  /** The human-readable load report. */
  report: string;
}

/** Reads a checkpoint file (magic bytes decide the format) with its safetensors metadata. */
export function readCheckpointFile(path: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const bytes = fs.readFileSync(path);
  if (sniffCheckpoint(bytes) === 'safetensors') return readSafetensors(bytes, path);
  return { tensors: readCheckpoint(bytes, path), metadata: {} };
}

/** {@link loadWeightsFromTensors} on a checkpoint file (.safetensors or torch .pth/.pt/.bin). */
export function loadWeightsFor(model: Model, path: string, opts: LoadOptions = {}): LoadResult {
  const { tensors, metadata } = readCheckpointFile(path);
  return loadWeightsFromTensors(model, tensors, opts, metadata, path);
}

const fmt = (s: readonly number[]): string => fmtShape(s, ', ');

/** Detect, rename, convert position embeddings and match against the model (see the file comment). */
export function loadWeightsFromTensors(
  model: Model, tensors: ReadonlyMap<string, NamedTensor>, opts: LoadOptions = {}, metadata: Record<string, string> = {}, source = '<tensors>',
): LoadResult {
  const detected = detectSource([...tensors.keys()]);
  const detection: SourceDetection = opts.prefix !== undefined ? { source: detected.source, prefix: opts.prefix } : detected;
  const mapped = mapKeys(tensors, detection);
  const infos = model.paramInfos();
  const got = mapped.tensors;
  let ignored = mapped.ignored;
  // detectron2 keeps the simple feature pyramid BESIDE the ViT: `backbone.simfp_*` next to
  // `backbone.net.*` (SimpleFeaturePyramid.__init__ registers `simfp_{stage}`). Our ViTDet owns both.
  if (detection.source === 'detectron2-vitdet' && detection.prefix.endsWith('net.')) {
    const parent = detection.prefix.slice(0, -'net.'.length);
    ignored = ignored.filter((k) => {
      const name = k.slice(parent.length);
      if (!k.startsWith(parent) || !infos.has(name) || got.has(name)) return true;
      got.set(name, tensors.get(k)!);
      return false;
    });
  }

  // A Hiera checkpoint in the other naming (timm's head.fc / head.norm / pos_embed_win, or the
  // official head.projection / norm / pos_embed_window) loads into either: same tensors, other names.
  const family = familyOf(model);
  for (const name of infos.keys()) {
    if (got.has(name)) continue;
    for (const alt of family.alternateNames(model.config, name)) {
      if (got.has(alt) && !infos.has(alt)) { got.set(name, got.get(alt)!); got.delete(alt); break; }
    }
  }

  const reshaped: ReshapedTensor[] = [];
  const pe = learnedPosEmbedOf(model);
  if (pe) {
    const stored = got.get(pe.name);
    const want = infos.get(pe.name)!.shape;
    if (stored && fmt(stored.shape) !== fmt(want)) {
      const r = resampleLearnedPosEmbed(stored, pe, opts.sourceGrid);
      got.set(pe.name, r.tensor);
      reshaped.push({ name: pe.name, from: [...stored.shape], to: [...r.tensor.shape], how: r.how });
    }
  }

  const expected = new Map([...infos].map(([k, v]) => [k, v.shape] as const));
  const match = matchStateDict(expected, got);
  let report = formatLoadReport(match, { detection, ignored });
  if (reshaped.length) {
    report += `\nreshaped ${reshaped.length} position embedding(s) to the model's grid:\n` +
      reshaped.map((r) => `    ${r.name}: ${fmt(r.from)} -> ${fmt(r.to)} (${r.how})`).join('\n');
  }
  const what = `load ${source} into ${model.family}`;
  if (match.mismatched.length) {
    const lines = match.mismatched.map((m) => `  ${m.name}: model needs ${fmt(m.expected)}, checkpoint has ${fmt(m.got)}`);
    throw new Error(`${what}: shape mismatch for ${match.mismatched.length} tensor(s):\n${lines.join('\n')}${mismatchHint(model, got)}`);
  }
  if (opts.strict && (match.missing.length || match.unexpected.length)) {
    throw new Error(`${what} (strict): ${match.missing.length} missing and ${match.unexpected.length} unexpected key(s); ` +
      `pass strict: false (--no-strict) to fill missing ones from the initialisers and skip unexpected ones\n${report}`);
  }
  const weights: Weights = new Map();
  const rng = new Rng(opts.seed ?? 0);
  for (const [name, info] of infos) {
    const t = got.get(name);
    // Copy: the caller may modify the weights (training) without touching the parsed file.
    weights.set(name, t ? { data: Float32Array.from(t.data), shape: [...info.shape] } : { data: initParam(info, rng), shape: [...info.shape] });
  }
  return { weights, detection, match, ignored, reshaped, metadata, report };
}

/** A hint for the one mismatch that has a known fix: a learned embedding loaded into an abs-win model. */
function mismatchHint(model: Model, got: ReadonlyMap<string, NamedTensor>): string {
  const pos = got.get('pos_embed');
  const t = familyOf(model);
  if (t.usesAbsWin(model.config) && !t.learnedPosEmbed(model.config) && pos && pos.shape.length === 3) {
    return `\nthe checkpoint holds a learned absolute pos_embed ${fmt(pos.shape)} and this model uses absolute win (window + global embedding): ` +
      `convert it first with 'anyres convert --posembed-convert abswin' (absWinFromLearned)`;
  }
  return '';
}
