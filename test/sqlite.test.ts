/**
 * sqliteSink (sinks/sqlite.ts, sinks/sqlite-worker.ts; docs/DESIGN.md §4): a run logged through
 * createLogger into JSONL and SQLite at once, then read back by readers rowlog did not write —
 * Python's sqlite3 module and the sqlite3 command — and compared with the JSONL. Without the
 * optional peer: the option errors, ERR_MISSING_DEPENDENCY and its install line, the columns a
 * batch is posted as, and the fault path (a stand-in engine whose every open fails as a full disk).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { parseJsonLine } from '../lib/format/parse-lines.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { createSqliteSink, sqliteSink, toColumns } from '../sinks/sqlite.js';
import type { SqliteSink } from '../sinks/sqlite.js';
import { fillDisk, ROOT, run, tmpdir, tmpfs } from './helpers.js';
import { needs, peer } from './peers.js';
import { until } from './wait.js';

/** A JSONL file's rows, NaN and ±Infinity restored (rowlog writes them as bare tokens). */
function readJsonl(file: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => parseJsonLine(l) as Record<string, unknown>);
}

const entry = (step: number, data: FlatRow, table = 'main'): Entry<FlatRow> => ({ table, level: 20, step, time: 1000 + step, data });

t.test('option errors name the option (ERR_INVALID_OPTION)', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [null, /^options:/],
    [{}, /^path: give exactly one of path/],
    [{ path: 'a.sqlite', dir: 'd' }, /^path: give exactly one/],
    [{ path: '' }, /^path: must be a non-empty string/],
    [{ dir: 7 }, /^dir: must be a non-empty string/],
    [{ dir: 'd', synchronous: 'off' }, /^synchronous: must be 'normal' or 'full'/],
    [{ dir: 'd', flushIntervalMs: -1 }, /^flushIntervalMs:/],
    [{ dir: 'd', maxBatchRows: 0 }, /^maxBatchRows:/],
  ];
  for (const [opts, re] of bad) {
    t.throws(() => sqliteSink(opts as never), { code: 'ERR_INVALID_OPTION', message: re }, JSON.stringify(opts));
  }
});

t.test('without better-sqlite3: ERR_MISSING_DEPENDENCY naming the install line, at creation', async (t) => {
  const dir = tmpdir(t);
  t.throws(() => createSqliteSink({ dir }, 'better-sqlite3-not-installed'), {
    name: 'RowlogError',
    code: 'ERR_MISSING_DEPENDENCY',
    message: /npm install better-sqlite3@12/,
  });
  t.same(fs.readdirSync(dir), [], 'nothing was created');
});

t.test('a batch is posted as columns: numbers in Float64Arrays, anything else as values', async (t) => {
  const b = toColumns('main', [
    entry(0, { loss: 1, name: 'a' }),
    entry(1, { loss: 0.5, ok: true, name: null }),
    entry(2, { name: 'c', loss: null, late: NaN, ok: false }),
    entry(3, { loss: Infinity, late: 'text' }),
  ]);
  t.same(b.keys, ['loss', 'name', 'ok', 'late'], 'keys in first-seen order');
  t.same([...b.meta], [0, 1000, 20, 1, 1001, 20, 2, 1002, 20, 3, 1003, 20], 'step, time, level per row');
  t.ok(b.columns[0] instanceof Float64Array, 'an all-number column is a Float64Array');
  t.same([...(b.columns[0] as Float64Array)], [1, 0.5, NaN, Infinity], 'null and missing are NaN (SQLite stores both as NULL)');
  t.same(b.columns[1], ['a', null, 'c', null]);
  t.same(b.columns[2], [null, true, false, null]);
  // NaN before the string becomes null: in SQLite both are NULL.
  t.same(b.columns[3], [null, null, null, 'text'], 'a column turns into values when a string comes');
});

