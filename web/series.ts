/**
 * What the page holds of one run's table, and how the server's events change it (docs/DESIGN.md §7):
 * a `snapshot` replaces it, a `rows` event appends to it. Points are kept on the server's grid
 * (every `stride`-th row by index, plus the last row, the "tip", shown only until the next row
 * comes); when the table grows past `maxPoints` the grid gets coarser and the points off it are
 * dropped, with the same rule the server strides by (lib/serve/decimate.ts, loaded as is).
 */
import { onGrid } from '../lib/serve/decimate.js';
import type { Block, RowsEvent, ServedFormat, Snapshot } from '../lib/serve/protocol.js';

/** One run's points: `index[k]` is the row index of the k-th point, `steps[k]` its step, `cols` the values by column. */
export interface RunData {
  total: number;
  stride: number;
  maxPoints: number;
  followed: boolean;
  format: ServedFormat | 'live';
  index: number[];
  steps: Array<number | null>;
  cols: Map<string, Array<number | null>>;
  /** The last point is off the grid: dropped when the next rows come. */
  tip: boolean;
}

/** The run's data as a `snapshot` gives it. */
export function fromSnapshot(msg: Snapshot): RunData {
  const d: RunData = {
    total: msg.total,
    stride: msg.stride,
    maxPoints: msg.maxPoints,
    followed: msg.followed,
    format: msg.format,
    index: [],
    steps: [],
    cols: new Map(),
    tip: false,
  };
  appendBlock(d, msg.block);
  return d;
}

/** Drops the previous last point when it was off the grid (it was only shown until the next one came). */
function dropTip(d: RunData): void {
  if (!d.tip) return;
  d.index.pop();
  d.steps.pop();
  for (const ys of d.cols.values()) ys.pop();
  d.tip = false;
}

/** Appends a block's points (new columns get nulls before, missing ones nulls after); the last may be an off-grid tip. */
export function appendBlock(d: RunData, block: Block): void {
  dropTip(d);
  const n0 = d.index.length;
  const stepCol = block.columns.indexOf('$step');
  block.columns.forEach((c, ci) => {
    if (c === '$step') return;
    let ys = d.cols.get(c);
    if (!ys) d.cols.set(c, (ys = new Array<number | null>(n0).fill(null)));
    for (const v of block.data[ci] ?? []) ys.push(v);
  });
  for (const ix of block.index) d.index.push(ix);
  for (const s of stepCol >= 0 ? (block.data[stepCol] ?? []) : block.index) d.steps.push(s);
  const n1 = d.index.length;
  for (const ys of d.cols.values()) while (ys.length < n1) ys.push(null);
  d.tip = n1 > 0 && (d.index[n1 - 1] as number) % d.stride !== 0;
}

/** Keeps only the points on the grid of `stride` (a coarser one, as the table grew), and the last point. */
export function restride(d: RunData, stride: number): void {
  d.stride = stride;
  const keep = onGrid(d.index, stride, true);
  if (keep.length !== d.index.length) {
    const pick = <T>(a: T[]) => keep.map((k) => a[k] as T);
    d.index = pick(d.index);
    d.steps = pick(d.steps);
    for (const [c, ys] of d.cols) d.cols.set(c, pick(ys));
  }
  const n = d.index.length;
  d.tip = n > 0 && (d.index[n - 1] as number) % stride !== 0;
}

/**
 * Applies a `rows` event: the new points, then the grid the server says (it may have doubled
 * while the rows came, so points of the block can be off it too), and at most 2 × maxPoints held.
 */
export function applyRows(d: RunData, msg: RowsEvent): void {
  d.total = msg.total;
  appendBlock(d, msg.block);
  if (msg.stride > d.stride) restride(d, msg.stride);
  while (d.index.length > 2 * d.maxPoints) restride(d, d.stride * 2);
}
