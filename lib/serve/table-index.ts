/**
 * A table file read once for serve (docs/DESIGN.md §7): every row through {@link readLog} into
 * the M4 rule ({@link TableM4}) against one x-axis, each column's figures for the runs table
 * ({@link ColumnStats}), and the last rows as JSON so that a tail that follows can be lined up
 * with where the read ended (lib/serve/snapshot.ts's alignTail). A resumed run's table is read
 * with its ancestors' rows first (readLog's `ancestry`), one curve. Memory: O(maxBuckets ×
 * columns), whatever the file's length.
 */
import fs from 'node:fs';
import type { RowlogWarning } from '../core/warnings.js';
import { readLog } from '../read/read-log.js';
import { ancestorFiles } from '../run/ancestry.js';
import { TableM4, wireY, xOf } from './decimate.js';
import type { ColumnStats, XAxis } from './protocol.js';

/** Each column's running figures (see {@link ColumnStats}). */
export class TableStats {
  readonly cols = new Map<string, ColumnStats>();
  rows = 0;

  /** Adds the row at `index` (its `$step`, else the index, is the figures' `lastStep`). */
  push(index: number, row: Record<string, unknown>): void {
    this.rows = index + 1;
    const s = row.$step;
    const step = typeof s === 'number' && s - s === 0 ? s : index;
    for (const k in row) {
      if (k.charCodeAt(0) === 36 /* $ */) continue;
      const v = row[k];
      if (typeof v !== 'number') continue;
      let c = this.cols.get(k);
      if (c === undefined) this.cols.set(k, (c = { n: 0, nonFinite: 0, last: null, lastStep: null, min: null, max: null }));
      c.lastStep = step;
      if (v - v === 0) {
        c.n++;
        c.last = v;
        if (c.min === null || v < c.min) c.min = v;
        if (c.max === null || v > c.max) c.max = v;
      } else {
        c.nonFinite++;
        c.last = wireY(v);
      }
    }
  }

  /** The figures as JSON carries them. */
  toJSON(): Record<string, ColumnStats> {
    return Object.fromEntries(this.cols);
  }
}

/**
 * What a read of table file `file` depends on, as one text: the size, mtime and inode of the
 * file and of each ancestor's file it is read after (readLog's `ancestry`, docs/DESIGN.md §6),
 * `''` when `file` is gone. A read is still right while this text holds: a resumed run's file
 * may be unchanged while a parent's was rewritten, replaced or removed.
 */
export function readStamp(file: string): string {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st === undefined) return '';
  const parts = [`${st.size}:${st.mtimeMs}:${st.ino}`];
  for (const a of ancestorFiles(file).files) {
    const s = fs.statSync(a, { throwIfNoEntry: false });
    parts.push(s === undefined ? `${a}:gone` : `${a}:${s.size}:${s.mtimeMs}:${s.ino}`);
  }
  return parts.join('\0');
}

/** What one read of a table file gives. */
export interface TableIndex {
  /** The x-axis read against. */
  x: XAxis;
  m4: TableM4;
  stats: TableStats;
  /** Rows read. */
  total: number;
  /** `$time` of the first row that has one (ms). */
  startTime: number | undefined;
  /** The last rows (at most 16), as JSON text, to line up a tail with. */
  lastKeys: string[];
  /** {@link readStamp} when the read started (a cache entry is valid while it holds); `''`: the file was gone. */
  stamp: string;
}

/** Options of {@link readTableIndex}. */
export interface TableIndexOptions {
  /** Most buckets. @default MAX_BUCKETS */
  maxBuckets?: number;
  /** Only rows with from ≤ x ≤ to (a zoom); buckets are then counted from the first of them. */
  range?: { from: number; to: number };
  /** Hears a broken ancestor chain (`W_ANCESTRY`). */
  onWarning?: (w: RowlogWarning) => void;
  /** Stops the read (the page went). */
  signal?: AbortSignal;
}

/** Reads the table file `file` against the x-axis `x` (see the module comment). */
export async function readTableIndex(file: string, x: XAxis, opts: TableIndexOptions = {}): Promise<TableIndex> {
  const stamp = readStamp(file);
  const m4 = new TableM4(opts.maxBuckets);
  const stats = new TableStats();
  const lastKeys: string[] = [];
  const range = opts.range;
  let startTime: number | undefined;
  let index = 0;
  for await (const row of readLog(file, { ancestry: true, ...(opts.onWarning ? { onWarning: opts.onWarning } : {}) })) {
    if (opts.signal?.aborted) break;
    const i = index++;
    if (startTime === undefined && typeof row.$time === 'number' && row.$time - row.$time === 0) startTime = row.$time;
    stats.push(i, row);
    const xv = xOf(row, i, x);
    if (xv !== undefined && (range === undefined || (xv >= range.from && xv <= range.to))) m4.push(i, xv, row);
    lastKeys.push(JSON.stringify(row));
    if (lastKeys.length > 16) lastKeys.splice(0, 8);
  }
  m4.total = index;
  return { x, m4, stats, total: index, startTime, lastKeys, stamp };
}
