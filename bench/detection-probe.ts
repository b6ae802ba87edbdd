/**
 * The probe that chose the detection section's recipe (`npm run bench -- detection-probe ...`):
 * runs the section's experiment (src/eval/experiments/detection.ts) with the default plan of
 * `anyres reproduce` and any overrides, on seeds that are NOT the report's, and prints per-run AP
 * and, per variant, mean ± sd over the seeds and the paired difference to variant (d).
 *
 * Arguments (all optional): --seeds 100,101 --variants a,b,c,d,e|none --control d|none --hiera on|off
 * --steps N --lr X --batch N --warmup N --layer-decay X --pretrain-steps N --pretrain-lr X --pretrain-batch N
 * --pretrain-kind classify|mae --mask-ratio X
 * --lsj min,max|none --train-size N --size-range lo,hi --quick (start from the quick plan).
 *
 * @example
 * npm run bench -- detection-probe --seeds 100,101,102 --variants a,d --steps 400 --lr 1e-3
 */
import { Runtime } from '../src/graph/runtime.ts';
import { plan } from '../src/eval/reproduce.ts';
import { type DetRow, type VitDetVariant, VITDET_VARIANTS, runDetectionExperiment } from '../src/eval/experiments/detection.ts';

function arg(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const num = (s: string | undefined, what: string): number | undefined => {
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isFinite(v)) throw new Error(`detection-probe: --${what} must be a number, got '${s}'`);
  return v;
};

function summarise(rows: DetRow[]): void {
  const variants = [...new Set(rows.map((r) => r.variant))];
  const ms = (xs: number[]): string => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
    return `${m.toFixed(2)} ± ${sd.toFixed(2)}`;
  };
  for (const v of variants) {
    const rs = rows.filter((r) => r.variant === v);
    const ref = rows.filter((r) => r.variant === 'd');
    const paired = rs.map((r) => r.ap - (ref.find((q) => q.seed === r.seed)?.ap ?? NaN)).filter(Number.isFinite);
    console.log(`${v.padEnd(8)} AP ${ms(rs.map((r) => r.ap))}  AP50 ${ms(rs.map((r) => r.ap50))}  AP75 ${ms(rs.map((r) => r.ap75))}  ` +
      `ms/img ${ms(rs.map((r) => r.msPerImage))}  loss ${ms(rs.map((r) => r.finalLoss))}` + (v !== 'd' && paired.length ? `  paired ${v} - d: ${ms(paired)}` : ''));
  }
}

export async function run(args: readonly string[]): Promise<void> {
  const p = plan(args.includes('--quick'));
  const o = structuredClone(p.detection);
  o.seeds = (arg(args, 'seeds') ?? '100,101').split(',').map(Number);
  if (o.seeds.some((s) => [0, 1, 2].includes(s))) console.log('detection-probe: note: seeds 0, 1, 2 are the report\'s; the recipe should be chosen on others');
  const vs = arg(args, 'variants');
  if (vs === 'none') o.variants = [];
  else if (vs) {
    const bad = vs.split(',').filter((v) => !(v in VITDET_VARIANTS));
    if (bad.length) throw new Error(`detection-probe: unknown variants ${bad.join(', ')} (known: ${Object.keys(VITDET_VARIANTS).join(', ')})`);
    o.variants = vs.split(',') as VitDetVariant[];
  }
  const ctl = arg(args, 'control');
  if (ctl) o.control = ctl === 'none' ? null : (ctl as VitDetVariant);
  if (arg(args, 'hiera') === 'off') o.hiera = null;
  o.det.steps = num(arg(args, 'steps'), 'steps') ?? o.det.steps;
  o.det.lr = num(arg(args, 'lr'), 'lr') ?? o.det.lr;
  if (o.hiera) o.hiera.det.lr = num(arg(args, 'lr'), 'lr') ?? o.hiera.det.lr;
  o.det.batch = num(arg(args, 'batch'), 'batch') ?? o.det.batch;
  o.det.warmupSteps = num(arg(args, 'warmup'), 'warmup') ?? o.det.warmupSteps;
  const ld = num(arg(args, 'layer-decay'), 'layer-decay');
  if (ld !== undefined) o.det.layerDecay = ld > 0 ? ld : undefined;
  const sr = arg(args, 'size-range');
  if (sr) o.det.sizeRange = sr.split(',').map(Number) as [number, number];
  o.det.trainSize = num(arg(args, 'train-size'), 'train-size') ?? o.det.trainSize;
  o.pretrain.steps = num(arg(args, 'pretrain-steps'), 'pretrain-steps') ?? o.pretrain.steps;
  o.pretrain.lr = num(arg(args, 'pretrain-lr'), 'pretrain-lr') ?? o.pretrain.lr;
  o.pretrain.batch = num(arg(args, 'pretrain-batch'), 'pretrain-batch') ?? o.pretrain.batch;
  const kind = arg(args, 'pretrain-kind');
  if (kind !== undefined) {
    if (kind !== 'classify' && kind !== 'mae') throw new Error(`detection-probe: --pretrain-kind must be classify or mae, got '${kind}'`);
    o.pretrain.kind = kind;
  }
  const ratio = num(arg(args, 'mask-ratio'), 'mask-ratio');
  if (ratio !== undefined) o.pretrain.mae = { decoderEmbedDim: 64, decoderDepth: 1, decoderNumHeads: 2, ...(o.pretrain.mae ?? {}), maskRatio: ratio };
  const lsj = arg(args, 'lsj');
  if (lsj === 'none') o.det.lsj = null;
  else if (lsj) {
    const [a, b] = lsj.split(',').map(Number);
    o.det.lsj = { flip: true, minScale: a, maxScale: b };
  }
  if (o.hiera) {
    o.hiera.det.steps = num(arg(args, 'hiera-steps'), 'hiera-steps') ?? o.hiera.det.steps;
    o.hiera.pretrain.steps = num(arg(args, 'hiera-pretrain-steps'), 'hiera-pretrain-steps') ?? o.hiera.pretrain.steps;
  }
  o.pictures.variants = [];
  console.log(`detection-probe: ${JSON.stringify({ seeds: o.seeds, variants: o.variants, control: o.control, pretrain: o.pretrain, det: o.det, hiera: o.hiera })}`);
  const t0 = performance.now();
  const r = await runDetectionExperiment(new Runtime(), o, (m) => console.log(m));
  for (const x of r.pretrain) console.log(`pretrain ${x.model} (${x.kind}) seed ${x.seed}: ${x.accuracy === null ? `loss ${x.finalLoss.toFixed(3)}` : `${x.accuracy.toFixed(1)}%`} (${x.seconds.toFixed(0)} s)`);
  summarise(r.rows);
  console.log(`detection-probe: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
