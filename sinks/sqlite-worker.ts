/**
 * The worker thread of sqliteSink (sinks/sqlite.ts): it alone holds the database and runs the
 * SQL, so the training loop's thread never waits on SQLite (docs/DESIGN.md §4, §5). Loaded only
 * when the optional peer better-sqlite3 is installed (the main thread probes first).
 *
 * Layout of `run.sqlite`:
 * - one wide table per rowlog table: `"$step" INTEGER, "$time" INTEGER, "$level" INTEGER,
 *   "$run" INTEGER` (the `runs` row that wrote it: a reopened run folder appends to the same
 *   database), then one column per key in the order keys first came: REAL for numbers, TEXT for
 *   strings, INTEGER 0/1 for booleans (the first value decides; SQLite's affinity rules apply to
 *   a key whose type changes). A new key is `ALTER TABLE … ADD COLUMN`: older rows hold NULL.
 *   NaN is stored as NULL (SQLite has no NaN: it binds NaN as NULL); ±Infinity as REAL ±Inf.
 *   Indexed on `"$step"`. Its SQL name is the rowlog name (`/` and `.` kept, quoted), except
 *   that SQL names are case-insensitive: a name taken already (`Main` after `main`, one of the
 *   tables below; for columns, `Loss` after `loss`) gets `$2`, `$3`…, and `sqlite_…` (SQLite's
 *   own) becomes `$sqlite_…`. `"$tables"` and `"$columns"` map rowlog names to SQL names
 *   (rowlog names never hold `$`, so these never collide with a table).
 * - `runs (id, name, dir, started, resumed_from, json, appended_to)`: each run.json, with
 *   `resumed_from` the parent's id of a resumed run (`resumedFrom.id`, another folder) and
 *   `appended_to` the earlier opening of the same folder (`appendedTo`; the column is added to
 *   a database an older rowlog made); `params (key, value)`;
 *   `status (key, value, updated)`: what params.json and status.json hold (scalars as they are,
 *   booleans 0/1, anything else as JSON text).
 * - the view `entries (run, step, key, value)`, Blocks' long layout, `key` = `<table>/<key>`:
 *   one row per value that is not NULL, over every wide table; recreated when a table or a
 *   column is added.
 * WAL with `synchronous=NORMAL` by default: a commit is in the WAL file before the batch counts
 * as stored, so a killed process loses no committed batch (the next open replays the WAL);
 * `synchronous=FULL` (the `synchronous: 'full'` option) also fsyncs each commit, for power loss.
 * One transaction per batch. A job that fails (SQLITE_FULL, a file that is not a database) is
 * reported to the main thread and rolled back; the database is reopened for the next job.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FlatRow } from '../lib/core/entry.js';
import { serveJobs } from '../lib/io/worker-channel.js';

/** What the worker is started with. */
export interface SqliteInit {
  readonly file: string;
  readonly synchronous: 'normal' | 'full';
  /** The module to load (better-sqlite3; another name in tests). */
  readonly engine: string;
}

/** One table's rows of a batch, as columns (sinks/sqlite.ts `toColumns`). */
export interface TableBatch {
  readonly table: string;
  readonly keys: readonly string[];
  /** `$step`, `$time`, `$level` of each row, in turn. */
  readonly meta: Float64Array;
  /** Per key: numbers (NaN = NULL), or the values as logged (null when missing). */
  readonly columns: ReadonlyArray<Float64Array | ReadonlyArray<FlatRow[string]>>;
}

/** A job of the worker. */
export type SqliteJob =
  | { readonly kind: 'rows'; readonly tables: readonly TableBatch[] }
  | { readonly kind: 'run'; readonly run: Record<string, unknown> }
  | { readonly kind: 'params' | 'status'; readonly values: Record<string, unknown> }
  | { readonly kind: 'close' };

