/**
 * Speed of a windowed ViT backbone (Bolya et al. 2024, Tables 3/17): relative
 * position embeddings in every block with an interpolated absolute embedding
 * (ViTDet's recipe) versus absolute win with relpos only in the few global
 * blocks. Measured as ms per image, median of repeats, with the ratio from the
 * same run (absolute times drift on a shared machine; the ratio does not).
 */
import type { Runtime } from '../../graph/runtime.ts';
import { createVitDet, vitdetSpeedConfigs } from '../../models/vitdet.ts';
import { compileEval } from '../../train/step.ts';
import { initState } from '../../train/state.ts';
import { Rng } from '../../util/rng.ts';

export interface SpeedRow {
  preset: string;
  res: number;
  msRelposAll: number;
  msAbswin: number;
  speedup: number;
}

export async function msPerImage(rt: Runtime, cfg: ReturnType<typeof vitdetSpeedConfigs>['baseline'], res: number, batch: number, repeats: number): Promise<number> {
  const model = createVitDet(cfg);
  const ev = compileEval(rt, model, { batch, res });
  const params = initState(model.paramInfos(), new Rng(1)).params;
  const x = new Float32Array(batch * 3 * res * res).map((_, i) => Math.sin(i * 0.37));
  await ev.run(params, x); // compile + warm-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await ev.run(params, x);
    times.push((performance.now() - t0) / batch);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export async function runSpeedExperiment(rt: Runtime, preset: string, resolutions: number[], batch: number, repeats: number, log: (m: string) => void): Promise<SpeedRow[]> {
  const rows: SpeedRow[] = [];
  for (const res of resolutions) {
    const pair = vitdetSpeedConfigs(preset, res);
    // Interleave the two so that drift affects both alike.
    const a: number[] = [];
    const b: number[] = [];
    for (let k = 0; k < 2; k++) {
      a.push(await msPerImage(rt, pair.baseline, res, batch, repeats));
      b.push(await msPerImage(rt, pair.abswin, res, batch, repeats));
    }
    const msRelposAll = Math.min(...a);
    const msAbswin = Math.min(...b);
    rows.push({ preset, res, msRelposAll, msAbswin, speedup: msRelposAll / msAbswin });
    log(`${preset} @${res}: relpos in every block ${msRelposAll.toFixed(1)} ms/img, abs-win + relpos in global blocks ${msAbswin.toFixed(1)} ms/img (x${(msRelposAll / msAbswin).toFixed(2)})`);
  }
  return rows;
}
