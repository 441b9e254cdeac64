/**
 * What serve has read of each table file (docs/DESIGN.md §7): a {@link TableIndex} per file and
 * x-axis, valid while the file's size, mtime and inode are what they were when it was read, so
 * that pages opened again, and the runs table's figures, cost no second read. One read at a
 * time per file and axis: concurrent asks share it.
 *
 * Memory is bounded twice (issue 15 §5: 100 runs × 100k rows × 20 columns in ≤ 300 MB):
 * - the entries' points are held within `maxBytes` (estimated from their points,
 *   {@link entryBytes}); past it the least recently used entries go, keeping only their figures
 *   ({@link TableCache.peekStats}: rows, column stats, a few hundred bytes), so the runs table
 *   keeps its last / min / max while a chart read again re-reads its file;
 * - at most `concurrency` reads a page waits for run at a time (each holds a read stream and its
 *   M4 under way), the others queue; background reads ({@link TableCache.warm}, serve's warming
 *   at start, lib/serve/table-warm.ts) run one at a time, and stand still while a page's read
 *   runs or waits, so warming never slows what a page asked for.
 */
import fs from 'node:fs';
import { numberOption } from '../core/options.js';
import type { RowlogWarning } from '../core/warnings.js';
import type { XAxis } from './protocol.js';
import { ancestorsStamp, fileStat, readTableIndex } from './table-index.js';
import type { TableIndex } from './table-index.js';

/** What is kept of an entry whose points went: its figures and the file's state when read. */
export type TableFigures = Pick<TableIndex, 'x' | 'stats' | 'total' | 'startTime' | 'stat'>;

const figuresOf = ({ x, stats, total, startTime, stat }: TableIndex): TableFigures => ({ x, stats, total, startTime, stat });

/** True when `file` is still as it was read (`was`). */
function fresh(file: string, was: TableIndex['stat']): boolean {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st !== undefined && was !== undefined && st.size === was.size && st.mtimeMs === was.mtimeMs && st.ino === was.ino && ancestorsStamp(file) === was.ancestors;
}

/** True when `file` is gone, or another file (inode) or shorter than it was (`was`). */
function replaced(file: string, was: TableIndex['stat']): boolean {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st === undefined || was === undefined || st.ino !== was.ino || st.size < was.size;
}

/** Bytes a point of a column costs held in JS arrays: index, x and y, 8 bytes each, and the arrays' slack. */
const POINT_BYTES = 32;
/** Bytes of a column's own objects (its ColumnM4, three arrays, its stats). */
const COLUMN_BYTES = 600;

/** An entry's estimated size in bytes: its points and columns (what `maxBytes` bounds). */
export function entryBytes(index: TableIndex): number {
  let n = 1000 + index.lastKeys.reduce((s, k) => s + 2 * k.length, 0);
  for (const c of index.m4.cols.values()) n += COLUMN_BYTES + c.size * POINT_BYTES;
  return n;
}

/** Options of {@link TableCache}. */
export interface TableCacheOptions {
  /** Buckets per entry (the finest a page gets from the cache). */
  maxBuckets: number;
  /** Hears a broken ancestor chain. */
  onWarning?: (w: RowlogWarning) => void;
  /** Most bytes of points held ({@link entryBytes}); the least recently used entries go past it (the last one read always stays). @default 32 MiB */
  maxBytes?: number;
  /** Most reads a page waits for at a time; more queue. @default 2 */
  concurrency?: number;
}

/** A read under way or queued. */
interface Job {
  key: string;
  file: string;
  x: XAxis;
  /** A page waits for it (else: warming). */
  urgent: boolean;
  started: boolean;
  /** The file when the read started. */
  stat?: TableIndex['stat'];
  promise: Promise<TableIndex>;
  start: () => void;
}

/** Table files read by serve, by file and x-axis (see the module comment). */
export class TableCache {
  /** Entries, least recently used first. */
  private readonly entries = new Map<string, { index: TableIndex; bytes: number }>();
  /** Figures of entries whose points went. */
  private readonly figures = new Map<string, TableFigures>();
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running = { urgent: 0, background: 0 };
  /** Waiters of paused background reads, woken when no urgent read is left. */
  private paused: Array<() => void> = [];
  private held = 0;
  /** Aborted by {@link close}: reads under way stop. */
  private readonly abort = new AbortController();
  /** Most bytes of points. */
  readonly maxBytes: number;
  /** Most urgent reads at a time. */
  readonly concurrency: number;

  constructor(readonly opts: TableCacheOptions) {
    this.maxBytes = numberOption(opts.maxBytes ?? 32 * 1024 * 1024, 'maxBytes', { min: 0 });
    this.concurrency = numberOption(opts.concurrency ?? 2, 'concurrency', { min: 1, max: 64, integer: true });
  }

  private key(file: string, x: XAxis): string {
    return `${x}\0${file}`;
  }

  /** Bytes of points held now (estimated, {@link entryBytes}). */
  get bytes(): number {
    return this.held;
  }

  /** Entries held with their points. */
  get size(): number {
    return this.entries.size;
  }

  /** The entry of `file` on `x` when it is fresh, without reading (it becomes the most recently used). */
  peek(file: string, x: XAxis = '$step'): TableIndex | undefined {
    const key = this.key(file, x);
    const e = this.entries.get(key);
    if (e === undefined || !fresh(file, e.index.stat)) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.index;
  }

