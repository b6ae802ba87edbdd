/**
 * The main job's small models (`anyres reproduce` default plan): where a training step's time goes
 * when the matmuls are tiny. For each configuration (hiera-mini at 64 px batch 16 as in the abs-win
 * and MAE sections, vit-mini / resformer-mini at 64 px and 64/48/40 multi-resolution batch 32 as in
 * the ResFormer section) it times, interleaved over rounds so load drift hits every part alike:
 *  - data: one batch from the experiment's loader (synthetic rendering, flip, normalise);
 *  - step: one `TrainStep.run` (feeds, ONNX run, readback of parameters and moments);
 *  - ort: the `session.run` inside it (so step − ort is host-side overhead);
 * and with `--profile` the per-op kernel time of the step (ONNX Runtime profiler) and the share of
 * matmul/conv in it.
 *
 * Without --profile it also runs the step on 1 thread, 2 spinning and 2 sleeping threads
 * (`spinning: false`), interleaved in the same rounds, and prints their ratios.
 *
 * Usage: npm run bench -- small [--rounds 20] [--threads N] [--only hiera|vit|resformer] [--profile]
 * Prints one `RESULT {json}` line per configuration.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import * as F from '../src/graph/index.ts';
import { createHiera } from '../src/models/hiera.ts';
import { createVit } from '../src/models/vit.ts';
import type { Model } from '../src/models/types.ts';
import { SyntheticDataset } from '../src/data/synthetic.ts';
import { fitInitialState, fitLoader } from '../src/eval/experiments/fit.ts';
import { plan } from '../src/eval/reproduce.ts';
import { compileTrainStep } from '../src/train/step.ts';
import type { TrainState } from '../src/train/state.ts';
import { interleaved } from './interleave.ts';

interface Opts {
  rounds: number;
  threads?: number;
  only?: string;
  profile: boolean;
}

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { rounds: 20, profile: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = (): string => {
      const x = args[++i];
      if (x === undefined) throw new Error(`bench small: ${a} needs a value`);
      return x;
    };
    if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--threads') o.threads = Number(v());
    else if (a === '--only') o.only = v();
    else if (a === '--profile') o.profile = true;
    else throw new Error(`bench small: unknown argument '${a}' (known: --rounds, --threads, --only, --profile)`);
  }
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1)) throw new Error(`bench small: --rounds must be a positive integer, got ${o.rounds}`);
  return o;
}

const MATMUL_OPS = new Set(['Gemm', 'MatMul', 'FusedMatMul', 'Conv', 'FusedConv', 'FusedGemm']);

/** A Runtime that times every session.run and optionally records ORT profiles. */
class TimingRuntime extends F.Runtime {
  ortSeconds = 0;
  readonly sessions: ort.InferenceSession[] = [];
  constructor(opts: F.RuntimeOptions, private readonly profileDir?: string) {
    super(opts);
  }
  override async session(bytes: Uint8Array): Promise<ort.InferenceSession> {
    const s = this.profileDir
      ? await ort.InferenceSession.create(bytes, {
          executionProviders: ['cpu'], intraOpNumThreads: this.threads, interOpNumThreads: 1, executionMode: 'sequential',
          graphOptimizationLevel: 'all', enableCpuMemArena: true, enableMemPattern: true, enableProfiling: true, profileFilePrefix: path.join(this.profileDir, 'ort'),
        })
      : await super.session(bytes);
    const run = s.run.bind(s) as (f: ort.InferenceSession.FeedsType) => Promise<ort.InferenceSession.ReturnType>;
    const self = this;
    (s as { run: unknown }).run = async (f: ort.InferenceSession.FeedsType) => {
      const t0 = performance.now();
      const r = await run(f);
      self.ortSeconds += (performance.now() - t0) / 1000;
      return r;
    };
    this.sessions.push(s);
    return s;
  }
}

interface Config {
  name: string;
  model: Model;
  batch: number;
  resolutions: number[];
  multires: boolean;
}

function configs(): Config[] {
  const p = plan(false);
  const h = p.abswin;
  const r = p.resformer;
  const hiera = createHiera('hiera-mini', { ...h.arch, inputSize: [h.baseRes, h.baseRes], numClasses: h.numClasses, posEmbed: 'absolute' });
  const vit = createVit(r.vitPreset, { ...r.arch, imgSize: [r.baseRes, r.baseRes], numClasses: r.numClasses });
  const resformer = createVit(r.resformerPreset, { ...r.arch, imgSize: [r.baseRes, r.baseRes], numClasses: r.numClasses });
  return [
    { name: 'hiera', model: hiera, batch: h.train.batch, resolutions: [h.baseRes], multires: false },
    { name: 'vit', model: vit, batch: r.train.batch, resolutions: [r.baseRes], multires: false },
    { name: 'resformer', model: resformer, batch: r.train.batch, resolutions: r.multiRes, multires: true },
  ];
}

