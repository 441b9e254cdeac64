/**
 * SinkFile: one file of a file sink (sinks/file-sink.ts): its writer, the batch being filled,
 * and what went wrong with it. It is the {@link FileHandle} a format gets (sinks/row-format.ts).
 *
 * Memory: a batch starts small (512 bytes, or what the file's last batch needed) and doubles up
 * to `flushBytes`, and a batch handed over mostly empty is copied to its size, so what the sink
 * holds stays within about twice `queuedBytes` plus 512 bytes per table being filled (a busy
 * table's full batches go as they are).
 *
 * Faults are per file (issue 9, point 2): the first I/O error of each code is warned once as
 * `W_FILE_ERROR` (the writer keeps the bytes and retries); rows this file loses are counted and
 * warned as `W_ROWS_DROPPED`, the first loss at once and the total when the sink closes.
 */
import fs from 'node:fs';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { WarningGate } from '../lib/core/warnings.js';
import { renameOver } from '../lib/io/atomic.js';
import type { Codec } from '../lib/io/codec.js';
import type { FileWriter } from '../lib/io/file-writer.js';
import type { FileHandle } from './row-format.js';

/** Smallest batch allocation (Buffer.allocUnsafe takes this from its shared 8 KiB pool slabs). */
const MIN_BATCH = 512;

/** What a {@link SinkFile} shares with its sink. */
export interface SinkFileContext {
  readonly codec: Codec;
  /** The sink writes blocked gzip. */
  readonly gz: boolean;
  /** durability 'flush'. */
  readonly fsync: boolean;
  readonly flushBytes: number;
  readonly maxQueuedBytes: number;
  /** The sink's warnings (each problem once). */
  readonly gate: WarningGate;
  /** Runs `fn`, parking idle files of the sink's pool on EMFILE (FileHandle.withFd). */
  withFd<T>(fn: () => T): T;
}

export class SinkFile implements FileHandle {
  readonly path: string;
  readonly appended: boolean;
  readonly gz: boolean;
  readonly durable: boolean;
  writer: FileWriter;
  /**
   * The batch being filled: lines are encoded straight into it, so no long-lived string is
   * built on the heap (that made V8's heap grow by tens of MB at high row rates). It starts at
   * `cap` bytes and doubles up to `flushBytes` as rows come, so a table logging one small row
   * does not hold 64 KiB (3,000 such tables held 300 MB while `queuedBytes` counted 0.3 MB).
   */
  batch: Buffer | undefined = undefined;
  used = 0;
  /** Size the next batch starts at: what the last one needed (a busy table's is `flushBytes`). */
  cap: number;
  /** Rows in `batch`. */
  rows = 0;
  /** Rows dropped so far (a failing file past the memory bound), and how many were reported. */
  dropped = 0;
  /** Rows still held when the file was closed and the disk refused them. */
  lost = 0;
  reported = 0;
  /** The file's last I/O error, while it fails. */
  error: NodeJS.ErrnoException | undefined = undefined;
  /** Rows whose text the format could not make yet (it met EMFILE reading the file), in order. */
  readonly deferred: Array<Entry<FlatRow>> = [];
  readonly #ctx: SinkFileContext;
  readonly #onError = (err: Error): void => this.failed(err);

