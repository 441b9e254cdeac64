/**
 * Terminal line charts for `rowlog view` (docs/DESIGN.md §7, issue 15 §6): one column's points,
 * already kept by the M4 rule (lib/serve/decimate.ts), drawn with asciichart at a terminal's
 * width. Pure (no I/O): lines of text in, lines of text out.
 *
 * **Every extreme drawn.** The plot has one value per character column ("cell"). A table's rows
 * are spread over the cells by row index, as the M4 rule buckets them (cell c holds rows
 * origin + c·span/n … ); each cell keeps the smallest and the largest finite value of the points
 * that fall in it, and two lines are drawn through them, the cells' maxima and their minima.
 * Since the M4 rule keeps each bucket's minimum and maximum, the largest value of the table is
 * some cell's maximum, so a one-row spike among 2M rows is drawn, and is the top label.
 * A cell between two cells with points (a table with fewer rows than cells, a column logged
 * every 100 steps) is drawn on the straight line between them; cells before a column's first
 * point or after its last are left blank.
 *
 * **NaN and ±Infinity** cannot be plotted: the title counts them (`2 NaN`), and a line under
 * the plot marks the cells holding one (`×` NaN, `▲` +Infinity, `▼` −Infinity), at their steps.
 *
 * The y labels are the table's values (asciichart is given the values scaled to 0…height, so
 * its labels are exact rows and a huge or tiny range cannot overflow its arithmetic); the line
 * under the chart names the first and last `$step`.
 */
import { plot } from 'asciichart';
import type { Points } from '../serve/decimate.js';

/** Counts of a column's non-finite values, by kind. */
export interface NonFinite {
  /** NaN values. */
  nan: number;
  /** +Infinity values. */
  posInf: number;
  /** −Infinity values. */
  negInf: number;
}

/** What a chart shows of one column. */
export interface ChartInput {
  /** The column's name (the title's first word). */
  name: string;
  /** Its kept points (row index, x, y), in index order; y may be NaN or ±Infinity. */
  points: Points;
  /** Rows that have the column. */
  rows: number;
  /** The last of those rows' value (NaN and ±Infinity included); undefined before any. */
  last: number | undefined;
  /** That row's `$step`; undefined before any. */
  lastStep: number | undefined;
  /** The smallest finite value; undefined when there is none. */
  min: number | undefined;
  /** The largest finite value; undefined when there is none. */
  max: number | undefined;
  /** Its NaN and ±Infinity, counted. */
  nonFinite: NonFinite;
  /** The table's first row index: the cells spread over rows `origin` … `total − 1`. */
  origin: number;
  /** One past the table's last row index. */
  total: number;
}

/** How a chart is drawn. */
export interface ChartLook {
  /** Columns of the whole chart, labels included (at least 20). */
  width: number;
  /** Rows of the plot (not counting the title and the lines under it); at least 2. */
  height: number;
  /** ANSI colours (the plot cyan, the marks red, the title bold). @default false */
  color?: boolean;
}

/** Lines a chart takes besides its plot's `height + 1` rows: the title, the marks, the x labels. */
export const CHART_EXTRA_LINES = 3;

const SGR = { bold: '\x1b[1m', cyan: '\x1b[36m', red: '\x1b[31m', dim: '\x1b[2m', reset: '\x1b[0m' };

/**
 * A number as the charts show it: `p` significant digits (at least every digit before the
 * point), no trailing zeros; exponent form below 1e-4 or from 1e9; `NaN`, `+Inf`, `-Inf`.
 */
export function formatNumber(v: number, p = 4): string {
  if (v !== v) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e9 || a < 1e-4) {
    const [m = '', e = ''] = v.toExponential(p - 1).split('e');
    return `${m.includes('.') ? m.replace(/\.?0+$/, '') : m}e${e.replace(/^\+/, '')}`;
  }
  return String(Number(v.toPrecision(Math.max(p, Math.floor(Math.log10(a)) + 1))));
}

/** A whole number with thousands separators (`12,345`). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** One cell's points: the finite extremes, the first and last finite y, and which non-finite kinds it holds. */
export interface Cell {
  /** The smallest finite y (Infinity when none). */
  lo: number;
  /** The largest finite y (−Infinity when none). */
  hi: number;
  /** The first finite y, in index order. */
  first: number;
  /** The last finite y. */
  last: number;
  /** Any finite value. */
  has: boolean;
  /** Bits: 1 NaN, 2 +Infinity, 4 −Infinity. */
  marks: number;
}

