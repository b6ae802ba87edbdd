/**
 * COCO detection evaluation, equal to the official
 * `COCOeval(cocoGt, cocoGt.loadRes(dt), iouType).evaluate(); accumulate(); summarize()`
 * (cocodataset/cocoapi `PythonAPI/pycocotools/cocoeval.py`, with `coco.py` `loadRes` /
 * `annToRLE` and the IoUs of `common/maskApi.c`, here in `./mask.ts`).
 *
 * The details that move numbers, all kept:
 * - `loadRes`: the FIRST result decides the kind. If it has a non-empty `bbox`, every result is a
 *   box result: `area = w*h` (also when a mask is given), a missing segmentation becomes the box's
 *   polygon. Otherwise results are masks: `area` is the RLE's pixel count and a missing bbox is the
 *   RLE's bbox. Result ids are 1..N in input order; results are never crowd.
 * - Ground truth `ignore` is `iscrowd` (a stored `ignore` field is overwritten, as in `_prepare`);
 *   a gt outside the area range is ignored for that range; ranges are closed at both ends.
 * - Detections per image and category are sorted by score with a STABLE sort (numpy mergesort)
 *   and cut to the largest maxDets; ground truths are stably sorted with ignored ones last.
 * - Greedy matching per IoU threshold `min(t, 1 - 1e-10)`: a crowd gt can absorb any number of
 *   detections, which are then ignored; a detection matched to a regular gt never moves to an
 *   ignored one. Unmatched detections outside the area range are ignored.
 * - Matches are kept as gt ids and read as truth values, so (as in pycocotools) a match to a gt
 *   with id 0 counts as unmatched downstream.
 * - accumulate: precision = tp / (tp + fp + eps) with eps = np.spacing(1), the monotone
 *   envelope from the right, then `np.searchsorted(rc, recThrs, side='left')`; recall
 *   thresholds beyond the last recall get precision 0. -1 marks settings without gt.
 * - Thresholds are numpy `linspace` values (0.5 + i * 0.45/9), not decimal literals.
 *
 * One deliberate difference: pycocotools cannot load an empty result list (`anns[0]`); here no
 * detections means AP 0 (and -1 where there is no gt), which a training loop needs.
 *
 * @example
 * const r = cocoEval(dataset.cocoGroundTruth(), detections, 'bbox');
 * console.log(formatSummary(r)); // the 12 lines pycocotools prints
 * r.stats[0];                    // AP @[.5:.95]
 */
import type { CocoDataset, CocoDetection, CocoImage } from './types.ts';
import {
  type RleCounts, bboxIouFlat, bboxToCounts, rleAreaCounts, rleIouFlat, rleToBboxCounts, segmentationToCounts,
} from './mask.ts';

export type IouType = 'bbox' | 'segm';

export interface CocoEvalParams {
  /** default: every image of the ground truth (sorted, unique) */
  imgIds?: number[];
  /** default: every category of the ground truth (sorted, unique) */
  catIds?: number[];
  /** default: linspace(0.5, 0.95, 10) */
  iouThrs?: number[];
  /** default: linspace(0, 1, 101) */
  recThrs?: number[];
  /** default [1, 10, 100]; sorted ascending as `evaluate` does. summarize needs three. */
  maxDets?: number[];
  /** default [[0, 1e10], [0, 32²], [32², 96²], [96², 1e10]] */
  areaRng?: [number, number][];
  /** default ['all', 'small', 'medium', 'large'] */
  areaRngLbl?: string[];
  /** default true; false pools categories (proposal scoring) */
  useCats?: boolean;
}

export type ResolvedParams = Required<CocoEvalParams>;

export const STATS_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;

export interface CocoEvalResult {
  iouType: IouType;
  params: ResolvedParams;
  /** the 12 numbers of `COCOeval.stats` (-1 where there is no gt) */
  stats: number[];
  statsNames: string[];
  /** per category of `params.catIds`: mean precision over IoU thresholds and recall points at area 'all', the largest maxDets; -1 without gt */
  perCategoryAP: number[];
  categoryIds: number[];
  /** [T, R, K, A, M] */
  counts: [number, number, number, number, number];
  /** precision[T][R][K][A][M], row-major, -1 where absent */
  precision: Float64Array;
  /** recall[T][K][A][M], row-major, -1 where absent */
  recall: Float64Array;
  /** score at each precision point [T][R][K][A][M] */
  scores: Float64Array;
}

