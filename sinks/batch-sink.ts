/**
 * BatchSink: the front of the sinks whose format is not lines of text (TensorBoard event files,
 * Parquet, SQLite; docs/DESIGN.md §5). `_write` only keeps the Entry (its flat `data` is made per
 * row by the logger and never changed after), so `log.row()` pays a push into an array whatever
 * the format costs; the rows are handed to the sink's {@link BatchBackend} as one batch when
 * `maxBatchRows` are waiting or when the first of them has waited `flushIntervalMs`, from a timer.
 * Encoding, compressing and storing are the backend's, in that timer or on a worker thread.
 *
 * The interval holds in a loop that never yields, as in sinks/file-sink.ts: a {@link LoopWatch}
 * tells `_write` when to read the clock, and an overdue batch is handed from there.
 *
 * Memory is bounded by `maxQueuedRows`: rows waiting here plus rows the backend holds unstored
 * (`pending`). Past it the sink hands its batch and has the backend store everything
 * synchronously (`flushSync`), so the caller slows down; no row is dropped for being many. A
 * backend that cannot store (its disk or server fails) drops and counts as it says; the sink only
 * passes its warnings on, each once.
 */
import { Writable } from 'node:stream';
import { isEntry } from '../lib/core/entry.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { LoopWatch } from '../lib/core/loop-watch.js';
import { numberOption, objectOption } from '../lib/core/options.js';
import type { Sink } from '../lib/core/sink.js';
import { WarningGate } from '../lib/core/warnings.js';
import type { RowlogWarning } from '../lib/core/warnings.js';

/** What a {@link BatchSink} hands its rows to: one per sink, it stores them in its format. */
export interface BatchBackend {
  /**
   * A batch of rows in the order they were logged (never empty; the Entries are not to be
   * changed). Called from the sink's timer, or from `_write` when the event loop does not turn.
   * Must not wait on I/O: work that does is done asynchronously or on a worker thread.
   */
  write(batch: Array<Entry<FlatRow>>): void;
  /** Rows handed to `write` that are not stored yet (the memory bound counts them). */
  readonly pending: number;
  /** Resolves when every row handed so far is stored as the format stores it; rejects on a failing store. */
  flush(): Promise<void>;
  /** Stores every row handed so far, synchronously (the memory bound; process exit). */
  flushSync(): void;
  /** Ends: stores everything and closes its files. */
  close(): Promise<void>;
  /** Ends now, synchronously, storing what it can (destroy; also called after `close()`, then it does nothing). */
  closeSync(): void;
}

/** How a backend reports a problem through its sink: each distinct `detail` once (WarningGate). */
export type BatchWarn = (w: RowlogWarning, detail?: string) => void;

/** Options of every {@link BatchSink}. */
export interface BatchSinkOptions {
  /** A batch is handed to the format when its first row has waited this long (ms). @default 250 */
  flushIntervalMs?: number;
  /**
   * …or when it holds this many rows. Kept small on purpose: rows held longer are promoted to
   * V8's old space; with 4096, two million rows to the default TensorBoard sink peaked at
   * 193 MB of RSS, with 512 at 135 MB (128 MB without it; measured). @default 512
   */
  maxBatchRows?: number;
  /**
   * Bound on rows held and not yet stored. Past it the sink stores synchronously, so a training
   * loop that never yields slows down instead of filling memory; no row is dropped. @default 65536
   */
  maxQueuedRows?: number;
}

/** {@link BatchSinkOptions} checked, with defaults. */
export interface ResolvedBatchOptions {
  readonly flushIntervalMs: number;
  readonly maxBatchRows: number;
  readonly maxQueuedRows: number;
}

/** Checks the options every batch sink takes (ERR_INVALID_OPTION naming the first bad one). */
export function resolveBatchOptions(opts: BatchSinkOptions): ResolvedBatchOptions {
  objectOption(opts);
  return {
    flushIntervalMs: numberOption(opts.flushIntervalMs ?? 250, 'flushIntervalMs', { min: 0 }),
    maxBatchRows: numberOption(opts.maxBatchRows ?? 512, 'maxBatchRows', { min: 1, integer: true }),
    maxQueuedRows: numberOption(opts.maxQueuedRows ?? 65_536, 'maxQueuedRows', { min: 1, integer: true }),
  };
}

export class BatchSink extends Writable implements Sink {
  readonly #backend: BatchBackend;
  readonly #o: ResolvedBatchOptions;
  #batch: Array<Entry<FlatRow>> = [];
  #timer: NodeJS.Timeout | undefined;
  #armedAt = 0;
  readonly #loop = new LoopWatch();
  readonly #gate = new WarningGate(this);

  /**
   * `make` builds the backend given the sink's warning function (so its warnings are the sink's
   * `'warning'` events, each once).
   */
  constructor(opts: BatchSinkOptions, make: (warn: BatchWarn) => BatchBackend) {
    super({ objectMode: true });
    this.#o = resolveBatchOptions(opts);
    this.#backend = make((w, detail) => this.#gate.warn(w, detail));
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!isEntry(entry)) {
      callback(new TypeError('a sink takes Entries ({table, level, step, time, data})'));
      return;
    }
    this.#batch.push(entry);
    if (this.#batch.length >= this.#o.maxBatchRows) this.#hand();
    else if (this.#timer === undefined) this.#arm();
    // The timer is due but has not fired: the event loop is not turning (lib/core/loop-watch.ts).
    else if (this.#loop.due() && performance.now() - this.#armedAt >= this.#o.flushIntervalMs) this.#hand();
    callback();
  }

  #arm(): void {
    this.#armedAt = performance.now();
    this.#loop.mark();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#hand();
    }, this.#o.flushIntervalMs).unref();
  }

  /** The batch goes to the backend; past the memory bound the backend stores everything now. */
  #hand(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    try {
      this.#backend.write(batch);
      if (this.#backend.pending > this.#o.maxQueuedRows) this.#backend.flushSync();
    } catch (err) {
      // A backend reports I/O faults as warnings; a throw is a bug, and it must not reach the
      // training loop (this runs in log.row() or a timer): the sink fails, the logger warns
      // W_SINK_ERROR and the other sinks go on.
      if (!this.destroyed) process.nextTick(() => this.destroy(err as Error));
    }
  }

  /** Rows held and not stored yet (waiting here or in the backend). */
  get queuedRows(): number {
    return this.#batch.length + this.#backend.pending;
  }

  /** Resolves when every row written so far is stored; rejects with a failing store's error. */
  async flush(): Promise<void> {
    this.#hand();
    await this.#backend.flush();
  }

  /** Stores everything now, synchronously (process exit). */
  flushSync(): void {
    if (this.destroyed) return;
    this.#hand();
    this.#backend.flushSync();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#hand();
    this.#backend.close().then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    try {
      this.#hand();
      this.#backend.closeSync();
    } catch (e) {
      err ??= e as Error;
    }
    callback(err);
  }
}
