/**
 * `anyres convert` and `anyres similarity`: flags in, library calls, lines out. The rules live in
 * the library: src/train/convert-checkpoint.ts (`convertCheckpoint`, whose file comment documents
 * the conversions), src/io/convert-format.ts (`convertFormat`), src/io/convert-weights.ts,
 * src/models/position-embedding.ts (`positionEmbeddingAt`), src/posembed/similarity.ts
 * (`similarityOf`) and src/eval/similarity-figures.ts.
 */
import * as path from 'node:path';
import type { Command } from 'commander';
import { loadModelCheckpoint, readAnyCheckpoint } from '../io/read-checkpoint.ts';
import { type Layout, LAYOUTS, isLayout } from '../io/layouts.ts';
import { convertFormat, outputFormatOf } from '../io/convert-format.ts';
import { POSEMBED_CONVERTS, type PosEmbedConvert } from '../io/convert-weights.ts';
import { convertCheckpoint } from '../train/convert-checkpoint.ts';
import { attentionWindowOf, positionEmbeddingAt } from '../models/position-embedding.ts';
import { similarityOf } from '../posembed/similarity.ts';
import { writeSimilarityFigures } from '../eval/similarity-figures.ts';

/** '448' or '448x320' -> [H, W]. */
export function parseSize(v: string, what = '--res'): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  if (!m) throw new Error(`${what}: expected N or HxW (e.g. 448 or 448x320), got '${v}'`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

export function registerConvertCommand(program: Command): void {
  program
    .command('convert')
    .description('convert a checkpoint (torch .pth zip or legacy, numpy .pkl, .safetensors; official Hiera, HF Hiera, SAM 2, timm, detectron2, ResFormer, anyres runs): to a new resolution / position-embedding scheme, to another layout (official, timm, hf, sam2, detectron2), or only to another file format')
    .requiredOption('--from <file>', 'checkpoint to read: a file (.pth/.pt/.bin/.pkl via a restricted unpickler, or .safetensors), a training run directory or its last.json')
    .requiredOption('--to <file>', 'output: .safetensors, or .pth/.pt/.bin for a torch.save zip that torch.load(weights_only=True) reads (written atomically)')
    .option('--model <preset|json|file>', "the model the checkpoint holds: a preset (see 'anyres models'), inline JSON or a JSON file {family, preset?, config?, overrides?}; default: what the checkpoint records. Without a model (and no --res / --posembed-convert / --layout) only the format is converted")
    .option('--num-classes <n>', 'classes of the checkpoint head, when they differ from the preset', (v) => Number(v))
    .option('--res <size>', 'new default resolution: N or HxW')
    .option('--posembed-convert <how>', 'interpolate | abswin | tile (see below); default interpolate')
    .option('--layout <layout>', `write the key names and nesting of a source's code: ${LAYOUTS.join(' | ')} (src/io/layouts.ts)`)
    .option('--run', "write --to as a training run directory (last.json + ckpt-0.safetensors) that 'anyres finetune --from' starts from")
    .option('--format-only', 'convert the file format only: every tensor, names and dtypes kept (any state dict; no model needed)')
    .option('--float32', 'with a format-only conversion: cast every tensor to float32')
    .option('--global-size <size>', 'abswin: grid of the global embedding (default: the config, 7x7 for the Hiera presets)')
    .option('--iterations <n>', 'abswin: least-squares refinements of the split (default 200)', (v) => Number(v))
    .option('--target <preset>', 'tile: the ViTDet preset to build')
    .option('--source-grid <size>', 'stored grid of a non-square learned pos_embed (HxW)')
    .option('--no-strict', 'fill missing source keys from the initialisers and skip unexpected ones')
    .addHelpText('after', `
Position-embedding conversions:
  interpolate  resample a learned absolute embedding to the --res grid by the model's own rule
               (timm ViT: antialiased bicubic; Hiera, ViTDet: bicubic). The result at --res equals the
               original model fed --res images. Abs-win and ResFormer embeddings are copied unchanged.
  abswin       original Hiera (learned pos_embed [1, h*w, C]) -> abs-win Hiera (Bolya et al. 2024):
               window embedding (one mask unit) + global embedding (--global-size) fitted by least squares
               so that interpolate(global) + tile(window) reproduces the learned one. Assumes the learned
               embedding is a smooth field plus a pattern periodic in the mask unit (the paper's observation
               for window attention); the per-channel mean goes to the global part. Exact when the embedding
               is exactly tiled + global; otherwise the relative residual is printed.
  tile         plain ViT -> ViTDet (--target): the ViT's learned grid becomes the window embedding, tiled
               over the feature map; rel-pos tables and the pyramid are initialised (listed in the report).`)
    .action((o: { from: string; to: string; model?: string; numClasses?: number; res?: string; posembedConvert?: string; layout?: string; run?: boolean; formatOnly?: boolean; float32?: boolean; globalSize?: string; iterations?: number; target?: string; sourceGrid?: string; strict: boolean }) => {
      if (o.layout !== undefined && !isLayout(o.layout)) throw new Error(`convert: --layout must be one of ${LAYOUTS.join(', ')}, got '${o.layout}'`);
      const modelWork = o.model !== undefined || o.res !== undefined || o.posembedConvert !== undefined || o.layout !== undefined || o.target !== undefined || o.run === true;
      if (o.formatOnly && modelWork) throw new Error('convert: --format-only converts the file as it is; it cannot be combined with --model, --res, --posembed-convert, --target or --layout');
      if (o.float32 && !o.formatOnly && modelWork) throw new Error('convert: --float32 applies to format-only conversions (model conversions always write float32)');
      if (o.formatOnly || (!modelWork && !readAnyCheckpoint(o.from).spec)) {
        const r = convertFormat(o.from, o.to, { float32: o.float32 ?? false });
        const d = Object.entries(r.dtypes).map(([k, n]) => `${n} ${k}`).join(', ');
        console.log(`convert: format only (${r.source} -> ${outputFormatOf(o.to)}): ${r.tensors} tensors (${d || 'none'}), names ${o.float32 ? 'kept, cast to float32' : 'and dtypes kept'}; wrote ${o.to}`);
        return;
      }
      const how = o.posembedConvert ?? 'interpolate';
      if (!POSEMBED_CONVERTS.includes(how as PosEmbedConvert)) {
        throw new Error(`convert: --posembed-convert must be one of ${POSEMBED_CONVERTS.join(', ')}, got '${how}'`);
      }
      const r = convertCheckpoint({
        from: o.from, to: o.to, strict: o.strict, posembedConvert: how as PosEmbedConvert,
        ...(o.model !== undefined ? { model: o.model } : {}),
        ...(o.layout !== undefined ? { layout: o.layout as Layout } : {}),
        ...(o.run ? { run: true } : {}),
        ...(o.numClasses !== undefined ? { numClasses: o.numClasses } : {}),
        ...(o.res !== undefined ? { res: parseSize(o.res) } : {}),
        ...(o.globalSize !== undefined ? { globalSize: parseSize(o.globalSize, '--global-size') } : {}),
        ...(o.iterations !== undefined ? { iterations: o.iterations } : {}),
        ...(o.target !== undefined ? { target: o.target } : {}),
        ...(o.sourceGrid !== undefined ? { sourceGrid: parseSize(o.sourceGrid, '--source-grid') } : {}),
      });
      console.log(`convert: loaded ${o.from} as ${r.source.family}\n${r.report}`);
      for (const n of r.notes) console.log(n);
      console.log(`convert: wrote ${o.to} (${r.model.family}, default ${r.model.defaultRes.join('x')}, ${r.weights.size} tensors, ${r.wrote})`);
    });
}

export function registerSimilarityCommand(program: Command): void {
  program
    .command('similarity')
    .description("window similarity of a checkpoint's position embedding (Bolya et al. 2024, Sec. 3): printed, drawn as a heat map and a per-channel bar chart")
    .requiredOption('--checkpoint <file>', 'checkpoint (.safetensors with anyres.config, or any supported checkpoint with --model)')
    .option('--model <preset|json>', 'the model the checkpoint holds (default: its anyres.config metadata)')
    .option('--num-classes <n>', 'classes of the checkpoint head', (v) => Number(v))
    .option('--window <size>', "window to compare (N or HxW); default the model's first attention window (Hiera mask unit, ViTDet window)")
    .option('--channels <n>', 'channels drawn in the heat map', (v) => Number(v), 8)
    .option('--out <prefix>', 'output path prefix: <prefix>-heatmap.png, <prefix>-channels.{svg,png}', 'similarity')
    .option('--no-strict', 'fill missing keys from the initialisers')
    .action(async (o: { checkpoint: string; model?: string; numClasses?: number; window?: string; channels: number; out: string; strict: boolean }) => {
      const loaded = loadModelCheckpoint(o.checkpoint, {
        strict: o.strict, ...(o.model !== undefined ? { model: o.model } : {}), ...(o.numClasses !== undefined ? { overrides: { numClasses: o.numClasses } } : {}),
      });
      const model = loaded.model;
      const window = o.window !== undefined ? parseSize(o.window, '--window') : attentionWindowOf(model);
      if (!window) throw new Error(`similarity: ${model.family} has no attention window; pass --window N (e.g. --window 7 for a 14x14 grid)`);
      const grid = await positionEmbeddingAt(model, loaded.weights);
      const r = similarityOf(grid, window);
      console.log(`similarity: ${path.basename(o.checkpoint)} (${model.family}), position embedding [${grid.C}, ${grid.H}, ${grid.W}] at ${model.defaultRes.join('x')} px, ${window.join('x')} windows`);
      console.log(`  window similarity ${r.similarity.toFixed(4)} (1 = tiled per window, ~0 = no shared pattern)`);
      console.log(`  tiled energy share ${r.tiledEnergy.toFixed(4)}`);
      const order = r.perChannel.map((s, c) => [s, c] as const).sort((a, b) => b[0] - a[0]);
      console.log(`  most tiled channels: ${order.slice(0, 5).map(([s, c]) => `${c} (${s.toFixed(3)})`).join(', ')}`);
      for (const f of await writeSimilarityFigures(r, o.out, o.channels, path.basename(o.checkpoint))) console.log(`similarity: wrote ${f}`);
    });
}
