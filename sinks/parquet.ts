/**
 * parquetSink: one Parquet dataset per table, `<dir>/<table>.parquet/part-00000.parquet`, … —
 * the folder DuckDB, pandas/pyarrow and Spark read as one table (docs/DESIGN.md §4).
 *
 * Off the hot path (docs/DESIGN.md §5): `log.row()` only pushes the Entry (sinks/batch-sink.ts);
 * in the sink's timer, {@link ParquetBackend.write} appends the batch to each table's open part,
 * held in columns (lib/format/parquet-part.ts). A part closes when it holds `partRows` rows,
 * `partSeconds` after its first row, when a row brings a key it lacks or a value of another
 * type (the next part carries the union schema), and at `close()` and process exit. A closed
 * part's columns are transferred to the sink's worker thread (lib/io/worker-channel.ts), which
 * encodes them (hyparquet-writer) and writes the file whole through a temp file and a rename
 * (sinks/parquet-worker.ts, lib/io/parquet-dataset.ts).
 *
 * Crashes: a `*.parquet` file is always whole; a kill loses the open part's rows and the parts
 * not yet renamed into place (the default JSONL sink keeps them). `process.exit()` and signals
 * close the open parts and wait for the worker (`flushSync`: Atomics.wait, the worker runs on).
 *
 * Faults: a part that cannot be written (EACCES, ENOSPC, a folder that cannot be made) is not
 * retried: a part is written whole or not at all, and retrying would hold its rows while new
 * parts pile up behind it. Its rows are counted as lost: `W_FILE_ERROR` once per folder and
 * error code, `W_ROWS_DROPPED` at the first loss of a table and with the total at close. The
 * next part tries again (the folder is opened anew), so a disk that frees up resumes writing.
 *
 * The worker thread starts with the first part closed, so a sink that gets no rows costs none.
 *
 * Memory: the open parts (`partRows` × columns × ~9 bytes each at most, e.g. 50,000 × 30 ≈ 13.5 MB)
 * plus the parts being written, all counted in `pending` against `maxQueuedRows`: past it the
 * sink closes its parts and waits for the worker, so the caller slows down and no row is dropped.
 */
import { numberOption, objectOption, optionError } from '../lib/core/options.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { ParquetCodec } from '../lib/format/parquet-encode.js';
import { FIRST_ROWS, PartBuilder } from '../lib/format/parquet-part.js';
import type { PartJob } from '../lib/format/parquet-part.js';
import { datasetPath } from '../lib/io/parquet-dataset.js';
import { besideModule, WorkerChannel } from '../lib/io/worker-channel.js';
import { BatchSink } from './batch-sink.js';
import type { BatchBackend, BatchSinkOptions, BatchWarn } from './batch-sink.js';
import type { ParquetWorkerInit } from './parquet-worker.js';

/** Options of {@link parquetSink}. */
export interface ParquetSinkOptions extends BatchSinkOptions {
  /** Folder of the datasets: `<dir>/<table>.parquet/part-NNNNN.parquet` (a run folder, usually). */
  dir: string;
  /**
   * A part is closed (written whole, with its footer) when it holds this many rows. Its columns
   * are held in memory until then: about rows × columns × 9 bytes (50,000 rows of 30 columns
   * ≈ 13.5 MB), once more while the worker encodes it. @default 50000
   */
  partRows?: number;
  /**
   * …or this many seconds after its first row: what a crash can lose of a table that logs
   * slowly. @default 60
   */
  partSeconds?: number;
  /** Rows per row group inside a part (the unit DuckDB reads in parallel and skips by statistics). @default 10000 */
  rowGroupRows?: number;
  /** Compression of the pages. @default 'SNAPPY' */
  compression?: ParquetCodec;
  /** `'flush'`: fsync each part before its rename and the folder after it, for power-loss safety. @default 'none' */
  durability?: 'none' | 'flush';
  /**
   * Bound on rows held and not yet on disk: the open parts and the parts being written.
   * @default the larger of 65536 and 2 × partRows (one part written while the next fills)
   */
  maxQueuedRows?: number;
}

/** {@link ParquetSinkOptions} checked, with defaults. */
interface ResolvedParquetOptions {
  readonly dir: string;
  readonly partRows: number;
  readonly partMs: number;
  readonly rowGroupRows: number;
  readonly codec: ParquetCodec;
  readonly fsync: boolean;
}

