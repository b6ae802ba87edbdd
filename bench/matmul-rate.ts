/**
 * The machine's fp32 matmul rate through the runtime (GFLOP/s): the yardstick every benchmark
 * divides by, measured in the same process because absolute times drift on a shared machine.
 */
import * as F from '../src/graph/index.ts';
import { Rng } from '../src/util/rng.ts';

/** Median GFLOP/s of an S x S x S product over `reps` timed runs after one warm-up. */
export async function matmulRate(rt: F.Runtime, S = 2048, reps = 5): Promise<number> {
  const r = new Rng(0);
  const a = F.host(Float32Array.from({ length: S * S }, () => r.normal()), [S, S]);
  const b = F.host(Float32Array.from({ length: S * S }, () => r.normal()), [S, S]);
  const build: F.BuildFn = (i) => ({ y: F.matmul(i.a!, i.b!) });
  await rt.run(build, { a, b });
  const times: number[] = [];
  for (let k = 0; k < reps; k++) {
    const t0 = performance.now();
    await rt.run(build, { a, b });
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((x, y) => x - y);
  return (2 * S ** 3) / times[Math.floor(times.length / 2)]! / 1e9;
}