  /** Opens (lazily: see Codec.open) the writer of `path`; a gzip repair reads an existing file now. */
  constructor(path: string, ctx: SinkFileContext) {
    this.path = path;
    this.#ctx = ctx;
    this.gz = ctx.gz;
    this.durable = ctx.fsync;
    this.cap = Math.min(MIN_BATCH, ctx.flushBytes);
    this.writer = ctx.withFd(() => ctx.codec.open(path, this.#onError));
    this.appended = this.writer.startSize > 0;
  }

  encode(text: string): Buffer {
    return this.#ctx.codec.encode(text);
  }

  get startSize(): number {
    return this.writer.startSize;
  }

  withFd<T>(fn: () => T): T {
    return this.#ctx.withFd(fn);
  }

  before(fn: () => void): void {
    this.hand();
    this.writer.before(fn);
  }

  flushSync(): void {
    this.hand();
    this.writer.flushSync();
  }

  truncate(size: number): void {
    this.flushSync();
    this.#ctx.withFd(() => fs.truncateSync(this.path, size)); // opens the file: may meet EMFILE, the writer kept
    this.writer.closeSync();
    this.writer = this.#ctx.codec.open(this.path, this.#onError);
  }

  replace(tmp: string): void {
    this.flushSync();
    this.writer.closeSync();
    try {
      renameOver(tmp, this.path, { fsync: this.durable, large: true }); // the caller fsync'ed tmp (durability 'flush')
    } finally {
      this.writer = this.#ctx.codec.open(this.path, this.#onError); // the new file, or the old one if the rename failed
    }
  }

  /** Encodes `line` into the batch, growing it (the sink hands a batch over before a line could overflow it). */
  fill(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (this.batch === undefined || line.length * 3 > this.batch.length - this.used) this.#grow(this.used + line.length * 3);
    this.used += (this.batch as Buffer).write(line, this.used);
    this.rows++;
  }

  /** A batch of at least `need` bytes (≤ flushBytes) holding what `batch` holds: doubled from `cap`. */
  #grow(need: number): void {
    let size = this.batch === undefined ? this.cap : this.batch.length * 2;
    while (size < need) size *= 2;
    size = Math.min(size, this.#ctx.flushBytes);
    const next = Buffer.allocUnsafe(size);
    if (this.batch !== undefined) this.batch.copy(next, 0, 0, this.used);
    this.batch = next;
    this.cap = size;
  }

  /** Hands the batch to the writer. */
  hand(): void {
    if (this.used === 0 || this.batch === undefined) return;
    // A batch mostly empty (a quiet table after a busy one) is copied, so the queue never holds
    // much more memory than `queuedBytes` counts; a full batch goes as it is (the hot path).
    const bytes = this.used * 2 < this.batch.length ? Buffer.from(this.batch.subarray(0, this.used)) : this.batch.subarray(0, this.used);
    // The next batch starts at what this one needed (rounded up to a power of two).
    let cap = MIN_BATCH;
    while (cap < this.used) cap *= 2;
    this.cap = Math.min(cap, this.#ctx.flushBytes);
    const rows = this.rows;
    this.batch = undefined;
    this.used = 0;
    this.rows = 0;
    this.writer.write(bytes, rows);
  }

  /** This file failed (for now): warn once per file and code; the writer keeps its bytes and retries. */
  failed(err: NodeJS.ErrnoException): void {
    this.error = err;
    const code = err.code ?? err.name;
    this.#ctx.gate.warn(
      {
        code: 'W_FILE_ERROR',
        message: `${this.path} cannot be written (${code}): ${err.message}; its rows are kept and retried, the other files keep writing`,
      },
      `${this.path}\0${code}`,
    );
  }

  /**
   * The format could not read this file (a CSV header behind EACCES…): this file's fault only.
   * The row cannot be turned into text without it, so it is counted as dropped.
   */
  unformattable(err: unknown): void {
    this.failed(err as NodeJS.ErrnoException);
    this.dropRows(1, 'its rows cannot be formatted without reading it');
  }

  /** `rows` are lost: the first loss of this file is warned now, the rest counted at close. */
  dropRows(rows: number, why = `its rows reached maxQueuedBytes (${this.#ctx.maxQueuedBytes})`): void {
    this.dropped += rows;
    if (this.reported !== 0) return;
    this.reported = this.dropped;
    this.#ctx.gate.warn(
      {
        code: 'W_ROWS_DROPPED',
        message: `${this.path}: ${this.dropped} rows dropped, oldest first: the file cannot be written (${this.error?.code ?? 'error'}) and ${why}; further drops are counted when the sink closes`,
      },
      this.path,
    );
  }

  /** Rows this file lost (dropped earlier, or `lostNow` still queued when it was closed): one warning with the count. */
  reportLost(lostNow: number): void {
    this.lost += lostNow;
    const total = this.dropped + this.lost + this.writer.lostRows;
    if (total === this.reported) return;
    this.reported = total;
    this.#ctx.gate.warn(
      {
        code: 'W_ROWS_DROPPED',
        message: `${this.path}: ${total} rows in all could not be written (${(this.writer.lastError ?? this.error)?.code ?? 'error'})`,
      },
      `${this.path}\0${total}`,
    );
  }
}
