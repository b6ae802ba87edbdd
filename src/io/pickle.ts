/**
 * A RESTRICTED unpickler: it reads the pickle opcodes that PyTorch state dicts use (protocols
 * 2-5; CPython `Lib/pickletools.py` documents each opcode) and NEVER executes code. Python's
 * own `pickle.load` imports and calls any `module.name` a file asks for (`os.system` ...), which
 * is why loading an untrusted .pth is code execution. Here a global resolves only through the
 * caller's allow-list to a TypeScript function; anything else throws {@link UnsafePickleError}
 * naming the refused `module.name`, before any later opcode runs.
 *
 * Python values map to: None → null, bool → boolean, int → number (bigint beyond 2^53),
 * float → number, str → string, bytes/bytearray → Uint8Array, list → mutable array,
 * tuple → frozen array, dict/OrderedDict → Map, allow-listed results → {@link PyExtension}.
 */
import { CheckpointFormatError, UnsafePickleError } from './errors.ts';

/** Base class of objects built by allow-listed callables (tensors, storages, ...). */
export abstract class PyExtension {
  abstract readonly kind: string;
  /**
   * BUILD (`obj.__setstate__(state)`) on this object. Objects without it refuse BUILD; numpy
   * arrays and dtypes receive their shape, dtype and bytes this way.
   */
  setState?(state: PyValue): void;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | readonly PyValue[]
  | Map<PyValue, PyValue>
  | PyGlobal
  | PyExtension;

/** A resolved, allow-listed global. `call` is absent for non-callable markers (e.g. `torch.FloatStorage`). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: readonly PyValue[]) => PyValue,
  ) {}
  get qualname(): string { return `${this.module}.${this.name}`; }
}

export interface UnpickleOptions {
  /** Name of the file/entry for error messages. */
  source?: string;
  /** `module.name` → resolved global. Everything not in here is refused. */
  globals: ReadonlyMap<string, PyGlobal>;
  /** Resolves BINPERSID ids (torch: `('storage', type, key, location, numel)`). Absent → refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Longest LONG1/LONG4 integer we decode (bytes); real state dicts never need more than 8. */
const MAX_LONG_BYTES = 256;

const MARK = Symbol('mark');

export function isTuple(v: PyValue): v is readonly PyValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}
export function isList(v: PyValue): v is PyValue[] {
  return Array.isArray(v) && !Object.isFrozen(v);
}

function describe(v: PyValue | typeof MARK | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === MARK) return 'a MARK';
  if (v === null) return 'None';
  if (Array.isArray(v)) return `a ${Object.isFrozen(v) ? 'tuple' : 'list'} of ${(v as readonly unknown[]).length}`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (v instanceof PyGlobal) return `global ${v.qualname}`;
  if (v instanceof PyExtension) return v.kind;
  return typeof v;
}

/**
 * Unpickle `bytes`. Stops at the first STOP opcode and returns its value.
 * @throws UnsafePickleError for a global outside the allow-list; CheckpointFormatError for anything malformed.
 */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): PyValue {
  return unpickleFrom(bytes, 0, opts).value;
}

/**
 * Unpickle the pickle that starts at byte `start` and return its value and the byte after its
 * STOP opcode (legacy torch files are several pickles back to back, then raw storage bytes).
 */
