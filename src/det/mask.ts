/**
 * COCO run-length-encoded masks, exactly as the official COCO API computes them
 * (cocodataset/cocoapi `common/maskApi.c`, wrapped by `PythonAPI/pycocotools/_mask.pyx`,
 * `mask.py` and `coco.py`). The evaluator's numbers depend on these details (polygon
 * rasterisation, the bbox of an RLE, the crowd IoU rule), so each function follows the C code's
 * arithmetic, including its integer truncations.
 *
 * Conventions, stated once:
 * - Masks in this library are row-major `H*W` bytes, 0 = background, nonzero = object.
 * - An RLE is COLUMN-major (Fortran order, x outer, y inner) run lengths that start with a run of
 *   0s (possibly of length 0) and alternate 0s/1s; they sum to `H*W`. `size` is `[h, w]`.
 * - `counts` is either that array (COCO's "uncompressed RLE") or the compressed string of
 *   `rleToString` (COCO's "RLE").
 *
 * @example
 * const m = new Uint8Array([0, 1, 1, 0, 1, 1]); // 2x3, row-major
 * const rle = rleEncode(m, 2, 3);               // { size: [2, 3], counts: [2, 4] }
 * rleArea(rle);                                 // 4
 * rleToBbox(rle);                               // [1, 0, 2, 2]
 */
import type { CocoAnnotation, CocoRle, CocoSegmentation } from './types.ts';

/** The working form: sizes and the run lengths as a typed array (what maskApi.c calls `RLE`). */
export interface RleCounts {
  h: number;
  w: number;
  cnts: Uint32Array;
}

function checkSize(what: string, h: number, w: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) {
    throw new Error(`${what}: size must be two non-negative integers [h, w], got [${h}, ${w}]`);
  }
}

/** Row-major `h*w` mask -> column-major run lengths (maskApi.c `rleEncode`). */
export function rleEncodeCounts(mask: ArrayLike<number>, h: number, w: number): RleCounts {
  checkSize('rleEncode', h, w);
  if (mask.length !== h * w) throw new Error(`rleEncode: mask has ${mask.length} values, expected h*w = ${h}*${w} = ${h * w} (row-major)`);
  const runs: number[] = [];
  let p = 0;
  let c = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x] ? 1 : 0;
      if (v !== p) { runs.push(c); c = 0; p = v; }
      c++;
    }
  }
  runs.push(c);
  return { h, w, cnts: Uint32Array.from(runs) };
}

/** Row-major `h*w` 0/1 mask -> uncompressed COCO RLE `{size: [h, w], counts: number[]}`. */
export function rleEncode(mask: Uint8Array, h: number, w: number): CocoRle {
  const r = rleEncodeCounts(mask, h, w);
  return { size: [h, w], counts: Array.from(r.cnts) };
}

/** Run lengths -> row-major `h*w` 0/1 mask (maskApi.c `rleDecode`). */
export function rleDecodeCounts(r: RleCounts): Uint8Array {
  const { h, w, cnts } = r;
  const out = new Uint8Array(h * w);
  let total = 0;
  for (let j = 0; j < cnts.length; j++) total += cnts[j]!;
  if (total !== h * w) throw new Error(`rleDecode: run lengths sum to ${total}, expected h*w = ${h}*${w} = ${h * w}`);
  let k = 0; // column-major position: x = floor(k / h), y = k % h
  let v = 0;
  for (let j = 0; j < cnts.length; j++) {
    const n = cnts[j]!;
    if (v) for (let q = k; q < k + n; q++) out[(q % h) * w + Math.floor(q / h)] = 1;
    k += n;
    v = 1 - v;
  }
  return out;
}

/** Any COCO RLE (counts array or compressed string) -> row-major `h*w` 0/1 mask. */
export function rleDecode(rle: CocoRle): Uint8Array {
  return rleDecodeCounts(toCounts(rle));
}

