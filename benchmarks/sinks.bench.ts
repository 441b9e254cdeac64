/**
 * The sinks that are not lines of text (issue 12 §4; run by `npm run bench`): each sink alone on
 * the write bench's rows (benchmarks/rows.ts: 30 numbers, a 1e6-float tensor every 100th row,
 * summarized by the logger), rows/s next to the blocked-gzip JSONL sink's measured in the same
 * run, and the size of what each leaves for the run; the same without the tensor, whose summary
 * (~1.2 ms a tensor, in `log.row()`, whatever the sink) caps every sink near 80k rows/s; then `log.row()` p50 with the defaults
 * against the defaults with TensorBoard, Parquet and SQLite all on. Rows are at INFO so every
 * sink gets every row. Each scenario runs in its own child process; rows/s counts from the first
 * row to `close()` resolved (every row stored), and each scenario checks that every row is there
 * with the format's reader (TFRecord framing walked, DuckDB for Parquet, SQLite itself). The
 * p50 pair is measured three times, interleaved, and the medians compared: single figures of
 * ~5 µs swing by more than the 1 µs budget on a shared 2-core machine. SQLite is left out with a
 * line where its optional peer better-sqlite3 is not installed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { createLogger } from '../lib/log/logger.js';
import type { LoggerOptions } from '../lib/log/logger.js';
import type { Writable } from 'node:stream';
import { jsonlSink } from '../sinks/jsonl.js';
import { parquetSink } from '../sinks/parquet.js';
import { sqliteSink } from '../sinks/sqlite.js';
import { tensorboardSink } from '../sinks/tensorboard.js';
import { makeRow, peakRssMb } from './rows.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const P50_ROWS = Number(process.env.BENCH_P50_ROWS ?? 100_000);

interface Result {
  rate: number;
  bytes: number;
  rssMB: number;
  p50?: number;
}

/** Bytes of every file under `dir`. */
function du(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  return n;
}

/** Records of the events files in `dir` (TFRecord lengths walked), minus each file's file_version record. */
function tfRows(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.startsWith('events.out.tfevents.'))) {
    const buf = fs.readFileSync(path.join(dir, f));
    for (let at = 0; at + 12 <= buf.length; at += 16 + Number(buf.readBigUInt64LE(at))) n++;
    n--;
  }
  return n;
}

