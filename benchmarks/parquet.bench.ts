/**
 * parquetSink alone (run by `npm run bench`): the write bench's rows (benchmarks/rows.ts, 30
 * numbers and every 100th row a 1e6-float tensor summarized), logged through createLogger into a
 * run folder with only the Parquet sink, SNAPPY and UNCOMPRESSED, next to the JSONL sink alone;
 * then the same rows without the tensor (its summary costs every sink the same). Prints rows/s from the first
 * `log.row()` to `close()` resolved (every part on disk), the dataset's size, and the main
 * thread's share: µs per row of the part builder (what the sink's `write(batch)` does per row)
 * and of `log.row()` (p50). Asserts with DuckDB that every row is in the dataset.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { FlatRow } from '../lib/core/entry.js';
import { FIRST_ROWS, PartBuilder } from '../lib/format/parquet-part.js';
import { createLogger } from '../lib/log/logger.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { parquetSink } from '../sinks/parquet.js';
import type { ParquetSinkOptions } from '../sinks/parquet.js';
import { summarizeRow } from '../transforms/summarize.js';
import { makeRow } from './rows.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile() && e.name.endsWith('.parquet')) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  return n;
}

async function count(dir: string): Promise<number> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  const rows = (await c.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${dir}/train.parquet/*.parquet', union_by_name = true)`)).getRowObjects();
  c.closeSync();
  return Number(rows[0]?.n);
}

/** `parquet` with these options, or the JSONL sink alone (`'jsonl'`, the figure to compare with). */
async function scenario(opts: Omit<ParquetSinkOptions, 'dir'> | 'jsonl', withTensor = true): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-pq-'));
  const rows = Array.from({ length: 1000 }, (_, i) => makeRow(i, withTensor));
  const times = new Float64Array(ROWS);
  const sink = opts === 'jsonl' ? jsonlSink({ dir, ext: '.jsonl.gz' }) : parquetSink({ dir, ...opts });
  const log = createLogger({ dir, sinks: [sink] });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) {
    const row = i % 1000 === 0 ? makeRow(i, withTensor) : (rows[i % 1000] as Record<string, unknown>);
    const a = performance.now();
    log.row('train', row, { step: i });
    times[i] = performance.now() - a;
    if (i % 4096 === 0) await new Promise((resolve) => setImmediate(resolve)); // a training loop yields now and then
  }
  await log.close();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  times.sort();
  let what: string;
  if (opts === 'jsonl') {
    what = `jsonl.gz alone: ${Math.round(ROWS / (ms / 1000)).toLocaleString('en')} rows/s, ${(fs.statSync(path.join(dir, 'train.jsonl.gz')).size / 1e6).toFixed(1)} MB`;
  } else {
    const n = await count(dir);
    if (n !== ROWS) throw new Error(`DuckDB counts ${n} rows, ${ROWS} were logged`);
    const parts = fs.readdirSync(path.join(dir, 'train.parquet')).length;
    what = `parquet ${opts.compression ?? 'SNAPPY'}${opts.partRows === undefined ? '' : ` partRows ${opts.partRows}`}: ${Math.round(ROWS / (ms / 1000)).toLocaleString('en')} rows/s, ${(folderBytes(dir) / 1e6).toFixed(1)} MB in ${parts} parts`;
  }
  console.log(
    `${what}${withTensor ? '' : ' (rows without the tensor)'}, CPU ${(((cpu.user + cpu.system) / 1000) / ROWS * 1000).toFixed(1)} µs/row (all threads), ` +
      `log.row() p50 ${((times[ROWS >> 1] as number) * 1000).toFixed(2)} µs p99 ${((times[Math.floor(ROWS * 0.99)] as number) * 1000).toFixed(2)} µs`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The main thread's work per row in the sink's write(batch): appending to the part's columns, and closing parts. */
function builderCost(): void {
  const data: FlatRow[] = Array.from({ length: 1000 }, (_, i) => summarizeRow(makeRow(i)));
  const partRows = 50_000;
  let part = new PartBuilder('train', FIRST_ROWS, partRows);
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) {
    part.add({ table: 'train', level: 20, step: i, time: Date.now(), data: data[i % 1000] as FlatRow });
    if (part.full) {
      const next = part.next();
      part.close();
      part = next;
    }
  }
  const us = ((performance.now() - t0) * 1000) / ROWS;
  console.log(`parquet main thread: ${us.toFixed(2)} µs per row in write(batch) (the part builder, parts of ${partRows} rows of ${Object.keys(data[0] as FlatRow).length} keys)`);
}

builderCost();
await scenario('jsonl');
await scenario({});
await scenario({ compression: 'UNCOMPRESSED' });
await scenario({ partRows: 10_000 });
// The sink's own pace: the same rows without the 1e6-float tensor (whose summary costs every sink the same).
await scenario('jsonl', false);
await scenario({}, false);
await scenario({ compression: 'UNCOMPRESSED' }, false);
