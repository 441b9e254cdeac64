/**
 * What every benchmark logs and how it measures memory, in one place so the benches compare
 * the same rows: a training step's 30 numbers, and every 100th step a 1e6-float tensor.
 */
import fs from 'node:fs';

/** The tensor of every 100th row: made once, as a model's weights are the same buffer each step. */
export const TENSOR = new Float32Array(1_000_000).map((_, i) => Math.sin(i));

/** Metric names, made once: real training code has literal keys, not new strings every row. */
const KEYS = Array.from({ length: 27 }, (_, k) => `m${k}`);

/** Step `i`'s row: epoch, loss, lr and 27 metrics, plus `weights` = {@link TENSOR} every 100th row when `withTensor`. */
export function makeRow(i: number, withTensor = true): Record<string, unknown> {
  const row: Record<string, unknown> = { epoch: Math.floor(i / 1000), loss: 1 / (i + 1), lr: 1e-3 };
  for (let k = 0; k < 27; k++) row[KEYS[k] as string] = Math.sqrt(i + k) * 0.001;
  if (withTensor && i % 100 === 0) row.weights = TENSOR;
  return row;
}

/**
 * This process's own peak RSS in MB: `VmHWM` (Linux), not `ru_maxrss` (a child's starts at its
 * parent's RSS at fork). NaN where /proc has no VmHWM: no figure rather than a wrong one.
 */
export function peakRssMb(): number {
  const m = /^VmHWM:\s*(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}
