/**
 * Plain pickles of numpy arrays: the format detectron2 publishes its model zoo in (`.pkl`, a dict
 * `{'model': {name: ndarray}, '__author__': ...}`; detectron2/checkpoint/c2_model_loading.py and
 * DetectionCheckpointer._load_file read it with `pickle.load`).
 *
 * A pickled ndarray is (numpy/core/src/multiarray/methods.c `array_reduce` / `array_setstate`):
 *
 *   REDUCE(numpy.core.multiarray._reconstruct, (numpy.ndarray, (0,), b'b'))   an empty array
 *   BUILD((version, shape, dtype, is_fortran, rawdata))                      its contents
 *
 * with `dtype = REDUCE(numpy.dtype, ('f4', False, True))` + BUILD((3, '<', None, None, None, -1,
 * -1, 0)) (`arraydescr_setstate`: version, byte order, subarray, names, fields, elsize, alignment,
 * flags). In protocol 2 the raw bytes arrive as `_codecs.encode(str, 'latin1')` (a Python 3 str
 * of the bytes), in protocol 3+ as bytes, from Python 2 as a latin-1 str.
 *
 * Only these globals (and collections.OrderedDict) are allowed; nothing is executed.
 */
import { CheckpointFormatError } from './errors.ts';
import { type PyValue, PyExtension, PyGlobal, isTuple, unpickle } from './pickle.ts';
import { ArrayValue, torchGlobals } from './pth.ts';
import { type Dtype, DTYPE_ITEMSIZE, decodeToFloat32 } from './safetensors.ts';

/** numpy type codes (`dtype.kind` + itemsize, as numpy pickles them) → our dtypes. */
const NUMPY_DTYPES: Record<string, Dtype> = {
  f4: 'F32', f2: 'F16', f8: 'F64', i8: 'I64', i4: 'I32', i2: 'I16', i1: 'I8', u1: 'U8', b1: 'BOOL',
};

/** `numpy.dtype(code, align, copy)`; the byte order arrives by BUILD. */
class NumpyDtype extends PyExtension {
  readonly kind = 'numpy dtype';
  /** '<' little, '>' big, '|' not applicable (1-byte types), '=' native. */
  order = '=';
  constructor(readonly dtype: Dtype, private readonly source: string) { super(); }
  override setState(state: PyValue): void {
    if (!isTuple(state) || state.length < 8) throw new CheckpointFormatError(this.source, `numpy.dtype state must be an 8- or 9-tuple, got ${Array.isArray(state) ? state.length : typeof state}`);
    const [, order, subarray, names, fields] = state;
    if (order !== '<' && order !== '>' && order !== '|' && order !== '=') throw new CheckpointFormatError(this.source, `numpy.dtype byte order must be '<', '>', '|' or '=', got ${String(order).slice(0, 8)}`);
    if (subarray !== null || names !== null || fields !== null) throw new CheckpointFormatError(this.source, 'structured or sub-array numpy dtypes are not supported (only plain numeric arrays)');
    this.order = order;
  }
}

/** An ndarray: empty from `_reconstruct`, filled by BUILD. */
export class NumpyArray extends ArrayValue {
  readonly kind = 'numpy array';
  shape: number[] = [0];
  dtype: Dtype = 'U8';
  private le: Uint8Array = new Uint8Array(0);
  private decoded?: Float32Array;
  constructor(private readonly source: string) { super(); }
  get data(): Float32Array { return (this.decoded ??= decodeToFloat32(this.le, this.dtype)); }
  get raw(): Uint8Array { return this.le; }