function resolveParquetOptions(opts: ParquetSinkOptions): ResolvedParquetOptions {
  objectOption(opts);
  if (typeof opts.dir !== 'string' || opts.dir === '') throw optionError('type', 'dir', `must be a non-empty string (got ${typeof opts.dir})`);
  const codec = opts.compression ?? 'SNAPPY';
  if (codec !== 'SNAPPY' && codec !== 'UNCOMPRESSED') {
    throw optionError(typeof codec === 'string' ? 'range' : 'type', 'compression', `must be 'SNAPPY' or 'UNCOMPRESSED' (got ${String(codec)})`);
  }
  const durability = opts.durability ?? 'none';
  if (durability !== 'none' && durability !== 'flush') {
    throw optionError('range', 'durability', `must be 'none' or 'flush' (got ${String(durability)})`);
  }
  return {
    dir: opts.dir,
    partRows: numberOption(opts.partRows ?? 50_000, 'partRows', { min: 1, integer: true }),
    partMs: numberOption(opts.partSeconds ?? 60, 'partSeconds', { min: 0.001, max: 2_000_000 }) * 1000,
    rowGroupRows: numberOption(opts.rowGroupRows ?? 10_000, 'rowGroupRows', { min: 1, integer: true }),
    codec,
    fsync: durability === 'flush',
  };
}

/** Where the worker script is: beside this module (`.ts` under the tests, `.js` built). */
function workerUrl(): URL {
  return besideModule('parquet-worker', import.meta.url);
}

/** How many recent parts {@link ParquetBackend} remembers for a late failure report. */
const RECENT_JOBS = 1024;

/** A part posted to the worker, until it is written. */
interface Posted {
  readonly n: number;
  readonly table: string;
  readonly rows: number;
}

