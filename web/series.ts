/**
 * What the page holds of one run's table, and how the server's events change it (docs/DESIGN.md §7,
 * issue 15): per column the points the server kept under the M4 rule (lib/serve/decimate.ts, the
 * same compiled file the server runs): row index, x on the axis asked for, y (NaN and ±Infinity
 * included; the charts mark them). A `snapshot` replaces it; a `rows` event is merged by
 * protocol.ts's rule: the points at indexes ≥ `from` go, the event's are appended, and when its
 * `bucket` is coarser, everything held is put through {@link m4} at that bucket — so the page
 * holds what a fresh snapshot would, without reading the table again.
 */
import { fromWire, m4 } from '../lib/serve/decimate.js';
import type { Points } from '../lib/serve/decimate.js';
import type { Block, RowsEvent, ServedFormat, Snapshot, XAxis } from '../lib/serve/protocol.js';

/** One run's table as the page holds it (the full view, or a zoom's range). */
export interface RunData {
  /** Rows in the table. */
  total: number;
  /** Rows per bucket of the points held (a power of 2). */
  bucket: number;
  /** The most buckets the page asked for. */
  maxBuckets: number;
  /** The x-axis of every point's `x`. */
  x: XAxis;
  /** `$time` of the table's first row that has one (ms), for relative time. */
  startTime: number | undefined;
  /** A zoom's x range (the points are the rows in it), else undefined. */
  range: { from: number; to: number } | undefined;
  /** New rows come as `rows` events (false: a CSV table, sent again whole; a range). */
  followed: boolean;
  format: ServedFormat | 'live';
  /** column → its kept points, in index order. */
  cols: Map<string, Points>;
}

/** The run's data as a `snapshot` (or `/api/rows`) gives it. */
export function fromSnapshot(msg: Snapshot): RunData {
  const d: RunData = {
    total: msg.total,
    bucket: msg.bucket,
    maxBuckets: msg.maxBuckets,
    x: msg.x,
    startTime: msg.startTime,
    range: msg.range === undefined ? undefined : { from: msg.range.from, to: msg.range.to },
    followed: msg.followed,
    format: msg.format,
    cols: new Map(),
  };
  appendBlock(d, msg.block);
  return d;
}

/** Appends a block's points to each of its columns (new columns start empty). */
function appendBlock(d: RunData, block: Block): void {
  block.columns.forEach((c, k) => {
    const wire = block.points[k];
    if (wire === undefined) return;
    const add = fromWire(wire);
    const held = d.cols.get(c);
    if (held === undefined) {
      d.cols.set(c, add);
      return;
    }
    for (let j = 0; j < add.i.length; j++) {
      held.i.push(add.i[j] as number);
      held.x.push(add.x[j] as number);
      held.y.push(add.y[j] as number);
    }
  });
}

/** Drops every column's points at row indexes ≥ `from`. */
function dropFrom(d: RunData, from: number): void {
  for (const p of d.cols.values()) {
    let n = p.i.length;
    while (n > 0 && (p.i[n - 1] as number) >= from) n--;
    p.i.length = n;
    p.x.length = n;
    p.y.length = n;
  }
}

/**
 * Applies a `rows` event (lib/serve/protocol.ts's RowsEvent): the points at indexes ≥ `from` go,
 * the block's are appended, and when `bucket` is coarser than the one held every column is
 * rebucketed by the M4 rule. Events of another x-axis are ignored (the page reconnects on a change).
 */
export function applyRows(d: RunData, msg: RowsEvent): void {
  if (msg.x !== d.x) return;
  d.total = msg.total;
  dropFrom(d, msg.from);
  appendBlock(d, msg.block);
  if (msg.bucket > d.bucket) {
    d.bucket = msg.bucket;
    for (const [c, p] of d.cols) d.cols.set(c, m4(p, msg.bucket));
  }
}

/** The x of the last row held (of any column), for the run list's "step N"; undefined with none. */
export function lastX(d: RunData): number | undefined {
  let best = -1;
  let x: number | undefined;
  for (const p of d.cols.values()) {
    const n = p.i.length;
    if (n > 0 && (p.i[n - 1] as number) > best) {
      best = p.i[n - 1] as number;
      x = p.x[n - 1];
    }
  }
  return x;
}

/** The last finite value of a column held (the chart header's figure); undefined with none. */
export function lastFinite(p: Points | undefined): number | undefined {
  if (p === undefined) return undefined;
  for (let k = p.y.length - 1; k >= 0; k--) {
    const y = p.y[k] as number;
    if (y - y === 0) return y;
  }
  return undefined;
}