/**
 * Run lengths -> COCO's compressed string (maskApi.c `rleToString`): like LEB128 but with 5 data
 * bits and a continuation bit per character, offset by 48 ('0'); from the fourth count on, each
 * count is stored as its difference to the count two before (same colour).
 */
export function rleToString(cnts: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < cnts.length; i++) {
    let x = cnts[i]!;
    if (i > 2) x -= cnts[i - 2]!;
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32; // x & 0x1f in two's complement
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** COCO's compressed string -> run lengths (maskApi.c `rleFrString`). */
export function rleFromString(s: string): Uint32Array {
  const cnts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error(`rleFromString: string ends inside a count at character ${p} (truncated RLE '${s.slice(0, 40)}...')`);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`rleFromString: character '${s[p]}' at ${p} is outside the RLE alphabet (ASCII 48..111)`);
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // sign-extend: x |= -1 << 5k
    }
    const m = cnts.length;
    if (m > 2) x += cnts[m - 2]!;
    if (x < 0) throw new Error(`rleFromString: count ${m} decodes to ${x} < 0 (corrupt RLE string)`);
    cnts.push(x);
  }
  return Uint32Array.from(cnts);
}

/** The working form of a COCO RLE (either counts form), checked against its size. */
export function toCounts(rle: CocoRle): RleCounts {
  if (!rle || !Array.isArray(rle.size) || rle.size.length !== 2) {
    throw new Error(`RLE: expected {size: [h, w], counts}, got ${JSON.stringify(rle)?.slice(0, 80)}`);
  }
  const [h, w] = rle.size;
  checkSize('RLE', h, w);
  let cnts: Uint32Array;
  if (typeof rle.counts === 'string') cnts = rleFromString(rle.counts);
  else if (Array.isArray(rle.counts)) {
    cnts = new Uint32Array(rle.counts.length);
    for (let i = 0; i < rle.counts.length; i++) {
      const v = rle.counts[i]!;
      if (!(v >= 0)) throw new Error(`RLE: counts[${i}] = ${v} is not a non-negative number`);
      cnts[i] = v; // pycocotools' frUncompressedRLE casts to uint32 (truncation)
    }
  } else throw new Error(`RLE: counts must be an array of run lengths or a compressed string, got ${typeof rle.counts}`);
  return { h, w, cnts };
}

/** Working form -> COCO RLE with compressed string counts (what pycocotools' functions return). */
export function toCompressed(r: RleCounts): CocoRle {
  return { size: [r.h, r.w], counts: rleToString(r.cnts) };
}

/** Number of 1 pixels (maskApi.c `rleArea`: sum of the odd runs). */
export function rleAreaCounts(r: RleCounts): number {
  let a = 0;
  for (let j = 1; j < r.cnts.length; j += 2) a += r.cnts[j]!;
  return a;
}

export function rleArea(rle: CocoRle): number {
  return rleAreaCounts(toCounts(rle));
}

/**
 * Bounding box [x, y, w, h] of the 1 pixels (maskApi.c `rleToBbox`). A run of 1s that wraps to
 * the next column makes the box span the full height, as in the C code; an empty mask gives
 * [0, 0, 0, 0].
 */
