/**
 * `npm run bench`: rowlog's write path against a baseline measured in the same run, on the
 * same rows. Each scenario runs in its own child process, so its peak RSS is its own.
 *
 * - baseline: what a careful hand-written logger does with a 30-number row: JSON.stringify,
 *   batch 64 KiB, fs.writeSync;
 * - rowlog: the same rows through `createLogger({dir})` (summarize, route, jsonlSink);
 * - rowlog + tensor: the same, plus a 1e6-element Float32Array in every 100th row (summarized
 *   to mean/min/max/std; the baseline has no counterpart, as JSON of 1e6 floats is no option).
 *
 * Prints rows/s, the ratio to the baseline, the p50/p99 of one `log.row()` call and peak RSS.
 * Targets live in the issues; this prints numbers and asserts only that no row was lost.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../lib/logger.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 300_000);

interface Result {
  rate: number;
  p50?: number;
  p99?: number;
  rssMB: number;
}

function makeRow(i: number, tensor: Float32Array | undefined): Record<string, unknown> {
  const row: Record<string, unknown> = { epoch: Math.floor(i / 1000), loss: 1 / (i + 1), lr: 1e-3 };
  for (let k = 0; k < 27; k++) row[`m${k}`] = Math.sqrt(i + k) * 0.001;
  if (tensor !== undefined && i % 100 === 0) row.weights = tensor;
  return row;
}

/** Lines in `file`, read in 1 MiB chunks (reading it whole would dominate peak RSS). */
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

function baseline(dir: string): Result {
  const file = path.join(dir, 'train.jsonl');
  const fd = fs.openSync(file, 'w');
  const t0 = performance.now();
  let batch = '';
  for (let i = 0; i < ROWS; i++) {
    batch += `${JSON.stringify({ $step: i, $time: Date.now(), $level: 20, ...makeRow(i, undefined) })}\n`;
    if (batch.length >= 65536) {
      fs.writeSync(fd, batch);
      batch = '';
    }
  }
  fs.writeSync(fd, batch);
  fs.closeSync(fd);
  const rate = ROWS / ((performance.now() - t0) / 1000);
  if (countLines(file) !== ROWS) throw new Error('baseline lost rows');
  return { rate, rssMB: process.resourceUsage().maxRSS / 1024 };
}

async function rowlog(dir: string, withTensor: boolean): Promise<Result> {
  const tensor = withTensor ? new Float32Array(1_000_000).map((_, i) => Math.sin(i)) : undefined;
  const log = createLogger({ dir, exitHooks: false });
  const samples = new Float64Array(ROWS);
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) {
    const row = makeRow(i, tensor);
    const a = performance.now();
    log.row('train', row);
    samples[i] = performance.now() - a;
  }
  await log.close();
  const rate = ROWS / ((performance.now() - t0) / 1000);
  const lines = countLines(path.join(dir, 'train.jsonl'));
  if (lines !== ROWS) throw new Error(`lost rows: ${lines} of ${ROWS} on disk`);
  samples.sort();
  const pct = (q: number) => (samples[Math.floor(ROWS * q)] ?? 0) * 1000;
  return { rate, p50: pct(0.5), p99: pct(0.99), rssMB: process.resourceUsage().maxRSS / 1024 };
}

const SCENARIOS: Record<string, (dir: string) => Result | Promise<Result>> = {
  baseline,
  rowlog: (dir) => rowlog(dir, false),
  'rowlog+tensor': (dir) => rowlog(dir, true),
};

const scenario = process.argv[2];
if (scenario !== undefined) {
  // Child: run one scenario, print its result as JSON.
  const run = SCENARIOS[scenario];
  if (run === undefined) throw new Error(`unknown scenario ${scenario}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-'));
  try {
    process.stdout.write(JSON.stringify(await run(dir)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
} else {
  const self = fileURLToPath(import.meta.url);
  const measure = (name: string): Result => JSON.parse(execFileSync(process.execPath, [self, name], { encoding: 'utf8' })) as Result;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
  console.log(`rowlog bench: ${ROWS.toLocaleString('en-US')} rows of 30 numbers, ${os.cpus().length} cores, node ${process.version}`);
  const base = measure('baseline');
  console.log(`  baseline JSON.stringify + 64 KiB writeSync   ${fmt(base.rate)} rows/s                              peak RSS ${base.rssMB.toFixed(0)} MB`);
  for (const name of ['rowlog', 'rowlog+tensor']) {
    const r = measure(name);
    const label = name === 'rowlog' ? 'rowlog log.row() → .jsonl' : 'rowlog, + 1e6 floats every 100th row';
    console.log(
      `  ${label.padEnd(43)} ${fmt(r.rate)} rows/s  ${(r.rate / base.rate).toFixed(2)}× baseline  ` +
        `p50 ${(r.p50 ?? 0).toFixed(1)} µs  p99 ${(r.p99 ?? 0).toFixed(1)} µs  peak RSS ${r.rssMB.toFixed(0)} MB`,
    );
  }
}
