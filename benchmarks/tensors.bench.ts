/**
 * Framework tensors (run by `npm run bench`, issue 13 §4): `summarizeRow` of one 1e6-element
 * value (mean/min/max/std, docs/DESIGN.md §3) as a Float32Array (the baseline, the plain path of
 * transforms/stats.ts), a tfjs Tensor on the CPU backend, an onnxruntime Tensor, and ndarray
 * views read in place (contiguous, transposed, every other element of 2e6, reversed, and the
 * worst shapes: runs of 2, blocks of 2×2), plus an
 * int64 onnxruntime Tensor (BigInts converted: a copy). Target (issue 13): ≤ 5 ms per 1e6
 * elements. Median of 41 runs each, all in one process after a warm-up. Last, the fixed cost
 * per array: a row of 200 Float32Arrays of 16 (a model's small weights; e32ff88, before views:
 * 90–110 µs; a negative index in the view walker's setup made it 190 µs).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import ndarray from 'ndarray';
import { Tensor as OrtTensor } from 'onnxruntime-common';
import { summarizeRow } from '../transforms/summarize.js';

tf.enableProdMode(); // no "install tfjs-node" banner
await tf.setBackend('cpu');

const N = 1_000_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const data = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
const twice = Float32Array.from({ length: 2 * N }, (_, i) => Math.sin(i));

const cases: Array<[string, unknown]> = [
  ['Float32Array (baseline)', data],
  ['tfjs Tensor float32 [1000, 1000]', tf.tensor2d(data, [1000, 1000])],
  ['onnxruntime Tensor float32 [1000, 1000]', new OrtTensor('float32', data, [1000, 1000])],
  ['ndarray [1000, 1000] contiguous', ndarray(data, [1000, 1000])],
  ['ndarray [1000, 1000] transposed', ndarray(data, [1000, 1000]).transpose(1, 0)],
  ['ndarray 1e6 of 2e6, step 2', ndarray(twice).step(2)],
  ['ndarray [1000, 1000] reversed', ndarray(data, [1000, 1000]).step(-1, -1)],
  ['ndarray [500000, 2] transposed: runs of 2', ndarray(data, [2, 500_000]).transpose(1, 0)],
  ['ndarray [250000, 2, 2] transposed: 2×2 blocks', ndarray(data, [2, 2, 250_000]).transpose(2, 1, 0)],
  ['onnxruntime Tensor int64 1e6 (copy)', new OrtTensor('int64', BigInt64Array.from(data, (x) => BigInt(Math.round(x * 1000))), [N])],
];

function time(v: unknown): number {
  const t0 = performance.now();
  const row = summarizeRow({ w: v });
  const ms = performance.now() - t0;
  if (typeof row['w.std'] !== 'number') throw new Error(`no w.std in ${JSON.stringify(row)}`);
  return ms;
}

for (const [, v] of cases) for (let i = 0; i < 10; i++) time(v); // warm-up
console.log(`tensors: summarizeRow of one 1e6-element value (mean/min/max/std), median of 41, node ${process.version}`);
let base = 0;
let worst = 0;
for (const [name, v] of cases) {
  const ms = median(Array.from({ length: 41 }, () => time(v)));
  if (base === 0) base = ms;
  if (!name.includes('copy')) worst = Math.max(worst, ms);
  console.log(`  ${name.padEnd(42)} ${ms.toFixed(2).padStart(6)} ms  ${(ms / base).toFixed(2)}× baseline`);
}
console.log(`  target (issue 13): every in-place case ≤ 5 ms per 1e6 elements ${worst <= 5 ? 'met' : 'NOT met'} (worst ${worst.toFixed(2)} ms)`);

const small = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`t${i}`, Float32Array.from({ length: 16 }, (_, j) => Math.sin(i + j))]));
for (let i = 0; i < 500; i++) summarizeRow(small);
const perRow = median(
  Array.from({ length: 41 }, () => {
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) summarizeRow(small);
    return ((performance.now() - t0) / 100) * 1000;
  }),
);
console.log(`  a row of 200 Float32Arrays of 16: ${perRow.toFixed(1)} µs (the fixed cost per array: ${((perRow * 1000) / 200).toFixed(0)} ns)`);
