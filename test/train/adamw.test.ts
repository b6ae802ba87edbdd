import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Runtime, host, type Tensor } from '../../src/graph/index.ts';
import { adamwStep } from '../../src/train/adamw.ts';
import { loadCase, need, paramsOf, toleranceOf } from '../../src/fixture/index.ts';
import { fixturesDir } from '../../src/fixtures.ts';
import { Rng } from '../../src/util/rng.ts';

const rt = new Runtime();

/** Runs one AdamW step on host arrays through the graph. */
async function runAdamW(
  params: Map<string, { data: Float32Array; shape: number[] }>,
  grads: Map<string, Float32Array>,
  m: Map<string, Float32Array>,
  v: Map<string, Float32Array>,
  decay: Map<string, boolean>,
  lr: number,
  t: number,
  opts: Parameters<typeof adamwStep>[4],
  lrScale?: Map<string, number>,
): Promise<{ p: Map<string, Float32Array>; m: Map<string, Float32Array>; v: Map<string, Float32Array>; norm?: number }> {
  const names = [...params.keys()];
  const feeds: Record<string, ReturnType<typeof host>> = { lr: host([lr], []), t: host([t], []) };
  for (const n of names) {
    const s = params.get(n)!.shape;
    feeds[`p.${n}`] = host(params.get(n)!.data, s);
    feeds[`g.${n}`] = host(grads.get(n)!, s);
    feeds[`m.${n}`] = host(m.get(n)!, s);
    feeds[`v.${n}`] = host(v.get(n)!, s);
  }
  const out = await rt.run(
    (i, g) => {
      const { updated, gradNorm } = adamwStep(
        g,
        names.map((n) => ({ name: n, param: i[`p.${n}`]!, grad: i[`g.${n}`]!, m: i[`m.${n}`]!, v: i[`v.${n}`]!, decay: decay.get(n)!, lrScale: lrScale?.get(n) })),
        i.lr!,
        i.t!,
        opts,
      );
      const o: Record<string, Tensor> = {};
      for (const u of updated) {
        o[`P.${u.name}`] = u.param;
        o[`M.${u.name}`] = u.m;
        o[`V.${u.name}`] = u.v;
      }
      if (gradNorm) o.norm = gradNorm;
      return o;
    },
    feeds,
    `adamw-test-${JSON.stringify(opts)}-${lrScale ? 'scaled' : ''}`,
  );
  const get = (k: string): Map<string, Float32Array> => new Map(names.map((n) => [n, out[`${k}.${n}`]!.data as Float32Array]));
  return { p: get('P'), m: get('M'), v: get('V'), norm: out.norm ? (out.norm.data as Float32Array)[0] : undefined };
}

test('optimizer-only check: our AdamW on the stored step-1 gradients matches torch step1.param.* (every element)', async () => {
  const c = loadCase(path.join(fixturesDir(), 'step_adamw_vit_tiny_224.json'));
  const cfg = c.config as { lr: number; betas: [number, number]; eps: number; weight_decay: number };
  const wdBy = c.json.weight_decay_by_param as Record<string, number>;
  const params = paramsOf(c);
  const grads = new Map([...params.keys()].map((n) => [n, need(c, `grad.param.${n}`).data]));
  const zeros = new Map([...params].map(([n, p]) => [n, new Float32Array(p.data.length)]));
  const decay = new Map([...params.keys()].map((n) => [n, wdBy[n]! > 0]));
  for (const n of params.keys()) assert.ok(wdBy[n] === 0 || wdBy[n] === cfg.weight_decay, `one decay value per group (${n})`);
  const r = await runAdamW(params, grads, zeros, new Map(zeros), decay, cfg.lr, 1, { betas: cfg.betas, eps: cfg.eps, weightDecay: cfg.weight_decay });
  let checked = 0;
  for (const n of params.keys()) {
    const name = `step1.param.${n}`;
    const exp = need(c, name).data;
    const act = r.p.get(n)!;
    const bound = toleranceOf(c, name);
    let worst = 0;
    for (let i = 0; i < exp.length; i++) worst = Math.max(worst, Math.abs(act[i]! - exp[i]!));
    assert.ok(worst <= bound, `${name}: max |diff| ${worst} > bound ${bound}`);
    checked++;
  }
  assert.equal(checked, 44);
});

/** float64 restatement of torch AdamW with clip_grad_norm_ and per-parameter lr scale. */
function reference(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, lr: number, wd: number, t: number, b1: number, b2: number, eps: number, clip: number): void {
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]! * clip;
    p[i] = p[i]! * (1 - lr * wd);
    m[i] = b1 * m[i]! + (1 - b1) * gi;
    v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
    p[i] = p[i]! - (lr / (1 - b1 ** t)) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps));
  }
}

test('AdamW over 5 steps with decay groups, lr scales and gradient clipping matches a float64 restatement', async () => {
  const rng = new Rng(3);
  const shapes: Record<string, number[]> = { 'a.weight': [4, 6], 'a.bias': [4], 'b.weight': [3, 4] };
  const decay = new Map([['a.weight', true], ['a.bias', false], ['b.weight', true]]);
  const scale = new Map([['a.weight', 0.5], ['a.bias', 0.5], ['b.weight', 1]]);
  const params = new Map<string, { data: Float32Array; shape: number[] }>(Object.entries(shapes).map(([n, s]) => [n, { data: Float32Array.from({ length: s.reduce((x, y) => x * y, 1) }, () => rng.normal()), shape: s }]));
  const ref = new Map([...params].map(([n, p]) => [n, { p: Float64Array.from(p.data), m: new Float64Array(p.data.length), v: new Float64Array(p.data.length) }]));
  let m = new Map<string, Float32Array>([...params].map(([n, p]) => [n, new Float32Array(p.data.length)]));
  let v = new Map<string, Float32Array>(m);
  const opts = { betas: [0.8, 0.99] as [number, number], eps: 1e-6, weightDecay: 0.1, clipGradNorm: 1.0 };
  let clipped = 0;
  for (let t = 1; t <= 5; t++) {
    const grads = new Map([...params].map(([n, p]) => [n, Float32Array.from(p.data, () => rng.normal() * (t % 2 ? 3 : 0.01))]));
    let sq = 0;
    for (const g of grads.values()) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    const coef = Math.min(1, 1 / (norm + 1e-6));
    if (coef < 1) clipped++;
    const lr = 0.01 * t;
    const r = await runAdamW(params, grads, m, v, decay, lr, t, opts, scale);
    assert.ok(Math.abs(r.norm! - norm) < 1e-4 * norm, `grad norm ${r.norm} vs ${norm}`);
    for (const [n, st] of ref) {
      reference(st.p, Float64Array.from(grads.get(n)!), st.m, st.v, lr * scale.get(n)!, decay.get(n) ? 0.1 : 0, t, 0.8, 0.99, 1e-6, coef);
      const got = r.p.get(n)!;
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - st.p[i]!) < 2e-6, `${n}[${i}] step ${t}: ${got[i]} vs ${st.p[i]}`);
    }
    for (const [n, p] of params) p.data = r.p.get(n)!;
    m = r.m;
    v = r.v;
  }
  assert.ok(clipped >= 2, 'the test exercised clipping');
});
