/**
 * Test helper: PyTorch as the independent judge of the files we write and the source of files we
 * read. It runs `/usr/bin/python3` (Debian's python3-torch; the python first on PATH may lack
 * torch), or `$ANYRES_TORCH_PYTHON`. Tests skip with a clear message when torch is absent.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';

const PY = process.env.ANYRES_TORCH_PYTHON ?? '/usr/bin/python3';

let available: string | null | undefined;

/** null when torch can be imported, else why not (the skip message). */
export function torchMissing(): string | null {
  if (available === undefined) {
    const r = spawnSync(PY, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    available = r.status === 0 ? null : `PyTorch not available at ${PY} (install python3-torch, or set ANYRES_TORCH_PYTHON): ${(r.stderr || String(r.error)).trim().split('\n').pop()}`;
  }
  return available;
}

/** Runs a Python script with torch imported; returns its stdout parsed as JSON. */
export function runTorch<T>(script: string, args: string[] = []): T {
  const r = spawnSync(PY, ['-c', `import torch, json, sys, hashlib\n${script}`, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Python: `summary(obj)` maps every tensor of a nested checkpoint to [shape, dtype, sha256 of its float32 bytes]. */
export const SUMMARY_PY = `
def summary(obj, prefix=''):
    out = {}
    if isinstance(obj, torch.Tensor):
        t = obj.detach().contiguous().float()
        out[prefix] = [list(obj.shape), str(obj.dtype).replace('torch.', ''), hashlib.sha256(t.numpy().tobytes()).hexdigest()]
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(summary(v, f'{prefix}.{k}' if prefix else str(k)))
    elif isinstance(obj, (list, tuple)) and any(isinstance(x, (torch.Tensor, dict)) for x in obj):
        for i, v in enumerate(obj):
            out.update(summary(v, f'{prefix}.{i}'))
    else:
        out[prefix] = ['value', type(obj).__name__, repr(obj)]
    return out
`;

/** sha256 of float32 values, to compare with {@link SUMMARY_PY}. */
export function f32Sha(data: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

/** torch's dtype name for ours. */
export const TORCH_DTYPE: Record<string, string> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
