/**
 * Fused vs explicit attention (src/graph/ops/attention.ts): the same models traced with
 * `attention: 'fused'` (one com.microsoft MultiHeadAttention node per block; relpos blocks pass
 * their bias as `attention_bias`) and `attention: 'explicit'` (matmul, softmax, matmul), timed
 * interleaved in one process:
 *  - ViT-Ti/16 at 224, forward (batch --batch) and a training step (batch --train-batch; the
 *    fused form's backward recomputes the probabilities, see the op's VJP);
 *  - ViTDet-B at --vitdet-res, batch 1, forward: absolute win (window blocks without relpos,
 *    relpos in the 4 global blocks) and relpos in every block.
 *
 * Usage: npm run bench -- attention [--batch 8] [--train-batch 32] [--rounds 5] [--vitdet-res 512] [--threads N] [--skip-train] [--skip-vitdet]
 * Prints one `RESULT {json}` line per comparison with both medians and the ratio explicit/fused.
 */
import * as F from '../src/graph/index.ts';
import { createModel } from '../src/models/registry.ts';
import type { Model } from '../src/models/types.ts';
import { createVitDet, vitdetSpeedConfigs } from '../src/models/vitdet.ts';
import { compileEval, compileTrainStep } from '../src/train/step.ts';
import { initState } from '../src/train/state.ts';
import { Rng } from '../src/util/rng.ts';
import { type Variant, interleaved } from './interleave.ts';

interface Opts {
  batch: number;
  trainBatch: number;
  rounds: number;
  vitdetRes: number;
  threads?: number;
  skipTrain: boolean;
  skipVitdet: boolean;
}

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { batch: 8, trainBatch: 32, rounds: 5, vitdetRes: 512, skipTrain: false, skipVitdet: false };
  const known = '--batch, --train-batch, --rounds, --vitdet-res, --threads, --skip-train, --skip-vitdet';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const num = (): number => {
      const v = Number(args[++i]);
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`bench attention: ${a} needs a positive integer, got '${args[i]}'`);
      return v;
    };
    if (a === '--batch') o.batch = num();
    else if (a === '--train-batch') o.trainBatch = num();
    else if (a === '--rounds') o.rounds = num();
    else if (a === '--vitdet-res') o.vitdetRes = num();
    else if (a === '--threads') o.threads = num();
    else if (a === '--skip-train') o.skipTrain = true;
    else if (a === '--skip-vitdet') o.skipVitdet = true;
    else throw new Error(`bench attention: unknown argument '${a}' (known: ${known})`);
  }
  return o;
}

const forms = ['fused', 'explicit'] as const;

function forwardVariant(rt: F.Runtime, name: string, model: Model, batch: number, res: number): Variant {
  const ev = compileEval(rt, model, { batch, res });
  const params = initState(model.paramInfos(), new Rng(0)).params;
  const r = new Rng(1);
  const x = Float32Array.from({ length: batch * 3 * res * res }, () => r.normal());
  return { name, run: async () => void (await ev.run(params, x)) };
}

function trainVariant(rt: F.Runtime, name: string, model: Model, batch: number, res: number): Variant {
  const step = compileTrainStep(rt, model, { batch, res });
  let state = initState(model.paramInfos(), new Rng(0));
  const r = new Rng(1);
  const x = Float32Array.from({ length: batch * 3 * res * res }, () => r.normal());
  const labels = Array.from({ length: batch }, (_, i) => i % 1000);
  return { name, run: async () => void (state = (await step.run(state, { x: [x], labels, lr: 1e-5 })).state) };
}

async function compare(title: Record<string, unknown>, make: (rt: F.Runtime, form: string) => Variant, rts: Record<string, F.Runtime>, rounds: number, perImage: number): Promise<void> {
  const t = await interleaved(forms.map((f) => make(rts[f]!, f)), rounds, console.log);
  const fused = t.get('fused')!.median;
  const explicit = t.get('explicit')!.median;
  const rec = { ...title, ms_fused: +((fused * 1000) / perImage).toFixed(2), ms_explicit: +((explicit * 1000) / perImage).toFixed(2), explicit_over_fused: +(explicit / fused).toFixed(3), rounds };
  console.log(`${JSON.stringify(title)}: fused ${rec.ms_fused} ms/img, explicit ${rec.ms_explicit} ms/img (explicit/fused x${rec.explicit_over_fused})`);
  console.log(`RESULT ${JSON.stringify(rec)}`);
}

export async function run(args: readonly string[]): Promise<void> {
  const o = parseArgs(args);
  const threads = o.threads ? { threads: o.threads } : {};
  const rts: Record<string, F.Runtime> = { fused: new F.Runtime({ ...threads, attention: 'fused', trainingAttention: 'fused' }), explicit: new F.Runtime({ ...threads, attention: 'explicit', trainingAttention: 'explicit' }) };
  const vit = createModel('vit-tiny');
  await compare({ model: 'vit-tiny', res: 224, batch: o.batch, pass: 'forward' }, (rt, f) => forwardVariant(rt, f, vit, o.batch, 224), rts, o.rounds, o.batch);
  if (!o.skipTrain) {
    await compare({ model: 'vit-tiny', res: 224, batch: o.trainBatch, pass: 'train-step' }, (rt, f) => trainVariant(rt, f, vit, o.trainBatch, 224), rts, o.rounds, o.trainBatch);
  }
  if (!o.skipVitdet) {
    const pair = vitdetSpeedConfigs('vitdet-b', o.vitdetRes);
    for (const [variant, cfg] of [['abswin', pair.abswin], ['relpos-all', pair.baseline]] as const) {
      const m = createVitDet(cfg);
      await compare({ model: 'vitdet-b', variant, res: o.vitdetRes, batch: 1, pass: 'forward' }, (rt, f) => forwardVariant(rt, f, m, 1, o.vitdetRes), rts, o.rounds, 1);
    }
  }
}