t.test('a store that fails (a full disk): W_FILE_ERROR once with the code, rows counted as dropped, no throw', async (t) => {
  const dir = tmpdir(t);
  const sink = createSqliteSink({ dir, maxBatchRows: 10 }, path.join(ROOT, 'test', 'fixtures', 'sqlite-full-engine.cjs'));
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 25; i++) sink.write(entry(i, { x: i }));
  sink.setParams({ lr: 0.1 });
  await sink.flush();
  sink.flushSync();
  t.equal(sink.queuedRows, 0, 'nothing is held');
  await new Promise<void>((resolve) => sink.end(resolve));
  const codes = warnings.map((w) => w.code);
  t.equal(codes.filter((c) => c === 'W_FILE_ERROR').length, 1, 'one W_FILE_ERROR');
  t.match(warnings.find((w) => w.code === 'W_FILE_ERROR')?.message, /SQLITE_FULL/);
  t.match(warnings.at(-1), { code: 'W_ROWS_DROPPED', message: /25 rows in all could not be written/ }, 'the total at close');
});

/** A Python program over the database, its stdout as JSON (±Infinity as strings). */
function python(t: Test, db: string, code: string): unknown {
  const py = peer('python3') as string;
  const prog = `import sqlite3, json, math, sys
db = sqlite3.connect(sys.argv[1])
def fix(v):
    if isinstance(v, float) and math.isinf(v): return 'inf' if v > 0 else '-inf'
    if isinstance(v, (list, tuple)): return [fix(x) for x in v]
    return v
${code}`;
  const r = run(py, ['-c', prog, db]);
  t.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

t.test('a run in JSONL and SQLite: Python and the sqlite3 command read what the JSONL holds', async (t) => {
  if (!needs(t, ['better-sqlite3', 'python3'])) return;
  const dir = tmpdir(t);
  const sq = sqliteSink({ dir, maxBatchRows: 100 });
  // The logger hands the sink run.json, params and status as it saves them (lib/log/logger.ts).
  const log = createLogger({ dir, sinks: [jsonlSink({ dir, ext: '.jsonl' }), sq] });
  log.params({ lr: 0.01, model: { depth: 3 }, warm: true });
  const N = 1000;
  for (let i = 0; i < N; i++) {
    log.row('main', {
      loss: 1 / (i + 1),
      name: `step ${i}`,
      even: i % 2 === 0,
      ...(i >= 400 ? { late: i * 2 } : {}),
      ...(i === 500 ? { odd: NaN, pos: Infinity, neg: -Infinity } : {}),
    });
    if (i % 10 === 0) log.row('eval/val.acc', { acc: i / N, value: i, 'we"ird': 'q"uote' });
  }
  log.status.epoch = 3;
  await log.close();
  t.same(fs.readdirSync(dir).filter((f) => f.startsWith('run.sqlite')), ['run.sqlite'], 'closed: one file, no -wal/-shm left');
  const db = path.join(dir, 'run.sqlite');
  const jsonl = readJsonl(path.join(dir, 'main.jsonl'));
  const evalRows = readJsonl(path.join(dir, 'eval', 'val.acc.jsonl'));

  const got = python(
    t,
    db,
    `cur = db.execute('SELECT * FROM main ORDER BY "$step"')
cols = [d[0] for d in cur.description]
rows = [dict(zip(cols, fix(list(r)))) for r in cur]
ev = [list(r) for r in db.execute('SELECT "$step", acc, value, "we""ird" FROM "eval/val.acc" ORDER BY "$step"')]
entries = db.execute('SELECT count(*), count(DISTINCT run) FROM entries').fetchone()
late = db.execute("SELECT min(step), count(*) FROM entries WHERE key = 'main/late'").fetchone()
runs = [list(r) for r in db.execute('SELECT id, name, dir, started, resumed_from FROM runs')]
params = dict(db.execute('SELECT key, value FROM params'))
status = dict(db.execute('SELECT key, value FROM status'))
print(json.dumps({'cols': cols, 'rows': rows, 'ev': ev, 'entries': list(entries), 'late': list(late), 'runs': runs, 'params': params, 'status': status,
  'integrity': db.execute('PRAGMA integrity_check').fetchone()[0], 'mode': db.execute('PRAGMA journal_mode').fetchone()[0]}))`,
  ) as {
    cols: string[];
    rows: Array<Record<string, unknown>>;
    ev: unknown[][];
    entries: number[];
    late: number[];
    runs: unknown[][];
    params: Record<string, unknown>;
    status: Record<string, unknown>;
    integrity: string;
    mode: string;
  };
  t.equal(got.integrity, 'ok');
  t.equal(got.mode, 'wal', 'WAL');
  t.same(got.cols, ['$step', '$time', '$level', '$run', 'loss', 'name', 'even', 'late', 'odd', 'pos', 'neg'], 'the wide table: meta columns, then keys as they came');
  t.equal(got.rows.length, jsonl.length, `${N} rows, as many as the JSONL`);
  let same = 0;
  for (const [i, j] of jsonl.entries()) {
    const s = got.rows[i] as Record<string, unknown>;
    const want = {
      $step: j.$step,
      $time: j.$time,
      $level: j.$level,
      $run: 1,
      loss: j.loss,
      name: j.name,
      even: j.even ? 1 : 0,
      late: j.late ?? null,
      odd: null, // NaN is NULL in SQLite
      pos: j.pos === undefined ? null : 'inf',
      neg: j.neg === undefined ? null : '-inf',
    };
    if (JSON.stringify(s) === JSON.stringify(want)) same++;
    else t.same(s, want, `row ${i}`);
  }
  t.equal(same, N, 'every row equals its JSONL line (booleans 0/1, NaN NULL, ±Infinity REAL ±Inf, a late key NULL before it came)');
  t.same(
    got.ev,
    evalRows.map((r) => [r.$step, r.acc, r.value, r['we"ird']]),
    'a nested table name with . and a key with a quote',
  );
  // entries: main has loss, name, even per row, late from 400, pos/neg once; eval 3 keys per row.
  t.same(got.entries, [N * 3 + (N - 400) + 2 + evalRows.length * 3, 1], 'the long view holds every non-NULL value, of one run');
  t.same(got.late, [400, N - 400], 'a key new mid-run: NULL (and not in the view) before it came');
  t.same(got.runs, [[log.run?.id, log.run?.name, dir, log.run?.startTime, null]], 'runs: run.json');
  t.same(got.params, { lr: 0.01, model: '{"depth":3}', warm: 1 }, 'params');
  const { $updated, ...status } = got.status;
  t.match($updated, /^\d{4}-\d\d-\d\dT/, 'status: $updated, as status.json has it');
  t.same(status, { epoch: 3, $state: 'closed', $steps: JSON.stringify({ main: N - 1, 'eval/val.acc': 99 }) }, 'status: as status.json at close');

  if (needs(t, 'sqlite3', 'the sqlite3 command')) {
    const cli = run(peer('sqlite3') as string, [
      '-readonly',
      db,
      'PRAGMA integrity_check',
      'SELECT count(*), max("$step"), sum(even) FROM main',
      `SELECT value FROM entries WHERE key = 'main/name' AND step = 7`,
      `SELECT step, key, value FROM entries WHERE key LIKE 'eval/val.acc/%' ORDER BY step, key LIMIT 3`,
      `SELECT pos, neg FROM main WHERE "$step" = 500`,
      `SELECT group_concat(key || ':' || typeof(value), ' ') FROM (SELECT * FROM params ORDER BY key)`,
      `SELECT typeof(value) FROM status WHERE key = 'epoch'`,
    ]);
    t.equal(cli.status, 0, cli.stderr);
    t.same(cli.stdout.trim().split('\n'), ['ok', `${N}|${N - 1}|${N / 2}`, 'step 7', '0|eval/val.acc/acc|0.0', '0|eval/val.acc/value|0.0', '0|eval/val.acc/we"ird|q"uote', 'Inf|-Inf', 'lr:real model:text warm:integer', 'integer']);
  }
});

t.test('a reopened run folder appends: two runs, appended_to, each row knows its run', async (t) => {
  if (!needs(t, ['better-sqlite3', 'python3'])) return;
  const dir = tmpdir(t);
  const ids: string[] = [];
  for (let k = 0; k < 2; k++) {
    const sq = sqliteSink({ dir });
    const log = createLogger({ dir, sinks: [sq] });
    sq.setRun(log.run as never);
    ids.push(log.run?.id as string);
    for (let i = 0; i < 5; i++) log.row('main', { x: k * 10 + i, ...(k === 1 ? { Late: 1, late: 2 } : {}) });
    await log.close();
  }
  const got = python(
    t,
    path.join(dir, 'run.sqlite'),
    `print(json.dumps({'runs': [list(r) for r in db.execute('SELECT rowid, id, appended_to, resumed_from FROM runs ORDER BY rowid')],
  'rows': [list(r) for r in db.execute('SELECT "$run", x, "Late", "late$2" FROM main ORDER BY rowid')],
  'by': [list(r) for r in db.execute("SELECT run, count(*) FROM entries WHERE key = 'main/x' GROUP BY run ORDER BY min(step)")],
  'keys': [r[0] for r in db.execute('SELECT DISTINCT key FROM entries ORDER BY key')]}))`,
  ) as { runs: unknown[][]; rows: unknown[][]; by: unknown[][]; keys: string[] };
  t.same(got.runs, [[1, ids[0], null, null], [2, ids[1], ids[0], null]], 'an append is appended_to; resumed_from is only a resume from another folder');
  t.same(
    got.rows.map((r) => r[0]),
    [1, 1, 1, 1, 1, 2, 2, 2, 2, 2],
    '"$run" says which run wrote each row',
  );
  t.same(got.rows[5], [2, 10, 1, 2], 'keys equal but for case get their own columns (late$2)');
  t.same(got.by, [[ids[0], 5], [ids[1], 5]]);
  t.same(got.keys, ['main/Late', 'main/late', 'main/x'], 'the view names keys as logged');
});

t.test('a file that is not a database: W_FILE_ERROR naming SQLITE_NOTADB, rows counted, the logger goes on', async (t) => {
  if (!needs(t, 'better-sqlite3')) return;
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'run.sqlite'), 'not a database, '.repeat(100));
  const sq: SqliteSink = sqliteSink({ dir, maxBatchRows: 10 });
  const warnings: RowlogWarning[] = [];
  sq.on('warning', (w: RowlogWarning) => warnings.push(w));
  const log = createLogger({ dir, sinks: [sq, jsonlSink({ dir, ext: '.jsonl' })] });
  for (let i = 0; i < 30; i++) log.row('main', { x: i });
  await log.close();
  t.equal(readJsonl(path.join(dir, 'main.jsonl')).length, 30, 'the other sink has every row');
  t.match(warnings.find((w) => w.code === 'W_FILE_ERROR'), { message: /SQLITE_NOTADB/ });
  t.match(warnings.at(-1), { code: 'W_ROWS_DROPPED', message: /30 rows in all/ });
});