  /** The figures (rows, column stats) of `file` on `x` when a fresh read holds them, its points kept or not; without reading. */
  peekStats(file: string, x: XAxis = '$step'): TableFigures | undefined {
    const key = this.key(file, x);
    const f = this.entries.get(key)?.index ?? this.figures.get(key);
    return f !== undefined && fresh(file, f.stat) ? f : undefined;
  }

  /** The entry of `file` on `x`, read (once, however many ask) when missing or stale; a page's read goes before warming. */
  get(file: string, x: XAxis = '$step'): Promise<TableIndex> {
    const hit = this.peek(file, x);
    if (hit !== undefined) return Promise.resolve(hit);
    const job = this.job(file, x, true);
    if (!job.urgent) {
      // a background read a page now waits for: urgent from here on (woken if it stood still)
      job.urgent = true;
      if (job.started) {
        this.running.background--;
        this.running.urgent++;
        this.wake();
      }
    }
    this.pump();
    return job.promise;
  }

  /**
   * Reads `files` on `x` in the background, in the order given, one at a time and only while
   * no page waits for a read; files read before (fresh or not: a growing file is read again
   * when a page asks, not over and over in the background) are skipped. Failures are left to
   * the read a page makes (it reports them).
   */
  warm(files: readonly string[], x: XAxis = '$step'): void {
    for (const file of files) {
      const key = this.key(file, x);
      if (this.entries.has(key) || this.figures.has(key) || this.jobs.has(key)) continue;
      this.job(file, x, false).promise.catch(() => undefined);
    }
    this.pump();
  }

  /** The job of `file` on `x`, made (and queued) when there is none. */
  private job(file: string, x: XAxis, urgent: boolean): Job {
    const key = this.key(file, x);
    const had = this.jobs.get(key);
    // A read under way of a file gone or replaced since is left to those who asked before (one that grew is shared).
    if (had !== undefined && !(had.started && replaced(file, had.stat))) return had;
    let start!: () => void;
    const go = new Promise<void>((resolve) => (start = resolve));
    const job: Job = { key, file, x, urgent, started: false, start, promise: undefined as unknown as Promise<TableIndex> };
    job.promise = go
      .then(() =>
        readTableIndex(file, x, {
          maxBuckets: this.opts.maxBuckets,
          ...(this.opts.onWarning ? { onWarning: this.opts.onWarning } : {}),
          pause: () => this.pause(job),
          signal: this.abort.signal,
        }),
      )
      .then((index) => {
        if (!this.abort.signal.aborted) this.keep(key, index, job.urgent);
        return index;
      })
      .finally(() => {
        if (this.jobs.get(key) === job) this.jobs.delete(key);
        if (job.urgent) this.running.urgent--;
        else this.running.background--;
        if (this.running.urgent === 0 && !this.queue.some((j) => j.urgent)) this.wake();
        this.pump();
      });
    this.jobs.set(key, job);
    this.queue.push(job);
    return job;
  }

  /** Stops: queued background reads are dropped, reads under way end early (and are not kept). */
  close(): void {
    this.abort.abort();
    for (let k = this.queue.length - 1; k >= 0; k--) {
      const job = this.queue[k] as Job;
      if (job.urgent) continue;
      this.queue.splice(k, 1);
      this.jobs.delete(job.key);
    }
    this.wake();
  }

  /** A background read's pause: while urgent reads run or wait. */
  private pause(job: Job): Promise<void> | undefined {
    if (job.urgent || this.abort.signal.aborted || (this.running.urgent === 0 && !this.queue.some((j) => j.urgent))) return undefined;
    return new Promise<void>((resolve) => this.paused.push(resolve));
  }

  private wake(): void {
    const w = this.paused;
    this.paused = [];
    for (const f of w) f();
  }

  /** Starts queued reads: urgent ones up to `concurrency`, a background one when nothing urgent is left. */
  private pump(): void {
    for (let k = 0; k < this.queue.length; ) {
      const job = this.queue[k] as Job;
      const urgentFree = this.running.urgent < this.concurrency;
      const backgroundFree = this.running.urgent === 0 && this.running.background === 0 && !this.queue.some((j) => j.urgent);
      if ((job.urgent && urgentFree) || (!job.urgent && backgroundFree)) {
        this.queue.splice(k, 1);
        job.started = true;
        job.stat = fileStat(job.file);
        if (job.urgent) this.running.urgent++;
        else this.running.background++;
        job.start();
      } else k++;
    }
  }

  /**
   * Holds a new entry, then lets the least recently used go while over `maxBytes` (never the new
   * one). A background read that does not fit keeps its figures alone: warming (most recently
   * changed first) never pushes out what came before it.
   */
  private keep(key: string, index: TableIndex, urgent: boolean): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.held -= old.bytes;
      this.entries.delete(key);
    }
    this.figures.delete(key);
    const bytes = entryBytes(index);
    if (!urgent && this.held + bytes > this.maxBytes) {
      this.figures.set(key, figuresOf(index));
      return;
    }
    this.entries.set(key, { index, bytes });
    this.held += bytes;
    for (const [k, e] of this.entries) {
      if (this.held <= this.maxBytes || k === key) break;
      this.entries.delete(k);
      this.held -= e.bytes;
      this.figures.set(k, figuresOf(e.index));
    }
  }
}