export function rleToBboxCounts(r: RleCounts): [number, number, number, number] {
  const { h, w, cnts } = r;
  const m = Math.floor(cnts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
  for (let j = 0; j < m; j++) {
    cc += cnts[j]!;
    const t = (cc - (j % 2)) >>> 0; // uint arithmetic, as in C
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) { ys = 0; ye = h - 1; }
    xs = Math.min(xs, x); xe = Math.max(xe, x); ys = Math.min(ys, y); ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

export function rleToBbox(rle: CocoRle): [number, number, number, number] {
  return rleToBboxCounts(toCounts(rle));
}

/**
 * Union (or intersection) of RLEs of one size (maskApi.c `rleMerge`). Differently sized inputs
 * give the empty 0x0 RLE, as in the C code.
 */
export function rleMergeCounts(rs: readonly RleCounts[], intersect = false): RleCounts {
  if (rs.length === 0) return { h: 0, w: 0, cnts: new Uint32Array(0) };
  const { h, w } = rs[0]!;
  if (rs.length === 1) return { h, w, cnts: rs[0]!.cnts.slice() };
  let acc = rs[0]!.cnts;
  for (let i = 1; i < rs.length; i++) {
    const B = rs[i]!;
    if (B.h !== h || B.w !== w) return { h: 0, w: 0, cnts: new Uint32Array(0) };
    const A = acc;
    const out: number[] = [];
    let ca = A[0] ?? 0, cb = B.cnts[0] ?? 0;
    let v = 0, va = 0, vb = 0, a = 1, b = 1, cc = 0, ct = 1;
    while (ct > 0) {
      const c = Math.min(ca, cb);
      cc += c; ct = 0;
      ca -= c; if (!ca && a < A.length) { ca = A[a++]!; va = 1 - va; } ct += ca;
      cb -= c; if (!cb && b < B.cnts.length) { cb = B.cnts[b++]!; vb = 1 - vb; } ct += cb;
      const vp = v;
      v = intersect ? va & vb : va | vb;
      if (v !== vp || ct === 0) { out.push(cc); cc = 0; }
    }
    acc = Uint32Array.from(out);
  }
  return { h, w, cnts: acc };
}

/**
 * Rasterises one polygon `[x0, y0, x1, y1, ...]` (pixel coordinates, COCO's continuous
 * convention) to run lengths, exactly as maskApi.c `rleFrPoly`: the outline is traced on a 5x
 * upsampled grid, then the points where it crosses pixel-column centres give, per column, the
 * rows where the mask switches on/off. Areas therefore equal pycocotools' to the pixel.
 */
export function polygonToCounts(xy: ArrayLike<number>, h: number, w: number): RleCounts {
  checkSize('polygonToRle', h, w);
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  // (int)(scale*v + .5): C truncates toward zero.
  const x = new Int32Array(k + 1), y = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) x[j] = Math.trunc(scale * xy[j * 2]! + 0.5);
  for (let j = 0; j < k; j++) y[j] = Math.trunc(scale * xy[j * 2 + 1]! + 0.5);
  x[k] = x[0]!; y[k] = y[0]!;
  let m = 0;
  for (let j = 0; j < k; j++) m += Math.max(Math.abs(x[j]! - x[j + 1]!), Math.abs(y[j]! - y[j + 1]!)) + 1;
  // Dense boundary points (u, v) on the upsampled grid.
  const u = new Int32Array(m), v = new Int32Array(m);
  m = 0;
  for (let j = 0; j < k; j++) {
    let xs = x[j]!, xe = x[j + 1]!, ys = y[j]!, ye = y[j + 1]!;
    const dx = Math.abs(xe - xs), dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) { let t = xs; xs = xe; xe = t; t = ys; ys = ye; ye = t; }
    // dx = dy = 0 gives s = NaN; that point's v is never read (its u equals its neighbours').
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) { const t = flip ? dx - d : d; u[m] = t + xs; v[m] = Math.trunc(ys + s * t + 0.5); m++; }
    } else {
      for (let d = 0; d <= dy; d++) { const t = flip ? dy - d : d; v[m] = t + ys; u[m] = Math.trunc(xs + s * t + 0.5); m++; }
    }
  }
  // Points where the outline crosses a column centre, downsampled: (column, first row inside).
  const bx: number[] = [], by: number[] = [];
  for (let j = 1; j < m; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = Math.min(v[j]!, v[j - 1]!);
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0; else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    bx.push(xd); by.push(yd);
  }
  // Column-major positions of the switches, sorted; differences are the run lengths.
  const a = new Float64Array(bx.length + 1);
  for (let j = 0; j < bx.length; j++) a[j] = bx[j]! * h + by[j]!;
  a[bx.length] = h * w;
  a.sort();
  let prev = 0;
  for (let j = 0; j < a.length; j++) { const t = a[j]!; a[j] = t - prev; prev = t; }
  // Two switches at one position cancel: fold the zero run and the next into the previous run.
  const b: number[] = [a[0]!];
  let j = 1;
  while (j < a.length) {
    if (a[j]! > 0) b.push(a[j++]!);
    else { j++; if (j < a.length) b[b.length - 1]! += a[j++]!; }
  }
  return { h, w, cnts: Uint32Array.from(b) };
}

