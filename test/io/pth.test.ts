import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CheckpointFormatError, UnsafePickleError, readPth, flattenCheckpoint, loadStateDict, loadCheckpointFile,
  readCheckpoint, sniffCheckpoint, unpickle, torchGlobals, saveSafetensors, openZip, type NamedTensor,
} from '../../src/io/index.ts';
import { PickleWriter, buildZip, contiguous, f32Storage, torchSave, type SaveValue, type StorageSpec } from './pth-writer.ts';

const seq = (n: number, scale = 1): number[] => Array.from({ length: n }, (_, i) => (i - n / 3) * scale);

function tensors(bytes: Uint8Array): Map<string, NamedTensor> {
  return flattenCheckpoint(readPth(bytes)).tensors;
}

const stateDict = (): Map<string, SaveValue> => new Map<string, SaveValue>([
  ['patch_embed.proj.weight', contiguous(f32Storage('0', seq(24, 0.25)), [2, 3, 2, 2])],
  ['patch_embed.proj.bias', contiguous(f32Storage('1', [0.5, -1.5]), [2])],
  ['pos_embed', contiguous(f32Storage('2', seq(12, 1e-3)), [1, 6, 2])],
  ['scalar', contiguous(f32Storage('3', [7]), [])],
]);

test('state dict round trip through a torch.save-style zip', () => {
  for (const opts of [{}, { deflate: true }, { zip64: true }, { archive: 'my_model' }, { byteorder: 'little' as const }, { byteorder: 'big' as const }]) {
    const t = tensors(torchSave(stateDict(), opts));
    assert.deepEqual([...t.keys()], ['patch_embed.proj.weight', 'patch_embed.proj.bias', 'pos_embed', 'scalar'], JSON.stringify(opts));
    assert.deepEqual(t.get('patch_embed.proj.weight')?.shape, [2, 3, 2, 2]);
    assert.deepEqual(Array.from(t.get('patch_embed.proj.weight')?.data ?? []), seq(24, 0.25).map(Math.fround));
    assert.deepEqual(Array.from(t.get('patch_embed.proj.bias')?.data ?? []), [0.5, -1.5]);
    assert.deepEqual(Array.from(t.get('pos_embed')?.data ?? []), seq(12, 1e-3).map(Math.fround));
    assert.deepEqual(t.get('scalar')?.shape, []);
    assert.deepEqual(Array.from(t.get('scalar')?.data ?? []), [7]);
  }
});

test('strided views: transpose, slice with offset, shared storage, nn.Parameter', () => {
  const s = f32Storage('0', seq(12)); // a [3, 4] matrix m[i][j] = s[4i + j]
  const m = (i: number, j: number): number => Math.fround(seq(12)[4 * i + j]);
  const sd = new Map<string, SaveValue>([
    ['w', { ...contiguous(s, [3, 4]), parameter: true }],
    ['w_t', { tensor: true, storage: s, offset: 0, size: [4, 3], stride: [1, 4] }], // w.t()
    ['col2', { tensor: true, storage: s, offset: 2, size: [3], stride: [4] }], // w[:, 2]
    ['block', { tensor: true, storage: s, offset: 5, size: [2, 2], stride: [4, 1] }], // w[1:3, 1:3]
  ]);
  const t = tensors(torchSave(sd));
  const wt = t.get('w_t');
  assert.deepEqual(wt?.shape, [4, 3]);
  for (let j = 0; j < 4; j++) for (let i = 0; i < 3; i++) assert.equal(wt?.data[j * 3 + i], m(i, j));
  assert.deepEqual(Array.from(t.get('col2')?.data ?? []), [m(0, 2), m(1, 2), m(2, 2)]);
  assert.deepEqual(Array.from(t.get('block')?.data ?? []), [m(1, 1), m(1, 2), m(2, 1), m(2, 2)]);
  assert.deepEqual(Array.from(t.get('w')?.data ?? []), seq(12).map(Math.fround));
});

