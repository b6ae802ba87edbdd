/**
 * Independent randomized comparison with the official pycocotools (cocodataset/cocoapi), when a
 * Python with pycocotools is available: `ANYRES_PYTHON` (else /usr/bin/python3, else python3),
 * with `PYCOCOTOOLS_PATH` prepended to PYTHONPATH (e.g. a cocoapi `PythonAPI/` built with
 * `python3 setup.py build_ext --inplace`). Without one, the tests skip and say why.
 * The golden cases in ../shared/fixtures/coco/ are checked by the fixture test either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CocoEvalParams, cocoEval } from '../../src/det/coco-eval.ts';
import { polygonsToRle, rleEncode, rleIou, rleToBbox, rleArea, rleToString } from '../../src/det/mask.ts';
import type { CocoRle } from '../../src/det/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { randomCocoCase, type RandomCaseOptions } from './coco-random.ts';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pycocotools-reference.py');

function pythonEnv(): NodeJS.ProcessEnv {
  const extra = process.env.PYCOCOTOOLS_PATH;
  if (!extra) return process.env;
  return { ...process.env, PYTHONPATH: [extra, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
}

function findPython(): string | null {
  const candidates = [process.env.ANYRES_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import pycocotools.cocoeval, pycocotools.mask'], { env: pythonEnv(), encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

const python = findPython();
const skip = python ? false : 'pycocotools is not importable (set ANYRES_PYTHON / PYCOCOTOOLS_PATH to a Python with it to run this comparison)';

interface Reference {
  evals: { stats: number[]; precision: number[]; recall: number[]; scores: number[]; per_category_ap: number[] }[];
  polys: { counts: string; area: number; bbox: number[] }[];
  rles: string[];
  ious: number[][][];
}

function reference(request: unknown): Reference {
  const r = spawnSync(python!, [script], { input: JSON.stringify(request), env: pythonEnv(), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`pycocotools reference failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout) as Reference;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>, what: string): number {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('cocoEval equals pycocotools COCOeval on random bbox and segm cases (stats, per-category AP, precision/recall/scores arrays)', { skip }, () => {
  const variants: RandomCaseOptions[] = [
    { iouType: 'bbox' },
    { iouType: 'bbox', firstGtId: 0 },
    { iouType: 'bbox', duplicateIds: true },
    { iouType: 'bbox', maskResults: true },
    { iouType: 'segm' },
    { iouType: 'segm', maskResults: true },
    { iouType: 'segm', boxesOnly: true },
  ];
  // ANYRES_COCO_CASES: seeds per variant (default 3; raise it for a longer search).
  const seeds = Number(process.env.ANYRES_COCO_CASES ?? 3);
  const cases = variants.flatMap((v, vi) => Array.from({ length: seeds }, (_, s) => ({ v, ...randomCocoCase(1000 * vi + s, v) })));
  // Non-default parameters on some cases: pooled categories, other maxDets (stats[0] then reads
  // maxDets=100, absent: -1, as in pycocotools), a subset of images and categories.
  const paramSets: (CocoEvalParams | undefined)[] = [undefined, { useCats: false }, { maxDets: [1, 5, 20] }, { imgIds: [10, 16, 19, 22], catIds: [2, 5] }];
  const withParams = cases.map((c, i) => ({ ...c, params: paramSets[i % paramSets.length] }));
  const ref = reference({ evals: withParams.map((c) => ({ gt: c.gt, dt: c.dt, iouType: c.v.iouType, ...(c.params ? { params: c.params } : {}) })) });
  withParams.forEach((c, i) => {
    const ours = cocoEval(c.gt, c.dt, c.v.iouType, c.params);
    const want = ref.evals[i]!;
    const what = `case ${i} (${JSON.stringify(c.v)} ${JSON.stringify(c.params ?? {})}, ${c.gt.annotations.length} gt, ${c.dt.length} dt)`;
    // Same arithmetic in the same order: the arrays agree to the last bit but for the means.
    assert.ok(maxAbs(ours.precision, want.precision, `${what} precision`) === 0, `${what}: precision differs`);
    assert.ok(maxAbs(ours.recall, want.recall, `${what} recall`) === 0, `${what}: recall differs`);
    assert.ok(maxAbs(ours.scores, want.scores, `${what} scores`) === 0, `${what}: scores differ`);
    assert.ok(maxAbs(ours.stats, want.stats, `${what} stats`) < 1e-12, `${what}: stats ${ours.stats} vs ${want.stats}`);
    assert.ok(maxAbs(ours.perCategoryAP, want.per_category_ap, `${what} per-category AP`) < 1e-12, `${what}: per-category AP ${ours.perCategoryAP} vs ${want.per_category_ap}`);
  });
});

test('masks equal pycocotools: polygon rasterisation, compressed strings, areas, boxes and IoUs', { skip }, () => {
  const rng = new Rng(77);
  const polys: { h: number; w: number; polys: number[][] }[] = [];
  for (let n = 0; n < 60; n++) {
    const h = 5 + rng.int(60), w = 5 + rng.int(60);
    const parts = 1 + rng.int(2);
    const pp: number[][] = [];
    for (let q = 0; q < parts; q++) {
      const k = 3 + rng.int(6);
      const p: number[] = [];
      // Vertices partly outside the image, fractional and integer, some repeated.
      for (let j = 0; j < k; j++) {
        const vx = rng.next() < 0.3 ? rng.int(w + 10) - 5 : rng.uniform(-3, w + 3);
        const vy = rng.next() < 0.3 ? rng.int(h + 10) - 5 : rng.uniform(-3, h + 3);
        p.push(vx, vy);
        if (rng.next() < 0.1) p.push(vx, vy);
      }
      pp.push(p);
    }
    polys.push({ h, w, polys: pp });
  }
  const masks: CocoRle[] = [];
  for (let n = 0; n < 20; n++) {
    const h = 1 + rng.int(30), w = 1 + rng.int(30);
    const m = new Uint8Array(h * w).map(() => (rng.next() < 0.4 ? 1 : 0));
    masks.push(rleEncode(m, h, w));
  }
  const iouSets = [0, 1, 2].map(() => {
    const h = 20 + rng.int(20), w = 20 + rng.int(20);
    const mk = (): CocoRle => polygonsToRle([[rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, h)]], h, w);
    return { dt: [mk(), mk(), mk(), mk()], gt: [mk(), mk(), mk()], iscrowd: [0, 1, rng.int(2)] };
  });
  const ref = reference({ polys, rles: masks, ious: iouSets });
  polys.forEach((p, i) => {
    const ours = polygonsToRle(p.polys, p.h, p.w);
    assert.equal(rleToString(ours.counts as number[]), ref.polys[i]!.counts, `polygon ${i} (${p.h}x${p.w}): ${JSON.stringify(p.polys)}`);
    assert.equal(rleArea(ours), ref.polys[i]!.area);
    assert.deepEqual(rleToBbox(ours), ref.polys[i]!.bbox);
  });
  masks.forEach((m, i) => assert.equal(rleToString(m.counts as number[]), ref.rles[i], `mask ${i}`));
  iouSets.forEach((s, i) => {
    const ours = rleIou(s.dt, s.gt, s.iscrowd.map((c) => c === 1));
    assert.deepEqual(ours, ref.ious[i], `iou set ${i}`);
  });
});