export function unpickleFrom(bytes: Uint8Array, start: number, opts: UnpickleOptions): { value: PyValue; end: number } {
  const source = opts.source ?? '<pickle>';
  const len = bytes.length;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  let pos = start;
  let op = 0;
  let opPos = 0;
  const fail = (msg: string): never => {
    throw new CheckpointFormatError(source, `pickle: ${msg} (opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opPos})`);
  };
  const need = (n: number): number => {
    if (n < 0 || pos + n > len) fail(`needs ${n} more bytes but only ${len - pos} remain (truncated?)`);
    const p = pos;
    pos += n;
    return p;
  };
  const readLine = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail('unterminated text line');
    const s = utf8.decode(bytes.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const readU64Len = (): number => {
    const p = need(8);
    const v = dv.getBigUint64(p, true);
    if (v > BigInt(len - pos)) fail(`length ${v} exceeds the ${len - pos} bytes left`);
    return Number(v);
  };

  const stack: (PyValue | typeof MARK)[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();

  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail('stack underflow');
    const v = stack.pop();
    if (v === MARK || v === undefined) return fail('stack underflow');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail('empty stack');
    return v;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) return fail('no MARK on the stack');
    const items = stack.splice(m);
    return items.filter((x): x is PyValue => x !== MARK);
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const g = opts.globals.get(`${module}.${name}`);
    if (!g) {
      throw new UnsafePickleError(source, `${module}.${name}`,
        `it is not on the allow-list of this reader (${[...opts.globals.keys()].slice(0, 6).join(', ')}, ...); nothing was executed`);
    }
    return g;
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail(`cannot call ${describe(fn)}`);
    if (!fn.call) return fail(`${fn.qualname} is not callable in this reader`);
    if (!isTuple(args)) return fail(`arguments to ${fn.qualname} must be a tuple, got ${describe(args)}`);
    return fn.call(args);
  };
  const setItem = (d: PyValue, k: PyValue, v: PyValue): void => {
    if (!(d instanceof Map)) fail(`SETITEM target is ${describe(d)}, not a dict`);
    (d as Map<PyValue, PyValue>).set(k, v);
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i) as PyValue;
  };

  while (true) {
    if (pos >= len) fail('ran out of data before STOP (truncated pickle)');
    opPos = pos;
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = bytes[need(1)];
        if (v > 5) fail(`pickle protocol ${v} is newer than the supported 2-5`);
        break;
      }
      case 0x95: need(8); break; // FRAME: framing is only a read-ahead hint.
      case 0x2e: { // STOP
        const v = pop();
        return { value: v, end: pos };
      }
      case 0x28: marks.push(stack.length); stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(Object.freeze(popMark())); break; // TUPLE
      case 0x85: { const a = pop(); stack.push(Object.freeze([a])); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(Object.freeze([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(Object.freeze([a, b, c])); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const d = new Map<PyValue, PyValue>();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x4a: stack.push(dv.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(bytes[need(1)]); break; // BININT1
      case 0x4d: stack.push(dv.getUint16(need(2), true)); break; // BININT2
      case 0x8a: case 0x8b: { // LONG1 / LONG4: little-endian two's complement
        const n = op === 0x8a ? bytes[need(1)] : dv.getInt32(need(4), true);
        if (n < 0 || n > MAX_LONG_BYTES) fail(`integer of ${n} bytes (limit ${MAX_LONG_BYTES})`);
        const p = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[p + i]);
        if (n > 0 && bytes[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: stack.push(dv.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x8c: { const n = bytes[need(1)]; const p = need(n); stack.push(utf8.decode(bytes.subarray(p, p + n))); break; } // SHORT_BINUNICODE
      case 0x58: { const n = dv.getUint32(need(4), true); const p = need(n); stack.push(utf8.decode(bytes.subarray(p, p + n))); break; } // BINUNICODE
      case 0x8d: { const n = readU64Len(); const p = need(n); stack.push(utf8.decode(bytes.subarray(p, p + n))); break; } // BINUNICODE8
      // Python 2 str: torch.load decodes with encoding='latin1' by default for such pickles.
      case 0x55: { const n = bytes[need(1)]; const p = need(n); stack.push(latin1.decode(bytes.subarray(p, p + n))); break; } // SHORT_BINSTRING
      case 0x54: { // BINSTRING
        const n = dv.getInt32(need(4), true);
        if (n < 0) fail(`negative BINSTRING length ${n}`);
        const p = need(n);
        stack.push(latin1.decode(bytes.subarray(p, p + n)));
        break;
      }
      case 0x43: { const n = bytes[need(1)]; const p = need(n); stack.push(bytes.slice(p, p + n)); break; } // SHORT_BINBYTES
      case 0x42: { const n = dv.getUint32(need(4), true); const p = need(n); stack.push(bytes.slice(p, p + n)); break; } // BINBYTES
      case 0x8e: case 0x96: { const n = readU64Len(); const p = need(n); stack.push(bytes.slice(p, p + n)); break; } // BINBYTES8 / BYTEARRAY8
      case 0x71: memo.set(bytes[need(1)], top()); break; // BINPUT
      case 0x72: memo.set(dv.getUint32(need(4), true), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memoGet(bytes[need(1)])); break; // BINGET
      case 0x6a: stack.push(memoGet(dv.getUint32(need(4), true))); break; // LONG_BINGET
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (!isList(l)) fail(`APPEND target is ${describe(l)}, not a list`);
        (l as PyValue[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!isList(l)) fail(`APPENDS target is ${describe(l)}, not a list`);
        for (const it of items) (l as PyValue[]).push(it);
        break;
      }
      case 0x63: { const module = readLine(); const name = readLine(); stack.push(resolveGlobal(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL needs two strings, got ${describe(module)} and ${describe(name)}`);
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x69: { // INST (protocol 0/1): class from the text lines, args from the mark
        const module = readLine();
        const name = readLine();
        const g = resolveGlobal(module, name);
        stack.push(call(g, Object.freeze(popMark())));
        break;
      }
      case 0x6f: { // OBJ
        const items = popMark();
        if (items.length === 0) fail('OBJ without a class');
        stack.push(call(items[0], Object.freeze(items.slice(1))));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size > 0) fail('NEWOBJ_EX with keyword arguments is not supported');
        stack.push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state)
        const state = pop();
        const obj = top();
        if (obj instanceof PyExtension && obj.setState) {
          obj.setState(state);
          break;
        }
        // torch attaches `_metadata` (per-module version numbers) to state-dict OrderedDicts this
        // way; it only matters to nn.Module._load_from_state_dict, so it is read and dropped.
        if (!(obj instanceof Map)) fail(`BUILD on ${describe(obj)} is not supported`);
        if (!(state instanceof Map) && state !== null && !isTuple(state)) fail(`BUILD state for a dict must be a dict, got ${describe(state)}`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id found but this pickle has no persistent storage');
        stack.push((opts.persistentLoad as (p: PyValue) => PyValue)(pid));
        break;
      }
      case 0x50: fail('text persistent ids (PERSID) are not supported'); break;
      default:
        fail(`unsupported or unknown opcode '${op >= 0x20 && op < 0x7f ? String.fromCharCode(op) : '\\x' + op.toString(16)}'`);
    }
  }
}
