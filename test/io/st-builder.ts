/** Test helper: hand-built safetensors files with any dtype and full control over the header. */
export interface RawEntry { name: string; dtype: string; shape: number[]; bytes: Uint8Array }

export function buildSafetensors(entries: RawEntry[], opts: { metadata?: Record<string, string>; headerOverride?: string } = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header['__metadata__'] = opts.metadata;
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  const json = new TextEncoder().encode(opts.headerOverride ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const e of entries) { out.set(e.bytes, p); p += e.bytes.length; }
  return out;
}
