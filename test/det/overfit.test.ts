/**
 * The detector learns: a tiny ViTDet + FCOS head trained through our autodiff on six images of
 * coloured rectangles must drive the FCOS loss well down and find those rectangles again (COCO
 * AP50 on the training images, through the COCO evaluator). This is the end-to-end check of head,
 * target assignment, losses and gradients together; the HieraDet case adds the FPN-like neck.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/runtime.ts';
import { createDetector } from '../../src/det/detector.ts';
import { trainDetector } from '../../src/det/trainer.ts';
import { evaluateDetector } from '../../src/det/evaluate.ts';
import { RectsDataset } from './rects.ts';

const rt = new Runtime();
after(() => rt.clear());
const quiet = { write: (): boolean => true };

test('overfit: a tiny ViTDet-FCOS drives the loss down and reaches a high AP50 on its training images', async (t) => {
  const det = createDetector({
    backbone: {
      family: 'vitdet', config: 'vitdet-mini',
      overrides: { embedDim: 32, depth: 2, numHeads: 2, globalBlocks: [1], windowSize: 4, pretrainGrid: 4, imgSize: 64, pyramid: { outChannels: 32, scaleFactors: [2, 1, 0.5], topBlock: true, normEps: 1e-6 } },
    },
    numClasses: 3, head: { numConvs: 2, gnGroups: 8 },
  });
  const ds = new RectsDataset(6, 3, [64, 64], 1);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-det-overfit-'));
  const before = await evaluateDetector(rt, det, det.init(0), ds, [64, 64], { progressStream: quiet });
  const r = await trainDetector(
    { rt, detector: det, train: ds, out, progressStream: quiet },
    { size: [64, 64], batch: 6, steps: 120, lr: 3e-3, warmupSteps: 10, weightDecay: 1e-4, seed: 0, augment: false, logEverySteps: 20 },
  );
  const first = r.losses.slice(0, 5).reduce((a, b) => a + b, 0) / 5;
  const last = r.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  // The centre-ness BCE has a floor (the entropy of its soft targets, ~0.6 here); the rest must fall.
  assert.ok(last < 0.45 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  const ev = await evaluateDetector(rt, det, r.state.params, ds, [64, 64], { progressStream: quiet });
  const ap50 = ev.stats[1]!;
  t.diagnostic(`loss ${first.toFixed(3)} -> ${last.toFixed(3)}; AP50 ${before.stats[1]!.toFixed(3)} -> ${ap50.toFixed(3)}, AP ${ev.stats[0]!.toFixed(3)}`);
  assert.ok(before.stats[1]! < 0.2, `untrained AP50 ${before.stats[1]}`);
  assert.ok(ap50 > 0.9, `AP50 on the training images ${ap50} (AP ${ev.stats[0]})`);
  assert.ok(ev.stats[0]! > 0.5, `AP ${ev.stats[0]}`);
  const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
  assert.deepEqual([log[0]!.type, log[log.length - 1]!.type], ['start', 'done']);
  fs.rmSync(out, { recursive: true });
});

test('overfit: a tiny HieraDet + neck + FCOS finds its training rectangles (AP50)', async (t) => {
  const det = createDetector({ backbone: { family: 'hieradet', config: 'hieradet-mini' }, numClasses: 3, neck: { dim: 32 }, head: { numConvs: 2, gnGroups: 8 } });
  const ds = new RectsDataset(6, 3, [64, 64], 1);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-det-overfit-'));
  const r = await trainDetector(
    { rt, detector: det, train: ds, out, progressStream: quiet },
    { size: [64, 64], batch: 6, steps: 80, lr: 4e-3, warmupSteps: 10, weightDecay: 1e-4, seed: 0, augment: false },
  );
  const ev = await evaluateDetector(rt, det, r.state.params, ds, [64, 64], { progressStream: quiet });
  t.diagnostic(`loss ${r.losses[0]!.toFixed(3)} -> ${r.lastLoss.toFixed(3)}; AP50 ${ev.stats[1]!.toFixed(3)}, AP ${ev.stats[0]!.toFixed(3)}`);
  assert.ok(r.lastLoss < 0.4 * r.losses[0]!, `loss ${r.losses[0]} -> ${r.lastLoss}`);
  assert.ok(ev.stats[1]! > 0.8, `AP50 ${ev.stats[1]}`);
  fs.rmSync(out, { recursive: true });
});
