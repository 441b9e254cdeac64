/**
 * FileWriter: appends batches of bytes to one file without blocking the caller, in order,
 * and can finish everything synchronously at process exit.
 *
 * Why ~500 lines (over the ~350 of docs/DESIGN.md): what is left here is one state machine (the
 * write in flight, the fd lease, the failure and its retry, the synchronous flush) whose every
 * method reads the same few fields; the parts that stand alone are out (chunk-queue,
 * append-target, backoff, errno), and splitting the rest would pass those fields around.
 *
 * Regular files: batches are queued and written with positional writes (the fd is opened
 * without O_APPEND). A chunk gets its file offset when it starts being written (the end of what
 * is on disk), not when it is queued, so a chunk that is retried or dropped never leaves a hole;
 * only one async write is in flight at a time and that chunk's offset is then fixed. `flushSync()`
 * writes every chunk not yet confirmed, the in-flight one at its fixed offset and the rest right
 * after, so it is correct whether or not the in-flight async write has landed (writing the same
 * bytes at the same offset twice is harmless); this is what lets the exit hook flush without
 * waiting on the thread pool.
 *
 * The fd is a lease (issue 9, point 2; see lib/io/fd-pool.ts): it is opened when there is something
 * to write and a pool slot for it, and parked (closed) when idle and another file needs the slot;
 * the queue and the offset stay here. The directory is created at that first open too.
 *
 * A new file never appears empty or half-written (issue 9, point 9): its first chunk goes to a
 * temp file renamed onto `path` once whole (lib/io/append-target.ts). The queue of chunks and
 * barriers is lib/io/chunk-queue.ts, the retry timer lib/io/backoff.ts.
 *
 * An I/O error (EMFILE on open, ENOSPC, EACCES, EIO on write) fails this file only, for now: the
 * bytes stay queued, `onError` is told (asynchronously), `flush()` waiters reject, and the write
 * is retried after a backoff (0.5 s doubling to 30 s, unref'd timers). The sink bounds what a
 * failing file may hold with `dropOldest()`. `failing` lets the sink's memory-bound path skip a
 * file in backoff instead of spinning on it; `retryDue` says its backoff ran out (a loop that
 * never yields keeps the timer from firing), so the sink may try it before dropping. A write or
 * a `flushSync()` that succeeds, or a `flushSync()` with nothing left queued, clears the error,
 * so `flush()` never rejects with a stale one. The `prepare` step (gzip repair) failing with a
 * system error at construction (EACCES on an existing file) is such a fault too: it runs again
 * before the next open; a folder in the file's place fails each open with EISDIR, retried.
 *
 * `before(fn)` queues a barrier: `fn` runs (synchronously, from the write path or flushSync)
 * once every chunk before it is on disk and before any chunk after it is written. A CSV sidecar
 * that must name trailing fields before the rows carrying them reach the file uses it when it
 * could not be written at once (EMFILE): a barrier that throws fails the file for now like a
 * write (its chunks kept, retried after the backoff), so the rows wait instead of being lost.
 *
 * Anything else (a FIFO, `/dev/stdout`, a character device) has no offsets (a positional write
 * fails with ESPIPE) and an in-flight write could not be repeated safely, so batches are written
 * synchronously, in order, when they are handed over, on an fd kept open. Errors are still
 * reported asynchronously.
 */
import fs from 'node:fs';
import { RowlogError } from '../core/errors.js';
import { AppendTarget } from './append-target.js';
import { Backoff } from './backoff.js';
import { ChunkQueue } from './chunk-queue.js';
import type { Chunk } from './chunk-queue.js';
import { isEmfile, isSystemError } from './errno.js';
import type { FdPool, PoolMember } from './fd-pool.js';

