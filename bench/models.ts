/**
 * Model throughput: for ViT-Ti/16 and Hiera-T at 224 px, batch 8, forward img/s, training-step
 * img/s (forward + loss + backward + AdamW in one ONNX run), GFLOP per image (counted from the
 * traced graph's matmuls and convolutions) and the fraction of the same run's matmul rate; then
 * ViTDet-B at 512 px: ms per image with relative position embeddings in every block versus
 * absolute win with relpos only in the global blocks (Bolya et al. 2024, Table 3: 97 vs 68 ms
 * for ViT-L at 1024 px on an A100).
 *
 * Usage: npm run bench -- models [--batch 8] [--steps 5] [--vitdet-res 512] [--vitdet-rounds 2] [--vitdet-reps 3] [--attention fused|explicit] [--skip-vitdet | --only-vitdet]
 * Prints one `RESULT {json}` line per measurement.
 */
import * as F from '../src/graph/index.ts';
import { matmulRate } from './matmul-rate.ts';
import { createModel } from '../src/models/registry.ts';
import type { Model } from '../src/models/types.ts';
import { Params } from '../src/nn/params.ts';
import { compileEval, compileTrainStep } from '../src/train/step.ts';
import { initState } from '../src/train/state.ts';
import { Rng } from '../src/util/rng.ts';
import { execFileSync } from 'node:child_process';
import { createVitDet, vitdetSpeedConfigs } from '../src/models/vitdet.ts';
import { interleaved } from './interleave.ts';
import { fileURLToPath } from 'node:url';

function forwardFlopsPerImage(model: Model, res: number): number {
  const g = new F.Graph();
  const x = g.input('x', [1, 3, res, res]);
  const out = model.forward(new Params(g), x);
  return F.countFlops([out.logits]);
}

