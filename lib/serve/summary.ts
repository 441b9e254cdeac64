/**
 * `GET /api/summary?table=T` (docs/DESIGN.md §7, issue 15 point 3): the runs table of the page.
 * One {@link RunSummary} per listed run that has the table: its `params.json` flattened, and the
 * last / min / max of each numeric column ({@link ColumnStats}), taken from serve's
 * {@link TableCache} when the page has read the table (no second read of a drawn run).
 *
 * A run whose table is not in the cache (or changed since) is read in the background for its
 * figures alone ({@link readFigures}: not into the cache, whose entries hold each column's M4
 * points, ~3.4 MB for 100k rows × 20 columns, which 100 runs of a runs table would multiply;
 * and in about half the time: ~0.4 s for such a table),
 * at most {@link SummaryOptions.concurrency} files at a time, the rest queued: the answer says
 * `pending: true` with no figures, and the page asks again until nothing is pending. A table
 * read before and grown since (a live run) is answered with its last figures, not pending, and
 * read again in the background at most every `refreshMs` (5 s). Runs not in a folder (`connect`, Redis) have no file to read:
 * their figures are empty and never pending. Memory: one {@link ColumnStats} per column and
 * run kept for the stale answers, and `params.json` re-read only when its mtime changes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isValidName } from '../core/entry.js';
import { numberOption } from '../core/options.js';
import type { RowlogWarning } from '../core/warnings.js';
import { readJson } from '../run/run-dir.js';
import { HttpError } from './http-error.js';
import type { ColumnStats, RunSummary, SummaryBody } from './protocol.js';
import type { RunListing } from './runs.js';
import type { TableCache } from './table-cache.js';
import { readStamp, TableStats } from './table-index.js';
import { tableRows } from './table-rows.js';

/** A flattened parameter's value. */
export type ParamValue = string | number | boolean | null;

/** Deepest nesting flattened; a deeper object is kept as JSON text. */
const MAX_DEPTH = 8;
/** Keys kept per run. */
const MAX_KEYS = 1000;
/** A params.json larger than this is not read for the runs table (params are a few KB). */
const MAX_PARAMS_BYTES = 1 << 20;

/**
 * `params` (params.json's object) flattened as rows are: nested objects joined with `/`
 * (`{optim: {lr: 0.1}}` → `optim/lr`), arrays as their JSON text (`[2, 8, 2]` → `"[2,8,2]"`),
 * scalars as they are. (transforms/flatten.ts turns a numeric array into statistics, which is
 * right for a row and wrong for a parameter such as a layer list, so it is not used here.)
 * At most 1000 keys; an object nested deeper than 8 levels is kept as JSON text.
 */
export function flattenParams(params: Record<string, unknown>): Record<string, ParamValue> {
  // No prototype: a key `__proto__` in params.json is a parameter like any other.
  const out = Object.create(null) as Record<string, ParamValue>;
  let n = 0;
  const walk = (o: Record<string, unknown>, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(o)) {
      if (n >= MAX_KEYS) return;
      const key = prefix === '' ? k : `${prefix}/${k}`;
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && depth < MAX_DEPTH) {
        walk(v as Record<string, unknown>, key, depth + 1);
        continue;
      }
      n++;
      out[key] = v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v);
    }
  };
  walk(params, '', 1);
  return out;
}

/** A table's figures: its rows and each numeric column's {@link ColumnStats}. */
export interface Figures {
  /** Rows read. */
  rows: number;
  /** Per numeric column (not `$`-columns). */
  stats: Record<string, ColumnStats>;
}

/**
 * Reads the table file `file` (a resumed run's with its ancestors', as serve draws it) for its
 * {@link Figures} alone: memory O(columns), and about half the time of a read for the charts
 * (readTableIndex: no M4 points, no last rows kept).
 */
export async function readFigures(file: string, onWarning?: (w: RowlogWarning) => void): Promise<Figures> {
  let stats = new TableStats();
  let i = 0;
  const restart = (): void => {
    stats = new TableStats();
    i = 0;
  };
  await tableRows(file, (row) => stats.push(i++, row), restart, { onWarning });
  return { rows: i, stats: stats.toJSON() };
}

/** Options of {@link Summaries}. */
export interface SummaryOptions {
  /** Table files read at once for pending runs; the rest wait their turn. @default 2 */
  concurrency?: number;
  /** A table read before and changed since (a live run) is read again at most this often (ms): its figures lag by up to this. @default 5000 */
  refreshMs?: number;
  /** Params of a run that has no folder (a Redis run's meta hash), by run id. @default none: `{}` */
  paramsOf?: (runId: string) => Record<string, unknown> | undefined;
  /** Hears a broken ancestor chain of a resumed run's table (`W_ANCESTRY`) read by the default `read`. @default ignored */
  onWarning?: (w: RowlogWarning) => void;
  /** Reads a table's figures when the cache has none. @default {@link readFigures} */
  read?: (file: string) => Promise<Figures>;
  /** Hears a table that could not be read (the run stays without figures until it changes). @default ignored */
  onError?: (file: string, err: Error) => void;
}

