/**
 * The probe that chooses the recipe of the Hiera classification sections of `anyres reproduce`
 * (`npm run bench -- class-probe ...`): trains the section's Hiera (src/eval/experiments/abswin.ts
 * `hieraFor`) from scratch at the base size with the default plan's recipe and any overrides, on
 * seeds that are NOT the report's (default 100-102), and prints one RESULT line per run (seed,
 * strategy, recipe, accuracy at the base size, the step at which the loss left the chance plateau,
 * seconds) and, per strategy, mean ± sd over the seeds.
 *
 * "Left the plateau" = the first step at which the mean loss of the last 25 steps is 0.15 below
 * ln(numClasses) (the loss of a uniform prediction); `never` if it did not happen.
 *
 * Arguments (all optional): --seeds 100,101,102 --strategies absolute,abswin --steps N --batch N
 * --lr X --warmup N --wd X --head-init X --train-size N --val-size N --smoothing X --clip X --quick.
 *
 * @example
 * ANYRES_THREADS=1 npm run bench -- class-probe --seeds 100,101,102 --steps 600 --batch 32 --lr 1e-3
 */
import { Runtime } from '../src/graph/runtime.ts';
import { datasets, plan } from '../src/eval/reproduce.ts';
import { hieraFor, type Strategy } from '../src/eval/experiments/abswin.ts';
import { accuracy, fit } from '../src/eval/experiments/fit.ts';

function arg(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const num = (args: readonly string[], name: string): number | undefined => {
  const s = arg(args, name);
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isFinite(v)) throw new Error(`class-probe: --${name} must be a number, got '${s}'`);
  return v;
};

/** The first step whose trailing 25-step mean loss is `margin` below `chance`, or null. */
export function plateauExit(losses: readonly { step: number; loss: number }[], chance: number, margin = 0.15, window = 25): number | null {
  let sum = 0;
  for (let i = 0; i < losses.length; i++) {
    sum += losses[i]!.loss;
    if (i >= window) sum -= losses[i - window]!.loss;
    if (i >= window - 1 && sum / window < chance - margin) return losses[i]!.step;
  }
  return null;
}

const ms = (xs: number[]): string => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return `${m.toFixed(2)} ± ${sd.toFixed(2)}`;
};

export async function run(args: readonly string[]): Promise<void> {
  const p = plan(args.includes('--quick'));
  const o = structuredClone(p.abswin);
  const seeds = (arg(args, 'seeds') ?? '100,101,102').split(',').map(Number);
  if (seeds.some((s) => s < 100)) console.log('class-probe: note: seeds below 100 may be the report\'s; the recipe should be chosen on others');
  const strategies = (arg(args, 'strategies') ?? 'absolute').split(',') as Strategy[];
  for (const s of strategies) if (s !== 'absolute' && s !== 'abswin') throw new Error(`class-probe: unknown strategy '${s}' (known: absolute, abswin)`);
  const t = o.train;
  t.steps = num(args, 'steps') ?? t.steps;
  t.batch = num(args, 'batch') ?? t.batch;
  t.lr = num(args, 'lr') ?? t.lr;
  t.warmupSteps = num(args, 'warmup') ?? t.warmupSteps;
  t.weightDecay = num(args, 'wd') ?? t.weightDecay;
  const smoothing = num(args, 'smoothing');
  if (smoothing !== undefined) t.labelSmoothing = smoothing;
  const clip = num(args, 'clip');
  if (clip !== undefined) t.clipGradNorm = clip;
  o.arch = { ...o.arch, headInitScale: num(args, 'head-init') ?? o.arch.headInitScale };
  p.trainSize = num(args, 'train-size') ?? p.trainSize;
  p.valSize = num(args, 'val-size') ?? p.valSize;
  const data = datasets('synthetic', p);
  const val = data.val('zoom', o.baseRes);
  const recipe = `steps=${t.steps} batch=${t.batch} lr=${t.lr} warmup=${t.warmupSteps} wd=${t.weightDecay} head=${o.arch.headInitScale} smooth=${t.labelSmoothing ?? 0.1} clip=${t.clipGradNorm ?? 'none'} train=${p.trainSize}`;
  console.log(`class-probe: ${recipe}; seeds ${seeds.join(',')}; strategies ${strategies.join(',')}; val ${p.valSize} at ${o.baseRes} px`);
  const rt = new Runtime();
  const results: Record<string, number[]> = {};
  for (const seed of seeds) {
    for (const strategy of strategies) {
      const model = hieraFor(strategy, o);
      const res = await fit(rt, model, data.train, { ...t, seed, resolutions: [o.baseRes], label: `probe ${strategy} seed ${seed}` });
      const acc = await accuracy(rt, model, res.params, val, o.baseRes);
      const exit = plateauExit(res.losses, Math.log(o.numClasses));
      const last = res.losses.slice(-25).reduce((a, b) => a + b.loss, 0) / Math.min(25, res.losses.length);
      console.log(`RESULT seed=${seed} strategy=${strategy} ${recipe} acc=${acc.toFixed(1)} plateau_exit=${exit ?? 'never'} final_loss=${last.toFixed(3)} seconds=${res.seconds.toFixed(0)}`);
      (results[strategy] ??= []).push(acc);
    }
  }
  for (const [s, xs] of Object.entries(results)) console.log(`SUMMARY strategy=${s} ${recipe} acc ${ms(xs)} (n=${xs.length})`);
}