test('half / bfloat16 / double / long storages convert to float32', () => {
  const half: StorageSpec = { key: 'h', type: 'HalfStorage', itemsize: 2, bytes: Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00]) };
  const bf: StorageSpec = { key: 'b', type: 'BFloat16Storage', itemsize: 2, bytes: Uint8Array.from([0x80, 0x3f, 0x49, 0x40]) };
  const dbl: StorageSpec = { key: 'd', type: 'DoubleStorage', itemsize: 8, bytes: new Uint8Array(new Float64Array([0.1, -2]).buffer) };
  const lng: StorageSpec = { key: 'l', type: 'LongStorage', itemsize: 8, bytes: new Uint8Array(new BigInt64Array([3n, -4n]).buffer) };
  const sd = new Map<string, SaveValue>([
    ['h', contiguous(half, [3])], ['b', contiguous(bf, [2])], ['d', contiguous(dbl, [2])], ['l', contiguous(lng, [2])],
  ]);
  for (const byteorder of ['little', 'big'] as const) {
    const t = tensors(torchSave(sd, { byteorder }));
    assert.deepEqual(Array.from(t.get('h')?.data ?? []), [1, -2, 2 ** -24], byteorder);
    assert.deepEqual(Array.from(t.get('b')?.data ?? []), [1, 3.140625], byteorder);
    assert.deepEqual(Array.from(t.get('d')?.data ?? []), [Math.fround(0.1), -2], byteorder);
    assert.deepEqual(Array.from(t.get('l')?.data ?? []), [3, -4], byteorder);
  }
});

test('nested checkpoint {model: sd, epoch: 5, ...} keeps the top-level key structure', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-pth-'));
  const file = path.join(dir, 'ckpt.pth');
  const root = new Map<string, SaveValue>([
    ['model', stateDict()],
    ['epoch', 5],
    ['best_acc', { float: 81.25 }],
    ['arch', 'deit_tiny'],
    ['steps', [1, 2, 300000, -70000, 2 ** 40]],
    ['flag', true],
    ['nothing', null],
  ]);
  fs.writeFileSync(file, torchSave(root));
  const { tensors: t, extras } = loadStateDict(file);
  assert.deepEqual([...t.keys()], ['model.patch_embed.proj.weight', 'model.patch_embed.proj.bias', 'model.pos_embed', 'model.scalar']);
  assert.deepEqual(extras.get('epoch'), 5);
  assert.deepEqual(extras.get('best_acc'), 81.25);
  assert.deepEqual(extras.get('arch'), 'deit_tiny');
  assert.deepEqual(extras.get('steps'), [1, 2, 300000, -70000, 2 ** 40]);
  assert.equal(extras.get('flag'), true);
  assert.equal(extras.get('nothing'), null);
  // The dispatcher picks the format from magic bytes, whatever the extension.
  const viaDispatch = loadCheckpointFile(file);
  assert.deepEqual([...viaDispatch.keys()], [...t.keys()]);
  const st = path.join(dir, 'same.bin');
  saveSafetensors(st, t);
  assert.deepEqual(Array.from(loadCheckpointFile(st).get('model.pos_embed')?.data ?? []), Array.from(t.get('model.pos_embed')?.data ?? []));
  assert.throws(() => readCheckpoint(new TextEncoder().encode('hello world, not a checkpoint'), 'x.ckpt'), (e: unknown) =>
    e instanceof CheckpointFormatError && /x\.ckpt: neither a torch.save file .* nor safetensors .* first bytes: 68 65 6c/.test(e.message));
  assert.throws(() => readCheckpoint(new Uint8Array(0), 'empty.pt'), /empty file/);
});

test('a legacy (pre-1.6) torch file cut after its magic number is a typed error, not a crash', () => {
  const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
  assert.equal(sniffCheckpoint(legacy), 'pth-legacy');
  assert.throws(() => readCheckpoint(legacy, 'old.pth'), (e: unknown) => e instanceof CheckpointFormatError && /old\.pth: pickle: ran out of data/.test(e.message));
});