/** What serve answers to `/api/summary` (see the module comment). */
export class Summaries {
  private readonly concurrency: number;
  private readonly refreshMs: number;
  private readonly read: (file: string) => Promise<Figures>;
  /** Files waiting for a read, in the order asked. */
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private running = 0;
  private closed = false;
  /** The figures of each file's last read, when it ended, and the file's {@link readStamp} when it started (fresh while that holds). */
  private readonly last = new Map<string, Figures & { at: number; key: string }>();
  /** Files whose last read failed, with their {@link readStamp} then: not read again until it changes. */
  private readonly failed = new Map<string, string>();
  /** params.json flattened, by file, while its mtime holds. */
  private readonly params = new Map<string, { mtimeMs: number; flat: Record<string, ParamValue> }>();

  /** Answers for the runs of `listing`, taking figures from `cache` when it has them; options are checked (`ERR_INVALID_OPTION`). */
  constructor(
    private readonly listing: RunListing,
    private readonly cache: TableCache,
    private readonly opts: SummaryOptions = {},
  ) {
    this.concurrency = numberOption(opts.concurrency ?? 2, 'concurrency', { min: 1, max: 64, integer: true });
    this.refreshMs = numberOption(opts.refreshMs ?? 5000, 'refreshMs', { min: 0 });
    const onWarning = opts.onWarning;
    this.read = opts.read ?? ((file) => readFigures(file, onWarning));
  }

  /** The summary of `table` (a query's `table=`): 400 when it is missing or not a table name. */
  body(table: string | null): SummaryBody {
    if (table === null) throw new HttpError(400, 'table is required');
    if (!isValidName(table)) throw new HttpError(400, `invalid table name ${JSON.stringify(table)}`);
    const columns = new Set<string>();
    const keys = new Set<string>();
    const runs: RunSummary[] = [];
    for (const run of this.listing.runs()) {
      if (!run.tables.some((t) => t.name === table)) continue;
      const s = this.summary(run.id, run.name, table, run.live || run.source !== undefined);
      if (s === undefined) continue;
      for (const c in s.stats) columns.add(c);
      for (const k in s.params) keys.add(k);
      runs.push(s);
    }
    return { table, columns: [...columns].sort(), params: [...keys].sort(), runs };
  }

  /** One run's row of the table (undefined when its table went between listing and resolving). */
  private summary(id: string, name: string, table: string, remote: boolean): RunSummary | undefined {
    if (remote) return { id, name, params: flattenParams(this.opts.paramsOf?.(id) ?? {}), rows: 0, stats: {}, pending: false };
    let file: string;
    try {
      file = this.listing.resolve(id, table).file;
    } catch {
      return undefined;
    }
    const params = this.paramsOfFolder(path.resolve(this.listing.root, id));
    const now = readStamp(file);
    const hit = this.cache.peekStats(file, '$step');
    if (hit !== undefined) {
      const fig = { rows: hit.total, stats: hit.stats.toJSON() };
      this.last.set(file, { ...fig, at: Date.now(), key: now });
      return { id, name, params, ...fig, pending: false };
    }
    const was = this.last.get(file);
    if (was !== undefined && was.key === now) return { id, name, params, rows: was.rows, stats: was.stats, pending: false };
    if (this.failed.get(file) === now) return { id, name, params, rows: was?.rows ?? 0, stats: was?.stats ?? {}, pending: false };
    if (was === undefined) {
      this.enqueue(file);
      return { id, name, params, rows: 0, stats: {}, pending: true };
    }
    // Read before and grown since (a live run): the last figures, read again at most every refreshMs.
    if (Date.now() - was.at >= this.refreshMs) this.enqueue(file);
    return { id, name, params, rows: was.rows, stats: was.stats, pending: false };
  }

  /** A run folder's params.json flattened, read again only when its mtime changed. */
  private paramsOfFolder(dir: string): Record<string, ParamValue> {
    const file = path.join(dir, 'params.json');
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (st === undefined) return {};
    if (st.size > MAX_PARAMS_BYTES) return { params: `params.json not read: ${st.size} bytes, over ${MAX_PARAMS_BYTES}` };
    const had = this.params.get(file);
    if (had !== undefined && had.mtimeMs === st.mtimeMs) return had.flat;
    const flat = flattenParams(readJson(file) ?? {});
    this.params.set(file, { mtimeMs: st.mtimeMs, flat });
    return flat;
  }

  private enqueue(file: string): void {
    if (this.closed || this.queued.has(file)) return;
    this.queued.add(file);
    this.queue.push(file);
    this.pump();
  }

  /** Starts queued reads while fewer than `concurrency` run. */
  private pump(): void {
    while (!this.closed && this.running < this.concurrency) {
      const file = this.queue.shift();
      if (file === undefined) return;
      this.running++;
      const key = readStamp(file); // before the read: a row appended during it makes the figures stale
      const hit = this.cache.peekStats(file, '$step'); // the page may have read it meanwhile
      (hit !== undefined ? Promise.resolve({ rows: hit.total, stats: hit.stats.toJSON() }) : this.read(file))
        .then(
          (fig) => {
            this.last.set(file, { ...fig, at: Date.now(), key });
            this.failed.delete(file);
          },
          (err: unknown) => {
            this.failed.set(file, readStamp(file));
            this.opts.onError?.(file, err as Error);
          },
        )
        .finally(() => {
          this.running--;
          this.queued.delete(file);
          this.pump();
        });
    }
  }

  /** Drops the queue (reads under way finish on their own). */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queued.clear();
  }
}
