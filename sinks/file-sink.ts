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
 * A format may open fds of its own (CSV: the header and end of an existing file, the sidecar,
 * the rewrite's files). `FileHandle.withFd` runs such I/O and, on EMFILE, parks idle files of the
 * pool to make room. A format that still meets EMFILE in `line()` (this sink's pool holds no fd
 * to give up, the other sinks or the program hold them all) must not fail the sink: a failure
 * there used to fail it and lose every row it held (the chaos test's emfile fault). The row is
 * deferred instead, with every later row of that file behind it, in order (no warning: like a
 * writer waiting for a pool slot, nothing is wrong with the file), and formatted again every
 * 20 ms and at each hand-over; `flush()` waits for them (as a writer waits for a slot),
 * closing retries them for a bounded time, and what never found an fd is counted in
 * `W_ROWS_DROPPED`. Deferred rows are not in `queuedBytes`: they
 * only pile up while the process has no fd at all, when the writers cannot write either.
 *
 * Memory: a batch starts small (512 bytes, or what the table's last batch needed) and doubles up
 * to `flushBytes`, and a batch handed over mostly empty is copied to its size, so what the sink
 * holds stays within about twice `queuedBytes` plus 512 bytes per table being filled (a busy
 * table's full batches go as they are).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { assertName, isValidName } from '../lib/core/entry.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { numberOption, optionError } from '../lib/core/errors.js';
import { BGZF_MAX_INPUT, DEFAULT_GZIP_LEVEL } from '../lib/format/bgzf.js';
import { FdPool } from '../lib/io/fd-pool.js';
import { renameOver } from '../lib/io/atomic.js';
import { plainCodec } from '../lib/io/codec.js';
import type { Codec } from '../lib/io/codec.js';
import { isEmfile, isSystemError } from '../lib/io/errno.js';
import type { FileWriter } from '../lib/io/file-writer.js';
import type { RowlogWarning } from '../lib/core/errors.js';
import { LoopWatch } from '../lib/core/loop-watch.js';
import { walkFiles } from '../lib/io/walk-files.js';
import { WarningGate } from '../lib/core/warnings.js';
import { gzipCodec } from '../lib/io/gzip-writer.js';
import type { Sink } from '../lib/core/sink.js';

/** Options every file sink takes. */
export interface FileSinkOptions {
  /** Write every Entry into this one file. Exactly one of `path` and `dir`. */
  path?: string;
  /** Write one file per table: `<dir>/<table><ext>` (a `/` in a table name makes a sub-folder). */
  dir?: string;
  /** File name ending in `dir` mode. @default the format's (`.jsonl`) */
  ext?: string;
  /**
   * Size of a batch in bytes: a batch is handed to the disk before a row could take it past
   * this (with `.gz`, each batch becomes one gzip member; BGZF members hold at most 65280
   * bytes); a longer row goes alone. @default 65280
   */
  flushBytes?: number;
  /** …or when its first row has waited this long (ms). @default 250 */
  flushIntervalMs?: number;
  /**
   * Bound on bytes waiting for the disk. Past it the sink writes synchronously, so a training
   * loop that never yields to the event loop slows down instead of filling memory; no row is
   * dropped. @default 2097152 (2 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * zlib level of `.gz` output. @default DEFAULT_GZIP_LEVEL (1: lib/format/bgzf.ts says why)
   */
  gzipLevel?: number;
  /** `'flush'`: fsync after each batch (each gzip member), for power-loss safety. @default 'none' */
  durability?: 'none' | 'flush';
  /**
   * Most files this sink keeps open at once (`dir` mode writes one file per table). Files past
   * it are closed when idle, least recently used first, and reopened to append; a file waiting
   * for a slot keeps its rows queued (within `maxQueuedBytes`), never blocking `log.row()`.
   * 128 lets the logger's two default file sinks (256 fds) and two more file sinks (TensorBoard,
   * Parquet) fit Linux's default soft limit of 1,024 with half of it left to the program (data
   * loaders, sockets, CUDA); any table count works, a run with more active tables than this
   * reopens files more often. @default 128
   */
  maxOpenFiles?: number;
}

/** How a sink turns Entries into text. One instance per sink (it may keep state per file). */
export interface RowFormat {
  /** Default file name ending. */
  readonly ext: string;
  /** The text of one row, line end included. May read or replace what `file` holds first. */
  line(entry: Entry<FlatRow>, file: FileHandle): string;
  /** Work the format still runs on its files (a CSV rewrite) ends: awaited before the files close. */
  settle?(): Promise<void>;
  /** The sink is destroyed: stop such work now. */
  abort?(): void;
  /**
   * Matches `x` of a file `<table file>.x` that says work on the table file was cut short (a
   * CSV rewrite's sidecar or temp files): {@link FileSink.resume} opens such files at once.
   */
  readonly pending?: RegExp;
  /** Takes up cut-short work on an existing file (see `pending`) before any row comes. */
  resume?(file: FileHandle): void;
}

/**
 * What a {@link RowFormat} may do with the file a row goes to (CSV needs it for its header and
 * its rewrites, DESIGN §4). Nothing here reads a whole file.
 */
export interface FileHandle {
  readonly path: string;
  /** The file held bytes before this sink opened it: the sink is appending to it. */
  readonly appended: boolean;
  /** The file is blocked gzip (`.gz`). */
  readonly gz: boolean;
  /** durability 'flush': fsync what replaces the file before it is renamed into place. */
  readonly durable: boolean;
  /** The bytes of whole-line text as this file stores them (BGZF members for `.gz`). */
  encode(text: string): Buffer;
  /** The size of the file when its current writer was made (where this sink began appending). */
  readonly startSize: number;
  /** Writes every row handed to the sink so far (batched ones included) into the file, synchronously. */
  flushSync(): void;
  /**
   * Runs `fn`, which opens fds of its own (a sidecar, a rewrite's files) beyond the pool's. On
   * EMFILE an idle file of the pool is parked (its fd closed) and `fn` runs again, until no idle
   * file is left; then the EMFILE is thrown (the caller waits and tries later).
   */
  withFd<T>(fn: () => T): T;
  /**
   * Runs `fn` before any row handed from now on reaches the file (FileWriter.before): the rows
   * wait behind it, within `maxQueuedBytes`, and it is retried while it meets EMFILE.
   */
  before(fn: () => void): void;
  /** Cuts the file to `size` bytes (a torn tail) and appends after it. */
  truncate(size: number): void;
  /** Renames `tmp` over the file (atomic) and appends to the new file from now on. */
  replace(tmp: string): void;
}

interface OpenFile extends FileHandle {
  writer: FileWriter;
  /**
   * The batch being filled: lines are encoded straight into it, so no long-lived string is
   * built on the heap (that made V8's heap grow by tens of MB at high row rates). It starts at
   * `cap` bytes and doubles up to `flushBytes` as rows come, so a table logging one small row
   * does not hold 64 KiB (3,000 such tables held 300 MB while `queuedBytes` counted 0.3 MB).
   */
  batch: Buffer | undefined;
  used: number;
  /** Size the next batch starts at: what the last one needed (a busy table's is `flushBytes`). */
  cap: number;
  /** Rows in `batch`. */
  rows: number;
  /** Rows dropped so far (a failing file past the memory bound), and how many were reported. */
  dropped: number;
  /** Rows still held when the file was closed and the disk refused them. */
  lost: number;
  reported: number;
  /** The file's last I/O error, while it fails. */
  error: NodeJS.ErrnoException | undefined;
  /** Rows whose text the format could not make yet (it met EMFILE reading the file), in order. */
  deferred: Array<Entry<FlatRow>>;
}

/** Smallest batch allocation (Buffer.allocUnsafe takes this from its shared 8 KiB pool slabs). */
const MIN_BATCH = 512;

/** A deferred row (see _write) is formatted again after this; while closing, this many times at most. */
const DEFER_RETRY_MS = 20;
const DEFER_CLOSE_TRIES = 250;

const DEFAULTS = Object.freeze({
  flushBytes: BGZF_MAX_INPUT,
  flushIntervalMs: 250,
  maxQueuedBytes: 2 * 1024 * 1024,
  gzipLevel: DEFAULT_GZIP_LEVEL,
  maxOpenFiles: 128,
});

export class FileSink extends Writable implements Sink {
  readonly #format: RowFormat;
  readonly #path: string | undefined;
  readonly #dir: string | undefined;
  readonly #ext: string;
  readonly #flushBytes: number;
  readonly #flushIntervalMs: number;
  readonly #maxQueuedBytes: number;
  readonly #files = new Map<string, OpenFile>();
  readonly #byTable = new Map<string, OpenFile>();
  #timer: NodeJS.Timeout | undefined;
  /** When the timer was armed (performance.now()), and whether the event loop turned since. */
  #armedAt = 0;
  readonly #loop = new LoopWatch();
  readonly #gate = new WarningGate(this);
  readonly #pool: FdPool;
  /** Deferred rows in all files, their retry timer, and a guard against re-entry. */
  #deferred = 0;
  #deferTimer: NodeJS.Timeout | undefined;
  #retrying = false;

  readonly #codec: Codec;
  readonly #gz: boolean;
  readonly #fsync: boolean;

  constructor(opts: FileSinkOptions, format: RowFormat) {
    super({ objectMode: true });
    if (typeof opts !== 'object' || opts === null) throw optionError('type', 'options', 'must be an object');
    if ((opts.path === undefined) === (opts.dir === undefined)) {
      throw optionError('type', 'path', 'give exactly one of path (one file) and dir (one file per table)');
    }
    for (const k of ['path', 'dir', 'ext'] as const) {
      if (opts[k] !== undefined && (typeof opts[k] !== 'string' || opts[k] === '')) {
        throw optionError('type', k, `must be a non-empty string (got ${String(opts[k])})`);
      }
    }
    this.#format = format;
    this.#path = opts.path;
    this.#dir = opts.dir;
    this.#ext = opts.ext ?? format.ext;
    this.#flushBytes = numberOption(opts.flushBytes ?? DEFAULTS.flushBytes, 'flushBytes', { min: 1 });
    this.#flushIntervalMs = numberOption(opts.flushIntervalMs ?? DEFAULTS.flushIntervalMs, 'flushIntervalMs', { min: 0 });
    this.#maxQueuedBytes = numberOption(opts.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes, 'maxQueuedBytes', { min: 0 });
    const level = numberOption(opts.gzipLevel ?? DEFAULTS.gzipLevel, 'gzipLevel', { min: 0, max: 9, integer: true });
    const durability = opts.durability ?? 'none';
    if (durability !== 'none' && durability !== 'flush') {
      throw optionError('range', 'durability', `must be 'none' or 'flush' (got ${String(durability)})`);
    }
    const fsync = durability === 'flush';
    this.#fsync = fsync;
    this.#gz = (this.#path ?? this.#ext).endsWith('.gz');
    this.#pool = new FdPool(numberOption(opts.maxOpenFiles ?? DEFAULTS.maxOpenFiles, 'maxOpenFiles', { min: 1, integer: true }));
    const pool = this.#pool;
    const onWarning = (w: RowlogWarning) => this.#gate.warn(w, w.message);
    this.#codec = this.#gz ? gzipCodec({ level, fsync, pool, onWarning }) : plainCodec(fsync, pool);
  }

  /** The file an Entry of `table` goes to. */
  pathOf(table: string): string {
    return this.#path ?? path.join(this.#dir as string, table + this.#ext);
  }

  /**
   * Takes up work a killed process left on this sink's files (DESIGN §4: a CSV rewrite cut short
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
      this.#dir === undefined ? { depth: 0 } : {},
    );
    for (const file of files) {
      const table = this.#dir === undefined ? undefined : path.relative(this.#dir, file).split(path.sep).join('/').slice(0, -this.#ext.length);
      if (table !== undefined && !isValidName(table)) continue;
      let f: OpenFile | undefined;
      try {
        f = table === undefined ? this.#openPath(this.#path as string) : this.#open(table);
        if (f.appended) this.#format.resume(f);
      } catch (err) {
        if (f === undefined || !isSystemError(err)) throw err;
        this.#fileFailed(f, err as NodeJS.ErrnoException);
      }
    }
  }

  #openPath(p: string): OpenFile {
    let f = this.#files.get(p);
    if (f === undefined) {
      f = this.#openFile(p);
      this.#files.set(p, f);
    }
    return f;
  }

  #open(table: string): OpenFile {
    let f = this.#byTable.get(table);
    if (f !== undefined) return f;
    if (this.#dir !== undefined) assertName(table); // a table becomes a path: it must not leave `dir`
    f = this.#openPath(this.pathOf(table)); // the folder is made by the writer's first open
    this.#byTable.set(table, f);
    return f;
  }

  #openFile(p: string): OpenFile {
    const onError = (err: Error) => this.#fileFailed(f, err);
    const writer = this.#withFd(() => this.#codec.open(p, onError)); // gzip repair reads an existing file
    const f: OpenFile = {
      path: p,
      appended: writer.startSize > 0,
      gz: this.#gz,
      durable: this.#fsync,
      writer,
      batch: undefined,
      used: 0,
      cap: Math.min(MIN_BATCH, this.#flushBytes),
      rows: 0,
      dropped: 0,
      lost: 0,
      reported: 0,
      error: undefined,
      deferred: [],
      encode: (text) => this.#codec.encode(text),
      get startSize() {
        return f.writer.startSize;
      },
      withFd: (fn) => this.#withFd(fn),
      before: (fn) => {
        this.#hand(f);
        f.writer.before(fn);
      },
      flushSync: () => {
        this.#hand(f);
        f.writer.flushSync();
      },
      truncate: (size) => {
        f.flushSync();
        this.#withFd(() => fs.truncateSync(p, size)); // opens the file: may meet EMFILE, the writer kept
        f.writer.closeSync();
        f.writer = this.#codec.open(p, onError);
      },
      replace: (tmp) => {
        f.flushSync();
        f.writer.closeSync();
        try {
          renameOver(tmp, p, { fsync: this.#fsync, large: true }); // the caller fsync'ed tmp (durability 'flush')
        } finally {
          f.writer = this.#codec.open(p, onError); // the new file, or the old one if the rename failed
        }
      },
    };
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

  /** One file failed (for now): warn once per file and code; the writer keeps its bytes and retries. */
  #fileFailed(f: OpenFile, err: NodeJS.ErrnoException): void {
    f.error = err;
    const code = err.code ?? err.name;
    this.#gate.warn(
      {
        code: 'W_FILE_ERROR',
        message: `${f.path} cannot be written (${code}): ${err.message}; its rows are kept and retried, the other files keep writing`,
      },
      `${f.path}\0${code}`,
    );
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let f: OpenFile | undefined;
    let line: string;
    try {
      f = this.#open(entry.table);
      if (f.deferred.length > 0) {
        this.#defer(f, entry); // behind the rows already waiting, in order
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
        this.#defer(f, entry);
      } else this.#unformattable(f, err);
      callback();
      return;
    }
    this.#append(f, line);
    callback();
  }

  /**
   * The format could not read this file (a CSV header behind EACCES…): this file's fault only.
   * The row cannot be turned into text without it, so it is counted as dropped.
   */
  #unformattable(f: OpenFile, err: unknown): void {
    this.#fileFailed(f, err as NodeJS.ErrnoException);
    this.#dropRows(f, 1, 'its rows cannot be formatted without reading it');
  }

  /** A row whose text the format could not make for lack of fds: kept, in order, and tried again soon. */
  #defer(f: OpenFile, entry: Entry<FlatRow>): void {
    f.deferred.push(entry);
    this.#deferred++;
    this.#deferTimer ??= setTimeout(() => {
      this.#deferTimer = undefined;
      this.#retryDeferred();
    }, DEFER_RETRY_MS).unref();
  }

  /** Formats the deferred rows of every file again (each file's oldest first); true when none is left. */
  #retryDeferred(): boolean {
    if (this.#deferred === 0 || this.#retrying) return this.#deferred === 0;
    this.#retrying = true;
    try {
      for (const f of this.#files.values()) {
        while (f.deferred.length > 0) {
          let line: string;
          try {
            line = this.#format.line(f.deferred[0] as Entry<FlatRow>, f);
          } catch (err) {
            if (isEmfile(err)) break; // still no fd for it: the next file, and this one again later
            if (!isSystemError(err)) {
              if (!this.destroyed) this.destroy(err as Error);
              return false;
            }
            f.deferred.shift();
            this.#deferred--;
            this.#unformattable(f, err);
            continue;
          }
          f.deferred.shift();
          this.#deferred--;
          this.#append(f, line);
        }
      }
    } finally {
      this.#retrying = false;
    }
    if (this.#deferred > 0 && !this.destroyed) {
      this.#deferTimer ??= setTimeout(() => {
        this.#deferTimer = undefined;
        this.#retryDeferred();
      }, DEFER_RETRY_MS).unref();
    }
    return this.#deferred === 0;
  }

  /** Closing: deferred rows are tried every DEFER_RETRY_MS (files closing free fds), for a bounded time. */
  async #settleDeferred(): Promise<void> {
    for (let k = 0; k < DEFER_CLOSE_TRIES && !this.#retryDeferred(); k++) {
      await new Promise((r) => setTimeout(r, DEFER_RETRY_MS));
    }
  }

  /** The row's text goes into its file's batch (handed to the writer when full or due). */
  #append(f: OpenFile, line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: hand the batch before a line could overflow it.
    if (line.length * 3 > this.#flushBytes - f.used) {
      this.#hand(f);
      this.#checkBound();
    }
    if (line.length * 3 > this.#flushBytes) {
      f.writer.write(Buffer.from(line), 1); // longer than a batch: on its own
      this.#checkBound();
    } else {
      if (f.batch === undefined || line.length * 3 > f.batch.length - f.used) this.#grow(f, f.used + line.length * 3);
      f.used += (f.batch as Buffer).write(line, f.used);
      f.rows++;
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
    this.#writeQueuedSync();
  }

  /** A batch of at least `need` bytes (≤ flushBytes) holding what `f.batch` holds: doubled from `f.cap`. */
  #grow(f: OpenFile, need: number): void {
    let size = f.batch === undefined ? f.cap : f.batch.length * 2;
    while (size < need) size *= 2;
    size = Math.min(size, this.#flushBytes);
    const next = Buffer.allocUnsafe(size);
    if (f.batch !== undefined) f.batch.copy(next, 0, 0, f.used);
    f.batch = next;
    f.cap = size;
  }

  #hand(f: OpenFile): void {
    if (f.used === 0 || f.batch === undefined) return;
    // A batch mostly empty (a quiet table after a busy one) is copied, so the queue never holds
    // much more memory than `queuedBytes` counts; a full batch goes as it is (the hot path).
    const bytes = f.used * 2 < f.batch.length ? Buffer.from(f.batch.subarray(0, f.used)) : f.batch.subarray(0, f.used);
    // The next batch starts at what this one needed (rounded up to a power of two).
    let cap = MIN_BATCH;
    while (cap < f.used) cap *= 2;
    f.cap = Math.min(cap, this.#flushBytes);
    const rows = f.rows;
    f.batch = undefined;
    f.used = 0;
    f.rows = 0;
    f.writer.write(bytes, rows);
  }

  /**
   * Past `maxQueuedBytes`: write synchronously, and drop from failing files only what still does
   * not fit. `drop` is false on the close path, where every file gets its last try first.
   */
  #checkBound(drop = true): void {
    if (this.queuedBytes <= this.#maxQueuedBytes) return;
    this.#writeQueuedSync();
    if (!drop || this.queuedBytes <= this.#maxQueuedBytes) return;
    // A failing file whose backoff has run out (its timer cannot fire in a loop that never
    // yields) gets one more try before its rows are dropped: the disk may have room again.
    for (const f of this.#files.values()) {
      if (!f.writer.retryDue || f.writer.queuedBytes === 0) continue;
      try {
        f.writer.flushSync();
      } catch {
        // still failing: its backoff grows (W_FILE_ERROR was warned once)
      }
    }
    const over = this.queuedBytes - this.#maxQueuedBytes;
    if (over > 0) this.#dropFromFailing(over);
  }

  /**
   * Memory bound reached or batches overdue (the event loop is not getting a turn): write
   * everything now, except files in their retry backoff (trying them on every row would spin).
   */
  #writeQueuedSync(): void {
    for (const f of this.#files.values()) {
      if (f.writer.failing || f.writer.queuedBytes === 0) continue;
      try {
        f.writer.flushSync();
      } catch {
        // reported through onError (W_FILE_ERROR); the bytes stay queued for the retry
      }
    }
  }

  /** Past the memory bound with failing files holding the bytes: drop their oldest batches, loudly. */
  #dropFromFailing(over: number): void {
    for (const f of this.#files.values()) {
      if (over <= 0) return;
      if (!f.writer.failing) continue;
      const r = f.writer.dropOldest(over);
      over -= r.bytes;
      if (r.rows === 0 && r.bytes === 0) continue;
      this.#dropRows(f, r.rows);
    }
  }

  /** `rows` of `f` are lost: the first loss of a file is warned now, the rest counted at close. */
  #dropRows(f: OpenFile, rows: number, why = `its rows reached maxQueuedBytes (${this.#maxQueuedBytes})`): void {
    f.dropped += rows;
    if (f.reported !== 0) return;
    f.reported = f.dropped;
    this.#gate.warn(
      {
        code: 'W_ROWS_DROPPED',
        message: `${f.path}: ${f.dropped} rows dropped, oldest first: the file cannot be written (${f.error?.code ?? 'error'}) and ${why}; further drops are counted when the sink closes`,
      },
      f.path,
    );
  }

  /** Rows a file lost (dropped earlier, or still queued when it was closed): one warning with the count. */
  #reportLost(f: OpenFile, lostNow: number): void {
    f.lost += lostNow;
    const total = f.dropped + f.lost + f.writer.lostRows;
    if (total === f.reported) return;
    f.reported = total;
    this.#gate.warn(
      {
        code: 'W_ROWS_DROPPED',
        message: `${f.path}: ${total} rows in all could not be written (${(f.writer.lastError ?? f.error)?.code ?? 'error'})`,
      },
      `${f.path}\0${total}`,
    );
  }

  #handAll(drop = true): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#deferred > 0) this.#retryDeferred();
    for (const f of this.#files.values()) this.#hand(f);
    this.#checkBound(drop);
  }

  /** Bytes waiting for the disk, batched or queued. */
  get queuedBytes(): number {
    let n = 0;
    for (const f of this.#files.values()) n += f.used + f.writer.queuedBytes;
    return n;
  }

  /** Resolves when every file has written what it holds; rejects with a failing file's error. */
  async flush(): Promise<void> {
    this.#handAll();
    // Deferred rows (no fd to format them) are waited for, as a writer waits for a pool slot.
    while (this.#deferred > 0 && !this.destroyed) {
      await new Promise((r) => setTimeout(r, DEFER_RETRY_MS));
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
        this.#reportLost(f, f.writer.queuedRows);
        f.writer.closeSync();
        first ??= f.writer.lastError ?? f.error ?? (err as Error);
      }
    }
    for (const f of files) {
      // Rows never formatted (no fd to read the file with, all along): counted with the rest.
      this.#reportLost(f, f.deferred.length);
      if (f.deferred.length > 0) first ??= f.error;
      this.#deferred -= f.deferred.length;
      f.deferred.length = 0;
    }
    return first;
  }

  override _final(callback: (err?: Error | null) => void): void {
    // No file drops a row on the way out before #finishAll has given it its last try.
    this.#handAll(false);
    this.#settleDeferred()
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
    if (this.#deferTimer !== undefined) clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    this.#retryDeferred(); // once: what still finds no fd is counted below
    this.#format.abort?.();
    for (const f of this.#files.values()) this.#hand(f);
    for (const f of this.#files.values()) {
      try {
        f.writer.flushSync(); // everything it holds, wherever the disk allows
      } catch {
        this.#reportLost(f, f.writer.queuedRows);
      }
      if (f.deferred.length > 0) this.#reportLost(f, f.deferred.length);
      f.writer.closeSync();
    }
    callback(err);
  }
}