t.test('a path under a regular file: warned, counted, never thrown', async (t) => {
  if (!needs(t, 'better-sqlite3')) return;
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'file'), '');
  const sq = sqliteSink({ path: path.join(dir, 'file', 'run.sqlite'), synchronous: 'full' });
  const warnings: RowlogWarning[] = [];
  sq.on('warning', (w: RowlogWarning) => warnings.push(w));
  sq.write(entry(0, { x: 1 }));
  await sq.flush();
  await new Promise<void>((resolve) => sq.end(resolve));
  t.match(warnings, [{ code: 'W_FILE_ERROR', message: /EEXIST|ENOTDIR/ }, { code: 'W_ROWS_DROPPED' }, { code: 'W_ROWS_DROPPED', message: /1 rows in all/ }]);
});

const FAKE = path.join(ROOT, 'test', 'fixtures', 'sqlite-fake-engine.cjs');

/** The statements the stand-in engine was given (test/fixtures/sqlite-fake-engine.cjs). */
function statements(file: string): Array<{ sql: string; args: unknown[] }> {
  return fs
    .readFileSync(`${file}.sql`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { sql: string; args: unknown[] });
}

t.test("the worker's SQL, through a stand-in engine: schema, names, values, a failed batch and the reopen", async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'x.sqlite');
  // What an earlier run left: table "old" with key "a" (and a column of a table not listed).
  fs.writeFileSync(
    `${file}.tables.json`,
    JSON.stringify({ tables: [{ name: 'old', sql_name: 'old' }], columns: [{ tbl: 'old', key: 'a', sql_name: 'a' }, { tbl: 'gone', key: 'b', sql_name: 'b' }], view: true }),
  );
  const sink = createSqliteSink({ path: file, synchronous: 'full', maxBatchRows: 1000 }, FAKE);
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  sink.setRun({ id: 'r1', name: 'n', startTime: 'T', dir: '/runs/n' });
  sink.setParams({ n: 1, p: 0.5, s: 'x', b: true, f: false, z: null });
  sink.setParams({ o: { a: 1 } });
  sink.setStatus({ a: 1 });
  sink.setStatus({ $state: 'early' });
  sink.write(entry(0, { x: 1, s: 'a', b: true, z: null, "it's": NaN }));
  sink.write(entry(0, { y: 1 }, 'Main'));
  sink.write(entry(0, { 'q"k': 1 }, 'runs'));
  sink.write(entry(0, { a: 1, A: 2 }, 'old'));
  sink.write(entry(0, { v: 1 }, 'sqlite_x'));
  sink.write(entry(0, {}, 'empty'));
  await sink.flush();
  sink.write(entry(1, { x: 2 }, 'full'));
  await sink.flush();
  sink.write(entry(2, { x: 3, s: 'b', b: false }));
  sink.setStatus({ $state: 'closed', n: 1 });
  await new Promise<void>((resolve) => sink.end(resolve));

  const sql = statements(file);
  const texts = sql.map((s) => s.sql.replace(/\s+/g, ' '));
  t.ok(texts.includes('PRAGMA journal_mode = WAL') && texts.includes('PRAGMA synchronous = FULL'), 'WAL, synchronous FULL as asked');
  for (const create of ['"main"', '"Main$2"', '"runs$2"', '"old"', '"$sqlite_x"', '"empty"']) {
    t.equal(texts.filter((s) => s.startsWith(`CREATE TABLE ${create} ("$step" INTEGER, "$time" INTEGER, "$level" INTEGER, "$run" INTEGER);`)).length, create === '"old"' ? 0 : 1, `table ${create}`);
  }
  const added = texts.filter((s) => s.startsWith('ALTER TABLE')).map((s) => s.replace('ALTER TABLE ', ''));
  t.same(
    added,
    ['"main" ADD COLUMN "x" REAL', '"main" ADD COLUMN "s" TEXT', '"main" ADD COLUMN "b" INTEGER', '"main" ADD COLUMN "z" REAL', `"main" ADD COLUMN "it's" REAL`, '"Main$2" ADD COLUMN "y" REAL', '"runs$2" ADD COLUMN "q""k" REAL', '"old" ADD COLUMN "A$2" REAL', '"$sqlite_x" ADD COLUMN "v" REAL'],
    'a column per new key: REAL, TEXT, INTEGER by the first value; names free case-insensitively, quotes doubled',
  );
  const inserts = sql.filter((s) => s.sql.startsWith('INSERT INTO "main"'));
  t.same(inserts.map((s) => s.args), [[0, 1000, 20, 1, 1, 'a', 1, null, null], [2, 1002, 20, 1, 3, 'b', 0]], 'values: booleans 0/1, null and NaN as NULL; the run\'s rowid');
  const view = texts.filter((s) => s.startsWith('DROP VIEW IF EXISTS entries;')).at(-1) ?? '';
  t.match(view, /\('main\/it''s', 4\)/, 'the view names keys as SQL strings');
  t.notMatch(view, /"empty"/, 'a table without keys is not in the view');
  t.match(view, /FROM "runs\$2" AS t/);
  const rollback = texts.indexOf('ROLLBACK');
  t.ok(rollback > 0, 'the failed batch was rolled back');
  t.same(texts.slice(rollback + 1, rollback + 3), ['close', 'open'], 'then the database closed, and opened again for the next job');
  t.ok(sql.slice(rollback).some((s) => s.args.includes('r1')), 'and the run recorded again');
  t.same(
    sql.filter((s) => s.sql.startsWith('INSERT INTO params')).map((s) => s.args),
    [['n', 1], ['p', 0.5], ['s', 'x'], ['b', 1], ['f', 0], ['z', null], ['o', '{"a":1}']],
    'params: scalars, booleans 0/1, objects as JSON',
  );
  t.same(
    sql.filter((s) => s.sql.startsWith('INSERT INTO status')).map((s) => s.args.slice(0, 2)),
    [['$state', 'early'], ['$state', 'closed'], ['n', 1]],
    'status: of those given before the first row, the last',
  );
  t.equal(texts.filter((s) => s === 'BEGIN').length, 6, 'params held before the first row are merged into one transaction');
  t.equal(texts.at(-1), 'close', 'closed at the end');
  t.match(warnings, [{ code: 'W_FILE_ERROR', message: /SQLITE_FULL/ }, { code: 'W_ROWS_DROPPED', message: /1 rows dropped/ }, { code: 'W_ROWS_DROPPED', message: /1 rows in all/ }]);
});

