/**
 * CsvFormat: the RowFormat of csvSink (sinks/csv.ts; docs/DESIGN.md §4). Each row is turned into text
 * through a per-file, per-table column plan that is rebuilt only when the row's keys or the
 * header change, so the common case is a string build. A row with keys the header lacks
 * follows `onNewKeys`; with `'rewrite'` the keys become extras named by the sidecar
 * (sinks/csv-sidecar.ts) and a rewrite (sinks/csv-rewrite.ts, one of few at a time:
 * sinks/rewrite-turns.ts) widens the header. An existing file is readied by reopenCsv
 * (sinks/csv-file.ts).
 *
 * Out of fds (issue 9 point 2: EMFILE under a low `ulimit -n`, the pool's files holding the rest),
 * nothing here may fail the sink: a failure inside `log.row()` used to fail it, and every CSV lost
 * the rows it still held (the chaos test's emfile fault lost most flushed rows). So every fd the
 * format opens goes through `FileHandle.withFd` (an idle file of the pool is parked to make room);
 * a sidecar that still cannot be written becomes a barrier in the file's queue (the rows carrying
 * the new keys wait behind it, retried, never written unnamed), and a rewrite is postponed. When
 * a new key's flush fails, the extras' start `from` is where this writer began appending, a
 * bound that is exact enough (rows of this sink before the first extras-carrying one have no
 * fields past the header, so only a foreign file's ragged rows, which are all before it, depend
 * on it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { headerLine, reopenCsv } from './csv-file.js';
import { CsvRewrite, FINAL_BYTES } from './csv-rewrite.js';
import { writeColumns } from './csv-sidecar.js';
import { RewriteTurns } from './rewrite-turns.js';
import { pyRepr } from '../lib/format/py-repr.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { FileHandle, RowFormat } from './row-format.js';
import { isEmfile } from '../lib/io/errno.js';
import type { WarningGate } from '../lib/core/warnings.js';
import { compileCsvLine, csvLineGeneric } from '../lib/format/csv-line.js';
import type { CsvEncoder } from '../lib/format/csv-line.js';
import { COMPILE_AFTER, KeyOrder } from '../lib/format/json-line.js';
import type { KeyLayout } from '../lib/format/json-line.js';

/** What csvSink does with a row holding keys its file's header lacks (see CsvSinkOptions.onNewKeys). */
export type CsvNewKeys = 'rewrite' | 'error' | 'ignore';

/** Where a column's cell comes from: a data key, a metadata field, or nowhere (empty cell). */
type Source = string | MetaField | null;
/** Metadata fields in column order. */
const META_FIELDS = ['$step', '$time', '$level', '$table'] as const;
type MetaField = { readonly meta: 'step' | 'time' | 'level' | 'table' };
const META_SOURCE: ReadonlyMap<string, MetaField> = new Map(META_FIELDS.map((c) => [c, { meta: c.slice(1) } as MetaField]));

/** How the rows of one table map onto one header version. */
interface Plan {
  readonly layout: KeyLayout;
  readonly version: number;
  /** One source per header column. */
  readonly sources: readonly Source[];
  /** The compiled line builder, once the table's keys have been stable (`null`: cannot be built). */
  encode?: CsvEncoder | null;
}

/** What the format knows about one file. */
interface CsvFile {
  /** Header column names, in file order. */
  columns: string[];
  /** Keys rows carry after the header's columns, in order of arrival, until a rewrite adds them. */
  extras: string[];
  /** File offset from which rows carry the extras. */
  from: number;
  /** Names of `columns` and `extras`. */
  index: Set<string>;
  /** Bumped when the row layout changes; plans of older versions are stale. */
  version: number;
  /** Text to put before the next row: the header of a new file. */
  head: string;
  readonly plans: Map<string, Plan>;
  readonly handle: FileHandle;
  /** The rewrite under way. */
  job: CsvRewrite | undefined;
  /** A rewrite failed (warned): the extras stay until the file is reopened. */
  failed: boolean;
}

export class CsvFormat implements RowFormat {
  readonly ext = '.csv';
  /** Set once the sink exists (it is the warnings' emitter). */
  warnings: WarningGate | undefined;
  readonly #meta: readonly string[];
  readonly #onNewKeys: CsvNewKeys;
  readonly #order = new KeyOrder();
  readonly #files = new Map<string, CsvFile>();
  /** Rewrites holding fds now, and those waiting for a turn. */
  readonly #turns = new RewriteTurns();
  /** Names in each folder, listed once per sink (to find leftover temp files). */
  readonly #listed = new Map<string, string[]>();

  constructor(withTable: boolean, onNewKeys: CsvNewKeys) {
    this.#meta = withTable ? META_FIELDS : META_FIELDS.slice(0, 3);
    this.#onNewKeys = onNewKeys;
  }

