/**
 * Rows a format could not turn into text for lack of file descriptors (issue 9, point 2).
 *
 * A format may open fds of its own (CSV: the header and end of an existing file, the sidecar,
 * the rewrite's files). `FileHandle.withFd` runs such I/O and, on EMFILE, parks idle files of the
 * pool to make room. A format that still meets EMFILE in `line()` (the sink's pool holds no fd
 * to give up, the other sinks or the program hold them all) must not fail the sink: a failure
 * there used to fail it and lose every row it held (the chaos test's emfile fault). The row is
 * deferred instead, with every later row of that file behind it, in order (no warning: like a
 * writer waiting for a pool slot, nothing is wrong with the file), and formatted again every
 * {@link DEFER_RETRY_MS} ms and at each hand-over; `flush()` waits for them (as a writer waits
 * for a slot), closing retries them for a bounded time, and what never found an fd is counted in
 * `W_ROWS_DROPPED`. Deferred rows are not in `queuedBytes`: they only pile up while the process
 * has no fd at all, when the writers cannot write either.
 */
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { isEmfile, isSystemError } from '../lib/io/errno.js';
import type { SinkFile } from './sink-file.js';

/** A deferred row is formatted again after this; while closing, this many times at most. */
export const DEFER_RETRY_MS = 20;
const DEFER_CLOSE_TRIES = 250;

/** What {@link DeferredRows} needs of its sink. */
export interface DeferredRowsHost {
  /** Every file of the sink. */
  files(): Iterable<SinkFile>;
  /** The format's text of `entry` for `file` (throws what the format throws). */
  line(entry: Entry<FlatRow>, file: SinkFile): string;
  /** The row's text goes into its file's batch. */
  append(file: SinkFile, line: string): void;
  /** A programming error while formatting: the sink fails with it. */
  fail(err: Error): void;
  /** The sink is destroyed: no retry is armed any more. */
  destroyed(): boolean;
}

/** The deferred rows of one sink (they wait in each file's `deferred`, in order), and their retries. */
export class DeferredRows {
  readonly #host: DeferredRowsHost;
  /** Deferred rows in all files, their retry timer, and a guard against re-entry. */
  #count = 0;
  #timer: NodeJS.Timeout | undefined;
  #retrying = false;

  constructor(host: DeferredRowsHost) {
    this.#host = host;
  }

  /** Rows waiting in all files. */
  get count(): number {
    return this.#count;
  }

  /** Keeps `entry` behind the rows `file` already defers, and tries again soon. */
  defer(file: SinkFile, entry: Entry<FlatRow>): void {
    file.deferred.push(entry);
    this.#count++;
    this.#arm();
  }

  #arm(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.retry();
    }, DEFER_RETRY_MS).unref();
  }

  /** Formats the deferred rows of every file again (each file's oldest first); true when none is left. */
  retry(): boolean {
    if (this.#count === 0 || this.#retrying) return this.#count === 0;
    this.#retrying = true;
    try {
      for (const f of this.#host.files()) {
        while (f.deferred.length > 0) {
          let line: string;
          try {
            line = this.#host.line(f.deferred[0] as Entry<FlatRow>, f);
          } catch (err) {
            if (isEmfile(err)) break; // still no fd for it: the next file, and this one again later
            if (!isSystemError(err)) {
              this.#host.fail(err as Error);
              return false;
            }
            f.deferred.shift();
            this.#count--;
            f.unformattable(err);
            continue;
          }
          f.deferred.shift();
          this.#count--;
          this.#host.append(f, line);
        }
      }
    } finally {
      this.#retrying = false;
    }
    if (this.#count > 0 && !this.#host.destroyed()) this.#arm();
    return this.#count === 0;
  }

  /** One retry interval (flush() waits for deferred rows this way, as a writer waits for a slot). */
  pause(): Promise<void> {
    return new Promise((r) => setTimeout(r, DEFER_RETRY_MS));
  }

  /** Closing: deferred rows are tried every DEFER_RETRY_MS (files closing free fds), for a bounded time. */
  async settle(): Promise<void> {
    for (let k = 0; k < DEFER_CLOSE_TRIES && !this.retry(); k++) await this.pause();
  }

  /** The rows of `file` are given up (counted as lost by the caller). */
  forget(file: SinkFile): void {
    this.#count -= file.deferred.length;
    file.deferred.length = 0;
  }

  /** No more timed retries (the sink is destroyed). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
