/**
 * A dynamic batch dimension for exported models. Our graphs are traced with static shapes, so the
 * batch size B is baked into the int64 shape constants that Reshape / Expand / Tile / Slice read.
 * The model is traced twice, at B = 2 and B = 3 (batch 1 lets the tracer skip broadcasts, so its
 * graph has other nodes); the two ONNX graphs must be identical except for those constants. Every
 * element that differs must be an integer affine function of B (v = a·B + c: B itself, B·heads,
 * B·windows ...); it is then computed at run time as `a · batch + c` from `batch = Shape(image)[0]`,
 * and the graph's input and outputs get the symbolic dimension 'batch'.
 * Anything else that depends on B (a float constant of batch size, an attribute, another node) is
 * refused: the graph could not be made batch-independent this way, and a file that silently
 * computed wrong results at another batch would be worse than a static one.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type TensorProto = onnxProto.onnx.ITensorProto;

const INT64 = onnx.TensorProto.DataType.INT64;

function int64Values(t: TensorProto): BigInt64Array {
  const raw = t.rawData!;
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return new BigInt64Array(copy.buffer);
}

function int64Tensor(name: string, values: readonly bigint[], dims: number[]): TensorProto {
  return { name, dims, dataType: INT64, rawData: new Uint8Array(BigInt64Array.from(values).buffer) };
}

const sameBytes = (a?: Uint8Array | null, b?: Uint8Array | null): boolean => {
  if (!a || !b) return a === b || (!a && !b);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

/**
 * Merges the B = 2 (`two`) and B = 3 (`three`) exports of one model into one graph with a dynamic batch.
 * @param inputName the image input whose first dimension is the batch.
 */
export function makeBatchDynamic(two: Uint8Array, three: Uint8Array, inputName = 'image'): Uint8Array {
  const a = onnx.ModelProto.decode(two);
  const b = onnx.ModelProto.decode(three);
  const ga = a.graph!;
  const gb = b.graph!;
  const fail = (why: string): never => {
    throw new Error(`export --dynamic-batch: the traced graph depends on the batch size in a way a dynamic batch cannot express (${why}); export with a fixed --batch instead`);
  };
  const na = ga.node ?? [];
  const nb = gb.node ?? [];
  const ia = ga.initializer ?? [];
  const ib = gb.initializer ?? [];
  // Same nodes, in the same order, with the same wiring and attributes.
  if (na.length !== nb.length) fail(`${na.length} vs ${nb.length} nodes`);
  na.forEach((n, i) => {
    const m = nb[i]!;
    if (n.opType !== m.opType || (n.input ?? []).join() !== (m.input ?? []).join() || (n.output ?? []).join() !== (m.output ?? []).join()) fail(`node ${i} ${n.opType} differs`);
    const enc = (x: onnxProto.onnx.INodeProto): Uint8Array => onnx.NodeProto.encode(onnx.NodeProto.create({ attribute: x.attribute ?? [] })).finish();
    if (!sameBytes(enc(n), enc(m))) fail(`the attributes of node ${i} ${n.opType} change with the batch`);
  });
  if (ia.length !== ib.length) fail('a different number of constants');

  const batchVec = '__batch'; // [1] int64
  const batchScalar = '__batch_scalar'; // [] int64
  const extraNodes: onnxProto.onnx.INodeProto[] = [];
  const extraInits: TensorProto[] = [];
  const keep: TensorProto[] = [];
  let needScalar = false;
  ia.forEach((t, i) => {
    const u = ib[i]!;
    if (t.name !== u.name) fail(`constant ${i} is '${t.name}' vs '${u.name}'`);
    const dimsSame = (t.dims ?? []).map(Number).join() === (u.dims ?? []).map(Number).join();
    if (dimsSame && sameBytes(t.rawData, u.rawData) && t.dataType === u.dataType) { keep.push(t); return; }
    if (t.dataType !== INT64 || !dimsSame) fail(`constant '${t.name}' [${(t.dims ?? []).join(', ')}] changes with the batch`);
    const v2 = int64Values(t);
    const v3 = int64Values(u);
    const coef: bigint[] = [];
    const base: bigint[] = [];
    for (let k = 0; k < v2.length; k++) {
      // v(B) = a·B + c from v(2) and v(3): a = v(3) - v(2), c = v(2) - 2a.
      const a = v3[k]! - v2[k]!;
      const c = v2[k]! - 2n * a;
      if (a !== 0n && c !== 0n) fail(`element ${k} of '${t.name}' is ${v2[k]} at batch 2 and ${v3[k]} at batch 3, not a multiple of the batch`);
      coef.push(a);
      base.push(c);
    }
    const dims = (t.dims ?? []).map(Number);
    const scalar = dims.length === 0;
    if (scalar) needScalar = true;
    const cName = `${t.name}__per_batch`;
    const bName = `${t.name}__fixed`;
    const mName = `${t.name}__scaled`;
    extraInits.push(int64Tensor(cName, coef, dims), int64Tensor(bName, base, dims));
    // value = a · batch + c, elementwise.
    extraNodes.push(
      { opType: 'Mul', input: [scalar ? batchScalar : batchVec, cName], output: [mName], name: `${t.name}__mul` },
      { opType: 'Add', input: [mName, bName], output: [t.name!], name: `${t.name}__add` },
    );
  });
  const head: onnxProto.onnx.INodeProto[] = [
    { opType: 'Shape', input: [inputName], output: [batchVec], name: '__batch_shape', attribute: [{ name: 'start', type: onnx.AttributeProto.AttributeType.INT, i: 0 }, { name: 'end', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
  ];
  if (needScalar) {
    extraInits.push(int64Tensor('__batch_scalar_shape', [], [0]));
    head.push({ opType: 'Reshape', input: [batchVec, '__batch_scalar_shape'], output: [batchScalar], name: '__batch_to_scalar' });
  }
  ga.initializer = [...keep, ...extraInits];
  ga.node = [...head, ...extraNodes, ...na];
  const symbolic = (vi: onnxProto.onnx.IValueInfoProto): void => {
    const dim = vi.type?.tensorType?.shape?.dim;
    if (dim && dim.length > 0) dim[0] = { dimParam: 'batch' };
  };
  const input = (ga.input ?? []).find((x) => x.name === inputName);
  if (!input) fail(`no graph input '${inputName}'`);
  symbolic(input!);
  for (const o of ga.output ?? []) symbolic(o);
  ga.valueInfo = [];
  return onnx.ModelProto.encode(a as ModelProto).finish();
}
