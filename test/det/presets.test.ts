/**
 * Detection smoke test over every ViTDet and HieraDet preset (the large ones at reduced depth and
 * width, named in the test title; window sizes, global-block layout rules, pos-embed grids and
 * drop-path rates stay the preset's): an FCOS detector on it trains a few steps (finite losses,
 * parameters move) and is evaluated with COCO AP at two input sizes, one of them not a multiple
 * of the attention window.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime } from '../../src/graph/runtime.ts';
import { type CreateDetectorOptions, createDetector } from '../../src/det/detector.ts';
import { trainDetector } from '../../src/det/trainer.ts';
import { evaluateDetector } from '../../src/det/evaluate.ts';
import { vitdetPresets } from '../../src/models/vitdet.ts';
import { hieradetPresets } from '../../src/models/hieradet.ts';
import { RectsDataset } from './rects.ts';

const rt = new Runtime();
after(() => rt.clear());
const quiet = { write: (): boolean => true };

interface Case {
  title: string;
  backbone: CreateDetectorOptions['backbone'];
  train: [number, number];
  /** Evaluation sizes: the second is not a multiple of the window (in tokens). */
  sizes: [[number, number], [number, number]];
}

const cases: Case[] = [];
for (const [name, cfg] of Object.entries(vitdetPresets)) {
  const small = cfg.embedDim <= 64 && cfg.depth <= 4;
  const overrides = small ? {} : { embedDim: 32, depth: 3, numHeads: 2, globalBlocks: [2], pyramid: { ...cfg.pyramid!, outChannels: 16 } };
  const ws = cfg.windowSize * cfg.patchSize; // window in pixels
  cases.push({
    title: `${name}${small ? '' : ' (reduced: depth 3, width 32, pyramid 16)'}, window ${cfg.windowSize}`,
    backbone: { family: 'vitdet', config: name, overrides },
    train: [ws, ws],
    sizes: [[ws, ws], [ws - 2 * cfg.patchSize, ws + 3 * cfg.patchSize]],
  });
}
for (const [name, cfg] of Object.entries(hieradetPresets)) {
  const small = cfg.embedDim <= 16;
  const overrides = small ? {} : { embedDim: 16, numHeads: 1, stages: [1, 1, 2, 1], globalAttBlocks: [3] };
  const w0 = cfg.windowSpec[0]! * 4; // stage-1 window in pixels
  cases.push({
    title: `${name}${small ? '' : ' (reduced: stages 1,1,2,1, width 16)'}, windows ${cfg.windowSpec.join(',')}`,
    backbone: { family: 'hieradet', config: name, overrides },
    train: [4 * w0, 4 * w0],
    sizes: [[4 * w0, 4 * w0], [3 * w0 + 12, 4 * w0 + 20]],
  });
}

for (const c of cases) {
  test(`detect smoke: ${c.title}`, async () => {
    const det = createDetector({ backbone: c.backbone, numClasses: 2, neck: { dim: 16 }, head: { numConvs: 1 } });
    const win = det.spec.backbone.family === 'vitdet' ? det.spec.backbone.config.windowSize * 16 : det.spec.backbone.config.windowSpec[0]! * 4;
    assert.ok(c.sizes[1][0] % win !== 0 && c.sizes[1][1] % win !== 0, 'the second size is not a multiple of the window');
    const ds = new RectsDataset(2, 2, c.train, 3);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-det-smoke-'));
    const init = det.init(1);
    const r = await trainDetector({ rt, detector: det, train: ds, out, progressStream: quiet }, { size: c.train, batch: 1, steps: 2, lr: 1e-3, seed: 0 });
    assert.equal(r.steps, 2);
    assert.ok(r.losses.every(Number.isFinite), `losses ${r.losses}`);
    const moved = [...r.state.params].filter(([k, v]) => v.some((x, i) => x !== init.get(k)![i])).length;
    assert.ok(moved > r.state.params.size / 2, `only ${moved} of ${r.state.params.size} parameters changed`);
    for (const size of c.sizes) {
      const ev = await evaluateDetector(rt, det, r.state.params, new RectsDataset(2, 2, size, 4), size, { batch: 2, progressStream: quiet });
      assert.equal(ev.stats.length, 12);
      assert.ok(ev.stats.every((s) => s === -1 || (s >= 0 && s <= 1)), `stats ${ev.stats}`);
      for (const im of ev.images) {
        for (const d of im.detections) {
          assert.ok(d.box[0] >= 0 && d.box[1] >= 0 && d.box[2] <= size[1] && d.box[3] <= size[0] && d.box[2] > d.box[0] && d.box[3] > d.box[1], `box ${d.box} in ${size}`);
          assert.ok(d.score > 0 && d.score <= 1 && (d.label === 0 || d.label === 1));
        }
      }
    }
    fs.rmSync(out, { recursive: true });
  });
}
