/**
 * Probe of the detection section's classification pretraining (`npm run bench -- pretrain-probe`):
 * trains the section's plain ViT (src/eval/experiments/detection.ts `pretrainVitModel`) on the
 * synthetic shapes with the given recipe and prints top-1 on the validation split per seed.
 *
 * Arguments: --seeds 100,101 --steps N --lr X --batch N --warmup N --res PX --classes N --train-size N
 * --depth N --dim N --label-smoothing X
 */
import { Runtime } from '../src/graph/runtime.ts';
import { plan } from '../src/eval/reproduce.ts';
import { pretrainVit } from '../src/eval/experiments/detection.ts';

function arg(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function run(args: readonly string[]): Promise<void> {
  const o = structuredClone(plan(false).detection);
  const n = (name: string): number | undefined => (arg(args, name) === undefined ? undefined : Number(arg(args, name)));
  o.pretrain.steps = n('steps') ?? o.pretrain.steps;
  o.pretrain.lr = n('lr') ?? o.pretrain.lr;
  o.pretrain.batch = n('batch') ?? o.pretrain.batch;
  o.pretrain.warmupSteps = n('warmup') ?? o.pretrain.warmupSteps;
  o.pretrain.res = n('res') ?? o.pretrain.res;
  o.pretrain.trainSize = n('train-size') ?? o.pretrain.trainSize;
  if (n('label-smoothing') !== undefined) o.pretrain.labelSmoothing = n('label-smoothing');
  if (arg(args, 'kind')) o.pretrain.kind = arg(args, 'kind') as 'classify' | 'mae';
  o.numClasses = n('classes') ?? o.numClasses;
  o.vit.depth = n('depth') ?? o.vit.depth;
  o.vit.embedDim = n('dim') ?? o.vit.embedDim;
  const seeds = (arg(args, 'seeds') ?? '100').split(',').map(Number);
  const rt = new Runtime();
  for (const seed of seeds) {
    const r = await pretrainVit(rt, o, seed);
    console.log(`RESULT pretrain seed=${seed} res=${o.pretrain.res} steps=${o.pretrain.steps} lr=${o.pretrain.lr} batch=${o.pretrain.batch} classes=${o.numClasses} top1=${r.row.accuracy?.toFixed(1) ?? 'n/a'} loss=${r.row.finalLoss.toFixed(3)} seconds=${r.row.seconds.toFixed(0)}`);
    await rt.clear();
  }
}
