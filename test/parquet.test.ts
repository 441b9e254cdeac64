/**
 * parquetSink (docs/DESIGN.md §4): a run logged to JSONL and Parquet side by side, then the
 * Parquet datasets read by readers rowlog did not write — DuckDB (`read_parquet(…,
 * union_by_name = true)`) and hyparquet on every part — and compared
 * with what the JSONL holds, value by value: a late new key, NaN and ±Infinity, strings,
 * booleans, nulls, a nested table. Then what needs no peer: type changes, the timer and the row
 * limit that close parts, the memory bound, reopening, option errors, a folder that cannot be
 * written, an empty flush and closing twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import t from 'tap';
import type { Test } from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { createLogger } from '../lib/log/logger.js';
import { readLog } from '../lib/read/read-log.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { parquetSink } from '../sinks/parquet.js';
import { fullTmpfs, tmpdir } from './helpers.js';
import { until } from './wait.js';

type Row = Record<string, unknown>;

/** The rows DuckDB returns for `sql`. */
async function duck(sql: string): Promise<Row[]> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjects() as Row[];
  } finally {
    c.closeSync();
  }
}

/** A dataset as DuckDB reads it (every part, union of the columns), in step order. */
const dataset = (dir: string, table: string): string => `read_parquet('${path.join(dir, `${table}.parquet`)}/*.parquet', union_by_name = true)`;

/** The part files of a dataset, in order. */
function parts(dir: string, table: string): string[] {
  const folder = path.join(dir, `${table}.parquet`);
  return fs.existsSync(folder) ? fs.readdirSync(folder).sort().map((f) => path.join(folder, f)) : [];
}

/** Every row of every part, in order, with hyparquet. */
async function hyparquetRows(files: string[]): Promise<Row[]> {
  const out: Row[] = [];
  for (const f of files) out.push(...((await parquetReadObjects({ file: await asyncBufferFromFile(f) })) as Row[]));
  return out;
}

async function jsonlRows(file: string): Promise<Row[]> {
  const out: Row[] = [];
  for await (const r of readLog(file)) out.push(r);
  return out;
}

/** A value as the JSONL holds it: INT64 (bigint) as a number, a missing key as null. */
const plain = (v: unknown): unknown => (typeof v === 'bigint' ? Number(v) : (v ?? null));

/** `got` holds `want`'s rows: every column of `columns`, value by value (NaN is NaN). */
function sameRows(t: Test, got: Row[], want: Row[], columns: string[], what: string): void {
  t.equal(got.length, want.length, `${what}: ${want.length} rows`);
  const bad: string[] = [];
  want.forEach((w, i) => {
    for (const k of columns) {
      const g = plain(got[i]?.[k]);
      const e = plain(w[k]);
      if (!Object.is(g, e)) bad.push(`row ${i} ${k}: ${String(g)} ≠ ${String(e)}`);
    }
  });
  t.same(bad.slice(0, 10), [], `${what}: every value of ${columns.join(', ')}`);
}

/** The rows of the main test: every kind of value, a key that comes late and one that comes and goes. */
function trainRow(i: number): Row {
  return {
    loss: i === 3 ? NaN : i === 5 ? Infinity : i === 6 ? -Infinity : 1 / (i + 1),
    lr: i % 4 === 0 ? null : 0.001 * i,
    phase: i < 10 ? 'warm-up' : `main ✓ ${i}`,
    ok: i % 3 === 0,
    ...(i % 5 === 2 ? { sometimes: i } : {}),
    ...(i >= 17 ? { grad: i * 1.5 } : {}),
  };
}

const N = 23;

