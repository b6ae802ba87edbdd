/**
 * Decomposed relative position embeddings of detectron2 ViTDet / MViTv2
 * (detectron2/modeling/backbone/utils.py `get_rel_pos`, `add_decomposed_rel_pos`).
 *
 * The graph side computes `R = gather(matmul(M, table), idx)`: `M` resizes the `[L, C]` table to
 * `L' = 2·max(q, k) − 1` rows (identity when `L == L'`), `idx` picks row `rel(i, j)` for each query
 * i and key j. Both are constants of the shapes, built here.
 */
import { resampleMatrix, type ResampleMatrix } from './resample.ts';

/**
 * `idx[i·k + j]` = detectron2's `relative_coords.long()`:
 *   q_coords = i · max(k/q, 1),  k_coords = j · max(q/k, 1),
 *   rel = q_coords − k_coords + (k − 1) · max(q/k, 1).
 * The scaling aligns the two grids when q ≠ k (e.g. pooled queries in MViTv2). `.long()` truncates
 * toward zero; `rel ≥ 0`, so that is `floor`. Computed in float64, like the float32 `arange`·Python
 * float product in torch (exact for these small integers and ratios up to rounding of the ratio).
 */
export function getRelPosIndex(qSize: number, kSize: number): Int32Array {
  if (!Number.isInteger(qSize) || !Number.isInteger(kSize) || qSize < 1 || kSize < 1) {
    throw new Error(`getRelPosIndex: sizes must be positive integers, got q=${qSize}, k=${kSize}`);
  }
  const qRatio = Math.max(kSize / qSize, 1);
  const kRatio = Math.max(qSize / kSize, 1);
  const idx = new Int32Array(qSize * kSize);
  for (let i = 0; i < qSize; i++) {
    for (let j = 0; j < kSize; j++) idx[i * kSize + j] = Math.trunc(i * qRatio - j * kRatio + (kSize - 1) * kRatio);
  }
  return idx;
}

/** Number of table rows `get_rel_pos` needs: `2·max(q, k) − 1`. */
export function relPosLength(qSize: number, kSize: number): number {
  return 2 * Math.max(qSize, kSize) - 1;
}

/**
 * `[L', L]` matrix resizing a stored `[L, C]` table to `L' = 2·max(q,k) − 1` rows, i.e. detectron2's
 * `F.interpolate(table.T[None], size=L', mode='linear')` (align_corners False, source index clamped
 * at 0). When `L == L'` get_rel_pos skips the resize; the matrix is then the identity.
 */
export function relPosResizeMatrix(tableLen: number, qSize: number, kSize: number): ResampleMatrix {
  return resampleMatrix(tableLen, relPosLength(qSize, kSize), 'bilinear');
}

/**
 * Pure reference of `get_rel_pos(q, k, table)`: `table` is `[L, C]` row-major; returns `[q, k, C]`.
 */
export function getRelPos(qSize: number, kSize: number, table: ArrayLike<number>, tableLen: number): Float64Array {
  if (table.length % tableLen !== 0) {
    throw new Error(`getRelPos: table has ${table.length} values, not a multiple of its length ${tableLen}`);
  }
  const C = table.length / tableLen;
  const m = relPosResizeMatrix(tableLen, qSize, kSize);
  const resized = new Float64Array(m.out * C); // [L', C] = M · table
  for (let o = 0; o < m.out; o++) {
    for (let l = 0; l < tableLen; l++) {
      const w = m.data[o * tableLen + l]!;
      if (w === 0) continue;
      for (let c = 0; c < C; c++) resized[o * C + c]! += w * table[l * C + c]!;
    }
  }
  const idx = getRelPosIndex(qSize, kSize);
  const out = new Float64Array(qSize * kSize * C);
  for (let n = 0; n < idx.length; n++) out.set(resized.subarray(idx[n]! * C, idx[n]! * C + C), n * C);
  return out;
}