t.test('a database that fails at its first statement: closed again, W_FILE_ERROR with its code', async (t) => {
  const dir = tmpdir(t);
  const sink = createSqliteSink({ path: path.join(dir, 'notadb.sqlite') }, FAKE);
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  sink.write(entry(0, { x: 1 }));
  await new Promise<void>((resolve) => sink.end(resolve));
  t.match(warnings, [{ code: 'W_FILE_ERROR', message: /\(SQLITE_NOTADB\): file is not a database/ }, { code: 'W_ROWS_DROPPED' }, { code: 'W_ROWS_DROPPED' }]);
  t.same(statements(sink.file).map((s) => s.sql), ['open', 'close'], 'the engine was closed after the failed open');
});

t.test('a sink that gets no row starts no worker and leaves no file, whatever records it was given', async (t) => {
  const dir = tmpdir(t);
  const sink = createSqliteSink({ dir }, FAKE);
  sink.setRun({ id: 'r' });
  sink.setParams({ lr: 1 });
  sink.setStatus({ $state: 'running' });
  await sink.flush();
  sink.flushSync();
  t.equal(sink.queuedRows, 0);
  await new Promise<void>((resolve) => sink.end(resolve));
  t.same(fs.readdirSync(dir), [], 'no run.sqlite (the stand-in engine would have logged its open)');
  const other = createSqliteSink({ dir }, FAKE);
  other.setRun({ id: 'r' });
  other.destroy();
  t.same(fs.readdirSync(dir), [], 'destroyed before any row: the same');
});

