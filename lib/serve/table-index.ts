/**
 * A table file read once for serve (docs/DESIGN.md §7): every row (lib/serve/table-rows.ts:
 * rowlog's own JSONL the fast way, anything else through readLog) into the M4 rule
 * ({@link TableM4}) against one x-axis, each column's figures for the runs table ({@link ColumnStats}), and the last rows as JSON so that a tail that follows can be lined up
 * with where the read ended (lib/serve/snapshot.ts's alignTail). A resumed run's table is read
 * with its ancestors' rows first (readLog's `ancestry`), one curve. Memory: O(maxBuckets ×
 * columns), whatever the file's length.
 */
import fs from 'node:fs';
import type { RowlogWarning } from '../core/warnings.js';
import { ancestorFiles } from '../run/ancestry.js';
import { TableM4, wireY, xOf } from './decimate.js';
import type { ColumnStats, XAxis } from './protocol.js';
import { PAUSE_ROWS, tableRows } from './table-rows.js';

export { PAUSE_ROWS };

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
  return `${st.size}:${st.mtimeMs}:${st.ino}${ancestorsStamp(file)}`;
}

/** The ancestors' part of {@link readStamp} (`''` for a run that was not resumed). */
export function ancestorsStamp(file: string): string {
  let out = '';
  for (const a of ancestorFiles(file).files) {
    const s = fs.statSync(a, { throwIfNoEntry: false });
    out += s === undefined ? `\0${a}:gone` : `\0${a}:${s.size}:${s.mtimeMs}:${s.ino}`;
  }
  return out;
}

/** The file as a read found it when it started: its size, mtime, inode, and its ancestors' {@link ancestorsStamp}. */
export function fileStat(file: string): TableIndex['stat'] {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st === undefined ? undefined : { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ancestors: ancestorsStamp(file) };
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
  /** The file as it was when the read started (a cache is valid while size, mtime, inode and the ancestors' files match). */
  stat: { size: number; mtimeMs: number; ino: number; ancestors: string } | undefined;
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
  /**
   * Asked between batches of rows (every {@link PAUSE_ROWS} rows through readLog): a promise
   * to wait for before going on, or undefined (serve's background warming gives way to a page's
   * read this way, lib/serve/table-cache.ts).
   */
  pause?: () => Promise<void> | undefined;
}


/** Rows kept for alignTail (it looks at the last few). */
const LAST = 16;

/** Reads the table file `file` against the x-axis `x` (see the module comment). */
export async function readTableIndex(file: string, x: XAxis, opts: TableIndexOptions = {}): Promise<TableIndex> {
  const stat = fileStat(file);
  const range = opts.range;
  let m4 = new TableM4(opts.maxBuckets);
  let stats = new TableStats();
  // The last LAST rows, as objects (a ring): only they become JSON text, once, at the end.
  let last: Array<Record<string, unknown>> = [];
  let startTime: number | undefined;
  let index = 0;
  const onRow = (row: Record<string, unknown>): void => {
    const i = index++;
    if (startTime === undefined && typeof row.$time === 'number' && row.$time - row.$time === 0) startTime = row.$time;
    stats.push(i, row);
    const xv = xOf(row, i, x);
    if (xv !== undefined && (range === undefined || (xv >= range.from && xv <= range.to))) m4.push(i, xv, row);
    last[i % LAST] = row;
  };
  const restart = (): void => {
    m4 = new TableM4(opts.maxBuckets);
    stats = new TableStats();
    last = [];
    startTime = undefined;
    index = 0;
  };
  await tableRows(file, onRow, restart, { signal: opts.signal, pause: opts.pause, onWarning: opts.onWarning });
  m4.total = index;
  const lastKeys: string[] = [];
  for (let i = Math.max(0, index - LAST); i < index; i++) lastKeys.push(JSON.stringify(last[i % LAST]));
  return { x, m4, stats, total: index, startTime, lastKeys, stat };
}
