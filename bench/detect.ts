/**
 * Detection throughput: one compiled FCOS train step (backbone + neck + head + FCOS loss +
 * backward + AdamW in one ONNX run) and inference (forward + host decode/NMS) for a small
 * ViTDet and a small HieraDet detector, with the host-side target assignment time per batch and
 * the fraction of this machine's matmul rate the train step reaches (FLOPs counted from the traced
 * forward graph; a train step is counted as 3× the forward).
 *
 * Usage: npm run bench -- detect [--size 128] [--batch 8] [--steps 5] [--threads N] [--convs 2]
 * Prints one `RESULT {json}` line per detector.
 */
import * as F from '../src/graph/index.ts';
import { Params } from '../src/nn/params.ts';
import { matmulRate } from './matmul-rate.ts';
import { type CreateDetectorOptions, createDetector } from '../src/det/detector.ts';
import { detTrainStep } from '../src/det/train-step.ts';
import { predictDetections } from '../src/det/predict.ts';
import { fcosTargets } from '../src/det/fcos-targets.ts';
import { stateFromParams } from '../src/train/state.ts';
import { Rng } from '../src/util/rng.ts';
import type { DetObject } from '../src/det/types.ts';

interface Opts { size: number; batch: number; steps: number; threads?: number; convs: number }

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { size: 128, batch: 8, steps: 5, convs: 2 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = (): number => {
      const x = Number(args[++i]);
      if (!Number.isFinite(x) || x < 1) throw new Error(`bench detect: ${a} needs a positive number`);
      return x;
    };
    if (a === '--size') o.size = v();
    else if (a === '--batch') o.batch = v();
    else if (a === '--steps') o.steps = v();
    else if (a === '--threads') o.threads = v();
    else if (a === '--convs') o.convs = v();
    else throw new Error(`bench detect: unknown argument '${a}' (known: --size, --batch, --steps, --threads, --convs)`);
  }
  return o;
}

const detectors = (convs: number): [string, CreateDetectorOptions][] => [
  ['vitdet-mini+fcos', { backbone: { family: 'vitdet', config: 'vitdet-mini' }, numClasses: 5, head: { numConvs: convs } }],
  ['hieradet-mini+fcos', { backbone: { family: 'hieradet', config: 'hieradet-mini' }, numClasses: 5, neck: { dim: 32 }, head: { numConvs: convs } }],
];

/** A batch of random boxes (1-6 per image) of random labels. */
function randomObjects(r: Rng, B: number, S: number): DetObject[][] {
  return Array.from({ length: B }, () => Array.from({ length: 1 + Math.floor(r.next() * 6) }, () => {
    const w = S * (0.08 + 0.4 * r.next());
    const h = S * (0.08 + 0.4 * r.next());
    const x0 = r.next() * (S - w);
    const y0 = r.next() * (S - h);
    return { label: Math.floor(r.next() * 5), box: [x0, y0, x0 + w, y0 + h] as [number, number, number, number] };
  }));
}

export async function run(args: readonly string[]): Promise<void> {
  const o = parseArgs(args);
  const rt = new F.Runtime(o.threads ? { threads: o.threads } : {});
  const S = o.size;
  const B = o.batch;
  for (const [name, spec] of detectors(o.convs)) {
    const det = createDetector(spec);
    const mm = await matmulRate(rt, 1024, 10);
    const g = new F.Graph();
    const fwd = F.countFlops(det.forward(new Params(g), g.input('x', [1, 3, S, S])).flatMap((l) => [l.cls, l.reg, l.ctr]));
    const r = new Rng(0);
    const x = Float32Array.from({ length: B * 3 * S * S }, () => r.normal());
    const objects = randomObjects(r, B, S);
    const step = detTrainStep(rt, det, { batch: B, size: [S, S] });
    let state = stateFromParams(det.init(0));
    state = (await step.run(state, { x, objects, lr: 1e-4 })).state; // compile + warm-up
    let t0 = performance.now();
    for (let k = 0; k < o.steps; k++) state = (await step.run(state, { x, objects, lr: 1e-4 })).state;
    const stepSec = (performance.now() - t0) / 1000 / o.steps;
    t0 = performance.now();
    for (let k = 0; k < 20; k++) fcosTargets(objects, step.levels, 5);
    const targetMs = (performance.now() - t0) / 20;
    const images = Array.from({ length: B }, (_, b) => ({ data: x.subarray(b * 3 * S * S, (b + 1) * 3 * S * S).map((v) => 0.5 + 0.2 * v), channels: 3, height: S, width: S }));
    await predictDetections(rt, det, state.params, images, [S, S], { batch: B });
    t0 = performance.now();
    for (let k = 0; k < o.steps; k++) await predictDetections(rt, det, state.params, images, [S, S], { batch: B });
    const inferSec = (performance.now() - t0) / 1000 / o.steps;
    const res = {
      detector: name, size: S, batch: B, head_convs: o.convs, threads: rt.threads,
      train_img_s: Number((B / stepSec).toFixed(2)), infer_img_s: Number((B / inferSec).toFixed(2)),
      targets_ms_per_batch: Number(targetMs.toFixed(3)), gflop_per_img_fwd: Number((fwd / 1e9).toFixed(3)),
      matmul_gflops: Number(mm.toFixed(2)), train_ratio: Number(((3 * fwd * B) / stepSec / 1e9 / mm).toFixed(3)),
    };
    console.log(`detect ${name} ${S} px batch ${B}: train ${res.train_img_s} img/s (${res.train_ratio} of matmul ${res.matmul_gflops} GFLOP/s), inference ${res.infer_img_s} img/s, targets ${res.targets_ms_per_batch} ms/batch`);
    console.log(`RESULT ${JSON.stringify(res)}`);
  }
}
