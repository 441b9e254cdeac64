/**
 * Statistics of a numeric array (docs/DESIGN.md §3): what a tensor, a typed array or a plain array of
 * numbers of length ≥ 2 becomes in a summarized row (`key.mean`, `key.min`, `key.max`, `key.std`,
 * and on request `key.norm`, `key.len`, `key.nonfinite`).
 *
 * This is the hottest code of `log.row()` for rows holding tensors, so it is written as tight
 * loops over the array, unrolled where measured to pay (numbers below), with the rare cases
 * (NaN/±Infinity, over- or underflowing sums) looked for only when the common path says they may
 * be there. The std is the population std (ddof 0), numerically stable for |mean| ≫ std.
 *
 * Layout: every pass is a loop over *runs* (`count` elements `step` apart), so the same loops
 * serve a whole array (one run: `putStats`, which the hot passes take as a plain index loop,
 * see `isFlat`) and a strided view (an ndarray's
 * `shape`/`stride`/`offset`, possibly transposed, sliced, stepped or reversed: `putStridedStats`,
 * one run per innermost row after merging the dimensions that are contiguous with each other;
 * the hot passes take a block of rows at a time, see `eachBlock`).
 * Elements are met in the view's logical (row-major) order and every pass does the same
 * operations in the same order for either, so a contiguous view gives the very bits of the
 * plain path, and a strided view the bits of its row-major copy, without making that copy.
 * 64-bit integer arrays are converted to numbers first (`typedNumbers`).
 */
import type { Scalar } from '../lib/core/entry.js';
import { optionError } from '../lib/core/options.js';

/** Statistics that can be written for a numeric array. */
export type StatName = 'mean' | 'min' | 'max' | 'std' | 'norm' | 'len' | 'nonfinite';
const STAT_NAMES: readonly StatName[] = ['mean', 'min', 'max', 'std', 'norm', 'len', 'nonfinite'];

/** The statistics chosen, one flag each (read once per array, so no list lookups on the hot path). */
export interface StatChoice {
  mean: boolean; min: boolean; max: boolean; std: boolean; norm: boolean; len: boolean; nonfinite: boolean;
}

/** Validates the `stats` option (`ERR_INVALID_OPTION` naming it) and turns it into flags. */
export function statChoice(stats: unknown): StatChoice {
  if (!Array.isArray(stats)) throw optionError('type', 'stats', 'must be an array of stat names');
  for (const s of stats as unknown[]) {
    if (!STAT_NAMES.includes(s as StatName)) throw optionError('range', 'stats', `unknown stat ${JSON.stringify(s)} (known: ${STAT_NAMES.join(', ')})`);
  }
  const has = (s: StatName) => (stats as unknown[]).includes(s);
  return { mean: has('mean'), min: has('min'), max: has('max'), std: has('std'), norm: has('norm'), len: has('len'), nonfinite: has('nonfinite') };
}

/** Where the statistics are written (the flattener: it handles key clashes and the key limit). */
export interface StatWriter {
  put(key: string, v: Scalar): void;
}

/**
 * Which elements of `data` are visited, in order: the odometer over `shape` (row-major, last
 * index fastest), element `(i0, …, ik)` at `offset + Σ ij·stride[j]`. Made by {@link stridedRuns}
 * with size-1 dimensions dropped and contiguous neighbours merged, so the last dimension is as
 * long as the memory allows (a whole array is one run).
 */
export interface Runs {
  /** Index in `data` of the first element. */
  offset: number;
  /** Size of each (merged) dimension, outermost first. */
  shape: number[];
  /** Index step of each dimension (negative for a reversed one). */
  stride: number[];
  /** The number of elements: the product of `shape`. */
  n: number;
}

/**
 * The runs of a view, or undefined when it reaches outside `0 … length-1` (a malformed view:
 * the caller warns). `shape` and `stride` are of equal length, with non-negative integer sizes.
 */
