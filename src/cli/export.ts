/**
 * `anyres export --checkpoint C --res 64[,96] [--res 128x96] --out model.onnx [--fp16] [--batch N]`:
 * one self-contained ONNX file per resolution (several sizes: model-64.onnx, model-96.onnx), with a
 * dynamic batch dimension unless --batch fixes it.
 */
import type { Command } from 'commander';
import { exportCheckpoint, parseExportSizes } from '../io/export.ts';

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('export a classifier checkpoint to ONNX (one file per resolution; weights, normalisation and softmax included; dynamic batch)')
    .requiredOption('--checkpoint <path>', 'a training run directory, its last.json or ckpt-*.safetensors, an anyres .safetensors, or an official file with --model')
    .requiredOption('--res <sizes>', 'input size(s): 64, 64x96 or 64,96,128 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .requiredOption('--out <file>', 'output .onnx (with several sizes, the size is appended to the name)')
    .option('--model <preset|json|file>', 'the model, for checkpoints that do not record it (official .pth)')
    .option('--batch <n>', 'a fixed batch size instead of the dynamic batch dimension', (v) => Number(v))
    .option('--fp16', 'store the weights as float16 (half the file; computed in float32)')
    .action(async (o: { checkpoint: string; res: string[]; out: string; model?: string; batch?: number; fp16?: boolean }) => {
      const sizes = parseExportSizes(o.res);
      const { written, loaded } = await exportCheckpoint(o.checkpoint, sizes, o.out, {
        ...(o.model !== undefined ? { model: o.model } : {}), ...(o.batch !== undefined ? { batch: o.batch } : {}), ...(o.fp16 ? { fp16: true } : {}),
      });
      for (const f of written) console.log(`export: wrote ${f}`);
      console.log(`export: ${loaded.spec.family} ${loaded.spec.preset ?? ''} '${loaded.name}', ${loaded.classes.length} classes, ${written.length} file(s), batch ${o.batch ?? 'dynamic'}, ${o.fp16 ? 'float16' : 'float32'} weights`);
    });
}
