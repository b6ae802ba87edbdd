/**
 * Learning-rate schedules (per optimizer step) and layer-wise lr decay.
 *
 * Warmup + cosine follows timm's CosineLRScheduler with `t_in_epochs=False` stepped every update
 * (timm/scheduler/cosine_lr.py): during warmup lr = warmupInit + (base − warmupInit)·t/warmup;
 * afterwards lr = min + (base − min)·(1 + cos(π·(t − warmup)/(total − warmup)))/2.
 */

export interface CosineSchedule {
  /** Peak learning rate (reached at the end of warmup). */
  baseLr: number;
  /** Total optimizer steps. */
  totalSteps: number;
  /** Linear warmup steps (default 0). */
  warmupSteps?: number;
  /** lr at step 0 of warmup (default 0). */
  warmupInitLr?: number;
  /** Final lr (default 0). */
  minLr?: number;
}

export function checkSchedule(s: CosineSchedule): void {
  const w = s.warmupSteps ?? 0;
  if (!(s.baseLr >= 0) || !Number.isFinite(s.baseLr)) throw new RangeError(`schedule: baseLr must be a finite number >= 0, got ${s.baseLr}`);
  if (!Number.isInteger(s.totalSteps) || s.totalSteps < 1) throw new RangeError(`schedule: totalSteps must be a positive integer, got ${s.totalSteps}`);
  if (!Number.isInteger(w) || w < 0 || w > s.totalSteps) throw new RangeError(`schedule: warmupSteps must be an integer in [0, ${s.totalSteps}], got ${w}`);
}

/** The lr for the update with 0-based index `step` (step 0 = the first update). */
export function cosineLr(s: CosineSchedule, step: number): number {
  checkSchedule(s);
  const w = s.warmupSteps ?? 0;
  const init = s.warmupInitLr ?? 0;
  const min = s.minLr ?? 0;
  if (step < w) return init + ((s.baseLr - init) * step) / w;
  const span = s.totalSteps - w;
  if (span <= 0) return s.baseLr;
  const t = Math.min(1, (step - w) / span);
  return min + 0.5 * (s.baseLr - min) * (1 + Math.cos(Math.PI * t));
}

/**
 * Layer id of a parameter for layer-wise lr decay, from its official name (BEiT
 * `get_num_layer_for_vit`; ViTDet `get_vit_lr_decay_rate`): embeddings (patch_embed, cls_token,
 * pos_embed, ...) are layer 0, `blocks.i.*` is layer i + 1, everything after the blocks (final
 * norm, head) is depth + 1.
 */
export function layerId(name: string, depth: number): number {
  const m = /(?:^|\.)blocks\.(\d+)\./.exec(name);
  if (m) return Number(m[1]) + 1;
  if (/(^|\.)(patch_embed|cls_token|pos_embed|pos_embed_window|dist_token|reg_token|mask_token|absolute_pos_embed)(\.|$)/.test(name)) return 0;
  return depth + 1;
}

/** Per-parameter lr multipliers decay^(depth + 1 − layerId): the head gets 1, embeddings decay^(depth+1). */
export function layerDecayScales(names: Iterable<string>, depth: number, decay: number): Map<string, number> {
  if (!(decay > 0 && decay <= 1)) throw new RangeError(`layerDecayScales: decay must be in (0, 1], got ${decay}`);
  const out = new Map<string, number>();
  for (const n of names) out.set(n, decay ** (depth + 1 - layerId(n, depth)));
  return out;
}