export function stridedRuns(offset: number, shape: readonly number[], stride: readonly number[], length: number): Runs | undefined {
  const s: number[] = [];
  const d: number[] = [];
  let n = 1;
  let lo = offset;
  let hi = offset;
  for (let k = 0; k < shape.length; k++) {
    const size = shape[k] as number;
    const step = stride[k] as number;
    n *= size;
    if (size === 1) continue;
    if (step < 0) lo += (size - 1) * step;
    else hi += (size - 1) * step;
    const last = s.length - 1;
    // (size_a, step_a)(size, step) is one dimension when the previous one steps over exactly this one.
    if (last >= 0 && d[last] === step * size) {
      s[last] = (s[last] as number) * size;
      d[last] = step;
    } else {
      s.push(size);
      d.push(step);
    }
  }
  if (n === 0) return { offset, shape: [0], stride: [1], n: 0 };
  if (lo < 0 || hi >= length) return undefined;
  if (s.length === 0) {
    s.push(1);
    d.push(1);
  }
  return { offset, shape: s, stride: d, n };
}

/** The odometer of a view of at most three merged dimensions: none (shared, never written). */
const NO_IDX: number[] = [];

/**
 * The blocks of `r` in order: `planes` × `rows` runs of `count` elements `step` apart, the runs
 * `rowStep` apart, the planes `planeStep` apart (the last three dimensions), the current block
 * starting at `p`. A whole array is one block; a view of k > 3 merged dimensions walks an
 * odometer over the k-3 outer ones. The hot passes loop over a block's planes and rows
 * themselves and call `next()` (monomorphic, inlined) between blocks, so a view of many short
 * runs (a tall matrix transposed: runs of 2; a [250000, 2, 2] transpose) costs no call per run.
 */
class Blocks {
  /** Index of the current block's first element. */
  p: number;
  readonly count: number;
  readonly step: number;
  readonly rows: number;
  readonly rowStep: number;
  readonly planes: number;
  readonly planeStep: number;
  readonly #r: Runs;
  readonly #idx: number[];

  constructor(r: Runs) {
    const { shape, stride } = r;
    const dims = shape.length;
    this.#r = r;
    this.p = r.offset;
    this.count = shape[dims - 1] as number;
    this.step = stride[dims - 1] as number;
    // Never `shape[-1]`: a negative index is a property lookup off the fast path, and three of
    // them were most of the cost of a short array (16 floats: 48 → 386 ns per array, now ~90).
    this.rows = dims >= 2 ? (shape[dims - 2] as number) : 1;
    this.rowStep = dims >= 2 ? (stride[dims - 2] as number) : 0;
    this.planes = dims >= 3 ? (shape[dims - 3] as number) : 1;
    this.planeStep = dims >= 3 ? (stride[dims - 3] as number) : 0;
    this.#idx = dims > 3 ? new Array<number>(dims - 3).fill(0) : NO_IDX;
  }

  /** Moves to the next block; false after the last. */
  next(): boolean {
    const { shape, stride } = this.#r;
    const idx = this.#idx;
    for (let k = idx.length - 1; k >= 0; k--) {
      const i = (idx[k] as number) + 1;
      if (i < (shape[k] as number)) {
        idx[k] = i;
        this.p += stride[k] as number;
        return true;
      }
      idx[k] = 0;
      this.p -= (i - 1) * (stride[k] as number);
    }
    return false;
  }

  /** The first element of each run of the current block, in order. */
  *runStarts(): Generator<number> {
    for (let plane = 0, q = this.p; plane < this.planes; plane++, q += this.planeStep) {
      for (let row = 0, p = q; row < this.rows; row++, p += this.rowStep) yield p;
    }
  }
}

/** Calls `fn(p, step, count)` for each innermost run of `r` in order (the rare passes, gathering). */
export function eachRun(r: Runs, fn: (p: number, step: number, count: number) => void): void {
  const b = new Blocks(r);
  do {
    for (const p of b.runStarts()) fn(p, b.step, b.count);
  } while (b.next());
}

