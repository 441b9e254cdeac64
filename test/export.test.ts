// `rowlog export RUN --to …` (lib/read/export-run.ts, lib/cli/export.ts): a run logged to JSONL
// only, written again as CSV and as a TensorBoard events file, compared row by row with what
// the JSONL holds; new files only; one line per table; the errors a user meets.
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import t from 'tap';
import type { Test } from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { readLog } from '../lib/read/read-log.js';
import { exportRun } from '../lib/read/export-run.js';
import type { ExportFormat } from '../lib/read/export-run.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { runCli } from './cli.js';
import { fullTmpfs, run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { eventsFiles, expectedEvents, readTfFile } from './tfevents.js';

const ROWS = 1500;

/** A run folder of two tables logged to `.jsonl.gz` only: numbers, NaN/±Infinity, strings, booleans, a late key. */
async function makeRun(t: Test): Promise<string> {
  const dir = path.join(tmpdir(t), 'run');
  const log = createLogger({ dir, sinks: [jsonlSink({ dir, ext: '.jsonl.gz' })], exitHooks: false });
  for (let i = 0; i < ROWS; i++) {
    log.row('train', {
      loss: i === 7 ? NaN : 1 / (i + 1),
      lr: i === 9 ? Infinity : i === 10 ? -Infinity : 1e-3,
      tag: `s${i % 3}`,
      ok: i % 2 === 0,
      ...(i >= 1000 ? { late: i } : {}),
    });
    if (i % 10 === 0) log.row('grad/layer1', { norm: i / 10 }, { level: 'TRACE' });
  }
  await log.close();
  return dir;
}

async function rows(file: string, format?: 'csv'): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for await (const r of readLog(file, format === undefined ? {} : { format })) out.push(r);
  return out;
}

t.test('--to csv: every row and value of every table, nested ones too; one line per table', async (t) => {
  const dir = await makeRun(t);
  const r = runCli(['export', dir, '--to', 'csv']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, `grad/layer1: 150 rows from grad/layer1.jsonl.gz → csv\ntrain: ${ROWS} rows from train.jsonl.gz → csv\n`);
  for (const table of ['train', 'grad/layer1']) {
    const want = await rows(path.join(dir, `${table}.jsonl.gz`));
    const got = await rows(path.join(dir, `${table}.csv`));
    t.equal(got.length, want.length, `${table}: rows`);
    // CSV holds the union header: a row without the late key has it as null
    t.same(
      got,
      want.map((w) => (table === 'train' ? { late: null, ...w } : w)),
      `${table}: every value, $step/$time/$level kept`,
    );
  }
  const header = fs.readFileSync(path.join(dir, 'train.csv'), 'utf8').split('\n', 1)[0];
  t.equal(header, '$step,$time,$level,late,loss,lr,ok,tag');
});

t.test('--to tensorboard --out: one events file holding every row of every table as TensorBoard reads it', async (t) => {
  const dir = await makeRun(t);
  const out = path.join(tmpdir(t), 'tb');
  const r = runCli(['export', dir, '--to', 'tensorboard', '--out', out]);
  t.equal(r.status, 0, r.stderr);
  const files = eventsFiles(out);
  t.equal(files.length, 1);
  const tf = readTfFile(files[0] as string);
  t.equal(tf.torn, 0);
  t.equal(tf.events[0]?.fileVersion, 'brain.Event:2');
  const want = [
    ...expectedEvents('grad/layer1', await rows(path.join(dir, 'grad/layer1.jsonl.gz'))),
    ...expectedEvents('train', await rows(path.join(dir, 'train.jsonl.gz'))),
  ];
  t.same(tf.events.slice(1), want, 'every step, wall time and value (as float32), tables in name order');
});

t.test('--to parquet: DuckDB reads every table as the JSONL holds it (the late key null before it came)', async (t) => {
  const dir = await makeRun(t);
  const r = runCli(['export', dir, '--to', 'parquet']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, `grad/layer1: 150 rows from grad/layer1.jsonl.gz → parquet\ntrain: ${ROWS} rows from train.jsonl.gz → parquet\n`);
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  const read = async (table: string) =>
    (await c.runAndReadAll(`SELECT * FROM read_parquet('${path.join(dir, `${table}.parquet`)}/*.parquet', union_by_name = true) ORDER BY "$step"`)).getRowObjects();
  try {
    for (const table of ['train', 'grad/layer1']) {
      const want = await rows(path.join(dir, `${table}.jsonl.gz`));
      const got = (await read(table)).map((row) =>
        Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
      );
      t.equal(got.length, want.length, `${table}: rows`);
      t.same(
        got,
        want.map((w) => (table === 'train' ? { late: null, ...w } : w)),
        `${table}: every value, NaN and ±Infinity too`,
      );
    }
    const agg = (await c.runAndReadAll(`SELECT count(*) AS n, max("$step") AS s FROM read_parquet('${path.join(dir, 'train.parquet')}/*.parquet', union_by_name = true)`)).getRowObjects()[0];
    t.same(agg, { n: BigInt(ROWS), s: BigInt(ROWS - 1) });
  } finally {
    c.closeSync();
  }
});

