/**
 * Every command of README.md's command-line block runs (issue 16 item 8), so a README line that
 * breaks fails CI.
 *
 * The ```bash blocks of the "## The command line" section are parsed here, line by line; nothing is
 * listed by hand except how to make a line TINY (the substitution table below: fewer images, one
 * seed, 2 steps, small benchmark sizes) and how to create inputs that cannot exist in CI (an official
 * checkpoint, a COCO folder and photos are written at tiny size first). Lines added later run as written, with the generic tiny flags their
 * `--help` offers (--train-size, --val-size, --batch, --threads). A line whose input is produced by
 * another line runs after it (run directories first). A line that cannot run is listed with its
 * reason, printed, and the test fails only if the list grows beyond the documented exceptions.
 *
 * Conventions of the block: `npx anyres X` is bin/anyres.mjs; `[opt]` is optional (included, first
 * alternative of `a|b`); `npm run bench -- a | b | c` runs each benchmark; text after `#` is a comment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixturesDir } from '../../src/fixtures.ts';
import { createModel } from '../../src/models/registry.ts';
import { initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { writeCocoFolder } from '../../src/det/data/coco-format.ts';
import { SyntheticDetDataset } from '../../src/det/data/synthetic.ts';
import { encodePng } from '../../src/det/data/png.ts';
import sharp from 'sharp';
import { contiguous, f32Storage, torchSave, type SaveValue } from '../io/pth-writer.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin', 'anyres.mjs');

/** The lines of every ```bash block of the section under the heading (up to the next `## `). */
export function commandBlock(md: string, heading = '## The command line'): string[] {
  const at = md.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README: no '${heading}' section`);
  const rest = md.slice(at + heading.length + 2);
  const end = rest.search(/\n## /);
  const section = end < 0 ? rest : rest.slice(0, end);
  const blocks = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (!blocks.length) throw new Error(`README: no \`\`\`bash block under '${heading}'`);
  return blocks.join('\n').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l && !l.startsWith('#'));
}

/** `[--data a|b]` -> `--data a`; words split on spaces. */
export function expandOptional(line: string): string[] {
  const s = line.replace(/\[([^\]]*)\]/g, (_, inner: string) => inner.split(' ').map((w) => w.split('|')[0]).join(' '));
  return s.split(/\s+/).filter(Boolean);
}

interface Run {
  /** The README line. */
  line: string;
  /** Program and arguments (after substitution). */
  argv: string[];
  /** Paths (relative to the work directory) this run writes and reads. */
  outputs: string[];
  inputs: string[];
  /** Long-running server: started, probed, stopped. */
  server?: boolean;
  /** Working directory (default: the block's work directory). */
  cwd?: string;
}

/**
 * Tiny flags offered to every anyres command whose --help lists them (and the line does not set);
 * the dataset sizes only where the data is generated (`--data` absent or synthetic*).
 */
const GENERIC_TINY: [string, string, 'generated-data'?][] = [['--train-size', '8', 'generated-data'], ['--val-size', '4', 'generated-data'], ['--batch', '4'], ['--threads', '1']];
/** Flags whose value the block's line sets, capped for tiny runs. */
const GENERIC_CAP: Record<string, number> = { '--steps': 2 };

/** Work directory prepared for the block: inputs that cannot exist in CI, at tiny size. */
async function prepareWork(work: string): Promise<void> {
  // An official Hiera checkpoint (hiera.py layout: {'model_state': state_dict}) as torch.save writes it,
  // for `convert --from hiera_base_224.pth`; at hiera-mini size (the line's --model is substituted).
  const model = createModel('hiera-mini');
  const sd = new Map<string, SaveValue>();
  let n = 0;
  for (const [k, v] of initWeights(model.paramInfos(), new Rng(0))) sd.set(k, contiguous(f32Storage(String(n++), v.data), v.shape));
  fs.writeFileSync(path.join(work, 'hiera_base_224.pth'), torchSave(new Map<string, SaveValue>([['model_state', sd], ['epoch', 300]])));
  // A COCO-format folder (`detect ... --data coco:datasets/shapes`): 8 synthetic scenes, train/ and val/.
  for (const split of ['train', 'val'] as const) {
    await writeCocoFolder(path.join(work, 'datasets', 'shapes', split), new SyntheticDetDataset({ seed: 0, split, size: split === 'train' ? 8 : 4 }), [128, 128], { progress: false });
  }
  // Photos for `detect predict photo1.jpg photo2.png` (a synthetic scene, as JPEG and PNG).
  const scene = await new SyntheticDetDataset({ seed: 1, split: 'val', size: 1 }).get(0, [96, 128], null);
  fs.writeFileSync(path.join(work, 'photo2.png'), await encodePng(scene.image));
  await sharp(await encodePng(scene.image)).jpeg().toFile(path.join(work, 'photo1.jpg'));
}