/** numpy `linspace(start, stop, num, endpoint=True)`, bit for bit: `i * step + start`, last = stop. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (!Number.isInteger(num) || num < 0) throw new Error(`linspace: num must be a non-negative integer, got ${num}`);
  const div = num - 1;
  const delta = stop - start;
  const y: number[] = [];
  for (let i = 0; i < num; i++) {
    if (div > 0) {
      const step = delta / div;
      y.push(step === 0 ? (i / div) * delta + start : i * step + start);
    } else y.push(i * delta + start);
  }
  if (num > 1) y[num - 1] = stop;
  return y;
}

/** pycocotools `Params.setDetParams` (iouThrs/recThrs via np.linspace, "np.arange causes trouble"). */
export function defaultParams(): Omit<ResolvedParams, 'imgIds' | 'catIds'> {
  return {
    iouThrs: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
    recThrs: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
    maxDets: [1, 10, 100],
    areaRng: [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]],
    areaRngLbl: ['all', 'small', 'medium', 'large'],
    useCats: true,
  };
}

const sortedUnique = (v: readonly number[]): number[] => [...new Set(v)].sort((a, b) => a - b);

/** Indices 0..n-1 stably sorted by descending key (numpy `argsort(-key, kind='mergesort')`). */
function argsortDesc(key: ArrayLike<number>, n = key.length): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  return idx.sort((i, j) => (key[i]! > key[j]! ? -1 : key[i]! < key[j]! ? 1 : 0));
}

/** One ground truth or detection, in the form the per-image evaluation reads. */
interface Region {
  id: number;
  area: number;
  iscrowd: boolean;
  score: number;
  bbox: readonly number[];
  rle: RleCounts | null;
}

/** The evaluation of one (category, area range, image): evaluateImg's dict, as flat typed arrays. */
interface ImgEval {
  /** detections kept (<= the largest maxDets), sorted by score */
  D: number;
  scores: Float64Array;
  /** [T*D]: matched to a gt (with a truthy id) */
  matched: Uint8Array;
  /** [T*D]: ignored */
  ignored: Uint8Array;
  /** gts that are not ignored */
  npig: number;
}

function fail(msg: string): never {
  throw new Error(`cocoEval: ${msg}`);
}

function resolveParams(gt: CocoDataset, p: CocoEvalParams | undefined): ResolvedParams {
  const d = defaultParams();
  const r: ResolvedParams = {
    imgIds: sortedUnique(p?.imgIds ?? gt.images.map((im) => im.id)),
    catIds: sortedUnique(p?.catIds ?? gt.categories.map((c) => c.id)),
    iouThrs: p?.iouThrs ?? d.iouThrs,
    recThrs: p?.recThrs ?? d.recThrs,
    maxDets: [...(p?.maxDets ?? d.maxDets)].sort((a, b) => a - b),
    areaRng: p?.areaRng ?? d.areaRng,
    areaRngLbl: p?.areaRngLbl ?? d.areaRngLbl,
    useCats: p?.useCats ?? d.useCats,
  };
  if (r.areaRng.length !== r.areaRngLbl.length) fail(`params.areaRng has ${r.areaRng.length} ranges but areaRngLbl ${r.areaRngLbl.length} labels`);
  if (r.maxDets.length === 0 || !r.maxDets.every((m) => Number.isInteger(m) && m > 0)) fail(`params.maxDets must be positive integers, got [${r.maxDets}]`);
  if (r.iouThrs.length === 0 || r.recThrs.length === 0) fail('params.iouThrs and params.recThrs must not be empty');
  return r;
}