/** data.pkl bytes that call `module.name(arg)` through the given global-loading opcode. */
function maliciousPickle(kind: 'GLOBAL' | 'STACK_GLOBAL' | 'INST', module: string, name: string, arg: string): Uint8Array {
  const w = new PickleWriter().op(0x80, 0x04);
  const enc = new TextEncoder();
  if (kind === 'GLOBAL') {
    w.op(0x63).raw(enc.encode(`${module}\n${name}\n`)).str(arg).op(0x85, 0x52, 0x2e);
  } else if (kind === 'STACK_GLOBAL') {
    w.str(module).str(name).op(0x93).str(arg).op(0x85, 0x52, 0x2e);
  } else {
    w.op(0x28).str(arg).op(0x69).raw(enc.encode(`${module}\n${name}\n`)).op(0x2e);
  }
  return w.bytes();
}

test('malicious pickles are refused with UnsafePickleError naming the global; nothing runs', () => {
  const cases: [('GLOBAL' | 'STACK_GLOBAL' | 'INST'), string, string][] = [
    ['GLOBAL', 'os', 'system'], ['STACK_GLOBAL', 'builtins', 'eval'], ['GLOBAL', 'builtins', 'eval'],
    ['INST', 'posix', 'system'], ['STACK_GLOBAL', 'subprocess', 'Popen'], ['GLOBAL', 'torch', 'load'],
    ['GLOBAL', 'collections', 'OrderedDict.__class__'], ['STACK_GLOBAL', 'torch._utils', '__builtins__'],
  ];
  for (const [kind, module, name] of cases) {
    const pkl = maliciousPickle(kind, module, name, 'touch anyres-pwned-marker');
    let persistentCalls = 0;
    const check = (e: unknown): boolean => {
      assert.ok(e instanceof UnsafePickleError, `${kind} ${module}.${name}: got ${String(e)}`);
      assert.equal(e.global, `${module}.${name}`);
      assert.match(e.message, new RegExp(`refused to load pickle global '${module}\\.${name.replace(/[.$_]/g, '\\$&')}'`));
      return true;
    };
    assert.throws(() => unpickle(pkl, { globals: torchGlobals('t'), persistentLoad: () => { persistentCalls++; return null; } }), check);
    // The same pickle inside a real-looking .pth archive.
    assert.throws(() => readPth(torchSave(new Map(), { pkl }), 'evil.pth'), check);
    assert.equal(persistentCalls, 0);
  }
});

test('truncated and corrupted .pth files give typed errors', () => {
  const full = torchSave(stateDict());
  let n = 0;
  for (let len = 0; len < full.length; len += 7) {
    assert.throws(() => readPth(full.subarray(0, len), 'cut.pth'), CheckpointFormatError, `truncated to ${len}`);
    n++;
  }
  assert.ok(n > 50);
  // A flipped bit in tensor data is caught by the CRC.
  const bad = full.slice();
  const zip = openZip(full);
  const e = zip.entry('archive/data/0');
  assert.ok(e);
  const dv = new DataView(full.buffer, full.byteOffset);
  const start = e.localHeaderOffset + 30 + dv.getUint16(e.localHeaderOffset + 26, true) + dv.getUint16(e.localHeaderOffset + 28, true);
  bad[start + 3] ^= 0x10;
  assert.throws(() => readPth(bad, 'flip.pth'), /CRC-32 mismatch in entry 'archive\/data\/0'/);
});

test('forged tensor metadata is refused before allocating', () => {
  const s = f32Storage('0', seq(6));
  const bad = (v: SaveValue, re: RegExp): void => {
    assert.throws(() => readPth(torchSave(new Map([['x', v]]))), (e: unknown) => e instanceof CheckpointFormatError && re.test(e.message));
  };
  bad({ tensor: true, storage: s, offset: 4, size: [3], stride: [1] }, /reads element 6, past the end of its storage/);
  bad({ tensor: true, storage: s, offset: 0, size: [1 << 30], stride: [0] }, /more elements than its storage/);
  bad({ tensor: true, storage: s, offset: 0, size: [2, 3], stride: [3] }, /differ in rank/);
});

