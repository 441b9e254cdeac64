/**
 * From the points a run holds to what a chart draws (docs/DESIGN.md §7): the finite points as the
 * line (sorted by x when the axis is not monotonic, e.g. a resumed run's `epoch`), the NaN and
 * ±Infinity as markers at their x, and several runs' lines on one x array as uPlot wants them.
 * Unlike uPlot.join, {@link align} keeps repeated x values of one run (many rows share an
 * `epoch`). Pure (no DOM): unit-tested in test/web.align.test.ts.
 */
import type { Points } from '../lib/serve/decimate.js';

/** A non-finite value at `x`: `nan`, `inf` (+Infinity) or `-inf`. */
export interface Mark {
  x: number;
  kind: 'nan' | 'inf' | '-inf';
  /** The row's index in the table. */
  i: number;
}

/** A run's line (finite points, ascending x; null: a break in the line) and its markers. */
export interface Line {
  x: number[];
  y: Array<number | null>;
  marks: Mark[];
}

/**
 * Splits a column's points into its line and its markers. `dx` is subtracted from every x
 * (relative time: the run's start); with `log`, values ≤ 0 are left out of the line (a log
 * scale has no place for them), and with `gaps` too they are a null at their x: the line breaks
 * there rather than running straight across them.
 */
export function toLine(p: Points | undefined, dx = 0, log = false, gaps = false): Line {
  const out: Line = { x: [], y: [], marks: [] };
  if (p === undefined) return out;
  let sorted = true;
  let prev = -Infinity;
  for (let k = 0; k < p.i.length; k++) {
    const x = (p.x[k] as number) - dx;
    const y = p.y[k] as number;
    if (y - y !== 0) {
      out.marks.push({ x, i: p.i[k] as number, kind: y !== y ? 'nan' : y > 0 ? 'inf' : '-inf' });
      continue;
    }
    if (log && y <= 0 && !gaps) continue;
    if (x < prev) sorted = false;
    prev = x;
    out.x.push(x);
    out.y.push(log && y <= 0 ? null : y);
  }
  if (!sorted) {
    const order = out.x.map((_, k) => k).sort((a, b) => (out.x[a] as number) - (out.x[b] as number) || a - b);
    out.x = order.map((k) => out.x[k] as number);
    out.y = order.map((k) => out.y[k] as number | null);
  }
  return out;
}

/** One run's series on its own x (ascending): one or more y arrays of the same length. */
export interface Table {
  x: ArrayLike<number>;
  ys: ReadonlyArray<ArrayLike<number | null | undefined>>;
}

/**
 * Tables on one x array (uPlot's aligned data: `[x, ...every table's ys]`, undefined where a
 * table has no point, so uPlot joins the line over it; a table's own null stays null, a break in
 * its line). An x repeated in a table gets as many slots as the table repeats it most.
 */
export function align(tables: readonly Table[]): Array<Array<number | null | undefined>> {
  // How many slots each x needs: the most times one table repeats it.
  const need = new Map<number, number>();
  for (const t of tables) {
    let run = 0;
    for (let k = 0; k < t.x.length; k++) {
      const x = t.x[k] as number;
      run = k > 0 && t.x[k - 1] === x ? run + 1 : 1;
      if ((need.get(x) ?? 0) < run) need.set(x, run);
    }
  }
  const xs = [...need.keys()].sort((a, b) => a - b);
  const start = new Map<number, number>();
  const all: number[] = [];
  for (const x of xs) {
    start.set(x, all.length);
    for (let r = need.get(x) as number; r > 0; r--) all.push(x);
  }
  const out: Array<Array<number | null | undefined>> = [all];
  for (const t of tables) {
    const cols = t.ys.map(() => new Array<number | null | undefined>(all.length).fill(undefined));
    let run = 0;
    for (let k = 0; k < t.x.length; k++) {
      const x = t.x[k] as number;
      run = k > 0 && t.x[k - 1] === x ? run + 1 : 0;
      const at = (start.get(x) as number) + run;
      t.ys.forEach((y, c) => ((cols[c] as Array<number | null | undefined>)[at] = y[k]));
    }
    out.push(...cols);
  }
  return out;
}
