/**
 * Write path (run by `npm run bench`): rowlog's write path against baselines measured in the same run, on the same
 * rows: a realistic 30-number row, and in every 100th row a 1e6-element Float32Array that every
 * contender reduces to mean/min/max/std (rowlog with its summarizer, the others with a plain
 * hand-written loop, since JSON of 1e6 floats is no option for anyone). Each scenario runs in its
 * own child process, so its peak RSS is its own.
 *
 * - baseline: JSON.stringify, 64 KiB batches, zlib.gzipSync per batch, fs.writeSync (one thread);
 * - pino: pino's logger.info(row) into pino.destination(file), uncompressed;
 * - rowlog: createLogger({dir}) with its default sinks (blocked-gzip JSONL, CSV, console at
 *   INFO; rows at TRACE, as per-step rows are), every row verified on disk afterwards;
 * - rowlog 2M: two million rows in a tight loop with the default sinks, for peak RSS.
 *
 * Prints rows/s, ratios, p50/p99 of one `log.row()` call, peak RSS, and gzip level 1 vs 6.
 * Asserts only that no row was lost; the targets are in the issues and the README.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import pino from 'pino';
import { readWholeLines } from '../lib/bgzf.js';
import { createLogger } from '../lib/logger.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const BIG_ROWS = Number(process.env.BENCH_BIG_ROWS ?? 2_000_000);

interface Result {
  rows: number;
  rate: number;
  p50?: number;
  p99?: number;
  rssMB: number;
  bytes?: number;
}

const tensor = new Float32Array(1_000_000).map((_, i) => Math.sin(i));

/** Metric names, made once: real training code has literal keys, not new strings every row. */
const KEYS = Array.from({ length: 27 }, (_, k) => `m${k}`);

function makeRow(i: number, withTensor: boolean): Record<string, unknown> {
  const row: Record<string, unknown> = { epoch: Math.floor(i / 1000), loss: 1 / (i + 1), lr: 1e-3 };
  for (let k = 0; k < 27; k++) row[KEYS[k] as string] = Math.sqrt(i + k) * 0.001;
  if (withTensor && i % 100 === 0) row.weights = tensor;
  return row;
}

/** What a hand-written logger does with the tensor: one plain loop for the four numbers. */
function handSummary(row: Record<string, unknown>): Record<string, unknown> {
  const w = row.weights as Float32Array | undefined;
  if (w === undefined) return row;
  let sum = 0;
  let sq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of w) {
    sum += x;
    sq += x * x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const mean = sum / w.length;
  const { weights: _, ...rest } = row;
  return { ...rest, 'weights.mean': mean, 'weights.min': min, 'weights.max': max, 'weights.std': Math.sqrt(Math.max(0, sq / w.length - mean * mean)) };
}

/** Lines in a plain file, read in 1 MiB chunks (reading it whole would dominate peak RSS). */
function countLines(file: string): number {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let n = 0;
  for (let got = fs.readSync(fd, buf); got > 0; got = fs.readSync(fd, buf)) {
    for (let i = buf.indexOf(10); i !== -1 && i < got; i = buf.indexOf(10, i + 1)) n++;
  }
  fs.closeSync(fd);
  return n;
}

/** Lines in a gzip file, by streaming zcat's output through countLines' logic. */
function countGzLines(file: string): number {
  const out = execFileSync('sh', ['-c', `zcat '${file}' | wc -l`], { encoding: 'utf8' });
  return Number(out.trim());
}

const rss = () => process.resourceUsage().maxRSS / 1024;

function baseline(dir: string): Result {
  const file = path.join(dir, 'train.jsonl.gz');
  const fd = fs.openSync(file, 'w');
  const t0 = performance.now();
  let batch = '';
  for (let i = 0; i < ROWS; i++) {
    batch += `${JSON.stringify({ $step: i, $time: Date.now(), $level: 5, ...handSummary(makeRow(i, true)) })}\n`;
    if (batch.length >= 65536) {
      fs.writeSync(fd, zlib.gzipSync(batch, { level: 1 }));
      batch = '';
    }
  }
  fs.writeSync(fd, zlib.gzipSync(batch, { level: 1 }));
  fs.closeSync(fd);
  const rate = ROWS / ((performance.now() - t0) / 1000);
  if (countGzLines(file) !== ROWS) throw new Error('baseline lost rows');
  return { rows: ROWS, rate, rssMB: rss() };
}

async function pinoRun(dir: string): Promise<Result> {
  const file = path.join(dir, 'train.log');
  const dest = pino.destination({ dest: file, sync: false });
  await new Promise((resolve) => dest.once('ready', resolve));
  const log = pino({ level: 'trace' }, dest);
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) log.trace(handSummary(makeRow(i, true)));
  await new Promise((resolve) => {
    dest.once('close', resolve);
    dest.end();
  });
  const rate = ROWS / ((performance.now() - t0) / 1000);
  if (countLines(file) !== ROWS) throw new Error('pino lost rows');
  return { rows: ROWS, rate, rssMB: rss() };
}

