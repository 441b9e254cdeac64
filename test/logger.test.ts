/** The Logger: row(), steps, routing per sink, transforms, warnings, failures, run folder. */
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { createLogger, isRowlogError, jsonlSink, Level } from '../lib/index.js';
import type { Logger, RowlogWarning } from '../lib/index.js';
import { collector, readJsonl, tmpdir } from './helpers.js';
import { eventsFiles, readTfFile } from './tfevents.js';

function warnings(log: Logger): RowlogWarning[] {
  const seen: RowlogWarning[] = [];
  log.on('warning', (w: RowlogWarning) => seen.push(w));
  return seen;
}

t.test('row() writes summarized rows with per-table steps into <dir>/<table>.jsonl.gz and .csv', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.row('train', { loss: 0.5, w: new Float64Array([1, 2, 3]) }, { time: 1000 });
  log.row('train', { loss: 0.25, w: new Float64Array([1, 2, 3]) }, { time: 1001, level: 'DEBUG' });
  log.row('eval', { acc: 0.9 }, { step: 10, time: 1002, level: Level.RESULTS });
  log.row('eval', { acc: 0.95 }, { time: 1003 });
  log.row('train', { loss: 0.125 }, { step: 100, time: 1004 });
  log.row('train', { loss: 0.1 }, { time: 1005 });
  await log.close();
  t.same(readJsonl(path.join(dir, 'train.jsonl.gz')), [
    { $step: 0, $time: 1000, $level: 20, loss: 0.5, 'w.max': 3, 'w.mean': 2, 'w.min': 1, 'w.std': 0.816496580927726 },
    { $step: 1, $time: 1001, $level: 10, loss: 0.25, 'w.max': 3, 'w.mean': 2, 'w.min': 1, 'w.std': 0.816496580927726 },
    { $step: 100, $time: 1004, $level: 20, loss: 0.125 },
    { $step: 101, $time: 1005, $level: 20, loss: 0.1 },
  ]);
  t.same(readJsonl(path.join(dir, 'eval.jsonl.gz')), [
    { $step: 10, $time: 1002, $level: 35, acc: 0.9 },
    { $step: 11, $time: 1003, $level: 20, acc: 0.95 },
  ]);
});

t.test('the default sinks include a TensorBoard events file of the rows at INFO and above; tensorboard: false leaves it out', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.row('train', { loss: 0.5 }, { time: 1000 });
  log.row('train', { loss: 0.25 }, { time: 2000, level: 'DEBUG' });
  log.row('eval', { acc: 0.9 }, { time: 3000, level: Level.RESULTS });
  await log.close();
  const files = eventsFiles(dir);
  t.equal(files.length, 1);
  t.same(
    readTfFile(files[0] as string).events.slice(1),
    [
      { wallTime: 1, step: 0, values: { 'train/loss': 0.5 } },
      { wallTime: 3, step: 0, values: { 'eval/acc': Math.fround(0.9) } },
    ],
    'the DEBUG row is in the JSONL only',
  );
  const off = tmpdir(t);
  const log2 = createLogger({ dir: off, console: false, exitHooks: false, tensorboard: false });
  log2.row('train', { loss: 0.5 });
  await log2.close();
  t.same(eventsFiles(off), []);
  t.ok(fs.existsSync(path.join(off, 'train.jsonl.gz')));
});