/** What is used of better-sqlite3 (it ships no types; @types/better-sqlite3 is not a dependency). */
interface Statement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): Record<string, unknown> | undefined;
  all(...params: unknown[]): Array<Record<string, unknown>>;
}
interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(sql: string): unknown;
  transaction(fn: () => void): () => void;
  close(): void;
}

/** An SQL identifier, quoted: `"` doubled. */
export function quoteId(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A value as SQLite stores it in `params` and `status` (columns without a type): a whole number
 * as INTEGER (better-sqlite3 binds a JS number as REAL, a BigInt as INTEGER), booleans 0/1.
 */
function sqlValue(v: unknown): number | bigint | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return JSON.stringify(v);
}

const RESERVED = ['runs', 'params', 'status', 'entries'];

/** Terms of one compound SELECT in the view: SQLite's SQLITE_MAX_COMPOUND_SELECT is 500. */
const COMPOUND_MAX = 400;

interface Table {
  readonly sql: string;
  /** key → its SQL column name. */
  readonly columns: Map<string, string>;
  /** Column names taken, lower-cased. */
  readonly taken: Set<string>;
  /** INSERT statements by key list. */
  readonly inserts: Map<string, { stmt: Statement; cols: string[] }>;
}

class Store {
  readonly #db: Database;
  readonly #tables = new Map<string, Table>();
  readonly #takenTables = new Set(RESERVED);
  #viewStale = false;
  run: number | null = null;

