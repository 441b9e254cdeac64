/**
 * What serve has read of each table file (docs/DESIGN.md §7): a {@link TableIndex} per file and
 * x-axis, valid while the file's size, mtime and inode, and those of the ancestors' files a
 * resumed run's table is read after, are what they were when it was read ({@link readStamp}), so
 * that pages opened again, and the runs table's figures, cost no second read. One read at a
 * time per file and axis: concurrent asks share it. Memory: O(maxBuckets × columns) per entry.
 */
import type { RowlogWarning } from '../core/warnings.js';
import type { XAxis } from './protocol.js';
import { readStamp, readTableIndex } from './table-index.js';
import type { TableIndex } from './table-index.js';

/** True when `file` (and each ancestor's file it is read after) is still as `index` read it. */
function fresh(file: string, index: TableIndex): boolean {
  return index.stamp !== '' && readStamp(file) === index.stamp;
}

/** Options of {@link TableCache}. */
export interface TableCacheOptions {
  /** Buckets per entry (the finest a page gets from the cache). */
  maxBuckets: number;
  /** Hears a broken ancestor chain. */
  onWarning?: (w: RowlogWarning) => void;
}

/** Table files read by serve, by file and x-axis (see the module comment). */
export class TableCache {
  private readonly entries = new Map<string, TableIndex>();
  private readonly reading = new Map<string, Promise<TableIndex>>();

  constructor(readonly opts: TableCacheOptions) {}

  private key(file: string, x: XAxis): string {
    return `${x}\0${file}`;
  }

  /** The entry of `file` on `x` when it is fresh, without reading. */
  peek(file: string, x: XAxis = '$step'): TableIndex | undefined {
    const e = this.entries.get(this.key(file, x));
    return e !== undefined && fresh(file, e) ? e : undefined;
  }

  /** The entry of `file` on `x`, read (once, however many ask) when missing or stale. */
  get(file: string, x: XAxis = '$step'): Promise<TableIndex> {
    const hit = this.peek(file, x);
    if (hit !== undefined) return Promise.resolve(hit);
    const key = this.key(file, x);
    let p = this.reading.get(key);
    if (p === undefined) {
      p = readTableIndex(file, x, { maxBuckets: this.opts.maxBuckets, ...(this.opts.onWarning ? { onWarning: this.opts.onWarning } : {}) }).finally(() => this.reading.delete(key));
      p.then((e) => this.entries.set(key, e)).catch(() => undefined);
      this.reading.set(key, p);
    }
    return p;
  }
}