t.test('parquet: true adds a Parquet dataset per table to the default sinks, at TRACE', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false, parquet: true });
  log.row('train', { loss: 0.5 });
  log.row('train', { loss: 0.25 }, { level: 'TRACE' });
  await log.close();
  t.same(fs.readdirSync(path.join(dir, 'train.parquet')), ['part-00000.parquet']);
  const opts = tmpdir(t);
  const log2 = createLogger({ dir: opts, console: false, exitHooks: false, parquet: { partRows: 1 } });
  log2.row('train', { loss: 0.5 });
  log2.row('train', { loss: 0.25 });
  await log2.close();
  t.same(fs.readdirSync(path.join(opts, 'train.parquet')), ['part-00000.parquet', 'part-00001.parquet'], 'its options are parquetSink\'s');
  t.throws(() => createLogger({ dir: tmpdir(t), exitHooks: false, parquet: { partRows: 0 } }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => createLogger({ dir: tmpdir(t), exitHooks: false, parquet: 'yes' as never }), { code: 'ERR_INVALID_OPTION', message: /^parquet: must be true, false or the sink's options/ });
  t.throws(() => createLogger({ dir: tmpdir(t), exitHooks: false, sqlite: null as never }), { code: 'ERR_INVALID_OPTION', message: /^sqlite/ });
  t.throws(() => createLogger({ dir: tmpdir(t), exitHooks: false, tensorboard: 0 as never }), { code: 'ERR_INVALID_OPTION', message: /^tensorboard/ });
});

t.test('row() summarizes at call time: mutating a tensor afterwards changes nothing', async (t) => {
  const sink = collector();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  const w = new Float32Array([1, 1, 1, 1]);
  log.row('t', { w });
  w.fill(100);
  log.row('t', { w });
  await log.close();
  t.same(sink.entries.map((e) => e.data['w.mean']), [1, 100]);
  t.equal(typeof sink.entries[0]?.time, 'number');
  t.ok(Math.abs((sink.entries[0]?.time ?? 0) - Date.now()) < 60_000, 'time defaults to Date.now()');
});

t.test('each sink has its own level and subsample, counted per table', async (t) => {
  const everything = collector();
  const summary = collector();
  const results = collector();
  const log = createLogger({
    sinks: [everything, { sink: summary, level: 'INFO', subsample: { every: 10 } }, { sink: results, level: 'RESULTS' }],
    exitHooks: false,
  });
  for (let i = 0; i < 100; i++) {
    log.row('a', { i }, { level: 'TRACE' });
    log.row('a', { i }, { level: 'INFO' });
    log.row('b', { i }, { level: 'INFO' });
  }
  log.row('a', { final: 1 }, { level: 'RESULTS' });
  await log.close();
  t.equal(everything.entries.length, 301);
  const kept = summary.entries.map((e) => `${e.table}:${e.data.i ?? 'final'}`);
  const tens = Array.from({ length: 10 }, (_, k) => 10 * k);
  t.same(kept, [...tens.flatMap((i) => [`a:${i}`, `b:${i}`]), 'a:final']);
  t.same(
    results.entries.map((e) => e.data),
    [{ final: 1 }],
  );
});

t.test("a sink's filter leaves rows out of that sink only, before its subsample", async (t) => {
  const all = collector();
  const odd = collector();
  const oddTenth = collector();
  const isOdd = (e: { step: number }) => e.step % 2 === 1;
  const log = createLogger({
    sinks: [all, { sink: odd, filter: isOdd }, { sink: oddTenth, filter: isOdd, subsample: { every: 10 } }],
    exitHooks: false,
  });
  for (let i = 0; i < 100; i++) log.row('a', { i }, { step: i });
  await log.close();
  t.equal(all.entries.length, 100);
  t.same(odd.entries.map((e) => e.step), Array.from({ length: 50 }, (_, k) => 2 * k + 1));
  t.same(oddTenth.entries.map((e) => e.step), [1, 21, 41, 61, 81], 'the sampler counts only the rows the filter kept');
  t.throws(() => createLogger({ sinks: [{ sink: collector(), filter: 1 as never }] }), { code: 'ERR_INVALID_OPTION', message: /^sinks\[0\]\.filter: / });
});

t.test('a row below every sink level warns once per table and is not written', async (t) => {
  const sink = collector();
  const log = createLogger({ sinks: [{ sink, level: 'INFO' }], exitHooks: false });
  const seen = warnings(log);
  for (let i = 0; i < 5; i++) log.row('debug_only', { i }, { level: 'DEBUG' });
  log.row('other', { i: 0 }, { level: 'TRACE' });
  log.row('kept', { i: 0 });
  await log.close();
  t.same(seen, [
    { code: 'W_LOW_LEVEL', message: "Log to table 'debug_only' was too low level for any sink", table: 'debug_only' },
    { code: 'W_LOW_LEVEL', message: "Log to table 'other' was too low level for any sink", table: 'other' },
  ]);
  t.same(sink.entries.map((e) => e.table), ['kept']);
});

t.test('summarize problems warn once per table through the logger', async (t) => {
  const sink = collector();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  const seen = warnings(log);
  const cyclic: Record<string, unknown> = { x: 1 };
  cyclic.self = cyclic;
  for (let i = 0; i < 20; i++) log.row('t', { cyclic, i });
  log.row('u', { cyclic });
  await log.close();
  t.same(
    seen.map((w) => [w.code, w.table]),
    [
      ['W_CYCLE', 't'],
      ['W_CYCLE', 'u'],
    ],
  );
  t.match(seen[0]?.message, /'cyclic\/self'.*cycle.*in table 't'/);
  t.equal(sink.entries.length, 21);
  t.same(sink.entries[0]?.data, { 'cyclic/x': 1, i: 0 });
});

t.test('invalid table and artifact names are rejected with ERR_INVALID_TABLE', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  for (const bad of ['', '/abs', '../up', 'a/../b', 'a//b', 'a/', '.', 'sp ace', 'nul\0', 'ünï', 'back\\slash']) {
    t.throws(() => log.row(bad, { x: 1 }), { code: 'ERR_INVALID_TABLE' }, `table ${JSON.stringify(bad)}`);
    t.throws(() => log.artifact(bad, 'x'), { code: 'ERR_INVALID_TABLE' }, `artifact ${JSON.stringify(bad)}`);
  }
  t.throws(() => log.row(42 as unknown as string, {}), { code: 'ERR_INVALID_TABLE' });
  try {
    log.row('../escape', {});
  } catch (err) {
    t.ok(isRowlogError(err));
  }
  log.row('nested/deeper/table-1.v2', { x: 1 });
  await log.close();
  t.same(readJsonl(path.join(dir, 'nested', 'deeper', 'table-1.v2.jsonl.gz')).map((r) => r.x), [1]);
  t.same(fs.readdirSync(path.dirname(dir)).filter((f) => f === 'up' || f === 'escape'), []);
});