/** The running sums of the passes, carried from one run to the next. */
interface Acc {
  sum: number; min: number; max: number; nan: boolean; nonfinite: number; ss: number; comp: number; m: number;
}

/** Writes the statistics `o` chooses of `a` (length ≥ 2) into `dst`, as `key.<stat>`. */
export function putStats(a: ArrayLike<number>, key: string, o: StatChoice, dst: StatWriter): void {
  putStridedStats(a, { offset: 0, shape: [a.length], stride: [1], n: a.length }, key, o, dst);
}

/**
 * Writes the statistics `o` chooses of the elements of `a` a strided view selects (`r`
 * from {@link stridedRuns}, `r.n` ≥ 2) into `dst`: no copy is made.
 */
export function putStridedStats(a: ArrayLike<number>, r: Runs, key: string, o: StatChoice, dst: StatWriter): void {
  const n = r.n;
  const acc: Acc = { sum: 0, min: Infinity, max: -Infinity, nan: false, nonfinite: 0, ss: 0, comp: 0, m: 0 };
  scan(a, r, acc);
  let { min, max } = acc;
  // NaN and ±Infinity are looked for only when the sum says there may be some.
  if (!Number.isFinite(acc.sum)) eachRun(r, (p, step, count) => countNonfinite(a, p, step, count, acc));
  const { nan, nonfinite } = acc;
  if (nan) {
    min = NaN;
    max = NaN;
  }
  let mean = acc.sum / n;
  let std = NaN;
  if (o.std && Number.isFinite(mean)) std = centralStd(a, r, mean, 1, acc);
  if (!nan && nonfinite === 0 && (!Number.isFinite(mean) || (o.std && (!Number.isFinite(std) || (std === 0 && min !== max))))) {
    // Every value is finite but the sum or the squares over- or underflowed (|x| near 1e308
    // or 1e-200): redo both on values scaled by the largest magnitude.
    const scale = Math.max(-min, max);
    acc.m = 0;
    eachRun(r, (p, step, count) => {
      let m = acc.m;
      for (let j = 0; j < count; j++, p += step) m += (a[p] as number) / scale / n;
      acc.m = m;
    });
    mean = acc.m * scale;
    if (o.std) std = centralStd(a, r, acc.m, scale, acc) * scale;
  }
  if (o.mean) dst.put(`${key}.mean`, mean === 0 ? 0 : mean);
  if (o.min) dst.put(`${key}.min`, min === 0 ? 0 : min);
  if (o.max) dst.put(`${key}.max`, max === 0 ? 0 : max);
  if (o.std) dst.put(`${key}.std`, std);
  if (o.norm) {
    let norm: number;
    const scale = Math.max(Math.abs(min), Math.abs(max));
    if (nan) norm = NaN;
    else if (scale === 0) norm = 0;
    else if (!Number.isFinite(scale)) norm = Infinity;
    else {
      acc.ss = 0;
      eachRun(r, (p, step, count) => {
        let ss = acc.ss;
        for (let j = 0; j < count; j++, p += step) {
          const y = (a[p] as number) / scale;
          ss += y * y;
        }
        acc.ss = ss;
      });
      norm = scale * Math.sqrt(acc.ss);
    }
    dst.put(`${key}.norm`, norm);
  }
  if (o.len) dst.put(`${key}.len`, n);
  if (o.nonfinite) dst.put(`${key}.nonfinite`, nonfinite);
}

/**
 * The first pass over one run: sum and extremes, branch-free (NaN never wins a comparison).
 * Unrolled by four with the very same operations in the same order (so the same bits): on a
 * 1e6-float Float32Array this pass took 0.97 ms rolled, 0.63 ms unrolled (node 20), and the
 * write bench's tensor rows were 57 % of its main-thread time (issue 9 profile).
 */
