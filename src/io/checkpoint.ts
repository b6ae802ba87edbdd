/**
 * One entry point for checkpoint files: dispatch on the magic bytes, not the extension
 * (people name torch files .bin, .pt, .pth, .ckpt interchangeably).
 */
import * as fs from 'node:fs';
import { CheckpointFormatError } from './errors.ts';
import { type NamedTensor, readSafetensors } from './safetensors.ts';
import { flattenCheckpoint, readPth } from './pth.ts';

export type CheckpointKind = 'pth-zip' | 'pth-legacy' | 'safetensors' | 'unknown';

/** Identify a checkpoint by its first bytes. */
export function sniffCheckpoint(bytes: Uint8Array): CheckpointKind {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'pth-zip';
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return 'pth-legacy';
  // safetensors: u64 header length, then a JSON object starting with '{'.
  if (bytes.length >= 9 && bytes[8] === 0x7b) return 'safetensors';
  return 'unknown';
}

/** Parse checkpoint bytes (torch zip or safetensors) into float32 tensors with flattened dotted names. */
export function readCheckpoint(bytes: Uint8Array, source = '<bytes>'): Map<string, NamedTensor> {
  switch (sniffCheckpoint(bytes)) {
    case 'pth-zip':
    case 'pth-legacy': // readPth explains how to convert legacy files
      return flattenCheckpoint(readPth(bytes, source), source).tensors;
    case 'safetensors':
      return readSafetensors(bytes, source).tensors;
    default: {
      const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new CheckpointFormatError(source, `neither a torch.save zip file (starts with 'PK\\x03\\x04') nor safetensors (8-byte length then '{'); first bytes: ${head || '(empty file)'}`);
    }
  }
}

/** Load a checkpoint file from disk, see {@link readCheckpoint}. */
export function loadCheckpointFile(path: string): Map<string, NamedTensor> {
  return readCheckpoint(fs.readFileSync(path), path);
}
