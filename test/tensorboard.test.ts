/**
 * tensorboardSink (docs/DESIGN.md §4): what TensorBoard would read. The events file is decoded by
 * a reader rowlog did not write (Python's protobuf on classes protoc compiled from TensorBoard's
 * schema, CRCs checked by the `crc32c` module) and compared with the JSONL of the same run, value
 * by value (as float32) and step by step; without those peers, by the test's own walker
 * (test/tfevents.ts), so the sink's paths are covered on a fresh machine too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { createLogger } from '../lib/log/logger.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { tensorboardSink } from '../sinks/tensorboard.js';
import { eventsFilePath } from '../sinks/tensorboard-file.js';
import { tmpdir, tmpfs } from './helpers.js';
import { needs, peer } from './peers.js';
import { eventsFiles, expectedEvents, jsonlRows, readTfFile, readTfFilePython } from './tfevents.js';
import type { TfEvent } from './tfevents.js';
import { until } from './wait.js';

/** Events with NaN/±Infinity as text, so `t.same` compares them as a user reads them. */
function shown(events: TfEvent[]): unknown[] {
  return events.map((e) => ({ ...e, values: e.values && Object.fromEntries(Object.entries(e.values).map(([k, v]) => [k, String(v)])) }));
}

function entry(table: string, step: number, data: FlatRow, time = 1_700_000_000_000): Entry<FlatRow> {
  return { table, level: 20, step, time, data };
}

function end(sink: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    sink.once('error', reject);
    sink.end(() => resolve());
  });
}

/** Logs a run with every kind of value into JSONL and TensorBoard through one logger. */
async function logRun(dir: string): Promise<void> {
  const log = createLogger({ dir, sinks: [jsonlSink({ dir, ext: '.jsonl' }), tensorboardSink({ dir, maxBatchRows: 500 })], exitHooks: false });
  for (let i = 0; i < 2000; i++) {
    log.row('train', { loss: 1 / (i + 1), lr: 0.1, acc: i * 0.37, big: 1e300, tiny: 1e-50, int: i * 1000003, done: i % 2 === 0, name: `r${i}`, none: null }, { step: i * 3, time: 1_700_000_000_000 + i * 17 });
    if (i % 100 === 0) log.row('a/b', { nan: NaN, inf: Infinity, ninf: -Infinity, zero: 0, neg: -2.5 }, { step: -i });
    if (i % 250 === 0) log.row('a/b', { only: 'strings', n: null }, { step: 10_000 + i });
  }
  await log.close();
}

function compareWithJsonl(t: Test, dir: string, file: { events: TfEvent[]; torn: number }): void {
  t.equal(file.torn, 0, 'no torn record');
  const [first, ...rest] = file.events;
  t.match(first, { fileVersion: 'brain.Event:2', step: 0 }, 'the first event is file_version brain.Event:2');
  t.ok(Math.abs((first?.wallTime ?? 0) - Date.now() / 1000) < 600, 'with wall_time now (seconds)');
  for (const table of ['train', 'a/b']) {
    const rows = jsonlRows(path.join(dir, `${table}.jsonl`));
    const mine = rest.filter((e) => Object.keys(e.values ?? {}).every((k) => k.startsWith(`${table}/`)));
    t.same(shown(mine), shown(expectedEvents(table, rows)), `${table}: every step, wall_time and value (float32) of the JSONL, strings and nulls left out`);
  }
  t.equal(rest.length, 2000 + 20, 'one event per row with a number, none for the rows of strings');
}

