/**
 * `anyres train` and `anyres finetune`: argument parsing, early validation with clear messages,
 * data construction, SIGINT → save and exit. The loop itself is src/train/trainer.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { Runtime } from '../graph/runtime.ts';
import { type TrainOptions, type ValResult, train } from '../train/trainer.ts';
import { loadCheckpoint } from '../io/train-checkpoint.ts';
import { stateFromParams } from '../train/state.ts';
import { POSEMBED_CONVERSIONS, type PosEmbedConversion, convertForResolution } from '../train/finetune.ts';
import { checkpointConfigOf, createModel, modelForTraining, trainPresetNames } from '../models/registry.ts';
import { saveSafetensors } from '../io/safetensors.ts';
import { parseSize } from './convert.ts';
import { DATA_SPECS, clipFramesOf, dataSplits } from '../data/spec.ts';


function ints(flag: string, v: string): number[] {
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (!xs.length || xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new Error(`${flag} '${v}' must be positive integers separated by commas`);
  return xs;
}

export function num(flag: string, v: string | undefined, min = -Infinity): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < min) throw new Error(`${flag} '${v}' must be a number >= ${min}`);
  return x;
}

interface CommonFlags {
  epochs: string;
  batch: string;
  lr: string;
  wd?: string;
  warmup?: string;
  minLr?: string;
  labelSmoothing?: string;
  mixup?: string;
  cutmix?: string;
  dropPath?: string;
  clipGrad?: string;
  seed: string;
  threads?: string;
  out: string;
  valRes?: string;
  ckptEvery?: string;
  trainSize?: string;
  valSize?: string;
  alpha?: string;
  layerDecay?: string;
  ema?: string;
  emaWarmup: boolean;
}

/** `--ema <decay>` (+ `--no-ema-warmup`) -> the trainer's EMA options (timm ModelEmaV3). */
function emaOption(f: Pick<CommonFlags, 'ema' | 'emaWarmup'>): TrainOptions['ema'] {
  if (f.ema === undefined) return undefined;
  const decay = Number(f.ema);
  if (!(decay >= 0 && decay < 1)) throw new Error(`--ema '${f.ema}' must be a decay in [0, 1), e.g. 0.999 (timm's default is 0.9998)`);
  return { decay, warmup: f.emaWarmup };
}

function commonOptions(f: CommonFlags, resolutions: number[]): TrainOptions {
  const epochs = num('--epochs', f.epochs, 1)!;
  const batch = num('--batch', f.batch, 1)!;
  if (!Number.isInteger(epochs) || !Number.isInteger(batch)) throw new Error(`--epochs and --batch must be integers, got ${f.epochs} and ${f.batch}`);
  const mixupAlpha = num('--mixup', f.mixup, 0);
  const cutmixAlpha = num('--cutmix', f.cutmix, 0);
  return {
    epochs,
    batch,
    resolutions,
    lr: num('--lr', f.lr, 0)!,
    weightDecay: num('--wd', f.wd, 0),
    warmupSteps: num('--warmup', f.warmup, 0),
    minLr: num('--min-lr', f.minLr, 0),
    labelSmoothing: num('--label-smoothing', f.labelSmoothing, 0),
    mixup: mixupAlpha || cutmixAlpha ? { mixupAlpha, cutmixAlpha } : undefined,
    dropPath: num('--drop-path', f.dropPath, 0),
    clipGradNorm: num('--clip-grad', f.clipGrad, 0),
    seed: num('--seed', f.seed)!,
    valResolutions: f.valRes ? ints('--val-res', f.valRes) : undefined,
    checkpointEverySteps: num('--ckpt-every', f.ckptEvery, 0),
    multiresAlpha: num('--alpha', f.alpha, 0),
    layerDecay: num('--layer-decay', f.layerDecay, 0),
    ema: emaOption(f),
  };
}