/** Per-subcommand substitutions that make a README line tiny (the line's meaning is kept). */
const SUBSTITUTE: Record<string, (args: string[], help: string) => string[]> = {
  // All cases of the glob would repeat the fixture suite; the interpolation cases are the quick ones.
  fixture: (a) => a.map((w) => w.replace(/^\.\.\/shared\/fixtures\/\*\.json$/, `${fixturesDir()}/interp_bicubic_*.json`)),
  // The tiny official checkpoint of prepareWork is a hiera-mini.
  convert: (a) => a.map((w, i) => (a[i - 1] === '--model' && w === 'hiera-base' ? 'hiera-mini' : w)),
  export: (a) => a,
  // One seed, the abs-win part only (the others are the same machinery at other sizes), into the
  // directory the README's explore line reads.
  // One seed and only the speed part (seconds; the training parts are the same commands as the
  // train/finetune/pretrain/detect lines and run in CI as `npm start -- --quick`), into the directory
  // the README's explore line reads. The parts are read from --help, so a new part is skipped too.
  reproduce: (a, help) => {
    const parts = /parts to skip: ([a-z,-]+)/.exec(help.replace(/\s+/g, ' '))?.[1]?.split(',').filter((x) => x !== 'speed') ?? [];
    if (!parts.length) throw new Error(`reproduce --help lists no parts to skip:\n${help}`);
    return [...a.filter((w, i) => w !== '--seeds' && a[i - 1] !== '--seeds'), '--seeds', '0', ...(parts.length ? ['--skip', parts.join(',')] : []), '--out', 'runs/reproduce'];
  },
  // The README's placeholder folder is the prepared COCO folder.
  'detect eval': (a) => a.map((w) => (w === 'coco:folder' ? 'coco:datasets/shapes' : w)),
  'bench:engine': (a) => [...a, '--reps', '1'],
  'bench:models': (a) => [...a, '--batch', '1', '--steps', '1', '--skip-vitdet'],
  'bench:train': (a) => [...a, '--model', 'vit-mini-p4', '--batch', '2', '--steps', '1', '--single-only'],
};

/** Lines that cannot run here, with the reason (printed). Matched by the README line's start. */
const CANNOT_RUN: { prefix: string; reason: string }[] = [];

/**
 * Lines that run but are known to fail until work owned elsewhere lands: their failure is printed,
 * not fatal; once one passes the test prints that its entry must go. Keep this list empty.
 */
const KNOWN_BROKEN: { prefix: string; reason: string }[] = [];

function pathsOf(args: string[], flags: string[]): string[] {
  return args.flatMap((w, i) => (flags.includes(args[i - 1] ?? '') && !w.startsWith('-') ? [w] : []));
}

