/**
 * sqliteSink: the run as one SQLite database (`run.sqlite` in the run folder), as Blocks keeps its
 * training log (docs/DESIGN.md §4). This is the main thread's side, kept small: it checks the
 * options, probes for the optional peer `better-sqlite3` (ERR_MISSING_DEPENDENCY naming the
 * install line when absent), and turns each batch of {@link BatchSink} into a compact job for ONE
 * worker thread (lib/io/worker-channel.ts) that holds the database and runs the SQL
 * (sinks/sqlite-worker.ts, loaded only when the peer is there). So `log.row()` pays an array push
 * and SQLite never runs on the training loop's thread (docs/DESIGN.md §5).
 *
 * A job, per table of the batch: the key list and one column per key, a `Float64Array`
 * (transferred, not copied) when every value of the key in the batch is a number or missing
 * (missing = NaN; SQLite stores NaN as NULL anyway), else an array of the values. Faults are the
 * worker's jobs failing (a full disk, a file that is not a database): warned once per code
 * (`W_FILE_ERROR`), their rows counted as dropped (`W_ROWS_DROPPED`); never a throw.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { RowlogError } from '../lib/core/errors.js';
import { objectOption, optionError } from '../lib/core/options.js';
import { besideModule, WorkerChannel } from '../lib/io/worker-channel.js';
import { jsonReplacer } from '../lib/run/run-dir.js';
import { BatchSink, resolveBatchOptions } from './batch-sink.js';
import type { BatchBackend, BatchSinkOptions, BatchWarn } from './batch-sink.js';
import type { SqliteInit, SqliteJob, TableBatch } from './sqlite-worker.js';

/** The database's name in `dir` mode. */
export const SQLITE_FILE = 'run.sqlite';

/** Options of {@link sqliteSink}. */
export interface SqliteSinkOptions extends BatchSinkOptions {
  /** The database file. Exactly one of `path` and `dir`. */
  path?: string;
  /** The run folder: the database is `<dir>/run.sqlite`. */
  dir?: string;
  /**
   * SQLite's `synchronous` under WAL: `'normal'` survives a killed process (every committed
   * batch is in the WAL file, which the next open replays); `'full'` also survives a power loss
   * (an fsync per batch). @default 'normal'
   */
  synchronous?: 'normal' | 'full';
}

/** A value of the `params` and `status` tables: scalars as they are, anything else as JSON text. */
export type SqliteRecord = Readonly<Record<string, unknown>>;

/**
 * A SQLite sink: every table of the run in `run.sqlite` (or `path`), a wide SQL table per rowlog
 * table, WAL, one transaction per batch, written by a worker thread. Needs the optional peer
 * `better-sqlite3@12` (`npm install better-sqlite3@12`), else throws ERR_MISSING_DEPENDENCY.
 */
export function sqliteSink(opts: SqliteSinkOptions): SqliteSink {
  return createSqliteSink(opts, 'better-sqlite3');
}

/**
 * {@link sqliteSink} with the engine module named: not public API (lib/index.ts does not export
 * it); the tests give a module that does not exist to see what a machine without the peer sees.
 */
export function createSqliteSink(opts: SqliteSinkOptions, engine: string): SqliteSink {
  objectOption(opts);
  resolveBatchOptions(opts);
  if ((opts.path === undefined) === (opts.dir === undefined)) {
    throw optionError('type', 'path', 'give exactly one of path (the database file) and dir (the run folder: run.sqlite)');
  }
  for (const k of ['path', 'dir'] as const) {
    if (opts[k] !== undefined && (typeof opts[k] !== 'string' || opts[k] === '')) {
      throw optionError('type', k, `must be a non-empty string (got ${String(opts[k])})`);
    }
  }
  const sync = opts.synchronous ?? 'normal';
  if (sync !== 'normal' && sync !== 'full') throw optionError('range', 'synchronous', `must be 'normal' or 'full' (got ${String(sync)})`);
  const require = createRequire(import.meta.url);
  try {
    require.resolve(engine);
  } catch (err) {
    throw new RowlogError(
      'ERR_MISSING_DEPENDENCY',
      `sqliteSink needs the optional peer dependency better-sqlite3: npm install better-sqlite3@12`,
      { cause: err },
    );
  }
  const file = path.resolve(opts.dir === undefined ? (opts.path as string) : path.join(opts.dir, SQLITE_FILE));
  return new SqliteSink(opts, { file, synchronous: sync, engine });
}

/** The sink: a {@link BatchSink} whose backend posts to the database's worker; plus the run's records. */
export class SqliteSink extends BatchSink {
  readonly #backend: SqliteBackend;