t.test('params that JSON cannot hold (Map, Set, typed array): stored as params.json holds them', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'p.sqlite');
  const sink = createSqliteSink({ path: file }, FAKE);
  sink.setParams({ m: new Map([['a', 1]]), s: new Set([1, 2]), f: Float32Array.of(1, 2) });
  sink.write(entry(0, { x: 1 }));
  await new Promise<void>((resolve) => sink.end(resolve));
  t.same(
    statements(file).filter((s) => s.sql.startsWith('INSERT INTO params')).map((s) => s.args),
    [['m', '{"a":1}'], ['s', '[1,2]'], ['f', '[1,2]']],
    'a Map as an object, a Set and a Float32Array as arrays (not {})',
  );
});

t.test('a worker that dies: W_FILE_ERROR, its rows and every later row counted as dropped', async (t) => {
  const dir = tmpdir(t);
  const sink = createSqliteSink({ dir, maxBatchRows: 5 }, FAKE);
  t.equal(sink.file, path.join(dir, 'run.sqlite'), 'run.sqlite in dir');
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  sink.setRun({ name: 'no id' });
  const circular: Record<string, unknown> = { big: 1n };
  circular.self = circular;
  sink.setStatus(circular);
  for (let i = 0; i < 5; i++) sink.write(entry(i, { x: i }, 'die'));
  await sink.flush();
  await until(() => warnings.some((w) => /worker thread ended/.test(w.message)), 'the worker to be reported gone');
  for (let i = 5; i < 12; i++) sink.write(entry(i, { x: i }));
  sink.setStatus({ $state: 'running' });
  sink.flushSync();
  t.equal(sink.queuedRows, 0);
  sink.destroy();
  t.match(
    warnings.filter((w) => w.code === 'W_FILE_ERROR').map((w) => w.message),
    [/worker thread ended \(the worker thread exited \(code 9\)\)/],
    'the worker gone',
  );
  t.match(warnings.at(-1), { code: 'W_ROWS_DROPPED', message: /12 rows in all could not be written/ }, 'closeSync reports the total');
  t.ok(statements(sink.file).some((s) => s.args.includes('{"name":"no id"}')), 'a run without id is keyed by its JSON');
  t.match(warnings[0], { code: 'W_STATUS', message: /could not record the status: .*circular/ }, 'a status JSON cannot hold: warned, not thrown');
  sink.destroy();
});

