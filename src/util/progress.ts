/**
 * Progress reporting for long loops (training epochs, resolution sweeps, benchmarks).
 *
 * On a terminal: one line redrawn in place (at most every 100 ms) with a bar, count, ETA and
 * the latest metrics. In logs (stream not a TTY, or CI set): one plain line per 10 % of the
 * work, so a CI log shows progress without thousands of carriage-return frames.
 *
 * Written here rather than on cli-progress: the output has to be testable (injected stream
 * and clock), and the quiet mode is the one CI sees.
 *
 * @example
 * ```ts
 * const bar = progress(steps, 'train 224px');
 * for (let i = 0; i < steps; i++) { ...; bar.tick(1, { loss, lr, img_s }); }
 * bar.done();
 * ```
 */

/** Metrics shown after the bar; `img_s` is displayed as img/s. */
export type Metrics = Record<string, number>;

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** default process.stderr (keeps stdout clean for results) */
  stream?: ProgressStream;
  /** force quiet (line per 10 %) or live mode; default: quiet unless a TTY outside CI */
  quiet?: boolean;
  /** clock in ms; default Date.now */
  now?: () => number;
  /** environment to read CI from; default process.env */
  env?: Record<string, string | undefined>;
}

export interface Progress {
  /** advance by n (default 1) items; metrics replace the previously shown values per key */
  tick(n?: number, metrics?: Metrics): void;
  /** finish: draws the final state and ends the line */
  done(metrics?: Metrics): void;
  readonly count: number;
}

const BAR_WIDTH = 24;
const REDRAW_MS = 100;

/** 83 s → "1m23s", 3723 s → "1h02m", 9.5 s → "9.5s". */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const t = Math.round(seconds);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

/** Per-metric formats: learning rates span decades (exponent), losses need 4 significant digits. */
export function formatMetric(key: string, v: number): string {
  if (!Number.isFinite(v)) return `${key === 'img_s' ? 'img/s' : key} ${v}`;
  if (key === 'lr') return `lr ${v.toExponential(2)}`;
  if (key === 'img_s') return `img/s ${v.toFixed(1)}`;
  return `${key} ${Number(v.toPrecision(4))}`;
}

function isCI(env: Record<string, string | undefined>): boolean {
  const v = env['CI'];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** Start a progress display for `total` items. */
export function progress(total: number, label: string, opts: ProgressOptions = {}): Progress {
  if (!Number.isInteger(total) || total <= 0) {
    throw new Error(`progress: total must be a positive integer number of items, got ${total} (label '${label}')`);
  }
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? Date.now;
  const quiet = opts.quiet ?? (!stream.isTTY || isCI(opts.env ?? process.env));
  const start = now();
  const metrics: Metrics = {};
  let count = 0;
  let lastDraw = -Infinity;
  let lastDecile = 0;
  let finished = false;

  const line = (): string => {
    const frac = Math.min(1, count / total);
    const elapsed = (now() - start) / 1000;
    const eta = count > 0 ? (elapsed / count) * Math.max(0, total - count) : NaN;
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    const parts = [`${label} ${pct} ${count}/${total}`, `elapsed ${formatEta(elapsed)}`, `ETA ${formatEta(eta)}`];
    if (!quiet) {
      const filled = Math.round(frac * BAR_WIDTH);
      parts[0] = `${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${pct} ${count}/${total}`;
    }
    for (const [k, v] of Object.entries(metrics)) parts.push(formatMetric(k, v));
    return parts.join('  ');
  };

  const draw = (force: boolean): void => {
    if (quiet) {
      // One line each time a new 10 % mark is crossed (several marks at once print once).
      const decile = Math.floor((Math.min(count, total) / total) * 10);
      if (decile > lastDecile || (force && lastDecile < 10)) {
        lastDecile = Math.max(decile, lastDecile);
        stream.write(line() + '\n');
      }
      return;
    }
    const t = now();
    if (force || t - lastDraw >= REDRAW_MS) {
      lastDraw = t;
      // \r returns to column 0, ESC[K clears what a longer previous line left behind.
      stream.write(`\r${line()}\x1b[K`);
    }
  };

  return {
    get count() {
      return count;
    },
    tick(n = 1, m?: Metrics) {
      if (finished) throw new Error(`progress '${label}': tick() after done()`);
      if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`progress '${label}': tick(n) needs n >= 0, got ${n}`);
      count += n;
      if (m) Object.assign(metrics, m);
      draw(count >= total);
    },
    done(m?: Metrics) {
      if (finished) return;
      if (m) Object.assign(metrics, m);
      draw(true);
      if (!quiet) stream.write('\n');
      finished = true;
    },
  };
}