  constructor(opts: SqliteSinkOptions, init: SqliteInit) {
    let backend: SqliteBackend | undefined;
    super(opts, (warn) => (backend = new SqliteBackend(init, warn)));
    this.#backend = backend as unknown as SqliteBackend;
  }

  /** The database file. */
  get file(): string {
    return this.#backend.file;
  }

  /** Records `run.json`'s content as this run's row of `runs` (later rows point at it in `"$run"`). */
  setRun(run: SqliteRecord): void {
    const plain = this.#backend.plain(run, 'run');
    if (plain !== undefined) this.#backend.post({ kind: 'run', run: plain }, 0);
  }

  /** Merges `params` into the `params` table (top-level keys replace earlier ones, as params.json). */
  setParams(params: SqliteRecord): void {
    const plain = this.#backend.plain(params, 'params');
    if (plain !== undefined) this.#backend.post({ kind: 'params', values: plain }, 0);
  }

  /** Replaces the `status` table with `status` (what status.json holds). */
  setStatus(status: SqliteRecord): void {
    const plain = this.#backend.plain(status, 'status');
    if (plain !== undefined) this.#backend.post({ kind: 'status', values: plain }, 0);
  }
}

/** The worker script next to this module (.ts when run from sources, as lib/read/query-pool.ts). */
function workerUrl(): URL {
  return besideModule('sqlite-worker', import.meta.url);
}

/**
 * One table's rows of a batch as columns. Keys come in first-seen order; a row missing a key
 * (or a key new in this batch) is NaN in a Float64Array column and null in an array column.
 */
export function toColumns(table: string, rows: ReadonlyArray<Entry<FlatRow>>): TableBatch {
  const n = rows.length;
  const meta = new Float64Array(n * 3);
  const keys: string[] = [];
  const index = new Map<string, number>();
  const columns: Array<Float64Array | Array<FlatRow[string]>> = [];
  for (let i = 0; i < n; i++) {
    const e = rows[i] as Entry<FlatRow>;
    meta[i * 3] = e.step;
    meta[i * 3 + 1] = e.time;
    meta[i * 3 + 2] = e.level;
    let j = 0;
    for (const k in e.data) {
      // Rows of a table mostly repeat the same keys in the same order: no lookup then.
      const c = keys[j] === k ? j : (index.get(k) ?? newColumn(k));
      j = c + 1;
      const v = e.data[k] as FlatRow[string];
      let col = columns[c] as Float64Array | Array<FlatRow[string]>;
      if (col instanceof Float64Array) {
        if (typeof v === 'number') {
          col[i] = v;
          continue;
        }
        if (v === null) continue;
        col = columns[c] = Array.from(col, (x) => (Number.isNaN(x) ? null : x));
      }
      col[i] = v;
    }
  }
  return { table, keys, meta, columns };

  function newColumn(k: string): number {
    index.set(k, keys.length);
    keys.push(k);
    columns.push(new Float64Array(n).fill(NaN));
    return keys.length - 1;
  }
}

/**
 * The backend: batches become jobs; their rows count as pending until the worker finished them.
 * The worker (and the database file) start with the first batch, so a sink that gets no row costs
 * no thread and leaves no file; the run's records given before are held until then.
 */
class SqliteBackend implements BatchBackend {
  readonly file: string;
  readonly #init: SqliteInit;
  #channel: WorkerChannel<SqliteJob> | undefined;
  /** Records (run, params, status) given before the first batch, in order, the latest of each kind. */
  #held: SqliteJob[] = [];
  readonly #warn: BatchWarn;
  /** Jobs holding rows, oldest first: finished ones are kept a while, for their failure report. */
  readonly #jobs: Array<{ n: number; rows: number }> = [];
  #posted = 0;
  /** Jobs seen finished (the channel counts them; its failure messages come later). */
  #finished = 0;
  #dropped = 0;
  #closed = false;

  constructor(init: SqliteInit, warn: BatchWarn) {
    this.file = init.file;
    this.#init = init;
    this.#warn = warn;
  }

  /**
   * `record` as the run folder's JSON files save it ({@link jsonReplacer}), for the worker; undefined, and a warning
   * (`W_STATUS`, as the logger warns when status.json cannot be saved), when it cannot be saved.
   */
  plain(record: SqliteRecord, what: string): Record<string, unknown> | undefined {
    try {
      return JSON.parse(JSON.stringify(record, jsonReplacer)) as Record<string, unknown>;
    } catch (err) {
      this.#warn({ code: 'W_STATUS', message: `${this.file}: could not record the ${what}: ${(err as Error).message}` }, what);
      return undefined;
    }
  }

