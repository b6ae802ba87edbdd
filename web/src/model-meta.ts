/**
 * The contract between `anyres export` (src/io/export.ts) and the page: the metadata_props an
 * exported classifier carries, so a single dropped .onnx file is self-describing.
 *
 * An exported model takes `image` `[batch, 3, H, W]` float32 RGB in [0, 1] (any per-channel
 * normalisation the model was trained with is part of the graph) and returns `logits` and
 * `probs` `[batch, K]`. The batch is dynamic unless `anyres.batch` names a fixed one; H x W are
 * static: one file per resolution. `anyres.weights_dtype` says whether the weights are float16.
 */
export const MODEL_FORMAT = 'anyres.onnx/1';

export const META = {
  format: 'anyres.format',
  /** Display name; files of one model at several resolutions share it (the page groups by it). */
  model: 'anyres.model',
  family: 'anyres.family',
  /** JSON of the model config (what the checkpoint stores). */
  config: 'anyres.config',
  /** JSON [H, W] of the input. */
  inputSize: 'anyres.input_size',
  /** JSON array of class names (index = class id). */
  classes: 'anyres.classes',
  /** The position-embedding strategy ('learned', 'abswin', 'resformer', ...). */
  posEmbed: 'anyres.pos_embed',
  /** JSON array of the training resolutions, when the checkpoint records them. */
  trainRes: 'anyres.train_res',
  /** JSON {mean, std} applied inside the graph, or 'none'. */
  normalization: 'anyres.normalization',
} as const;

export interface ModelMeta {
  model: string;
  family: string;
  inputSize: [number, number];
  classes: string[];
  posEmbed: string;
  trainRes: number[] | null;
}

/** Reads and checks the metadata of an exported model; errors say which key is wrong. */
export function parseModelMeta(md: Readonly<Record<string, string>>, source: string): ModelMeta {
  if (md[META.format] !== MODEL_FORMAT) {
    throw new Error(`${source}: not an anyres export (metadata ${META.format} is ${JSON.stringify(md[META.format] ?? null)}, expected '${MODEL_FORMAT}'); export it with 'anyres export'`);
  }
  const json = <T>(key: string): T => {
    const v = md[key];
    if (v === undefined) throw new Error(`${source}: metadata ${key} is missing`);
    try {
      return JSON.parse(v) as T;
    } catch {
      throw new Error(`${source}: metadata ${key} is not JSON: ${v.slice(0, 60)}`);
    }
  };
  const inputSize = json<[number, number]>(META.inputSize);
  const classes = json<string[]>(META.classes);
  if (!Array.isArray(inputSize) || inputSize.length !== 2 || !inputSize.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${source}: metadata ${META.inputSize} must be [H, W], got ${md[META.inputSize]}`);
  }
  if (!Array.isArray(classes) || classes.length === 0) throw new Error(`${source}: metadata ${META.classes} must be a non-empty array`);
  return {
    model: md[META.model] ?? source,
    family: md[META.family] ?? 'unknown',
    inputSize,
    classes: classes.map(String),
    posEmbed: md[META.posEmbed] ?? 'unknown',
    trainRes: md[META.trainRes] ? json<number[]>(META.trainRes) : null,
  };
}