function addCommon(cmd: Command): Command {
  return cmd
    .option('--epochs <n>', 'epochs', '10')
    .option('--batch <n>', 'batch size', '32')
    .option('--lr <x>', 'peak learning rate (AdamW)', '1e-3')
    .option('--wd <x>', 'weight decay (decoupled; not on biases, norms, pos embeds, tokens)', '0.05')
    .option('--warmup <steps>', 'linear warmup steps before cosine decay')
    .option('--min-lr <x>', 'final learning rate of the cosine')
    .option('--label-smoothing <x>', 'label smoothing')
    .option('--mixup <alpha>', 'mixup Beta alpha (0 = off)')
    .option('--cutmix <alpha>', 'cutmix Beta alpha (0 = off)')
    .option('--drop-path <rate>', 'stochastic depth rate')
    .option('--clip-grad <norm>', 'clip the global gradient norm')
    .option('--seed <n>', 'seed', '0')
    .option('--threads <n>', 'ONNX Runtime threads (fix it for bit-for-bit reproducibility)')
    .option('--val-res <list>', 'validation resolutions (default: the training ones)')
    .option('--ckpt-every <steps>', 'also checkpoint every N steps')
    .option('--train-size <n>', 'synthetic training set size')
    .option('--val-size <n>', 'synthetic validation set size')
    .option('--layer-decay <x>', 'layer-wise lr decay (e.g. 0.65 for fine-tuning)')
    .option('--ema <decay>', 'keep an EMA of the weights (timm ModelEmaV3), validated beside them and saved in the checkpoint (as ema.<name>)')
    .option('--no-ema-warmup', "EMA: use the decay from the second update on instead of timm's warm-up 1-(1+s)^(-2/3)")
    .requiredOption('--out <dir>', 'run directory (checkpoints, log.jsonl)');
}

/** SIGINT → abort: the trainer saves a checkpoint at the next step boundary and returns. */
export function sigintSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onInt = (): void => {
    if (ac.signal.aborted) process.exit(130); // second Ctrl-C: leave now
    process.stderr.write('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit without saving)\n');
    ac.abort();
  };
  process.on('SIGINT', onInt);
  return { signal: ac.signal, dispose: () => process.off('SIGINT', onInt) };
}

function report(out: string, r: Awaited<ReturnType<typeof train>>): void {
  const fmt = (xs: ValResult[]): string => xs.map((v) => `${v.res}px ${(100 * v.accuracy).toFixed(2)}%`).join(', ');
  const val = fmt(r.val);
  const ema = r.valEma ? `; EMA val ${fmt(r.valEma)}` : '';
  console.log(`${r.interrupted ? 'stopped' : 'done'} after ${r.steps} steps; last loss ${r.lastLoss.toFixed(4)}${val ? `; val ${val}` : ''}${ema}; checkpoint ${r.checkpoint || path.join(out, 'last.json')}`);
}

