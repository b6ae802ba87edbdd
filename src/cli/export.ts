/**
 * `anyres export --checkpoint ckpt.safetensors --res 64[,96] [--res 128x96] --out model.onnx`:
 * one self-contained ONNX file per resolution (several sizes: model-64.onnx, model-96.onnx).
 */
import type { Command } from 'commander';
import { exportCheckpoint, parseExportSizes } from '../io/export.ts';

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('export a classifier checkpoint to ONNX (one file per resolution; weights, normalisation and softmax included)')
    .requiredOption('--checkpoint <file>', 'safetensors checkpoint with anyres.config metadata')
    .requiredOption('--res <sizes>', 'input size(s): 64, 64x96 or 64,96,128 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .requiredOption('--out <file>', 'output .onnx (with several sizes, the size is appended to the name)')
    .action(async (o: { checkpoint: string; res: string[]; out: string }) => {
      const sizes = parseExportSizes(o.res);
      const { written, loaded } = await exportCheckpoint(o.checkpoint, sizes, o.out);
      for (const f of written) console.log(`export: wrote ${f}`);
      console.log(`export: ${loaded.spec.family} ${loaded.spec.preset ?? ''} '${loaded.name}', ${loaded.classes.length} classes, ${written.length} file(s)`);
    });
}
