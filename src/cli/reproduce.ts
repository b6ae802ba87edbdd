/**
 * `anyres reproduce`: the main job (see src/eval/reproduce.ts).
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { reproduce } from '../eval/reproduce.ts';

export function registerReproduceCommand(program: Command): void {
  program
    .command('reproduce')
    .description('reproduce both papers in miniature: abs-win vs interpolated Hiera, window similarity, embedding pictures, ResFormer sweep, ViTDet speed, ViTDet/HieraDet detection from a pretrained classifier; writes report.html/report.md/results.json')
    .option('--quick', 'CI smoke test (too short to show the effects; 73-86 s measured on 2 cores before the detection part, 163-178 s with it on a loaded machine)')
    .option('--data <spec>', 'synthetic | fashion-mnist-scenes[:dir] (Fashion-MNIST items placed in textured scenes) | folder:path', 'synthetic')
    .option('--out <dir>', 'output directory (default runs/reproduce or runs/reproduce-quick)')
    .option('--seeds <list>', 'comma-separated seeds (default: 0,1,2 for Hiera and ResFormer, 0,1 for MAE; 0 with --quick)')
    .option('--mae-finetune', 'also fine-tune the MAE-pretrained trunk with interpolated vs abs-win embeddings (adds about 7 minutes)')
    .option('--long', 'hours-long mode (about 2.5-3.5 h on 2 cores): 20,000-step MAE pretraining per seed to measure whether window similarity climbs (slope per 1,000 steps with a 95% interval), then the MAE -> fine-tune comparison at 1.25x and 1.5x the base size')
    .option('--skip <parts>', 'comma-separated parts to skip: abswin,mae,resformer,speed,detection')
    .action(async (o: { quick?: boolean; data: string; out?: string; seeds?: string; skip?: string; maeFinetune?: boolean; long?: boolean }) => {
      const seeds = o.seeds?.split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw new Error(`reproduce: --seeds must be non-negative integers, got '${s}'`);
        return n;
      });
      const out = o.out ?? path.join('runs', o.quick ? 'reproduce-quick' : o.long ? 'reproduce-long' : 'reproduce');
      const r = await reproduce({
        quick: !!o.quick,
        data: o.data,
        out,
        seeds,
        skip: o.skip?.split(','),
        maeFinetune: o.maeFinetune,
        long: !!o.long,
        command: ['anyres', ...process.argv.slice(2)].join(' '),
      });
      console.log(`\nreport: ${r.files.html}\n        ${r.files.md}\n        ${r.files.json}\nwall time ${r.seconds.toFixed(0)} s`);
    });
}