/**
 * data.pkl written by CPython's own pickle.Pickler(protocol=2) with a persistent_id hook, the way
 * torch/serialization.py `_save` does, using stand-in `torch` modules (torch is not installed
 * here). Root: {'model': OrderedDict(qkv.weight as nn.Parameter [2,3], qkv.weight_t = its
 * transpose [3,2] stride (1,3), qkv.bias [2]) with `_metadata`, 'epoch': 3, 'lr': 0.5}.
 * Unlike our writer, CPython does not memoize persistent-load results and re-emits the id tuple.
 */
const CPYTHON_PKL =
  '80027d71002858050000006d6f64656c710163636f6c6c656374696f6e730a4f726465726564446963740a71022952710328' +
  '5818000000626c6f636b732e302e6174746e2e716b762e776569676874710463746f7263682e5f7574696c730a5f72656275' +
  '696c645f706172616d657465720a710563746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71' +
  '062828580700000073746f72616765710763746f7263680a466c6f617453746f726167650a71085801000000307109580300' +
  '0000637075710a4b0674710b514b004b024b0386710c4b034b0186710d8968022952710e74710f5271108868022952711187' +
  '7112527113581a000000626c6f636b732e302e6174746e2e716b762e7765696768745f74711468062828680768086809680a' +
  '4b06747115514b004b034b028671164b014b038671178968022952711874711952711a5816000000626c6f636b732e302e61' +
  '74746e2e716b762e62696173711b6806282868076808580100000031711c680a4b0274711d514b004b0285711e4b0185711f' +
  '89680229527120747121527122757d712358090000005f6d65746164617461712468022952712528580000000071267d7127' +
  '580700000076657273696f6e71284b01735806000000626c6f636b7371297d712a68284b0173757362580500000065706f63' +
  '68712b4b0358020000006c72712c473fe0000000000000752e';

test('a pickle written by CPython in torch.save layout loads', () => {
  const pkl = Uint8Array.from(Buffer.from(CPYTHON_PKL, 'hex'));
  const storages = [f32Storage('0', [1, 2, 3, 4, 5, 6]), f32Storage('1', [-1, 0.5])];
  const files = [{ name: 'archive/data.pkl', data: pkl }, ...storages.map((s) => ({ name: `archive/data/${s.key}`, data: s.bytes }))];
  const { tensors: t, extras } = flattenCheckpoint(readPth(buildZip(files)));
  assert.deepEqual([...t.keys()], ['model.blocks.0.attn.qkv.weight', 'model.blocks.0.attn.qkv.weight_t', 'model.blocks.0.attn.qkv.bias']);
  assert.deepEqual(t.get('model.blocks.0.attn.qkv.weight')?.shape, [2, 3]);
  assert.deepEqual(Array.from(t.get('model.blocks.0.attn.qkv.weight')?.data ?? []), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(t.get('model.blocks.0.attn.qkv.weight_t')?.shape, [3, 2]);
  assert.deepEqual(Array.from(t.get('model.blocks.0.attn.qkv.weight_t')?.data ?? []), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(Array.from(t.get('model.blocks.0.attn.qkv.bias')?.data ?? []), [-1, 0.5]);
  assert.deepEqual([...extras.entries()], [['epoch', 3], ['lr', 0.5]]);
});

test('cyclic and exponentially shared pickled structures are refused by the flattener', () => {
  const globals = torchGlobals('t');
  // l = []; l.append(l)  →  EMPTY_LIST BINPUT 0 BINGET 0 APPEND STOP
  const cyclic = Uint8Array.from([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e]);
  const v = unpickle(cyclic, { globals });
  assert.throws(() => flattenCheckpoint(v, 'cyc.pth'), /cyc\.pth: checkpoint value '0' contains itself/);
  // x = ([],); then 60 times x = (x, x): 2^60 leaves through shared references, 124 bytes of pickle.
  const ops = [0x80, 0x02, 0x5d, 0x5d, 0x86];
  for (let i = 0; i < 60; i++) ops.push(0x32, 0x86);
  ops.push(0x2e);
  const shared = unpickle(Uint8Array.from(ops), { globals });
  const t0 = performance.now();
  assert.throws(() => flattenCheckpoint(shared, 'bomb.pth'), /more than 250000 nested values/);
  assert.ok(performance.now() - t0 < 2000);
});
