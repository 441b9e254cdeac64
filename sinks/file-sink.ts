/**
 * FileSink: the machinery shared by the file sinks (JSONL now; CSV and blocked gzip plug in
 * through {@link RowFormat}). Entries are turned into text at write time and batched per file;
 * a batch goes to its FileWriter when it reaches `flushBytes` or when `flushIntervalMs` has
 * passed since the first unwritten row. `_write` always calls back synchronously, so the
 * logger never waits on the disk.
 *
 * The interval holds whether or not the event loop turns (issue 9, point 8): a training loop
 * with no `await` never lets the timer fire, so `_write` notices it itself. Arming the timer
 * also schedules an immediate; until that has run (the loop has not turned) each row reads the
 * clock, and after it one row in 64 does, and a batch older than its interval is then written
 * synchronously (compressed and written: the flushSync path). An event loop that turns costs
 * one clock read per 64 rows.
 *
 * Faults are per file (issue 9, point 2). A sink holds at most `maxOpenFiles` fds (lib/io/fd-pool.ts);
 * an I/O error on one file (EMFILE, ENOSPC, EACCES, EIO) is warned once as `W_FILE_ERROR`, that
 * file keeps its bytes and retries with a backoff, and the other files keep writing. A failing
 * file may hold bytes only within `maxQueuedBytes`: past it its OLDEST batches are dropped with
 * a `W_ROWS_DROPPED` warning counting the rows, instead of memory growing or the synchronous
 * path spinning on it; before dropping, a failing file whose backoff has run out (its timer
 * cannot fire in a loop that never yields) is tried once more. A file that cannot even be
 * opened for its repair (an unreadable `.gz`) is such a fault too: its rows wait queued and the
 * repair is retried before its next open. A row the format cannot turn into text because the
 * file cannot be read (a CSV's header behind EACCES) is counted as dropped. `end()` and
 * `destroy()` drop nothing before they have tried every file once more: they write what the disk
 * takes, and report the rows that could not be written (`W_ROWS_DROPPED`; `end()` then fails
 * with the file's error, which the logger reports as `W_SINK_ERROR`). Programming errors (a bad
 * table name, a malformed Entry) still fail the sink with `'error'`.
 *
 * Rows a format cannot format for lack of fds wait in order (sinks/deferred-rows.ts); the
 * files, their batches and their loss counts are sinks/sink-file.ts; the seams a format plugs
 * into are sinks/row-format.ts, the options sinks/file-sink-options.ts.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { assertName, isValidName } from '../lib/core/entry.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { LoopWatch } from '../lib/core/loop-watch.js';
import type { Sink } from '../lib/core/sink.js';
import { WarningGate } from '../lib/core/warnings.js';
import { plainCodec } from '../lib/io/codec.js';
import { isEmfile, isSystemError } from '../lib/io/errno.js';
import { FdPool } from '../lib/io/fd-pool.js';
import { gzipCodec } from '../lib/io/gzip-writer.js';
import { walkFiles } from '../lib/io/walk-files.js';
import { isTableFolder } from '../lib/run/layout.js';
import { DeferredRows } from './deferred-rows.js';
import { enforceBound, queuedBytes, writeQueuedSync } from './queue-bound.js';
import { resolveFileSinkOptions } from './file-sink-options.js';
import type { FileSinkOptions } from './file-sink-options.js';
import type { RowFormat } from './row-format.js';
import { SinkFile } from './sink-file.js';
import type { SinkFileContext } from './sink-file.js';

export class FileSink extends Writable implements Sink {
  readonly #format: RowFormat;
  readonly #path: string | undefined;
  readonly #dir: string | undefined;
  readonly #ext: string;
  readonly #flushBytes: number;
  readonly #flushIntervalMs: number;
  readonly #maxQueuedBytes: number;
  readonly #files = new Map<string, SinkFile>();
  readonly #byTable = new Map<string, SinkFile>();
  #timer: NodeJS.Timeout | undefined;
  /** When the timer was armed (performance.now()), and whether the event loop turned since. */
  #armedAt = 0;
  readonly #loop = new LoopWatch();
  readonly #gate = new WarningGate(this);
  readonly #pool: FdPool;
  readonly #deferred: DeferredRows;
  /** What every file of this sink shares (its codec, the pool's withFd, the warnings). */
  readonly #ctx: SinkFileContext;

  constructor(opts: FileSinkOptions, format: RowFormat) {
    super({ objectMode: true });
    const o = resolveFileSinkOptions(opts, format.ext);
    this.#format = format;
    this.#path = o.path;
    this.#dir = o.dir;
    this.#ext = o.ext;
    this.#flushBytes = o.flushBytes;
    this.#flushIntervalMs = o.flushIntervalMs;
    this.#maxQueuedBytes = o.maxQueuedBytes;
    this.#pool = new FdPool(o.maxOpenFiles);
    const pool = this.#pool;
    const onWarning = (w: RowlogWarning) => this.#gate.warn(w, w.message);
    const codec = o.gz ? gzipCodec({ level: o.gzipLevel, fsync: o.fsync, pool, onWarning }) : plainCodec(o.fsync, pool);
    this.#ctx = {
      codec,
      gz: o.gz,
      fsync: o.fsync,
      flushBytes: o.flushBytes,
      maxQueuedBytes: o.maxQueuedBytes,
      gate: this.#gate,
      withFd: (fn) => this.#withFd(fn),
    };
    this.#deferred = new DeferredRows({
      files: () => this.#files.values(),
      line: (entry, f) => this.#format.line(entry, f),
      append: (f, line) => this.#append(f, line),
      fail: (err) => {
        if (!this.destroyed) this.destroy(err);
      },
      destroyed: () => this.destroyed,
    });
  }

  /** The file an Entry of `table` goes to. */
  pathOf(table: string): string {
    return this.#path ?? path.join(this.#dir as string, table + this.#ext);
  }

  /**
   * Takes up work a killed process left on this sink's files (docs/DESIGN.md §4: a CSV rewrite cut short
   * is finished, its temp files removed), for tables that get no row in this run as well. The
   * logger calls it once the run folder is locked; a sink used alone may call it itself. Reads
   * only file names, and the header and end of each file with such work. A file that cannot be
   * read is that file's fault (W_FILE_ERROR); only a programming error throws.
   */
  resume(): void {
    const pending = this.#format.pending;
    if (pending === undefined || this.#format.resume === undefined) return;
    const files = new Set<string>();
    const root = this.#dir ?? path.dirname(this.#path as string);
    walkFiles(
      root,
      (p) => {
        // `<table><ext>.<mark>`: the table file is the longest prefix ending in ext
        const at = p.lastIndexOf(`${this.#ext}.`);
        if (at < 0 || !pending.test(p.slice(at + this.#ext.length + 1))) return;
        const file = p.slice(0, at + this.#ext.length);
        if (this.#path === undefined || path.resolve(file) === path.resolve(this.#path)) files.add(file);
      },
      this.#dir === undefined ? { depth: 0 } : { enter: (rel, name, level) => isTableFolder(root, rel, name, level) },
    );
    for (const file of files) {
      const table = this.#dir === undefined ? undefined : path.relative(this.#dir, file).split(path.sep).join('/').slice(0, -this.#ext.length);
      if (table !== undefined && !isValidName(table)) continue;
      let f: SinkFile | undefined;
      try {
        f = table === undefined ? this.#openPath(this.#path as string) : this.#open(table);
        if (f.appended) this.#format.resume(f);
      } catch (err) {
        if (f === undefined || !isSystemError(err)) throw err;
        f.failed(err as NodeJS.ErrnoException);
      }
    }
  }

  #openPath(p: string): SinkFile {
    let f = this.#files.get(p);
    if (f === undefined) {
      f = new SinkFile(p, this.#ctx);
      this.#files.set(p, f);
    }
    return f;
  }

  #open(table: string): SinkFile {
    let f = this.#byTable.get(table);
    if (f !== undefined) return f;
    if (this.#dir !== undefined) assertName(table); // a table becomes a path: it must not leave `dir`
    f = this.#openPath(this.pathOf(table)); // the folder is made by the writer's first open
    this.#byTable.set(table, f);
    return f;
  }

  #withFd<T>(fn: () => T): T {
    for (;;) {
      try {
        return fn();
      } catch (err) {
        if (!isEmfile(err) || !this.#pool.parkIdle()) throw err;
      }
    }
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let f: SinkFile | undefined;
    let line: string;
    try {
      f = this.#open(entry.table);
      if (f.deferred.length > 0) {
        this.#deferred.defer(f, entry); // behind the rows already waiting, in order
        callback();
        return;
      }
      line = this.#format.line(entry, f);
    } catch (err) {
      if (f === undefined || !isSystemError(err)) {
        callback(err as Error); // a bad table name fails the sink; a file that cannot be opened only that file
        return;
      }
      if (isEmfile(err)) {
        f.error = err as NodeJS.ErrnoException; // no warning: waiting for an fd, as in the pool
        this.#deferred.defer(f, entry);
      } else f.unformattable(err);
      callback();
      return;
    }
    this.#append(f, line);
    callback();
  }

  /** The row's text goes into its file's batch (handed to the writer when full or due). */
  #append(f: SinkFile, line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: hand the batch before a line could overflow it.
    if (line.length * 3 > this.#flushBytes - f.used) {
      f.hand();
      enforceBound(this.#files, this.#maxQueuedBytes);
    }
    if (line.length * 3 > this.#flushBytes) {
      f.writer.write(Buffer.from(line), 1); // longer than a batch: on its own
      enforceBound(this.#files, this.#maxQueuedBytes);
    } else {
      f.fill(line);
      if (this.#timer === undefined) this.#arm();
      // The timer is due but has not fired: the event loop is not turning (lib/core/loop-watch.ts).
      else if (this.#loop.due() && performance.now() - this.#armedAt >= this.#flushIntervalMs) this.#writeAllSync();
    }
  }

  #arm(): void {
    this.#armedAt = performance.now();
    this.#loop.mark();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#handAll();
    }, this.#flushIntervalMs).unref();
  }

  /** Batches due while the event loop does not turn: compress and write them now. */
  #writeAllSync(): void {
    this.#handAll();
    writeQueuedSync(this.#files);
  }

  #handAll(drop = true): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#deferred.count > 0) this.#deferred.retry();
    for (const f of this.#files.values()) f.hand();
    enforceBound(this.#files, this.#maxQueuedBytes, drop);
  }

  /** Bytes waiting for the disk, batched or queued. */
  get queuedBytes(): number {
    return queuedBytes(this.#files);
  }

  /** Resolves when every file has written what it holds; rejects with a failing file's error. */
  async flush(): Promise<void> {
    this.#handAll();
    // Deferred rows (no fd to format them) are waited for, as a writer waits for a pool slot.
    while (this.#deferred.count > 0 && !this.destroyed) {
      await this.#deferred.pause();
      this.#handAll();
    }
    await Promise.all([...this.#files.values()].map((f) => f.writer.flush()));
  }

  /** Writes everything now, synchronously, trying every file; then throws the first file error. */
  flushSync(): void {
    if (this.destroyed) return;
    this.#handAll();
    let first: Error | undefined;
    for (const f of this.#files.values()) {
      try {
        f.writer.flushSync();
      } catch (err) {
        first ??= err as Error;
      }
      if (f.deferred.length > 0) first ??= f.error;
    }
    if (first !== undefined) throw first;
  }

  /**
   * Ends the sink: every file that writes is closed first (releasing its fd), then each file
   * still failing gets one more synchronous try, one at a time (an EMFILE then finds fds free);
   * what even that cannot write is counted in a `W_ROWS_DROPPED` warning.
   */
  async #finishAll(): Promise<Error | undefined> {
    const files = [...this.#files.values()];
    const failed = await Promise.all(
      files.map((f) =>
        f.writer.close().then(
          () => false,
          () => true,
        ),
      ),
    );
    let first: Error | undefined;
    for (const [i, f] of files.entries()) {
      if (failed[i] !== true) continue;
      try {
        f.writer.flushSync();
        await f.writer.close();
      } catch (err) {
        f.reportLost(f.writer.queuedRows);
        f.writer.closeSync();
        first ??= f.writer.lastError ?? f.error ?? (err as Error);
      }
    }
    for (const f of files) {
      // Rows never formatted (no fd to read the file with, all along): counted with the rest.
      f.reportLost(f.deferred.length);
      if (f.deferred.length > 0) first ??= f.error;
      this.#deferred.forget(f);
    }
    return first;
  }

  override _final(callback: (err?: Error | null) => void): void {
    // No file drops a row on the way out before #finishAll has given it its last try.
    this.#handAll(false);
    this.#deferred
      .settle()
      .then(() => this.#format.settle?.())
      .then(() => {
        this.#handAll(false);
        return this.#finishAll();
      })
      .then(
        (err) => callback(err),
        (err: Error) => callback(err),
      );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#deferred.stop();
    this.#deferred.retry(); // once: what still finds no fd is counted below
    this.#format.abort?.();
    for (const f of this.#files.values()) f.hand();
    for (const f of this.#files.values()) {
      try {
        f.writer.flushSync(); // everything it holds, wherever the disk allows
      } catch {
        f.reportLost(f.writer.queuedRows);
      }
      if (f.deferred.length > 0) f.reportLost(f.deferred.length);
      f.writer.closeSync();
    }
    callback(err);
  }
}