/** The points spread over `n` cells by row index (see the module comment). */
export function cellsOf(points: Points, origin: number, total: number, n: number): Cell[] {
  const cells: Cell[] = Array.from({ length: n }, () => ({ lo: Infinity, hi: -Infinity, first: 0, last: 0, has: false, marks: 0 }));
  const span = Math.max(1, total - origin);
  for (let k = 0; k < points.i.length; k++) {
    const i = points.i[k] as number;
    const y = points.y[k] as number;
    const c = cells[Math.min(n - 1, Math.max(0, Math.floor(((i - origin) * n) / span)))] as Cell;
    if (y - y !== 0) {
      c.marks |= y !== y ? 1 : y > 0 ? 2 : 4;
      continue;
    }
    if (!c.has) c.first = y;
    c.has = true;
    c.last = y;
    if (y < c.lo) c.lo = y;
    if (y > c.hi) c.hi = y;
  }
  return cells;
}

/**
 * The cells' maxima and minima as two series, cells without points on the line between their
 * neighbours; `from`/`to`: the first and last cell with a finite value (-1 when none).
 */
export function envelope(cells: Cell[]): { hi: number[]; lo: number[]; from: number; to: number } {
  const hi: number[] = [];
  const lo: number[] = [];
  let from = -1;
  let to = -1;
  cells.forEach((c, k) => {
    if (!c.has) return;
    if (from === -1) from = k;
    else if (to < k - 1) {
      // the gap (to, k): on the line from the last value of cell `to` to the first of cell k
      const a = (cells[to] as Cell).last;
      for (let g = to + 1; g < k; g++) hi[g] = lo[g] = a + ((c.first - a) * (g - to)) / (k - to);
    }
    hi[k] = c.hi;
    lo[k] = c.lo;
    to = k;
  });
  for (let k = 0; k < cells.length; k++) {
    // blank cells outside [from, to] get a value (asciichart needs one); their columns are blanked
    hi[k] ??= (k < from ? hi[from] : hi[to]) ?? 0;
    lo[k] ??= (k < from ? lo[from] : lo[to]) ?? 0;
  }
  return { hi, lo, from, to };
}

/** `height + 1` labels from `max` down to `min`, with the fewest significant digits (3…8) that keep them apart. */
export function yLabels(min: number, max: number, height: number): string[] {
  const values = Array.from({ length: height + 1 }, (_, r) => max - ((max - min) * r) / height);
  let labels: string[] = [];
  for (let p = 3; p <= 8; p++) {
    labels = values.map((v) => formatNumber(v, p));
    if (new Set(labels).size === labels.length) break;
  }
  const w = Math.max(3, ...labels.map((l) => l.length));
  return labels.map((l) => l.padStart(w));
}

/** The title: `loss  last 0.123  min 0.01  max 4.5  (rows 12,345, step 12,344)  2 NaN ×`. */
export function titleOf(c: ChartInput): string {
  const parts = [c.name];
  if (c.last !== undefined) parts.push(`last ${formatNumber(c.last)}`);
  if (c.min !== undefined && c.max !== undefined) parts.push(`min ${formatNumber(c.min)}`, `max ${formatNumber(c.max)}`);
  parts.push(`(rows ${formatCount(c.rows)}${c.lastStep === undefined ? '' : `, step ${formatCount(c.lastStep)}`})`);
  const { nan, posInf, negInf } = c.nonFinite;
  if (nan > 0) parts.push(`${formatCount(nan)} NaN ×`);
  if (posInf > 0) parts.push(`${formatCount(posInf)} +Inf ▲`);
  if (negInf > 0) parts.push(`${formatCount(negInf)} -Inf ▼`);
  return parts.join('  ');
}

/** `s` cut to `w` characters (an ellipsis at the cut). */
function fit(s: string, w: number): string {
  return s.length <= w ? s : `${s.slice(0, Math.max(0, w - 1))}…`;
}

/** The first and last x (`$step`) of the points, as the line under the plot names them. */
function xRange(p: Points): [number, number] | undefined {
  const n = p.x.length;
  return n === 0 ? undefined : [p.x[0] as number, p.x[n - 1] as number];
}

