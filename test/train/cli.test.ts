import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { registerTrainCommands } from '../../src/cli/train.ts';
import { dataSplits as parseData } from '../../src/data/spec.ts';
import { loadCheckpoint } from '../../src/io/train-checkpoint.ts';

function program(): Command {
  const p = new Command();
  p.exitOverride();
  p.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerTrainCommands(p);
  return p;
}
const run = (args: string[]): Promise<Command> => program().parseAsync(['node', 'anyres', ...args]);
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-cli-'));

test('bad input fails early with messages that say what would work', async () => {
  await assert.rejects(run(['train', '--model', 'vit-huge-nope', '--out', tmp()]), /unknown model preset 'vit-huge-nope'; valid presets: .*vit-tiny/);
  await assert.rejects(run(['train', '--model', 'vit-mini-p4', '--res', '30', '--out', tmp()]), /30.*(28|32)/);
  await assert.rejects(run(['train', '--model', 'vit-mini-p4', '--res', '32,24', '--out', tmp()]), /add --multires/);
  await assert.rejects(run(['train', '--model', 'vit-mini-p4', '--data', 'folder:/nonexistent/x', '--out', tmp()]), /directory '\/nonexistent\/x' does not exist/);
  const empty = tmp();
  await assert.rejects(run(['train', '--model', 'vit-mini-p4', '--data', `folder:${empty}`, '--out', tmp()]), /no (images|class)|empty|expected/i);
  assert.throws(() => parseData('imagenet'), /not one of: synthetic, synthetic-clips\[:frames\], fashion-mnist/);
  assert.throws(() => parseData('fashion-mnist:/nonexistent'), /no Fashion-MNIST IDX files in \/nonexistent/);
});

test('train (multi-resolution) then finetune at a new resolution with an interpolated pos embed', { timeout: 120_000 }, async () => {
  const out = tmp();
  const quietLog = console.log;
  const lines: string[] = [];
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    await run(['train', '--model', 'vit-mini-p4', '--res', '24,16', '--multires', '--epochs', '1', '--batch', '8', '--train-size', '32', '--val-size', '16', '--threads', '1', '--out', out]);
    const ck = loadCheckpoint(out);
    assert.equal(ck.info.step, 4);
    assert.deepEqual((ck.info.model.config as { imgSize: number[] }).imgSize, [24, 24]);
    const ft = tmp();
    await run(['finetune', '--from', out, '--res', '32', '--posembed-convert', 'interpolate', '--epochs', '1', '--batch', '8', '--train-size', '16', '--val-size', '8', '--threads', '1', '--out', ft]);
    const ck2 = loadCheckpoint(ft);
    assert.deepEqual((ck2.info.model.config as { imgSize: number[] }).imgSize, [32, 32]);
    assert.equal(ck2.state.params.get('pos_embed')!.length, (1 + 64) * 96);
    await assert.rejects(run(['finetune', '--from', out, '--res', '32', '--posembed-convert', 'abswin', '--out', tmp()]), /needs a Hiera with a learned absolute pos_embed .*got vit/);
  } finally {
    console.log = quietLog;
  }
  assert.ok(lines.some((l) => /^done after 4 steps/.test(l)), lines.join('\n'));
});