/** `cocoGt.loadRes(dt)`: results with ids, areas, boxes and (for segm) masks. */
function loadResults(dts: readonly CocoDetection[], imgs: Map<number, CocoImage>, iouType: IouType): (Region & { image_id: number; category_id: number })[] {
  if (!Array.isArray(dts)) fail(`detections must be an array of {image_id, category_id, bbox | segmentation, score}, got ${typeof dts}`);
  if (dts.length === 0) return [];
  const boxResults = Array.isArray(dts[0]!.bbox) && dts[0]!.bbox.length !== 0;
  if (!boxResults && !dts[0]!.segmentation) fail('detection 0 has neither a bbox nor a segmentation (loadRes decides the kind of all results from the first)');
  return dts.map((d, i) => {
    if (!imgs.has(d.image_id)) fail(`detection ${i} has image_id ${d.image_id}, which is not an image of the ground truth ("Results do not correspond to current coco set")`);
    if (typeof d.score !== 'number' || !Number.isFinite(d.score)) fail(`detection ${i} has score ${d.score}; scores must be finite numbers`);
    const im = imgs.get(d.image_id)!;
    let bbox: readonly number[];
    let area: number;
    let rle: RleCounts | null = null;
    if (boxResults) {
      const b = d.bbox;
      if (!Array.isArray(b) || b.length !== 4) fail(`detection ${i} has bbox ${JSON.stringify(b)}; the first result is a box result, so every result needs bbox [x, y, w, h]`);
      bbox = b;
      area = b[2] * b[3];
      if (iouType === 'segm') rle = d.segmentation ? segmentationToCounts(d.segmentation, im.height, im.width, `cocoEval: detection ${i}`) : bboxToCounts(b, im.height, im.width);
    } else {
      if (!d.segmentation) fail(`detection ${i} has no segmentation; the first result is a mask result, so every result needs one`);
      const r = segmentationToCounts(d.segmentation, im.height, im.width, `cocoEval: detection ${i}`);
      area = rleAreaCounts(r);
      bbox = d.bbox ?? rleToBboxCounts(r);
      if (iouType === 'segm') rle = r;
    }
    return { id: i + 1, image_id: d.image_id, category_id: d.category_id, area, iscrowd: false, score: d.score, bbox, rle };
  });
}

/**
 * Runs COCOeval and returns its summary numbers, the per-category AP and the accumulated arrays.
 * `gt` is the ground truth in COCO format; `dt` the detections as `loadRes` takes them.
 */
