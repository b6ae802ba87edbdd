/**
 * One entry point for checkpoint files: dispatch on the magic bytes, not the extension
 * (people name torch files .bin, .pt, .pth, .ckpt interchangeably).
 */
import * as fs from 'node:fs';
import { CheckpointFormatError } from './errors.ts';
import { type NamedTensor, readSafetensors } from './safetensors.ts';
import { flattenCheckpoint, isLegacyTorch, readPth } from './pth.ts';
import { readNumpyPickle } from './numpy-pickle.ts';

export type CheckpointKind = 'pth-zip' | 'pth-legacy' | 'pickle' | 'safetensors' | 'unknown';

/** Identify a checkpoint by its first bytes. */
export function sniffCheckpoint(bytes: Uint8Array): CheckpointKind {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'pth-zip';
  // A pickle (protocol 2+): legacy torch.save starts with its magic number, anything else is a
  // plain pickle (detectron2's numpy .pkl).
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return isLegacyTorch(bytes) ? 'pth-legacy' : 'pickle';
  // safetensors: u64 header length, then a JSON object starting with '{'.
  if (bytes.length >= 9 && bytes[8] === 0x7b) return 'safetensors';
  return 'unknown';
}

/**
 * Parse checkpoint bytes (torch zip or legacy, numpy pickle, safetensors) into tensors with
 * flattened dotted names (float32 `data`, plus the stored dtype and raw bytes).
 */
export function readCheckpoint(bytes: Uint8Array, source = '<bytes>'): Map<string, NamedTensor> {
  switch (sniffCheckpoint(bytes)) {
    case 'pth-zip':
    case 'pth-legacy':
      return flattenCheckpoint(readPth(bytes, source), source).tensors;
    case 'pickle':
      return flattenCheckpoint(readNumpyPickle(bytes, source), source).tensors;
    case 'safetensors':
      return readSafetensors(bytes, source).tensors;
    default: {
      const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new CheckpointFormatError(source, `neither a torch.save file (zip 'PK\\x03\\x04' or legacy pickle), a numpy pickle ('\\x80' protocol 2-5) nor safetensors (8-byte length then '{'); first bytes: ${head || '(empty file)'}`);
    }
  }
}

/** Load a checkpoint file from disk, see {@link readCheckpoint}. */
export function loadCheckpointFile(path: string): Map<string, NamedTensor> {
  return readCheckpoint(fs.readFileSync(path), path);
}
