/**
 * Engine benchmark: how close does a traced transformer block get to the machine's matmul rate?
 *
 *  (1) one fp32 MatMul 2048x2048x2048 through the Runtime: the rate this machine reaches;
 *  (2) a ViT MLP block x + fc2(GELU(fc1(LN(x)))) (C=384, hidden 1536, 8x197 tokens: ViT-S/16
 *      at 224 px, batch 8) forward;
 *  (3) the same block's forward + MSE loss + backward + AdamW update as ONE compiled step, with
 *      parameters and Adam moments as inputs and their updated values as outputs (fed back).
 *
 * GFLOP/s count matmul FLOPs only (2·M·N·K per product; backward = 2x forward), so the ratios
 * (2)/(1) and (3)/(1) say how much time goes to everything that is not a big matmul.
 * Usage: npm run bench -- engine [--reps N] [--threads T]
 * Ends with one line `RESULT {...}` (JSON) for scripts.
 */
import * as F from '../src/graph/index.ts';
import { Params } from '../src/nn/params.ts';
import { layerNorm, mlp } from '../src/nn/layers.ts';
import { adamwStep } from '../src/train/adamw.ts';

interface Opts {
  reps: number;
  threads?: number;
}

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { reps: 10 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = Number(args[i + 1]);
    if (a === '--reps' && Number.isInteger(v) && v > 0) (o.reps = v), i++;
    else if (a === '--threads' && Number.isInteger(v) && v > 0) (o.threads = v), i++;
    else throw new Error(`bench engine: unknown or invalid argument '${a}' (takes --reps N, --threads T)`);
  }
  return o;
}