/** Box [x, y, w, h] -> run lengths through its 4-point polygon (maskApi.c `rleFrBbox`). */
export function bboxToCounts(bb: ArrayLike<number>, h: number, w: number): RleCounts {
  const xs = bb[0]!, xe = xs + bb[2]!, ys = bb[1]!, ye = ys + bb[3]!;
  return polygonToCounts([xs, ys, xs, ye, xe, ye, xe, ys], h, w);
}

/** Several polygons of one object, merged into one mask (pycocotools frPyObjects + merge). */
export function polygonsToRle(polys: number[][], h: number, w: number): CocoRle {
  const r = rleMergeCounts(polys.map((p) => polygonToCounts(p, h, w)));
  return { size: [r.h, r.w], counts: Array.from(r.cnts) };
}

/**
 * An annotation's segmentation as run lengths, as pycocotools `COCO.annToRLE`: polygons are
 * rasterised at the image size and merged; an uncompressed RLE keeps its own size
 * (`frUncompressedRLE`); a compressed RLE is decoded. As in `frPyObjects`, a polygon list whose
 * first polygon has exactly 4 numbers is read as boxes [x, y, w, h].
 */
export function segmentationToCounts(segm: CocoSegmentation, h: number, w: number, what = 'annToRle'): RleCounts {
  if (Array.isArray(segm)) {
    if (segm.length === 0) throw new Error(`${what}: empty polygon list (pycocotools cannot rasterise it either); give at least one polygon of >= 3 points`);
    for (let i = 0; i < segm.length; i++) {
      if (!Array.isArray(segm[i])) throw new Error(`${what}: segmentation[${i}] is not a list of coordinates`);
    }
    const asBoxes = segm[0]!.length === 4;
    return rleMergeCounts(segm.map((p) => (asBoxes ? bboxToCounts(p, h, w) : polygonToCounts(p, h, w))));
  }
  if (segm && typeof segm === 'object' && 'counts' in segm && 'size' in segm) return toCounts(segm);
  throw new Error(`${what}: segmentation must be polygons (number[][]) or an RLE {size, counts}, got ${JSON.stringify(segm)?.slice(0, 80)}`);
}

/** pycocotools `COCO.annToRLE`, returned with uncompressed counts. */
export function annToRle(ann: Pick<CocoAnnotation, 'segmentation'>, h: number, w: number): CocoRle {
  if (ann.segmentation === undefined) throw new Error('annToRle: the annotation has no segmentation (needed for segm evaluation)');
  const r = segmentationToCounts(ann.segmentation, h, w);
  return { size: [r.h, r.w], counts: Array.from(r.cnts) };
}

/**
 * IoU of boxes [x, y, w, h] (maskApi.c `bbIou`), `out[d * G + g]`. When gt g is a crowd region
 * the union is the detection's own area (intersection / area(dt)).
 */
export function bboxIouFlat(dt: ArrayLike<number>, gt: ArrayLike<number>, iscrowd: ArrayLike<boolean | number>, out?: Float64Array): Float64Array {
  const D = dt.length / 4, G = gt.length / 4;
  const o = out ?? new Float64Array(D * G);
  for (let g = 0; g < G; g++) {
    const gx = gt[g * 4]!, gy = gt[g * 4 + 1]!, gw = gt[g * 4 + 2]!, gh = gt[g * 4 + 3]!;
    const ga = gw * gh;
    const crowd = !!iscrowd[g];
    for (let d = 0; d < D; d++) {
      const dx = dt[d * 4]!, dy = dt[d * 4 + 1]!, dw = dt[d * 4 + 2]!, dh = dt[d * 4 + 3]!;
      const da = dw * dh;
      o[d * G + g] = 0;
      const iw = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
      if (iw <= 0) continue;
      const ih = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
      if (ih <= 0) continue;
      const i = iw * ih;
      const u = crowd ? da : da + ga - i;
      o[d * G + g] = i / u;
    }
  }
  return o;
}