/** Glob of one `dir/pattern*.json` word (no shell here). */
function expandGlob(word: string, cwd: string): string[] {
  if (!word.includes('*')) return [word];
  const dir = path.dirname(word);
  const re = new RegExp(`^${path.basename(word).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  const abs = path.resolve(cwd, dir);
  const hits = fs.existsSync(abs) ? fs.readdirSync(abs).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f)) : [];
  if (!hits.length) throw new Error(`glob ${word} matches nothing in ${abs}`);
  return hits;
}

function spawnRun(argv: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { ...process.env, ANYRES_FIXTURES: fixturesDir(), CI: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Starts a server line, waits for its URL, GETs it, stops it. */
function probeServer(argv: string[], cwd: string, timeoutMs: number): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { ...process.env, CI: '1' } });
    let out = '';
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGTERM');
      resolve({ ok, out });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        fetch(m[1]!).then(async (r) => {
          out += `\nGET ${m[1]} -> ${r.status}`;
          const runOk = /\(run /.test(out) ? (await fetch(`${m[1]}run/results.json`)).status === 200 : true;
          finish(r.status === 200 && runOk);
        }, (e: unknown) => {
          out += `\nGET failed: ${String(e)}`;
          finish(false);
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => finish(false));
  });
}

/** The subcommand words of an anyres line: the leading plain words (`train`, `detect train`), not paths or options. */
export function subcommand(args: string[]): string[] {
  const n = args.findIndex((w) => !/^[a-z][a-z-]*$/.test(w));
  return args.slice(0, n === -1 ? args.length : Math.max(1, n));
}

/** Orders runs so that every input produced by another run comes after that run (stable). */
function order(runs: Run[]): Run[] {
  const produces = (r: Run, p: string): boolean => r.outputs.some((o) => p === o || p.startsWith(`${o}/`));
  const out: Run[] = [];
  const placed = new Set<Run>();
  const visit = (r: Run, stack: Set<Run>): void => {
    if (placed.has(r) || stack.has(r)) return;
    stack.add(r);
    for (const p of r.inputs) for (const q of runs) if (q !== r && produces(q, p)) visit(q, stack);
    placed.add(r);
    out.push(r);
  };
  for (const r of runs) visit(r, new Set());
  return out;
}

test("every command of README.md's command-line block runs at tiny size", { timeout: 1_800_000 }, async () => {
  const lines = commandBlock(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8'));
  assert.ok(lines.length >= 10, `README command block has ${lines.length} lines`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-readme-'));
  await prepareWork(work);

  const helpCache = new Map<string, string>();
  const helpOf = async (sub: string[]): Promise<string> => {
    const key = sub.join(' ');
    if (!helpCache.has(key)) helpCache.set(key, (await spawnRun([process.execPath, BIN, ...sub, '--help'], work, 120_000)).out);
    return helpCache.get(key)!;
  };

  // Every subcommand's --help, fetched two at a time up front (each is a process start).
  const subs = [...new Set(lines.map(expandOptional).filter((w) => w[0] === 'npx' && w[1] === 'anyres').map((w) => subcommand(w.slice(2)).join(' ')))];
  for (let i = 0; i < subs.length; i += 2) await Promise.all(subs.slice(i, i + 2).map((s) => helpOf(s.split(' '))));

  const runs: Run[] = [];
  const cannot: { line: string; reason: string }[] = [];
  for (const line of lines) {
    const skip = CANNOT_RUN.find((c) => line.startsWith(c.prefix));
    if (skip) { cannot.push({ line, reason: skip.reason }); continue; }
    const words = expandOptional(line);
    if (words[0] === 'npx' && words[1] === 'anyres') {
      let args = words.slice(2);
      const sub = subcommand(args);
      const help = await helpOf(sub);
      args = (SUBSTITUTE[sub.join(' ')] ?? ((a: string[]) => a))(args, help);
      args = args.map((w, i) => (GENERIC_CAP[args[i - 1] ?? ''] !== undefined && Number(w) > GENERIC_CAP[args[i - 1]!]! ? String(GENERIC_CAP[args[i - 1]!]) : w));
      const data = args[args.indexOf('--data') + 1];
      const generated = !args.includes('--data') || (data ?? '').startsWith('synthetic');
      for (const [flag, value, only] of GENERIC_TINY) {
        if (help.includes(`${flag} `) && !args.includes(flag) && (only !== 'generated-data' || generated)) args.push(flag, value);
      }
      args = args.flatMap((w) => expandGlob(w, work));
      runs.push({
        line, argv: [process.execPath, BIN, ...args],
        outputs: pathsOf(args, ['--out', '--to']), inputs: pathsOf(args, ['--from', '--checkpoint', '--run', '--init']),
        server: sub[0] === 'explore',
      });
    } else if (words[0] === 'npm' && words[1] === 'run' && words[2] === 'bench') {
      // `npm run bench -- a | b | c`: each benchmark, through the same entry point as the npm script.
      const names = words.slice(words.indexOf('--') + 1).filter((w) => w !== '|');
      for (const name of names) {
        const args = (SUBSTITUTE[`bench:${name}`] ?? ((a: string[]) => a))([name], '');
        runs.push({ line: `${line} (${name})`, argv: [process.execPath, '--import', 'tsx', path.join(REPO, 'bench', 'main.ts'), ...args], outputs: [], inputs: [], cwd: REPO });
      }
    } else {
      cannot.push({ line, reason: `not an 'npx anyres' or 'npm run bench' line; the test does not know how to run it` });
    }
  }
  // Inputs nobody produces and that do not exist: the line cannot run here.
  const produced = (p: string): boolean => runs.some((r) => r.outputs.some((o) => p === o || p.startsWith(`${o}/`)));
  const runnable = runs.filter((r) => {
    const missing = r.inputs.filter((p) => !produced(p) && !fs.existsSync(path.resolve(work, p)));
    if (missing.length) cannot.push({ line: r.line, reason: `input ${missing.join(', ')} exists nowhere and no other line makes it` });
    return missing.length === 0;
  });

  const failures: string[] = [];
  for (const r of order(runnable)) {
    const t0 = Date.now();
    const shown = r.argv.slice(r.argv.indexOf(BIN) >= 0 ? r.argv.indexOf(BIN) + 1 : 3).join(' ');
    if (r.server) {
      const s = await probeServer(r.argv, work, 600_000);
      console.log(`[readme] ${s.ok ? 'ok  ' : 'FAIL'} ${((Date.now() - t0) / 1000).toFixed(1)}s  ${r.line}\n         ran: ${shown}`);
      if (!s.ok) failures.push(`${r.line}\n${s.out.slice(-3000)}`);
      continue;
    }
    const res = await spawnRun(r.argv, r.cwd ?? work, 900_000);
    const known = KNOWN_BROKEN.find((k) => r.line.startsWith(k.prefix));
    console.log(`[readme] ${res.code === 0 ? 'ok  ' : known ? 'KNOWN BROKEN' : 'FAIL'} ${((Date.now() - t0) / 1000).toFixed(1)}s  ${r.line}\n         ran: ${shown}`);
    if (known) {
      console.log(res.code === 0
        ? `[readme] NOW PASSES (remove its KNOWN_BROKEN entry): ${r.line}`
        : `         reason: ${known.reason}\n         ${res.out.trim().split('\n').pop()}`);
      continue;
    }
    if (res.code !== 0) { failures.push(`${r.line} (exit ${res.code})\n${res.out.slice(-3000)}`); continue; }
    for (const o of r.outputs) {
      const abs = path.resolve(work, o);
      const stem = abs.replace(/\.[a-z]+$/, '');
      const exists = fs.existsSync(abs) || fs.readdirSync(path.dirname(abs)).some((f) => path.join(path.dirname(abs), f).startsWith(stem));
      if (!exists) failures.push(`${r.line}: exited 0 but wrote no ${o}`);
    }
  }
  for (const c of cannot) console.log(`[readme] NOT RUN  ${c.line}\n         reason: ${c.reason}`);
  assert.deepEqual(failures, [], `README lines that fail:\n${failures.join('\n\n')}`);
  assert.deepEqual(cannot, [], 'every README line runs (add a substitution or a prepared input for a new line)');
});

test('the README block parser: the section, comments, optional groups, and subcommands', () => {
  const md = 'intro\n## The command line\n\n```bash\nnpx anyres train --res 64   # a comment\n\n# only a comment\nnpx anyres reproduce [--quick] [--data a|b]\n```\n\ntext\n\n```bash\nnpx anyres detect train --data coco:x\n```\n\n## Next\n\n```bash\nnot this\n```\n';
  const lines = commandBlock(md);
  assert.deepEqual(lines, ['npx anyres train --res 64', 'npx anyres reproduce [--quick] [--data a|b]', 'npx anyres detect train --data coco:x']);
  assert.deepEqual(expandOptional(lines[1]!), ['npx', 'anyres', 'reproduce', '--quick', '--data', 'a']);
  assert.deepEqual(subcommand(expandOptional(lines[2]!).slice(2)), ['detect', 'train']);
  assert.deepEqual(subcommand(['fixture', '../shared/fixtures/*.json']), ['fixture']);
  assert.throws(() => commandBlock('# no section'), /no '## The command line' section/);
});
