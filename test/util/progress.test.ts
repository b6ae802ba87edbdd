import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatEta, formatMetric, progress } from '../../src/util/progress.ts';

function capture(isTTY: boolean): { stream: { write(s: string): boolean; isTTY: boolean }; out: string[] } {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => (out.push(s), true) } };
}

test('quiet mode (not a TTY) prints one line per 10 % with ETA and metrics', () => {
  const { stream, out } = capture(false);
  let t = 0;
  const bar = progress(200, 'train', { stream, now: () => t, env: {} });
  for (let i = 0; i < 200; i++) {
    t += 50; // 50 ms per item
    bar.tick(1, { loss: 1 / (i + 1), lr: 1e-3, img_s: 640 });
  }
  bar.done();
  assert.equal(out.length, 10, out.join(''));
  assert.ok(out.every((l) => l.endsWith('\n') && !l.includes('\r')));
  // At 20 items (10 %): elapsed 1 s, 180 items left at 50 ms each = 9 s.
  assert.equal(out[0], 'train  10% 20/200  elapsed 1.0s  ETA 9.0s  loss 0.05  lr 1.00e-3  img/s 640.0\n');
  assert.match(out[9]!, /^train 100% 200\/200 {2}elapsed 10s {2}ETA 0.0s/);
  assert.equal(bar.count, 200);
});

test('CI=true forces quiet mode even on a TTY; big ticks print once', () => {
  const { stream, out } = capture(true);
  const bar = progress(10, 'sweep', { stream, now: () => 0, env: { CI: 'true' } });
  bar.tick(7);
  assert.equal(out.length, 1, 'crossing several 10 % marks prints one line');
  assert.match(out[0]!, /^sweep {2}70% 7\/10/);
  bar.done();
  assert.equal(out.length, 2, 'done() on unfinished work prints the final state');
  assert.match(out[1]!, /70% 7\/10/);
  assert.throws(() => bar.tick(), /tick\(\) after done\(\)/);
});

test('TTY mode redraws one line in place, throttled, with a bar', () => {
  const { stream, out } = capture(true);
  let t = 0;
  const bar = progress(100, 'eval', { stream, now: () => t, env: {} });
  for (let i = 0; i < 50; i++) {
    t += 10; // 10 ms per item: redraws at items 1, 11, 21, 31, 41 (every 100 ms)
    bar.tick();
  }
  assert.equal(out.length, 5, `throttled redraws: ${out.length}`);
  assert.ok(out.every((s) => s.startsWith('\r') && s.endsWith('\x1b[K') && !s.includes('\n')));
  assert.ok(out[4]!.includes('[##########--------------]  41% 41/100  elapsed 0.4s  ETA 0.6s'), out[4]);
  for (let i = 0; i < 50; i++) bar.tick();
  bar.done({ loss: 0.25 });
  assert.ok(out.at(-2)!.includes('[########################] 100% 100/100') && out.at(-2)!.includes('loss 0.25'));
  assert.equal(out.at(-1), '\n');
});

test('formatting helpers and argument checks', () => {
  assert.equal(formatEta(83), '1m23s');
  assert.equal(formatEta(3723), '1h02m');
  assert.equal(formatEta(NaN), '?');
  assert.equal(formatMetric('lr', 0.00025), 'lr 2.50e-4');
  assert.equal(formatMetric('loss', 1.234567), 'loss 1.235');
  assert.throws(() => progress(0, 'x'), /total must be a positive integer/);
  assert.throws(() => progress(5, 'x', { stream: capture(false).stream }).tick(-1), /needs n >= 0/);
});
