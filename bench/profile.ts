/**
 * Where a training step's time goes: ONNX Runtime's profiler (`enableProfiling`) on one compiled
 * train step (forward + loss + backward + AdamW), kernel time summed per op type over the timed
 * steps, and the share of matrix products and convolutions (Gemm, MatMul, FusedMatMul, Conv) in
 * it: the rest is elementwise work, reductions, copies and per-kernel overhead.
 *
 * Usage: npm run bench -- profile [--model vit-tiny] [--batch 32] [--res 224] [--steps 3] [--threads 2] [--top 15]
 * Prints the table and one `RESULT {json}` line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import * as F from '../src/graph/index.ts';
import { createModel } from '../src/models/registry.ts';
import { compileTrainStep } from '../src/train/step.ts';
import { initState } from '../src/train/state.ts';
import { Rng } from '../src/util/rng.ts';

interface Opts {
  model: string;
  batch: number;
  res: number;
  steps: number;
  threads: number;
  top: number;
}

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { model: 'vit-tiny', batch: 32, res: 224, steps: 3, threads: 2, top: 15 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[++i];
    if (v === undefined) throw new Error(`bench profile: ${a} needs a value`);
    if (a === '--model') o.model = v;
    else if (a === '--batch' || a === '--res' || a === '--steps' || a === '--threads' || a === '--top') {
      const n = Number(v);
      if (!(Number.isInteger(n) && n >= 1)) throw new Error(`bench profile: ${a} needs a positive integer, got '${v}'`);
      o[a.slice(2) as 'batch' | 'res' | 'steps' | 'threads' | 'top'] = n;
    } else throw new Error(`bench profile: unknown argument '${a}' (known: --model, --batch, --res, --steps, --threads, --top)`);
  }
  return o;
}

const MATMUL_OPS = new Set(['Gemm', 'MatMul', 'FusedMatMul', 'Conv', 'FusedConv', 'FusedGemm']);

/** A Runtime whose sessions record ORT profiles into `dir`. */
class ProfilingRuntime extends F.Runtime {
  readonly sessions: ort.InferenceSession[] = [];
  constructor(private readonly dir: string, threads: number) {
    super({ threads });
  }
  override async session(bytes: Uint8Array): Promise<ort.InferenceSession> {
    const s = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'], intraOpNumThreads: this.threads, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all', enableCpuMemArena: true, enableMemPattern: true, enableProfiling: true, profileFilePrefix: path.join(this.dir, 'ort'),
    });
    this.sessions.push(s);
    return s;
  }
}

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

export async function run(args: readonly string[]): Promise<void> {
  const o = parseArgs(args);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-profile-'));
  try {
    const rt = new ProfilingRuntime(dir, o.threads);
    const model = createModel(o.model);
    const step = compileTrainStep(rt, model, { batch: o.batch, res: o.res });
    let state = initState(model.paramInfos(), new Rng(0));
    const r = new Rng(1);
    const x = Float32Array.from({ length: o.batch * 3 * o.res * o.res }, () => r.normal());
    const labels = Array.from({ length: o.batch }, (_, i) => i % 10);
    for (let k = 0; k < o.steps + 1; k++) state = (await step.run(state, { x: [x], labels, lr: 1e-5 })).state;
    rt.sessions[0]!.endProfiling();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`bench profile: ONNX Runtime wrote no profile into ${dir}`);
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as ProfileEvent[];
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length;
    const byOp = new Map<string, { us: number; nodes: number }>();
    let total = 0;
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const op = e.args?.op_name ?? '?';
      const a = byOp.get(op) ?? { us: 0, nodes: 0 };
      a.us += e.dur;
      a.nodes++;
      byOp.set(op, a);
      total += e.dur;
    }
    // Includes the warm-up run: per-op shares, not absolute times, are the point.
    const perRun = (us: number): number => us / runs / 1000;
    const rows = [...byOp].sort((p, q) => q[1].us - p[1].us);
    console.log(`${o.model} @${o.res} batch ${o.batch}, ${runs} runs: kernel time ${perRun(total).toFixed(1)} ms per step`);
    for (const [op, a] of rows.slice(0, o.top)) {
      console.log(`  ${op.padEnd(22)} ${perRun(a.us).toFixed(1).padStart(9)} ms ${((100 * a.us) / total).toFixed(1).padStart(5)} %  ${Math.round(a.nodes / runs)} nodes`);
    }
    const mm = rows.filter(([op]) => MATMUL_OPS.has(op)).reduce((s, [, a]) => s + a.us, 0);
    const rec = {
      model: o.model, res: o.res, batch: o.batch, threads: o.threads, runs,
      kernel_ms_per_step: +perRun(total).toFixed(1),
      matmul_conv_share: +(mm / total).toFixed(3),
      top: rows.slice(0, 8).map(([op, a]) => ({ op, share: +(a.us / total).toFixed(3), nodes: Math.round(a.nodes / runs) })),
    };
    console.log(`matmul/conv ${(100 * rec.matmul_conv_share).toFixed(1)} % of kernel time, the rest ${(100 * (1 - rec.matmul_conv_share)).toFixed(1)} %`);
    console.log(`RESULT ${JSON.stringify(rec)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
