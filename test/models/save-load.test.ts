/**
 * A model saved as safetensors and loaded back (through the checkpoint loader and
 * its key maps) gives bit-identical outputs, for every model family.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Runtime, host } from '../../src/graph/runtime.ts';
import { Params, initWeights, type Weights } from '../../src/nn/params.ts';
import { createModel } from '../../src/models/registry.ts';
import { saveSafetensors } from '../../src/io/safetensors.ts';
import { loadWeightsFor } from '../../src/io/load-model.ts';
import { Rng } from '../../src/util/rng.ts';
import type { Model } from '../../src/models/types.ts';

async function run(rt: Runtime, model: Model, weights: Weights, x: Float32Array, res: number): Promise<Float32Array> {
  const out = await rt.run((inp, g) => ({ y: model.forward(new Params(g, weights), inp.x!).logits }), { x: host(x, [1, 3, res, res]) });
  return out.y!.data as Float32Array;
}

const cases: [string, Record<string, unknown>, number][] = [
  ['vit-mini-p4', { depth: 1 }, 32],
  ['resformer-mini-p4', { depth: 1 }, 24],
  ['hiera-mini-abswin', {}, 64],
  ['hiera-mini', {}, 96],
  ['vitdet-mini', { depth: 2, globalBlocks: [1] }, 64],
  ['hieradet-mini', {}, 64],
];

for (const [preset, overrides, res] of cases) {
  test(`${preset}: save -> load as safetensors -> identical outputs at ${res} px`, async () => {
    const model = createModel(preset, overrides);
    const weights = initWeights(model.paramInfos(), new Rng(7));
    // Make every parameter matter (initialisers leave some at exactly 0 or 1).
    const r = new Rng(8);
    for (const w of weights.values()) for (let i = 0; i < w.data.length; i++) w.data[i] = w.data[i]! + 0.05 * r.normal();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-sl-'));
    const file = path.join(dir, 'm.safetensors');
    saveSafetensors(file, weights, { 'anyres.config': JSON.stringify({ family: model.family, config: model.config }) });
    const loaded = loadWeightsFor(model, file, { strict: true });
    assert.equal(loaded.match.missing.length, 0);
    assert.equal(loaded.match.unexpected.length, 0);
    const x = Float32Array.from({ length: 3 * res * res }, (_, i) => Math.sin(i * 0.1));
    const rt = new Runtime();
    const a = await run(rt, model, weights, x, res);
    const b = await run(rt, model, loaded.weights, x, res);
    assert.deepEqual(Array.from(b), Array.from(a));
    // And a perturbed weight changes the output (the comparison can fail).
    const first = [...loaded.weights.values()].find((w) => w.data.length > 8)!;
    first.data[0] = first.data[0]! + 1;
    const c = await run(rt, model, loaded.weights, x, res);
    assert.notDeepEqual(Array.from(c), Array.from(a));
    fs.rmSync(dir, { recursive: true });
  });
}