  get pending(): number {
    if (this.#channel === undefined) return 0;
    if (!this.#channel.dead) this.#finished = this.#posted - this.#channel.pending;
    // A failure is reported as a message after its job counts as finished: keep 4096 finished jobs.
    while (this.#jobs.length > 0 && (this.#jobs[0] as { n: number }).n < this.#finished - 4096) this.#jobs.shift();
    let rows = 0;
    for (let i = this.#jobs.length - 1; i >= 0 && (this.#jobs[i] as { n: number }).n >= this.#finished; i--) rows += (this.#jobs[i] as { rows: number }).rows;
    return this.#channel.dead ? 0 : rows;
  }

  post(job: SqliteJob, rows: number, transfer: ArrayBuffer[] = []): void {
    if (this.#closed) return;
    if (this.#channel === undefined) {
      if (job.kind === 'close') return;
      if (rows === 0) {
        // params merge (as params.json); run and status replace what was held.
        const same = this.#held.find((h) => h.kind === job.kind);
        const merged = job.kind === 'params' && same?.kind === 'params' ? { kind: 'params' as const, values: { ...same.values, ...job.values } } : job;
        this.#held = [...this.#held.filter((h) => h !== same), merged];
        return;
      }
      this.#channel = new WorkerChannel<SqliteJob>(workerUrl(), { init: this.#init, onError: (err, n) => this.#failed(err, n) });
      for (const h of this.#held.splice(0)) this.#posted = this.#channel.post(h) + 1;
    }
    if (this.#channel.dead) {
      if (rows > 0) this.#drop(rows, 'the database worker is gone');
      return;
    }
    const n = this.#channel.post(job, transfer);
    this.#posted = n + 1;
    if (rows > 0) this.#jobs.push({ n, rows });
  }

  write(batch: Array<Entry<FlatRow>>): void {
    const byTable = new Map<string, Array<Entry<FlatRow>>>();
    for (const e of batch) {
      const rows = byTable.get(e.table);
      if (rows === undefined) byTable.set(e.table, [e]);
      else rows.push(e);
    }
    const tables: TableBatch[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const [table, rows] of byTable) {
      const t = toColumns(table, rows);
      tables.push(t);
      transfer.push(t.meta.buffer as ArrayBuffer);
      for (const c of t.columns) if (c instanceof Float64Array) transfer.push(c.buffer as ArrayBuffer);
    }
    this.post({ kind: 'rows', tables }, batch.length, transfer);
  }

  async flush(): Promise<void> {
    await this.#channel?.flush();
  }

  flushSync(): void {
    this.#channel?.waitSync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.post({ kind: 'close' }, 0);
    this.#closed = true;
    await this.#channel?.close();
    this.#report();
  }

  closeSync(): void {
    if (this.#closed) return;
    this.post({ kind: 'close' }, 0);
    this.#closed = true;
    this.#channel?.closeSync();
    this.#report();
  }

  /** A job failed in the worker (its rows are lost), or the worker died (everything pending is). */
  #failed(err: Error & { code?: string }, job: number | undefined): void {
    const code = err.code ?? 'error';
    if (job === undefined) {
      this.#warn({ code: 'W_FILE_ERROR', message: `${this.file}: the database's worker thread ended (${err.message}); later rows are dropped and counted` }, 'gone');
    } else {
      this.#warn(
        { code: 'W_FILE_ERROR', message: `${this.file} cannot be written (${code}): ${err.message}; the batches it refuses are dropped and counted, later ones are tried` },
        code,
      );
    }
    const lost = job === undefined ? this.#jobs.filter((j) => j.n >= this.#finished) : this.#jobs.filter((j) => j.n === job);
    const rows = lost.reduce((s, j) => s + j.rows, 0);
    if (rows > 0) this.#drop(rows, `it failed (${code})`);
  }

  #drop(rows: number, why: string): void {
    const first = this.#dropped === 0;
    this.#dropped += rows;
    if (first) {
      this.#warn({
        code: 'W_ROWS_DROPPED',
        message: `${this.file}: ${rows} rows dropped: ${why}; further drops are counted when the sink closes`,
      });
    }
  }

  #report(): void {
    if (this.#dropped === 0) return;
    this.#warn(
      { code: 'W_ROWS_DROPPED', message: `${this.file}: ${this.#dropped} rows in all could not be written` },
      `total\0${this.#dropped}`,
    );
  }
}
