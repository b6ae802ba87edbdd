/**
 * Lowering of a traced graph to an ONNX ModelProto (serialised with onnx-proto).
 *
 * Only nodes that the requested outputs depend on are emitted. Graph inputs
 * stay inputs unless `initializers` supplies their values (exported inference
 * models carry their weights as initializers); constants become initializers.
 */
import { createHash } from 'node:crypto';
import onnxProto from 'onnx-proto';
import { type DType, type LowerContext, type Node, Tensor, type TypedData, fmtShape } from './tensor.ts';

const { onnx } = onnxProto;

export const OPSET = 20;

/** Opset versions of the non-default domains a lowering may emit into (ONNX Runtime contrib ops). */
export const DOMAIN_OPSETS: Readonly<Record<string, number>> = { 'com.microsoft': 1 };

const onnxType: Record<DType, number> = { float32: 1, float64: 11, int64: 7, bool: 9 };
const FLOAT_ATTRS = new Set(['epsilon', 'alpha', 'beta', 'gamma']);

export interface LowerOptions {
  /** Input tensors in feed order (default: every graph input the outputs need, in creation order). */
  inputs?: readonly Tensor[];
  /** Values that turn inputs into initializers (export). */
  initializers?: ReadonlyMap<Tensor, TypedData>;
  /** Model name stored in the proto. */
  name?: string;
  docString?: string;
  /** Deduplicate identical constants and common subexpressions (default true). */
  simplify?: boolean;
}

export interface Lowered {
  bytes: Uint8Array;
  inputNames: string[];
  outputNames: string[];
  /** Inputs in feed order with their shapes and dtypes. */
  inputs: { name: string; shape: number[]; dtype: DType }[];
  /** `key` is the name asked for in `outputs`; `name` the ONNX name (differs when it collides with an input). */
  outputs: { name: string; key: string; shape: number[]; dtype: DType }[];
  nodeCount: number;
}

function bytesOf(a: TypedData): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function tensorProto(name: string, data: TypedData, shape: readonly number[], dtype: DType): onnxProto.onnx.ITensorProto {
  return { name, dims: [...shape], dataType: onnxType[dtype], rawData: bytesOf(data) };
}

function valueInfo(name: string, shape: readonly number[], dtype: DType): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: onnxType[dtype], shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
  };
}

function attribute(name: string, v: number | string | readonly number[]): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (FLOAT_ATTRS.has(name) || !Number.isInteger(v)) return { name, type: T.FLOAT, f: v };
    return { name, type: T.INT, i: v };
  }
  return { name, type: T.INTS, ints: [...v] };
}

