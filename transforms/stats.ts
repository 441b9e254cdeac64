/**
 * Statistics of a numeric array (docs/DESIGN.md §3): what a tensor, a typed array or a plain array of
 * numbers of length ≥ 2 becomes in a summarized row (`key.mean`, `key.min`, `key.max`, `key.std`,
 * and on request `key.norm`, `key.len`, `key.nonfinite`).
 *
 * This is the hottest code of `log.row()` for rows holding tensors, so it is written as tight
 * loops over the array, unrolled where measured to pay (numbers below), with the rare cases
 * (NaN/±Infinity, over- or underflowing sums) looked for only when the common path says they may
 * be there. The std is the population std (ddof 0), numerically stable for |mean| ≫ std.
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

/** Writes the statistics `o` chooses of `a` (length ≥ 2) into `dst`, as `key.<stat>`. */
export function putStats(a: ArrayLike<number>, key: string, o: StatChoice, dst: StatWriter): void {
  const n = a.length;
  // First pass: sum and extremes, branch-free (NaN never wins a comparison). NaN and ±Infinity
  // are looked for only when the sum says there may be some: the common case pays nothing.
  // Unrolled by four with the very same operations in the same order (so the same bits): on
  // a 1e6-float Float32Array this pass took 0.97 ms rolled, 0.63 ms unrolled (node 20), and
  // the write bench's tensor rows were 57 % of its main-thread time (issue 9 profile).
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const x0 = a[i] as number;
    const x1 = a[i + 1] as number;
    const x2 = a[i + 2] as number;
    const x3 = a[i + 3] as number;
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
  for (; i < n; i++) {
    const x = a[i] as number;
    sum += x;
    min = x < min ? x : min;
    max = x > max ? x : max;
  }
  let nan = false;
  let nonfinite = 0;
  if (!Number.isFinite(sum)) {
    for (let i = 0; i < n; i++) {
      const x = a[i] as number;
      if (x !== x) nan = true;
      if (x - x !== 0) nonfinite++; // NaN or ±Infinity
    }
  }
  if (nan) {
    min = NaN;
    max = NaN;
  }
  let mean = sum / n;
  let std = NaN;
  if (o.std && Number.isFinite(mean)) std = centralStd(a, mean, 1);
  if (!nan && nonfinite === 0 && (!Number.isFinite(mean) || (o.std && (!Number.isFinite(std) || (std === 0 && min !== max))))) {
    // Every value is finite but the sum or the squares over- or underflowed (|x| near 1e308
    // or 1e-200): redo both on values scaled by the largest magnitude.
    const scale = Math.max(-min, max);
    let m = 0;
    for (let i = 0; i < n; i++) m += (a[i] as number) / scale / n;
    mean = m * scale;
    if (o.std) std = centralStd(a, m, scale) * scale;
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
      let ss = 0;
      for (let i = 0; i < n; i++) {
        const y = (a[i] as number) / scale;
        ss += y * y;
      }
      norm = scale * Math.sqrt(ss);
    }
    dst.put(`${key}.norm`, norm);
  }
  if (o.len) dst.put(`${key}.len`, n);
  if (o.nonfinite) dst.put(`${key}.nonfinite`, nonfinite);
}

/**
 * Population standard deviation of `a[i] / scale` around `mean` (already scaled), by the
 * corrected two-pass algorithm: stable when |mean| ≫ std (e.g. [1e9, 1e9+1, 1e9+2]).
 */
function centralStd(a: ArrayLike<number>, mean: number, scale: number): number {
  const n = a.length;
  let ss = 0;
  let comp = 0;
  if (scale === 1) {
    // Unrolled like the first pass in `stats`, same operations in the same order: 0.98 → 0.60 ms
    // per 1e6 floats.
    let i = 0;
    for (; i + 3 < n; i += 4) {
      const d0 = (a[i] as number) - mean;
      const d1 = (a[i + 1] as number) - mean;
      const d2 = (a[i + 2] as number) - mean;
      const d3 = (a[i + 3] as number) - mean;
      ss = ss + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
      comp = comp + d0 + d1 + d2 + d3;
    }
    for (; i < n; i++) {
      const d = (a[i] as number) - mean;
      ss += d * d;
      comp += d;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const d = (a[i] as number) / scale - mean;
      ss += d * d;
      comp += d;
    }
  }
  return Math.sqrt(Math.max(0, (ss - (comp * comp) / n) / n));
}