  override setState(state: PyValue): void {
    const fail = (m: string): never => { throw new CheckpointFormatError(this.source, `numpy array state: ${m}`); };
    if (!isTuple(state) || (state.length !== 5 && state.length !== 4)) return fail(`must be (version, shape, dtype, is_fortran, data), got ${Array.isArray(state) ? `${state.length} items` : typeof state}`);
    // Version 0 pickles (numpy < 1.?) omit the leading version number.
    const [shapeV, dt, fortran, rawV] = state.length === 5 ? state.slice(1) : state;
    if (!Array.isArray(shapeV)) return fail('shape is not a tuple');
    const shape: number[] = [];
    for (const d of shapeV as readonly PyValue[]) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return fail(`shape holds ${String(d).slice(0, 12)}, not a non-negative integer`);
      shape.push(d);
    }
    if (!(dt instanceof NumpyDtype)) return fail('dtype is not a numpy.dtype');
    if (typeof fortran !== 'boolean') return fail('is_fortran is not a bool');
    let raw: Uint8Array;
    if (rawV instanceof Uint8Array) raw = rawV;
    else if (typeof rawV === 'string') raw = latin1Bytes(rawV, this.source);
    else return fail(`data must be bytes, got ${Array.isArray(rawV) ? 'a list (object arrays are not supported)' : typeof rawV}`);
    const numel = shape.reduce((a, b) => a * b, 1);
    const isz = DTYPE_ITEMSIZE[dt.dtype];
    if (raw.length !== numel * isz) return fail(`shape [${shape.join(', ')}] of ${dt.dtype} needs ${numel * isz} bytes, the pickle holds ${raw.length}`);
    let le: Uint8Array = raw.slice();
    if (dt.order === '>' && isz > 1) for (let i = 0; i < le.length; i += isz) le.subarray(i, i + isz).reverse();
    // Fortran (column-major) order: element (i0..ik) sits at Σ i_j·Π_{m<j} shape_m; gather to row-major.
    if (fortran && shape.length > 1) le = fortranToC(le, shape, isz);
    this.shape = shape;
    this.dtype = dt.dtype;
    this.le = le;
    this.decoded = undefined;
  }
}

function fortranToC(src: Uint8Array, shape: number[], isz: number): Uint8Array {
  const rank = shape.length;
  const fstride = new Array<number>(rank);
  for (let k = 0, s = 1; k < rank; k++) { fstride[k] = s; s *= shape[k]!; }
  const numel = src.length / isz;
  const out = new Uint8Array(src.length);
  const counter = new Array<number>(rank).fill(0);
  let idx = 0;
  for (let i = 0; i < numel; i++) {
    out.set(src.subarray(idx * isz, (idx + 1) * isz), i * isz);
    for (let k = rank - 1; k >= 0; k--) {
      counter[k]!++;
      idx += fstride[k]!;
      if (counter[k]! < shape[k]!) break;
      idx -= fstride[k]! * shape[k]!;
      counter[k] = 0;
    }
  }
  return out;
}

function latin1Bytes(s: string, source: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) throw new CheckpointFormatError(source, `latin-1 encode: character U+${c.toString(16)} at ${i} is outside latin-1`);
    out[i] = c;
  }
  return out;
}

/** The allow-list of a numpy pickle: OrderedDict, ndarray reconstruction, dtype, `_codecs.encode(s, 'latin1')`. */
export function numpyGlobals(source: string): Map<string, PyGlobal> {
  const g = new Map<string, PyGlobal>();
  const add = (x: PyGlobal): void => { g.set(x.qualname, x); };
  add(torchGlobals(source).get('collections.OrderedDict')!);
  const ndarray = new PyGlobal('numpy', 'ndarray');
  add(ndarray);
  // numpy >= 2 pickles name the module numpy._core.
  for (const mod of ['numpy.core.multiarray', 'numpy._core.multiarray']) {
    add(new PyGlobal(mod, '_reconstruct', (args) => {
      if (args[0] !== ndarray) throw new CheckpointFormatError(source, `${mod}._reconstruct: only numpy.ndarray can be reconstructed, got ${args[0] instanceof PyGlobal ? args[0].qualname : typeof args[0]}`);
      return new NumpyArray(source);
    }));
  }
  add(new PyGlobal('numpy', 'dtype', (args) => {
    const code = args[0];
    if (typeof code !== 'string' || !Object.prototype.hasOwnProperty.call(NUMPY_DTYPES, code)) {
      throw new CheckpointFormatError(source, `numpy.dtype(${JSON.stringify(code)?.slice(0, 12)}) is not supported; supported: ${Object.keys(NUMPY_DTYPES).join(', ')}`);
    }
    return new NumpyDtype(NUMPY_DTYPES[code]!, source);
  }));
  add(new PyGlobal('_codecs', 'encode', (args) => {
    const [s, enc] = args;
    if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw new CheckpointFormatError(source, `_codecs.encode: only (str, 'latin1') is supported (how protocol 2 stores bytes)`);
    return latin1Bytes(s, source);
  }));
  return g;
}

/** Unpickle a plain (non-torch) pickle of dicts, lists, scalars and numpy arrays. */
export function readNumpyPickle(bytes: Uint8Array, source = '<bytes>'): PyValue {
  return unpickle(bytes, { source, globals: numpyGlobals(source) });
}