/** Lowers `outputs` (name → tensor) and everything they depend on. */
export function lower(outputs: Readonly<Record<string, Tensor>>, opts: LowerOptions = {}): Lowered {
  const outs = Object.entries(outputs);
  if (outs.length === 0) throw new Error('lower: no outputs given');
  const graph = outs[0]![1].graph;

  // Collect needed nodes, constants and inputs by walking back from the outputs.
  const neededNodes = new Set<Node>();
  const usedInputs = new Set<Tensor>();
  const usedConsts = new Set<Tensor>();
  const stack = outs.map(([, t]) => t);
  const seen = new Set<Tensor>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.graph !== graph) throw new Error('lower: outputs come from different graphs');
    if (t.kind === 'input') usedInputs.add(t);
    else if (t.kind === 'const') usedConsts.add(t);
    else if (t.node && !neededNodes.has(t.node)) {
      neededNodes.add(t.node);
      for (const i of t.node.inputs) stack.push(i);
    }
  }

  const names = new Map<Tensor, string>();
  const taken = new Set<string>();
  const unique = (hint: string): string => {
    let n = hint;
    let k = 0;
    while (taken.has(n)) n = `${hint}_${++k}`;
    taken.add(n);
    return n;
  };
  const feedOrder = opts.inputs ? [...opts.inputs] : graph.inputs.filter((t) => usedInputs.has(t));
  for (const t of feedOrder) {
    if (t.kind !== 'input') throw new Error(`lower: ${t} given as an input is not a graph input`);
    names.set(t, unique(t.name!));
  }
  for (const t of graph.inputs) if (usedInputs.has(t) && !names.has(t)) names.set(t, unique(t.name!));

  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const graphInputs: onnxProto.onnx.IValueInfoProto[] = [];
  const inputsOut: Lowered['inputs'] = [];
  for (const t of graph.inputs) {
    if (!usedInputs.has(t) && !feedOrder.includes(t)) continue;
    const init = opts.initializers?.get(t);
    if (init) {
      initializers.push(tensorProto(names.get(t)!, init, t.shape, t.dtype));
    } else if (!feedOrder.includes(t)) {
      throw new Error(`lower: the outputs need graph input '${t.name}' ${fmtShape(t.shape)}, which is neither fed nor given a value`);
    }
  }
  for (const t of feedOrder) {
    if (opts.initializers?.has(t)) continue;
    graphInputs.push(valueInfo(names.get(t)!, t.shape, t.dtype));
    inputsOut.push({ name: names.get(t)!, shape: [...t.shape], dtype: t.dtype });
  }
  // Constants with the same dtype, shape and bytes share one initializer.
  const constByContent = new Map<string, string>();
  for (const t of usedConsts) {
    const data = graph.constData.get(t)!;
    const key = opts.simplify === false ? `#${t.id}` : `${t.dtype}[${t.shape.join(',')}]${createHash('sha1').update(bytesOf(data)).digest('hex')}`;
    let n = constByContent.get(key);
    if (n === undefined) {
      n = unique(`c${t.id}`);
      constByContent.set(key, n);
      initializers.push(tensorProto(n, data, t.shape, t.dtype));
    }
    names.set(t, n);
  }

  const nodes: onnxProto.onnx.INodeProto[] = [];
  const domainsUsed = new Set<string>();
  const int64Cache = new Map<string, string>();
  const scalarCache = new Map<string, string>();
  const ctx: LowerContext = {
    name(t) {
      let n = names.get(t);
      if (!n) {
        n = unique(`t${t.id}`);
        names.set(t, n);
      }
      return n;
    },
    fresh: (hint) => unique(`${hint}`),
    int64(values, hint = 'shape') {
      const key = values.join(',');
      let n = int64Cache.get(key);
      if (!n) {
        n = unique(hint);
        int64Cache.set(key, n);
        initializers.push(tensorProto(n, BigInt64Array.from(values.map((v) => BigInt(v))), [values.length], 'int64'));
      }
      return n;
    },
    int64Tensor(values, shape, hint = 'idx') {
      const n = unique(hint);
      initializers.push(tensorProto(n, BigInt64Array.from(values.map((v) => BigInt(v))), shape, 'int64'));
      return n;
    },
    scalar(value, dtype, hint = 'k') {
      const key = `${dtype}:${value}`;
      let n = scalarCache.get(key);
      if (!n) {
        n = unique(hint);
        scalarCache.set(key, n);
        const data = dtype === 'float64' ? Float64Array.of(value) : dtype === 'int64' ? BigInt64Array.of(BigInt(value)) : dtype === 'bool' ? Uint8Array.of(value ? 1 : 0) : Float32Array.of(value);
        initializers.push(tensorProto(n, data, [], dtype));
      }
      return n;
    },
    emit(opType, inputs, outputs, attrs = {}, domain) {
      if (domain) {
        if (DOMAIN_OPSETS[domain] === undefined) throw new Error(`lower: ${opType} is in domain '${domain}', which has no opset version (known: ${Object.keys(DOMAIN_OPSETS).join(', ')})`);
        domainsUsed.add(domain);
      }
      nodes.push({
        opType,
        input: inputs,
        output: outputs,
        name: unique(`${opType}_${nodes.length}`),
        domain: domain ?? '',
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      });
    },
  };

  // Outputs computed by a node take the output's name directly; an Identity (a copy in ONNX
  // Runtime, ~1 ms per MB) is only needed for inputs, constants and tensors returned twice.
  const direct = new Map<string, string>();
  for (const [name, t] of outs) {
    if (t.kind === 'op' && !names.has(t)) {
      const n = unique(name);
      names.set(t, n);
      direct.set(name, n);
    }
  }

  // Common-subexpression elimination: a node with the same op, attributes and (canonical)
  // inputs as an earlier one is not emitted; its outputs take the earlier node's names. Tracing
  // creates such duplicates routinely (a VJP recomputing x - mean, two layers casting one mask).
  const canon = new Map<Tensor, Tensor>();
  const seenNodes = new Map<string, Node>();
  const canonical = (t: Tensor): Tensor => canon.get(t) ?? t;
  const inputKey = (t: Tensor): string => {
    const c = canonical(t);
    return c.kind === 'const' ? `k:${names.get(c)}` : `t:${c.id}`;
  };
  const baseName = ctx.name;
  ctx.name = (t) => baseName(canonical(t));
  for (const node of [...neededNodes].sort((a, b) => a.id - b.id)) {
    if (opts.simplify !== false) {
      const key = `${node.op.name}|${node.inputs.map(inputKey).join(',')}|${JSON.stringify(node.attrs)}`;
      const prev = seenNodes.get(key);
      // Outputs named in advance (graph outputs, see above) must still be produced by a node.
      if (prev && !node.outputs.some((o) => names.has(o))) {
        node.outputs.forEach((o, i) => canon.set(o, canonical(prev.outputs[i]!)));
        continue;
      }
      if (!prev) seenNodes.set(key, node);
    }
    node.op.lower(ctx, node);
  }

  const outputInfos: onnxProto.onnx.IValueInfoProto[] = [];
  const outputsOut: Lowered['outputs'] = [];
  for (const [name, t] of outs) {
    let outName = direct.get(name);
    if (outName === undefined) {
      outName = unique(name);
      ctx.emit('Identity', [ctx.name(t)], [outName]);
    }
    outputInfos.push(valueInfo(outName, t.shape, t.dtype));
    outputsOut.push({ name: outName, key: name, shape: [...t.shape], dtype: t.dtype });
  }

  const model = onnx.ModelProto.create({
    irVersion: 9,
    producerName: 'anyres',
    docString: opts.docString ?? '',
    opsetImport: [{ domain: '', version: OPSET }, ...[...domainsUsed].sort().map((domain) => ({ domain, version: DOMAIN_OPSETS[domain]! }))],
    graph: { name: opts.name ?? 'anyres', node: nodes, initializer: initializers, input: graphInputs, output: outputInfos },
  });
  return {
    bytes: onnx.ModelProto.encode(model).finish(),
    inputNames: inputsOut.map((i) => i.name),
    outputNames: outputsOut.map((o) => o.name),
    inputs: inputsOut,
    outputs: outputsOut,
    nodeCount: nodes.length,
  };
}
