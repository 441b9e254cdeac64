/**
 * What serve has read of each table file (docs/DESIGN.md §7): a {@link TableIndex} per file and
 * x-axis, valid while the file's size, mtime and inode, and those of the ancestors' files a
 * resumed run's table is read after, are what they were when it was read ({@link readStamp}), so
 * that pages opened again, and the runs table's figures, cost no second read. One read at a
 * time per file and axis: concurrent asks share it. Memory: at most `maxPoints` M4 points in all
 * (each entry counted as at least {@link MIN_WEIGHT}, so entries of axes no row has cannot pile
 * up either: `x=` is the page's to choose); past it the entries used longest ago are dropped and
 * read again when asked for.
 */
import { numberOption } from '../core/options.js';
import type { RowlogWarning } from '../core/warnings.js';
import type { XAxis } from './protocol.js';
import { readStamp, readTableIndex } from './table-index.js';
import type { TableIndex } from './table-index.js';

/** True when `file` (and each ancestor's file it is read after) is still as `index` read it. */
function fresh(file: string, index: TableIndex): boolean {
  return index.stamp !== '' && readStamp(file) === index.stamp;
}

/** Points an entry counts as at least (its figures and last rows weigh something too). */
const MIN_WEIGHT = 1024;

/** The M4 points an entry holds, at least {@link MIN_WEIGHT}. */
function weightOf(e: TableIndex): number {
  let n = 0;
  for (const c of e.m4.cols.values()) n += c.size;
  return Math.max(MIN_WEIGHT, n + e.stats.cols.size);
}

/** Options of {@link TableCache}. */
export interface TableCacheOptions {
  /** Buckets per entry (the finest a page gets from the cache). */
  maxBuckets: number;
  /** Hears a broken ancestor chain. */
  onWarning?: (w: RowlogWarning) => void;
  /** M4 points kept in all entries (~24 bytes each); the least recently used entries go past it. @default 4_000_000 */
  maxPoints?: number;
}

/** Table files read by serve, by file and x-axis (see the module comment). */
export class TableCache {
  /** By key, least recently used first. */
  private readonly entries = new Map<string, { index: TableIndex; weight: number }>();
  private readonly reading = new Map<string, Promise<TableIndex>>();
  private readonly maxPoints: number;
  /** The weights of the entries, summed. */
  private held = 0;

  /** Options are checked (`ERR_INVALID_OPTION`). */
  constructor(readonly opts: TableCacheOptions) {
    this.maxPoints = numberOption(opts.maxPoints ?? 4_000_000, 'maxPoints', { min: 0 });
  }

  /** Points held by the entries now (each at least {@link MIN_WEIGHT}). */
  get points(): number {
    return this.held;
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.held -= e.weight;
  }

  /** Keeps `index` as the most recently used entry, dropping the least recently used past `maxPoints` (never the newest). */
  private store(key: string, index: TableIndex): void {
    this.drop(key);
    const weight = weightOf(index);
    this.entries.set(key, { index, weight });
    this.held += weight;
    for (const k of this.entries.keys()) {
      if (this.held <= this.maxPoints || k === key) break;
      this.drop(k);
    }
  }

  private key(file: string, x: XAxis): string {
    return `${x}\0${file}`;
  }

  /** The entry of `file` on `x` when it is fresh, without reading. */
  peek(file: string, x: XAxis = '$step'): TableIndex | undefined {
    const key = this.key(file, x);
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (!fresh(file, e.index)) {
      this.drop(key);
      return undefined;
    }
    // most recently used: last in the map's order
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.index;
  }

  /** The entry of `file` on `x`, read (once, however many ask) when missing or stale. */
  get(file: string, x: XAxis = '$step'): Promise<TableIndex> {
    const hit = this.peek(file, x);
    if (hit !== undefined) return Promise.resolve(hit);
    const key = this.key(file, x);
    let p = this.reading.get(key);
    if (p === undefined) {
      p = readTableIndex(file, x, { maxBuckets: this.opts.maxBuckets, ...(this.opts.onWarning ? { onWarning: this.opts.onWarning } : {}) }).finally(() => this.reading.delete(key));
      p.then((e) => this.store(key, e)).catch(() => undefined);
      this.reading.set(key, p);
    }
    return p;
  }
}
