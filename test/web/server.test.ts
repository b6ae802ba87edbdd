import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ExploreServer, PathRefused, prepareRun, runManifest, safeSegments, startExploreServer } from '../../src/cli/explore.ts';
import { saveCheckpoint } from '../../src/io/train-checkpoint.ts';
import { stateFromParams } from '../../src/train/state.ts';
import { createModel } from '../../src/models/registry.ts';
import { initWeights } from '../../src/nn/params.ts';
import { Rng } from '../../src/util/rng.ts';

let tmp: string;
let srv: ExploreServer;

/** Raw GET with the path sent exactly as written (no client-side normalisation). */
function get(p: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: p, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-serve-'));
  const app = path.join(tmp, 'app');
  const run = path.join(tmp, 'run');
  fs.mkdirSync(path.join(app, 'assets'), { recursive: true });
  fs.mkdirSync(path.join(run, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(app, 'index.html'), '<!doctype html><title>app</title>');
  fs.writeFileSync(path.join(app, 'assets', 'main.js'), 'console.log(1)');
  fs.writeFileSync(path.join(app, 'assets', 'x.wasm'), new Uint8Array([0, 97, 115, 109]));
  fs.writeFileSync(path.join(tmp, 'secret.json'), '{"secret":true}');
  fs.writeFileSync(path.join(run, 'results.json'), '{"schema":"anyres.results/1"}');
  fs.writeFileSync(path.join(run, 'sub', 'm-32.onnx'), 'onnx');
  fs.writeFileSync(path.join(run, 'ckpt.safetensors'), 'st');
  fs.writeFileSync(path.join(run, 'train.log'), 'private log');
  fs.writeFileSync(path.join(run, '.hidden.json'), '{}');
  fs.symlinkSync(path.join(tmp, 'secret.json'), path.join(run, 'escape.json'));
  fs.symlinkSync(path.join(tmp, 'secret.json'), path.join(app, 'escape.json'));
  fs.symlinkSync(tmp, path.join(run, 'up'));
  srv = await startExploreServer({ appDir: app, runDir: run });
});

after(async () => {
  await srv.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('serves the app and the run on 127.0.0.1 with content types and cross-origin isolation headers', async () => {
  assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal((srv.server.address() as { address: string }).address, '127.0.0.1');
  const index = await get('/');
  assert.equal(index.status, 200);
  assert.match(index.body, /<title>app/);
  assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(index.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(index.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.equal((await get('/assets/main.js')).headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal((await get('/assets/x.wasm')).headers['content-type'], 'application/wasm');
  assert.equal((await get('/assets/main.js?v=1')).status, 200);
  const r = await get('/run/results.json');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal((await get('/run/sub/m-32.onnx')).body, 'onnx');
  const head = await get('/run/sub/m-32.onnx', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '4');
});

test('the run manifest names models, checkpoints and results only', async () => {
  const m = JSON.parse((await get('/run/manifest.json')).body) as { models: string[]; checkpoints: string[]; results: string | null };
  assert.deepEqual(m.models, ['sub/m-32.onnx']);
  assert.deepEqual(m.checkpoints, ['ckpt.safetensors']);
  assert.equal(m.results, 'results.json');
  assert.ok(!JSON.stringify(m).includes('train.log') && !JSON.stringify(m).includes('hidden'));
});

test('path traversal, encoded or not, never leaves the roots', async () => {
  const attempts = [
    '/../secret.json', '/%2e%2e/secret.json', '/%2E%2E/secret.json', '/..%2fsecret.json', '/%2e%2e%2fsecret.json',
    '/assets/../../secret.json', '/assets/%2e%2e/%2e%2e/secret.json', '/run/../secret.json', '/run/%2e%2e/secret.json',
    '/run/sub/..%2f..%2fsecret.json', '/..%5csecret.json', '/run/..%5c..%5csecret.json', '/%252e%252e/secret.json',
    '/run/%00results.json', '/escape.json', '/run/escape.json', '/run/up/secret.json', '/run/up/app/index.html',
    '/%', '/run/%zz', '//secret.json', '/run//../secret.json',
  ];
  for (const p of attempts) {
    const r = await get(p);
    assert.ok(r.status === 400 || r.status === 404, `${p} -> ${r.status}`);
    assert.ok(!r.body.includes('"secret":true') && !r.body.includes('<title>'), `${p} leaked: ${r.body}`);
  }
  // Absolute-form request targets are refused outright.
  assert.equal((await get('http://127.0.0.1/secret.json')).status, 400);
});

test('no directory listings, no private run files, no uploads', async () => {
  for (const p of ['/assets', '/assets/', '/run/', '/run', '/run/sub/', '/run/train.log', '/run/.hidden.json']) {
    const r = await get(p);
    assert.equal(r.status, 404, p);
    assert.ok(!r.body.includes('main.js') && !r.body.includes('m-32'), `${p} listed: ${r.body}`);
  }
  for (const m of ['POST', 'PUT', 'DELETE']) {
    const r = await get('/run/results.json', m);
    assert.equal(r.status, 405);
    assert.equal(r.headers['allow'], 'GET, HEAD');
  }
});

test('safeSegments refuses dot segments and separators after decoding', () => {
  assert.deepEqual(safeSegments('/a/b%20c.json'), ['a', 'b c.json']);
  for (const bad of ['/..', '/a/%2e%2e', '/a%2fb', '/a%5cb', '/%00', '/.']) assert.throws(() => safeSegments(bad), PathRefused, bad);
});

test('refuses a non-loopback host and a missing app build', async () => {
  await assert.rejects(startExploreServer({ appDir: path.join(tmp, 'app'), host: '0.0.0.0' }), /loopback only/);
  await assert.rejects(startExploreServer({ appDir: tmp }), /no index\.html/);
});

test('prepareRun exports a training run for the page once; the manifest hides the raw training tensors', async () => {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'anyres-prep-'));
  try {
    const model = createModel('vit-mini-p4');
    const w = initWeights(model.paramInfos(), new Rng(0));
    saveCheckpoint(path.join(run, 'abs'), stateFromParams(new Map([...w].map(([k, t]) => [k, t.data]))), {
      model: { family: model.family, config: model.config, preset: 'vit-mini-p4' }, run: { resolutions: [32], data: 'synthetic' }, epoch: 0, stepInEpoch: 0, rng: {},
    });
    const first = await prepareRun(run);
    assert.deepEqual(first.map((f) => path.relative(run, f)), [16, 24, 32, 48, 64].map((r) => `explore/abs-${r}.onnx`).concat('explore/abs.safetensors'));
    assert.deepEqual(await prepareRun(run), []); // up to date
    const m = await runManifest(run);
    assert.equal(m.models.length, 5);
    assert.deepEqual(m.checkpoints, ['explore/abs.safetensors']);
    await assert.rejects(prepareRun(path.join(run, 'missing')), /is not a directory/);
  } finally {
    fs.rmSync(run, { recursive: true, force: true });
  }
});