async function duckCount(dir: string): Promise<number> {
  const c = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const r = (await c.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${path.join(dir, 'train.parquet')}/*.parquet', union_by_name = true)`)).getRowObjects();
    return Number(r[0]?.n);
  } finally {
    c.closeSync();
  }
}

function sqliteCount(dir: string): number {
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string, o: object) => { prepare(s: string): { get(): { n: number } }; close(): void };
  const db = new Database(path.join(dir, 'run.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) AS n FROM "train"').get().n;
  } finally {
    db.close();
  }
}

const SINKS: Record<string, { make: (dir: string) => Writable; count: (dir: string) => number | Promise<number> }> = {
  jsonl: { make: (dir) => jsonlSink({ dir, ext: '.jsonl.gz' }), count: () => ROWS },
  tensorboard: { make: (dir) => tensorboardSink({ dir }), count: tfRows },
  parquet: { make: (dir) => parquetSink({ dir }), count: duckCount },
  'parquet-uncompressed': { make: (dir) => parquetSink({ dir, compression: 'UNCOMPRESSED' }), count: duckCount },
  sqlite: { make: (dir) => sqliteSink({ dir }), count: sqliteCount },
};

async function alone(dir: string, which: string, withTensor: boolean): Promise<Result> {
  const s = SINKS[which];
  if (s === undefined) throw new Error(`unknown sink ${which}`);
  const log = createLogger({ dir, sinks: [s.make(dir)], exitHooks: false });
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) log.row('train', makeRow(i, withTensor));
  await log.close();
  const rate = ROWS / ((performance.now() - t0) / 1000);
  const n = await s.count(dir);
  if (n !== ROWS) throw new Error(`${which}: ${n} rows stored of ${ROWS}`);
  return { rate, bytes: du(dir), rssMB: peakRssMb() };
}

async function p50(dir: string, all: boolean): Promise<Result> {
  const opts: LoggerOptions = all ? { dir, console: false, exitHooks: false, parquet: true, sqlite: true } : { dir, console: false, exitHooks: false, tensorboard: false };
  const log = createLogger(opts);
  const samples = new Float64Array(P50_ROWS);
  for (let i = 0; i < P50_ROWS; i++) {
    const row = makeRow(i, false);
    const a = performance.now();
    log.row('train', row);
    samples[i] = performance.now() - a;
  }
  await log.close();
  samples.sort();
  return { rate: 0, bytes: du(dir), rssMB: peakRssMb(), p50: (samples[Math.floor(P50_ROWS / 2)] ?? 0) * 1000 };
}

const scenario = process.argv[2];
if (scenario !== undefined) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-'));
  try {
    const plain = scenario.endsWith(':plain');
    const name = plain ? scenario.slice(0, -':plain'.length) : scenario;
    const result = name === 'p50-defaults' ? await p50(dir, false) : name === 'p50-all' ? await p50(dir, true) : await alone(dir, name, !plain);
    fs.writeSync(3, JSON.stringify(result));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
} else {
  const self = fileURLToPath(import.meta.url);
  const measure = (name: string): Result | undefined => {
    const r = spawnSync(process.execPath, [self, name], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) {
      if (/ERR_MISSING_DEPENDENCY/.test(r.stderr)) return undefined;
      process.stderr.write(r.stderr);
      throw new Error(`bench scenario ${name} failed (exit ${String(r.status)})`);
    }
    return JSON.parse(String(r.output[3])) as Result;
  };
  const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`.padStart(9);
  console.log(`rowlog sinks bench: ${ROWS.toLocaleString('en-US')} rows of 30 numbers + a 1e6-float tensor every 100th row, each sink alone; ${os.cpus().length} cores, node ${process.version}`);
  const jsonl = measure('jsonl');
  const jsonlPlain = measure('jsonl:plain');
  if (jsonl === undefined || jsonlPlain === undefined) throw new Error('the jsonl scenario failed');
  console.log(
    `  ${'jsonlSink (.jsonl.gz)'.padEnd(30)} ${fmt(jsonl.rate)} rows/s              ${mb(jsonl.bytes)}  peak RSS ${jsonl.rssMB.toFixed(0)} MB   without the tensor ${fmt(jsonlPlain.rate)} rows/s`,
  );
  const targets: string[] = [];
  for (const [name, label, target] of [
    ['tensorboard', 'tensorboardSink', 50_000],
    ['parquet', 'parquetSink (SNAPPY)', 50_000],
    ['parquet-uncompressed', 'parquetSink (UNCOMPRESSED)', 0],
    ['sqlite', 'sqliteSink (WAL)', 30_000],
  ] as const) {
    const r = measure(name);
    if (r === undefined) {
      console.log(`  ${label.padEnd(30)} not measured: its optional peer is not installed (npm install better-sqlite3@12)`);
      continue;
    }
    const p = measure(`${name}:plain`) ?? r;
    console.log(
      `  ${label.padEnd(30)} ${fmt(r.rate)} rows/s  ${(r.rate / jsonl.rate).toFixed(2)}× jsonl  ${mb(r.bytes)}  peak RSS ${r.rssMB.toFixed(0)} MB   without the tensor ${fmt(p.rate)} rows/s  ${(p.rate / jsonlPlain.rate).toFixed(2)}× jsonl`,
    );
    if (target > 0) {
      targets.push(
        `${name} ≥ ${target / 1000}k rows/s: ${r.rate >= target ? 'met' : 'NOT met'} on the write bench's rows (${(r.rate / 1000).toFixed(1)}k; jsonl ${(jsonl.rate / 1000).toFixed(1)}k), ` +
          `${p.rate >= target ? 'met' : 'NOT met'} without the tensor (${(p.rate / 1000).toFixed(1)}k)`,
      );
    }
  }
  const base: number[] = [];
  const all: number[] = [];
  let measured = true;
  for (let k = 0; k < 3; k++) {
    base.push(measure('p50-defaults')?.p50 ?? NaN);
    const a = measure('p50-all');
    if (a === undefined) measured = false;
    else all.push(a.p50 ?? NaN);
  }
  if (measured) {
    const d = median(all) - median(base);
    console.log(
      `  log.row() p50, rows at INFO: defaults without TensorBoard ${median(base).toFixed(2)} µs [${base.map((x) => x.toFixed(2)).join(', ')}], ` +
        `with TensorBoard + Parquet + SQLite ${median(all).toFixed(2)} µs [${all.map((x) => x.toFixed(2)).join(', ')}]: ${d >= 0 ? '+' : ''}${d.toFixed(2)} µs`,
    );
    targets.push(`p50 ≤ +1 µs with all three ${d <= 1 ? 'met' : 'NOT met'}`);
  } else console.log('  log.row() p50 with all three: not measured (better-sqlite3 is not installed)');
  console.log(`  targets (issue 12): ${targets.join('; ')}`);
}