t.test('a full disk (SQLITE_FULL): warned once, the refused batches counted, later batches stored once there is room', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const fsx = tmpfs(t, '4m');
  if (fsx === undefined) return;
  const db = path.join(fsx.mnt, 'run.sqlite');
  const sq = sqliteSink({ path: db, maxBatchRows: 100 });
  const warnings: RowlogWarning[] = [];
  sq.on('warning', (w: RowlogWarning) => warnings.push(w));
  const log = createLogger({ sinks: [sq], exitHooks: false });
  let step = 0;
  const batch = async () => {
    for (let k = 0; k < 100; k++, step++) log.row('main', { x: step, pad: 'p'.repeat(200) }, { step });
    await log.flush();
  };
  for (let b = 0; b < 5; b++) await batch();
  // Fill the disk, then log until SQLite refuses (the WAL may still have room for a batch or two).
  const filler = path.join(fsx.mnt, 'filler');
  fillDisk(filler);
  for (let b = 0; b < 200 && !warnings.some((w) => w.code === 'W_FILE_ERROR'); b++) await batch();
  await batch();
  await batch();
  t.match(warnings.filter((w) => w.code === 'W_FILE_ERROR'), [{ message: /\(SQLITE_FULL\)/ }], 'one W_FILE_ERROR naming SQLITE_FULL');
  fs.rmSync(filler);
  await batch();
  await log.close();
  const total = /(\d+) rows in all could not be written/.exec(warnings.at(-1)?.message ?? '');
  const dropped = Number(total?.[1]);
  t.ok(dropped >= 200, `${dropped} rows counted as dropped`);
  const r = run(peer('sqlite3') as string, [db, 'PRAGMA integrity_check', 'SELECT count(*), max("$step") FROM main']);
  t.same(r.stdout.trim().split('\n'), ['ok', `${step - dropped}|${step - 1}`], 'integrity ok; every row not counted as dropped is there, the last batch too');
});

