/**
 * FileSink: the machinery shared by the file sinks (JSONL now; CSV and blocked gzip plug in
 * through {@link RowFormat}). Entries are turned into text at write time and batched per file;
 * a batch goes to its FileWriter when it reaches `flushBytes` or when `flushIntervalMs` has
 * passed since the first unwritten row. `_write` always calls back synchronously, so the
 * logger never waits on the disk. An I/O error destroys the sink with that error (its `code`,
 * e.g. ENOSPC, is kept), which the logger turns into a warning.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { assertName } from './entry.js';
import type { Entry, FlatRow } from './entry.js';
import { numberOption, optionError } from './errors.js';
import { BGZF_MAX_INPUT } from './bgzf.js';
import { FileWriter } from './file-writer.js';
import { gzipCodec } from './gzip-writer.js';
import type { Sink } from './sink.js';

/** Options every file sink takes. */
export interface FileSinkOptions {
  /** Write every Entry into this one file. Exactly one of `path` and `dir`. */
  path?: string;
  /** Write one file per table: `<dir>/<table><ext>` (a `/` in a table name makes a sub-folder). */
  dir?: string;
  /** File name ending in `dir` mode. @default the format's (`.jsonl`) */
  ext?: string;
  /**
   * Size of a batch in bytes: a batch is handed to the disk before a row could take it past
   * this (with `.gz`, each batch becomes one gzip member; BGZF members hold at most 65280
   * bytes); a longer row goes alone. @default 65280
   */
  flushBytes?: number;
  /** …or when its first row has waited this long (ms). @default 250 */
  flushIntervalMs?: number;
  /**
   * Bound on bytes waiting for the disk. Past it the sink writes synchronously, so a training
   * loop that never yields to the event loop slows down instead of filling memory; no row is
   * dropped. @default 2097152 (2 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * zlib level of `.gz` output. Measured by `npm run bench` on its rows: level 1 compresses
   * 5.8× faster than level 6 for a file 35 % larger (see README). @default 1
   */
  gzipLevel?: number;
  /** `'flush'`: fsync after each batch (each gzip member), for power-loss safety. @default 'none' */
  durability?: 'none' | 'flush';
}

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
}

/**
 * What a {@link RowFormat} may do with the file a row goes to (CSV needs it for its header and
 * its rewrites, DESIGN §4). Nothing here reads a whole file.
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
  /** Writes every row handed to the sink so far (batched ones included) into the file, synchronously. */
  flushSync(): void;
  /** Cuts the file to `size` bytes (a torn tail) and appends after it. */
  truncate(size: number): void;
  /** Renames `tmp` over the file (atomic) and appends to the new file from now on. */
  replace(tmp: string): void;
}

/** How bytes reach a file: plain here; blocked gzip plugs in the same way. */
export interface Codec {
  /** Opens `path` for appending (creating it). */
  open(path: string, onError: (err: Error) => void): FileWriter;
  /** The text of a whole file's bytes. */
  decode(bytes: Buffer): string;
  /** The bytes of a whole file's text. */
  encode(text: string): Buffer;
}

function plainCodec(fsync: boolean): Codec {
  return {
    open: (p, onError) => new FileWriter(p, onError, { fsync }),
    decode: (bytes) => bytes.toString('utf8'),
    encode: (text) => Buffer.from(text),
  };
}

interface OpenFile extends FileHandle {
  writer: FileWriter;
  /**
   * The batch being filled: lines are encoded straight into it, so no long-lived string is
   * built on the heap (that made V8's heap grow by tens of MB at high row rates).
   */
  batch: Buffer | undefined;
  used: number;
}

/** From this size a replaced file is unlinked on the thread pool (freeing its blocks takes time). */
const BIG_FILE = 16 * 1024 * 1024;

const DEFAULTS = Object.freeze({ flushBytes: BGZF_MAX_INPUT, flushIntervalMs: 250, maxQueuedBytes: 2 * 1024 * 1024, gzipLevel: 1 });

export class FileSink extends Writable implements Sink {
  readonly #format: RowFormat;
  readonly #path: string | undefined;
  readonly #dir: string | undefined;
  readonly #ext: string;
  readonly #flushBytes: number;
  readonly #flushIntervalMs: number;
  readonly #maxQueuedBytes: number;
  readonly #files = new Map<string, OpenFile>();
  readonly #byTable = new Map<string, OpenFile>();
  #timer: NodeJS.Timeout | undefined;

  readonly #codec: Codec;
  readonly #gz: boolean;
  readonly #fsync: boolean;

