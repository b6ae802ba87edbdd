/**
 * Typed errors of the checkpoint readers. Every parser in `src/io/` throws only these for bad
 * input, so a caller (and the fuzz tests) can tell "this file is malformed / refused" apart
 * from a bug in our code.
 */

/** A checkpoint file is malformed, truncated or uses a feature this reader does not support. */
export class CheckpointFormatError extends Error {
  override readonly name = 'CheckpointFormatError';
  /** The file (or `<bytes>` for in-memory input) the error is about. */
  readonly source: string;
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.source = source;
  }
}

/**
 * A pickle asked for a Python global outside the allow-list (e.g. `os.system`). Nothing was
 * executed: the restricted unpickler never runs code, it refuses the file instead.
 */
export class UnsafePickleError extends Error {
  override readonly name = 'UnsafePickleError';
  readonly source: string;
  /** The refused global as `module.name`. */
  readonly global: string;
  constructor(source: string, global: string, detail: string) {
    super(`${source}: refused to load pickle global '${global}': ${detail}`);
    this.source = source;
    this.global = global;
  }
}