function randn(n: number, scale: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // xorshift32 -> uniform in [-1, 1): enough for timing inputs
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Median seconds of each task over `reps` rounds after `warmup` rounds. The tasks run interleaved
 * (one of each per round) so that load from other processes on a shared machine affects all of
 * them alike and the ratios stay meaningful.
 */
async function timeInterleaved(tasks: readonly (() => Promise<void>)[], reps: number, warmup = 2): Promise<number[]> {
  for (let i = 0; i < warmup; i++) for (const t of tasks) await t();
  const ts = tasks.map((): number[] => []);
  for (let i = 0; i < reps; i++) {
    for (const [k, t] of tasks.entries()) {
      const t0 = performance.now();
      await t();
      ts[k]!.push((performance.now() - t0) / 1000);
    }
  }
  return ts.map(median);
}

// ViT-S/16 at 224 px: 196 patches + cls token, batch 8.
const B = 8;
const N = 197;
const C = 384;
const H = 1536;
const PARAMS: [string, number[]][] = [
  ['norm.weight', [C]],
  ['norm.bias', [C]],
  ['mlp.fc1.weight', [H, C]],
  ['mlp.fc1.bias', [H]],
  ['mlp.fc2.weight', [C, H]],
  ['mlp.fc2.bias', [C]],
];

/** The block on the graph: x + fc2(GELU(fc1(LN(x)))), timm naming. */
function block(p: Params, x: F.Tensor): F.Tensor {
  return F.add(x, mlp(p, 'mlp', layerNorm(p, 'norm', x, 1e-6), C, H));
}

const forwardBuild: F.BuildFn = (i, g) => ({ y: block(new Params(g), i.x!) });

const trainBuild: F.BuildFn = (i, g) => {
  const p = new Params(g);
  const y = block(p, i.x!);
  const d = F.sub(y, i.target!);
  const loss = F.reduceMean(F.mul(d, d));
  const params = PARAMS.map(([name, shape]) => p.param(name, shape, { kind: 'zeros' }));
  const grads = F.grad(loss, params);
  const { updated } = adamwStep(
    g,
    PARAMS.map(([name], k) => ({ name, param: params[k]!, grad: grads[k]!, m: i[`m.${name}`]!, v: i[`v.${name}`]!, decay: name.endsWith('weight') && !name.startsWith('norm') })),
    i.lr!,
    i.step!,
    { weightDecay: 0.05 },
  );
  const out: Record<string, F.Tensor> = { loss };
  for (const u of updated) {
    out[`p.${u.name}`] = u.param;
    out[`m.${u.name}`] = u.m;
    out[`v.${u.name}`] = u.v;
  }
  return out;
};

export interface EngineResult {
  matmul_gflops: number;
  forward_gflops: number;
  train_gflops: number;
  forward_ratio: number;
  train_ratio: number;
}

export async function measure(opts: Opts, rt = new F.Runtime(opts.threads ? { threads: opts.threads } : {})): Promise<EngineResult> {
  // (1) matmul
  const S = 2048;
  const mm: F.BuildFn = (i) => ({ y: F.matmul(i.a!, i.b!) });
  const mmFeeds = { a: F.host(randn(S * S, 1, 1), [S, S]), b: F.host(randn(S * S, 1, 2), [S, S]) };
  const runMm = async (): Promise<void> => void (await rt.run(mm, mmFeeds));

  // (2) forward
  const x = F.host(randn(B * N * C, 1, 3), [B, N, C]);
  const paramFeeds: Record<string, F.HostTensor> = {};
  PARAMS.forEach(([name, shape], k) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name === 'norm.weight' ? new Float32Array(n).fill(1) : name.endsWith('bias') ? new Float32Array(n) : randn(n, 0.02 * Math.sqrt(3), 10 + k);
    paramFeeds[name] = F.host(data, shape);
  });
  const fwdFeeds = { x, ...paramFeeds };
  const runFwd = async (): Promise<void> => void (await rt.run(forwardBuild, fwdFeeds));

  // (3) train step, state fed back each iteration
  let state: Record<string, F.HostTensor> = { ...paramFeeds };
  for (const [name, shape] of PARAMS) {
    const n = shape.reduce((a, b) => a * b, 1);
    state[`m.${name}`] = F.host(new Float32Array(n), shape);
    state[`v.${name}`] = F.host(new Float32Array(n), shape);
  }
  const target = F.host(randn(B * N * C, 1, 4), [B, N, C]);
  const lr = F.host(Float32Array.of(1e-3), []);
  let step = 0;
  const trainOnce = async (): Promise<void> => {
    step++;
    const out = await rt.run(trainBuild, { x, target, lr, step: F.host(Float32Array.of(step), []), ...state });
    const next: Record<string, F.HostTensor> = {};
    for (const [name] of PARAMS) {
      next[name] = out[`p.${name}`]!;
      next[`m.${name}`] = out[`m.${name}`]!;
      next[`v.${name}`] = out[`v.${name}`]!;
    }
    if (!Number.isFinite(Number(out.loss!.data[0]))) throw new Error(`bench engine: train loss became ${out.loss!.data[0]} at step ${step}`);
    state = next;
  };
  const [tMm, tFwd, tTrain] = (await timeInterleaved([runMm, runFwd, trainOnce], opts.reps)) as [number, number, number];
  const matmulGflops = (2 * S ** 3) / tMm / 1e9;
  const fwdFlops = 2 * (2 * B * N * C * H);
  const forwardGflops = fwdFlops / tFwd / 1e9;
  const trainGflops = (3 * fwdFlops) / tTrain / 1e9;

  console.log(`threads ${rt.threads}`);
  console.log(`(1) matmul ${S}^3            ${(tMm * 1e3).toFixed(1).padStart(8)} ms  ${matmulGflops.toFixed(1).padStart(7)} GFLOP/s`);
  console.log(`(2) MLP block forward         ${(tFwd * 1e3).toFixed(1).padStart(8)} ms  ${forwardGflops.toFixed(1).padStart(7)} GFLOP/s  ratio ${(forwardGflops / matmulGflops).toFixed(3)}`);
  console.log(`(3) MLP block fwd+bwd+AdamW   ${(tTrain * 1e3).toFixed(1).padStart(8)} ms  ${trainGflops.toFixed(1).padStart(7)} GFLOP/s  ratio ${(trainGflops / matmulGflops).toFixed(3)}`);
  await rt.clear();
  const r = (v: number, d = 3): number => Number(v.toFixed(d));
  return {
    matmul_gflops: r(matmulGflops, 2),
    forward_gflops: r(forwardGflops, 2),
    train_gflops: r(trainGflops, 2),
    forward_ratio: r(forwardGflops / matmulGflops),
    train_ratio: r(trainGflops / matmulGflops),
  };
}

export async function run(args: readonly string[]): Promise<void> {
  const res = await measure(parseArgs(args));
  console.log(`RESULT ${JSON.stringify(res)}`);
}

export { forwardBuild, trainBuild, PARAMS, B, N, C, H };
