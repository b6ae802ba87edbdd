/**
 * Reads `ModelProto.metadata_props` (field 14, repeated StringStringEntryProto{key=1, value=2};
 * onnx/onnx.proto) and the graph's first input shape straight from the protobuf wire format, so
 * the page learns a dropped .onnx file's resolution, classes and model name without bundling a
 * protobuf library. Only length-delimited and varint fields are walked; anything else is skipped
 * by its wire type.
 */

interface Field {
  no: number;
  wire: number;
  /** Varint value, or the bytes of a length-delimited field. */
  value: number | Uint8Array;
}

function* fields(buf: Uint8Array): Generator<Field> {
  let i = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('onnx: truncated varint');
      const b = buf[i++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) yield { no, wire, value: varint() };
    else if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error(`onnx: field ${no} runs past the end of the buffer (not an ONNX model?)`);
      yield { no, wire, value: buf.subarray(i, i + len) };
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`onnx: unsupported wire type ${wire} (not an ONNX model?)`);
  }
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface OnnxSummary {
  metadata: Record<string, string>;
  /** First graph input: name and static dims (-1 for symbolic ones). */
  input: { name: string; dims: number[] } | null;
}

/** Metadata props and the first input's shape of a serialised ONNX ModelProto. */
export function readOnnxSummary(bytes: Uint8Array): OnnxSummary {
  const metadata: Record<string, string> = {};
  let input: OnnxSummary['input'] = null;
  for (const f of fields(bytes)) {
    if (f.no === 14 && f.value instanceof Uint8Array) {
      let key = '';
      let value = '';
      for (const g of fields(f.value)) {
        if (g.no === 1 && g.value instanceof Uint8Array) key = text(g.value);
        if (g.no === 2 && g.value instanceof Uint8Array) value = text(g.value);
      }
      metadata[key] = value;
    } else if (f.no === 7 && f.value instanceof Uint8Array && input === null) {
      // GraphProto.input = 11 (ValueInfoProto: name=1, type=2 → TypeProto.tensor_type=1 →
      // Tensor.shape=2 → TensorShapeProto.dim=1 → Dimension.dim_value=1 | dim_param=2).
      for (const g of fields(f.value)) {
        if (g.no !== 11 || !(g.value instanceof Uint8Array)) continue;
        let name = '';
        const dims: number[] = [];
        for (const v of fields(g.value)) {
          if (v.no === 1 && v.value instanceof Uint8Array) name = text(v.value);
          if (v.no !== 2 || !(v.value instanceof Uint8Array)) continue;
          for (const t of fields(v.value)) {
            if (t.no !== 1 || !(t.value instanceof Uint8Array)) continue;
            for (const s of fields(t.value)) {
              if (s.no !== 2 || !(s.value instanceof Uint8Array)) continue;
              for (const d of fields(s.value)) {
                if (d.no !== 1 || !(d.value instanceof Uint8Array)) continue;
                let dim = -1;
                for (const x of fields(d.value)) if (x.no === 1 && typeof x.value === 'number') dim = x.value;
                dims.push(dim);
              }
            }
          }
        }
        input = { name, dims };
        break;
      }
    }
  }
  return { metadata, input };
}
