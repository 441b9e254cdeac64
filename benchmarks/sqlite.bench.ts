/**
 * sqliteSink (run by `npm run bench`; issue 12 §4): the SQLite sink alone on the write bench's rows
 * (30 numbers, a 1e6-float tensor every 100th row summarized by the logger) next to the JSONL
 * sink alone (`<table>.jsonl.gz`, as the defaults write it), each in its own child process.
 * rows/s is measured over the loop and `log.close()` (every row in the file), the loop yielding
 * to the event loop every 100 rows as a training step that awaits anything does. Also: the
 * main thread's µs per row spent posting (turning Entries into columns, and the postMessage:
 * the structured clone of the strings, the transfer of the Float64Arrays), the file's size, and
 * that the database holds every row. Skipped with a line when better-sqlite3 is not installed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { MessageChannel } from 'node:worker_threads';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { createLogger } from '../lib/log/logger.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { sqliteSink, toColumns } from '../sinks/sqlite.js';
import { makeRow } from './rows.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const self = fileURLToPath(import.meta.url);

interface Result {
  rate: number;
  bytes: number;
  rows: number;
}

/** One scenario, in this (child) process. */
async function scenario(kind: 'jsonl' | 'sqlite', dir: string): Promise<Result> {
  const sink = kind === 'jsonl' ? jsonlSink({ dir, ext: '.jsonl.gz' }) : sqliteSink({ dir });
  const log = createLogger({ dir, sinks: [sink] });
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) {
    log.row('main', makeRow(i), { level: 'TRACE' });
    if (i % 100 === 99) await yieldLoop();
  }
  await log.close();
  const rate = ROWS / ((performance.now() - t0) / 1000);
  const file = path.join(dir, kind === 'jsonl' ? 'main.jsonl.gz' : 'run.sqlite');
  let rows = NaN;
  if (kind === 'sqlite') {
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => { prepare(s: string): { get(): { n: number } } };
    rows = new Database(file).prepare('SELECT count(*) AS n FROM main').get().n;
  }
  return { rate, bytes: fs.statSync(file).size, rows };
}

/** The main thread's cost of posting: Entries → columns → postMessage, per row (µs). */
async function postingCost(): Promise<{ columns: number; post: number }> {
  const entries: Array<Entry<FlatRow>> = [];
  const keep = new Writable({
    objectMode: true,
    write: (e: Entry<FlatRow>, _enc, cb) => {
      entries.push(e);
      cb();
    },
  });
  const log = createLogger({ sinks: [keep], exitHooks: false });
  for (let i = 0; i < 50_000; i++) log.row('main', makeRow(i), { level: 'TRACE' });
  await log.close();
  const { port1, port2 } = new MessageChannel();
  port2.on('message', () => undefined);
  let columns = 0;
  let post = 0;
  for (let rep = 0; rep < 3; rep++) {
    for (let b = 0; b < entries.length; b += 4096) {
      const batch = entries.slice(b, b + 4096);
      const a = performance.now();
      const t = toColumns('main', batch);
      const m = performance.now();
      port1.postMessage({ kind: 'rows', tables: [t] }, [t.meta.buffer as ArrayBuffer, ...t.columns.flatMap((c) => (c instanceof Float64Array ? [c.buffer as ArrayBuffer] : []))]);
      post += performance.now() - m;
      columns += m - a;
    }
  }
  port1.close();
  const n = entries.length * 3;
  return { columns: (columns * 1000) / n, post: (post * 1000) / n };
}

if (process.argv[2] === 'child') {
  const kind = process.argv[3] as 'jsonl' | 'sqlite';
  const out = kind === 'jsonl' || kind === 'sqlite' ? await scenario(kind, process.argv[4] as string) : await postingCost();
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  let installed = true;
  try {
    createRequire(import.meta.url).resolve('better-sqlite3');
  } catch {
    installed = false;
  }
  if (!installed) console.log('rowlog sqlite bench: skipped (npm install better-sqlite3@12 to run it)');
  else {
    const child = (...args: string[]): Record<string, number> => {
      const r = spawnSync(process.execPath, [self, 'child', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new Error(`sqlite bench child ${args[0]} failed (${r.status})`);
      return JSON.parse(r.stdout) as Record<string, number>;
    };
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-sqlite-bench-'));
    try {
      const jsonl = child('jsonl', path.join(tmp, 'jsonl'));
      const sqlite = child('sqlite', path.join(tmp, 'sqlite'));
      const cost = child('post');
      const fmt = (n: number | undefined) => Math.round(n ?? NaN).toLocaleString('en-US');
      const mb = (n: number | undefined) => ((n ?? NaN) / 1e6).toFixed(1);
      console.log(`rowlog sqlite bench: ${ROWS.toLocaleString('en-US')} rows (write bench rows), one sink alone, createLogger({dir, sinks})`);
      console.log(`  jsonlSink (.jsonl.gz)   ${fmt(jsonl.rate).padStart(9)} rows/s   ${mb(jsonl.bytes)} MB`);
      console.log(`  sqliteSink (WAL)        ${fmt(sqlite.rate).padStart(9)} rows/s   ${mb(sqlite.bytes)} MB   (target ≥ 30,000 rows/s)`);
      console.log(`  main thread, posting    ${(cost.columns ?? NaN).toFixed(2)} µs/row to columns + ${(cost.post ?? NaN).toFixed(2)} µs/row postMessage`);
      if (sqlite.rows !== ROWS) throw new Error(`run.sqlite holds ${sqlite.rows} rows, not ${ROWS}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}