/** Options of {@link FileWriter}. */
export interface FileWriterOptions {
  /** fsync after each chunk (durability: 'flush'). @default false */
  fsync?: boolean;
  /** The sink's fd pool; without one the fd stays open from the first write to close. */
  pool?: FdPool;
  /**
   * Runs once, when the writer is made, on an existing file (gzip repair); may rename it away.
   * If it throws a system error (EACCES, EIO…) that is a fault of this file: it is retried
   * before the writer's next open, with the writer's backoff.
   */
  prepare?: () => void;
}

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;
const BARRIER_RETRY_MS = 20;

/**
 * Bytes a writer of a run folder (a file sink, the TensorBoard file, `console.log`) holds for the
 * disk by default; past it the writer writes synchronously (docs/DESIGN.md §5: `maxQueuedBytes`).
 */
export const DEFAULT_MAX_QUEUED_BYTES = 2 * 1024 * 1024;

export class FileWriter implements PoolMember {
  readonly path: string;
  /** The file's size when the writer was made (0 for a new or empty file). */
  readonly startSize: number;
  #fd = -1;
  /** The file (or a new file's temp file) and the end of the bytes confirmed on disk. */
  readonly #target: AppendTarget;
  readonly #positional: boolean;
  readonly #queue = new ChunkQueue();
  #writing = false;
  /** closeSync() was called while a write was in flight: the fd is closed when it returns. */
  #closing = false;
  #closed = false;
  #waiters: Array<(err?: Error) => void> = [];
  /** The last I/O error, while this file is failing (cleared by a write that succeeds). */
  #error: Error | undefined;
  /** A permanent failure (a FIFO that broke): nothing more is written. */
  #dead = false;
  /** Rows a dead non-positional file could not take (they cannot be kept for a retry). */
  #lostRows = 0;
  /** Retries of a failing file (RETRY_FIRST_MS doubling to RETRY_MAX_MS). */
  readonly #retry = new Backoff(RETRY_FIRST_MS, RETRY_MAX_MS);
  /** A barrier met EMFILE: tried again soon (ref'd: close() may be waiting for it). */
  #barrierTimer: NodeJS.Timeout | undefined;
  readonly #retryBarrier = (): void => {
    this.#barrierTimer = undefined;
    this.#pump();
  };
  readonly #prepare: (() => void) | undefined;
  /** `prepare` threw a system error at construction: it runs before the next open instead. */
  #prepareDue = false;
  readonly #onError: (err: Error) => void;
  readonly #fsync: boolean;
  readonly #pool: FdPool | undefined;

  /**
   * A writer appending to `path` (created on the first write). Opens nothing yet, except a
   * path that is not a regular file (FIFO, device), which is opened now and throws the system
   * error. With `fsync`, each chunk is fsync'ed before the next is written.
   */
  constructor(path: string, onError: (err: Error) => void, opts: FileWriterOptions = {}) {
    this.path = path;
    this.#target = new AppendTarget(path);
    this.#onError = onError;
    this.#fsync = opts.fsync === true;
    this.#pool = opts.pool;
    this.#prepare = opts.prepare;
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(path);
    } catch {
      st = undefined; // missing, or not reachable now (EACCES, ENOTDIR): the first open says why
    }
    // An existing file is prepared (gzip repair) now, not at the first open: whoever reads the
    // file next (a CSV format finding its header and end) must see it as appending will.
    // If it fails with a system error (the file is unreadable now) it is this file's fault only:
    // it is tried again before the first open, and its rows wait queued meanwhile (issue 9, point 2).
    let failure: Error | undefined;
    if (st?.isFile() === true && this.#prepare !== undefined) {
      try {
        this.#prepare();
        try {
          st = fs.statSync(path);
        } catch {
          st = undefined; // set aside as damaged: a fresh file
        }
      } catch (err) {
        if (!isSystemError(err)) throw err;
        this.#prepareDue = true;
        failure = err;
      }
    }
    // A folder where the file should be is a fault of this file that may pass (EISDIR at each open, retried).
    this.#positional = st === undefined || st.isFile() || st.isDirectory();
    this.startSize = st?.isFile() === true ? st.size : 0;
    if (!this.#positional) {
      try {
        this.#fd = fs.openSync(path, fs.constants.O_WRONLY);
      } catch (err) {
        if (!isSystemError(err)) throw err;
        this.#dead = true; // a device or FIFO that cannot be opened: its rows are counted as lost
        failure = err;
      }
    }
    if (failure !== undefined) this.#failed(failure);
  }

  /** Bytes queued and not yet confirmed on disk. */
  get queuedBytes(): number {
    return this.#queue.bytes;
  }

  /** The error of the last failed attempt, while this file fails. */
  get lastError(): NodeJS.ErrnoException | undefined {
    return this.#error;
  }

  /** True while the last attempt failed and a retry is pending. */
  get failing(): boolean {
    return this.#error !== undefined || this.#dead;
  }

  /**
   * Failing, and its backoff has run out (the retry timer is due but a loop that never yields
   * has not let it fire): the sink may try it once more before dropping its rows.
   */
  get retryDue(): boolean {
    return this.#error !== undefined && !this.#dead && !this.#closed && this.#retry.due;
  }

  /** Rows this writer lost itself (beyond `queuedRows`): none here; a gzip writer's failed compressions. */
  get lostRows(): number {
    return 0;
  }

  /** Rows not confirmed on disk: in queued chunks (or lost by a dead FIFO-like file). */
  get queuedRows(): number {
    return this.#lostRows + this.#queue.rows;
  }

  /** Queues `buf` (`rows` lines) at the end of the file and starts writing it. */
  write(buf: Buffer, rows = 0): void {
    if (this.#dead) this.#lostRows += rows;
    if (this.#closed || this.#closing || this.#dead || buf.length === 0) return;
    if (!this.#positional) {
      try {
        this.#writeAllSync(buf, null);
      } catch (err) {
        this.#dead = true;
        this.#lostRows += rows;
        this.#failed(err as Error);
      }
      return;
    }
    this.#queue.push(buf, rows);
    this.#pump();
  }

  /** Runs `fn` before anything written from now on (see the header comment). */
  before(fn: () => void): void {
    if (this.#closed || this.#closing || this.#dead) return;
    if (!this.#positional) {
      fn(); // written synchronously anyway: nothing is queued
      return;
    }
    this.#queue.pushBarrier(fn);
    this.#pump();
  }

  /**
   * Drops whole chunks, oldest first, until `bytes` are freed or none is left that can go (the
   * one in flight or partly written stays). Returns the rows and bytes dropped.
   */
  dropOldest(bytes: number): { rows: number; bytes: number } {
    return this.#queue.dropOldest(bytes, this.#writing);
  }

  #writeAllSync(buf: Buffer, pos: number | null): void {
    let off = 0;
    while (off < buf.length) {
      off += fs.writeSync(this.#fd, buf, off, buf.length - off, pos === null ? null : pos + off);
    }
  }

  /** Opens the fd (lib/io/append-target.ts), after a `prepare` still due. Throws the system error. */
  #openFd(): number {
    if (this.#prepareDue) {
      (this.#prepare as () => void)(); // it failed at construction (EACCES…): again, before anything is written
      this.#prepareDue = false;
    }
    const { fd, restarted } = this.#target.open();
    const head = this.#queue.head;
    if (restarted && head !== undefined) {
      // removed meanwhile: started again, the unconfirmed head chunk whole
      head.pos = -1;
      head.written = 0;
    }
    return fd;
  }

  /** Has an fd (from the pool if there is one): true, or false (wait for grant(), or failed). */
  #ensureFd(): boolean {
    if (this.#fd >= 0) {
      this.#pool?.touch(this);
      return true;
    }
    if (this.#pool !== undefined && !this.#pool.acquire(this)) return false;
    for (let attempt = 0; ; attempt++) {
      try {
        this.#fd = this.#openFd();
        return true;
      } catch (err) {
        if (isEmfile(err)) {
          if (attempt === 0 && this.#pool?.parkIdle() === true) continue;
          if (this.#pool?.waitAfterEmfile(this) === true) return false; // granted when a slot frees
        }
        this.#pool?.release(this);
        this.#failed(err as Error);
        return false;
      }
    }
  }

  #pump(): void {
    if (this.#writing || this.#closed || this.#error !== undefined) return;
    const chunk = this.#queue.head;
    if (chunk === undefined) {
      for (const w of this.#waiters.splice(0)) w();
      this.#pool?.yieldSlot(this);
      return;
    }
    if (chunk.run !== undefined) {
      try {
        chunk.run();
      } catch (err) {
        // Out of fds: not this file's fault (no warning, flush() keeps waiting); soon again.
        if (isEmfile(err)) this.#barrierTimer ??= setTimeout(this.#retryBarrier, BARRIER_RETRY_MS);
        else this.#failed(err as Error);
        return;
      }
      this.#queue.shift();
      this.#pump();
      return;
    }
    if (!this.#ensureFd()) return;
    if (chunk.pos < 0) chunk.pos = this.#target.pos;
    this.#writing = true;
    const fd = this.#fd;
    fs.write(fd, chunk.buf, chunk.written, chunk.buf.length - chunk.written, chunk.pos + chunk.written, (err, n) => {
      let whole = false;
      if (this.#queue.head !== chunk) {
        // flushSync() already wrote it (and took it off the queue), or it was dropped at close
      } else if (err) {
        this.#failed(err);
      } else {
        chunk.written += n;
        if (chunk.written === chunk.buf.length) {
          this.#queue.shift();
          this.#target.pos = chunk.pos + chunk.buf.length;
          whole = true;
        }
      }
      const next = () => {
        this.#writing = false;
        if (this.#closing) this.#closeNow();
        else {
          if (whole) this.#pool?.yieldSlot(this);
          this.#pump();
        }
      };
      if (whole) {
        try {
          if (this.#fsync) fs.fsyncSync(fd);
          this.#target.commit(this.#fsync);
          this.#succeeded();
        } catch (e) {
          this.#failed(e as Error);
        }
      }
      next();
    });
  }

  #succeeded(): void {
    this.#retry.reset();
    this.#error = undefined;
  }

  /** This file failed for now: keep its bytes, tell the sink, retry after a backoff. */
  #failed(err: Error): void {
    this.#error = err;
    for (const w of this.#waiters.splice(0)) w(err);
    process.nextTick(() => this.#onError(err));
    if (this.#fd >= 0 && !this.#writing) this.park(); // e.g. EIO: a fresh fd may do better
    if (this.#dead || this.#closed) return;
    // A retry pending and not due yet stands; one due but not fired (a loop that never yields)
    // and tried again meanwhile: back off further.
    if (this.#retry.pending && !this.#retry.due) return;
    this.#retry.schedule(() => {
      this.#error = undefined;
      this.#pump();
    });
  }

  /** Resolves when everything queued so far is written; rejects with the error if this file fails. */
  flush(): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push((err) => (err ? reject(err) : resolve())));
  }

  /**
   * Writes everything queued now, synchronously (exit hook, memory bound, a loop that never
   * yields). Opens the file beyond the pool when it has no fd and no slot is free, and closes
   * it again. Throws the I/O error; what was not written stays queued for a retry.
   */
  flushSync(): void {
    if (this.#closed || this.#closing) return;
    if (this.#dead) throw this.#error ?? new RowlogError('ERR_SINK_CLOSED', `${this.path}: failed`);
    if (this.#queue.length === 0) {
      // Nothing left to write (the rows were written or dropped): an old error is stale now.
      if (!this.#writing && !this.#prepareDue && this.#error !== undefined) {
        this.#succeeded();
        for (const w of this.#waiters.splice(0)) w();
      }
      return;
    }
    let borrowed = false;
    let transient = false;
    try {
      if (this.#fd < 0) {
        const pooled = this.#pool === undefined || this.#pool.acquire(this);
        if (!pooled) {
          this.#pool?.release(this); // no longer waiting: this fd is borrowed for the call
          borrowed = true;
        }
        try {
          this.#fd = this.#openFdParking();
        } catch (err) {
          if (pooled) this.#pool?.release(this);
          // Out of fds while this sink holds some: not this file's fault; the async path waits for a slot.
          transient = isEmfile(err) && this.#pool !== undefined && this.#pool.open > 0;
          throw err;
        }
      }
      let pos = this.#target.pos;
      while (this.#queue.length > 0) {
        const c = this.#queue.head as Chunk;
        if (c.run !== undefined) {
          try {
            c.run();
          } catch (err) {
            transient = isEmfile(err); // as in #pump: the barrier is tried again soon
            if (transient) this.#barrierTimer ??= setTimeout(this.#retryBarrier, BARRIER_RETRY_MS);
            throw err;
          }
          this.#queue.shift();
          continue;
        }
        if (c.pos < 0) c.pos = pos;
        this.#writeAllSync(c.buf.subarray(c.written), c.pos + c.written);
        pos = c.pos + c.buf.length;
        this.#target.pos = pos;
        this.#queue.shift();
      }
      if (this.#fsync) fs.fsyncSync(this.#fd);
      this.#target.commit(this.#fsync);
      this.#succeeded();
      for (const w of this.#waiters.splice(0)) w();
    } catch (err) {
      if (!transient) this.#failed(err as Error);
      throw err;
    } finally {
      if (borrowed && !this.#writing) this.#closeFd();
      if (this.#fd < 0 && this.#queue.length > 0) this.#pump(); // back in line for a slot
    }
  }

  /** #openFd(), parking an idle file of the pool once on EMFILE. */
  #openFdParking(): number {
    try {
      return this.#openFd();
    } catch (err) {
      if (!isEmfile(err) || this.#pool?.parkIdle() !== true) throw err;
      return this.#openFd();
    }
  }

  /**
   * Flushes and closes the file. If the flush fails the writer stays open, its bytes queued, so
   * the caller can try once more (flushSync) before closeSync().
   */
  async close(): Promise<void> {
    await this.flush();
    this.closeSync();
  }

  /**
   * Closes the fd for good (queued bytes not yet written are lost: call flushSync() first).
   * With an async write in flight the fd is closed when it returns, so its number cannot be
   * reused under it.
   */
  closeSync(): void {
    if (this.#closed || this.#closing) return;
    this.#retry.cancel();
    if (this.#barrierTimer !== undefined) clearTimeout(this.#barrierTimer);
    this.#barrierTimer = undefined;
    if (this.#writing) this.#closing = true;
    else this.#closeNow();
  }

  #closeNow(): void {
    this.#closed = true;
    this.#closing = false;
    const lost = this.#queue.length > 0;
    this.#queue.clear();
    const err = lost ? new RowlogError('ERR_SINK_CLOSED', `${this.path}: closed before every batch was written`) : undefined;
    for (const w of this.#waiters.splice(0)) w(this.#error ?? err);
    this.#closeFd();
    this.#pool?.release(this);
    this.#target.discard(); // a new file whose first chunk never became whole
  }

  #closeFd(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    try {
      fs.closeSync(fd);
    } catch {
      // already closed or never valid: nothing left to release
    }
    this.#pool?.release(this);
  }

  /** Pool: closes the fd if nothing is in flight (the queue and offset stay). */
  park(): boolean {
    if (this.#fd < 0 || this.#writing || !this.#positional) return false;
    this.#closeFd();
    return true;
  }

  /** Pool: a slot is ours now. */
  grant(): void {
    process.nextTick(() => {
      if (this.#fd < 0 && (this.#closed || this.#queue.length === 0 || this.#error !== undefined)) this.#pool?.release(this);
      else this.#pump();
    });
  }
}
