/**
 * `anyres explore [--port 0] [--run runs/NAME]`: builds the browser explorer (web/, Vite) when
 * its build is missing or older than its sources, and serves it on 127.0.0.1.
 *
 * The server is deliberately small (node:http, GET/HEAD only, no uploads: images are classified
 * in the page) and only ever reads two trees:
 * - the built app (`web/dist`), mounted at `/`;
 * - the chosen run directory, mounted at `/run/`, restricted to the file types the page reads
 *   (results.json and charts, exported .onnx models, checkpoints).
 * Paths are decoded once, split on '/', and every segment must be a plain name: `..`, `.`,
 * empty segments, backslashes and NUL are refused (a percent-encoded `%2e%2e` or `%2f` decodes
 * into a refused segment). The file's real path (symlinks resolved) must still lie inside the
 * real root. Directories are never listed; `/run/manifest.json` is a curated index the server
 * writes itself (names of models, checkpoints and results in the run), not a listing.
 *
 * Responses carry `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp`, which make the page cross-origin isolated so
 * onnxruntime-web can use SharedArrayBuffer and wasm threads.
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportModelOnnx, loadCheckpointForExport } from '../io/export.ts';
import { saveSafetensors } from '../io/safetensors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { checkpointConfigOf } from '../models/registry.ts';
import { CHECKPOINT_FORMAT, LAST_JSON } from '../io/train-checkpoint.ts';

/** Repository root (this file is src/cli/explore.ts). */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEB_DIR = path.join(REPO_ROOT, 'web');
export const WEB_DIST = path.join(WEB_DIR, 'dist');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** What the page may read from a run directory (everything else there stays private). */
const RUN_EXTENSIONS = new Set(['.json', '.onnx', '.safetensors', '.png', '.svg', '.md', '.html']);

export interface ExploreServerOptions {
  /** Built app directory (default web/dist). */
  appDir?: string;
  /** Run directory served under /run/ (optional). */
  runDir?: string;
  /** 0 = any free port (default). */
  port?: number;
  /** Always 127.0.0.1 unless a test passes another loopback address. */
  host?: string;
}

export interface ExploreServer {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

/** Why a request path was refused (for the 400/404 body and for tests). */
export class PathRefused extends Error {
  constructor(readonly status: 400 | 403 | 404, message: string) {
    super(message);
  }
}

/**
 * Maps a URL path below a mount point to path segments, refusing anything that is not a plain
 * name. `rest` is the raw (still percent-encoded) remainder after the mount prefix.
 */
export function safeSegments(rest: string): string[] {
  const segs: string[] = [];
  for (const raw of rest.split('/')) {
    if (raw === '') continue; // '//' and a trailing '/' collapse; they cannot climb
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw new PathRefused(400, `malformed percent-encoding in path segment '${raw}'`);
    }
    if (seg === '.' || seg === '..' || seg.includes('/') || seg.includes('\\') || seg.includes('\0')) {
      throw new PathRefused(400, `path segment '${raw}' is not a plain file name`);
    }
    if (seg.startsWith('.')) throw new PathRefused(404, `hidden file '${seg}' is not served`);
    segs.push(seg);
  }
  return segs;
}

/**
 * Resolves segments under `root` to a regular file whose real path (symlinks followed) lies
 * inside the real root; throws PathRefused(404) for anything else, including directories.
 */
export async function resolveInside(root: string, segs: readonly string[]): Promise<string> {
  const realRoot = await fsp.realpath(root);
  const candidate = path.join(realRoot, ...segs);
  let real: string;
  try {
    real = await fsp.realpath(candidate);
  } catch {
    throw new PathRefused(404, `no such file`);
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
    throw new PathRefused(404, `no such file`); // a symlink pointing out of the root: do not even say so
  }
  const st = await fsp.stat(real);
  if (!st.isFile()) throw new PathRefused(404, `not a file (directories are not listed)`);
  return real;
}

export interface RunManifest {
  /** Always 'anyres.explore-run/1'. */
  schema: string;
  name: string;
  results: string | null;
  /** Exported models (.onnx, self-describing through their metadata). */
  models: string[];
  checkpoints: string[];
}

/** The curated index of a run directory the page reads (two levels deep, hidden names skipped). */
export async function runManifest(runDir: string): Promise<RunManifest> {
  const found: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    const entries = await fsp.readdir(path.join(runDir, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory() && depth < 2) await walk(r, depth + 1);
      else if (e.isFile() && RUN_EXTENSIONS.has(path.extname(e.name).toLowerCase())) found.push(r);
    }
  };
  await walk('', 0);
  return {
    schema: 'anyres.explore-run/1',
    name: path.basename(path.resolve(runDir)),
    results: found.includes('results.json') ? 'results.json' : null,
    models: found.filter((f) => f.endsWith('.onnx')),
    // Training tensor files hold flat parameters and optimizer moments; the page reads the
    // shaped copies prepareRun writes next to the exported models instead.
    checkpoints: found.filter((f) => f.endsWith('.safetensors') && !isTrainingTensorFile(path.join(runDir, f))),
  };
}