t.test('a run in JSONL and Parquet: DuckDB, hyparquet (and pandas) read what the JSONL holds', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, sinks: [jsonlSink({ dir, ext: '.jsonl' }), parquetSink({ dir, partRows: 5, rowGroupRows: 2 })] });
  for (let i = 0; i < N; i++) {
    log.row('train', trainRow(i));
    if (i % 2 === 0) log.row('eval/acc', { acc: i / 10, split: i % 4 === 0 ? 'val' : 'test' });
  }
  await log.close();
  const want = await jsonlRows(path.join(dir, 'train.jsonl'));
  t.equal(want.length, N, 'the JSONL holds every row');

  const files = parts(dir, 'train');
  t.ok(files.length >= 5, `several parts (${files.length})`);
  t.same(files.map((f) => path.basename(f)), files.map((_, i) => `part-${String(i).padStart(5, '0')}.parquet`), 'numbered from 0, no gap, nothing else in the folder');

  const [agg] = await duck(`SELECT count(*) AS n, max("$step") AS last, avg(loss) AS avg, avg(loss) FILTER (WHERE isfinite(loss)) AS finite FROM ${dataset(dir, 'train')}`);
  const losses = want.map((r) => r.loss as number);
  const finite = losses.filter((v) => Number.isFinite(v));
  t.equal(Number(agg?.n), want.length, 'count(*) = the JSONL rows');
  t.equal(Number(agg?.last), Math.max(...want.map((r) => r.$step as number)), 'max("$step") = the JSONL last step');
  t.ok(Number.isNaN(agg?.avg), 'avg(loss) is NaN, as the JSONL (a NaN loss)');
  t.ok(Math.abs((agg?.finite as number) - finite.reduce((a, b) => a + b, 0) / finite.length) < 1e-12, 'avg of the finite losses = the JSONL');

  // DuckDB orders NaN above every number; a row group pruned by min/max statistics that leave NaN out would lose it.
  const [above] = await duck(`SELECT count(*) AS n FROM ${dataset(dir, 'train')} WHERE loss > 0.4`);
  t.equal(Number(above?.n), losses.filter((v) => v > 0.4 || Number.isNaN(v)).length, 'WHERE loss > 0.4 finds the NaN row too (no statistics to prune it by)');
  const [late] = await duck(`SELECT count(*) AS n FROM ${dataset(dir, 'train')} WHERE "$step" >= 20`);
  t.equal(Number(late?.n), N - 20, 'WHERE "$step" >= 20');
  const columns = ['$step', '$time', '$level', 'loss', 'lr', 'phase', 'ok', 'sometimes', 'grad'];
  const types = Object.fromEntries((await duck(`DESCRIBE SELECT * FROM ${dataset(dir, 'train')}`)).map((r) => [r.column_name, r.column_type]));
  t.same(types, { $step: 'BIGINT', $time: 'BIGINT', $level: 'INTEGER', grad: 'DOUBLE', loss: 'DOUBLE', lr: 'DOUBLE', ok: 'BOOLEAN', phase: 'VARCHAR', sometimes: 'DOUBLE' }, 'INT64 steps and times, INT32 levels, DOUBLE, UTF8, BOOLEAN');
  const rows = await duck(`SELECT * FROM ${dataset(dir, 'train')} ORDER BY "$step"`);
  sameRows(t, rows, want, columns, 'DuckDB');
  t.same(
    rows.filter((r) => r.grad !== null).map((r) => Number(r.$step)),
    want.filter((r) => r.grad !== undefined).map((r) => r.$step),
    'the late key: null before it came, in the union schema',
  );

  sameRows(t, await hyparquetRows(files), want, columns, 'hyparquet, part by part');

  const meta = await duck(`SELECT DISTINCT compression FROM parquet_metadata('${path.join(dir, 'train.parquet')}/*.parquet')`);
  t.same(meta.map((r) => r.compression), ['SNAPPY'], 'SNAPPY by default');
  const groups = await duck(`SELECT max(row_group_num_rows) AS n FROM parquet_metadata('${files[0]}')`);
  t.equal(Number(groups[0]?.n), 2, 'row groups of up to rowGroupRows');

  const evalWant = await jsonlRows(path.join(dir, 'eval', 'acc.jsonl'));
  t.ok(fs.existsSync(path.join(dir, 'eval', 'acc.parquet', 'part-00000.parquet')), 'a nested table: eval/acc.parquet in folder eval/');
  sameRows(t, await duck(`SELECT * FROM ${dataset(dir, 'eval/acc')} ORDER BY "$step"`), evalWant, ['$step', '$time', 'acc', 'split'], 'DuckDB, nested table');

  // pandas reads Parquet only through pyarrow (or fastparquet), which Debian 12 does not package:
  // the independent readers here are DuckDB and hyparquet (README: the pandas line for users who have it).
});

