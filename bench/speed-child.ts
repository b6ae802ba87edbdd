/**
 * One ViTDet speed measurement in its own process, so that its peak RSS is its own: compiles the
 * forward of a `vitdetSpeedConfigs` variant at one resolution (batch 1), runs it `reps` times after
 * a warm-up and prints one JSON line: median ms per image, peak RSS in MiB, and the attention
 * kernels the traced graph uses. Spawned by bench/models.ts (interleaved with the other variant).
 *
 * Usage: node --import tsx bench/speed-child.ts <preset> <baseline|abswin> <res> <reps> <threads> <fused|explicit>
 */
import * as F from '../src/graph/index.ts';
import { Params } from '../src/nn/params.ts';
import { createVitDet, vitdetSpeedConfigs } from '../src/models/vitdet.ts';
import type { Model } from '../src/models/types.ts';
import { msPerImage } from '../src/eval/experiments/speed.ts';

/** Counts attention nodes in a traced forward: fused without / with bias, explicit softmax. */
export function attentionKernels(model: Model, res: number, form: F.AttentionForm): { fused: number; fused_bias: number; explicit_softmax: number } {
  const g = new F.Graph();
  g.attention = form;
  const out = model.forward(new Params(g), g.input('x', [1, 3, res, res]));
  const seen = new Set<F.Node>();
  const stack: F.Tensor[] = [out.logits];
  const k = { fused: 0, fused_bias: 0, explicit_softmax: 0 };
  while (stack.length) {
    const n = stack.pop()!.node;
    if (!n || seen.has(n)) continue;
    seen.add(n);
    if (n.op === F.AttentionOp) n.inputs.length > 3 ? k.fused_bias++ : k.fused++;
    if (n.op === F.SoftmaxOp) k.explicit_softmax++;
    stack.push(...n.inputs);
  }
  return k;
}

async function main(argv: readonly string[]): Promise<void> {
  const [preset, variant, resS, repsS, threadsS, form] = argv;
  if (!preset || (variant !== 'baseline' && variant !== 'abswin') || (form !== 'fused' && form !== 'explicit')) {
    throw new Error('speed-child: usage <preset> <baseline|abswin> <res> <reps> <threads> <fused|explicit>');
  }
  const res = Number(resS);
  const cfg = vitdetSpeedConfigs(preset, res)[variant];
  const rt = new F.Runtime({ threads: Number(threadsS), attention: form });
  const ms = await msPerImage(rt, cfg, res, 1, Number(repsS));
  const kernels = attentionKernels(createVitDet(cfg), res, form);
  console.log(JSON.stringify({ ms, max_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024), kernels }));
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
