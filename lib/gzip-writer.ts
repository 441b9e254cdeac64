/**
 * GzipWriter: a FileWriter whose batches become blocked-gzip (BGZF) members (DESIGN §4).
 *
 * Each batch of whole lines is cut into ≤ 64 KiB pieces, each compressed on the libuv thread
 * pool into one complete gzip member, and members are appended strictly in the order their
 * batches arrived, whatever order the compressions finish in. After every member the file is
 * a valid gzip, so `kill -9` loses at most the batches still being compressed or written.
 *
 * `flushSync()` (exit hook, memory bound) compresses every batch not yet written synchronously,
 * in order; compressions still running on the pool are then ignored. `close()` ends the file
 * with the empty BGZF EOF member. Opening a file whose last member is torn (a crash) first
 * truncates it to the last whole member, and a trailing EOF member from an earlier clean close
 * is dropped, so appending never corrupts and the file ends with one EOF member.
 */
import fs from 'node:fs';
import { BGZF_EOF, bgzfMember, bgzfMemberSync, gunzipTolerant, scanMembers, splitForMembers } from './bgzf.js';
import type { Codec } from './file-sink.js';
import { FileWriter } from './file-writer.js';

interface Job {
  raw: Buffer;
  member: Buffer | undefined;
  /** Written (by the in-order drain or by flushSync): a late async result is ignored. */
  done: boolean;
  /** Settles when the async compression ends; undefined until one is started. */
  promise: Promise<void> | undefined;
}

/**
 * Async compressions in flight per writer. Each holds a zlib context (~300 KB) until the event
 * loop runs its callback, so a training loop that never yields must not start thousands: the
 * rest wait as raw bytes, which `maxQueuedBytes` bounds (libuv runs 4 at a time anyway).
 */
const MAX_IN_FLIGHT = 4;

/** Options of {@link GzipWriter}. */
export interface GzipWriterOptions {
  /** zlib level of each member. @default 1 */
  level?: number;
  /** fsync after each member. @default false */
  fsync?: boolean;
}

/**
 * Truncates `path` to its last whole member (dropping a torn member or a trailing EOF member).
 * Files that are not BGZF throughout (e.g. written by the `gzip` command) are left as they are:
 * appending members to any gzip still gives a valid multi-member gzip.
 */
export function repairGzip(path: string): void {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return;
    const scan = scanMembers(fd, size);
    if (!scan.bgzf) return;
    let end = scan.wholeEnd;
    const last = scan.members.at(-1);
    if (last !== undefined && last.offset + last.size === end && last.size === BGZF_EOF.length) {
      const tail = Buffer.alloc(BGZF_EOF.length);
      fs.readSync(fd, tail, 0, tail.length, last.offset);
      if (tail.equals(BGZF_EOF)) end = last.offset;
    }
    if (end < size) fs.ftruncateSync(fd, end);
  } finally {
    fs.closeSync(fd);
  }
}

export class GzipWriter extends FileWriter {
  readonly #level: number;
  readonly #jobs: Job[] = [];
  readonly #onError: (err: Error) => void;
  #failed = false;
  #inFlight = 0;

  constructor(path: string, onError: (err: Error) => void, opts: GzipWriterOptions = {}) {
    repairGzip(path);
    super(path, onError, { fsync: opts.fsync === true });
    this.#level = opts.level ?? 1;
    this.#onError = onError;
  }

  /** Raw bytes waiting for compression plus compressed bytes waiting for the disk. */
  override get queuedBytes(): number {
    let n = super.queuedBytes;
    for (const j of this.#jobs) n += j.raw.length;
    return n;
  }

  /** Compresses `buf` (whole lines) off the main thread and appends its members in order. */
  override write(buf: Buffer): void {
    if (this.#failed || buf.length === 0) return;
    for (const raw of splitForMembers(buf)) this.#jobs.push({ raw, member: undefined, done: false, promise: undefined });
    this.#start();
  }

  /** Starts async compressions, oldest first, up to MAX_IN_FLIGHT. */
  #start(): void {
    for (const job of this.#jobs) {
      if (this.#inFlight >= MAX_IN_FLIGHT) return;
      if (job.promise !== undefined || job.done) continue;
      this.#inFlight++;
      job.promise = bgzfMember(job.raw, this.#level).then(
        (member) => {
          this.#inFlight--;
          job.member = member;
          this.#drain();
          this.#start();
        },
        (err: Error) => {
          this.#inFlight--;
          this.#fail(err);
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
      super.write(job.member);
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#jobs.length = 0;
    this.#onError(err);
  }

  override async flush(): Promise<void> {
    // Compressions start as others finish: wait until every job queued now has been written.
    const last = this.#jobs.at(-1);
    while (last !== undefined && !last.done && !this.#failed) {
      await (this.#jobs.find((j) => j.promise !== undefined && !j.done)?.promise ?? new Promise((r) => setImmediate(r)));
    }
    await super.flush();
  }

  override flushSync(): void {
    for (const job of this.#jobs) {
      if (job.done) continue;
      job.done = true;
      super.write(job.member ?? bgzfMemberSync(job.raw, this.#level));
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
  const level = opts.level ?? 1;
  return {
    open: (p, onError) => new GzipWriter(p, onError, opts),
    decode: (bytes) => gunzipTolerant(bytes).data.toString('utf8'),
    encode: (text) => Buffer.concat(splitForMembers(Buffer.from(text)).map((raw) => bgzfMemberSync(raw, level))),
  };
}
