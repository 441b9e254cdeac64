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
 * - rowlog 2M: two million rows in a tight loop with the default sinks, for peak RSS; and the same
 *   rows at INFO, which the default TensorBoard sink gets too, with and without it.
 *
 * Prints rows/s, ratios, p50/p99 of one `log.row()` call (p99 also over the rows without the
 * tensor) next to the same percentiles of `JSON.stringify` of the same rows timed the same way in
 * the same process (absolute µs differ ~2× between machines, the ratios do not), peak RSS, and
 * gzip level 1 vs 6. Peak RSS is the child's own `VmHWM` (`/proc/self/status`): on Linux a
 * child's `ru_maxrss` starts at its parent's RSS at fork, which inflated every figure (issue 9).
 * Asserts only that no row was lost; the targets are in the issues and the README.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import pino from 'pino';
import { DEFAULT_GZIP_LEVEL } from '../lib/format/bgzf.js';
import { readWholeLines } from '../lib/io/bgzf-file.js';
import { createLogger } from '../lib/log/logger.js';
import { makeRow, peakRssMb, TENSOR } from './rows.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const BIG_ROWS = Number(process.env.BENCH_BIG_ROWS ?? 2_000_000);

interface Result {
  rows: number;
  rate: number;
  /**
   * CPU ms of the whole process (every thread: rowlog's gzip pool included) over the timed part.
   * With 2 cores shared by other jobs, rows/s of scenarios run one after the other swing by 2×;
   * CPU per row does not, so it is printed beside them.
   */
  cpuMs?: number;
  /** `log.row()` µs: all rows, and p99 of the rows without the tensor. */
  p50?: number;
  p99?: number;
  p99plain?: number;
  /** `JSON.stringify` µs of the same rows, timed the same way in the same process. */
  s50?: number;
  s99?: number;
  s99plain?: number;
  rssMB: number;
  bytes?: number;
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

/** CPU ms used by every thread of this process since `c0`. */
function cpuSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** p50, p99 of all samples (ms → µs), and p99 of those whose row has no tensor (i % 100 ≠ 0). */
function percentiles(samples: Float64Array, withTensor: boolean): { p50: number; p99: number; p99plain: number } {
  const plain = withTensor ? samples.filter((_, i) => i % 100 !== 0) : samples.slice();
  const all = samples.slice().sort();
  plain.sort();
  const at = (a: Float64Array, q: number) => (a[Math.floor(a.length * q)] ?? 0) * 1000;
  return { p50: at(all, 0.5), p99: at(all, 0.99), p99plain: at(plain, 0.99) };
}

function baseline(dir: string): Result {
  const file = path.join(dir, 'train.jsonl.gz');
  const fd = fs.openSync(file, 'w');
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let batch = '';
  for (let i = 0; i < ROWS; i++) {
    batch += `${JSON.stringify({ $step: i, $time: Date.now(), $level: 5, ...handSummary(makeRow(i, true)) })}\n`;
    if (batch.length >= 65536) {
      fs.writeSync(fd, zlib.gzipSync(batch, { level: DEFAULT_GZIP_LEVEL }));
      batch = '';
    }
  }
  fs.writeSync(fd, zlib.gzipSync(batch, { level: DEFAULT_GZIP_LEVEL }));
  fs.closeSync(fd);
  const rate = ROWS / ((performance.now() - t0) / 1000);
  const cpuMs = cpuSince(c0);
  if (countGzLines(file) !== ROWS) throw new Error('baseline lost rows');
  return { rows: ROWS, rate, cpuMs, rssMB: peakRssMb() };
}

async function pinoRun(dir: string): Promise<Result> {
  const file = path.join(dir, 'train.log');
  const dest = pino.destination({ dest: file, sync: false });
  await new Promise((resolve) => dest.once('ready', resolve));
  const log = pino({ level: 'trace' }, dest);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) log.trace(handSummary(makeRow(i, true)));
  await new Promise((resolve) => {
    dest.once('close', resolve);
    dest.end();
  });
  const rate = ROWS / ((performance.now() - t0) / 1000);
  const cpuMs = cpuSince(c0);
  if (countLines(file) !== ROWS) throw new Error('pino lost rows');
  return { rows: ROWS, rate, cpuMs, rssMB: peakRssMb() };
}