/** Whether a safetensors file is the tensor file of a training checkpoint (metadata format). */
function isTrainingTensorFile(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(8);
    if (fs.readSync(fd, head, 0, 8, 0) < 8) return false;
    const n = Number(head.readBigUInt64LE(0));
    if (n > 1 << 20) return false;
    const json = Buffer.alloc(n);
    fs.readSync(fd, json, 0, n, 8);
    const meta = (JSON.parse(json.toString('utf8')) as { __metadata__?: Record<string, string> }).__metadata__;
    return meta?.['format'] === CHECKPOINT_FORMAT;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

/** Input sizes the model takes nearest to each target (one per target, deduplicated, sorted). */
export function validSizesNear(check: (H: number, W: number) => void, targets: readonly number[]): number[] {
  const out = new Set<number>();
  for (const t of targets) {
    for (let d = 0; d <= 64; d++) {
      const hit = [t - d, t + d].find((v) => {
        if (v < 8) return false;
        try {
          check(v, v);
          return true;
        } catch {
          return false;
        }
      });
      if (hit !== undefined) {
        out.add(hit);
        break;
      }
    }
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * Makes a training run directory viewable: every training checkpoint in it (`last.json` in the
 * run or one level below) is exported to `<run>/explore/<name>-<res>.onnx` at its training
 * resolutions and at 0.5x-2x of them, and its parameters are saved shaped, with `anyres.config`,
 * as `<run>/explore/<name>.safetensors` for the position-embedding panel. Up-to-date files are kept.
 */
export async function prepareRun(runDir: string, opts: { sizes?: number[]; log?: (s: string) => void } = {}): Promise<string[]> {
  const log = opts.log ?? (() => {});
  if (!fs.statSync(runDir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`explore: --run ${runDir} is not a directory`);
  const jsons: string[] = [];
  if (fs.existsSync(path.join(runDir, LAST_JSON))) jsons.push(path.join(runDir, LAST_JSON));
  for (const e of fs.readdirSync(runDir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== 'explore' && fs.existsSync(path.join(runDir, e.name, LAST_JSON))) jsons.push(path.join(runDir, e.name, LAST_JSON));
  }
  const written: string[] = [];
  const outDir = path.join(runDir, 'explore');
  for (const json of jsons) {
    const name = path.basename(path.dirname(path.resolve(json)));
    const shaped = path.join(outDir, `${name}.safetensors`);
    const stamp = fs.statSync(json).mtimeMs;
    if (fs.existsSync(shaped) && fs.statSync(shaped).mtimeMs >= stamp) continue;
    const ck = loadCheckpointForExport(json);
    const base = ck.trainRes ?? [ck.model.defaultRes[0]];
    const sizes = opts.sizes ?? validSizesNear((h, w) => ck.model.checkInputSize(h, w), [...new Set(base.flatMap((r) => [0.5, 0.75, 1, 1.5, 2].map((f) => Math.round(r * f))))]);
    fs.mkdirSync(outDir, { recursive: true });
    for (const r of sizes) {
      const e = exportModelOnnx(ck.model, ck.weights, { res: [r, r], classes: ck.classes, name: ck.name, normalization: ck.normalization, trainRes: ck.trainRes });
      const file = path.join(outDir, `${name}-${r}.onnx`);
      writeFileAtomic(file, e.bytes);
      written.push(file);
    }
    // Written last: its time stamp marks the exports above as complete.
    saveSafetensors(shaped, ck.weights, { 'anyres.config': JSON.stringify(checkpointConfigOf(ck.model)), 'anyres.name': ck.name });
    written.push(shaped);
    log(`explore: exported ${name} at ${sizes.join(', ')} px`);
  }
  return written;
}

function securityHeaders(): Record<string, string> {
  return {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-cache',
  };
}

function sendError(res: http.ServerResponse, status: number, message: string): void {
  const body = `${status} ${message}\n`;
  res.writeHead(status, { ...securityHeaders(), 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string): Promise<void> {
  const st = await fsp.stat(file);
  const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
  res.writeHead(200, { ...securityHeaders(), 'Content-Type': type, 'Content-Length': st.size });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const s = fs.createReadStream(file);
    s.on('error', reject);
    res.on('close', resolve);
    s.pipe(res);
  });
}

/** Starts the explorer's static server on 127.0.0.1 (port 0 picks a free one). */
export async function startExploreServer(opts: ExploreServerOptions = {}): Promise<ExploreServer> {
  const appDir = path.resolve(opts.appDir ?? WEB_DIST);
  if (!fs.existsSync(path.join(appDir, 'index.html'))) {
    throw new Error(`explore: the app directory ${appDir} has no index.html; build it first (anyres explore builds it when vite is installed)`);
  }
  const runDir = opts.runDir === undefined ? undefined : path.resolve(opts.runDir);
  if (runDir !== undefined && !fs.statSync(runDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`explore: --run ${opts.runDir} is not a directory`);
  }
  const host = opts.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
    throw new Error(`explore: the server binds to loopback only, got host '${host}' (use 127.0.0.1)`);
  }

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendError(res, 405, `method ${req.method ?? '?'} not allowed (the explorer takes no uploads)`);
      return;
    }
    const rawUrl = req.url ?? '/';
    // Only origin-form paths: an absolute URL or '*' in the request line is refused.
    if (!rawUrl.startsWith('/')) {
      sendError(res, 400, 'request target must be a path');
      return;
    }
    const pathname = rawUrl.split(/[?#]/, 1)[0]!;
    try {
      if (pathname === '/run' || pathname.startsWith('/run/')) {
        if (runDir === undefined) throw new PathRefused(404, 'no run directory is served (start with --run runs/NAME)');
        const segs = safeSegments(pathname.slice('/run'.length));
        if (segs.length === 1 && segs[0] === 'manifest.json') {
          const body = JSON.stringify(await runManifest(runDir));
          res.writeHead(200, { ...securityHeaders(), 'Content-Type': CONTENT_TYPES['.json']!, 'Content-Length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
          return;
        }
        if (segs.length === 0 || !RUN_EXTENSIONS.has(path.extname(segs[segs.length - 1]!).toLowerCase())) {
          throw new PathRefused(404, 'not a file the explorer reads from a run');
        }
        await sendFile(req, res, await resolveInside(runDir, segs));
        return;
      }
      const segs = safeSegments(pathname);
      await sendFile(req, res, await resolveInside(appDir, segs.length === 0 ? ['index.html'] : segs));
    } catch (e) {
      if (e instanceof PathRefused) sendError(res, e.status, e.message);
      else if (!res.headersSent) sendError(res, 500, (e as Error).message);
      else res.destroy();
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, (e as Error).message);
      else res.destroy();
    });
  });
  // The explorer never reads request bodies; cap headers and time so a stuck client cannot hold it.
  server.maxHeadersCount = 64;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host === '::1' ? '[::1]' : host}:${port}/`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Newest modification time of the files under `dir` (recursively; 0 when missing). */
function newestMtime(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.isFile()) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Whether web/dist is missing or older than the app's sources or the bundled library code. */
export function appNeedsBuild(): boolean {
  const built = path.join(WEB_DIST, 'index.html');
  if (!fs.existsSync(built)) return true;
  const builtAt = fs.statSync(built).mtimeMs;
  const sources = [
    path.join(WEB_DIR, 'index.html'),
    path.join(WEB_DIR, 'vite.config.ts'),
    path.join(WEB_DIR, 'src'),
    path.join(REPO_ROOT, 'src', 'posembed'),
    path.join(REPO_ROOT, 'src', 'data'),
    path.join(REPO_ROOT, 'src', 'util'),
  ];
  return sources.some((s) => (fs.statSync(s, { throwIfNoEntry: false })?.isDirectory() ? newestMtime(s) : fs.statSync(s, { throwIfNoEntry: false })?.mtimeMs ?? 0) > builtAt);
}

/** Builds web/ into web/dist with Vite (a dev dependency: present in a checkout after `npm ci`). */
export async function buildApp(opts: { quiet?: boolean } = {}): Promise<void> {
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch (e) {
    throw new Error(`explore: building the app needs vite (npm install --include=dev); import failed: ${(e as Error).message}`);
  }
  await vite.build({ configFile: path.join(WEB_DIR, 'vite.config.ts'), logLevel: opts.quiet ? 'error' : 'info' });
}

export function registerExploreCommand(program: Command): void {
  program
    .command('explore')
    .description('serve the browser explorer (position embeddings across resolutions, in-page classification, sweep charts) on 127.0.0.1')
    .option('--port <n>', 'port (0 = any free port)', '0')
    .option('--run <dir>', 'a run directory (results.json, exported .onnx models) to show in the page under /run/')
    .option('--export-res <list>', 'sizes to export a run\'s training checkpoints at (default: 0.5x to 2x the training resolutions)')
    .option('--rebuild', 'rebuild the app even when web/dist is up to date')
    .action(async (o: { port: string; run?: string; rebuild?: boolean; exportRes?: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`explore: --port must be an integer in [0, 65535], got '${o.port}'`);
      const sizes = o.exportRes?.split(',').map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new Error(`explore: --export-res must be a comma list of positive integers, got '${v}'`);
        return n;
      });
      if (o.run !== undefined) await prepareRun(o.run, { ...(sizes ? { sizes } : {}), log: (m) => console.log(m) });
      if (o.rebuild || appNeedsBuild()) {
        console.log('explore: building the app (web/ -> web/dist) ...');
        await buildApp({ quiet: true });
      }
      const srv = await startExploreServer({ port, ...(o.run !== undefined ? { runDir: o.run } : {}) });
      console.log(`explore: serving ${srv.url}${o.run ? ` (run ${path.resolve(o.run)} under ${srv.url}run/)` : ''}; Ctrl-C to stop`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void srv.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