/** The rows the sink holds per table: columns in memory, parts for the worker (see the top). */
class ParquetBackend implements BatchBackend {
  readonly #o: ResolvedParquetOptions;
  readonly #warn: BatchWarn;
  /** The worker, started with the first part (a sink that never closes a part costs no thread). */
  #channel: WorkerChannel<PartJob> | undefined;
  readonly #parts = new Map<string, PartBuilder>();
  /** Rows in the open parts. */
  #open = 0;
  /** Parts posted and not known to be written, oldest first (the worker writes in order). */
  #posted: Posted[] = [];
  /**
   * The recent parts by job number, for a failure reported after its job counted as finished
   * (the report is a message, the count is shared memory). Bounded: the oldest go first.
   */
  readonly #byJob = new Map<number, Posted>();
  /** Rows lost per table, and how many of them were reported. */
  readonly #lost = new Map<string, { lost: number; reported: number }>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: ResolvedParquetOptions, warn: BatchWarn) {
    this.#o = o;
    this.#warn = warn;
  }

  write(batch: Array<Entry<FlatRow>>): void {
    for (const e of batch) {
      let part = this.#parts.get(e.table);
      if (part === undefined) {
        part = new PartBuilder(e.table, FIRST_ROWS, this.#o.partRows);
        this.#parts.set(e.table, part);
      }
      if (!part.add(e)) {
        part = this.#closePart(part); // a new key or another type: the next part has the union
        part.add(e);
      }
      this.#open++;
      if (part.full) this.#closePart(part);
    }
    if (this.#timer === undefined && this.#open > 0) this.#arm(this.#o.partMs);
  }

  get pending(): number {
    return this.#open + this.#unwritten();
  }

  async flush(): Promise<void> {
    await this.#channel?.flush();
  }

  flushSync(): void {
    this.#closeAll();
    this.#channel?.waitSync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closeAll();
    this.#end();
    await this.#channel?.close();
    this.#reportLost();
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#closeAll();
    this.#end();
    this.#channel?.closeSync();
    this.#reportLost();
  }

  #end(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Rows posted and not written yet; forgets the parts written (the worker finishes them in order). */
  #unwritten(): number {
    const left = this.#channel?.pending ?? 0;
    while (this.#posted.length > left) this.#posted.shift();
    let rows = 0;
    for (const p of this.#posted) rows += p.rows;
    return rows;
  }

  /** Closes `part` (when it holds rows) and posts it to the worker; returns the table's next part. */
  #closePart(part: PartBuilder): PartBuilder {
    const next = part.next();
    this.#parts.set(part.table, next);
    if (part.rows === 0) return next;
    this.#open -= part.rows;
    const { job, transfer } = part.close();
    const channel = this.#worker();
    if (channel.dead) this.#drop(part.table, part.rows, undefined);
    else {
      this.#unwritten(); // forget the parts written, so the list stays short
      const p: Posted = { n: channel.post(job, transfer), table: part.table, rows: part.rows };
      this.#posted.push(p);
      this.#byJob.set(p.n, p);
      if (this.#byJob.size > RECENT_JOBS) this.#byJob.delete(p.n - RECENT_JOBS);
    }
    return next;
  }

  #worker(): WorkerChannel<PartJob> {
    if (this.#channel === undefined) {
      const o = this.#o;
      const init: ParquetWorkerInit = { dir: o.dir, fsync: o.fsync, codec: o.codec, rowGroupRows: o.rowGroupRows };
      this.#channel = new WorkerChannel<PartJob>(workerUrl(), { init, onError: (err, job) => this.#failed(err, job) });
    }
    return this.#channel;
  }

  #closeAll(): void {
    for (const part of [...this.#parts.values()]) this.#closePart(part);
  }

  /** The partSeconds timer: closes the parts that are due, then waits for the next one. */
  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = performance.now();
      let soonest = Infinity;
      for (const part of [...this.#parts.values()]) {
        if (part.rows === 0) continue;
        const left = part.openedAt + this.#o.partMs - now;
        if (left <= 0) this.#closePart(part);
        else soonest = Math.min(soonest, left);
      }
      if (soonest !== Infinity) this.#arm(soonest);
    }, ms).unref();
  }

  /** The worker could not write job `n` (or died: `n` undefined, every part posted is lost). */
  #failed(err: Error & { code?: string }, n: number | undefined): void {
    const one = n === undefined ? undefined : this.#byJob.get(n);
    const lost = n === undefined ? this.#posted.splice(0) : one === undefined ? [] : [one];
    if (n !== undefined) this.#byJob.delete(n);
    if (lost.length === 0) this.#drop('', 0, err);
    for (const p of lost) this.#drop(p.table, p.rows, err);
  }

  /** `rows` of `table` are lost (`err`: why; undefined: the worker is gone). */
  #drop(table: string, rows: number, err: (Error & { code?: string }) | undefined): void {
    const code = err?.code ?? (err === undefined ? 'ERR_WORKER_GONE' : err.name);
    const folder = table === '' ? this.#o.dir : datasetPath(this.#o.dir, table);
    this.#warn(
      {
        code: 'W_FILE_ERROR',
        message: `${folder} cannot be written (${code}): ${err?.message ?? 'the Parquet worker thread is gone'}; parts that fail are not retried, the next part tries again`,
      },
      `${folder}\0${code}`,
    );
    if (rows === 0) return;
    const l = this.#lost.get(table) ?? { lost: 0, reported: 0 };
    this.#lost.set(table, l);
    l.lost += rows;
    if (l.reported !== 0) return;
    l.reported = l.lost;
    this.#warn(
      {
        code: 'W_ROWS_DROPPED',
        message: `${folder}: ${rows} rows dropped: their part could not be written (${code}); further drops are counted when the sink closes`,
        table,
      },
      folder,
    );
  }

  /** At close: one warning per table with the rows lost since the first report. */
  #reportLost(): void {
    for (const [table, l] of this.#lost) {
      if (l.lost === l.reported) continue;
      l.reported = l.lost;
      this.#warn(
        { code: 'W_ROWS_DROPPED', message: `${datasetPath(this.#o.dir, table)}: ${l.lost} rows dropped in all (parts that could not be written)`, table },
        `${table}\0total`,
      );
    }
  }
}

/**
 * A Parquet sink: `<dir>/<table>.parquet/part-NNNNN.parquet` per table (DuckDB:
 * `SELECT … FROM read_parquet('<dir>/<table>.parquet/*.parquet', union_by_name = true)`).
 * Throws `ERR_INVALID_OPTION` naming the first bad option.
 */
export function parquetSink(opts: ParquetSinkOptions): BatchSink {
  const o = resolveParquetOptions(opts);
  const maxQueuedRows = opts.maxQueuedRows ?? Math.max(65_536, 2 * o.partRows);
  return new BatchSink({ ...opts, maxQueuedRows }, (warn) => new ParquetBackend(o, warn));
}
