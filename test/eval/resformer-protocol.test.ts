import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Report, validateResults } from '../../src/eval/report.ts';
import type { ResFormerResults, SweepRow } from '../../src/eval/experiments/resformer.ts';
import { regionOf, resformerProtocolSection } from '../../src/eval/experiments/resformer-report.ts';
import type { PairedRowData } from '../../src/eval/paired.ts';
import { plan } from '../../src/eval/reproduce.ts';
import { fitInitialState, fitLoader } from '../../src/eval/experiments/fit.ts';
import { createVit } from '../../src/models/vit.ts';
import { SyntheticDataset } from '../../src/data/synthetic.ts';

test('regionOf: below, within (inclusive) and above the training range', () => {
  assert.deepEqual([32, 40, 48, 64, 80].map((r) => regionOf(r, [64, 48, 40])), ['below', 'within', 'within', 'within', 'above']);
  assert.throws(() => regionOf(32, []), /no training resolutions/);
});

test('ResFormer protocol: regions per view, averaged per seed, ResFormer − ViT paired by seed', () => {
  const o = { ...plan(false).resformer, seeds: [0, 1, 2], testRes: [32, 40, 48, 64, 80, 96, 128] }; // trains on 64/48/40
  const rows: SweepRow[] = [];
  // ViT: 50 everywhere. ResFormer: +10 below (every seed), +s−1 within (−1, 0, +1), +2 / +4 at 80 / 96 and 0 at 128 above.
  for (const seed of o.seeds) {
    for (const view of ['zoom', 'canvas'] as const) {
      for (const res of o.testRes) {
        rows.push({ model: 'ViT', key: 'vit', seed, res, view, accuracy: 50 });
        const gain = res < 40 ? 10 : res <= 64 ? seed - 1 : res === 80 ? 2 : res === 96 ? 4 : 0;
        rows.push({ model: 'ResFormer', key: 'resformer', seed, res, view, accuracy: 50 + gain + (view === 'canvas' ? seed * 0.5 : 0) });
      }
    }
  }
  const r = new Report('t');
  r.section('4');
  const paired: PairedRowData[] = [];
  const v = resformerProtocolSection(r, { rows, trainSeconds: {}, models: [] } as ResFormerResults, o, paired);
  assert.deepEqual(Object.keys(v), ['zoom/below', 'zoom/within', 'zoom/above', 'canvas/below', 'canvas/within', 'canvas/above']);
  const get = (k: string): { diff: number; verdict: string; paired: { sd: number } } => v[k] as never;
  assert.equal(get('zoom/below').diff, 10);
  assert.equal(get('zoom/below').paired.sd, 0);
  assert.equal(get('zoom/below').verdict, 'ResFormer better (95% CI excludes 0)');
  assert.ok(Math.abs(get('zoom/within').diff) < 1e-12);
  assert.equal(get('zoom/within').verdict, 'within noise (95% CI includes 0)');
  assert.ok(Math.abs(get('zoom/above').diff - 2) < 1e-12, 'mean of +2, +4, 0 over the sizes above');
  // canvas adds 0, 0.5, 1 by seed: below d = 10, 10.5, 11 → mean 10.5.
  assert.ok(Math.abs(get('canvas/below').diff - 10.5) < 1e-12);
  assert.equal(paired.length, 6);
  assert.ok(paired.every((p) => p.part === 'resformer' && p.n === 3));
  const json = r.toJSON();
  const table = json.sections[0]!.blocks.find((b) => b.kind === 'table');
  assert.ok(table && table.kind === 'table');
  assert.equal(table.rows[0]!['region'], 'below (32 px)');
  assert.equal(table.rows[2]!['region'], 'above (80, 96, 128 px)');
  r.data('paired', { rule: 'r', rows: paired });
  assert.deepEqual(validateResults(JSON.parse(JSON.stringify(r.toJSON()))), []);
});

