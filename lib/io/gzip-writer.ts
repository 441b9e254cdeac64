/**
 * GzipWriter: a FileWriter whose batches become blocked-gzip (BGZF) members (docs/DESIGN.md §4).
 *
 * Each batch of whole lines is cut into ≤ 64 KiB pieces, each compressed on the libuv thread
 * pool into one complete gzip member, and members are appended strictly in the order their
 * batches arrived, whatever order the compressions finish in. After every member the file is
 * a valid gzip, so `kill -9` loses at most the batches still being compressed or written; a new
 * file appears only with its first whole member (FileWriter's temp file + rename), so it is
 * never a 0-byte or half-member `.gz`.
 *
 * `flushSync()` (exit hook, memory bound, a loop that never yields) compresses every batch not
 * yet written synchronously, in order; compressions still running on the pool are then ignored.
 * `close()` ends the file with the empty BGZF EOF member.
 *
 * A compression that fails on the pool is done again synchronously, so its raw bytes are not
 * lost; only a batch that cannot be compressed at all is dropped, warned (`W_ROWS_DROPPED`) and
 * counted in `lostRows`, which the sink adds to the count it reports at close. The writer keeps
 * writing the batches after it.
 *
 * Repair of an existing file (issue 9, point 6) runs before the writer's first open of it:
 * lib/io/gzip-repair.ts.
 */
import { BGZF_EOF, bgzfMember, bgzfMemberSync, DEFAULT_GZIP_LEVEL, splitForMembers } from '../format/bgzf.js';
import type { RowlogWarning } from '../core/warnings.js';
import type { FdPool } from './fd-pool.js';
import type { Codec } from './codec.js';
import { FileWriter } from './file-writer.js';
import { repairGzip } from './gzip-repair.js';

interface Job {
  raw: Buffer;
  rows: number;
  member: Buffer | undefined;
  /** Written (by the in-order drain or by flushSync): a late async result is ignored. */
  done: boolean;
  /** Settles when the async compression ends; undefined until one is started. */
  promise: Promise<void> | undefined;
  /** A barrier (FileWriter.before): handed on in order, never compressed nor dropped. */
  run?: () => void;
}

/**
 * Async compressions in flight per writer. Each holds a zlib context (~300 KB) until the event
 * loop runs its callback, so a training loop that never yields must not start thousands: the
 * rest wait as raw bytes, which `maxQueuedBytes` bounds (libuv runs 4 at a time anyway).
 */
const MAX_IN_FLIGHT = 4;

/**
 * Async compressions in flight in the whole process, over every writer: a sink handing batches
 * of 3,000 tables at once started 3,000 (≈ 400 MB of zlib contexts beyond `maxQueuedBytes`).
 * Writers past it wait, in order, and start when one ends.
 */
const MAX_IN_FLIGHT_TOTAL = 8;
let inFlightTotal = 0;
const waitingToStart = new Set<() => void>();

function compressionEnded(): void {
  inFlightTotal--;
  for (const start of waitingToStart) {
    if (inFlightTotal >= MAX_IN_FLIGHT_TOTAL) return;
    waitingToStart.delete(start);
    start();
  }
}

/** Options of {@link GzipWriter}. */
export interface GzipWriterOptions {
  /** zlib level of each member. @default DEFAULT_GZIP_LEVEL (lib/format/bgzf.ts) */
  level?: number;
  /** fsync after each member. @default false */
  fsync?: boolean;
  /** The sink's fd pool (see lib/io/fd-pool.ts). */
  pool?: FdPool;
  /** Gets `W_DAMAGED` when repair sets a damaged file aside. */
  onWarning?: (w: RowlogWarning) => void;
}

/** Lines in `buf`. */
function countLines(buf: Buffer): number {
  let n = 0;
  for (let p = buf.indexOf(10); p >= 0; p = buf.indexOf(10, p + 1)) n++;
  return n;
}

export class GzipWriter extends FileWriter {
  readonly #level: number;
  readonly #jobs: Job[] = [];
  readonly #onWarning: ((w: RowlogWarning) => void) | undefined;
  /** Rows of batches that could not be compressed at all. */
  #lost = 0;
  #inFlight = 0;
  readonly #startLater = () => this.#start();

  constructor(path: string, onError: (err: Error) => void, opts: GzipWriterOptions = {}) {
    const onWarning = opts.onWarning;
    super(path, onError, { fsync: opts.fsync === true, pool: opts.pool, prepare: () => void repairGzip(path, onWarning) });
    this.#level = opts.level ?? DEFAULT_GZIP_LEVEL;
    this.#onWarning = onWarning;
  }

  override get lostRows(): number {
    return this.#lost;
  }

