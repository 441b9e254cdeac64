/**
 * FileWriter: appends batches of bytes to one file without blocking the caller, in order,
 * and can finish everything synchronously at process exit.
 *
 * Each batch is given its file offset when it is queued and written with a positional write
 * (the fd is opened without O_APPEND). One async write is in flight at a time. `flushSync()`
 * writes every batch not yet confirmed, at its own offset, so it is correct whether or not the
 * in-flight async write has landed (writing the same bytes at the same offset twice is
 * harmless); this is what lets the exit hook flush without waiting on the thread pool.
 */
import fs from 'node:fs';

interface Chunk {
  buf: Buffer;
  pos: number;
  done: boolean;
}

export class FileWriter {
  readonly path: string;
  #fd: number;
  #pos: number;
  readonly #queue: Chunk[] = [];
  #writing = false;
  #waiters: Array<(err?: Error) => void> = [];
  #error: Error | undefined;
  readonly #onError: (err: Error) => void;

  /** Opens (creating) `path` for appending; throws the system error (EACCES, ENOENT…). */
  constructor(path: string, onError: (err: Error) => void) {
    this.path = path;
    this.#onError = onError;
    this.#fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
    this.#pos = fs.fstatSync(this.#fd).size;
  }

  /** Bytes queued and not yet confirmed on disk. */
  get queuedBytes(): number {
    let n = 0;
    for (const c of this.#queue) n += c.buf.length;
    return n;
  }

  /** Queues `buf` at the end of the file and starts writing it. */
  write(buf: Buffer): void {
    if (this.#error !== undefined || this.#fd < 0 || buf.length === 0) return;
    this.#queue.push({ buf, pos: this.#pos, done: false });
    this.#pos += buf.length;
    this.#pump();
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
      this.#writing = false;
      if (chunk.done) return this.#pump(); // flushSync() already wrote it
      if (err) return this.#fail(err);
      if (n < chunk.buf.length) {
        chunk.buf = chunk.buf.subarray(n);
        chunk.pos += n;
      } else {
        chunk.done = true;
        this.#queue.shift();
      }
      this.#pump();
    });
  }

  #fail(err: Error): void {
    this.#error = err;
    this.#queue.length = 0;
    for (const w of this.#waiters.splice(0)) w(err);
    this.#onError(err);
  }

  /** Resolves when everything queued so far is written (rejects with the write error). */
  flush(): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push((err) => (err ? reject(err) : resolve())));
  }

  /** Writes everything queued now, synchronously (for the exit hook). Throws on I/O error. */
  flushSync(): void {
    if (this.#error !== undefined || this.#fd < 0) return;
    for (const c of this.#queue.splice(0)) {
      let off = 0;
      while (off < c.buf.length) off += fs.writeSync(this.#fd, c.buf, off, c.buf.length - off, c.pos + off);
      c.done = true;
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

  /** Closes the fd now (queued bytes not yet written are lost: call flushSync() first). */
  closeSync(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    try {
      fs.closeSync(fd);
    } catch {
      // already closed or never valid: nothing left to release
    }
  }
}