export async function run(args: readonly string[]): Promise<void> {
  const o = parseArgs(args);
  const ds = new SyntheticDataset({ seed: 1, split: 'train', size: 2000 });
  for (const c of configs()) {
    if (o.only && o.only !== c.name) continue;
    const dir = o.profile ? fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-small-')) : undefined;
    try {
      const rt = new TimingRuntime(o.threads ? { threads: o.threads } : {}, dir);
      // Thread variants (not with --profile): the same step on 1 thread, 2 spinning threads, 2 sleeping threads.
      const others = o.profile ? [] : [
        { name: 'step_1thread', rt: new TimingRuntime({ threads: 1 }) },
        { name: 'step_2threads', rt: new TimingRuntime({ threads: 2 }) },
        { name: 'step_2threads_nospin', rt: new TimingRuntime({ threads: 2, spinning: false }) },
      ];
      const res = [...c.resolutions].sort((a, b) => b - a);
      const mkStep = (r: F.Runtime) => compileTrainStep(r, c.model, {
        batch: c.batch,
        ...(c.multires ? { resolutions: res, multires: { alpha: 1 } } : { res: res[0] }),
        labelSmoothing: 0.1,
        optimizer: { weightDecay: 0.05 },
      });
      const loader = fitLoader(ds, { seed: 0, batch: c.batch, resolutions: res });
      const batch = await loader.batch(0, 0);
      let k = 1;
      const ortTimes = new Map<string, number[]>();
      // Each step variant trains its own state from the same start (same batch, same lr).
      const stepVariant = (name: string, r: TimingRuntime) => {
        const step = mkStep(r);
        let state: TrainState = fitInitialState(c.model, 0);
        ortTimes.set(name, []);
        return {
          name,
          run: async () => {
            const ort0 = r.ortSeconds;
            const c0 = process.cpuUsage();
            const out = await step.run(state, { x: batch.batches.map((b) => b.x), labels: batch.batches[0]!.labels, lr: 1e-4 });
            state = out.state;
            ortTimes.get(name)!.push(r.ortSeconds - ort0);
            const c1 = process.cpuUsage(c0);
            cpuTimes.set(name, [...(cpuTimes.get(name) ?? []), (c1.user + c1.system) / 1e6]);
            losses.set(name, [...(losses.get(name) ?? []), out.loss]);
          },
        };
      };
      const losses = new Map<string, number[]>();
      const cpuTimes = new Map<string, number[]>();
      const variants = [
        { name: 'data', run: async () => void (await loader.batch(0, k++ % loader.stepsPerEpoch)) },
        stepVariant('step', rt),
        ...others.map((v) => stepVariant(v.name, v.rt)),
      ];
      const t = await interleaved(variants, o.rounds);
      const med = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
      const stepS = t.get('step')!.median;
      const ortS = med(ortTimes.get('step')!.slice(1));
      const rec: Record<string, unknown> = {
        config: c.name, res: c.resolutions, batch: c.batch, threads: rt.threads,
        params: [...c.model.paramInfos().values()].reduce((s, i) => s + i.shape.reduce((a, b) => a * b, 1), 0),
        step_ms: +(1000 * stepS).toFixed(2), ort_ms: +(1000 * ortS).toFixed(2), host_ms: +(1000 * (stepS - ortS)).toFixed(2),
        data_ms: +(1000 * t.get('data')!.median).toFixed(2),
        step_cpu_ms: +(1000 * med(cpuTimes.get('step')!.slice(1))).toFixed(2),
      };
      for (const v of others) {
        const tv = t.get(v.name)!.median;
        rec[`${v.name}_ms`] = +(1000 * tv).toFixed(2);
        rec[`${v.name}_cpu_ms`] = +(1000 * med(cpuTimes.get(v.name)!.slice(1))).toFixed(2);
      }
      if (others.length) {
        rec.speedup_1thread_vs_2threads = +(t.get('step_2threads')!.median / t.get('step_1thread')!.median).toFixed(3);
        rec.speedup_nospin_vs_spin = +(t.get('step_2threads')!.median / t.get('step_2threads_nospin')!.median).toFixed(3);
        const ref = losses.get('step')!;
        rec.max_loss_diff_across_threads = Math.max(...others.flatMap((v) => losses.get(v.name)!.map((x, i) => Math.abs(x - ref[i]!))));
      }
      if (dir) {
        rt.sessions[0]!.endProfiling();
        const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
        if (!file) throw new Error(`bench small: ONNX Runtime wrote no profile into ${dir}`);
        const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
        const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length;
        const byOp = new Map<string, { us: number; nodes: number }>();
        let total = 0;
        let runUs = 0;
        for (const e of events) {
          if (e.cat === 'Session' && e.name === 'model_run') runUs += e.dur;
          if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
          const op = e.args?.op_name ?? '?';
          const a = byOp.get(op) ?? { us: 0, nodes: 0 };
          a.us += e.dur;
          a.nodes++;
          byOp.set(op, a);
          total += e.dur;
        }
        const rows = [...byOp].sort((p, q) => q[1].us - p[1].us);
        const mm = rows.filter(([op]) => MATMUL_OPS.has(op)).reduce((s, [, a]) => s + a.us, 0);
        rec.nodes = Math.round(rows.reduce((s, [, a]) => s + a.nodes, 0) / runs);
        rec.kernel_share_of_run = +(total / runUs).toFixed(3);
        rec.matmul_conv_share = +(mm / total).toFixed(3);
        rec.top = rows.slice(0, 10).map(([op, a]) => ({ op, share: +(a.us / total).toFixed(3), nodes: Math.round(a.nodes / runs) }));
      }
      console.log(`RESULT ${JSON.stringify(rec)}`);
    } finally {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
