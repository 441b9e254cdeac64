/**
 * Growing a CSV header without stopping the training loop (docs/DESIGN.md §4, issue 9 points 3, 4, 7, 11).
 *
 * Why ~390 lines (over the ~350 of docs/DESIGN.md): this comment is the design of the whole
 * scheme (sidecar, extras, rewrite, reopen), and the job below is one state machine (start,
 * async steps, postponement, the synchronous last step) over one pair of fds and one offset.
 *
 * A CSV header is fixed once written, so a new key means rewriting the file under the union
 * header. Done synchronously inside `log.row()` that stalled training for seconds (21 s on a
 * 134 MB table) and, reading the file into one string, failed past 512 MB (ERR_STRING_TOO_LONG).
 * The promise (every row logged before the last flush interval is on disk exactly once, whatever
 * kills the process) covers the rows logged during a rewrite too, so they cannot wait in memory,
 * and a journal appended afterwards is not exactly-once (append-then-delete is not atomic).
 *
 * The design: rows only ever live in `t.csv`.
 * - When a row brings keys the header lacks, they become *extras*: trailing fields, in order of
 *   arrival, after the header's own columns. Before the first such row reaches the writer, the
 *   sidecar `t.csv.columns` (JSON, written through a temp file and a rename; rare and tiny) names
 *   them: `{"entries": [{"base": <header>, "extras": [...], "from": <offset>}]}`. `from` is the
 *   file offset where rows with extras begin (fields past the header before it are a foreign
 *   file's ragged rows, kept as unnamed trailing fields).
 * - A {@link CsvRewrite} job streams `t.csv` from its start into `t.csv.rewrite.tmp` under the
 *   union header (metadata columns first, the rest sorted), remapping each record by name, extras
 *   by position, quoted fields copied raw. It works in bounded steps ({@link STEP_BYTES} per
 *   event-loop turn, `setImmediate` between them), reading only whole records (whole BGZF
 *   members for `.csv.gz`), and follows the file while rows keep being appended. When less than
 *   {@link FINAL_BYTES} is left, one short synchronous step finishes: the sink's rows are written
 *   out, the rest is copied, the temp file is fsync'ed (durability 'flush'), renamed over `t.csv`,
 *   the sidecar updated and a new writer opened; later rows use the new header.
 * - Keys that arrive while a job runs stay extras of the *new* header (the sidecar briefly holds
 *   an entry for the old and the new header around the rename), so any number of them costs
 *   exactly one more rewrite.
 * - Out of fds (EMFILE: many tables under a low `ulimit -n`), the job's two fds and the final
 *   step's flush are tried through the sink's pool (`withFd` parks idle files); failing that the
 *   job is postponed, not failed: it closes its fds and starts again from the file's start later
 *   (100 ms doubling to 2 s; every 20 ms once the sink is closing, for at most
 *   {@link HURRY_TRIES} tries). So is a table file that is not on disk yet (its first rows still
 *   wait for a pool slot). Meanwhile rows keep their extras, named by the sidecar, so nothing
 *   waits in memory for the rewrite.
 * A SIGKILL at any moment leaves `t.csv` (old or new, never half: the rename is atomic) holding
 * every row once, and a sidecar entry naming the extras of whichever header it has. Reopening
 * deletes leftover temp files, reads the header (bounded reads until the first record ends) and
 * the sidecar, removes a torn last row (a crash or a full disk cut it; W_TORN_ROW), and resumes
 * the rewrite. It never reads the whole file.
 *
 * While extras exist, the CSV is ragged (rows longer than the header). Python's `csv` module
 * reads it; rowlog's reader names the extra fields from the sidecar; pandas needs the rewrite to
 * finish (it does within seconds, and at `close()`).
 *
 * Where the parts are: the sidecar sinks/csv-sidecar.ts, the bounded reads of an existing file
 * (header, torn tail, whole-member chunks, leftovers) sinks/csv-file.ts, the remapping of one
 * record under the union header sinks/csv-remap.ts; sinks/csv-format.ts decides when a rewrite runs.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { Backoff } from '../lib/io/backoff.js';
import { isEmfile } from '../lib/io/errno.js';
import { headerLine, readChunk } from './csv-file.js';
import { RecordRemap } from './csv-remap.js';
import type { RewritePlan } from './csv-remap.js';

/** Decoded bytes one asynchronous step of a rewrite reads at most (≈ 2–4 ms of work). */
export const STEP_BYTES = 256 * 1024;
/** The temp file is fdatasync'ed (on the thread pool) every this many bytes. */
const SYNC_BYTES = 8 * 1024 * 1024;
/** A rewrite finishes synchronously once at most this much of the file is left to copy. */
export const FINAL_BYTES = 256 * 1024;
/**
 * One read of a step. Strings stay below V8's large-object size (~128 KiB): larger ones are
 * allocated in old space and soon force a full mark-compact, a pause of tens of ms in the
 * training loop (measured by the csv-rewrite bench).
 */
