/**
 * Atomic file writes: write `<path>.<pid>.<rand>.tmp` in the target directory, fsync it, then
 * rename over the target. rename(2) within one directory is atomic on POSIX, so a reader sees
 * either the old file or the complete new one, never a half-written checkpoint (e.g. after a
 * crash or Ctrl-C mid-save). The temp file lives in the same directory because rename across
 * file systems is not atomic (it fails with EXDEV).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `${base}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Best effort: fsync the directory so the rename itself is durable (not supported everywhere). */
function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms (Windows) cannot open or fsync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write `data` to `target` atomically (temp file + fsync + rename). The temp file is removed on failure. */
export function writeFileAtomic(target: string, data: Uint8Array | string): void {
  const tmp = tempPathFor(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* already failing; keep the original error */ }
    }
    try { fs.unlinkSync(tmp); } catch { /* the temp file may not exist */ }
    throw err;
  }
  fsyncDirSync(path.dirname(target));
}

/**
 * Async variant of {@link writeFileAtomic}. With `createDir`, the parent directory is created
 * first (recursively) when missing.
 */
export async function writeFileAtomicAsync(
  target: string,
  data: Uint8Array | string,
  opts: { createDir?: boolean } = {},
): Promise<void> {
  if (opts.createDir) await fsp.mkdir(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'wx', 0o644);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, target);
  } catch (err) {
    if (handle !== undefined) {
      try { await handle.close(); } catch { /* keep the original error */ }
    }
    try { await fsp.unlink(tmp); } catch { /* the temp file may not exist */ }
    throw err;
  }
  fsyncDirSync(path.dirname(target));
}
