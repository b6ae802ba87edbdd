/**
 * Training throughput: img/s of one compiled train step (forward + loss + backward + AdamW in
 * one ONNX run) for ViT-Ti/16 at 224 px, batch 32, and of a ResFormer-style multi-resolution step
 * (224/160/128 of the same images in one graph), each with the fraction of the same run's matmul
 * rate it reaches.
 *
 * FLOPs count the matmul/conv work analytically (2·MACs; backward = 2× forward, so a train step is
 * 3× the forward), the same convention as bench/engine.ts, so `train_ratio` says how much time goes
 * to everything that is not a big matmul.
 *
 * Usage: npm run bench -- train [--model vit-tiny] [--batch 32] [--steps 3] [--threads N] [--single-only]
 * Prints one `RESULT {json}` line per configuration.
 */
import * as F from '../src/graph/index.ts';
import { matmulRate } from './matmul-rate.ts';
import { createVit, type VitConfig } from '../src/models/vit.ts';
import { compileTrainStep } from '../src/train/step.ts';
import { initState } from '../src/train/state.ts';
import { Rng } from '../src/util/rng.ts';

interface Opts {
  model: string;
  batch: number;
  steps: number;
  threads?: number;
  singleOnly: boolean;
}

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { model: 'vit-tiny', batch: 32, steps: 3, singleOnly: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = (): string => {
      const x = args[++i];
      if (x === undefined) throw new Error(`bench train: ${a} needs a value`);
      return x;
    };
    if (a === '--model') o.model = v();
    else if (a === '--batch') o.batch = Number(v());
    else if (a === '--steps') o.steps = Number(v());
    else if (a === '--threads') o.threads = Number(v());
    else if (a === '--single-only') o.singleOnly = true;
    else throw new Error(`bench train: unknown argument '${a}' (known: --model, --batch, --steps, --threads, --single-only)`);
  }
  if (!(o.batch >= 1 && o.steps >= 1)) throw new Error(`bench train: --batch and --steps must be >= 1`);
  return o;
}

/** Forward matmul FLOPs of a ViT on one H×W image (patch conv, qkv/proj/MLP, attention, head). */
export function vitForwardFlops(cfg: VitConfig, H: number, W: number): number {
  const N = (H / cfg.patchSize) * (W / cfg.patchSize) + (cfg.classToken ? 1 : 0);
  const C = cfg.embedDim;
  const hidden = Math.floor(C * cfg.mlpRatio);
  const patch = (N - 1) * C * cfg.inChans * cfg.patchSize ** 2;
  const perBlock = N * (4 * C * C + 2 * C * hidden) + 2 * N * N * C; // qkv+proj, fc1+fc2, q·k and attn·v
  return 2 * (patch + cfg.depth * perBlock + C * cfg.numClasses);
}

async function measureStep(rt: F.Runtime, o: Opts, resolutions: number[]): Promise<{ imgS: number; gflops: number; matmul: number }> {
  const model = createVit(o.model, { numClasses: 1000 });
  const step = compileTrainStep(rt, model, resolutions.length > 1 ? { batch: o.batch, resolutions, multires: { alpha: 1 } } : { batch: o.batch, res: resolutions[0] });
  let state = initState(model.paramInfos(), new Rng(0));
  const r = new Rng(1);
  const x = resolutions.map((res) => Float32Array.from({ length: o.batch * 3 * res * res }, () => r.normal()));
  const labels = Array.from({ length: o.batch }, (_, i) => i % 1000);
  state = (await step.run(state, { x, labels, lr: 1e-4 })).state; // compile + warm-up
  // The matmul yardstick is measured between the steps (on a shared machine the load drifts).
  const stepTimes: number[] = [];
  const rates: number[] = [];
  for (let k = 0; k < o.steps; k++) {
    rates.push(await matmulRate(rt, 1024, 3));
    const t0 = performance.now();
    state = (await step.run(state, { x, labels, lr: 1e-4 })).state;
    stepTimes.push((performance.now() - t0) / 1000);
  }
  rates.push(await matmulRate(rt, 1024, 3));
  const med = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const sec = med(stepTimes);
  const flops = 3 * o.batch * resolutions.reduce((s, res) => s + vitForwardFlops(model.config, res, res), 0);
  return { imgS: o.batch / sec, gflops: flops / sec / 1e9, matmul: med(rates) };
}

export async function run(args: readonly string[]): Promise<void> {
  const o = parseArgs(args);
  const rt = new F.Runtime(o.threads ? { threads: o.threads } : {});
  const configs = o.singleOnly ? [[224]] : [[224], [224, 160, 128]];
  for (const resolutions of configs) {
    const s = await measureStep(rt, o, resolutions);
    const mm = s.matmul; // median of the rates measured between the steps
    const res = {
      model: o.model,
      res: resolutions.length > 1 ? resolutions : resolutions[0],
      batch: o.batch,
      threads: rt.threads,
      train_img_s: Number(s.imgS.toFixed(2)),
      train_gflops: Number(s.gflops.toFixed(2)),
      matmul_gflops: Number(mm.toFixed(2)),
      train_ratio: Number((s.gflops / mm).toFixed(3)),
    };
    console.log(`train ${o.model} ${resolutions.join('/')} px batch ${o.batch}: ${res.train_img_s} img/s, ${res.train_gflops} GFLOP/s = ${res.train_ratio} of matmul ${res.matmul_gflops} GFLOP/s`);
    console.log(`RESULT ${JSON.stringify(res)}`);
  }
}
