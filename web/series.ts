/**
 * What the page holds of one run's table, and how the server's events change it (docs/DESIGN.md §7):
 * a `snapshot` replaces it, a `rows` event replaces its points from `from` on and, when the
 * server's buckets got coarser, the page runs the M4 rule again over what it holds, with the
 * server's own code (lib/serve/decimate.ts, loaded as is). Per column: the kept points (row
 * index, x, y; y may be NaN or ±Infinity, which the charts mark instead of drawing).
 */
import { fromWire, m4 } from '../lib/serve/decimate.js';
import type { Points } from '../lib/serve/decimate.js';
import type { Block, RowsEvent, ServedFormat, Snapshot } from '../lib/serve/protocol.js';

/** One run's table as the page holds it. */
export interface RunData {
  total: number;
  /** The x-axis of the points' x. */
  x: string;
  bucket: number;
  followed: boolean;
  format: ServedFormat | 'live';
  startTime: number | undefined;
  /** column → its points. */
  cols: Map<string, Points>;
  /** The largest row index held and its x (the run list's "step N"). */
  lastIndex: number;
  lastX: number | undefined;
}

function noteLast(d: RunData): void {
  for (const p of d.cols.values()) {
    const k = p.i.length - 1;
    if (k >= 0 && (p.i[k] as number) >= d.lastIndex) {
      d.lastIndex = p.i[k] as number;
      d.lastX = p.x[k];
    }
  }
}

/** The run's data as a `snapshot` gives it. */
export function fromSnapshot(msg: Snapshot): RunData {
  const d: RunData = { total: msg.total, x: msg.x, bucket: msg.bucket, followed: msg.followed, format: msg.format, startTime: msg.startTime, cols: new Map(), lastIndex: -1, lastX: undefined };
  msg.block.columns.forEach((c, k) => {
    const p = msg.block.points[k];
    if (p !== undefined) d.cols.set(c, fromWire(p));
  });
  noteLast(d);
  return d;
}

/** Replaces each column's points at indexes ≥ `from` with the block's. */
function replaceFrom(d: RunData, from: number, block: Block): void {
  const fresh = new Map<string, Points>();
  block.columns.forEach((c, k) => {
    const p = block.points[k];
    if (p !== undefined) fresh.set(c, fromWire(p));
  });
  for (const [c, p] of d.cols) {
    let cut = p.i.length;
    while (cut > 0 && (p.i[cut - 1] as number) >= from) cut--;
    p.i.length = cut;
    p.x.length = cut;
    p.y.length = cut;
    const add = fresh.get(c);
    if (add) for (let k = 0; k < add.i.length; k++) (p.i.push(add.i[k] as number), p.x.push(add.x[k] as number), p.y.push(add.y[k] as number));
    fresh.delete(c);
  }
  for (const [c, p] of fresh) d.cols.set(c, p);
}

/** Applies a `rows` event (protocol.ts's rule): points from `from` on replaced, then rebucketed when the server's buckets got coarser. */
export function applyRows(d: RunData, msg: RowsEvent): void {
  d.total = msg.total;
  replaceFrom(d, msg.from, msg.block);
  if (msg.bucket > d.bucket) {
    d.bucket = msg.bucket;
    for (const [c, p] of d.cols) d.cols.set(c, m4(p, d.bucket));
  }
  noteLast(d);
}
