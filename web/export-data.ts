/**
 * What a chart's export holds (docs/DESIGN.md §7, issue 15 point 4), pure (no DOM; unit-tested
 * in test/web.export-data.test.ts): the rows of a uPlot chart inside its current x range, of
 * its shown series, and their CSV and JSON texts. web/export.ts downloads them.
 */
import type U from 'uplot';

/** A chart's visible data: the x-axis' label and values, and per shown series its label and values, row by row. */
export interface Visible {
  /** The x-axis' name (`step`, …): the CSV's first header. */
  xLabel: string;
  /** The x of each row kept, in the chart's order. */
  x: number[];
  /** Per shown series: its label and its value at each `x` (null: none there). */
  series: Array<{ label: string; values: Array<number | null> }>;
}

/** What {@link visibleData} reads of a uPlot chart. */
export type Plotted = Pick<U, 'data' | 'series' | 'scales'>;

/** A value the chart draws as a marker, not on its line (NaN, ±Infinity): series `series` has `y` at `x`. */
export interface MarkValue {
  series: number;
  x: number;
  y: number;
}

/**
 * The rows of `u` inside its x scale's current range, of its shown series (rows where all of them
 * are empty left out), with the chart's markers (`marks`: its NaN and ±Infinity values, which are
 * not in `u.data`) as rows of their own at their x, in x order.
 */
export function visibleData(u: Plotted, marks: readonly MarkValue[] = []): Visible {
  const xs = u.data[0] as ArrayLike<number>;
  const min = u.scales.x?.min ?? -Infinity;
  const max = u.scales.x?.max ?? Infinity;
  const cols: number[] = [];
  for (let s = 1; s < u.series.length; s++) if (u.series[s]?.show !== false && u.data[s] !== undefined) cols.push(s);
  const out: Visible = {
    xLabel: String(u.series[0]?.label ?? 'x'),
    x: [],
    series: cols.map((s) => ({ label: String(u.series[s]?.label ?? `series ${s}`), values: [] })),
  };
  const extra = marks.filter((m) => m.x >= min && m.x <= max && cols.includes(m.series)).sort((a, b) => a.x - b.x);
  let e = 0;
  const push = (x: number, row: Array<number | null>) => {
    out.x.push(x);
    row.forEach((v, k) => out.series[k]?.values.push(v));
  };
  const pushMarks = (upTo: number) => {
    for (; e < extra.length && (extra[e] as MarkValue).x <= upTo; e++) {
      const m = extra[e] as MarkValue;
      push(m.x, cols.map((s) => (s === m.series ? m.y : null)));
    }
  };
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    if (!(x >= min && x <= max)) continue;
    const row = cols.map((s) => (u.data[s] as ArrayLike<number | null | undefined>)[i] ?? null);
    if (row.every((v) => v === null)) continue;
    pushMarks(x);
    push(x, row);
  }
  pushMarks(Infinity);
  return out;
}

/** A CSV field: quoted when it holds a comma, a quote or a line break. */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** `v` as CSV: a header (the x-axis' name, then each series' label), one line per row; an empty value is an empty field, NaN and ±Infinity by name. */
export function toCsv(v: Visible): string {
  const lines = [[v.xLabel, ...v.series.map((s) => s.label)].map(csvField).join(',')];
  for (let i = 0; i < v.x.length; i++) lines.push([String(v.x[i]), ...v.series.map((s) => (s.values[i] === null ? '' : String(s.values[i])))].join(','));
  return `${lines.join('\n')}\n`;
}

/** A value as JSON carries it: NaN and ±Infinity by name (as serve's API sends them). */
const jsonValue = (n: number | null): number | string | null => (n === null || Number.isFinite(n) ? n : String(n));

/** `v` as JSON: `{xLabel, x: [...], series: [{label, values: [...]}]}` (NaN and ±Infinity as strings). */
export function toJson(v: Visible): string {
  return `${JSON.stringify({ xLabel: v.xLabel, x: v.x.map(jsonValue), series: v.series.map((s) => ({ label: s.label, values: s.values.map(jsonValue) })) })}\n`;
}

/** A file name made of the table and the column (characters other than `[A-Za-z0-9_.-]` as `_`). */
export function fileName(table: string, column: string, ext: string): string {
  return `${`${table}-${column}`.replace(/[^A-Za-z0-9_.-]/g, '_')}.${ext}`;
}