export function cocoEval(gt: CocoDataset, dt: readonly CocoDetection[], iouType: IouType, params?: CocoEvalParams): CocoEvalResult {
  if (iouType !== 'bbox' && iouType !== 'segm') fail(`iouType must be 'bbox' or 'segm', got '${String(iouType)}'`);
  if (!gt || !Array.isArray(gt.images) || !Array.isArray(gt.annotations) || !Array.isArray(gt.categories)) {
    fail('ground truth must be a COCO dataset {images, annotations, categories}');
  }
  const p = resolveParams(gt, params);
  const imgs = new Map(gt.images.map((im) => [im.id, im]));
  const T = p.iouThrs.length, A = p.areaRng.length, I = p.imgIds.length;
  const catList = p.useCats ? p.catIds : [-1];
  const K = catList.length;
  const imgIndex = new Map(p.imgIds.map((id, i) => [id, i]));
  const catIndex = new Map(p.catIds.map((id, k) => [id, k]));
  const maxDet = p.maxDets[p.maxDets.length - 1]!;

  // _prepare: gts and dts of the evaluated images and categories, grouped per (category, image)
  // in dataset order (pycocotools walks imgIds, then each image's annotations in file order).
  // Without useCats, per image the categories are concatenated in catIds order (computeIoU).
  const gtsBy: Region[][][] = Array.from({ length: p.catIds.length }, () => Array.from({ length: I }, () => []));
  const dtsBy: Region[][][] = Array.from({ length: p.catIds.length }, () => Array.from({ length: I }, () => []));
  // pycocotools fetches annotations by id (`COCO.loadAnns`), so with duplicate ids every entry
  // resolves to the LAST annotation of that id; we do the same.
  const lastById = new Map<number, number>();
  const byImage = new Map<number, number[]>();
  gt.annotations.forEach((a, n) => {
    lastById.set(a.id, n);
    const list = byImage.get(a.image_id);
    if (list) list.push(n); else byImage.set(a.image_id, [n]);
  });
  const regionOfAnn = new Map<number, Region>();
  const gtRegion = (n: number): Region => {
    const cached = regionOfAnn.get(n);
    if (cached) return cached;
    const a = gt.annotations[n]!;
    const im = imgs.get(a.image_id);
    if (!im) fail(`annotation ${n} (id ${a.id}) is on image ${a.image_id}, which is not in gt.images`);
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4) fail(`annotation ${n} (id ${a.id}) has bbox ${JSON.stringify(a.bbox)}, expected [x, y, w, h]`);
    if (typeof a.area !== 'number') fail(`annotation ${n} (id ${a.id}) has no numeric area (COCO gt stores it; the area ranges read it)`);
    let rle: RleCounts | null = null;
    if (iouType === 'segm') {
      if (a.segmentation === undefined) fail(`annotation ${n} (id ${a.id}) has no segmentation, needed for iouType 'segm'`);
      rle = segmentationToCounts(a.segmentation, im.height, im.width, `cocoEval: annotation ${n} (id ${a.id})`);
    }
    const r: Region = { id: a.id, area: a.area, iscrowd: !!a.iscrowd, score: 0, bbox: a.bbox, rle };
    regionOfAnn.set(n, r);
    return r;
  };
  // getAnnIds: imgIds in order, each image's annotations in file order, filtered by category.
  for (const imgId of p.imgIds) {
    for (const n0 of byImage.get(imgId) ?? []) {
      if (p.useCats && !catIndex.has(gt.annotations[n0]!.category_id)) continue;
      const n = lastById.get(gt.annotations[n0]!.id)!;
      const a = gt.annotations[n]!;
      const i = imgIndex.get(a.image_id), k = catIndex.get(a.category_id);
      if (i === undefined || k === undefined) continue; // grouped where no evaluation reads it
      gtsBy[k]![i]!.push(gtRegion(n));
    }
  }
  for (const d of loadResults(dt, imgs, iouType)) {
    const i = imgIndex.get(d.image_id), k = catIndex.get(d.category_id);
    if (i !== undefined && k !== undefined) dtsBy[k]![i]!.push(d);
  }
  const regionsOf = (by: Region[][][], kk: number, i: number): Region[] =>
    p.useCats ? by[kk]![i]! : p.catIds.flatMap((_, k) => by[k]![i]!);

  // evaluate: per (category, image) the IoUs once, then evaluateImg per area range.
  // evals[(k * A + a) * I + i], null where the image has neither gt nor dt of the category.
  const evals: (ImgEval | null)[] = new Array(K * A * I).fill(null);
  const thr = p.iouThrs.map((t) => Math.min(t, 1 - 1e-10));
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < I; i++) {
      const g = regionsOf(gtsBy, k, i);
      const dAll = regionsOf(dtsBy, k, i);
      if (g.length === 0 && dAll.length === 0) continue;
      const order = argsortDesc(dAll.map((r) => r.score));
      const d = order.slice(0, maxDet).map((j) => dAll[j]!);
      const G = g.length, D = d.length;
      const crowd = Uint8Array.from(g, (r) => (r.iscrowd ? 1 : 0));
      // ious[di * G + gi] (computeIoU; [] when either side is empty)
      let ious: Float64Array | null = null;
      if (G > 0 && D > 0) {
        ious = iouType === 'segm'
          ? rleIouFlat(d.map((r) => r.rle!), g.map((r) => r.rle!), crowd)
          : bboxIouFlat(d.flatMap((r) => r.bbox), g.flatMap((r) => r.bbox), crowd);
      }
      const scores = Float64Array.from(d, (r) => r.score);
      for (let a = 0; a < A; a++) {
        const [lo, hi] = p.areaRng[a]!;
        const ig = g.map((r) => (r.iscrowd || r.area < lo || r.area > hi ? 1 : 0));
        // gts stably sorted with ignored ones last (np.argsort(gtIg, kind='mergesort'))
        const gtind = [...ig.keys()].sort((x, y) => ig[x]! - ig[y]!);
        const gIg = Uint8Array.from(gtind, (j) => ig[j]!);
        const gCrowd = Uint8Array.from(gtind, (j) => crowd[j]!);
        const gIdTruthy = Uint8Array.from(gtind, (j) => (g[j]!.id !== 0 ? 1 : 0));
        const matched = new Uint8Array(T * D);
        const ignored = new Uint8Array(T * D);
        if (ious) {
          const gtm = new Uint8Array(T * G);
          for (let t = 0; t < T; t++) {
            for (let di = 0; di < D; di++) {
              let best = thr[t]!;
              let m = -1;
              for (let gi = 0; gi < G; gi++) {
                // already matched and not a crowd: taken
                if (gtm[t * G + gi] && !gCrowd[gi]) continue;
                // matched to a regular gt and the rest are ignored ones: stop
                if (m > -1 && gIg[m] === 0 && gIg[gi] === 1) break;
                const v = ious[di * G + gtind[gi]!]!;
                if (v < best) continue;
                best = v;
                m = gi;
              }
              if (m === -1) continue;
              ignored[t * D + di] = gIg[m]!;
              matched[t * D + di] = gIdTruthy[m]!;
              gtm[t * G + m] = 1;
            }
          }
        }
        // unmatched detections outside the area range are ignored
        for (let di = 0; di < D; di++) {
          const out = d[di]!.area < lo || d[di]!.area > hi;
          if (!out) continue;
          for (let t = 0; t < T; t++) if (!matched[t * D + di]) ignored[t * D + di] = 1;
        }
        let npig = 0;
        for (const v of gIg) if (v === 0) npig++;
        evals[(k * A + a) * I + i] = { D, scores, matched, ignored, npig };
      }
    }
  }

  const acc = accumulate(evals, p, K, I);
  const stats = summarize(acc.precision, acc.recall, p, K);
  const aAll = p.areaRngLbl.indexOf('all');
  const perCategoryAP = catList.map((_, k) => {
    if (aAll < 0) return -1;
    const R = p.recThrs.length, M = p.maxDets.length;
    let s = 0, n = 0;
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < R; r++) {
        const v = acc.precision[(((t * R + r) * K + k) * A + aAll) * M + M - 1]!;
        if (v > -1) { s += v; n++; }
      }
    }
    return n ? s / n : -1;
  });
  return {
    iouType,
    params: p,
    stats,
    statsNames: [...STATS_NAMES],
    perCategoryAP,
    categoryIds: catList,
    counts: [T, p.recThrs.length, K, A, p.maxDets.length],
    ...acc,
  };
}

