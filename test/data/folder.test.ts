import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { FolderDataset } from '../../src/data/folder.ts';
import { Rng } from '../../src/util/rng.ts';

async function solid(file: string, w: number, h: number, rgb: [number, number, number]): Promise<void> {
  const img = sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  await (file.endsWith('.png') ? img.png() : file.endsWith('.webp') ? img.webp({ lossless: true }) : img.jpeg({ quality: 95 })).toFile(file);
}

async function makeTree(): Promise<string> {
  const root = mkdtempSync(path.join(tmpdir(), 'anyres-folder-'));
  for (const c of ['zebra', 'apple']) mkdirSync(path.join(root, c));
  await solid(path.join(root, 'apple', 'a1.png'), 40, 30, [255, 0, 0]);
  await solid(path.join(root, 'apple', 'a2.jpg'), 30, 50, [250, 10, 10]);
  await solid(path.join(root, 'zebra', 'z1.webp'), 64, 64, [0, 0, 255]);
  writeFileSync(path.join(root, 'zebra', 'z0-corrupt.jpg'), Buffer.from('not a jpeg at all'));
  writeFileSync(path.join(root, 'zebra', 'notes.txt'), 'ignored');
  return root;
}

test('folder dataset: sorted classes, decode + resize + center crop, corrupt file skip/throw', async () => {
  const root = await makeTree();
  try {
    const ds = new FolderDataset({ root, onError: 'skip' });
    assert.deepEqual(ds.classNames, ['apple', 'zebra']);
    assert.equal(ds.length, 4); // .txt ignored, corrupt jpg listed
    assert.deepEqual(Array.from(ds.labels), [0, 0, 1, 1]);
    const s0 = await ds.get(0, 16, new Rng(0));
    assert.equal(s0.label, 0);
    assert.equal(s0.image.data.length, 3 * 16 * 16);
    const n = 256;
    assert.ok(Math.abs(s0.image.data[100]! - 1) < 0.02 && s0.image.data[n + 100]! < 0.02, 'red image decodes red');
    // Index 2 is the corrupt file: skipped to the next decodable zebra, counted.
    const s2 = await ds.get(2, 16, new Rng(0));
    assert.equal(s2.label, 1);
    assert.ok(s2.image.data[2 * n + 50]! > 0.98, 'blue substitute');
    assert.equal(ds.skipped, 1);
    const strict = new FolderDataset({ root });
    await assert.rejects(() => Promise.resolve(strict.get(2, 16, new Rng(0))), /z0-corrupt\.jpg/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('folder dataset: missing and empty directories are clear errors', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'anyres-folder-'));
  try {
    assert.throws(() => new FolderDataset({ root: path.join(root, 'nope') }), /cannot read root directory/);
    assert.throws(() => new FolderDataset({ root }), /no class sub-directories/);
    mkdirSync(path.join(root, 'cls'));
    assert.throws(() => new FolderDataset({ root }), /no images/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
