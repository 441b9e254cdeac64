/**
 * A compression that fails (issue 9, point 2, found in review): the gzip writer used to drop
 * every job it held and then every later row, silently. Now a failed compression on the thread
 * pool is done again on the main thread, and a batch that cannot be compressed at all is dropped
 * alone and counted in W_ROWS_DROPPED; the batches after it are written.
 *
 * zlib cannot be made to fail from outside, so its two deflate functions are wrapped here,
 * before lib/format/bgzf.js binds them (hence the dynamic imports).
 */
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import t from 'tap';

let failAsync = false;
let failSyncOn: (data: Buffer) => boolean = () => false;
const realAsync = zlib.deflateRaw;
const realSync = zlib.deflateRawSync;
(zlib as { deflateRaw: unknown }).deflateRaw = (buf: Buffer, opts: zlib.ZlibOptions, cb: (err: Error | null, out?: Buffer) => void) => {
  if (failAsync) {
    setImmediate(() => cb(Object.assign(new Error('deflate failed'), { code: 'Z_MEM_ERROR' })));
    return;
  }
  realAsync(buf, opts, cb);
};
(zlib as { deflateRawSync: unknown }).deflateRawSync = (buf: Buffer, opts: zlib.ZlibOptions) => {
  if (failSyncOn(buf)) throw Object.assign(new Error('deflate failed'), { code: 'Z_MEM_ERROR' });
  return realSync(buf, opts);
};

const { jsonlSink } = await import('../sinks/jsonl.js');
const { readJsonl, run, tmpdir } = await import('./helpers.js');
const { needs } = await import('./peers.js');

function entry(table: string, step: number) {
  return { table, level: 20, step, time: 1_700_000_000_000 + step, data: { step } };
}

t.afterEach(() => {
  failAsync = false;
  failSyncOn = () => false;
});

t.test('every compression on the pool fails: the rows are compressed on this thread, none lost, no warning', async (t) => {
  const file = path.join(tmpdir(t), 't.jsonl.gz');
  const sink = jsonlSink({ path: file, flushBytes: 500, flushIntervalMs: 5 });
  const warnings: string[] = [];
  sink.on('warning', (w: { code: string }) => warnings.push(w.code));
  failAsync = true;
  for (let i = 0; i < 300; i++) {
    sink.write(entry('t', i));
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 10));
  }
  sink.end();
  await finished(sink);
  t.same(warnings, []);
  t.same(readJsonl(file).map((r) => r.$step), Array.from({ length: 300 }, (_, i) => i), 'every row once, in order');
  if (needs(t, 'bgzip', 'bgzip -t')) t.equal(run('bgzip', ['-t', file]).status, 0, 'bgzip -t passes');
});

t.test('a batch that cannot be compressed at all: only its rows are lost, counted in W_ROWS_DROPPED; later rows land', async (t) => {
  const file = path.join(tmpdir(t), 't.jsonl.gz');
  const sink = jsonlSink({ path: file, flushBytes: 500, flushIntervalMs: 5 });
  const warnings: Array<{ code: string; message: string }> = [];
  sink.on('warning', (w: { code: string; message: string }) => warnings.push(w));
  const errors: Error[] = [];
  sink.on('error', (e: Error) => errors.push(e));
  failAsync = true;
  failSyncOn = (buf) => buf.includes('"$step":100,');
  for (let i = 0; i < 300; i++) {
    sink.write(entry('t', i));
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 10));
  }
  failAsync = false;
  failSyncOn = () => false;
  for (let i = 300; i < 320; i++) sink.write(entry('t', i));
  sink.end();
  await finished(sink);
  t.same(errors, [], 'the sink did not fail');
  const steps = readJsonl(file).map((r) => r.$step as number);
  t.notOk(steps.includes(100), 'the batch holding step 100 is lost');
  t.ok(steps.includes(299) && steps.includes(319), 'rows after it land');
  t.equal(new Set(steps).size, steps.length, 'each once');
  t.same(steps, [...steps].sort((a, b) => a - b), 'in order');
  const drops = warnings.filter((w) => w.code === 'W_ROWS_DROPPED');
  t.ok(drops.length >= 1, 'W_ROWS_DROPPED');
  t.match(drops[0]?.message, /could not be compressed \(Z_MEM_ERROR/);
  const counted = Number(/(\d+) rows in all/.exec(drops.at(-1)?.message ?? '')?.[1]);
  t.equal(steps.length + counted, 320, `every row is in the file or counted (${counted} counted)`);
  if (needs(t, 'bgzip', 'bgzip -t')) t.equal(run('bgzip', ['-t', file]).status, 0, 'bgzip -t passes');
  t.ok(fs.statSync(file).size > 0);
});