/** COCOeval.accumulate over the per-image evaluations. */
function accumulate(evals: readonly (ImgEval | null)[], p: ResolvedParams, K: number, I: number): { precision: Float64Array; recall: Float64Array; scores: Float64Array } {
  const T = p.iouThrs.length, R = p.recThrs.length, A = p.areaRng.length, M = p.maxDets.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const scores = new Float64Array(T * R * K * A * M).fill(-1);
  const eps = 2.220446049250313e-16; // np.spacing(1)
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E: ImgEval[] = [];
      for (let i = 0; i < I; i++) { const e = evals[(k * A + a) * I + i]; if (e) E.push(e); }
      if (E.length === 0) continue;
      let npig = 0;
      for (const e of E) npig += e.npig;
      if (npig === 0) continue;
      for (let m = 0; m < M; m++) {
        const maxDet = p.maxDets[m]!;
        // concatenate each image's first maxDet detections, then a stable sort by score
        let N = 0;
        for (const e of E) N += Math.min(e.D, maxDet);
        const sc = new Float64Array(N);
        const src = new Int32Array(N); // which image
        const pos = new Int32Array(N); // index within it
        let n = 0;
        E.forEach((e, ei) => {
          for (let di = 0; di < Math.min(e.D, maxDet); di++) { sc[n] = e.scores[di]!; src[n] = ei; pos[n] = di; n++; }
        });
        const inds = argsortDesc(sc);
        const rc = new Float64Array(N), pr = new Float64Array(N);
        for (let t = 0; t < T; t++) {
          let tp = 0, fp = 0;
          for (let j = 0; j < N; j++) {
            const q = inds[j]!;
            const e = E[src[q]!]!;
            const o = t * e.D + pos[q]!;
            if (!e.ignored[o]) { if (e.matched[o]) tp++; else fp++; }
            rc[j] = tp / npig;
            pr[j] = tp / (fp + tp + eps);
          }
          recall[((t * K + k) * A + a) * M + m] = N ? rc[N - 1]! : 0;
          // precision envelope: non-increasing from the right
          for (let j = N - 1; j > 0; j--) if (pr[j]! > pr[j - 1]!) pr[j - 1] = pr[j]!;
          // np.searchsorted(rc, recThrs, side='left'); thresholds past the end keep precision 0
          let j = 0;
          for (let r = 0; r < R; r++) {
            const rt = p.recThrs[r]!;
            while (j < N && rc[j]! < rt) j++;
            const at = (((t * R + r) * K + k) * A + a) * M + m;
            if (j < N) { precision[at] = pr[j]!; scores[at] = sc[inds[j]!]!; } else { precision[at] = 0; scores[at] = 0; }
          }
        }
      }
    }
  }
  return { precision, recall, scores };
}

