/**
 * Group by a parameter (issue 15 §3, docs/DESIGN.md §7): the checked runs that share a value of
 * `params.json`'s key (seeds of one configuration) drawn as ONE line, their mean, with a band
 * (min–max, or mean ± std). Each run's finite points are resampled onto common x bins (about as
 * many as the plot is wide), then per bin the figures are taken over the runs that have a value
 * there: the mean and std of the runs' bin means; min–max of every point in the bin (a run's
 * one-step spike reaches the band's edge). Pure (no DOM): unit-tested in test/web.group.test.ts.
 */

/** A run's finite points, ascending in x. */
export interface XY {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** A group's line on common bins: `x[b]` the bin's centre; null where no run has a value. */
export interface GroupLine {
  x: number[];
  mean: Array<number | null>;
  /** The band's lower and upper edge (the smallest and largest point of any run in the bin, or mean − std and mean + std). */
  lo: Array<number | null>;
  hi: Array<number | null>;
  /** Runs with a value in the bin. */
  n: number[];
}

/** The band around a group's mean: its runs' min–max, or mean ± (population) std. */
export type Band = 'minmax' | 'std';

/** The x extent of every point of `runs`; undefined when they have none. */
export function extent(runs: readonly XY[]): { min: number; max: number } | undefined {
  let min = Infinity;
  let max = -Infinity;
  for (const r of runs) {
    const n = r.x.length;
    if (n === 0) continue;
    min = Math.min(min, r.x[0] as number);
    max = Math.max(max, r.x[n - 1] as number);
  }
  return min <= max ? { min, max } : undefined;
}

/** The centres of `bins` equal bins over min..max (one bin when min = max). */
export function binCentres(min: number, max: number, bins: number): number[] {
  const n = max > min ? Math.max(1, Math.floor(bins)) : 1;
  const w = (max - min) / n;
  const out = new Array<number>(n);
  for (let b = 0; b < n; b++) out[b] = min + (b + 0.5) * w;
  if (n === 1) out[0] = (min + max) / 2;
  return out;
}

/** A run on the bins: per bin its mean, and its smallest and largest value (see {@link resample}). */
export interface Binned {
  mean: Array<number | null>;
  lo: Array<number | null>;
  hi: Array<number | null>;
}

/**
 * A run's value per bin of `bins` equal bins over min..max: the mean of its points in the bin;
 * for a bin with none inside the run's own x extent, the line between its neighbours at the
 * bin's centre; null outside it.
 */
export function resample(run: XY, min: number, max: number, bins: number): Array<number | null> {
  return resampleAll(run, min, max, bins).mean;
}

/**
 * {@link resample}, with each bin's smallest and largest point too (an empty bin: the line's
 * value for all three), so a min–max band reaches a run's spike (M4 keeps it, a mean would dilute it).
 */
export function resampleAll(run: XY, min: number, max: number, bins: number): Binned {
  const centres = binCentres(min, max, bins);
  const n = centres.length;
  const w = (max - min) / n;
  const sum = new Float64Array(n);
  const count = new Uint32Array(n);
  const lo = new Float64Array(n).fill(Infinity);
  const hi = new Float64Array(n).fill(-Infinity);
  const len = run.x.length;
  for (let k = 0; k < len; k++) {
    const x = run.x[k] as number;
    if (x < min || x > max) continue;
    const b = w > 0 ? Math.min(n - 1, Math.floor((x - min) / w)) : 0;
    const y = run.y[k] as number;
    sum[b] = (sum[b] as number) + y;
    count[b] = (count[b] as number) + 1;
    if (y < (lo[b] as number)) lo[b] = y;
    if (y > (hi[b] as number)) hi[b] = y;
  }
  const out = new Array<number | null>(n).fill(null);
  const outLo = new Array<number | null>(n).fill(null);
  const outHi = new Array<number | null>(n).fill(null);
  let j = 0; // first point with x ≥ the centre
  for (let b = 0; b < n; b++) {
    const c = count[b] as number;
    if (c > 0) {
      out[b] = (sum[b] as number) / c;
      outLo[b] = lo[b] as number;
      outHi[b] = hi[b] as number;
      continue;
    }
    const cx = centres[b] as number;
    while (j < len && (run.x[j] as number) < cx) j++;
    if (j === 0 || j === len) continue; // outside the run's extent
    const x0 = run.x[j - 1] as number;
    const x1 = run.x[j] as number;
    const y0 = run.y[j - 1] as number;
    const y1 = run.y[j] as number;
    out[b] = outLo[b] = outHi[b] = x1 === x0 ? y1 : y0 + ((y1 - y0) * (cx - x0)) / (x1 - x0);
  }
  return { mean: out, lo: outLo, hi: outHi };
}

/** The group's mean and band on `bins` bins over `range` (default: the runs' extent); undefined with no points. */
export function groupLine(runs: readonly XY[], bins: number, band: Band, range = extent(runs)): GroupLine | undefined {
  if (range === undefined) return undefined;
  const x = binCentres(range.min, range.max, bins);
  const per = runs.map((r) => resampleAll(r, range.min, range.max, bins));
  const line: GroupLine = { x, mean: [], lo: [], hi: [], n: [] };
  for (let b = 0; b < x.length; b++) {
    let n = 0;
    let s = 0;
    let s2 = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of per) {
      const v = p.mean[b];
      if (v === null || v === undefined) continue;
      n++;
      s += v;
      s2 += v * v;
      lo = Math.min(lo, p.lo[b] ?? v);
      hi = Math.max(hi, p.hi[b] ?? v);
    }
    line.n.push(n);
    if (n === 0) {
      line.mean.push(null);
      line.lo.push(null);
      line.hi.push(null);
      continue;
    }
    const mean = s / n;
    line.mean.push(mean);
    if (band === 'minmax') {
      line.lo.push(lo);
      line.hi.push(hi);
    } else {
      const std = Math.sqrt(Math.max(0, s2 / n - mean * mean));
      line.lo.push(mean - std);
      line.hi.push(mean + std);
    }
  }
  return line;
}

/** One group of checked runs: its label (`lr=0.1 (3 runs)`) and run ids, in the order checked. */
export interface Group {
  label: string;
  value: string;
  ids: string[];
}

/** The runs `ids` grouped by their value of the parameter `key` (`–` for runs without it), groups in order of first appearance. */
export function groupRuns(ids: readonly string[], params: ReadonlyMap<string, Record<string, unknown>>, key: string): Group[] {
  const by = new Map<string, string[]>();
  for (const id of ids) {
    const v = params.get(id)?.[key];
    const value = v === undefined || v === null ? '–' : String(v);
    const list = by.get(value);
    if (list) list.push(id);
    else by.set(value, [id]);
  }
  return [...by].map(([value, list]) => ({ value, ids: list, label: `${key}=${value} (${list.length} ${list.length === 1 ? 'run' : 'runs'})` }));
}