async function median(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const t: number[] = [];
  for (let k = 0; k < reps; k++) {
    const t0 = performance.now();
    await fn();
    t.push((performance.now() - t0) / 1000);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

export async function run(args: readonly string[]): Promise<void> {
  let batch = 8;
  let steps = 5;
  let vitdetRes = 512;
  let skipVitdet = false;
  let onlyVitdet = false;
  let vitdetRounds = 2;
  let vitdetReps = 3;
  let attention: F.AttentionForm = 'fused';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--batch') batch = Number(args[++i]);
    else if (a === '--steps') steps = Number(args[++i]);
    else if (a === '--vitdet-res') vitdetRes = Number(args[++i]);
    else if (a === '--skip-vitdet') skipVitdet = true;
    else if (a === '--only-vitdet') onlyVitdet = true;
    else if (a === '--vitdet-rounds') vitdetRounds = Number(args[++i]);
    else if (a === '--vitdet-reps') vitdetReps = Number(args[++i]);
    else if (a === '--attention') {
      const f = args[++i];
      if (f !== 'fused' && f !== 'explicit') throw new Error(`bench models: --attention takes fused or explicit, got '${f}'`);
      attention = f;
    } else throw new Error(`bench models: unknown argument '${a}' (known: --batch, --steps, --vitdet-res, --vitdet-rounds, --vitdet-reps, --attention, --skip-vitdet, --only-vitdet)`);
  }
  const rt = new F.Runtime();
  const res = 224;
  const mm = await matmulRate(rt);
  console.log(`matmul 2048^3: ${mm.toFixed(1)} GFLOP/s (${rt.threads} threads)`);
  for (const preset of onlyVitdet ? [] : ['vit-tiny', 'hiera-tiny']) {
    const model = createModel(preset);
    const gflop = forwardFlopsPerImage(model, res) / 1e9;
    const params = initState(model.paramInfos(), new Rng(0)).params;
    const r = new Rng(1);
    const x = Float32Array.from({ length: batch * 3 * res * res }, () => r.normal());
    const ev = compileEval(rt, model, { batch, res });
    const tf = await median(async () => void (await ev.run(params, x)), steps);
    const step = compileTrainStep(rt, model, { batch, res });
    let state = initState(model.paramInfos(), new Rng(0));
    const labels = Array.from({ length: batch }, (_, i) => i % 1000);
    const tt = await median(async () => {
      state = (await step.run(state, { x: [x], labels, lr: 1e-5 })).state;
    }, steps);
    const fwdImgS = batch / tf;
    const trainImgS = batch / tt;
    const fwdGflops = (gflop * batch) / tf;
    const rec = {
      model: preset,
      res,
      batch,
      forward_img_s: +fwdImgS.toFixed(2),
      train_img_s: +trainImgS.toFixed(2),
      gflop_per_img: +gflop.toFixed(3),
      forward_ratio: +(fwdGflops / mm).toFixed(3),
      train_ratio: +((3 * gflop * batch) / tt / mm).toFixed(3),
    };
    console.log(`${preset} @${res} batch ${batch}: forward ${fwdImgS.toFixed(1)} img/s (${fwdGflops.toFixed(1)} GFLOP/s, ${rec.forward_ratio} of matmul), training ${trainImgS.toFixed(1)} img/s, ${gflop.toFixed(2)} GFLOP/img`);
    console.log(`RESULT ${JSON.stringify(rec)}`);
  }
  if (!skipVitdet) await vitdetSpeed('vitdet-b', vitdetRes, vitdetRounds, vitdetReps, rt.threads, attention);
}

interface ChildResult {
  ms: number;
  max_rss_mib: number;
  kernels: { fused: number; fused_bias: number; explicit_softmax: number };
}

/** `fused` MultiHeadAttention nodes, `fused_bias` ones with an attention_bias input, explicit softmaxes. */
function describeKernels(k: ChildResult['kernels']): string {
  const parts: string[] = [];
  if (k.fused) parts.push(`${k.fused}x MultiHeadAttention`);
  if (k.fused_bias) parts.push(`${k.fused_bias}x MultiHeadAttention+attention_bias`);
  if (k.explicit_softmax) parts.push(`${k.explicit_softmax}x explicit matmul-softmax-matmul`);
  return parts.join(', ');
}

/**
 * ViTDet relpos in every block (interpolated abs embedding, ViTDet's recipe) vs absolute win with
 * relpos only in the global blocks (Bolya et al. 2024, Tab. 17: 1.43x for ViT-L at 1024 px on an
 * A100), batch 1. Time: both compiled in this process and run alternately for `rounds` rounds of
 * `reps` runs (medians), so load drifting on a shared machine hits both alike. Peak RSS: each
 * variant once more in a fresh process (bench/speed-child.ts), so that the peak is its own.
 */
async function vitdetSpeed(preset: string, res: number, rounds: number, reps: number, threads: number, attention: F.AttentionForm): Promise<void> {
  const rtV = new F.Runtime({ threads, attention });
  const pair = vitdetSpeedConfigs(preset, res);
  const variants = (['baseline', 'abswin'] as const).map((name) => {
    const model = createVitDet(pair[name]);
    const ev = compileEval(rtV, model, { batch: 1, res });
    const params = initState(model.paramInfos(), new Rng(1)).params;
    const x = new Float32Array(3 * res * res).map((_, i) => Math.sin(i * 0.37));
    return { name, run: async () => void (await ev.run(params, x)) };
  });
  const t = await interleaved(variants, rounds * reps, console.log);
  await rtV.clear();
  const child = fileURLToPath(new URL('./speed-child.ts', import.meta.url));
  const runs: Record<string, ChildResult[]> = { baseline: [], abswin: [] };
  for (const variant of ['baseline', 'abswin'] as const) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', child, preset, variant, String(res), '1', String(threads), attention], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const rec = JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
    runs[variant]!.push(rec);
    console.log(`  ${variant} in its own process: peak RSS ${rec.max_rss_mib} MiB`);
  }
  const med = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const [a, b] = [runs.baseline!, runs.abswin!];
  const ms1 = t.get('baseline')!.median * 1000;
  const ms2 = t.get('abswin')!.median * 1000;
  const rss1 = med(a.map((x) => x.max_rss_mib));
  const rss2 = med(b.map((x) => x.max_rss_mib));
  const k1 = describeKernels(a[0]!.kernels);
  const k2 = describeKernels(b[0]!.kernels);
  console.log(`${preset} @${res}: relpos in every block ${ms1.toFixed(0)} ms/img, ${rss1} MiB [${k1}]; abs-win + relpos in global blocks ${ms2.toFixed(0)} ms/img, ${rss2} MiB [${k2}]: x${(ms1 / ms2).toFixed(2)}`);
  console.log(`RESULT ${JSON.stringify({
    model: preset, res, batch: 1, threads, rounds, reps,
    ms_relpos_all: +ms1.toFixed(1), ms_abswin: +ms2.toFixed(1), speedup: +(ms1 / ms2).toFixed(3),
    rss_mib_relpos_all: rss1, rss_mib_abswin: rss2,
    kernels_relpos_all: k1, kernels_abswin: k2,
  })}`);
}