async function rowlogRun(dir: string, rows: number, withTensor: boolean, latency: boolean, level: 'TRACE' | 'INFO' = 'TRACE', tensorboard = true): Promise<Result> {
  // Rows at INFO reach the default TensorBoard sink too (and the console, kept off stdout by the bench).
  const log = createLogger({ dir, exitHooks: false, tensorboard, ...(level === 'INFO' ? { console: false } : {}) });
  const samples = latency ? new Float64Array(rows) : undefined;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < rows; i++) {
    const row = makeRow(i, withTensor);
    if (samples) {
      const a = performance.now();
      log.row('train', row, { level });
      samples[i] = performance.now() - a;
    } else {
      log.row('train', row, { level });
    }
  }
  await log.close();
  const rate = rows / ((performance.now() - t0) / 1000);
  const cpuMs = cpuSince(c0);
  const rssMB = peakRssMb();
  const gz = countGzLines(path.join(dir, 'train.jsonl.gz'));
  const csvFile = path.join(dir, 'train.csv');
  const csv = fs.existsSync(csvFile) ? countLines(csvFile) - 1 : rows;
  if (gz !== rows || csv !== rows) throw new Error(`lost rows: ${gz} in .jsonl.gz, ${csv} in .csv, of ${rows}`);
  const result: Result = { rows, rate, cpuMs, rssMB, bytes: fs.statSync(path.join(dir, 'train.jsonl.gz')).size };
  if (samples) {
    Object.assign(result, percentiles(samples, withTensor));
    // The yardstick: JSON.stringify of the same rows (the tensor reduced by hand beforehand, as
    // the baseline does), timed the same way in this process, after the logger is closed.
    // The tensor is the same every time: its hand summary is made once, not timed.
    const stats = handSummary({ weights: TENSOR });
    let sink = 0;
    for (let i = 0; i < rows; i++) {
      const row = withTensor && i % 100 === 0 ? { ...makeRow(i, false), ...stats } : makeRow(i, false);
      const a = performance.now();
      sink += JSON.stringify(row).length;
      samples[i] = performance.now() - a;
    }
    if (sink === 0) throw new Error('empty JSON');
    const s = percentiles(samples, withTensor);
    Object.assign(result, { s50: s.p50, s99: s.p99, s99plain: s.p99plain });
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
  return { rows: 50_000, rate: 0, rssMB: peakRssMb(), l1ms: a.ms, l6ms: b.ms, l1: a.size, l6: b.size };
}

const SCENARIOS: Record<string, (dir: string) => Result | Promise<Result>> = {
  baseline,
  pino: pinoRun,
  rowlog: (dir) => rowlogRun(dir, ROWS, true, true),
  'rowlog-2m': (dir) => rowlogRun(dir, BIG_ROWS, false, false),
  'rowlog-2m-info': (dir) => rowlogRun(dir, BIG_ROWS, false, false, 'INFO'),
  'rowlog-2m-info-no-tb': (dir) => rowlogRun(dir, BIG_ROWS, false, false, 'INFO', false),
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
  const cpu = (x: Result) => ((x.cpuMs ?? 0) * 1000) / x.rows;
  console.log(
    `  CPU per row (all threads)                    baseline ${cpu(base).toFixed(1)} µs  pino ${cpu(pinoR).toFixed(1)} µs  rowlog ${cpu(r).toFixed(1)} µs: ` +
      `${(cpu(base) / cpu(r)).toFixed(2)}× less than baseline, ${(cpu(pinoR) / cpu(r)).toFixed(2)}× less than pino`,
  );
  const us = (n: number | undefined) => `${(n ?? 0).toFixed(1)} µs`;
  const x = (a: number | undefined, b: number | undefined) => `${((a ?? 0) / (b ?? 1)).toFixed(2)}×`;
  console.log(`  log.row() latency                            p50 ${us(r.p50)}   p99 ${us(r.p99)}   p99 without tensor ${us(r.p99plain)}`);
  console.log(`  JSON.stringify of the same rows              p50 ${us(r.s50)}   p99 ${us(r.s99)}   p99 without tensor ${us(r.s99plain)}`);
  console.log(
    `  log.row() / stringify                        p50 ${x(r.p50, r.s50)} (target ≤ 2×)   ` +
      `p99 without tensor ${x(r.p99plain, r.s99plain)} of stringify's p99, ${x(r.p99plain, r.s50)} of its p50 (target ≤ 10×)`,
  );
  const big = measure('rowlog-2m');
  line(`rowlog defaults, ${big.rows.toLocaleString('en-US')} rows, tight loop`, big, 'every row in .jsonl.gz and .csv  ');
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  console.log(
    `  targets (issue 9): throughput ≥ 2.5× baseline ${verdict(r.rate / base.rate >= 2.5)}; ` +
      `p50 ≤ 2× stringify ${verdict((r.p50 ?? 0) <= 2 * (r.s50 ?? 0))}; ` +
      `p99 without tensor ≤ 10× stringify ${verdict((r.p99plain ?? 0) <= 10 * (r.s99plain ?? 0))}; ` +
      `${big.rows.toLocaleString('en-US')}-row peak RSS < 150 MB ${verdict(big.rssMB < 150)}`,
  );
  // The same rows at INFO, which the default TensorBoard sink gets too (issue 12: in the defaults
  // provided the targets hold), against the defaults without it.
  const info = measure('rowlog-2m-info');
  const noTb = measure('rowlog-2m-info-no-tb');
  line(`rows at INFO: defaults with TensorBoard`, info, `${(info.rate / noTb.rate).toFixed(2)}× without it  `);
  line(`rows at INFO: defaults, tensorboard: false`, noTb);
  console.log(`  target (issue 9) with TensorBoard getting every row: ${big.rows.toLocaleString('en-US')}-row peak RSS < 150 MB ${verdict(info.rssMB < 150)}`);
  const lv = measure('levels') as ReturnType<typeof levels>;
  console.log(
    `  gzip level 1 vs 6 on 50,000 rows (${(lv.l1 / 1e6).toFixed(1)} vs ${(lv.l6 / 1e6).toFixed(1)} MB): ` +
      `level 1 ${(lv.l6ms / lv.l1ms).toFixed(1)}× faster, ${((lv.l1 / lv.l6 - 1) * 100).toFixed(0)} % larger`,
  );
}