function scan(a: ArrayLike<number>, r: Runs, acc: Acc): void {
  if (isFlat(r)) return scanFlat(a, r.offset, r.n, acc);
  let sum = acc.sum;
  let min = acc.min;
  let max = acc.max;
  const b = new Blocks(r);
  const { count, step, rows, rowStep, planes, planeStep } = b;
  const s2 = 2 * step;
  const s3 = 3 * step;
  const s4 = 4 * step;
  do {
    for (let plane = 0, q = b.p; plane < planes; plane++, q += planeStep) {
      for (let row = 0, p0 = q; row < rows; row++, p0 += rowStep) {
        let p = p0;
        let j = 0;
        for (; j + 3 < count; j += 4, p += s4) {
          const x0 = a[p] as number;
          const x1 = a[p + step] as number;
          const x2 = a[p + s2] as number;
          const x3 = a[p + s3] as number;
          sum = sum + x0 + x1 + x2 + x3;
          min = x0 < min ? x0 : min;
          max = x0 > max ? x0 : max;
          min = x1 < min ? x1 : min;
          max = x1 > max ? x1 : max;
          min = x2 < min ? x2 : min;
          max = x2 > max ? x2 : max;
          min = x3 < min ? x3 : min;
          max = x3 > max ? x3 : max;
        }
        for (; j < count; j++, p += step) {
          const x = a[p] as number;
          sum += x;
          min = x < min ? x : min;
          max = x > max ? x : max;
        }
      }
    }
  } while (b.next());
  acc.sum = sum;
  acc.min = min;
  acc.max = max;
}

/**
 * True when `r` is `n` elements in a row from `offset`: every plain array and typed array, and a
 * contiguous view. Their passes are one index loop ({@link scanFlat}, {@link centralFlat}): the
 * strided loops' step arithmetic and their Blocks had cost a 16-float array 73 → 133 ns and a
 * 1e6-float one 1.45 → 1.60 ms (node 20, medians of 5 against the code before strided views), on
 * every `log.row()` that holds arrays. The operations are the
 * strided loops' own, in the same order, so the bits are the same either way.
 */
function isFlat(r: Runs): boolean {
  return r.shape.length === 1 && r.stride[0] === 1;
}

/** {@link scan} of the `n` elements from `p`, by index. */
function scanFlat(a: ArrayLike<number>, p: number, n: number, acc: Acc): void {
  let sum = acc.sum;
  let min = acc.min;
  let max = acc.max;
  const end = p + n;
  for (; p + 3 < end; p += 4) {
    const x0 = a[p] as number;
    const x1 = a[p + 1] as number;
    const x2 = a[p + 2] as number;
    const x3 = a[p + 3] as number;
    sum = sum + x0 + x1 + x2 + x3;
    min = x0 < min ? x0 : min;
    max = x0 > max ? x0 : max;
    min = x1 < min ? x1 : min;
    max = x1 > max ? x1 : max;
    min = x2 < min ? x2 : min;
    max = x2 > max ? x2 : max;
    min = x3 < min ? x3 : min;
    max = x3 > max ? x3 : max;
  }
  for (; p < end; p++) {
    const x = a[p] as number;
    sum += x;
    min = x < min ? x : min;
    max = x > max ? x : max;
  }
  acc.sum = sum;
  acc.min = min;
  acc.max = max;
}

/** Counts NaN and ±Infinity in one run (only when the sum is not finite). */
function countNonfinite(a: ArrayLike<number>, p: number, step: number, count: number, acc: Acc): void {
  for (let j = 0; j < count; j++, p += step) {
    const x = a[p] as number;
    if (x !== x) acc.nan = true;
    if (x - x !== 0) acc.nonfinite++; // NaN or ±Infinity
  }
}

/**
 * Population standard deviation of `a[i] / scale` around `mean` (already scaled), by the
 * corrected two-pass algorithm: stable when |mean| ≫ std (e.g. [1e9, 1e9+1, 1e9+2]).
 */
