/**
 * The backend of tensorboardSink (sinks/tensorboard.ts): one TensorBoard events file, written
 * through a FileWriter (lib/io/file-writer.ts) off `log.row()` (docs/DESIGN.md §4, §5).
 *
 * The file is `<dir>/events.out.tfevents.<unix secs>.<host>` as TensorFlow's writers name it,
 * with `.<pid>.<n>` added when that name is taken (two sinks opened in the same second), so a
 * reopened run starts a new file and never appends to an old one; TensorBoard reads every events
 * file of a folder, in name order. The file appears with its first batch (FileWriter's temp +
 * rename), which starts with the `file_version` event; a sink that logs nothing leaves no file.
 *
 * Each batch is encoded (lib/format/tf-event.ts) on the BatchSink's timer into one Buffer and
 * queued as one chunk: a kill loses at most what was not written yet, and leaves whole records
 * followed by at most one torn record, which TensorBoard's reader stops at.
 *
 * Faults, as in sinks/sink-file.ts: an I/O error warns `W_FILE_ERROR` once per code and the rows
 * stay queued and are retried (FileWriter's backoff); only past `maxQueuedRows`, while the file
 * still fails, are the oldest batches dropped and counted (`W_ROWS_DROPPED`: the first loss at
 * once, the total when the sink closes). Nothing here throws into the caller.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { EventEncoder, fileVersionRecord } from '../lib/format/tf-event.js';
import { newFileTmpTarget } from '../lib/io/append-target.js';
import { FileWriter } from '../lib/io/file-writer.js';
import type { BatchBackend, BatchWarn } from './batch-sink.js';

/** Events files this process has named (a name counts as taken before its first chunk lands). */
const claimed = new Set<string>();

/**
 * A free events-file name in `dir` for a writer started at `secs`: TensorFlow's
 * `events.out.tfevents.<secs>.<host>`, or with `.<pid>.<n>` when that name is taken: a file of
 * that name exists, or a first chunk still on its way to it (any process's temp file, which a
 * reopened run folder adopts), or this process has named it already.
 */
export function eventsFilePath(dir: string, secs: number, host = os.hostname()): string {
  const pending = new Set<string>();
  try {
    for (const name of fs.readdirSync(dir)) {
      const target = newFileTmpTarget(name);
      if (target !== undefined) pending.add(target);
    }
  } catch {
    // no folder yet (made at the first write): nothing in it is taken
  }
  const name = `events.out.tfevents.${secs}.${host}`;
  let file = path.join(dir, name);
  for (let n = 1; claimed.has(file) || fs.existsSync(file) || pending.has(path.basename(file)); n++) {
    file = path.join(dir, `${name}.${process.pid}.${n}`);
  }
  claimed.add(file);
  return file;
}

/** What {@link TensorboardFile} is made with (options checked by sinks/tensorboard.ts). */
export interface TensorboardFileOptions {
  readonly dir: string;
  /** fsync after each batch (durability 'flush'). */
  readonly fsync: boolean;
  /** The sink's memory bound: a failing file drops its oldest batches past it. */
  readonly maxQueuedRows: number;
  /** Encoded bytes waiting for the disk past which a batch is written synchronously (the caller slows). */
  readonly maxQueuedBytes: number;
}

export class TensorboardFile implements BatchBackend {
  /** The events file. */
  readonly path: string;
  readonly #writer: FileWriter;
  readonly #encoder = new EventEncoder();
  readonly #warn: BatchWarn;
  readonly #maxQueuedRows: number;
  readonly #maxQueuedBytes: number;
  /** The first record, until the first batch carries it. */
  #version: Buffer | undefined;
  /** When the sink started (s): the file_version event's wall_time. */
  readonly #startedAt: number;
  #closed = false;
  /** Rows lost (dropped past the bound, or still queued at close), and how many were reported. */
  #lost = 0;
  #reported = 0;
  /** The code of the last I/O error (W_ROWS_DROPPED names it). */
  #code = '';