t.test('params(), artifact() and status persist in the run folder', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.params({ lr: 0.1, model: { hidden: [16, 16] }, seed: 7n });
  log.params({ lr: 0.05 });
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'params.json'), 'utf8')), { lr: 0.05, model: { hidden: [16, 16] }, seed: '7' });
  const weights = log.artifact('model/weights.bin', new Float32Array([1, 2]));
  t.equal(weights, path.join(fs.realpathSync(dir), 'artifacts', 'model', 'weights.bin'));
  t.same([...new Float32Array(Uint8Array.from(fs.readFileSync(weights)).buffer)], [1, 2]);
  t.equal(fs.readFileSync(log.artifact('notes.txt', 'hello\n'), 'utf8'), 'hello\n');
  t.same(JSON.parse(fs.readFileSync(log.artifact('cfg.json', { a: [1, 2] }), 'utf8')), { a: [1, 2] });
  log.status.epochs_done = 2;
  log.row('train', { loss: 1 });
  await log.flush();
  const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as Record<string, unknown>;
  t.equal(status.epochs_done, 2);
  t.equal(status.$state, 'running');
  t.same(status.$steps, { train: 0 });
  await log.close();
  t.equal((JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as Record<string, unknown>).$state, 'closed');
  t.throws(() => log.params(null as unknown as Record<string, unknown>), { code: 'ERR_INVALID_OPTION' });
});

t.test('run.json describes the run; reopening the folder resumes it', async (t) => {
  const dir = tmpdir(t);
  const first = createLogger({ dir, name: 'baseline', console: false, exitHooks: false });
  first.row('train', { loss: 1 });
  first.row('train', { loss: 0.5 });
  first.status.epochs_done = 1;
  await first.close();
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
  t.match(info, {
    id: /^[0-9a-f-]{36}$/,
    name: 'baseline',
    startTime: /^\d{4}-\d\d-\d\dT/,
    argv: Array,
    cwd: process.cwd(),
    host: String,
    pid: process.pid,
    node: process.version,
    rowlog: /^\d+\.\d+\.\d+/,
  });
  t.notOk('resumedFrom' in info);
  t.notOk('appendedTo' in info);

  const second = createLogger({ dir, console: false, exitHooks: false });
  t.equal(second.run?.appendedTo, info.id, 'a reopened folder names the earlier opening in appendedTo');
  t.notOk('resumedFrom' in (second.run ?? {}), 'an append is no ancestry link');
  t.not(second.run?.id, info.id);
  t.equal(second.status.epochs_done, 1, 'status restored');
  second.row('train', { loss: 0.25 });
  await second.close();
  t.same(
    readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => [r.$step, r.loss]),
    [
      [0, 1],
      [1, 0.5],
      [2, 0.25],
    ],
  );
});

