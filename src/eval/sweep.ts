/**
 * Accuracy of a model at one or many test resolutions.
 *
 * Parameters are fed as graph inputs, so one compiled session per resolution
 * serves every checkpoint of the same architecture (a sweep over seeds and
 * strategies compiles each resolution once).
 */
import type { Dataset } from '../data/dataset.ts';
import { Runtime, type Feeds, type HostTensor } from '../graph/runtime.ts';
import type { Model } from '../models/types.ts';
import { Params, type Weights } from '../nn/params.ts';
import { Rng } from '../util/rng.ts';

export interface EvalOptions {
  batch?: number;
  /** Evaluate only the first `limit` samples. */
  limit?: number;
  /** Per-channel normalisation applied to [0,1] images (default: none). */
  mean?: readonly number[];
  std?: readonly number[];
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  res: number;
  accuracy: number;
  correct: number;
  n: number;
}

function modelKey(model: Model): string {
  return `eval:${model.family}:${JSON.stringify(model.config)}`;
}

/** Logits for a batch of images [B,3,H,W]. */
export async function predict(rt: Runtime, model: Model, weights: Weights, x: HostTensor): Promise<Float32Array> {
  const [, , H, W] = x.shape as [number, number, number, number];
  model.checkInputSize(H, W);
  const feeds: Record<string, HostTensor> = { x };
  for (const [k, v] of weights) feeds[k] = { data: v.data, shape: v.shape };
  const build = (inputs: Readonly<Record<string, import('../graph/tensor.ts').Tensor>>, g: import('../graph/tensor.ts').Graph) => {
    const p = new Params(g);
    const out = model.forward(p, inputs.x!);
    return { logits: out.logits };
  };
  const out = await rt.run(build, feeds as Feeds, modelKey(model));
  return out.logits!.data as Float32Array;
}

/** Builds a normalised NCHW batch of samples [start, end) at `res`. */
export async function makeBatch(ds: Dataset, start: number, end: number, res: number, opts: EvalOptions = {}): Promise<{ x: HostTensor; labels: Int32Array }> {
  const B = end - start;
  const x = new Float32Array(B * 3 * res * res);
  const labels = new Int32Array(B);
  const rng = new Rng(0);
  for (let i = 0; i < B; i++) {
    const s = await ds.get(start + i, res, rng);
    const img = s.image;
    const data = img.data;
    if (data.length !== 3 * res * res) throw new Error(`makeBatch: sample ${start + i} has ${data.length} values, expected 3x${res}x${res}`);
    const off = i * 3 * res * res;
    if (opts.mean && opts.std) {
      const hw = res * res;
      for (let c = 0; c < 3; c++) {
        const m = opts.mean[c]!;
        const sd = opts.std[c]!;
        for (let j = 0; j < hw; j++) x[off + c * hw + j] = (data[c * hw + j]! - m) / sd;
      }
    } else x.set(data, off);
    labels[i] = s.label;
  }
  return { x: { data: x, shape: [B, 3, res, res] }, labels };
}

/** Top-1 accuracy (percent) at one resolution. */
export async function evaluateAccuracy(rt: Runtime, model: Model, weights: Weights, ds: Dataset, res: number, opts: EvalOptions = {}): Promise<EvalResult> {
  const n = Math.min(opts.limit ?? ds.length, ds.length);
  const batch = opts.batch ?? 64;
  let correct = 0;
  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch);
    const { x, labels } = await makeBatch(ds, start, end, res, opts);
    const logits = await predict(rt, model, weights, x);
    const K = logits.length / (end - start);
    for (let i = 0; i < end - start; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (logits[i * K + k]! > logits[i * K + best]!) best = k;
      if (best === labels[i]) correct++;
    }
    opts.onProgress?.(end, n);
  }
  return { res, accuracy: (100 * correct) / n, correct, n };
}

/** Accuracy at each resolution; resolutions the model cannot take are reported, not silently skipped. */
export async function sweep(
  rt: Runtime,
  model: Model,
  weights: Weights,
  ds: Dataset,
  resolutions: readonly number[],
  opts: EvalOptions = {},
): Promise<(EvalResult | { res: number; error: string })[]> {
  const out: (EvalResult | { res: number; error: string })[] = [];
  for (const r of resolutions) {
    try {
      model.checkInputSize(r, r);
    } catch (e) {
      out.push({ res: r, error: (e as Error).message });
      continue;
    }
    out.push(await evaluateAccuracy(rt, model, weights, ds, r, opts));
  }
  return out;
}

/** Parses '32:256:16' (start:end:step, inclusive) or '64,96,128'. */
export function parseResolutions(spec: string): number[] {
  const s = spec.trim();
  const range = /^(\d+):(\d+):(\d+)$/.exec(s);
  let list: number[];
  if (range) {
    const [a, b, step] = [Number(range[1]), Number(range[2]), Number(range[3])];
    if (step <= 0 || b < a) throw new Error(`resolutions '${spec}': need start <= end and step > 0 (e.g. 32:256:16)`);
    list = [];
    for (let r = a; r <= b; r += step) list.push(r);
  } else {
    list = s.split(',').map((x) => Number(x.trim()));
  }
  if (list.length === 0 || list.some((r) => !Number.isInteger(r) || r <= 0)) {
    throw new Error(`resolutions '${spec}': expected positive integers like '64,96,128' or a range '32:256:16'`);
  }
  return list;
}
