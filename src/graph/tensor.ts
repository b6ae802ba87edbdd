/**
 * The symbolic tensor and the graph it lives in.
 *
 * Model code calls ops on `Tensor`s whose shape and dtype are known when the op
 * is called; every call appends a `Node` to the tensor's `Graph`. The graph is
 * later differentiated (`grad.ts`), lowered to ONNX (`onnx.ts`) and run by ONNX
 * Runtime (`runtime.ts`). Nothing here computes numbers.
 */

export type DType = 'float32' | 'float64' | 'int64' | 'bool';

export type AttrValue = number | string | boolean | readonly number[] | undefined;
export type Attrs = Readonly<Record<string, AttrValue>>;

/** Host-side data for a constant or a feed. */
export type TypedData = Float32Array | Float64Array | BigInt64Array | Uint8Array;

export interface Node {
  readonly id: number;
  readonly op: OpDef;
  readonly inputs: readonly Tensor[];
  readonly attrs: Attrs;
  readonly outputs: Tensor[];
}

export interface OutputSpec {
  shape: number[];
  dtype: DType;
}

/** Emits ONNX nodes for one of our nodes (see onnx.ts). */
export interface LowerContext {
  /** The ONNX value name of a tensor. */
  name(t: Tensor): string;
  /** A fresh, unique ONNX value name for an intermediate. */
  fresh(hint: string): string;
  /** An int64 initializer (shape operands of Reshape/Slice/...). */
  int64(values: readonly number[], hint?: string): string;
  /** An int64 initializer of any shape (gather indices). */
  int64Tensor(values: readonly number[], shape: readonly number[], hint?: string): string;
  /** A scalar or 1-D initializer of the given float dtype. */
  scalar(value: number, dtype: DType, hint?: string): string;
  emit(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, number | string | readonly number[]>, domain?: string): void;
}

/**
 * An op: its shape rule, its ONNX lowering and its vector-Jacobian product.
 * `vjp` receives the gradient of each output (null where no gradient flows)
 * and returns one gradient per input (null for inputs it does not
 * differentiate, such as indices or conditions).
 */
export interface OpDef {
  readonly name: string;
  infer(inputs: readonly Tensor[], attrs: Attrs): OutputSpec[];
  lower(ctx: LowerContext, node: Node): void;
  vjp?(node: Node, gradOutputs: readonly (Tensor | null)[]): (Tensor | null)[];
}

export type TensorKind = 'input' | 'const' | 'op';

let graphCounter = 0;

/**
 * How model code traces attention into a graph (read by `src/nn/layers.ts` `multiHeadAttention`):
 * 'fused' = one `attention` node (ONNX Runtime's MultiHeadAttention kernel, src/graph/ops/attention.ts),
 * 'explicit' = matmul, softmax, matmul (the probabilities become a graph value).
 */
export type AttentionForm = 'fused' | 'explicit';

export class Graph {
  readonly id = ++graphCounter;
  /** The attention form model code traces into this graph (see AttentionForm). */
  attention: AttentionForm = 'fused';
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  /** Host data of constant tensors. */
  readonly constData = new Map<Tensor, TypedData>();
  private nextTensorId = 0;
  private nextNodeId = 0;
  private readonly scalarCache = new Map<string, Tensor>();
  private readonly inputNames = new Set<string>();

  /** @internal */
  newTensorId(): number {
    return this.nextTensorId++;
  }

  /** A named graph input (a feed at run time). */
  input(name: string, shape: readonly number[], dtype: DType = 'float32'): Tensor {
    if (this.inputNames.has(name)) throw new Error(`Graph.input: an input named '${name}' already exists`);
    checkShape('Graph.input', shape);
    this.inputNames.add(name);
    const t = new Tensor(this, shape, dtype, 'input', null, 0, name);
    this.inputs.push(t);
    return t;
  }

  hasInput(name: string): boolean {
    return this.inputNames.has(name);
  }

  /** A constant tensor holding `data` (copied by reference; do not mutate afterwards). */
  constant(data: TypedData | readonly number[], shape: readonly number[], dtype?: DType): Tensor {
    checkShape('Graph.constant', shape);
    let arr: TypedData;
    let dt: DType;
    if (Array.isArray(data) || !ArrayBuffer.isView(data)) {
      dt = dtype ?? 'float32';
      arr = fromNumbers(data as readonly number[], dt);
    } else {
      arr = data as TypedData;
      dt = dtype ?? dtypeOfData(arr);
      if (dt !== dtypeOfData(arr) && !(dt === 'bool' && arr instanceof Uint8Array)) {
        throw new Error(`Graph.constant: data is ${arr.constructor.name} but dtype '${dt}' was requested`);
      }
    }
    const n = shape.reduce((a, b) => a * b, 1);
    if (arr.length !== n) throw new Error(`Graph.constant: data has ${arr.length} elements but shape [${shape}] needs ${n}`);
    const t = new Tensor(this, shape, dt, 'const', null, 0);
    this.constData.set(t, arr);
    return t;
  }

  /** A cached rank-0 constant. */
  scalar(value: number, dtype: DType = 'float32'): Tensor {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`;
    let t = this.scalarCache.get(key);
    if (!t) {
      t = this.constant(fromNumbers([value], dtype), [], dtype);
      this.scalarCache.set(key, t);
    }
    return t;
  }

  /** Appends a node; shapes come from the op's rule. */
  apply(op: OpDef, inputs: readonly Tensor[], attrs: Attrs = {}): Tensor[] {
    for (const t of inputs) {
      if (t.graph !== this) throw new Error(`${op.name}: an input belongs to another graph (trace each function into one graph)`);
    }
    const specs = op.infer(inputs, attrs);
    const node: Node = { id: this.nextNodeId++, op, inputs, attrs, outputs: [] };
    specs.forEach((s, i) => node.outputs.push(new Tensor(this, s.shape, s.dtype, 'op', node, i)));
    this.nodes.push(node);
    return node.outputs;
  }
}

export class Tensor {
  readonly id: number;
  constructor(
    readonly graph: Graph,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly kind: TensorKind,
    readonly node: Node | null,
    readonly outputIndex: number,
    readonly name?: string,
  ) {
    this.id = graph.newTensorId();
  }
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  toString(): string {
    return `Tensor(${this.name ?? '#' + this.id}, [${this.shape.join(',')}], ${this.dtype})`;
  }
}

export function checkShape(where: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${where}: invalid shape [${shape.join(',')}] (dims must be non-negative integers)`);
  }
}

export function dtypeOfData(a: TypedData): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  return 'bool';
}

export function fromNumbers(values: readonly number[], dtype: DType): TypedData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v))));
    case 'bool':
      return Uint8Array.from(values.map((v) => (v ? 1 : 0)));
  }
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A shape for messages: `[2,3]`, or `[2, 3]` with `sep: ', '` (the one shape formatter). */
export function fmtShape(s: readonly number[], sep = ','): string {
  return `[${s.join(sep)}]`;
}

/** numpy broadcasting of two shapes, or an error naming the op and both shapes. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Normalises a possibly negative axis. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}