  constructor(opts: FileSinkOptions, format: RowFormat) {
    super({ objectMode: true });
    if (typeof opts !== 'object' || opts === null) throw optionError('type', 'options', 'must be an object');
    if ((opts.path === undefined) === (opts.dir === undefined)) {
      throw optionError('type', 'path', 'give exactly one of path (one file) and dir (one file per table)');
    }
    for (const k of ['path', 'dir', 'ext'] as const) {
      if (opts[k] !== undefined && (typeof opts[k] !== 'string' || opts[k] === '')) {
        throw optionError('type', k, `must be a non-empty string (got ${String(opts[k])})`);
      }
    }
    this.#format = format;
    this.#path = opts.path;
    this.#dir = opts.dir;
    this.#ext = opts.ext ?? format.ext;
    this.#flushBytes = numberOption(opts.flushBytes ?? DEFAULTS.flushBytes, 'flushBytes', { min: 1 });
    this.#flushIntervalMs = numberOption(opts.flushIntervalMs ?? DEFAULTS.flushIntervalMs, 'flushIntervalMs', { min: 0 });
    this.#maxQueuedBytes = numberOption(opts.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes, 'maxQueuedBytes', { min: 0 });
    const level = numberOption(opts.gzipLevel ?? DEFAULTS.gzipLevel, 'gzipLevel', { min: 0, max: 9, integer: true });
    const durability = opts.durability ?? 'none';
    if (durability !== 'none' && durability !== 'flush') {
      throw optionError('range', 'durability', `must be 'none' or 'flush' (got ${String(durability)})`);
    }
    const fsync = durability === 'flush';
    this.#fsync = fsync;
    this.#gz = (this.#path ?? this.#ext).endsWith('.gz');
    this.#codec = this.#gz ? gzipCodec({ level, fsync }) : plainCodec(fsync);
  }

  /** The file an Entry of `table` goes to. */
  pathOf(table: string): string {
    return this.#path ?? path.join(this.#dir as string, table + this.#ext);
  }

  #open(table: string): OpenFile {
    let f = this.#byTable.get(table);
    if (f !== undefined) return f;
    if (this.#dir !== undefined) assertName(table); // a table becomes a path: it must not leave `dir`
    const p = this.pathOf(table);
    f = this.#files.get(p);
    if (f === undefined) {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      f = this.#openFile(p);
      this.#files.set(p, f);
    }
    this.#byTable.set(table, f);
    return f;
  }

  #openFile(p: string): OpenFile {
    const onError = (err: Error) => this.destroy(err);
    const writer = this.#codec.open(p, onError);
    const f: OpenFile = {
      path: p,
      appended: writer.startSize > 0,
      gz: this.#gz,
      durable: this.#fsync,
      writer,
      batch: undefined,
      used: 0,
      encode: (text) => this.#codec.encode(text),
      flushSync: () => {
        this.#hand(f);
        f.writer.flushSync();
      },
      truncate: (size) => {
        f.flushSync();
        f.writer.closeSync();
        fs.truncateSync(p, size);
        f.writer = this.#codec.open(p, onError);
      },
      replace: (tmp) => {
        f.flushSync();
        f.writer.closeSync();
        // A rename over a big file frees its blocks synchronously (≈ 0.2 s for 500 MB): keep a
        // second link so the rename is cheap, and unlink that on the thread pool.
        const old = `${p}.old.tmp`;
        let linked = false;
        try {
          if (fs.statSync(p).size >= BIG_FILE) {
            fs.rmSync(old, { force: true });
            fs.linkSync(p, old);
            linked = true;
          }
        } catch {
          // no hard links here: the rename frees the old file itself
        }
        try {
          fs.renameSync(tmp, p);
        } finally {
          f.writer = this.#codec.open(p, onError); // the new file, or the old one if the rename failed
        }
        if (linked) fs.unlink(old, () => {});
      },
    };
    return f;
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let f: OpenFile;
    let line: string;
    try {
      f = this.#open(entry.table);
      line = this.#format.line(entry, f);
    } catch (err) {
      callback(err as Error);
      return;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit: hand the batch before a line could overflow it.
    if (line.length * 3 > this.#flushBytes - f.used) this.#hand(f);
    if (line.length * 3 > this.#flushBytes) {
      f.writer.write(Buffer.from(line)); // longer than a batch: on its own
      this.#checkBound();
    } else {
      f.batch ??= Buffer.allocUnsafe(this.#flushBytes);
      f.used += f.batch.write(line, f.used);
      if (this.#timer === undefined) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#handAll();
        }, this.#flushIntervalMs).unref();
      }
    }
    callback();
  }

  #hand(f: OpenFile): void {
    if (f.used === 0 || f.batch === undefined) return;
    const bytes = f.batch.subarray(0, f.used);
    f.batch = undefined;
    f.used = 0;
    f.writer.write(bytes);
    this.#checkBound();
  }

  #checkBound(): void {
    if (this.queuedBytes > this.#maxQueuedBytes) this.#writeQueuedSync();
  }

  /** Memory bound reached (the event loop is not getting a turn): write everything now. */
  #writeQueuedSync(): void {
    for (const f of this.#files.values()) {
      try {
        f.writer.flushSync();
      } catch {
        // the writer has failed and reported it through destroy(err); nothing more to write
      }
    }
  }

  #handAll(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const f of this.#files.values()) this.#hand(f);
  }

  /** Bytes waiting for the disk, batched or queued. */
  get queuedBytes(): number {
    let n = 0;
    for (const f of this.#files.values()) n += f.used + f.writer.queuedBytes;
    return n;
  }

  async flush(): Promise<void> {
    this.#handAll();
    await Promise.all([...this.#files.values()].map((f) => f.writer.flush()));
  }

  flushSync(): void {
    if (this.destroyed) return;
    this.#handAll();
    for (const f of this.#files.values()) f.writer.flushSync();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#handAll();
    Promise.resolve(this.#format.settle?.())
      .then(() => {
        this.#handAll();
        return Promise.all([...this.#files.values()].map((f) => f.writer.close()));
      })
      .then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#format.abort?.();
    for (const f of this.#files.values()) f.writer.closeSync();
    callback(err);
  }
}