  constructor(opts: TensorboardFileOptions, warn: BatchWarn) {
    const now = Date.now();
    this.path = eventsFilePath(opts.dir, Math.floor(now / 1000));
    this.#startedAt = now / 1000;
    this.#version = fileVersionRecord(this.#startedAt);
    this.#warn = warn;
    this.#maxQueuedRows = opts.maxQueuedRows;
    this.#maxQueuedBytes = opts.maxQueuedBytes;
    this.#writer = new FileWriter(this.path, (err) => this.#failed(err), { fsync: opts.fsync });
  }

  write(batch: Array<Entry<FlatRow>>): void {
    const { bytes, events } = this.#encoder.encode(batch);
    if (events === 0) return;
    const version = this.#version;
    this.#version = undefined;
    this.#writer.write(version === undefined ? bytes : Buffer.concat([version, bytes]), events);
    // As the file sinks' maxQueuedBytes (docs/DESIGN.md §5): in a loop that does not yield, the
    // writes cannot land, so past the bound they are made now and the caller slows down.
    if (this.#writer.queuedBytes > this.#maxQueuedBytes && !this.#writer.failing) this.flushSync();
  }

  get pending(): number {
    return this.#writer.queuedRows;
  }

  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /**
   * Writes everything now. Never throws: a failure is warned (`W_FILE_ERROR`) and the rows stay
   * queued for the retry; past `maxQueuedRows` the oldest batches are dropped and counted.
   */
  flushSync(): void {
    try {
      this.#writer.flushSync();
    } catch (err) {
      this.#failed(err as Error);
      if (this.#writer.queuedRows <= this.#maxQueuedRows) return;
      let dropped = 0;
      if (!fs.existsSync(this.path)) {
        // Nothing has landed, so the oldest chunk holds the file_version event, without which
        // TensorBoard takes a step lower than the last as a restart and purges the later ones
        // (steps of several tables interleave): all goes, the next batch starts the file again.
        dropped = this.#writer.dropOldest(Infinity).rows;
        this.#version = fileVersionRecord(this.#startedAt);
      }
      let d = 1;
      while (d > 0 && this.#writer.queuedRows > this.#maxQueuedRows) {
        d = this.#writer.dropOldest(1).rows; // whole chunks, oldest first; 0: only the one in flight is left
        dropped += d;
      }
      if (dropped > 0) this.#drop(dropped);
    }
  }

  /** Waits for the writes, then ends as {@link closeSync}; rejects with the error if rows could not be written. */
  async close(): Promise<void> {
    try {
      await this.#writer.flush();
    } catch {
      // closeSync tries once more, synchronously (the backoff may not have run out)
    }
    const err = this.closeSync();
    if (err !== undefined) throw err;
  }

  /** Writes what the disk takes, closes the file, warns the total of rows lost; returns the error that lost some. */
  closeSync(): Error | undefined {
    if (this.#closed) return undefined;
    this.#closed = true;
    let error: Error | undefined;
    try {
      this.#writer.flushSync();
    } catch (err) {
      error = err as Error;
      this.#failed(error);
    }
    this.#lost += this.#writer.queuedRows;
    this.#writer.closeSync();
    if (this.#lost > this.#reported) {
      this.#reported = this.#lost;
      this.#warn(
        {
          code: 'W_ROWS_DROPPED',
          message: `${this.path}: ${this.#lost} rows in all could not be written (${this.#code})`,
        },
        `${this.path}\0${this.#lost}`,
      );
    }
    return error;
  }

  /** Rows dropped past the bound: the first loss is warned at once, the total at close. */
  #drop(rows: number): void {
    this.#lost += rows;
    if (this.#reported !== 0) return;
    this.#reported = this.#lost;
    this.#warn(
      {
        code: 'W_ROWS_DROPPED',
        message: `${this.path}: ${rows} rows dropped, oldest first: the file cannot be written (${this.#code}) and its rows reached maxQueuedRows (${this.#maxQueuedRows}); further drops are counted when the sink closes`,
      },
      this.path,
    );
  }

  /** This file fails for now: warned once per code; the writer keeps its rows and retries. */
  #failed(err: NodeJS.ErrnoException): void {
    const code = err.code ?? err.name;
    this.#code = code;
    this.#warn(
      {
        code: 'W_FILE_ERROR',
        message: `${this.path} cannot be written (${code}): ${err.message}; its rows are kept and retried`,
      },
      `${this.path}\0${code}`,
    );
  }
}
