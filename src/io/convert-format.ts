/**
 * Checkpoint container conversion: every tensor of any state dict from one file format to another
 * (torch .pth zip or legacy, numpy .pkl, .safetensors), names and dtypes kept or cast to float32.
 * The library part of `anyres convert --format-only`.
 *
 * @example
 * convertFormat('model.pth', 'model.safetensors'); // { tensors, dtypes: { F16: 150 }, source: 'pth-zip' }
 */
import * as fs from 'node:fs';
import { type NamedTensor, saveSafetensors } from './safetensors.ts';
import { readCheckpointFile } from './load-model.ts';
import { type TorchSaveValue, savePth } from './pth-write.ts';
import { sniffCheckpoint } from './checkpoint.ts';
import { ArrayValue, readPth } from './pth.ts';
import { readNumpyPickle } from './numpy-pickle.ts';
import type { PyValue } from './pickle.ts';

/** `.pth` / `.pt` / `.bin` → torch.save zip; anything else safetensors. */
export function outputFormatOf(file: string): 'pth' | 'safetensors' {
  return /\.(pth|pt|bin)$/i.test(file) ? 'pth' : 'safetensors';
}

export interface FormatConvertResult {
  tensors: number;
  /** dtype -> number of tensors written with it. */
  dtypes: Record<string, number>;
  source: string;
}

/**
 * Converts the container only: every tensor of any state dict, names and dtypes kept (or cast to
 * float32). A torch/pickle source written as `.pth` keeps its nesting (`{'model': sd, 'epoch': 5}`);
 * otherwise names are the flattened dotted keys (safetensors has no nesting).
 */
export function convertFormat(from: string, to: string, opts: { float32?: boolean } = {}): FormatConvertResult {
  const keep = !opts.float32;
  const bytes = fs.readFileSync(from);
  const kind = sniffCheckpoint(bytes);
  const dtypes: Record<string, number> = {};
  const count = (t: NamedTensor): void => { const d = keep ? t.dtype ?? 'F32' : 'F32'; dtypes[d] = (dtypes[d] ?? 0) + 1; };
  if (outputFormatOf(to) === 'pth' && (kind === 'pth-zip' || kind === 'pth-legacy' || kind === 'pickle')) {
    const root = kind === 'pickle' ? readNumpyPickle(bytes, from) : readPth(bytes, from);
    const { value, tensors } = toSaveValue(root, from);
    for (const t of tensors) count(t);
    savePth(to, value, { keepDtypes: keep });
    return { tensors: tensors.length, dtypes, source: kind };
  }
  const { tensors, metadata } = readCheckpointFile(from);
  for (const t of tensors.values()) count(t);
  if (outputFormatOf(to) === 'pth') savePth(to, tensors as Map<string, TorchSaveValue>, { keepDtypes: keep });
  else saveSafetensors(to, tensors, metadata, { keepDtypes: keep });
  return { tensors: tensors.size, dtypes, source: kind };
}

/** A read pickle as a value torch.save can write: dicts, lists, scalars, arrays; other objects are refused. */
function toSaveValue(v: PyValue, from: string): { value: TorchSaveValue; tensors: NamedTensor[] } {
  const tensors: NamedTensor[] = [];
  const walk = (x: PyValue, key: string): TorchSaveValue => {
    if (x === null || typeof x === 'boolean' || typeof x === 'number' || typeof x === 'string') return x;
    if (x instanceof ArrayValue) {
      const t: NamedTensor = { shape: x.shape, data: x.data, dtype: x.dtype, raw: x.raw };
      tensors.push(t);
      return t;
    }
    if (x instanceof Map) {
      const m = new Map<string, TorchSaveValue>();
      for (const [k, y] of x) {
        if (typeof k !== 'string' && typeof k !== 'number') throw new Error(`convert: ${from} has a key of type ${typeof k} under '${key}'; only string keys are written`);
        m.set(String(k), walk(y, key ? `${key}.${String(k)}` : String(k)));
      }
      return m;
    }
    if (Array.isArray(x)) return (x as readonly PyValue[]).map((y, i) => walk(y, `${key}.${i}`));
    if (typeof x === 'bigint') return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : String(x);
    throw new Error(`convert: ${from} holds ${x instanceof Uint8Array ? 'raw bytes' : 'an object'} at '${key}', which the .pth writer does not write; convert to .safetensors (tensors only)`);
  };
  return { value: walk(v, ''), tensors };
}
