/**
 * FileWriter: appends batches of bytes to one file without blocking the caller, in order,
 * and can finish everything synchronously at process exit.
 *
 * Regular files: each batch is given its file offset when it is queued and written with a
 * positional write (the fd is opened without O_APPEND). One async write is in flight at a time.
 * `flushSync()` writes every batch not yet confirmed, at its own offset, so it is correct whether
 * or not the in-flight async write has landed (writing the same bytes at the same offset twice is
 * harmless); this is what lets the exit hook flush without waiting on the thread pool.
 *
 * Anything else (a FIFO, `/dev/stdout`, a character device) has no offsets (a positional write
 * fails with ESPIPE) and an in-flight write could not be repeated safely, so batches are written
 * synchronously, in order, when they are handed over. Errors are still reported asynchronously.
 */
import fs from 'node:fs';
import { RowlogError } from './errors.js';

interface Chunk {
  buf: Buffer;
  pos: number;
  done: boolean;
}

export class FileWriter {
  readonly path: string;
  /** The file's size when it was opened (0 for a new or empty file). */
  readonly startSize: number;
  #fd: number;
  #pos: number;
  readonly #positional: boolean;
  readonly #queue: Chunk[] = [];
  #writing = false;
  /** closeSync() was called while a write was in flight: the fd is closed when it returns. */
  #closing = false;
  #waiters: Array<(err?: Error) => void> = [];
  #error: Error | undefined;
  readonly #onError: (err: Error) => void;
  readonly #fsync: boolean;

  /**
   * Opens (creating) `path` for appending; throws the system error (EACCES, ENOENT…). With
   * `fsync`, each batch is fsync'ed before the next is written (durability: 'flush').
   */
  constructor(path: string, onError: (err: Error) => void, opts: { fsync?: boolean } = {}) {
    this.path = path;
    this.#onError = onError;
    this.#fsync = opts.fsync === true;
    this.#fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
    try {
      const st = fs.fstatSync(this.#fd);
      this.#positional = st.isFile();
      this.#pos = st.size;
      this.startSize = st.size;
    } catch (err) {
      fs.closeSync(this.#fd);
      throw err;
    }
  }

  /** Bytes queued and not yet confirmed on disk. */
  get queuedBytes(): number {
    let n = 0;
    for (const c of this.#queue) n += c.buf.length;
    return n;
  }

  /** Queues `buf` at the end of the file and starts writing it. */
  write(buf: Buffer): void {
    if (this.#error !== undefined || this.#fd < 0 || this.#closing || buf.length === 0) return;
    if (!this.#positional) {
      try {
        this.#writeAllSync(buf, null);
      } catch (err) {
        this.#fail(err as Error, true);
      }
      return;
    }
    this.#queue.push({ buf, pos: this.#pos, done: false });
    this.#pos += buf.length;
    this.#pump();
  }

  #writeAllSync(buf: Buffer, pos: number | null): void {
    let off = 0;
    while (off < buf.length) {
      off += fs.writeSync(this.#fd, buf, off, buf.length - off, pos === null ? null : pos + off);
    }
  }

  #pump(): void {
    if (this.#writing) return;
    const chunk = this.#queue[0];
    if (chunk === undefined) {
      for (const w of this.#waiters.splice(0)) w(this.#error);
      return;
    }
    this.#writing = true;
    fs.write(this.#fd, chunk.buf, 0, chunk.buf.length, chunk.pos, (err, n) => {
      let written = false;
      if (chunk.done) {
        // flushSync() already wrote it (and took it off the queue)
      } else if (err) {
        this.#fail(err);
      } else if (n < chunk.buf.length) {
        chunk.buf = chunk.buf.subarray(n);
        chunk.pos += n;
      } else {
        chunk.done = true;
        written = true;
        this.#queue.shift();
      }
      const next = () => {
        this.#writing = false;
        if (this.#closing) this.#closeNow();
        else this.#pump();
      };
      if (written && this.#fsync) {
        fs.fsync(this.#fd, (e) => {
          if (e) this.#fail(e);
          next();
        });
      } else next();
    });
  }

  /** Stops writing for good: later writes are ignored, waiters reject, `onError` is told. */
  #fail(err: Error, deferred = false): void {
    if (this.#error !== undefined) return;
    this.#error = err;
    this.#queue.length = 0;
    for (const w of this.#waiters.splice(0)) w(err);
    if (deferred) process.nextTick(() => this.#onError(err));
    else this.#onError(err);
  }

  /** Resolves when everything queued so far is written (rejects with the write error). */
  flush(): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push((err) => (err ? reject(err) : resolve())));
  }

  /**
   * Writes everything queued now, synchronously (for the exit hook). Throws on I/O error (now or
   * earlier): a failed writer writes nothing more, so no later batch can leave a hole.
   */
  flushSync(): void {
    if (this.#error !== undefined) throw this.#error;
    if (this.#fd < 0 || this.#closing) return;
    try {
      for (const c of this.#queue) {
        this.#writeAllSync(c.buf, c.pos);
        c.done = true;
      }
      if (this.#fsync && this.#queue.length > 0) fs.fsyncSync(this.#fd);
      this.#queue.length = 0;
    } catch (err) {
      this.#fail(err as Error, true);
      throw err;
    }
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.closeSync();
    }
  }

  /**
   * Closes the fd (queued bytes not yet written are lost: call flushSync() first). With an async
   * write in flight the fd is closed when it returns, so its number cannot be reused under it.
   */
  closeSync(): void {
    if (this.#fd < 0 || this.#closing) return;
    if (this.#writing) this.#closing = true;
    else this.#closeNow();
  }

  #closeNow(): void {
    const fd = this.#fd;
    this.#fd = -1;
    this.#closing = false;
    const lost = this.#queue.length > 0;
    this.#queue.length = 0;
    const err = lost ? new RowlogError('ERR_SINK_CLOSED', `${this.path}: closed before every batch was written`) : undefined;
    for (const w of this.#waiters.splice(0)) w(this.#error ?? err);
    try {
      fs.closeSync(fd);
    } catch {
      // already closed or never valid: nothing left to release
    }
  }
}
