/**
 * Minimal read-only ZIP reader for PyTorch checkpoints (PKWARE APPNOTE.TXT 6.3.x: §4.3.7 local
 * file header, §4.3.12 central directory header, §4.3.16 end of central directory, §4.3.14-15
 * zip64 records, §4.5.3 zip64 extra field). torch.save writes stored (uncompressed) entries
 * through miniz; deflate (method 8) is accepted too because re-zipped checkpoints use it.
 *
 * Every length read from the file is bounds-checked against the file itself before use, so a
 * forged size cannot make us allocate more than the input justifies: stored entries must lie
 * inside the file, and a deflate entry may not claim more than the maximum DEFLATE expansion
 * (1032:1) of its compressed bytes.
 */
import { inflateRawSync } from 'node:zlib';
import { CheckpointFormatError } from './errors.ts';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  localHeaderOffset: number;
}

export interface ZipArchive {
  /** Entry names in central-directory order. */
  readonly names: string[];
  has(name: string): boolean;
  entry(name: string): ZipEntry | undefined;
  /** The uncompressed bytes of an entry (a view into the input for stored entries). CRC-checked. */
  read(name: string): Uint8Array;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
/** Upper bound of DEFLATE's compression ratio (a 258-byte match costs at least 2 bits). */
const MAX_DEFLATE_RATIO = 1032;

let crcTable: Int32Array | undefined;
/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as ZIP stores it. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const t = crcTable;
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

export function openZip(bytes: Uint8Array, source = '<bytes>'): ZipArchive {
  const fail = (msg: string): never => { throw new CheckpointFormatError(source, `zip: ${msg}`); };
  const len = bytes.length;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (off: number, n: number, what: string): void => {
    if (!(off >= 0 && off + n <= len)) fail(`${what} at offset ${off} (+${n} bytes) lies outside the ${len}-byte file (truncated?)`);
  };
  const u16 = (o: number): number => dv.getUint16(o, true);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u64 = (o: number, what: string): number => {
    const v = dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is not a plausible size or offset`);
    return Number(v);
  };

  // End of central directory: 22 bytes + comment (<= 65535), searched backwards from the end.
  if (len < 22) fail(`file is ${len} bytes, too short for a zip end-of-central-directory record (22 bytes)`);
  let eocd = -1;
  for (let p = len - 22; p >= Math.max(0, len - 22 - 0xffff); p--) {
    if (u32(p) === SIG_EOCD && p + 22 + u16(p + 20) === len) { eocd = p; break; }
  }
  // Only a record whose comment ends exactly at end-of-file counts, so a stray signature inside
  // stored data cannot be taken for the directory.
  if (eocd < 0) fail('no end-of-central-directory record found (not a zip file, or truncated)');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    need(loc, 20, 'zip64 end-of-central-directory locator');
    if (u32(loc) !== SIG_ZIP64_LOCATOR) fail(`zip64 sizes announced but no zip64 locator at offset ${loc}`);
    const z = u64(loc + 8, 'zip64 end-of-central-directory offset');
    need(z, 56, 'zip64 end-of-central-directory record');
    if (u32(z) !== SIG_ZIP64_EOCD) fail(`no zip64 end-of-central-directory record at offset ${z}`);
    count = u64(z + 32, 'zip64 entry count');
    cdSize = u64(z + 40, 'zip64 central directory size');
    cdOffset = u64(z + 48, 'zip64 central directory offset');
  }
  need(cdOffset, cdSize, 'central directory');
  // Each central header is at least 46 bytes: a forged count cannot exceed what the directory holds.
  if (count * 46 > cdSize) fail(`central directory of ${cdSize} bytes cannot hold the ${count} entries it announces`);

  const utf8 = new TextDecoder('utf-8');
  const entries = new Map<string, ZipEntry>();
  const names: string[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    need(p, 46, `central directory header #${i}`);
    if (u32(p) !== SIG_CENTRAL) fail(`bad central directory signature 0x${u32(p).toString(16)} at offset ${p} (entry #${i})`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let compressedSize = u32(p + 20);
    let uncompressedSize = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let localHeaderOffset = u32(p + 42);
    need(p + 46, nameLen + extraLen + commentLen, `central directory entry #${i} name/extra/comment`);
    const name = utf8.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information extra field (id 0x0001): present values replace the 0xFFFFFFFF ones, in order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = u16(x);
      const size = u16(x + 2);
      if (x + 4 + size > xEnd) fail(`extra field of '${name}' overruns its ${extraLen}-byte area`);
      if (id === 0x0001) {
        let q = x + 4;
        const take = (what: string): number => {
          if (q + 8 > x + 4 + size) fail(`zip64 extra field of '${name}' is too short for ${what}`);
          const v = u64(q, `zip64 ${what} of '${name}'`);
          q += 8;
          return v;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take('uncompressed size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
      }
      x += 4 + size;
    }
    if (flags & 1) fail(`entry '${name}' is encrypted; encrypted zip entries are not supported`);
    if (method !== 0 && method !== 8) fail(`entry '${name}' uses compression method ${method}; only 0 (stored) and 8 (deflate) are supported`);
    if (method === 0 && compressedSize !== uncompressedSize) {
      fail(`stored entry '${name}' has compressed size ${compressedSize} != uncompressed size ${uncompressedSize}`);
    }
    if (method === 8 && uncompressedSize > compressedSize * MAX_DEFLATE_RATIO + 1024) {
      fail(`deflate entry '${name}' claims ${uncompressedSize} bytes from ${compressedSize} compressed bytes, beyond deflate's maximum ratio`);
    }
    need(localHeaderOffset, 30 + compressedSize, `entry '${name}' data`);
    if (entries.has(name)) fail(`duplicate entry name '${name}'`);
    entries.set(name, { name, method, compressedSize, uncompressedSize, crc32: crc, localHeaderOffset });
    names.push(name);
    p += 46 + nameLen + extraLen + commentLen;
  }

  const read = (name: string): Uint8Array => {
    const e = entries.get(name);
    if (!e) return fail(`no entry named '${name}'`);
    const h = e.localHeaderOffset;
    if (u32(h) !== SIG_LOCAL) fail(`bad local header signature at offset ${h} for '${name}'`);
    const start = h + 30 + u16(h + 26) + u16(h + 28);
    need(start, e.compressedSize, `data of entry '${name}'`);
    const raw = bytes.subarray(start, start + e.compressedSize);
    let data: Uint8Array;
    if (e.method === 0) {
      data = raw;
    } else {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.uncompressedSize) });
      } catch (err) {
        return fail(`cannot inflate entry '${name}': ${(err as Error).message}`);
      }
      if (data.length !== e.uncompressedSize) fail(`entry '${name}' inflated to ${data.length} bytes, expected ${e.uncompressedSize}`);
    }
    const c = crc32(data);
    if (c !== e.crc32) fail(`CRC-32 mismatch in entry '${name}': computed 0x${c.toString(16)}, stored 0x${e.crc32.toString(16)} (corrupt file)`);
    return data;
  };

  return {
    names,
    has: (n) => entries.has(n),
    entry: (n) => entries.get(n),
    read,
  };
}