function centralStd(a: ArrayLike<number>, r: Runs, mean: number, scale: number, acc: Acc): number {
  acc.ss = 0;
  acc.comp = 0;
  if (scale === 1) centralRun(a, r, mean, acc);
  else {
    eachRun(r, (p, step, count) => {
      let ss = acc.ss;
      let comp = acc.comp;
      for (let j = 0; j < count; j++, p += step) {
        const d = (a[p] as number) / scale - mean;
        ss += d * d;
        comp += d;
      }
      acc.ss = ss;
      acc.comp = comp;
    });
  }
  const n = r.n;
  return Math.sqrt(Math.max(0, (acc.ss - (acc.comp * acc.comp) / n) / n));
}

/** The squares and the compensation around `mean` over one run, unrolled like {@link scan}: 0.98 → 0.60 ms per 1e6 floats. */
function centralRun(a: ArrayLike<number>, r: Runs, mean: number, acc: Acc): void {
  if (isFlat(r)) return centralFlat(a, r.offset, r.n, mean, acc);
  let ss = acc.ss;
  let comp = acc.comp;
  const b = new Blocks(r);
  const { count, step, rows, rowStep, planes, planeStep } = b;
  do {
    for (let plane = 0, q = b.p; plane < planes; plane++, q += planeStep) {
      for (let row = 0, p0 = q; row < rows; row++, p0 += rowStep) {
        let p = p0;
        let j = 3;
        for (; j < count; j += 4) {
          const d0 = (a[p] as number) - mean;
          const d1 = (a[(p += step)] as number) - mean;
          const d2 = (a[(p += step)] as number) - mean;
          const d3 = (a[(p += step)] as number) - mean;
          p += step;
          ss = ss + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
          comp = comp + d0 + d1 + d2 + d3;
        }
        for (j -= 3; j < count; j++, p += step) {
          const d = (a[p] as number) - mean;
          ss += d * d;
          comp += d;
        }
      }
    }
  } while (b.next());
  acc.ss = ss;
  acc.comp = comp;
}

/** {@link centralRun} of the `n` elements from `p`, by index. */
function centralFlat(a: ArrayLike<number>, p: number, n: number, mean: number, acc: Acc): void {
  let ss = acc.ss;
  let comp = acc.comp;
  const end = p + n;
  for (; p + 3 < end; p += 4) {
    const d0 = (a[p] as number) - mean;
    const d1 = (a[p + 1] as number) - mean;
    const d2 = (a[p + 2] as number) - mean;
    const d3 = (a[p + 3] as number) - mean;
    ss = ss + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
    comp = comp + d0 + d1 + d2 + d3;
  }
  for (; p < end; p++) {
    const d = (a[p] as number) - mean;
    ss += d * d;
    comp += d;
  }
  acc.ss = ss;
  acc.comp = comp;
}

/**
 * A typed array's values as numbers: BigInt64Array/BigUint64Array converted (exact up to 2^53,
 * correctly rounded beyond, as `Number(bigint)`), the others as they are.
 */
export function typedNumbers(a: ArrayLike<number | bigint>): ArrayLike<number> {
  if (a.length === 0 || typeof a[0] !== 'bigint') return a as ArrayLike<number>;
  return LITTLE_ENDIAN ? int64Halves(a as BigInt64Array | BigUint64Array) : Float64Array.from(a as ArrayLike<bigint>, Number);
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * 64-bit integers as numbers from their two 32-bit halves, without a BigInt per element:
 * `hi·2^32` is exact and the one addition rounds once, so each value equals `Number(x)`. On
 * 1e6 values: 2–8 ms, where `Float64Array.from(a, Number)` took 250–450 ms and a loop of
 * `Number(a[i])` 25–48 ms (node 20).
 */
function int64Halves(a: BigInt64Array | BigUint64Array): Float64Array {
  const w = new Int32Array(a.buffer, a.byteOffset, a.length * 2);
  const out = new Float64Array(a.length);
  const signed = a instanceof BigInt64Array;
  for (let i = 0, j = 0; i < out.length; i++, j += 2) {
    const hi = signed ? (w[j + 1] as number) : (w[j + 1] as number) >>> 0;
    out[i] = hi * 4294967296 + ((w[j] as number) >>> 0);
  }
  return out;
}