/** One chart's lines (no `\n`): the title, the plot with its y labels, the marks of non-finite values, the x labels. */
export function renderChart(c: ChartInput, look: ChartLook): string[] {
  const width = Math.max(20, Math.floor(look.width));
  const height = Math.max(2, Math.floor(look.height));
  const color = look.color === true;
  const paint = (s: string, sgr: string) => (color && s.trim() !== '' ? `${sgr}${s}${SGR.reset}` : s);
  const title = fit(titleOf(c), width - 1);
  const out = [color ? `${SGR.bold}${title}${SGR.reset}` : title];
  const lo = c.min;
  const hi = c.max;
  if (lo === undefined || hi === undefined) {
    out.push(paint(c.rows === 0 ? '(no rows yet)' : '(no finite values)', SGR.dim));
    return out;
  }
  // A constant column: a band around it, the value on the middle row (a label of its own).
  const u = lo === hi ? (lo === 0 ? 1 : Math.abs(lo)) / height : 0;
  const [bottom, top] = lo === hi ? [lo - u * Math.floor(height / 2), hi + u * Math.ceil(height / 2)] : [lo, hi];
  const labels = yLabels(bottom, top, height);
  const lw = (labels[0] as string).length;
  // Line = label, a space, the axis (cell 0), cells 1 … n−2; the last cell's column is asciichart's blank.
  const n = Math.max(2, width - lw - 2);
  const cells = cellsOf(c.points, c.origin, c.total, n);
  const env = envelope(cells);
  // Scaled to 0…height with halves, so that a range near the largest double cannot overflow.
  const half = top / 2 - bottom / 2;
  const scale = (y: number) => ((y / 2 - bottom / 2) / half) * height;
  const text = plot([env.hi.map(scale), env.lo.map(scale)], {
    min: 0,
    max: height,
    height,
    offset: 3,
    format: (_v, row) => labels[row] ?? '',
  });
  // Column `axis` draws cell 0's value; column axis + 1 + k the step from cell k to k + 1. The
  // steps outside [from, to] join filler values: blanked (a lone point keeps its one step).
  const axis = lw + 1;
  const blank = (k: number) => k < env.from || k > env.to || (k === env.to && env.from !== env.to);
  // asciichart crosses the axis (┼) at its zero, our top row, and where cell 0 starts its lines.
  const starts = env.from === 0 ? [env.hi[0] as number, env.lo[0] as number].map((v) => height - Math.round(scale(v))) : [];
  text.split('\n').forEach((line, row) => {
    const chars = [...line];
    if (!starts.includes(row)) chars[axis] = '┤';
    for (let k = 0; k < n; k++) if (blank(k) && axis + 1 + k < chars.length) chars[axis + 1 + k] = ' ';
    const label = chars.slice(0, axis + 1).join('');
    const body = chars.slice(axis + 1).join('').replace(/\s+$/, '');
    out.push(label + paint(body, SGR.cyan));
  });
  const marks = cells.map((cell) => (cell.marks & 1 ? '×' : cell.marks & 2 ? '▲' : cell.marks & 4 ? '▼' : ' ')).join('').replace(/\s+$/, '');
  if (marks !== '') out.push(' '.repeat(lw + 1) + paint(marks, SGR.red));
  const xr = xRange(c.points);
  if (xr !== undefined) {
    const first = `step ${formatCount(xr[0])}`;
    const last = `step ${formatCount(xr[1])}`;
    const room = n - first.length - last.length;
    out.push(' '.repeat(lw + 1) + paint(room >= 1 ? first + ' '.repeat(room) + last : last, SGR.dim));
  }
  return out;
}

/**
 * How many charts fit `rows` lines and how tall each plot is: `count` charts (at most `max`,
 * fewer while plots would be under `minHeight` rows), each `CHART_EXTRA_LINES + height + 1`
 * lines, a blank line between them, `header` lines above.
 */
export function fitCharts(rows: number, count: number, opts: { header?: number; minHeight?: number; max?: number } = {}): { charts: number; height: number } {
  const header = opts.header ?? 1;
  const minHeight = opts.minHeight ?? 4;
  let charts = Math.max(1, Math.min(count, opts.max ?? count));
  const heightFor = (k: number) => Math.floor((rows - header - (k - 1)) / k) - CHART_EXTRA_LINES - 1;
  while (charts > 1 && heightFor(charts) < minHeight) charts--;
  return { charts, height: Math.max(2, heightFor(charts)) };
}
