/**
 * Model throughput: for ViT-Ti/16 and Hiera-T at 224 px, batch 8, forward img/s, training-step
 * img/s (forward + loss + backward + AdamW in one ONNX run), GFLOP per image (counted from the
 * traced graph's matmuls and convolutions) and the fraction of the same run's matmul rate; then
 * ViTDet-B at 512 px: ms per image with relative position embeddings in every block versus
 * absolute win with relpos only in the global blocks (Bolya et al. 2024, Table 3: 97 vs 68 ms
 * for ViT-L at 1024 px on an A100).
 *
 * Usage: npm run bench -- models [--batch 8] [--steps 5] [--vitdet-res 512] [--skip-vitdet]
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
import { msPerImage } from '../src/eval/experiments/speed.ts';
import { vitdetSpeedConfigs } from '../src/models/vitdet.ts';

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
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--batch') batch = Number(args[++i]);
    else if (a === '--steps') steps = Number(args[++i]);
    else if (a === '--vitdet-res') vitdetRes = Number(args[++i]);
    else if (a === '--skip-vitdet') skipVitdet = true;
    else throw new Error(`bench models: unknown argument '${a}' (known: --batch, --steps, --vitdet-res, --skip-vitdet)`);
  }
  const rt = new F.Runtime();
  const res = 224;
  const mm = await matmulRate(rt);
  console.log(`matmul 2048^3: ${mm.toFixed(1)} GFLOP/s (${rt.threads} threads)`);
  for (const preset of ['vit-tiny', 'hiera-tiny']) {
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
  if (!skipVitdet) {
    const pair = vitdetSpeedConfigs('vitdet-b', vitdetRes);
    const a: number[] = [];
    const b: number[] = [];
    for (let k = 0; k < 2; k++) {
      a.push(await msPerImage(rt, pair.baseline, vitdetRes, 1, 3));
      b.push(await msPerImage(rt, pair.abswin, vitdetRes, 1, 3));
    }
    const ms1 = Math.min(...a);
    const ms2 = Math.min(...b);
    console.log(`vitdet-b @${vitdetRes}: relpos in every block ${ms1.toFixed(0)} ms/img, abs-win + relpos in global blocks ${ms2.toFixed(0)} ms/img: x${(ms1 / ms2).toFixed(2)}`);
    console.log(`RESULT ${JSON.stringify({ model: 'vitdet-b', res: vitdetRes, batch: 1, ms_relpos_all: +ms1.toFixed(1), ms_abswin: +ms2.toFixed(1), speedup: +(ms1 / ms2).toFixed(3) })}`);
  }
}