t.test('user transforms run before the fan-out; a failing one warns and rows still arrive', async (t) => {
  const sink = collector();
  const addLr = new Transform({
    objectMode: true,
    transform(entry: { data: Record<string, unknown> }, _e, cb) {
      cb(null, { ...entry, data: { ...entry.data, lr: 0.1 } });
    },
  });
  const dropOdd = new Transform({
    objectMode: true,
    transform(entry: { step: number }, _e, cb) {
      setImmediate(() => cb(null, entry.step % 2 === 0 ? entry : undefined)); // async on purpose
    },
  });
  const log = createLogger({ sinks: [sink], transforms: [addLr, dropOdd], exitHooks: false });
  for (let i = 0; i < 6; i++) log.row('t', { i });
  await log.flush();
  t.same(
    sink.entries.map((e) => e.data),
    [0, 2, 4].map((i) => ({ i, lr: 0.1 })),
    'flush() waited for the async transform',
  );
  await log.close();

  const sink2 = collector();
  const broken = new Transform({
    objectMode: true,
    transform(entry: { step: number }, _e, cb) {
      cb(entry.step === 1 ? new Error('bad transform') : null, entry);
    },
  });
  const log2 = createLogger({ sinks: [sink2], transforms: [broken], exitHooks: false });
  const seen = warnings(log2);
  log2.row('t', { i: 0 });
  log2.row('t', { i: 1 });
  await new Promise((r) => setImmediate(r));
  log2.row('t', { i: 2 });
  await log2.close();
  t.match(seen, [{ code: 'W_TRANSFORM_ERROR', message: /bad transform/ }]);
  t.same(
    sink2.entries.map((e) => e.data.i),
    [0, 2],
    'rows after the failure bypass the broken chain',
  );
});

t.test('a failing sink (ENOSPC on /dev/full) warns once; the other sinks keep every row', async (t) => {
  const good = collector();
  const full = jsonlSink({ path: '/dev/full', flushBytes: 1024 });
  const log = createLogger({ sinks: [full, good], exitHooks: false });
  const seen = warnings(log);
  const errors: NodeJS.ErrnoException[] = [];
  full.on('error', (err) => errors.push(err));
  for (let i = 0; i < 2000; i++) {
    log.row('t', { i, text: 'x'.repeat(20) });
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
  }
  await log.close();
  t.equal(good.entries.length, 2000);
  t.same(good.entries.map((e) => e.data.i), Array.from({ length: 2000 }, (_, i) => i));
  t.equal(errors.length, 1);
  t.equal(errors[0]?.code, 'ENOSPC');
  // The file fails (kept and retried), close() counts the rows it could not write, then the sink fails.
  t.same(seen.map((w) => w.code), ['W_FILE_ERROR', 'W_ROWS_DROPPED', 'W_SINK_ERROR']);
  t.match(seen[0], { message: /\/dev\/full cannot be written \(ENOSPC\).*the other files keep writing/ });
  t.match(seen[1], { message: /\/dev\/full: 2000 rows in all could not be written \(ENOSPC\)/ });
  t.match(seen[2], { message: /\/dev\/full failed \(ENOSPC\).*other sinks keep writing/ });
});

