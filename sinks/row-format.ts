/**
 * The seams of the file sinks (docs/DESIGN.md §4): a {@link RowFormat} turns Entries into text (JSONL in
 * sinks/jsonl.ts, CSV in sinks/csv.ts; later formats plug in the same way), and a
 * {@link FileHandle} is what a format may do with the file a row goes to. sinks/file-sink.ts
 * does the rest (batching, the fd pool, faults) for every format alike.
 */
import type { Entry, FlatRow } from '../lib/core/entry.js';

/** How a sink turns Entries into text. One instance per sink (it may keep state per file). */
export interface RowFormat {
  /** Default file name ending. */
  readonly ext: string;
  /** The text of one row, line end included. May read or replace what `file` holds first. */
  line(entry: Entry<FlatRow>, file: FileHandle): string;
  /** Work the format still runs on its files (a CSV rewrite) ends: awaited before the files close. */
  settle?(): Promise<void>;
  /** The sink is destroyed: stop such work now. */
  abort?(): void;
  /**
   * Matches `x` of a file `<table file>.x` that says work on the table file was cut short (a
   * CSV rewrite's sidecar or temp files): FileSink.resume (sinks/file-sink.ts) opens such files at once.
   */
  readonly pending?: RegExp;
  /** Takes up cut-short work on an existing file (see `pending`) before any row comes. */
  resume?(file: FileHandle): void;
}

/**
 * What a {@link RowFormat} may do with the file a row goes to (CSV needs it for its header and
 * its rewrites, docs/DESIGN.md §4). Nothing here reads a whole file.
 */
export interface FileHandle {
  readonly path: string;
  /** The file held bytes before this sink opened it: the sink is appending to it. */
  readonly appended: boolean;
  /** The file is blocked gzip (`.gz`). */
  readonly gz: boolean;
  /** durability 'flush': fsync what replaces the file before it is renamed into place. */
  readonly durable: boolean;
  /** The bytes of whole-line text as this file stores them (BGZF members for `.gz`). */
  encode(text: string): Buffer;
  /** The size of the file when its current writer was made (where this sink began appending). */
  readonly startSize: number;
  /** Writes every row handed to the sink so far (batched ones included) into the file, synchronously. */
  flushSync(): void;
  /**
   * Runs `fn`, which opens fds of its own (a sidecar, a rewrite's files) beyond the pool's. On
   * EMFILE an idle file of the pool is parked (its fd closed) and `fn` runs again, until no idle
   * file is left; then the EMFILE is thrown (the caller waits and tries later).
   */
  withFd<T>(fn: () => T): T;
  /**
   * Runs `fn` before any row handed from now on reaches the file (FileWriter.before): the rows
   * wait behind it, within `maxQueuedBytes`, and it is retried while it meets EMFILE.
   */
  before(fn: () => void): void;
  /** Cuts the file to `size` bytes (a torn tail) and appends after it. */
  truncate(size: number): void;
  /** Renames `tmp` over the file (atomic) and appends to the new file from now on. */
  replace(tmp: string): void;
}