  line(entry: Entry<FlatRow>, file: FileHandle): string {
    const data = entry.data;
    const layout = this.#order.layout(entry.table, data);
    const f = this.#files.get(file.path) ?? this.#open(file, layout);
    let plan = f.plans.get(entry.table);
    if (plan === undefined || plan.layout !== layout || plan.version !== f.version) plan = this.#plan(f, entry.table, layout, file);
    const head = f.head;
    f.head = '';
    // Compiled once the keys are stable (lib/format/csv-line.ts); the generic loop for the first rows.
    if (plan.layout.hits >= COMPILE_AFTER) {
      if (plan.encode === undefined) plan.encode = compileCsvLine(plan.sources);
      if (plan.encode !== null) return `${head}${plan.encode(entry)}\n`;
    }
    return `${head}${csvLineGeneric(entry, plan.sources)}\n`;
  }

  async settle(): Promise<void> {
    for (;;) {
      const jobs = [...this.#files.values()].flatMap((f) => (f.job === undefined ? [] : [f.job]));
      if (jobs.length === 0) return;
      for (const job of jobs) job.hurry(); // a job postponed for fds runs now, then often
      await Promise.all(jobs.map((job) => job.settled));
    }
  }

  abort(): void {
    for (const f of this.#files.values()) f.job?.abort();
  }

  /** A rewrite's sidecar or temp files beside a table file: work a killed process left. */
  readonly pending = /^(?:columns|(?:\d+|rewrite|columns|old)\.tmp)$/;

  /** Opens an existing file with such work now: leftovers go, a rewrite the sidecar calls for starts. */
  resume(file: FileHandle): void {
    if (!this.#files.has(file.path)) this.#open(file, NO_KEYS);
  }

  /**
   * State for a file seen for the first time. An existing file: leftovers of an interrupted
   * rewrite are deleted, a torn last row removed, its header read from its start and its extras
   * from the sidecar (a rewrite they call for starts). A new file gets a header made from this row.
   */
  #open(file: FileHandle, layout: KeyLayout): CsvFile {
    // Everything here is idempotent, so an EMFILE is retried from the start once a file is parked.
    return file.withFd(() => this.#openNow(file, layout));
  }

  #openNow(file: FileHandle, layout: KeyLayout): CsvFile {
    const { header, entry } = reopenCsv(file, this.#names(path.dirname(file.path)), (message) =>
      this.warnings?.warn({ code: 'W_TORN_ROW', message }, file.path),
    );
    const columns = header ?? this.#union([], layout.keys);
    const extras = entry?.extras ?? [];
    const f: CsvFile = {
      columns,
      extras: [...extras],
      from: entry?.from ?? 0,
      index: new Set([...columns, ...extras]),
      version: 0,
      head: header === undefined ? headerLine(columns) : '',
      plans: new Map(),
      handle: file,
      job: undefined,
      failed: false,
    };
    this.#files.set(file.path, f);
    if (entry !== undefined) {
      try {
        writeColumns(file.path, [entry], file.durable); // drop entries of other headers
      } catch {
        // the sidecar keeps them too: harmless, the entry of this header is there
      }
      if (f.extras.length > 0) this.#startRewrite(f);
    }
    return f;
  }

  #names(dir: string): string[] {
    let names = this.#listed.get(dir);
    if (names === undefined) {
      try {
        names = fs.readdirSync(dir);
      } catch (err) {
        if (isEmfile(err)) throw err; // not "no leftovers": listed again once an fd is free
        names = [];
      }
      this.#listed.set(dir, names);
    }
    return names;
  }

  /** Metadata columns, then every other name of `a` and `b`, sorted. */
  #union(a: readonly string[], b: readonly string[]): string[] {
    const rest = new Set([...a, ...b]);
    for (const m of this.#meta) rest.delete(m);
    return [...this.#meta, ...[...rest].sort()];
  }

  #plan(f: CsvFile, table: string, layout: KeyLayout, file: FileHandle): Plan {
    const missing = [...new Set([...this.#meta, ...layout.keys])].filter((k) => !f.index.has(k));
    if (missing.length > 0) this.#newKeys(f, table, missing, file);
    const has = new Set(layout.keys);
    const meta = new Set(this.#meta);
    const sources = [...f.columns, ...f.extras].map((c): Source => (meta.has(c) ? (META_SOURCE.get(c) as MetaField) : has.has(c) ? c : null));
    const plan: Plan = { layout, version: f.version, sources };
    f.plans.set(table, plan);
    return plan;
  }

  #newKeys(f: CsvFile, table: string, keys: string[], file: FileHandle): void {
    if (this.#onNewKeys === 'ignore') return;
    const what = keys.length === 1 ? `new key ${pyRepr(keys[0] as string)}` : `${keys.length} new keys [${keys.map(pyRepr).join(', ')}]`;
    const detail = `${this.#onNewKeys}\0${keys.join('\0')}`;
    if (this.#onNewKeys === 'error') {
      const message = `Dropping ${what} of table '${table}': onNewKeys is 'error', so the CSV header of ${file.path} stays as it is`;
      this.warnings?.warn({ code: 'W_NEW_KEYS', message, table }, detail);
      return;
    }
    this.warnings?.warn({ code: 'W_NEW_KEYS', message: `Adding ${what} to table '${table}'`, table }, detail);
    // A small file is rewritten now or not at all (atomic): a row with extras never reaches its
    // disk, so a kill leaves no ragged row. Out of fds for that, nothing is changed and EMFILE is
    // thrown: the sink defers this row (and the file's later ones) and formats it again soon.
    let atomic = false;
    if (f.extras.length === 0 && f.job === undefined) {
      // Rows carry extras from here on. Everything before is written now, so the offset is exact.
      // Failing that (a full disk, a big file out of fds), where this writer began appending is a
      // bound that holds with no I/O (see the header comment): rows of ours before it have no
      // trailing fields.
      f.from = 0;
      if (f.head === '') {
        try {
          file.flushSync();
          f.from = fs.statSync(file.path).size;
          atomic = !f.failed && f.from <= FINAL_BYTES;
        } catch (err) {
          if (isEmfile(err) && !f.failed && this.#small(file.path)) throw err;
          f.from = file.startSize;
        }
      }
    }
    f.extras.push(...this.#union([], keys).filter((k) => !f.index.has(k)));
    for (const k of keys) f.index.add(k);
    f.version++;
    // Named before any row carrying them reaches the writer, so a crash cannot leave them unnamed.
    this.#saveColumns(f, []);
    if (f.job === undefined && !f.failed) this.#startRewrite(f);
    if (atomic && f.job?.postponed === true) {
      // The rewrite found no fd: undo (the sidecar goes, an unlink) and let the sink defer the row.
      f.job.abort();
      f.job = undefined;
      f.extras = [];
      f.index = new Set(f.columns);
      f.version++;
      try {
        writeColumns(file.path, [], false);
      } catch {
        // a stale entry names extras no row has: harmless (a reopen rewrites with empty cells)
      }
      throw Object.assign(new Error(`EMFILE: too many open files, rewriting ${file.path}`), { code: 'EMFILE' });
    }
  }

  /**
   * Writes the sidecar: the entry of the current header (when it has extras), then `more`. When
   * it cannot be written now (EMFILE with no idle file to park, ENOSPC) the write becomes a
   * barrier before the rows handed from now on (they carry the extras it names), written then
   * from the state of that moment (a superset is harmless); `now` throws instead (the rename of
   * a rewrite must not happen before its sidecar entry exists).
   */
  #saveColumns(f: CsvFile, more: Array<{ base: string[]; extras: string[]; from: number }>, now = false): void {
    const write = (extra: typeof more) => {
      const own = f.extras.length > 0 ? [{ base: f.columns, extras: f.extras, from: f.from }] : [];
      f.handle.withFd(() => writeColumns(f.handle.path, [...own, ...extra], f.handle.durable));
    };
    if (now) {
      write(more);
      return;
    }
    try {
      write(more);
    } catch {
      f.handle.before(() => write([]));
    }
  }

  #startRewrite(f: CsvFile): void {
    if (f.head !== '') {
      // Nothing written yet (a new file): the header simply grows.
      f.columns = this.#union(f.columns, f.extras);
      f.extras = [];
      f.head = headerLine(f.columns);
      this.#saveColumns(f, []);
      return;
    }
    const plan = { base: f.columns, extras: [...f.extras], from: f.from, union: this.#union(f.columns, f.extras) };
    const job = new CsvRewrite(
      f.handle,
      plan,
      (tmp) => this.#switch(f, job, tmp),
      (err) => {
        f.job = undefined;
        f.failed = true;
        const message = `Could not rewrite ${f.handle.path} with its new columns (${err.message}); rows keep them as trailing fields named in ${f.handle.path}.columns until it is reopened`;
        this.warnings?.warn({ code: 'W_REWRITE_FAILED', message }, f.handle.path);
      },
    );
    f.job = job;
    // A small file is rewritten at once (start() finishes it, its fds closed again): no turn needed.
    this.#turns.run(job, this.#small(f.handle.path));
  }

  #small(file: string): boolean {
    try {
      return fs.statSync(file).size <= FINAL_BYTES;
    } catch {
      return true; // not on disk yet: its start is postponed, holding no fd
    }
  }

  /** The last step of a rewrite: the new file replaces the old; keys that came meanwhile stay extras. */
  #switch(f: CsvFile, job: CsvRewrite, tmp: string): void {
    const union = [...job.plan.union];
    const late = f.extras.slice(job.plan.extras.length);
    // Around the rename the sidecar names the extras of both headers, so either file is named.
    if (late.length > 0) this.#saveColumns(f, [{ base: union, extras: late, from: 0 }], true);
    f.handle.replace(tmp);
    f.job = undefined;
    f.columns = union;
    f.extras = late;
    f.from = 0;
    f.index = new Set([...union, ...late]);
    f.version++;
    this.#saveColumns(f, []);
    if (late.length > 0) this.#startRewrite(f);
  }
}


/** The layout of a row without keys: an existing file's header comes from the file. */
const NO_KEYS: KeyLayout = { seen: [], keys: [], quoted: [], hits: 0 };