  /** Raw bytes waiting for compression plus compressed bytes waiting for the disk. */
  override get queuedBytes(): number {
    let n = super.queuedBytes;
    for (const j of this.#jobs) n += j.raw.length;
    return n;
  }

  /** Compresses `buf` (whole lines) off the main thread and appends its members in order. */
  override write(buf: Buffer, rows = 0): void {
    if (buf.length === 0) return;
    const pieces = splitForMembers(buf);
    for (const raw of pieces) {
      this.#jobs.push({ raw, rows: pieces.length === 1 ? rows : countLines(raw), member: undefined, done: false, promise: undefined });
    }
    this.#start();
  }

  /** A barrier after the batches still compressing (FileWriter.before). */
  override before(fn: () => void): void {
    if (this.#jobs.length === 0) {
      super.before(fn);
      return;
    }
    this.#jobs.push({ raw: Buffer.alloc(0), rows: 0, member: Buffer.alloc(0), done: false, promise: Promise.resolve(), run: fn });
  }

  override get queuedRows(): number {
    let n = super.queuedRows;
    for (const j of this.#jobs) n += j.rows;
    return n;
  }

  /** Drops the oldest batches: members waiting for the disk first, then raw batches. */
  override dropOldest(bytes: number): { rows: number; bytes: number } {
    const r = super.dropOldest(bytes);
    for (let i = 0; r.bytes < bytes && i < this.#jobs.length; ) {
      const job = this.#jobs[i] as Job;
      if (job.run !== undefined) {
        i++; // a barrier stays: the rows after it need it
        continue;
      }
      this.#jobs.splice(i, 1);
      job.done = true; // a compression still running is ignored when it ends
      r.rows += job.rows;
      r.bytes += job.raw.length;
    }
    return r;
  }

  /** Starts async compressions, oldest first, up to MAX_IN_FLIGHT. */
  #start(): void {
    for (const job of this.#jobs) {
      if (this.#inFlight >= MAX_IN_FLIGHT) return;
      if (job.promise !== undefined || job.done) continue;
      if (inFlightTotal >= MAX_IN_FLIGHT_TOTAL) {
        waitingToStart.add(this.#startLater);
        return;
      }
      this.#inFlight++;
      inFlightTotal++;
      job.promise = bgzfMember(job.raw, this.#level).then(
        (member) => {
          this.#inFlight--;
          if (!job.done) job.member = member;
          this.#drain();
          this.#start();
          compressionEnded();
        },
        (err: Error) => {
          this.#inFlight--;
          if (!job.done) job.member = this.#compressSync(job, err);
          this.#drain();
          this.#start();
          compressionEnded();
        },
      );
    }
  }

  /** Hands finished members to the file, in order, stopping at the first one still compressing. */
  #drain(): void {
    while (this.#jobs.length > 0) {
      const job = this.#jobs[0] as Job;
      if (job.member === undefined) return;
      this.#jobs.shift();
      job.done = true;
      if (job.run !== undefined) super.before(job.run);
      else super.write(job.member, job.rows);
    }
  }

  /**
   * The member of `job`, compressed on this thread (the pool's compression failed with
   * `asyncErr`, or flushSync). Empty when even this fails: its rows are counted as lost.
   */
  #compressSync(job: Job, asyncErr?: Error): Buffer {
    try {
      return bgzfMemberSync(job.raw, this.#level);
    } catch (err) {
      const e = (asyncErr ?? err) as NodeJS.ErrnoException;
      const first = this.#lost === 0;
      this.#lost += job.rows;
      job.rows = 0;
      if (first) {
        this.#onWarning?.({
          code: 'W_ROWS_DROPPED',
          message: `${this.path}: a batch could not be compressed (${e.code ?? e.name}: ${e.message}); its rows are dropped and counted when the sink closes, the batches after it are written`,
        });
      }
      return Buffer.alloc(0);
    }
  }

  override async flush(): Promise<void> {
    // Compressions start as others finish: wait until every job queued now has been written.
    const last = this.#jobs.at(-1);
    while (last !== undefined && !last.done) {
      await (this.#jobs.find((j) => j.promise !== undefined && !j.done && j.run === undefined)?.promise ?? new Promise((r) => setImmediate(r)));
    }
    await super.flush();
  }

  override flushSync(): void {
    waitingToStart.delete(this.#startLater); // nothing left to start
    for (const job of this.#jobs) {
      if (job.done) continue;
      job.done = true;
      if (job.run !== undefined) super.before(job.run);
      else super.write(job.member ?? this.#compressSync(job), job.rows);
    }
    this.#jobs.length = 0;
    super.flushSync();
  }

  /** Flushes, appends the BGZF EOF member, and closes. */
  override async close(): Promise<void> {
    await this.flush();
    super.write(BGZF_EOF);
    await super.close();
  }
}

/** The blocked-gzip Codec of the file sinks. */
export function gzipCodec(opts: GzipWriterOptions = {}): Codec {
  const level = opts.level ?? DEFAULT_GZIP_LEVEL;
  return {
    open: (p, onError) => new GzipWriter(p, onError, opts),
    encode: (text) => Buffer.concat(splitForMembers(Buffer.from(text)).map((raw) => bgzfMemberSync(raw, level))),
  };
}
