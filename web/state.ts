/**
 * What the page shows, in one object (`window.rowlog`, for a look from the console and for the
 * browser test), and what is read off it by both the run list (app.ts) and the charts (charts.ts).
 */
import type U from 'uplot';
import type { ServedRun, SummaryBody } from '../lib/serve/protocol.js';
import type { Mark } from './align.js';
import { lastX } from './series.js';
import type { RunData } from './series.js';

const LIVE_MS = 15_000; // a run whose files changed this recently is shown as being logged
const PALETTE = ['#2563eb', '#dc2626', '#059669', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d', '#4f46e5', '#b45309'];

/** One chart: a column of the checked runs. */
export interface Chart {
  col: string;
  card: HTMLElement;
  /** The chart's header (title, notes, buttons: chartHooks in charts.ts add theirs here). */
  head: HTMLElement;
  value: HTMLElement;
  /** The header's note of NaN and ±Infinity values. */
  badge: HTMLElement;
  plot: HTMLElement;
  u: U;
  /** New data not drawn yet. */
  dirty: boolean;
  /** On screen (or near it). */
  visible: boolean;
  /** setData is running (its setScale is not the user's). */
  updating: boolean;
  /** Per line (a run, or a group): its NaN and ±Infinity markers, colour, label, and whether it is a group. */
  marks: Mark[][];
  colors: string[];
  labels: string[];
  groups: boolean[];
}

/** A zoom: the x range (on the chosen axis) every chart shows, and each checked run's rows in it. */
export interface Zoom {
  from: number;
  to: number;
  /** run id → the range's points (`/api/rows?…&from&to`); the full view's are drawn until it comes. */
  data: Map<string, RunData>;
  /** Fetches not answered yet. */
  pending: number;
  /** Which zoom this is (answers to an older one are dropped). */
  seq: number;
}

/** Everything the page shows; `window.rowlog` for a look from the console (and the tests). */
export const state = {
  dir: '',
  /** The server's listing. */
  runs: [] as ServedRun[],
  /** Server clock minus ours. */
  skew: 0,
  /** Checked run ids, in the order they were checked (their colours follow it). */
  selected: [] as string[],
  table: '',
  /** The user has checked or unchecked a run: no more picking one for them. */
  touched: false,
  filter: '',
  smoothing: 0.6,
  /** run id → what the page holds of its table. */
  data: new Map<string, RunData>(),
  /** column → chart */
  charts: new Map<string, Chart>(),
  /** The columns the filter shows, in order. */
  shown: [] as string[],
  /** Columns matching the filter (shown or not), and all columns of the checked runs. */
  matching: 0,
  total: 0,
  connection: 'connecting',
  /** The x-axis of every chart: `$step`, `$relative` (web/axis.ts), `$time` (wall time) or a numeric column. */
  xAxis: '$step',
  /** Columns whose chart has a log-scale y. */
  logY: new Set<string>(),
  /** The x range every chart is zoomed to, else undefined. */
  zoom: undefined as Zoom | undefined,
  // --- issue 15: shared by the runs table (web/runs-table.ts, writes them) and the charts (reads them)
  /** A parameter to group the checked runs by: each group drawn as its mean with a band ('' = no grouping). */
  groupBy: '',
  /** The band around a group's mean: its runs' min–max, or mean ± std. */
  band: 'minmax' as 'minmax' | 'std',
  /** run id → its params.json flattened (from /api/summary). */
  params: new Map<string, Record<string, string | number | boolean | null>>(),
  /** The runs table's data (`/api/summary` of the table), null before the first answer. */
  summary: null as SummaryBody | null,
  /** The data columns whose last / min / max the runs table shows (`#stat-columns`; [] = the first 2). */
  statColumns: [] as string[],
  /** The runs table's filter (`#runs-filter`). */
  runsFilter: '',
  /** The runs table's order: a column key (`name`, `p:<param>`, `s:<column>:last|min|max`; '' = as listed), 1 ascending, -1 descending. */
  sort: { key: '', dir: 1 as 1 | -1 },
};
window.rowlog = state;

/** Integers for people: `12,345`. */
export const nf = new Intl.NumberFormat('en-US');

/** The listed run `id`, if any. */
export const runOf = (id: string | undefined) => state.runs.find((r) => r.id === id);
/** A checked run's colour: by the order runs were checked. */
export const colorOf = (id: string) => PALETTE[Math.max(0, state.selected.indexOf(id)) % PALETTE.length] as string;
/** When a run's files last changed (ms since the epoch, the server's clock). */
export const lastChange = (run: ServedRun) => run.tables.reduce((m, t) => Math.max(m, t.mtime), 0);
/** Now on the server's clock. */
export const serverNow = () => Date.now() + state.skew;
/** A run written to in the last seconds. */
export const isLive = (run: ServedRun) => serverNow() - lastChange(run) < LIVE_MS;

/** A checked run's rows and last step, as the run list and the status bar show them. */
export function countText(run: ServedRun): string {
  const d = state.data.get(run.id);
  if (!run.tables.some((t) => t.name === state.table)) return `no table ${state.table}`;
  if (!d) return 'loading…';
  const last = d.x === '$step' ? lastX(d) : undefined;
  // Rows but no point: none of them has the x-axis' value (a run logged without $time, on a time axis).
  const none = d.total > 0 && d.cols.size === 0 && d.x !== '$step' ? ` · none has ${d.x}` : '';
  return `${nf.format(d.total)} rows${last !== undefined ? ` · step ${nf.format(last)}` : ''}${none}`;
}
