/**
 * Bounded memory: a training loop that never yields to the event loop cannot fill memory with
 * queued batches. Past `maxQueuedBytes` the sink writes synchronously; nothing is dropped.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { jsonlSink } from '../lib/index.js';
import { readJsonl, tmpdir } from './helpers.js';

const entry = (i: number) => ({ table: 't', level: 20, step: i, time: 0, data: { i, pad: 'x'.repeat(80) } });

t.test('past maxQueuedBytes, rows reach the file during a loop that never yields', async (t) => {
  const file = path.join(tmpdir(t), 't.jsonl');
  const sink = jsonlSink({ path: file, flushBytes: 4096, flushIntervalMs: 60_000, maxQueuedBytes: 16_384 });
  let maxQueued = 0;
  for (let i = 0; i < 20_000; i++) {
    sink.write(entry(i));
    maxQueued = Math.max(maxQueued, sink.queuedBytes);
  }
  // Still inside the same turn of the event loop: no async write can have completed.
  const onDisk = fs.statSync(file).size;
  t.ok(onDisk > 1_500_000, `most of the ~2 MB is on disk before any await (${onDisk} bytes)`);
  t.ok(maxQueued <= 16_384 + 2 * 4096, `queued bytes stayed bounded (max ${maxQueued})`);
  await new Promise<void>((resolve) => sink.end(resolve));
  t.same(
    readJsonl(file).map((r) => r.i),
    Array.from({ length: 20_000 }, (_, i) => i),
    'every row, in order',
  );
});

t.test('without the bound the same loop leaves everything queued (the control case)', async (t) => {
  const file = path.join(tmpdir(t), 't.jsonl');
  const sink = jsonlSink({ path: file, flushBytes: 4096, flushIntervalMs: 60_000, maxQueuedBytes: Number.MAX_SAFE_INTEGER });
  for (let i = 0; i < 20_000; i++) sink.write(entry(i));
  // One async write may land from the thread pool meanwhile; nothing more can.
  const size = fs.existsSync(file) ? fs.statSync(file).size : 0; // a new file appears with its first whole batch
  t.ok(size < 8192, `at most the one in-flight batch is on disk (${size} bytes)`);
  t.ok(sink.queuedBytes > 1_500_000);
  await new Promise<void>((resolve) => sink.end(resolve));
  t.equal(readJsonl(file).length, 20_000);
});

t.test('maxQueuedBytes is validated', async (t) => {
  t.throws(() => jsonlSink({ path: 'x.jsonl', maxQueuedBytes: -1 }), { code: 'ERR_INVALID_OPTION', message: /^maxQueuedBytes: / });
});