/** Entries straight to a sink (no logger): steps, times and levels as given. */
function entry(step: number, data: FlatRow, table = 't', level = 20, time = 1_700_000_000_000 + step): Entry<FlatRow> {
  return { table, level, step, time, data };
}

/** Writes the entries to the sink and ends it, resolving at 'finish'. */
async function writeAll(sink: ReturnType<typeof parquetSink>, entries: Array<Entry<FlatRow>>): Promise<void> {
  for (const e of entries) sink.write(e);
  await new Promise<void>((resolve, reject) => {
    sink.once('error', reject);
    sink.end(resolve);
  });
}

t.test('a value of another type closes the part; the next part has the column in its new type', async (t) => {
  const dir = tmpdir(t);
  const sink = parquetSink({ dir });
  await writeAll(sink, [entry(0, { x: 1, y: null }), entry(1, { x: 2, y: true }), entry(2, { x: 'two' }), entry(3, { x: 3, y: 'yes' }), entry(4, { x: null, y: false })]);
  const files = parts(dir, 't');
  t.equal(files.length, 4, 'x: number → string → number, y: boolean → string → boolean: four parts');
  const rows = await hyparquetRows(files);
  t.same(
    rows.map((r) => [r.x, r.y]),
    [
      [1, null],
      [2, true],
      ['two', null],
      [3, 'yes'],
      [null, false],
    ],
    'every value in its own type (hyparquet)',
  );
  const types = await duck(`SELECT path_in_schema AS c, type FROM parquet_metadata('${files[1]}') ORDER BY c`);
  t.same(types.map((r) => `${String(r.c)}:${String(r.type)}`), ['$level:INT32', '$step:INT64', '$time:INT64', 'x:BYTE_ARRAY', 'y:BOOLEAN'], 'the second part: x UTF8 bytes, y still BOOLEAN');
  const union = await duck(`SELECT x, y FROM ${dataset(dir, 't')} ORDER BY "$step"`);
  t.same(union.map((r) => [r.x, r.y]), [['1.0', null], ['2.0', 'true'], ['two', null], ['3.0', 'yes'], [null, 'false']], 'DuckDB unions the types of a column as VARCHAR');
});

t.test('a key seen only with null is a DOUBLE of nulls; a fractional level is DOUBLE, a fractional time rounded', async (t) => {
  const dir = tmpdir(t);
  const sink = parquetSink({ dir });
  await writeAll(sink, [entry(0, { n: null }, 't', 7.5, 1000.4), entry(1, { n: null }, 't', 20, 1000.6)]);
  const rows = await duck(`SELECT * FROM ${dataset(dir, 't')} ORDER BY "$step"`);
  t.same(rows.map((r) => [r.$level, Number(r.$time), r.n]), [
    [7.5, 1000, null],
    [20, 1001, null],
  ]);
  const types = await duck(`SELECT path_in_schema AS c, type FROM parquet_metadata('${parts(dir, 't')[0]}') ORDER BY c`);
  t.same(types.map((r) => `${String(r.c)}:${String(r.type)}`), ['$level:DOUBLE', '$step:INT64', '$time:INT64', 'n:DOUBLE']);
});