t.test('read by Python protobuf (TensorBoard schema, crc32c): the same steps and values as the JSONL', async (t) => {
  if (!needs(t, ['protobuf', 'protoc', 'crc32c'])) return;
  const dir = tmpdir(t);
  await logRun(dir);
  const files = eventsFiles(dir);
  t.equal(files.length, 1, 'one events file');
  t.match(path.basename(files[0] ?? ''), new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.${os.hostname().replace(/\./g, '\\.')}$`), 'named events.out.tfevents.<unix secs>.<host>');
  const py = readTfFilePython(peer('protobuf') as string, peer('protoc') as string, files[0] as string);
  compareWithJsonl(t, dir, py);
  t.same(py.events.find((e) => e.values?.['a/b/nan'] !== undefined)?.values, { 'a/b/nan': NaN, 'a/b/inf': Infinity, 'a/b/ninf': -Infinity, 'a/b/zero': 0, 'a/b/neg': -2.5 }, 'NaN and ±Infinity kept');
  t.equal(py.events.find((e) => e.step === 3)?.values?.['train/loss'], Math.fround(0.5), 'values are float32 (simple_value)');
});

t.test('read by the test walker: the same steps and values as the JSONL (no peer needed)', async (t) => {
  const dir = tmpdir(t);
  await logRun(dir);
  const files = eventsFiles(dir);
  t.equal(files.length, 1, 'one events file');
  compareWithJsonl(t, dir, readTfFile(files[0] as string));
});

t.test('steps: negative, past 2^32, fractions truncated, NaN as 0; long tags; wide rows; booleans', async (t) => {
  const dir = tmpdir(t);
  const sink = tensorboardSink({ dir });
  const wide: FlatRow = {};
  for (let k = 0; k < 600; k++) wide[`metric_${k}`] = k / 7;
  const long = 'k'.repeat(300);
  sink.write(entry('t', -1, { x: 1 }));
  sink.write(entry('t', 2 ** 40 + 1, { x: 2 }));
  sink.write(entry('t', 7.9, { x: 3 }));
  sink.write(entry('t', NaN, { x: 4 }));
  sink.write(entry('t', 2 ** 70, { x: 5 }));
  sink.write(entry('t', -(2 ** 70), { x: 6 }));
  sink.write(entry('wide', 1, wide));
  sink.write(entry('t', 8, { [long]: 0.25, yes: true, no: false }));
  await end(sink);
  const { events, torn } = readTfFile(eventsFiles(dir)[0] as string);
  t.equal(torn, 0);
  t.same(
    events.slice(1, 7).map((e) => [e.step, e.values?.['t/x']]),
    [
      [-1, 1],
      [2 ** 40 + 1, 2],
      [7, 3],
      [0, 4],
      [2 ** 63 - 1024, 5],
      [-(2 ** 63), 6],
    ],
    'int64 steps as protobuf writes them; out of range clamped',
  );
  t.equal(Object.keys(events[7]?.values ?? {}).length, 600, 'a row of 600 numbers is one event with 600 values');
  t.equal(events[7]?.values?.['wide/metric_599'], Math.fround(599 / 7));
  t.same(events[8]?.values, { [`t/${long}`]: 0.25, 't/yes': 1, 't/no': 0 }, 'a 302-byte tag; booleans as 1 and 0');
  if (needs(t, ['protobuf', 'protoc', 'crc32c'], 'the Python reader agrees')) {
    const py = readTfFilePython(peer('protobuf') as string, peer('protoc') as string, eventsFiles(dir)[0] as string);
    t.same(shown(py.events), shown(events), 'Python reads the same events');
  }
});

t.test('many tables: each its own tags, in one file', async (t) => {
  const dir = tmpdir(t);
  const sink = tensorboardSink({ dir, maxBatchRows: 64 });
  for (let i = 0; i < 500; i++) sink.write(entry(`g${i % 250}/t${i}`, i, { v: i, w: -i }));
  await end(sink);
  const { events } = readTfFile(eventsFiles(dir)[0] as string);
  t.equal(events.length, 501);
  t.ok(
    events.slice(1).every((e, i) => e.step === i && e.values?.[`g${i % 250}/t${i}/v`] === i && e.values[`g${i % 250}/t${i}/w`] === -i),
    'every row under its own table tags',
  );
});

t.test('no file until a row with a number; a sink that logs none leaves nothing', async (t) => {
  const dir = tmpdir(t);
  const quiet = tensorboardSink({ dir });
  quiet.write(entry('t', 0, { s: 'text' }));
  await end(quiet);
  const idle = tensorboardSink({ dir });
  await end(idle);
  t.same(fs.readdirSync(dir), [], 'no events file, no temp file');
});

t.test('flushSync writes every row now; durability flush', async (t) => {
  const dir = tmpdir(t);
  const sink = tensorboardSink({ dir, durability: 'flush', flushIntervalMs: 60_000 });
  for (let i = 0; i < 10; i++) sink.write(entry('t', i, { x: i }));
  t.equal(sink.queuedRows, 10, 'held by the sink');
  sink.flushSync();
  t.equal(sink.queuedRows, 0);
  const { events } = readTfFile(eventsFiles(dir)[0] as string);
  t.same(events.slice(1).map((e) => e.step), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'on disk before flushSync returns');
  sink.destroy();
});

t.test('two sinks in one second, or a reopened run: a new file each, the old one untouched', async (t) => {
  const dir = tmpdir(t);
  const a = tensorboardSink({ dir });
  a.write(entry('t', 0, { x: 1 }));
  await end(a);
  const [first] = eventsFiles(dir);
  const before = fs.readFileSync(first as string);
  const b = tensorboardSink({ dir });
  const c = tensorboardSink({ dir });
  b.write(entry('t', 1, { x: 2 }));
  c.write(entry('t', 2, { x: 3 }));
  await Promise.all([end(b), end(c)]);
  const files = eventsFiles(dir);
  t.equal(files.length, 3, 'three files');
  t.same(fs.readFileSync(first as string), before, 'the first file is untouched');
  t.same(files.map((f) => readTfFile(f).events.length), [2, 2, 2], 'each: file_version and its one row');

  // The name rule itself, at a fixed second: taken names (a file, a temp file) get .<pid>.<n>.
  t.equal(eventsFilePath(path.join(dir, 'none'), 1_000_000_000, 'h'), path.join(dir, 'none', 'events.out.tfevents.1000000000.h'), 'a folder not made yet');
  const base = path.join(dir, 'events.out.tfevents.1000000000.h');
  t.equal(eventsFilePath(dir, 1_000_000_000, 'h'), base);
  fs.writeFileSync(base, '');
  fs.writeFileSync(`${base}.${process.pid}.2.99999.new.tmp`, ''); // another process's first chunk, not renamed yet
  t.equal(eventsFilePath(dir, 1_000_000_000, 'h'), `${base}.${process.pid}.1`, 'an existing name: .<pid>.1');
  t.equal(eventsFilePath(dir, 1_000_000_000, 'h'), `${base}.${process.pid}.3`, 'one named already, one a temp file is on its way to: .<pid>.3');
});

t.test('options: ERR_INVALID_OPTION naming the option', async (t) => {
  const bad: Array<[unknown, RegExp, string]> = [
    [undefined, /^options: must be an object/, 'TypeError'],
    [{}, /^dir: must be a non-empty string/, 'TypeError'],
    [{ dir: '' }, /^dir: /, 'TypeError'],
    [{ dir: 3 }, /^dir: /, 'TypeError'],
    [{ dir: 'x', durability: 'always' }, /^durability: must be 'none' or 'flush'/, 'RangeError'],
    [{ dir: 'x', flushIntervalMs: -1 }, /^flushIntervalMs: /, 'RangeError'],
    [{ dir: 'x', maxBatchRows: 0 }, /^maxBatchRows: /, 'RangeError'],
    [{ dir: 'x', maxQueuedRows: 'many' }, /^maxQueuedRows: /, 'TypeError'],
  ];
  for (const [opts, message, name] of bad) {
    t.throws(() => tensorboardSink(opts as never), { code: 'ERR_INVALID_OPTION', name, message }, JSON.stringify(opts) ?? 'undefined');
  }
});

/** A `dir` that cannot be made: a file stands where its parent folder should be (ENOTDIR; root ignores modes). */
function blockedDir(t: Test): { dir: string; unblock: () => void } {
  const root = tmpdir(t);
  const parent = path.join(root, 'runs');
  fs.writeFileSync(parent, 'not a folder');
  return {
    dir: path.join(parent, 'tb'),
    unblock: () => {
      fs.rmSync(parent);
      fs.mkdirSync(parent);
    },
  };
}

t.test('a folder that cannot be written: W_FILE_ERROR once, rows kept and written when it can be', async (t) => {
  const { dir, unblock } = blockedDir(t);
  const sink = tensorboardSink({ dir, flushIntervalMs: 5 });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 100; i++) sink.write(entry('t', i, { x: i }));
  await until(() => warnings.length > 0, 'W_FILE_ERROR');
  await t.rejects(sink.flush(), { code: 'ENOTDIR' }, 'flush() rejects while the file fails');
  sink.flushSync(); // the exit path: never throws, the rows stay
  for (let i = 100; i < 200; i++) sink.write(entry('t', i, { x: i }));
  await until(() => sink.queuedRows === 200, 'the second batch handed');
  t.match(warnings, [{ code: 'W_FILE_ERROR', message: /tb\/events\.out\.tfevents\.\d+\.[^ ]+ cannot be written \(ENOTDIR\).*rows are kept and retried/ }], 'one warning, naming the file and the errno');
  t.equal(sink.queuedRows, 200, 'no row dropped');
  unblock();
  await until(() => sink.queuedRows === 0, 'the retry (0.5 s backoff)');
  await end(sink);
  const { events } = readTfFile(eventsFiles(dir)[0] as string);
  t.same(events.slice(1).map((e) => e.step), Array.from({ length: 200 }, (_, i) => i), 'every row, in order, once');
  t.equal(warnings.length, 1, 'no other warning');
});

t.test('past maxQueuedRows while the file fails: rows dropped and counted (W_ROWS_DROPPED); the file still starts with file_version', async (t) => {
  const { dir, unblock } = blockedDir(t);
  const sink = tensorboardSink({ dir, maxBatchRows: 10, maxQueuedRows: 30 });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 100; i++) sink.write(entry('t', i, { x: i }));
  t.ok(sink.queuedRows <= 40, `memory bounded: ${sink.queuedRows} rows held`);
  t.match(warnings, [{ code: 'W_FILE_ERROR' }, { code: 'W_ROWS_DROPPED', message: /40 rows dropped, oldest first.*ENOTDIR.*maxQueuedRows \(30\)/ }], 'the file error, then the first drop at once');
  unblock();
  await until(() => sink.queuedRows === 0, 'the retry (0.5 s backoff)');
  await end(sink);
  const { events } = readTfFile(eventsFiles(dir)[0] as string);
  t.match(events[0], { fileVersion: 'brain.Event:2' }, 'the file starts with file_version (nothing had landed: the batches before it went too)');
  const steps = events.slice(1).map((e) => e.step);
  t.same(steps, Array.from({ length: steps.length }, (_, i) => 100 - steps.length + i), `the last ${steps.length} rows, in order`);
  t.match(warnings.at(-1), { code: 'W_ROWS_DROPPED', message: new RegExp(`: ${100 - steps.length} rows in all could not be written \\(ENOTDIR\\)`) }, 'the total counted at close (the drops after the first)');
});

t.test('closed while the file fails: close() fails with its error, every row counted', async (t) => {
  const { dir } = blockedDir(t);
  const sink = tensorboardSink({ dir, maxBatchRows: 10, maxQueuedRows: 30 });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 100; i++) sink.write(entry('t', i, { x: i }));
  const errors: Error[] = [];
  sink.on('error', (e) => errors.push(e));
  sink.end();
  await until(() => sink.destroyed, 'the sink ends');
  t.match(errors, [{ code: 'ENOTDIR' }], 'close() fails with the file error');
  t.match(warnings.at(-1), { code: 'W_ROWS_DROPPED', message: /: 100 rows in all could not be written \(ENOTDIR\)/ }, 'every row counted at close: dropped ones and those still held');
  t.same(fs.existsSync(dir), false, 'nothing written');
});

t.test('destroy: writes what it can, counts what it cannot', async (t) => {
  const ok = tmpdir(t);
  const a = tensorboardSink({ dir: ok, flushIntervalMs: 60_000 });
  for (let i = 0; i < 5; i++) a.write(entry('t', i, { x: i }));
  a.destroy();
  t.equal(readTfFile(eventsFiles(ok)[0] as string).events.length, 6, 'destroy wrote the held rows');

  const { dir } = blockedDir(t);
  const b = tensorboardSink({ dir, flushIntervalMs: 60_000 });
  const warnings: RowlogWarning[] = [];
  b.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 5; i++) b.write(entry('t', i, { x: i }));
  b.destroy();
  t.match(warnings, [{ code: 'W_FILE_ERROR' }, { code: 'W_ROWS_DROPPED', message: /5 rows in all could not be written \(ENOTDIR\)/ }]);
});

t.test('a disk that fills up after the first batch (ENOSPC): the oldest batches dropped past the bound, the rest written when space returns', async (t) => {
  const fsx = tmpfs(t, '1m');
  if (fsx === undefined) return;
  const dir = path.join(fsx.mnt, 'tb');
  const sink = tensorboardSink({ dir, maxBatchRows: 10, maxQueuedRows: 30 });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  sink.write(entry('t', 0, { x: 0 }));
  await sink.flush();
  const filler = path.join(fsx.mnt, 'filler');
  const fd = fs.openSync(filler, 'w');
  try {
    for (const block = Buffer.alloc(4096, 1); ; ) fs.writeSync(fd, block);
  } catch (err) {
    t.equal((err as NodeJS.ErrnoException).code, 'ENOSPC', 'the disk is full');
  } finally {
    fs.closeSync(fd);
  }
  const wide: FlatRow = {};
  for (let k = 0; k < 200; k++) wide[`m${k}`] = k; // a batch of 10 rows is ~30 KB: more than a page left free
  for (let i = 1; i <= 100; i++) sink.write(entry('t', i, { x: i, ...wide }));
  t.ok(sink.queuedRows <= 40, `memory bounded: ${sink.queuedRows} rows held`);
  t.match(warnings, [{ code: 'W_FILE_ERROR', message: /ENOSPC/ }, { code: 'W_ROWS_DROPPED', message: /rows dropped, oldest first.*ENOSPC/ }]);
  fs.rmSync(filler);
  await until(() => sink.queuedRows === 0, 'the retry after space returns');
  await end(sink);
  const { events, torn } = readTfFile(eventsFiles(dir)[0] as string);
  t.equal(torn, 0);
  t.match(events[0], { fileVersion: 'brain.Event:2' }, 'one file_version, first');
  const steps = events.slice(1).map((e) => e.step);
  t.ok(steps.every((s, i) => i === 0 || s > (steps[i - 1] as number)), 'rows in order, none twice');
  t.same([steps[0], steps.at(-1)], [0, 100], 'the first row (landed before the disk filled) and the newest');
  const counted = Math.max(...warnings.map((w) => Number(/(\d+) rows (dropped|in all)/.exec(w.message)?.[1] ?? 0)));
  t.equal(101 - steps.length, counted, `the ${counted} rows missing are the ones W_ROWS_DROPPED counted (the oldest, but a batch the disk had taken part of)`);
});
