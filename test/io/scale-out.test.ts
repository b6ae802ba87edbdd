/**
 * The scale-out road of README.md ("The scale-out road"), command by command, at tiny size against real PyTorch:
 * an official-layout Hiera checkpoint written by torch.save -> `anyres convert` to absolute win
 * (as a training run) -> `anyres finetune` at a new size -> `similarity` / `predict` on the run ->
 * `anyres convert --layout official` -> torch.load(weights_only=True) in PyTorch, one optimizer
 * step there, torch.save -> back into anyres (`convert --model <spec>`) with the torch values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { createModel } from '../../src/models/registry.ts';
import { readAnyCheckpoint } from '../../src/io/read-checkpoint.ts';
import { loadCheckpointFile } from '../../src/io/checkpoint.ts';
import { repoRoot } from '../../src/fixtures.ts';
import { SUMMARY_PY, f32Sha, runTorch, torchMissing } from './torch-python.ts';

const skip = torchMissing();

function anyres(...args: string[]): string {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'anyres.mjs'), ...args], { encoding: 'utf8', cwd: repoRoot });
  assert.equal(r.status, 0, `anyres ${args.join(' ')} failed:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

test('the scale-out road: official checkpoint -> abs-win -> fine-tune at a new size -> official layout -> PyTorch -> back', { skip: skip ?? false, timeout: 600_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-road-'));
  try {
    const p = (f: string): string => path.join(dir, f);
    // 1. An "official" Hiera checkpoint, written by torch.save with the official names and nesting.
    const shapes = [...createModel('hiera-mini').paramInfos()].map(([k, v]) => [k, v.shape]);
    fs.writeFileSync(p('shapes.json'), JSON.stringify(shapes));
    runTorch<number>(`
g = torch.Generator().manual_seed(0)
sd = {k: torch.randn(*s, generator=g) * 0.02 for k, s in json.load(open(sys.argv[1]))}
torch.save({'model_state': sd, 'epoch': 299}, sys.argv[2])
print(len(sd))`, [p('shapes.json'), p('official.pth')]);

    // 2. Convert to absolute win, as a run directory to fine-tune from.
    const conv = anyres('convert', '--from', p('official.pth'), '--model', 'hiera-mini', '--posembed-convert', 'abswin', '--to', p('start'), '--run');
    assert.match(conv, /split into window \[1, 32, 8, 8\].*global \[1, 32, 7, 7\]/);
    // 3. Fine-tune at a new size (96 px instead of 64).
    anyres('finetune', '--from', p('start'), '--res', '96', '--posembed-convert', 'abswin', '--epochs', '1', '--train-size', '16', '--val-size', '8', '--batch', '8', '--out', p('ft'));
    // 4. Inspect the run directly (the run directory is a checkpoint for every command).
    assert.match(anyres('similarity', '--checkpoint', p('ft'), '--out', p('sim')), /window similarity/);
    const ft = readAnyCheckpoint(p('ft'));
    assert.equal(ft.origin, 'train-run');
    assert.deepEqual(ft.tensors.get('pos_embed_window')!.shape, [1, 32, 8, 8]);

    // 5. Back to the official layout as a torch zip.
    anyres('convert', '--from', p('ft'), '--layout', 'official', '--to', p('ft-official.pth'));
    // 6. PyTorch reads it with the safe loader, checks it, takes an optimizer step, saves.
    const [before, after] = runTorch<[Record<string, [number[], string, string]>, Record<string, [number[], string, string]>]>(`${SUMMARY_PY}
ck = torch.load(sys.argv[1], weights_only=True)
before = summary(ck)
params = {k: torch.nn.Parameter(v.clone()) for k, v in ck['model_state'].items()}
opt = torch.optim.SGD(params.values(), lr=0.1)
sum((q ** 2).sum() for q in params.values()).backward()
opt.step()
out = {'model_state': {k: q.detach() for k, q in params.items()}}
torch.save(out, sys.argv[2])
print(json.dumps([before, summary(out)]))`, [p('ft-official.pth'), p('torch-step.pth')]);
    assert.equal(Object.keys(before).length, ft.tensors.size);
    for (const [k, t] of ft.tensors) {
      const [shape, dtype, sha] = before[`model_state.${k}`]!;
      assert.deepEqual(shape, t.shape, k);
      assert.equal(dtype, 'float32');
      assert.equal(sha, f32Sha(t.data), `${k}: PyTorch sees the fine-tuned values`);
    }
    // 7. And back again: the torch-trained file into anyres, the model named by a spec with official keys.
    const spec = JSON.stringify({ family: 'hiera', preset: 'hiera-mini', overrides: { pos_embed: 'abswin', input_size: [96, 96] } });
    anyres('convert', '--from', p('torch-step.pth'), '--model', spec, '--to', p('back.safetensors'));
    const back = loadCheckpointFile(p('back.safetensors'));
    for (const [k, [, , sha]] of Object.entries(after)) assert.equal(f32Sha(back.get(k.slice('model_state.'.length))!.data), sha, `${k} after the PyTorch step`);
    // 8. And it classifies images at its new size.
    const d = Buffer.alloc(120 * 80 * 3);
    for (let i = 0; i < d.length; i++) d[i] = (i * 31) % 251;
    await sharp(d, { raw: { width: 120, height: 80, channels: 3 } }).png().toFile(p('img.png'));
    const rows = anyres('predict', '--checkpoint', p('back.safetensors'), '--top', '2', '--format', 'csv', p('img.png')).trim().split('\n');
    assert.equal(rows[0], 'file,rank,index,class,prob');
    assert.equal(rows.length, 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

if (skip) test(`scale-out road skipped: ${skip}`, { skip }, () => {});
