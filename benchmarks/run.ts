/**
 * `npm run bench`: rowlog's write path against baselines measured in the same run, on the
 * same rows (a realistic 30-number row; every 100th row also carries a 1e6-element
 * Float32Array). Prints rows/s, the ratio to each baseline, the p50/p99 of one `log.row()`
 * call, and peak RSS. Targets live in the issues; this prints the numbers, it asserts nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../lib/logger.js';
import { summarizeRow } from '../transforms/summarize.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const big = new Float32Array(1_000_000).map((_, i) => Math.sin(i));

function makeRow(i: number): Record<string, unknown> {
  const row: Record<string, unknown> = { epoch: Math.floor(i / 1000), loss: 1 / (i + 1), lr: 1e-3 };
  for (let k = 0; k < 27; k++) row[`m${k}`] = Math.sqrt(i + k) * 0.001;
  if (i % 100 === 0) row.weights = big;
  return row;
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-'));
}

/** Baseline: what a careful hand-written logger does: stringify, batch 64 KiB, writeSync. */
function baseline(): number {
  const dir = tmp();
  const fd = fs.openSync(path.join(dir, 'train.jsonl'), 'w');
  const t0 = performance.now();
  let batch = '';
  for (let i = 0; i < ROWS; i++) {
    const row = makeRow(i);
    if (row.weights !== undefined) row.weights = Array.prototype.slice.call(big, 0, 4); // JSON of a 1e6 array would dominate
    batch += `${JSON.stringify({ $step: i, $time: Date.now(), $level: 20, ...row })}\n`;
    if (batch.length >= 65536) {
      fs.writeSync(fd, batch);
      batch = '';
    }
  }
  fs.writeSync(fd, batch);
  fs.closeSync(fd);
  const s = (performance.now() - t0) / 1000;
  fs.rmSync(dir, { recursive: true, force: true });
  return ROWS / s;
}

async function rowlog(): Promise<{ rate: number; p50: number; p99: number }> {
  const dir = tmp();
  const log = createLogger({ dir, exitHooks: false });
  const samples = new Float64Array(ROWS);
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) {
    const row = makeRow(i);
    const a = performance.now();
    log.row('train', row);
    samples[i] = performance.now() - a;
  }
  await log.close();
  const s = (performance.now() - t0) / 1000;
  const lines = fs.readFileSync(path.join(dir, 'train.jsonl'), 'utf8').split('\n').length - 1;
  if (lines !== ROWS) throw new Error(`lost rows: ${lines} of ${ROWS} on disk`);
  fs.rmSync(dir, { recursive: true, force: true });
  samples.sort();
  return { rate: ROWS / s, p50: (samples[Math.floor(ROWS * 0.5)] ?? 0) * 1000, p99: (samples[Math.floor(ROWS * 0.99)] ?? 0) * 1000 };
}

function summarizeOnly(): number {
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) summarizeRow(makeRow(i));
  return ROWS / ((performance.now() - t0) / 1000);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`rowlog bench: ${fmt(ROWS)} rows of 30 numbers (+ a 1e6-element Float32Array every 100th row), ${os.cpus().length} cores, node ${process.version}`);
summarizeOnly(); // warm-up
const base = baseline();
const sum = summarizeOnly();
const r = await rowlog();
console.log(`  baseline JSON.stringify + 64 KiB writeSync  ${fmt(base).padStart(10)} rows/s`);
console.log(`  summarizeRow alone                          ${fmt(sum).padStart(10)} rows/s`);
console.log(`  rowlog log.row() → jsonlSink (.jsonl)       ${fmt(r.rate).padStart(10)} rows/s   ${(r.rate / base).toFixed(2)}× baseline`);
console.log(`  log.row() latency                           p50 ${r.p50.toFixed(2)} µs   p99 ${r.p99.toFixed(2)} µs`);
console.log(`  peak RSS                                    ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