t.test('partRows, partSeconds and flush(): when parts close', async (t) => {
  const dir = tmpdir(t);
  const sink = parquetSink({ dir, partRows: 4, partSeconds: 3600, flushIntervalMs: 1, compression: 'UNCOMPRESSED' });
  for (let i = 0; i < 10; i++) sink.write(entry(i, { v: i }));
  await sink.flush();
  t.equal(parts(dir, 't').length, 2, 'flush(): the two full parts are on disk, the open part (2 rows) stays open');
  sink.write(entry(10, { v: 10 }, 'quiet'));
  await sink.flush();
  t.equal(parts(dir, 'quiet').length, 0, 'a part that is neither full nor old is not written by flush()');
  await writeAll(sink, []);
  t.equal(parts(dir, 't').length, 3, 'close writes the open part');
  t.same((await duck(`SELECT DISTINCT compression FROM parquet_metadata('${path.join(dir, 't.parquet')}/*.parquet')`)).map((r) => r.compression), ['UNCOMPRESSED']);
  t.same((await hyparquetRows(parts(dir, 't'))).map((r) => r.v), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.same((await hyparquetRows(parts(dir, 'quiet'))).map((r) => r.v), [10]);

  const dir2 = tmpdir(t);
  const timed = parquetSink({ dir: dir2, partSeconds: 0.05, flushIntervalMs: 1 });
  timed.write(entry(0, { v: 0 }));
  timed.write(entry(0, { w: 0 }, 'u'));
  await until(() => parts(dir2, 't').length === 1 && parts(dir2, 'u').length === 1, 'both parts closed by partSeconds', 5000);
  timed.write(entry(1, { v: 1 }));
  await until(() => parts(dir2, 't').length === 2, 'the next part closed by partSeconds too', 5000);
  await writeAll(timed, []);
  t.same((await hyparquetRows(parts(dir2, 't'))).map((r) => r.v), [0, 1], 'each part written once, the rows in order');

  const dir3 = tmpdir(t);
  const staggered = parquetSink({ dir: dir3, partSeconds: 0.2 });
  staggered.write(entry(0, { v: 0 }));
  await staggered.flush(); // hands the row: the part opens, the timer is armed
  await until(() => parts(dir3, 't').length === 1, 'the first part closed by its timer', 5000);
  staggered.write(entry(0, { w: 0 }, 'later')); // a part opened after the timer fired: it arms it again
  await staggered.flush();
  await until(() => parts(dir3, 'later').length === 1, 'the later part closed by the timer it re-armed', 5000);
  t.equal(parts(dir3, 't').length, 1, 'the earlier part was written once');
  await writeAll(staggered, []);
});

t.test('past maxQueuedRows the sink closes its parts and waits for the worker: nothing dropped', async (t) => {
  const dir = tmpdir(t);
  const sink = parquetSink({ dir, partRows: 1000, maxQueuedRows: 10, maxBatchRows: 4 });
  for (let i = 0; i < 50; i++) sink.write(entry(i, { v: i }));
  t.ok(parts(dir, 't').length >= 4, `written synchronously while the caller wrote (${parts(dir, 't').length} parts)`);
  t.ok(sink.queuedRows <= 14, `queuedRows stays bounded (${sink.queuedRows})`);
  await writeAll(sink, []);
  t.same((await hyparquetRows(parts(dir, 't'))).map((r) => r.v), Array.from({ length: 50 }, (_, i) => i));
});

t.test('reopening continues the part numbers and removes the temp files of a killed writer', async (t) => {
  const dir = tmpdir(t);
  await writeAll(parquetSink({ dir, partRows: 2 }), [entry(0, { v: 0 }), entry(1, { v: 1 }), entry(2, { v: 2 })]);
  const folder = path.join(dir, 't.parquet');
  fs.writeFileSync(path.join(folder, 'part-00002.parquet.99999.tmp'), 'half a part');
  fs.writeFileSync(path.join(folder, 'notes.txt'), 'not ours');
  await writeAll(parquetSink({ dir }), [entry(3, { v: 3 })]);
  t.same(fs.readdirSync(folder).sort(), ['notes.txt', 'part-00000.parquet', 'part-00001.parquet', 'part-00002.parquet'], 'part 2 follows; the temp file is gone; other files stay');
  t.same((await duck(`SELECT v FROM ${dataset(dir, 't')} ORDER BY "$step"`)).map((r) => r.v), [0, 1, 2, 3]);
});

t.test('a folder that cannot be written: W_FILE_ERROR once, the rows counted as dropped, logging goes on', async (t) => {
  const dir = tmpdir(t);
  const blocked = path.join(dir, 'file');
  fs.writeFileSync(blocked, 'a file where the folder should be');
  const sink = parquetSink({ dir: blocked, partRows: 2 });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  await writeAll(sink, [entry(0, { v: 0 }), entry(1, { v: 1 }), entry(2, { v: 2 }), entry(3, { v: 3 }), entry(4, { v: 4 })]);
  const codes = warnings.map((w) => w.code);
  t.equal(codes.filter((c) => c === 'W_FILE_ERROR').length, 1, 'W_FILE_ERROR once for the folder and its error');
  t.match(warnings.find((w) => w.code === 'W_FILE_ERROR')?.message, /t\.parquet cannot be written \(ENOTDIR\)/);
  const dropped = warnings.filter((w) => w.code === 'W_ROWS_DROPPED').map((w) => w.message);
  t.match(dropped, [/2 rows dropped/, /5 rows dropped in all/], 'the first loss at once, the total at close');
  t.equal(sink.queuedRows, 0);
});

t.test('a full disk (ENOSPC): the parts are dropped whole, no half file is left, the next part after space frees is written', async (t) => {
  const disk = fullTmpfs(t);
  if (disk === undefined) return;
  const sink = parquetSink({ dir: disk.mnt, partRows: 2, flushIntervalMs: 1 });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 4; i++) sink.write(entry(i, { v: i, s: 'x'.repeat(100) }));
  await sink.flush();
  t.match(warnings.find((w) => w.code === 'W_FILE_ERROR')?.message, /cannot be written \(ENOSPC\)/);
  t.same(fs.readdirSync(path.join(disk.mnt, 't.parquet')), [], 'neither a part nor a temp file is left');
  fs.rmSync(disk.filler);
  for (let i = 4; i < 6; i++) sink.write(entry(i, { v: i, s: 'x'.repeat(100) }));
  await writeAll(sink, []);
  t.same((await hyparquetRows(parts(disk.mnt, 't'))).map((r) => r.v), [4, 5], 'part 0 holds the rows logged after the disk freed up');
  t.match(warnings.filter((w) => w.code === 'W_ROWS_DROPPED').map((w) => w.message), [/2 rows dropped/, /4 rows dropped in all/]);
});

