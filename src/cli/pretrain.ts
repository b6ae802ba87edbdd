/**
 * `anyres pretrain --model hiera-<preset> --data <spec> --res R --mask-ratio 0.6 --epochs N --out runs/NAME`:
 * Hiera MAE pretraining (src/train/mae.ts) with the guarantees of `anyres train`: progress on stderr,
 * JSON lines in out/log.jsonl (loss, lr, and the window similarity of the position embedding),
 * atomic checkpoints (out/last.json), `--resume`, Ctrl-C saves and stops at the next step.
 * At the end: out/encoder.safetensors (Hiera classifier names) and out/encoder/ (a classifier
 * checkpoint for `anyres finetune --from runs/NAME/encoder`).
 */
import type { Command } from 'commander';
import { Runtime } from '../graph/runtime.ts';
import { hieraPresets } from '../models/hiera-config.ts';
import { pretrainMae } from '../train/mae.ts';
import { sigintSignal } from './train.ts';
import { DATA_SPECS, dataSplits } from '../data/spec.ts';

interface PretrainFlags {
  model: string;
  data: string;
  res: string;
  maskRatio: string;
  epochs?: string;
  steps?: string;
  batch: string;
  lr: string;
  wd: string;
  warmup?: string;
  minLr?: string;
  seed: string;
  threads?: string;
  ckptEvery?: string;
  logEvery: string;
  trainSize?: string;
  out: string;
  resume?: boolean;
}

function num(flag: string, v: string | undefined, opts: { min?: number; int?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < (opts.min ?? -Infinity) || (opts.int && !Number.isInteger(x))) {
    throw new Error(`${flag} '${v}' must be ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}`);
  }
  return x;
}

export function registerPretrainCommand(program: Command): void {
  program
    .command('pretrain')
    .description('MAE-pretrain a Hiera encoder (hiera_mae.py: mask units, norm-pix loss); logs the pos-embed window similarity')
    .requiredOption('--model <preset>', `Hiera preset (${Object.keys(hieraPresets).join(', ')})`)
    .option('--data <spec>', `${DATA_SPECS} (labels are ignored)`, 'synthetic')
    .option('--res <n>', 'training resolution (square)', '64')
    .option('--mask-ratio <x>', 'fraction of mask units hidden per image', '0.6')
    .option('--epochs <n>', 'epochs (default 10 unless --steps is given)')
    .option('--steps <n>', 'stop after this many steps')
    .option('--batch <n>', 'batch size', '32')
    .option('--lr <x>', 'peak learning rate (AdamW, betas 0.9/0.95)', '1.5e-4')
    .option('--wd <x>', 'weight decay (not on biases, norms, pos embeds, mask token)', '0.05')
    .option('--warmup <steps>', 'linear warmup steps before cosine decay')
    .option('--min-lr <x>', 'final learning rate of the cosine')
    .option('--seed <n>', 'seed (data order, masks, init)', '0')
    .option('--threads <n>', 'ONNX Runtime threads (fix it for bit-for-bit reproducibility)')
    .option('--ckpt-every <steps>', 'also checkpoint every N steps')
    .option('--log-every <steps>', 'log loss and similarity every N steps', '10')
    .option('--train-size <n>', 'synthetic training set size')
    .option('--resume', 'continue from the last checkpoint in --out')
    .requiredOption('--out <dir>', 'run directory (checkpoints, log.jsonl, encoder)')
    .action(async (f: PretrainFlags) => {
      if (!hieraPresets[f.model]) throw new Error(`pretrain: --model '${f.model}' is not a Hiera preset; valid: ${Object.keys(hieraPresets).join(', ')}`);
      const seed = num('--seed', f.seed, { int: true })!;
      const res = num('--res', f.res, { min: 1, int: true })!;
      const steps = num('--steps', f.steps, { min: 1, int: true });
      const epochs = num('--epochs', f.epochs, { min: 1, int: true }) ?? (steps === undefined ? 10 : undefined);
      const data = dataSplits(f.data, { seed, trainSize: num('--train-size', f.trainSize, { min: 1, int: true }) });
      const rt = new Runtime(f.threads ? { threads: num('--threads', f.threads, { min: 1, int: true }) } : {});
      const sig = sigintSignal();
      try {
        const r = await pretrainMae({
          model: f.model,
          data: data.train,
          res,
          maskRatio: num('--mask-ratio', f.maskRatio, { min: 0 }),
          epochs,
          steps,
          batch: num('--batch', f.batch, { min: 1, int: true })!,
          lr: num('--lr', f.lr, { min: 0 })!,
          weightDecay: num('--wd', f.wd, { min: 0 }),
          warmupSteps: num('--warmup', f.warmup, { min: 0, int: true }),
          minLr: num('--min-lr', f.minLr, { min: 0 }),
          seed,
          rt,
          out: f.out,
          resume: !!f.resume,
          checkpointEvery: num('--ckpt-every', f.ckptEvery, { min: 0, int: true }),
          logEvery: num('--log-every', f.logEvery, { min: 1, int: true }),
          signal: sig.signal,
          runInfo: { data: data.spec, preset: f.model },
        });
        const last = r.losses[r.losses.length - 1];
        const sim = r.similarity[r.similarity.length - 1];
        const simText = sim ? `; pos-embed window similarity ${sim.embed.toFixed(4)}${sim.combined !== undefined ? ` (combined ${sim.combined.toFixed(4)})` : ''}` : '';
        console.log(`${r.interrupted ? 'stopped' : 'done'} after ${r.steps} steps${last ? `; loss ${last.loss.toFixed(4)}` : ''}${simText}`);
        if (r.encoderPath) console.log(`encoder: ${r.encoderPath}; fine-tune with: anyres finetune --from ${r.classifierCheckpoint} --res ${res} --out <dir>`);
      } finally {
        sig.dispose();
      }
    });
}