function checkCrowd(what: string, G: number, iscrowd: ArrayLike<unknown>): void {
  if (iscrowd.length !== G) throw new Error(`${what}: iscrowd has ${iscrowd.length} flags for ${G} ground truths (one per gt)`);
}

/** Box IoU matrix `[dt][gt]` (pycocotools `mask.iou` on boxes). */
export function bboxIou(dt: readonly (readonly number[])[], gt: readonly (readonly number[])[], iscrowd: readonly boolean[]): number[][] {
  checkCrowd('bboxIou', gt.length, iscrowd);
  for (const [name, list] of [['dt', dt], ['gt', gt]] as const) {
    list.forEach((b, i) => { if (b.length !== 4) throw new Error(`bboxIou: ${name}[${i}] has ${b.length} numbers, expected a box [x, y, w, h]`); });
  }
  const o = bboxIouFlat(dt.flat(), gt.flat(), iscrowd);
  return dt.map((_, d) => Array.from(o.subarray(d * gt.length, (d + 1) * gt.length)));
}

/** Intersection and union pixel counts of two same-size RLEs (the loop of maskApi.c `rleIou`). */
function rleInterUnion(A: Uint32Array, B: Uint32Array): [number, number] {
  let ca = A[0] ?? 0, cb = B[0] ?? 0, va = 0, vb = 0, a = 1, b = 1, i = 0, u = 0, ct = 1;
  const ka = A.length, kb = B.length;
  while (ct > 0) {
    const c = Math.min(ca, cb);
    if (va || vb) { u += c; if (va && vb) i += c; }
    ct = 0;
    ca -= c; if (!ca && a < ka) { ca = A[a++]!; va = 1 - va; } ct += ca;
    cb -= c; if (!cb && b < kb) { cb = B[b++]!; vb = 1 - vb; } ct += cb;
  }
  return [i, u];
}

/**
 * Mask IoU (maskApi.c `rleIou`), `out[d * G + g]`. As in the C code, pairs whose bounding boxes
 * do not overlap are 0 without looking at the masks, pairs of different sizes are -1, and a crowd
 * gt's union is the detection's area.
 */
export function rleIouFlat(dt: readonly RleCounts[], gt: readonly RleCounts[], iscrowd: ArrayLike<boolean | number>): Float64Array {
  const D = dt.length, G = gt.length;
  const db = new Float64Array(D * 4), gb = new Float64Array(G * 4);
  dt.forEach((r, d) => db.set(rleToBboxCounts(r), d * 4));
  gt.forEach((r, g) => gb.set(rleToBboxCounts(r), g * 4));
  const o = bboxIouFlat(db, gb, iscrowd);
  for (let g = 0; g < G; g++) {
    for (let d = 0; d < D; d++) {
      if (!(o[d * G + g]! > 0)) continue;
      const A = dt[d]!, B = gt[g]!;
      if (A.h !== B.h || A.w !== B.w) { o[d * G + g] = -1; continue; }
      let [i, u] = rleInterUnion(A.cnts, B.cnts);
      if (i === 0) u = 1;
      else if (iscrowd[g]) u = rleAreaCounts(A);
      o[d * G + g] = i / u;
    }
  }
  return o;
}

/** Mask IoU matrix `[dt][gt]` of COCO RLEs (pycocotools `mask.iou` on RLEs). */
export function rleIou(dt: readonly CocoRle[], gt: readonly CocoRle[], iscrowd: readonly boolean[]): number[][] {
  checkCrowd('rleIou', gt.length, iscrowd);
  const o = rleIouFlat(dt.map(toCounts), gt.map(toCounts), iscrowd);
  return dt.map((_, d) => Array.from(o.subarray(d * gt.length, (d + 1) * gt.length)));
}