t.test('a read-only file system: warned with the code, rows counted, the database left as it was', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const fsx = tmpfs(t, '4m');
  if (fsx === undefined) return;
  const db = path.join(fsx.mnt, 'run.sqlite');
  const first = sqliteSink({ path: db });
  for (let i = 0; i < 10; i++) first.write(entry(i, { x: i }));
  await new Promise<void>((resolve) => first.end(resolve));
  if (run('mount', ['-o', 'remount,ro', fsx.mnt]).status !== 0) return void t.comment('skipped: cannot remount read-only');
  t.teardown(() => void run('mount', ['-o', 'remount,rw', fsx.mnt]));
  const sq = sqliteSink({ path: db });
  const warnings: RowlogWarning[] = [];
  sq.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 10; i < 15; i++) sq.write(entry(i, { x: i }));
  await new Promise<void>((resolve) => sq.end(resolve));
  t.match(warnings, [{ code: 'W_FILE_ERROR', message: /cannot be written \(SQLITE_(CANTOPEN|READONLY)\)/ }, { code: 'W_ROWS_DROPPED' }, { code: 'W_ROWS_DROPPED', message: /5 rows in all/ }]);
  // A WAL database on read-only media opens as immutable (there is no -shm file to make).
  const r = run(peer('sqlite3') as string, [`file:${db}?immutable=1`, 'PRAGMA integrity_check', 'SELECT count(*) FROM main']);
  t.same(r.stdout.trim().split('\n'), ['ok', '10'], 'the rows before are all there');
});

t.test('the long view over more tables than one compound SELECT may hold (SQLite allows 500)', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const dir = tmpdir(t);
  const sq = sqliteSink({ dir, maxBatchRows: 10_000 });
  const warnings: RowlogWarning[] = [];
  sq.on('warning', (w: RowlogWarning) => warnings.push(w));
  const TABLES = 900;
  for (let k = 0; k < TABLES; k++) sq.write(entry(0, { x: k }, `t/${k}`));
  await new Promise<void>((resolve) => sq.end(resolve));
  t.same(warnings, [], 'no warning');
  const r = run(peer('sqlite3') as string, ['-readonly', path.join(dir, 'run.sqlite'), 'SELECT count(*), sum(value) FROM entries', `SELECT value FROM entries WHERE key = 't/899/x'`]);
  t.same(r.stdout.trim().split('\n'), [`${TABLES}|${(TABLES * (TABLES - 1)) / 2}.0`, '899.0'], r.stderr);
});