const READ_BYTES = 48 * 1024;
/** A postponed job (EMFILE, no file yet) tries again after this, doubling up to POSTPONE_MAX_MS. */
const POSTPONE_FIRST_MS = 100;
const POSTPONE_MAX_MS = 2000;
/** Tries of a postponed job once the sink is closing (every 20 ms), before it gives up (W_REWRITE_FAILED). */
export const HURRY_TRIES = 250;
/** The temp file a rewrite of `file` writes. */
export const rewriteTmpPath = (file: string): string => `${file}.rewrite.tmp`;

/** The file a {@link CsvRewrite} rewrites, as the sink holds it. */
export interface RewriteTarget {
  readonly path: string;
  /** Blocked gzip: read by whole members, the temp file written as members. */
  readonly gz: boolean;
  /** fsync the temp file before the rename. */
  readonly durable: boolean;
  /** The bytes of whole-line text (BGZF members for `.gz`). */
  encode(text: string): Buffer;
  /** Writes every row handed to the sink so far into the file, synchronously. */
  flushSync(): void;
  /** Runs `fn` (which opens fds of its own), parking idle files of the sink's pool on EMFILE. */
  withFd<T>(fn: () => T): T;
}

/**
 * One rewrite of a CSV under a wider header (see the module comment). `start()` begins it;
 * steps then run on later event-loop turns until `onFinal(tmp)` (called synchronously from the
 * last step) renames the temp file into place, or `onError` reports why it stopped (the temp
 * file is then gone and the table keeps its extras).
 */
export class CsvRewrite {
  readonly plan: RewritePlan;
  readonly #target: RewriteTarget;
  readonly #onFinal: (tmp: string) => void;
  readonly #onError: (err: Error) => void;
  readonly #tmp: string;
  #fd = -1;
  #out = -1;
  #pos = 0;
  #carry = '';
  #decoder = new StringDecoder('utf8');
  readonly #remap: RecordRemap;
  #stopped = false;
  /** In an asynchronous step: output waits in #pending for one async write. */
  #async = false;
  readonly #pending: Buffer[] = [];
  /** An async write (or fdatasync) is in flight. */
  #writing = false;
  /**
   * Reused buffers: a fresh Buffer per read and per write (≈ 1 GB/s of them) counts as external
   * memory and made V8 run a full mark-compact every ~100 ms, 10-45 ms each, in the loop.
   */
  readonly #inBuf = Buffer.allocUnsafe(READ_BYTES);
  readonly #outBuf = Buffer.allocUnsafe(4 * STEP_BYTES);
  #outStart = 0;
  #outUsed = 0;
  /** Bytes written since the last fdatasync. */
  #unsynced = 0;
  #settled: Promise<void>;
  #resolve: () => void = () => {};
  /** A postponed start or final step (see the module comment). */
  readonly #later = new Backoff(POSTPONE_FIRST_MS, POSTPONE_MAX_MS);
  /** The sink is closing: postponed work is tried often, a bounded number of times. */
  #hurry = false;
  #hurryTries = 0;