t.test('--to sqlite: run.sqlite holds every row, read by Python\'s sqlite3 module', async (t) => {
  if (!needs(t, ['better-sqlite3', 'python3'])) return;
  const dir = await makeRun(t);
  const r = runCli(['export', dir, '--to', 'sqlite']);
  t.equal(r.status, 0, r.stderr);
  const py = peer('python3') as string;
  const q = run(py, [
    '-c',
    'import sqlite3,sys,json; db=sqlite3.connect(sys.argv[1]); print(json.dumps([db.execute(\'SELECT count(*), max("$step"), sum(late IS NOT NULL) FROM train\').fetchone(), db.execute(\'SELECT count(*) FROM "grad/layer1"\').fetchone(), db.execute("SELECT id, dir FROM runs").fetchall(), db.execute("SELECT value FROM status WHERE key = \'$state\'").fetchone()]))',
    path.join(dir, 'run.sqlite'),
  ]);
  t.equal(q.status, 0, q.stderr);
  const runJson = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { id: string };
  t.same(JSON.parse(q.stdout), [[ROWS, ROWS - 1, ROWS - 1000], [150], [[runJson.id, dir]], ['closed']], 'rows, and runs/status from the run folder\'s files');
  const again = runCli(['export', dir, '--to', 'sqlite']);
  t.equal(again.status, 1);
  t.match(again.stderr, /run\.sqlite exists already/);
});

t.test('export writes new files only: a second export fails naming the file and changes nothing', async (t) => {
  const dir = await makeRun(t);
  t.equal(runCli(['export', dir, '--to', 'csv', '--table', 'train']).status, 0);
  const before = fs.readFileSync(path.join(dir, 'train.csv'));
  const r = runCli(['export', dir, '--to', 'csv']);
  t.equal(r.status, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr, `rowlog: export: ${path.join(dir, 'train.csv')} exists already (export writes new files only; --out chooses another folder)\n`);
  t.same(fs.readFileSync(path.join(dir, 'train.csv')), before);
  t.notOk(fs.existsSync(path.join(dir, 'grad/layer1.csv')), 'nothing else was written either');
  t.equal(runCli(['export', dir, '--to', 'tensorboard']).status, 0);
  const again = runCli(['export', dir, '--to', 'tensorboard']);
  t.equal(again.status, 1);
  t.match(again.stderr, /^rowlog: export: .*events\.out\.tfevents\.\S+ exists already/);
});

t.test('the errors a user meets: exit 1 with one line, a bad --to exit 2', async (t) => {
  const dir = await makeRun(t);
  const empty = tmpdir(t);
  const cases: Array<[string[], number, RegExp]> = [
    [['export', dir, '--to', 'xml'], 2, /^rowlog: export: option '--to <format>' argument 'xml' is invalid\. must be one of parquet, csv, tensorboard, sqlite\.\n$/],
    [['export', dir], 2, /^rowlog: export: required option '--to <format>' not specified\n$/],
    [['export', dir, '--to', 'csv', '--table', 'nope'], 1, /^rowlog: export: table: .* has no table 'nope' \(it has grad\/layer1, train\)\n$/],
    [['export', empty, '--to', 'csv'], 1, /^rowlog: export: .* is not a run folder \(no run\.json, status\.json or table file\)\n$/],
  ];
  for (const [args, status, stderr] of cases) {
    const r = runCli(args);
    t.equal(r.status, status, args.join(' '));
    t.match(r.stderr, stderr);
  }
});

t.test('bad lines and a table only in CSV: skipped and said; the library call reports counts', async (t) => {
  const dir = await makeRun(t);
  fs.appendFileSync(path.join(dir, 'extra.jsonl'), '{"$step":0,"$time":1,"$level":20,"x":1}\nnot json\n{"$step":1,"$time":2,"$level":20,"x":2}\n');
  fs.writeFileSync(path.join(dir, 'only.csv'), '$step,$time,$level,y\n0,1,20,5\n');
  const r = runCli(['export', dir, '--to', 'csv', '--table', 'extra', '--table', 'only']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'extra: 2 rows from extra.jsonl → csv (1 bad lines skipped)\n', 'a table that is CSV already is not exported to CSV');
  const seen: number[] = [];
  const out = path.join(tmpdir(t), 'o');
  const done = await exportRun(dir, { to: 'tensorboard', out, tables: ['only', 'extra'], onProgress: (b) => seen.push(b) });
  t.same(
    done.map((d) => [d.name, d.rows, d.badLines, d.from]),
    [
      ['only', 1, 0, 'only.csv'],
      ['extra', 2, 1, 'extra.jsonl'],
    ],
  );
  t.ok(seen.length > 0 && seen.every((b, i) => i === 0 || b >= (seen[i - 1] as number)), 'progress grows');
  await t.rejects(exportRun(dir, { to: 'xml' as ExportFormat }), { code: 'ERR_INVALID_OPTION' });
});

t.test('rows the sink cannot store (a full disk) fail the export: exit 1, after the warning with the count', async (t) => {
  const full = fullTmpfs(t, '256k');
  if (full === undefined) return;
  const dir = await makeRun(t);
  const r = runCli(['export', dir, '--to', 'parquet', '--out', full.mnt]);
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /W_ROWS_DROPPED/);
  t.match(r.stderr, /rowlog: export: some rows could not be written into .* \(see the W_ROWS_DROPPED warning above\)\n$/);
});