  constructor(Engine: new (file: string) => Database, init: SqliteInit) {
    fs.mkdirSync(path.dirname(init.file), { recursive: true });
    this.#db = new Engine(init.file);
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma(`synchronous = ${init.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, name TEXT, dir TEXT, started TEXT, resumed_from TEXT, json TEXT, appended_to TEXT);
        CREATE TABLE IF NOT EXISTS params (key TEXT PRIMARY KEY, value);
        CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value, updated TEXT);
        CREATE TABLE IF NOT EXISTS "$tables" (name TEXT PRIMARY KEY, sql_name TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS "$columns" (tbl TEXT NOT NULL, key TEXT NOT NULL, sql_name TEXT NOT NULL, PRIMARY KEY (tbl, key));
      `);
      // A database an older rowlog made has no appended_to yet.
      if (this.#db.prepare(`SELECT 1 AS r FROM pragma_table_info('runs') WHERE name = 'appended_to'`).get() === undefined) this.#db.exec('ALTER TABLE runs ADD COLUMN appended_to TEXT');
      for (const r of this.#db.prepare('SELECT name, sql_name FROM "$tables" ORDER BY rowid').all()) {
        this.#tables.set(String(r.name), { sql: String(r.sql_name), columns: new Map(), taken: new Set(['$step', '$time', '$level', '$run']), inserts: new Map() });
        this.#takenTables.add(String(r.sql_name).toLowerCase());
      }
      for (const r of this.#db.prepare('SELECT tbl, key, sql_name FROM "$columns" ORDER BY rowid').all()) {
        const t = this.#tables.get(String(r.tbl));
        t?.columns.set(String(r.key), String(r.sql_name));
        t?.taken.add(String(r.sql_name).toLowerCase());
      }
      if (this.#db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'entries'`).get() === undefined) this.#viewStale = true;
    } catch (err) {
      closeQuietly(this.#db);
      throw err;
    }
  }

  close(): void {
    this.#db.close();
  }

  /** Upserts run.json's content; later rows carry its rowid in `"$run"`. */
  setRun(run: Record<string, unknown>, dir: string): void {
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    const id = str(run.id) ?? JSON.stringify(run);
    this.#db
      .prepare(
        `INSERT INTO runs (id, name, dir, started, resumed_from, json, appended_to) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, dir = excluded.dir, started = excluded.started,
         resumed_from = excluded.resumed_from, json = excluded.json, appended_to = excluded.appended_to`,
      )
      .run(id, str(run.name), str(run.dir) ?? dir, str(run.startTime), str((run.resumedFrom as { id?: unknown } | undefined)?.id), JSON.stringify(run), str(run.appendedTo));
    this.run = Number(this.#db.prepare('SELECT rowid AS r FROM runs WHERE id = ?').get(id)?.r);
  }

  setParams(values: Record<string, unknown>): void {
    const up = this.#db.prepare('INSERT INTO params (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.#db.transaction(() => {
      for (const [k, v] of Object.entries(values)) up.run(k, sqlValue(v));
    })();
  }

  setStatus(values: Record<string, unknown>): void {
    const ins = this.#db.prepare('INSERT INTO status (key, value, updated) VALUES (?, ?, ?)');
    const now = new Date().toISOString();
    this.#db.transaction(() => {
      this.#db.exec('DELETE FROM status');
      for (const [k, v] of Object.entries(values)) ins.run(k, sqlValue(v), now);
    })();
  }

  /** One batch, one transaction. */
  write(tables: readonly TableBatch[]): void {
    this.#db.transaction(() => {
      for (const b of tables) this.#insert(b);
      if (this.#viewStale) this.#createView();
    })();
  }

  #table(name: string): Table {
    let t = this.#tables.get(name);
    if (t !== undefined) return t;
    const sql = freeName(name, this.#takenTables);
    this.#db.exec(
      `CREATE TABLE ${quoteId(sql)} ("$step" INTEGER, "$time" INTEGER, "$level" INTEGER, "$run" INTEGER);
       CREATE INDEX ${quoteId(`${sql}.$step`)} ON ${quoteId(sql)} ("$step");`,
    );
    this.#db.prepare('INSERT INTO "$tables" (name, sql_name) VALUES (?, ?)').run(name, sql);
    t = { sql, columns: new Map(), taken: new Set(['$step', '$time', '$level', '$run']), inserts: new Map() };
    this.#tables.set(name, t);
    this.#viewStale = true;
    return t;
  }

  #column(t: Table, table: string, key: string, col: Float64Array | ReadonlyArray<FlatRow[string]>): void {
    const first = col instanceof Float64Array ? 0 : col.find((v) => v !== null);
    const type = typeof first === 'string' ? 'TEXT' : typeof first === 'boolean' ? 'INTEGER' : 'REAL';
    const sql = freeName(key, t.taken);
    this.#db.exec(`ALTER TABLE ${quoteId(t.sql)} ADD COLUMN ${quoteId(sql)} ${type}`);
    this.#db.prepare('INSERT INTO "$columns" (tbl, key, sql_name) VALUES (?, ?, ?)').run(table, key, sql);
    t.columns.set(key, sql);
    this.#viewStale = true;
  }

  #insert(b: TableBatch): void {
    const t = this.#table(b.table);
    const sig = b.keys.join('\0');
    let ins = t.inserts.get(sig);
    if (ins === undefined) {
      b.keys.forEach((k, i) => t.columns.has(k) || this.#column(t, b.table, k, b.columns[i] as Float64Array));
      const cols = ['$step', '$time', '$level', '$run', ...b.keys.map((k) => t.columns.get(k) as string)];
      const sql = `INSERT INTO ${quoteId(t.sql)} (${cols.map(quoteId).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
      ins = { stmt: this.#db.prepare(sql), cols };
      t.inserts.set(sig, ins);
    }
    const k = b.keys.length;
    const n = b.meta.length / 3;
    const args: unknown[] = new Array(4 + k);
    args[3] = this.run;
    for (let i = 0; i < n; i++) {
      args[0] = b.meta[i * 3];
      args[1] = b.meta[i * 3 + 1];
      args[2] = b.meta[i * 3 + 2];
      for (let c = 0; c < k; c++) {
        const v = (b.columns[c] as ArrayLike<FlatRow[string]>)[i];
        args[4 + c] = typeof v === 'number' ? (Number.isNaN(v) ? null : v) : typeof v === 'boolean' ? (v ? 1 : 0) : (v ?? null);
      }
      ins.stmt.run(args);
    }
  }

  /** `entries (run, step, key, value)` over every wide table. */
  #createView(): void {
    const parts: string[] = [];
    for (const [name, t] of this.#tables) {
      if (t.columns.size === 0) continue;
      const keys = [...t.columns];
      const values = keys.map(([k], i) => `(${quoteString(`${name}/${k}`)}, ${i})`).join(', ');
      const cases = keys.map(([, c], i) => `WHEN ${i} THEN t.${quoteId(c)}`).join(' ');
      // The filter is outside: in the inner WHERE, `value` would name a key called "value".
      parts.push(
        `SELECT * FROM (SELECT r.id AS run, t."$step" AS step, k.column1 AS key, CASE k.column2 ${cases} END AS value ` +
          `FROM ${quoteId(t.sql)} AS t CROSS JOIN (VALUES ${values}) AS k LEFT JOIN runs AS r ON r.rowid = t."$run") WHERE value IS NOT NULL`,
      );
    }
    // SQLite allows 500 terms in one compound SELECT: more tables are unioned in nested groups.
    let terms = parts;
    while (terms.length > COMPOUND_MAX) {
      const groups: string[] = [];
      for (let i = 0; i < terms.length; i += COMPOUND_MAX) groups.push(`SELECT * FROM (${terms.slice(i, i + COMPOUND_MAX).join('\nUNION ALL\n')})`);
      terms = groups;
    }
    const body = terms.length > 0 ? terms.join('\nUNION ALL\n') : 'SELECT NULL AS run, NULL AS step, NULL AS key, NULL AS value WHERE 0';
    this.#db.exec(`DROP VIEW IF EXISTS entries; CREATE VIEW entries AS ${body}`);
    this.#viewStale = false;
  }
}

/** Closes a database that failed: best effort, the failure is what is reported. */
function closeQuietly(db: { close(): void }): void {
  try {
    db.close();
  } catch {
    // the error that made us close it is the one reported
  }
}

/** A string as an SQL literal. */
function quoteString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * `name`, or `name$2`, `name$3`… when taken (case-insensitively, as SQLite compares names); marks
 * it taken. SQLite keeps names starting with `sqlite_` for itself: those become `$sqlite_…`.
 */
function freeName(name: string, taken: Set<string>): string {
  const base = name.toLowerCase().startsWith('sqlite_') ? `$${name}` : name;
  let sql = base;
  for (let i = 2; taken.has(sql.toLowerCase()); i++) sql = `${base}$${i}`;
  taken.add(sql.toLowerCase());
  return sql;
}

// The worker's top level: jobs in order, the database opened on the first and after a failure.
let store: Store | undefined;
let lastRun: Record<string, unknown> | undefined;
let Engine: (new (file: string) => Database) | undefined;

const init = serveJobs<SqliteJob>((job) => {
  if (job.kind === 'close') {
    // The last job (the sink posts nothing after it).
    store?.close();
    store = undefined;
    return;
  }
  if (job.kind === 'run') lastRun = job.run;
  const opened = store === undefined;
  store ??= open();
  if (opened && job.kind === 'run') return; // open() recorded it
  const s = store;
  try {
    if (job.kind === 'rows') s.write(job.tables);
    else if (job.kind === 'run') s.setRun(job.run, path.dirname(init.file));
    else if (job.kind === 'params') s.setParams(job.values);
    else s.setStatus(job.values);
  } catch (err) {
    // Rolled back: the schema known here may be ahead of the file's. Reopen for the next job.
    store = undefined;
    closeQuietly(s);
    throw err;
  }
}) as SqliteInit;

function open(): Store {
  Engine ??= createRequire(import.meta.url)(init.engine) as new (file: string) => Database;
  const s = new Store(Engine, init);
  if (lastRun !== undefined) s.setRun(lastRun, path.dirname(init.file));
  return s;
}