t.test('option errors: ERR_INVALID_OPTION naming the option', async (t) => {
  const dir = tmpdir(t);
  const bad: Array<[unknown, RegExp, 'TypeError' | 'RangeError']> = [
    [undefined, /^options:/, 'TypeError'],
    [{}, /^dir:/, 'TypeError'],
    [{ dir: '' }, /^dir:/, 'TypeError'],
    [{ dir, partRows: 0 }, /^partRows:/, 'RangeError'],
    [{ dir, partRows: 1.5 }, /^partRows:/, 'RangeError'],
    [{ dir, partRows: '10' }, /^partRows:/, 'TypeError'],
    [{ dir, partSeconds: 0 }, /^partSeconds:/, 'RangeError'],
    [{ dir, rowGroupRows: -1 }, /^rowGroupRows:/, 'RangeError'],
    [{ dir, compression: 'GZIP' }, /^compression:/, 'RangeError'],
    [{ dir, compression: 1 }, /^compression:/, 'TypeError'],
    [{ dir, durability: 'always' }, /^durability:/, 'RangeError'],
    [{ dir, maxQueuedRows: 0 }, /^maxQueuedRows:/, 'RangeError'],
  ];
  for (const [opts, message, name] of bad) {
    t.throws(() => parquetSink(opts as never), { code: 'ERR_INVALID_OPTION', name, message }, JSON.stringify(opts) ?? 'undefined');
  }
});

t.test('an empty flush, an empty close, closing twice, destroy after close', async (t) => {
  const dir = tmpdir(t);
  const sink = parquetSink({ dir, durability: 'flush' });
  await sink.flush();
  sink.flushSync();
  await writeAll(sink, []);
  t.same(fs.readdirSync(dir), [], 'no rows, no folder');
  sink.destroy();
  const two = parquetSink({ dir, durability: 'flush' });
  two.write(entry(0, { v: 0 }));
  two.destroy(); // closeSync: the open part is written before the worker ends
  await new Promise((resolve) => two.once('close', resolve));
  t.same((await hyparquetRows(parts(dir, 't'))).map((r) => r.v), [0], 'destroy() writes the open part (fsync on)');
  const log = createLogger({ dir: path.join(dir, 'run'), sinks: [parquetSink({ dir: path.join(dir, 'run') })] });
  log.row('a', { v: 1 });
  await log.close();
  await log.close();
  t.equal(parts(path.join(dir, 'run'), 'a').length, 1, 'close() twice: one part');
});