t.test('the Logger is a Writable: plain rows and Entries can be piped into it', async (t) => {
  const sink = collector();
  const log = createLogger({ sinks: [sink], table: 'piped', exitHooks: false });
  const input = [
    { loss: 1, w: [1, 3] },
    { $table: 'other', $step: 7, $level: 'RESULTS', acc: 1 },
    { table: 'entry', level: 5, step: 3, time: 9, data: { nested: { v: 1 } } },
    { loss: 0.5 },
  ];
  await pipeline(Readable.from(input), log);
  t.same(
    sink.entries.map(({ table, level, step, data }) => ({ table, level, step, data })),
    [
      { table: 'piped', level: 20, step: 0, data: { loss: 1, 'w.mean': 2, 'w.min': 1, 'w.max': 3, 'w.std': 1 } },
      { table: 'other', level: 35, step: 7, data: { acc: 1 } },
      { table: 'entry', level: 5, step: 3, data: { 'nested/v': 1 } },
      { table: 'piped', level: 20, step: 1, data: { loss: 0.5 } },
    ],
  );
  t.equal(sink.entries[2]?.time, 9);
  t.ok(sink.writableFinished, 'ending the logger ends its sinks');
});

t.test('a closed logger refuses rows with ERR_SINK_CLOSED; close() twice is fine', async (t) => {
  const log = createLogger({ sinks: [collector()], exitHooks: false });
  await log.close();
  await log.close();
  t.throws(() => log.row('t', {}), { code: 'ERR_SINK_CLOSED' });
});

t.test('logging without a run folder: params/artifact say so; options are validated', async (t) => {
  const log = createLogger({ sinks: [collector()], exitHooks: false });
  t.equal(log.dir, undefined);
  t.throws(() => log.params({ a: 1 }), { code: 'ERR_NO_RUN_DIR' });
  t.throws(() => log.artifact('a', 'x'), { code: 'ERR_NO_RUN_DIR' });
  await log.close();
  const bad: Array<[unknown, RegExp]> = [
    [{ sinks: 'x' }, /^sinks: /],
    [{ sinks: [42] }, /^sinks\[0\]: /],
    [{ sinks: [{ sink: collector(), level: 'LOUD' }] }, /^sinks\[0\]\.level: /],
    [{ sinks: [{ sink: collector(), subsample: { every: 0 } }] }, /^every: /],
    [{ sinks: [], level: 'nope' }, /^level: /],
    [{ sinks: [], transforms: {} }, /^transforms: /],
    [{ sinks: [], summarize: { maxDepth: 0 } }, /^maxDepth: /],
    [{ dir: '' }, /^dir: /],
    [{ dir: tmpdir(t), maxQueuedBytes: -1 }, /^maxQueuedBytes: /],
  ];
  for (const [opts, message] of bad) {
    t.throws(() => createLogger(opts as never), { code: 'ERR_INVALID_OPTION', message }, JSON.stringify(opts));
  }
});

t.test('the default sinks: .jsonl.gz and .csv per table, log.table() over the memory ring', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, memory: 3, exitHooks: false });
  const seen = warnings(log);
  for (let i = 0; i < 5; i++) log.row('train', { loss: 1 / (i + 1) }, { time: i });
  log.row('train', { loss: 0.1, acc: 0.5 }, { time: 5 }); // a new key: the CSV header grows
  t.same(
    log.table('train').last(2).map((e) => e.step),
    [4, 5],
  );
  t.same(log.table('train').rows()[0], { $step: 3, $time: 3, $level: 20, loss: 0.25 });
  t.equal([...log.table('train')].length, 3, 'memory: 3 keeps the last three rows');
  await log.close();
  t.same(
    readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => r.$step),
    [0, 1, 2, 3, 4, 5],
  );
  t.equal(
    fs.readFileSync(path.join(dir, 'train.csv'), 'utf8'),
    '$step,$time,$level,acc,loss\n0,0,20,,1\n1,1,20,,0.5\n2,2,20,,0.3333333333333333\n3,3,20,,0.25\n4,4,20,,0.2\n5,5,20,0.5,0.1\n',
  );
  t.match(seen, [{ code: 'W_NEW_KEYS', message: "Adding new key 'acc' to table 'train'" }], "the CSV sink's warning reaches the logger");
});

t.test('log.table() without a memory sink says so', async (t) => {
  const log = createLogger({ sinks: [collector()], exitHooks: false });
  t.throws(() => log.table('train'), { code: 'ERR_NO_MEMORY_SINK' });
  await log.close();
});