async function rowlogRun(dir: string, rows: number, withTensor: boolean, latency: boolean): Promise<Result> {
  const log = createLogger({ dir, exitHooks: false });
  const samples = latency ? new Float64Array(rows) : undefined;
  const t0 = performance.now();
  for (let i = 0; i < rows; i++) {
    const row = makeRow(i, withTensor);
    if (samples) {
      const a = performance.now();
      log.row('train', row, { level: 'TRACE' });
      samples[i] = performance.now() - a;
    } else {
      log.row('train', row, { level: 'TRACE' });
    }
  }
  await log.close();
  const rate = rows / ((performance.now() - t0) / 1000);
  const rssMB = rss();
  const gz = countGzLines(path.join(dir, 'train.jsonl.gz'));
  const csvFile = path.join(dir, 'train.csv');
  const csv = fs.existsSync(csvFile) ? countLines(csvFile) - 1 : rows;
  if (gz !== rows || csv !== rows) throw new Error(`lost rows: ${gz} in .jsonl.gz, ${csv} in .csv, of ${rows}`);
  const result: Result = { rows, rate, rssMB, bytes: fs.statSync(path.join(dir, 'train.jsonl.gz')).size };
  if (samples) {
    samples.sort();
    result.p50 = (samples[Math.floor(rows * 0.5)] ?? 0) * 1000;
    result.p99 = (samples[Math.floor(rows * 0.99)] ?? 0) * 1000;
  }
  return result;
}

/** gzip level 1 vs 6 on the same JSONL text: time and size (for the README's gzipLevel note). */
function levels(): Result & { l1ms: number; l6ms: number; l1: number; l6: number } {
  let text = '';
  for (let i = 0; i < 50_000; i++) text += `${JSON.stringify({ $step: i, $time: 1_700_000_000_000 + i, $level: 5, ...handSummary(makeRow(i, false)) })}\n`;
  const buf = Buffer.from(text);
  const time = (level: number) => {
    const t0 = performance.now();
    let size = 0;
    for (let off = 0; off < buf.length; off += 65280) size += zlib.deflateRawSync(buf.subarray(off, off + 65280), { level }).length + 26;
    return { ms: performance.now() - t0, size };
  };
  time(1);
  const a = time(1);
  const b = time(6);
  return { rows: 50_000, rate: 0, rssMB: rss(), l1ms: a.ms, l6ms: b.ms, l1: a.size, l6: b.size };
}

const SCENARIOS: Record<string, (dir: string) => Result | Promise<Result>> = {
  baseline,
  pino: pinoRun,
  rowlog: (dir) => rowlogRun(dir, ROWS, true, true),
  'rowlog-2m': (dir) => rowlogRun(dir, BIG_ROWS, false, false),
  levels: () => levels(),
};

const scenario = process.argv[2];
if (scenario !== undefined) {
  const run = SCENARIOS[scenario];
  if (run === undefined) throw new Error(`unknown scenario ${scenario}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-'));
  try {
    const result = await run(dir);
    fs.writeSync(3, JSON.stringify(result)); // fd 3: stdout stays free for the console sink
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
} else {
  const self = fileURLToPath(import.meta.url);
  const measure = (name: string): Result => {
    const r = spawnSync(process.execPath, [self, name], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
    if (r.status !== 0) throw new Error(`bench scenario ${name} failed (exit ${String(r.status)})`);
    return JSON.parse(String(r.output[3])) as Result;
  };
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
  const line = (label: string, r: Result, extra = '') =>
    console.log(`  ${label.padEnd(44)} ${fmt(r.rate)} rows/s  ${extra}peak RSS ${r.rssMB.toFixed(0)} MB`);
  console.log(`rowlog bench: ${ROWS.toLocaleString('en-US')} rows of 30 numbers + a 1e6-float tensor every 100th row; ${os.cpus().length} cores, node ${process.version}`);
  const base = measure('baseline');
  const pinoR = measure('pino');
  const r = measure('rowlog');
  line('baseline: JSON.stringify + gzipSync/64 KiB', base);
  line('pino → plain file (uncompressed)', pinoR);
  line('rowlog defaults (.jsonl.gz + .csv + console)', r, `${(r.rate / base.rate).toFixed(2)}× baseline  ${(r.rate / pinoR.rate).toFixed(2)}× pino  `);
  console.log(`  log.row() latency                            p50 ${(r.p50 ?? 0).toFixed(1)} µs   p99 ${(r.p99 ?? 0).toFixed(1)} µs`);
  const big = measure('rowlog-2m');
  line(`rowlog defaults, ${big.rows.toLocaleString('en-US')} rows, tight loop`, big, 'every row in .jsonl.gz and .csv  ');
  const lv = measure('levels') as ReturnType<typeof levels>;
  console.log(
    `  gzip level 1 vs 6 on 50,000 rows (${(lv.l1 / 1e6).toFixed(1)} vs ${(lv.l6 / 1e6).toFixed(1)} MB): ` +
      `level 1 ${(lv.l6ms / lv.l1ms).toFixed(1)}× faster, ${((lv.l1 / lv.l6 - 1) * 100).toFixed(0)} % larger`,
  );
}