export function registerTrainCommands(program: Command): void {
  addCommon(
    program
      .command('train')
      .description('train a model (single resolution, or ResFormer multi-resolution with --multires)')
      .requiredOption('--model <preset>', 'model preset (see `anyres models`)')
      .option('--data <spec>', `${DATA_SPECS} (src/data/spec.ts; synthetic-clips for video models)`, 'synthetic')
      .option('--res <list>', 'training resolution(s), e.g. 64 or 128,96,64', '')
      .option('--multires', 'train all --res resolutions jointly with the scale-consistency loss')
      .option('--alpha <x>', 'scale-consistency loss weight (multi-resolution)')
      .option('--posembed <kind>', 'position embedding: learned|sincos|resformer (ViT) or absolute|abswin (Hiera)')
      .option('--resume', 'continue from the run directory\'s last checkpoint'),
  ).action(async (f: CommonFlags & { model: string; data: string; res: string; multires?: boolean; posembed?: string; resume?: boolean }) => {
    // Validate everything before the first compile: preset, resolutions, data.
    if (!trainPresetNames().includes(f.model)) throw new Error(`unknown model preset '${f.model}'; valid presets: ${trainPresetNames().join(', ')}`);
    const seed = num('--seed', f.seed)!;
    const data = dataSplits(f.data, { seed, trainSize: num('--train-size', f.trainSize, 1), valSize: num('--val-size', f.valSize, 1) });
    const frames = data.train.frames;
    const probe = modelForTraining(f.model, { numClasses: data.train.numClasses, posEmbed: f.posembed, ...(frames !== undefined ? { frames } : {}) });
    const resolutions = f.res ? ints('--res', f.res) : [probe.defaultRes[0]];
    if (resolutions.length > 1 && !f.multires) throw new Error(`--res ${f.res} gives ${resolutions.length} resolutions; add --multires to train them jointly, or give one`);
    for (const r of resolutions) probe.checkInputSize(r, r);
    const opts = commonOptions(f, resolutions);
    for (const r of opts.valResolutions ?? []) probe.checkInputSize(r, r);
    const model = modelForTraining(f.model, { numClasses: data.train.numClasses, posEmbed: f.posembed, dropPathRate: opts.dropPath, res: Math.max(...resolutions), ...(frames !== undefined ? { frames } : {}) });
    const rt = new Runtime(f.threads ? { threads: num('--threads', f.threads, 1) } : {});
    const sig = sigintSignal();
    try {
      const r = await train(
        { rt, model, modelSpec: { family: model.family, config: model.config, preset: f.model }, train: data.train, val: data.val, out: f.out, resume: !!f.resume, signal: sig.signal, runInfo: { data: data.spec } },
        opts,
      );
      report(f.out, r);
    } finally {
      sig.dispose();
    }
  });

  addCommon(
    program
      .command('finetune')
      .description('fine-tune a checkpoint at a new resolution, converting its position embedding')
      .requiredOption('--from <ckpt>', 'run directory or last.json of a training run')
      .requiredOption('--res <n>', 'new resolution')
      .option('--posembed-convert <strategy>', `position-embedding conversion: ${POSEMBED_CONVERSIONS.join('|')} (the same code as 'anyres convert')`, 'interpolate')
      .option('--target <preset>', 'tile: the ViTDet preset the ViT becomes')
      .option('--global-size <size>', 'abswin: grid of the global embedding (N or HxW; default the config, 7x7 for the Hiera presets)')
      .option('--iterations <n>', 'abswin: least-squares refinements of the split (default 200)')
      .option('--data <spec>', 'data spec (default: the one the checkpoint was trained on)'),
  ).action(async (f: CommonFlags & { from: string; res: string; posembedConvert: string; target?: string; globalSize?: string; iterations?: string; data?: string }) => {
    const ck = loadCheckpoint(f.from);
    const [res] = ints('--res', f.res);
    const strategy = f.posembedConvert as PosEmbedConversion;
    if (!POSEMBED_CONVERSIONS.includes(strategy)) throw new Error(`finetune: --posembed-convert '${f.posembedConvert}' is not one of ${POSEMBED_CONVERSIONS.join(', ')}`);
    const conv = convertForResolution(ck.info.model.family, ck.info.model.config, ck.state.params, res!, strategy, {
      ...(f.target !== undefined ? { target: f.target } : {}),
      ...(f.globalSize !== undefined ? { globalSize: parseSize(f.globalSize, '--global-size') } : {}),
      ...(f.iterations !== undefined ? { iterations: num('--iterations', f.iterations, 1)! } : {}),
      ...(clipFramesOf(f.data ?? String(ck.info.run['data'] ?? '')) !== undefined ? { frames: clipFramesOf(f.data ?? String(ck.info.run['data']))! } : {}),
    });
    for (const n of conv.notes) console.log(`finetune: ${n}`);
    if (!conv.classifier) {
      // ViT -> ViTDet: a detection backbone has no classification head to fine-tune here.
      fs.mkdirSync(f.out, { recursive: true });
      const file = path.join(f.out, `${conv.model.family}.safetensors`);
      const infos = conv.model.paramInfos();
      saveSafetensors(file, new Map([...conv.params].map(([k, v]) => [k, { shape: [...infos.get(k)!.shape], data: v }])), {
        'anyres.config': JSON.stringify(checkpointConfigOf(conv.model)),
        'anyres.converted_from': path.resolve(f.from),
        'anyres.posembed_convert': strategy,
      });
      console.log(`finetune: ${conv.model.family} is a detection backbone without a classification head, so there is nothing to fine-tune on '${f.data ?? 'the classification data'}'; wrote the converted backbone to ${file} (${conv.params.size} tensors, anyres.config metadata) for a detection head`);
      return;
    }
    const dropPath = num('--drop-path', f.dropPath, 0);
    // The converted model keeps the source's drop-path rate; the run's --drop-path decides it here.
    const model = dropPath !== undefined ? createModel({ family: conv.model.family, config: { ...(conv.model.config as object), dropPathRate: dropPath } }) : conv.model;
    const params = conv.params;
    const seed = num('--seed', f.seed)!;
    const spec = f.data ?? (typeof ck.info.run['data'] === 'string' ? (ck.info.run['data'] as string) : 'synthetic');
    const data = dataSplits(spec, { seed, trainSize: num('--train-size', f.trainSize, 1), valSize: num('--val-size', f.valSize, 1) });
    const opts = commonOptions(f, [res!]);
    const rt = new Runtime(f.threads ? { threads: num('--threads', f.threads, 1) } : {});
    const sig = sigintSignal();
    try {
      const r = await train(
        {
          rt,
          model,
          modelSpec: { family: model.family, config: model.config, preset: ck.info.model.preset },
          train: data.train,
          val: data.val,
          out: f.out,
          init: stateFromParams(params),
          signal: sig.signal,
          runInfo: { data: spec, finetunedFrom: path.resolve(f.from), posembedConvert: strategy },
        },
        opts,
      );
      report(f.out, r);
    } finally {
      sig.dispose();
    }
  });
}