/** The mean of the selected entries that are > -1, or -1 (COCOeval.summarize's `_summarize`). */
function summarizeOne(
  arr: Float64Array, hasR: boolean, p: ResolvedParams, K: number,
  iouThr: number | null, areaLbl: string, maxDets: number,
): number {
  const T = p.iouThrs.length, R = hasR ? p.recThrs.length : 1, A = p.areaRng.length, M = p.maxDets.length;
  const ts = iouThr === null ? p.iouThrs.map((_, t) => t) : p.iouThrs.flatMap((v, t) => (v === iouThr ? [t] : []));
  const as = p.areaRngLbl.flatMap((l, a) => (l === areaLbl ? [a] : []));
  const ms = p.maxDets.flatMap((v, m) => (v === maxDets ? [m] : []));
  let s = 0, n = 0;
  for (const t of ts) for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) for (const a of as) for (const m of ms) {
    const v = arr[(((t * R + r) * K + k) * A + a) * M + m]!;
    if (v > -1) { s += v; n++; }
  }
  return n ? s / n : -1;
}

/** What each of the 12 numbers is: [ap?, iouThr, area label, maxDets index (or a literal)]. */
function summaryRows(p: ResolvedParams): { ap: boolean; iouThr: number | null; area: string; maxDets: number }[] {
  if (p.maxDets.length < 3) fail(`summarize needs three maxDets (it reads maxDets[0..2]), got [${p.maxDets}]`);
  const [m0, m1, m2] = p.maxDets as [number, number, number];
  return [
    { ap: true, iouThr: null, area: 'all', maxDets: 100 }, // _summarize(1): maxDets defaults to 100
    { ap: true, iouThr: 0.5, area: 'all', maxDets: m2 },
    { ap: true, iouThr: 0.75, area: 'all', maxDets: m2 },
    { ap: true, iouThr: null, area: 'small', maxDets: m2 },
    { ap: true, iouThr: null, area: 'medium', maxDets: m2 },
    { ap: true, iouThr: null, area: 'large', maxDets: m2 },
    { ap: false, iouThr: null, area: 'all', maxDets: m0 },
    { ap: false, iouThr: null, area: 'all', maxDets: m1 },
    { ap: false, iouThr: null, area: 'all', maxDets: m2 },
    { ap: false, iouThr: null, area: 'small', maxDets: m2 },
    { ap: false, iouThr: null, area: 'medium', maxDets: m2 },
    { ap: false, iouThr: null, area: 'large', maxDets: m2 },
  ];
}

function summarize(precision: Float64Array, recall: Float64Array, p: ResolvedParams, K: number): number[] {
  return summaryRows(p).map((row) => summarizeOne(row.ap ? precision : recall, row.ap, p, K, row.iouThr, row.area, row.maxDets));
}

/** Python's `'{:0.Nf}'.format(x)`: JS toFixed rounds exact ties up, Python to even. */
export function pyFixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  const longer = x.toFixed(Math.min(100, digits + 25));
  // An exact tie has the form d.ddd5000...: the double is exactly halfway.
  const tail = longer.slice(longer.indexOf('.') + 1 + digits);
  if (!/^50*$/.test(tail)) return s;
  const down = (Math.sign(x) * Math.floor(Math.abs(x) * 10 ** digits) / 10 ** digits).toFixed(digits);
  const lastDigit = Number(down[down.length - 1]);
  return lastDigit % 2 === 0 ? down : s;
}

/** The 12 lines `COCOeval.summarize()` prints. */
export function formatSummary(r: CocoEvalResult): string {
  const p = r.params;
  const f2 = (v: number): string => pyFixed(v, 2);
  return summaryRows(p).map((row, i) => {
    const title = row.ap ? 'Average Precision' : 'Average Recall';
    const type = row.ap ? '(AP)' : '(AR)';
    const iou = row.iouThr === null ? `${f2(p.iouThrs[0]!)}:${f2(p.iouThrs[p.iouThrs.length - 1]!)}` : f2(row.iouThr);
    return ` ${title.padEnd(18)} ${type} @[ IoU=${iou.padEnd(9)} | area=${row.area.padStart(6)} | maxDets=${String(row.maxDets).padStart(3)} ] = ${pyFixed(r.stats[i]!, 3)}`;
  }).join('\n');
}