test('ResFormer protocol: the ablations are paired against the full ResFormer, each in its own part', () => {
  const o = { ...plan(false).resformer, seeds: [0, 1, 2], testRes: [32, 64, 160] };
  const rows: SweepRow[] = [];
  // Full ResFormer 60; without the loss 60 − 3 above only; learned embedding 60 − 5 − seed below only.
  for (const seed of o.seeds) {
    for (const res of o.testRes) {
      rows.push({ model: 'ViT', key: 'vit', seed, res, view: 'zoom', accuracy: 40 });
      rows.push({ model: 'RF', key: 'resformer', seed, res, view: 'zoom', accuracy: 60 });
      rows.push({ model: 'RF-no-scl', key: 'resformer-no-scl', seed, res, view: 'zoom', accuracy: res > 64 ? 57 : 60 });
      rows.push({ model: 'RF-learned', key: 'resformer-learned', seed, res, view: 'zoom', accuracy: res < 40 ? 55 - seed : 60 });
    }
  }
  const r = new Report('t');
  r.section('4');
  const paired: PairedRowData[] = [];
  const v = resformerProtocolSection(r, { rows, trainSeconds: {}, models: [] } as ResFormerResults, o, paired);
  const get = (k: string): { diff: number } => v[k] as never;
  assert.deepEqual(Object.keys(v), ['zoom/below', 'zoom/within', 'zoom/above', 'scl/zoom/below', 'scl/zoom/within', 'scl/zoom/above', 'gpe/zoom/below', 'gpe/zoom/within', 'gpe/zoom/above']);
  assert.equal(get('zoom/above').diff, 20);
  assert.equal(get('scl/zoom/above').diff, 3);
  assert.equal(get('scl/zoom/below').diff, 0);
  assert.equal(get('gpe/zoom/below').diff, 6, 'GPE − learned: 5 + seed, mean 6');
  assert.equal(get('gpe/zoom/above').diff, 0);
  assert.deepEqual([...new Set(paired.map((p) => p.part))], ['resformer', 'resformer-scl', 'resformer-gpe']);
  assert.equal(r.toJSON().sections[0]!.blocks.filter((b) => b.kind === 'table').length, 3);
  r.data('paired', { rule: 'r', rows: paired });
  assert.deepEqual(validateResults(JSON.parse(JSON.stringify(r.toJSON()))), []);
});

test('ResFormer plan: trains on three sizes spanning about 0.6-1x, tests 0.5x-2.5x, with both ablations', () => {
  for (const quick of [false, true]) {
    const o = plan(quick).resformer;
    assert.equal(o.multiRes.length, 3);
    assert.equal(Math.max(...o.multiRes), o.baseRes);
    assert.ok(Math.min(...o.multiRes) / o.baseRes >= 0.55 && Math.min(...o.multiRes) / o.baseRes <= 0.65);
    assert.equal(Math.min(...o.testRes), o.baseRes / 2);
    assert.equal(Math.max(...o.testRes), o.baseRes * 2.5);
    assert.deepEqual(o.views, ['zoom', 'canvas']);
    assert.deepEqual(o.variants!.map((x) => x.key), ['vit', 'resformer', 'resformer-no-scl', 'resformer-learned']);
    assert.equal(o.variants!.find((x) => x.key === 'resformer-no-scl')!.alpha, 0);
    assert.equal(o.variants!.find((x) => x.key === 'resformer-learned')!.arch!.posEmbed, 'learned');
  }
});

test('ResFormer ablations of one seed start from the same shared weights and train on the same batches', async () => {
  const o = plan(true).resformer;
  const multi = o.variants!.filter((v) => v.multiRes);
  assert.deepEqual(multi.map((v) => v.key), ['resformer', 'resformer-no-scl', 'resformer-learned']);
  const states = multi.map((v) => fitInitialState(createVit(v.preset, { ...o.arch, ...v.arch, imgSize: [o.baseRes, o.baseRes], numClasses: o.numClasses }), 7).params);
  const [full, noScl, learned] = states as [Map<string, Float32Array>, Map<string, Float32Array>, Map<string, Float32Array>];
  assert.deepEqual([...noScl.keys()], [...full.keys()]);
  for (const [k, v] of full) assert.deepEqual(noScl.get(k), v, `'${k}' differs between ResFormer with and without the loss`);
  let shared = 0;
  for (const [k, v] of learned) {
    const f = full.get(k);
    if (f && f.length === v.length) {
      assert.deepEqual(v, f, `'${k}' differs between GPE and learned`);
      shared++;
    }
  }
  assert.ok(shared >= full.size - 3, `only the position-embedding parameters differ (${shared} of ${full.size} shared)`);
  const ds = new SyntheticDataset({ seed: 1, split: 'train', size: 64 });
  const first = async (seed: number): Promise<Float32Array[]> => {
    for await (const b of fitLoader(ds, { seed, batch: 8, resolutions: o.multiRes }).epoch(0)) return b.batches.map((x) => x.x);
    throw new Error('no batch');
  };
  const a = await first(7);
  assert.equal(a.length, 3, 'one tensor per training size');
  assert.deepEqual(await first(7), a);
  assert.notDeepEqual((await first(8))[0], a[0]);
});