  constructor(target: RewriteTarget, plan: RewritePlan, onFinal: (tmp: string) => void, onError: (err: Error) => void) {
    this.#target = target;
    this.plan = plan;
    this.#onFinal = onFinal;
    this.#onError = onError;
    this.#tmp = rewriteTmpPath(target.path);
    this.#remap = new RecordRemap(plan);
    this.#settled = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** Settles when the job has finished or stopped. */
  get settled(): Promise<void> {
    return this.#settled;
  }

  /** Opens the files and runs the first step; a small file is rewritten at once. */
  start = (): void => {
    if (this.#stopped) return;
    try {
      this.#target.withFd(() => {
        if (this.#fd < 0) this.#fd = fs.openSync(this.#target.path, 'r');
        if (this.#out < 0) {
          this.#out = fs.openSync(this.#tmp, 'w');
          this.#write(headerLine(this.plan.union));
        }
      });
    } catch (err) {
      // Out of fds, or the file's first rows are still queued for a pool slot: later.
      const code = (err as NodeJS.ErrnoException).code;
      if (isEmfile(err) || (code === 'ENOENT' && this.#fd < 0)) this.#restartLater(err as Error);
      else this.#fail(err as Error);
      return;
    }
    try {
      if (fs.fstatSync(this.#fd).size > FINAL_BYTES) {
        setImmediate(this.#step); // the caller (a log.row()) does not wait for a step
        return;
      }
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    this.#finalOrPostpone();
  };

  /** True while the job waits to start again (it met EMFILE, or the file was not on disk yet). */
  get postponed(): boolean {
    return this.#later.pending;
  }

  /** The sink is closing (settle): postponed work runs now, then every 20 ms, a bounded number of times. */
  hurry(): void {
    this.#hurry = true;
    this.#later.runNow();
  }

  /** Runs `fn` later (see the module comment); gives up with `err` after HURRY_TRIES while closing. */
  #postpone(fn: () => void, err: Error): void {
    if (this.#stopped) return;
    if (this.#hurry && ++this.#hurryTries > HURRY_TRIES) {
      this.#fail(err);
      return;
    }
    // Unref'd until closing: a run that ends without close() keeps the extras (named).
    this.#later.schedule(fn, this.#hurry ? { ms: 20, ref: true } : {});
  }

  /** The last step, postponed while fds are short (its flush or the sidecar met EMFILE). */
  #finalOrPostpone(): void {
    try {
      this.#final();
    } catch (err) {
      if (isEmfile(err) && !this.#stopped) this.#restartLater(err as Error);
      else this.#fail(err as Error);
    }
  }

  /**
   * Postponed: the job gives its fds back (many tables waiting for fds must not hold two each)
   * and starts again from the file's start later; the temp file is written anew.
   */
  #restartLater(err: Error): void {
    this.#closeFds();
    this.#pos = 0;
    this.#carry = '';
    this.#decoder = new StringDecoder('utf8');
    this.#remap.reset();
    this.#pending.length = 0;
    this.#outStart = this.#outUsed = 0;
    this.#unsynced = 0;
    this.#postpone(this.start, err);
  }

  /** Stops for good (the sink is destroyed): the temp file is removed. */
  abort(): void {
    if (this.#stopped) return;
    this.#later.cancel();
    this.#stop();
    try {
      fs.rmSync(this.#tmp, { force: true });
    } catch {
      // not a file: nothing of ours to remove
    }
  }

  #step = (): void => {
    if (this.#stopped) return;
    try {
      const size = fs.fstatSync(this.#fd).size;
      if (size - this.#pos <= FINAL_BYTES) {
        this.#finalOrPostpone();
        return;
      }
      this.#async = true;
      for (let done = 0, at = this.#pos; done < STEP_BYTES && this.#copy(size, READ_BYTES, false); at = this.#pos) done += this.#pos - at;
    } catch (err) {
      this.#fail(err as Error);
      return;
    } finally {
      this.#async = false;
    }
    this.#drain();
  };

  /**
   * Writes what the step made on the thread pool, then runs the next step. Not synchronously:
   * writing hundreds of MB makes the kernel throttle the writer (dirty-page writeback), which
   * blocked the loop for 200+ ms in the bench.
   */
  #drain(): void {
    if (this.#outUsed > this.#outStart) this.#pending.push(this.#outBuf.subarray(this.#outStart, this.#outUsed));
    this.#outStart = this.#outUsed;
    const bufs = this.#pending.splice(0);
    if (bufs.length === 0) {
      setImmediate(this.#step);
      return;
    }
    this.#writing = true;
    const total = bufs.reduce((n, b) => n + b.length, 0);
    fs.writev(this.#out, bufs, (err, n) => {
      this.#writing = false;
      this.#outStart = this.#outUsed = 0; // nothing of #outBuf is in flight any more
      if (this.#stopped) {
        this.#stop(); // closes the fds it left open for this write
        return;
      }
      if (err === null && n < total) {
        // A short write: put the rest back first.
        let skip = n;
        const rest = bufs.flatMap((b) => {
          if (skip >= b.length) {
            skip -= b.length;
            return [];
          }
          const r = b.subarray(skip);
          skip = 0;
          return [r];
        });
        this.#pending.unshift(...rest);
        this.#drain();
        return;
      }
      if (err) {
        this.#fail(err);
        return;
      }
      this.#unsynced += total;
      if (this.#unsynced < SYNC_BYTES) {
        setImmediate(this.#step);
        return;
      }
      // Keep the rewrite's dirty pages few, so the kernel never throttles the loop's own writes.
      this.#unsynced = 0;
      this.#writing = true;
      fs.fdatasync(this.#out, (e) => {
        this.#writing = false;
        if (this.#stopped) this.#stop();
        else if (e) this.#fail(e);
        else setImmediate(this.#step);
      });
    });
  }

  /**
   * The synchronous last step: everything the sink holds is written, copied and renamed into
   * place. An EMFILE before the rename (the flush, the sidecar) throws with nothing lost: the
   * step can run again later, copying what was appended meanwhile. The fds close after onFinal.
   */
  #final(): void {
    this.#target.flushSync();
    const size = fs.fstatSync(this.#fd).size;
    while (this.#pos < size) if (!this.#copy(size, READ_BYTES, false)) break;
    this.#records(this.#carry + this.#decoder.end(), true, this.#pos > this.plan.from || this.plan.from === 0);
    this.#carry = '';
    if (this.#target.durable) fs.fsyncSync(this.#out);
    this.#onFinal(this.#tmp);
    this.#stop();
  }

  /** Copies up to about `max` decoded bytes (not across `from`); false when nothing whole was there. */
  #copy(size: number, max: number, final: boolean): boolean {
    const end = this.#pos < this.plan.from ? Math.min(size, this.plan.from) : size;
    const chunk = readChunk(this.#fd, this.#pos, end, max, this.#target.gz, this.#inBuf);
    if (chunk.next === this.#pos) return false;
    const withExtras = this.#pos >= this.plan.from;
    this.#pos = chunk.next;
    const text = this.#carry + this.#decoder.write(chunk.data);
    this.#carry = text.slice(this.#records(text, final, withExtras));
    return true;
  }

  /** Remaps the whole records of `text` into the temp file; returns where the unfinished one starts. */
  #records(text: string, final: boolean, withExtras: boolean): number {
    return this.#remap.records(text, final, withExtras, this.#writeText, READ_BYTES);
  }

  readonly #writeText = (text: string): void => this.#write(text);

  #write(text: string): void {
    if (this.#async && !this.#target.gz && text.length * 3 <= this.#outBuf.length - this.#outUsed) {
      this.#outUsed += this.#outBuf.write(text, this.#outUsed);
      return;
    }
    const buf = this.#target.encode(text);
    if (this.#async) {
      if (this.#outUsed > this.#outStart) this.#pending.push(this.#outBuf.subarray(this.#outStart, this.#outUsed));
      this.#outStart = this.#outUsed;
      this.#pending.push(buf);
      return;
    }
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.#out, buf, off, buf.length - off);
  }

  #closeFds(): void {
    for (const fd of [this.#fd, this.#out]) {
      if (fd < 0) continue;
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.#fd = this.#out = -1;
  }

  #stop(): void {
    this.#stopped = true;
    this.#resolve();
    if (this.#writing) return; // the write's callback closes the fds
    this.#closeFds();
  }

  #fail(err: Error): void {
    if (this.#stopped) return;
    this.abort();
    this.#onError(err);
  }
}
