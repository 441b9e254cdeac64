/**
 * `serve` (DESIGN §7, issue 5): live plots of the runs under a folder, in the browser.
 *
 * A small node:http server on 127.0.0.1 serves one page (web/), uPlot from the installed
 * package, and a JSON/SSE API over the run folders:
 *
 * - `GET /api/runs`: the runs (DIR itself when it is a run folder, then its sub-folders that are)
 *   and their tables, each read from `.jsonl.gz`, else `.jsonl`, else `.csv`.
 * - `GET /api/rows?run=R&table=T`: a table's numeric columns, evenly strided to at most
 *   `maxPoints` rows plus the last one (a 2M-row table stays a few MB).
 * - `GET /api/events?table=T&run=R&run=R2…`: server-sent events. `runs` (the listing, again
 *   whenever it changes), then per run one `snapshot` (what /api/rows returns; it replaces what
 *   the page holds for that run) and `rows` as rows are appended (followed with `tail`; a
 *   CSV-only table is re-read when it changes instead).
 *
 * With `connect`, rows from a live socket sink become one more run, named after its address,
 * held in memory (strided the same way) for as long as the server runs.
 *
 * Nothing a request says can reach outside DIR: run and table names are only accepted when
 * they are in the current listing (which never follows symbolic links), and the resolved path
 * is checked to lie inside DIR. The `Host` header must name a loopback address while the
 * server is bound to one (no DNS rebinding), and every response carries a strict CSP.
 */
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { connect } from '../net/connect.js';
import { isValidName } from '../core/entry.js';
import { numberOption, optionError } from '../core/errors.js';
import { checkListen, checkToken, isLoopback, listen, parseHostPort } from '../io/listen.js';
import { readLog } from '../read/read-log.js';
import { parseRow, tailBatches } from '../read/tail.js';

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Folder of run folders, or one run folder. It may not exist yet (the page waits for it). @default 'runs' */
  dir?: string;
  /** TCP port; 0 picks a free one (read it from the handle). @default 0 */
  port?: number;
  /** Address to bind. Anything but a loopback address needs `allowInsecure` (`ERR_INSECURE_BIND`). @default '127.0.0.1' */
  host?: string;
  /** Bind a non-loopback `host` although anyone who can reach it may read every run. @default false */
  allowInsecure?: boolean;
  /** `host:port` of a socket sink (`socketSink({port})`) whose rows are plotted as one more run, named after the address. @default none */
  connect?: string;
  /** Token the `connect` socket sink expects (sent as the first line). Not an HTTP password. @default none */
  token?: string;
  /** Most rows of a table sent to the page per run (evenly strided, plus the last row). @default 10000 */
  maxPoints?: number;
  /** How often followed files are polled for new rows (ms). @default 250 */
  pollMs?: number;
  /** How often the run list is read again and pushed to open pages when it changed (ms). @default 2000 */
  refreshMs?: number;
  /** Called with one line for each non-fatal problem (a lost `connect`, an unreadable table). @default a line on stderr */
  onWarning?: (message: string) => void;
}

/** A running {@link serve}. */
export interface ServeHandle {
  /** The page's address, e.g. `http://127.0.0.1:6007/`. */
  url: string;
  /** The bound port. */
  port: number;
  /** The bound address. */
  host: string;
  /** Stops listening, ends every open page's event stream and the `connect` subscription. */
  close(): Promise<void>;
}

/** Table file endings, in the order a table is read from. */
const TABLE_EXTS = ['.jsonl.gz', '.jsonl', '.csv'] as const;
type TableFormat = 'jsonl.gz' | 'jsonl' | 'csv';
/** Sub-folders of a run that never hold tables. */
const SKIP_DIRS = new Set(['artifacts', 'node_modules']);
/** How deep table sub-folders (`grad/layer1` tables) are looked for. */
const MAX_TABLE_DEPTH = 4;
/** Rows read back from the end of a followed file to line up with the snapshot just sent. */
const ALIGN_ROWS = 1000;
/** Most values (rows × columns) in one snapshot, per point of `maxPoints`: wide tables get a coarser stride. */
const VALUES_PER_POINT = 400;
/** An event stream whose client lags this far behind is dropped (its page reconnects and re-reads). */
const MAX_SSE_BACKLOG = 16 << 20;
/** A comment line keeps idle event streams (and proxies) open. */
const HEARTBEAT_MS = 15_000;
/** Tables a `connect` subscription may add (each holds up to `maxPoints` rows). */
const MAX_LIVE_TABLES = 1000;
const SEGMENT = /^[A-Za-z0-9_.-]+$/;

/** One table of a run, as listed. */
export interface ServedTable {
  name: string;
  /** The file the table is read from, relative to its run folder. */
  file: string;
  format: TableFormat;
  size: number;
  /** Last modification, ms since the epoch. */
  mtime: number;
}

/** One run, as listed. */
export interface ServedRun {
  /** What the API takes as `run=`: the folder relative to DIR (`.` for DIR itself), or `live:host:port`. */
  id: string;
  /** `run.json`'s name, else the folder's name (the address for a live run). */
  name: string;
  /** True for the rows of a `connect` subscription (held in memory, not in a file). */
  live: boolean;
  startTime?: string;
  tables: ServedTable[];
}

/** Numeric cells of one row: `$step` and the data columns; non-finite values become null. */
type NumRow = Map<string, number | null>;

/** Rows in columns: `data[c][k]` is column `columns[c]` of the k-th row, whose index in the table is `index[k]`. */
interface Block {
  columns: string[];
  index: number[];
  data: Array<Array<number | null>>;
}

/** The name of a table file, or undefined for other files. */
function tableFile(file: string): { name: string; ext: (typeof TABLE_EXTS)[number] } | undefined {
  const ext = TABLE_EXTS.find((e) => file.endsWith(e) && file.length > e.length);
  if (ext === undefined) return undefined;
  const name = file.slice(0, -ext.length);
  return SEGMENT.test(name) && name !== '.' && name !== '..' ? { name, ext } : undefined;
}

/** True for a valid table name (DESIGN §2): `[A-Za-z0-9_.-]` segments joined by `/`. */
function readdir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** The tables of the run folder `dir` (sub-folders that are runs of their own excluded). */
function scanTables(dir: string): ServedTable[] {
  const found = new Map<string, ServedTable>();
  const walk = (sub: string, depth: number) => {
    for (const e of readdir(path.join(dir, sub))) {
      if (e.isDirectory()) {
        if (depth < MAX_TABLE_DEPTH && SEGMENT.test(e.name) && !e.name.startsWith('.') && !(depth === 0 && SKIP_DIRS.has(e.name))) {
          const child = path.join(dir, sub, e.name);
          if (!fs.existsSync(path.join(child, 'run.json'))) walk(sub === '' ? e.name : `${sub}/${e.name}`, depth + 1);
        }
        continue;
      }
      const t = e.isFile() ? tableFile(e.name) : undefined;
      if (t === undefined) continue;
      const name = sub === '' ? t.name : `${sub}/${t.name}`;
      const file = sub === '' ? e.name : `${sub}/${e.name}`;
      const prev = found.get(name);
      if (prev !== undefined && TABLE_EXTS.indexOf(`.${prev.format}`) < TABLE_EXTS.indexOf(t.ext)) continue;
      let st: fs.Stats;
      try {
        st = fs.statSync(path.join(dir, file));
      } catch {
        continue; // gone meanwhile
      }
      found.set(name, { name, file, format: t.ext.slice(1) as TableFormat, size: st.size, mtime: Math.round(st.mtimeMs) });
    }
  };
  walk('', 0);
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The run folder `dir` as listed under `id`, or undefined when it is none (no run.json, no top-level table). */
function scanRun(dir: string, id: string): ServedRun | undefined {
  const entries = readdir(dir);
  const hasRunJson = entries.some((e) => e.isFile() && e.name === 'run.json');
  if (!hasRunJson && !entries.some((e) => e.isFile() && tableFile(e.name) !== undefined)) return undefined;
  const run: ServedRun = { id, name: id === '.' ? path.basename(dir) : id, live: false, tables: scanTables(dir) };
  if (hasRunJson) {
    try {
      const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { name?: unknown; startTime?: unknown };
      if (typeof info.name === 'string' && info.name !== '') run.name = info.name;
      if (typeof info.startTime === 'string') run.startTime = info.startTime;
    } catch {
      // being written, or not JSON: list the tables anyway
    }
  }
  return run;
}

/** The runs under `root`: itself when it is a run folder, then its sub-folders that are, by name. */
export function scanRuns(root: string): ServedRun[] {
  const runs: ServedRun[] = [];
  const self = scanRun(root, '.');
  if (self !== undefined) runs.push(self);
  const subdirs = readdir(root)
    .filter((e) => e.isDirectory() && SEGMENT.test(e.name) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  for (const sub of subdirs) {
    const dir = path.join(root, sub);
    // Inside a run folder, only sub-folders with their own run.json are runs (others hold tables).
    if (self !== undefined && !fs.existsSync(path.join(dir, 'run.json'))) continue;
    const run = scanRun(dir, sub);
    if (run !== undefined) runs.push(run);
  }
  return runs;
}

/** `row`'s numbers: `$step` (else `index`) and data columns; `$`-columns other than `$step` are left out. */
function numericRow(row: Record<string, unknown>, index: number): NumRow {
  const out: NumRow = new Map();
  const step = row.$step;
  out.set('$step', typeof step === 'number' && Number.isFinite(step) ? step : index);
  for (const k in row) {
    if (k.charCodeAt(0) === 36 /* $ */) continue;
    const v = row[k];
    if (typeof v === 'number') out.set(k, Number.isFinite(v) ? v : null);
  }
  return out;
}

/**
 * Keeps every `stride`-th row of a growing table, `stride` a power of 2 doubled whenever more
 * than `max` rows would be kept; the last row is kept apart. Memory: O(max × columns).
 */
class Decimator {
  total = 0;
  stride = 1;
  readonly kept: Array<{ index: number; row: NumRow }> = [];
  last: { index: number; row: NumRow } | undefined;
  readonly columns = new Set<string>(['$step']);

  constructor(
    readonly max: number,
    /** Keep the rows (a snapshot, a live store) or only count them (a page's live stream). */
    readonly store = true,
  ) {}

  /** Adds the next row; true when it is on the stride grid. */
  push(row: NumRow): boolean {
    const index = this.total++;
    this.last = { index, row };
    for (const k of row.keys()) this.columns.add(k);
    while (this.total > this.max * this.stride) this.stride *= 2;
    if (index % this.stride !== 0) return false;
    if (this.store) {
      this.kept.push({ index, row });
      if (this.kept.length > this.max) this.restride();
    }
    return true;
  }

  /** Drops the kept rows that are off the current grid. */
  restride(): void {
    let w = 0;
    for (const k of this.kept) if (k.index % this.stride === 0) this.kept[w++] = k;
    this.kept.length = w;
  }

  /** The kept rows and the last one, in columns: at most `max` × 400 values (a wide table gets a coarser stride). */
  block(): Block {
    while (this.kept.length * this.columns.size > this.max * VALUES_PER_POINT && this.kept.length > 1) {
      this.stride *= 2;
      this.restride();
    }
    const rows = this.kept.slice();
    if (this.last !== undefined && rows[rows.length - 1]?.index !== this.last.index) rows.push(this.last);
    return toBlock(rows, [...this.columns]);
  }
}

function toBlock(rows: Array<{ index: number; row: NumRow }>, columns: string[]): Block {
  return {
    columns,
    index: rows.map((r) => r.index),
    data: columns.map((c) => rows.map((r) => r.row.get(c) ?? null)),
  };
}

/** What /api/rows returns and a page's `snapshot` event carries. */
interface Snapshot {
  run: string;
  table: string;
  file: string;
  format: TableFormat | 'live';
  /** Rows in the table. */
  total: number;
  /** Every `stride`-th row is in `block`, plus the last one. */
  stride: number;
  /** Rows appended later are sent as they come (false: a CSV table, re-read when it changes). */
  followed: boolean;
  block: Block;
}

/** A table file read once: the snapshot, and the last rows (as JSON) to line up a tail with. */
async function readSnapshot(file: string, max: number): Promise<{ dec: Decimator; lastKeys: string[] }> {
  const dec = new Decimator(max);
  const lastKeys: string[] = [];
  for await (const row of readLog(file)) {
    dec.push(numericRow(row, dec.total));
    lastKeys.push(JSON.stringify(row));
    if (lastKeys.length > 16) lastKeys.splice(0, 8);
  }
  return { dec, lastKeys };
}

/**
 * Where the rows a tail first returned (the file's last rows when it started, after the
 * snapshot was read) go past the snapshot: the index of the first new one. The snapshot's last
 * row is looked for (then, in case the snapshot read a last line the writer had not ended yet,
 * the one before), checked against the rows before it. Exported for tests.
 */
export function alignTail(keys: string[], lastKeys: string[]): number {
  if (lastKeys.length === 0) return 0;
  for (let back = 1; back <= 2 && back <= lastKeys.length; back++) {
    const want = lastKeys.length - back;
    for (let p = keys.length - 1; p >= 0; p--) {
      let ok = true;
      for (let d = 0; d <= Math.min(p, want, 4); d++) {
        if (keys[p - d] !== lastKeys[want - d]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      let start = p + 1;
      if (back === 2 && keys[start] === lastKeys[lastKeys.length - 1]) start++;
      return start;
    }
  }
  return 0; // not found: the file was replaced, or grew past ALIGN_ROWS meanwhile; send them all
}

/** Rows of a `connect` subscription, per table, strided like a snapshot, with listeners. */
class LiveTable {
  readonly dec: Decimator;
  mtime = Date.now();
  readonly listeners = new Set<(row: NumRow, index: number) => void>();
  constructor(max: number) {
    this.dec = new Decimator(max);
  }
  push(row: NumRow): void {
    this.dec.push(row);
    this.mtime = Date.now();
    for (const l of this.listeners) l(row, this.dec.total - 1);
  }
}

/** Server-sent events to one page. */
class EventStream {
  readonly abort = new AbortController();
  /** Characters of the largest event sent. */
  private largest = 0;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(readonly res: http.ServerResponse) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.heartbeat = setInterval(() => this.comment('ping'), HEARTBEAT_MS);
    this.heartbeat.unref();
    res.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.abort.signal.aborted;
  }

  send(event: string, data: unknown): void {
    if (this.closed) return;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    this.largest = Math.max(this.largest, text.length);
    this.res.write(text);
    // A page that lets more than MAX_SSE_BACKLOG pile up beyond its largest event (a wide table's
    // snapshot may be bigger than that on its own) is not keeping up: it reconnects and re-reads.
    if (this.res.writableLength > MAX_SSE_BACKLOG + this.largest) this.close();
  }

  comment(text: string): void {
    if (!this.closed) this.res.write(`: ${text}\n\n`);
  }

  close(): void {
    if (this.closed) return;
    this.abort.abort();
    clearInterval(this.heartbeat);
    this.res.end();
  }
}

/** The folder holding the page, next to lib/ (this file is lib/serve/ in source, dist/lib/serve/ built). */
function webDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, '..', '..', 'web'), path.join(here, '..', '..', '..', 'web')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'index.html'))) ?? (candidates[0] as string);
}

const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f2937"/>' +
  '<polyline points="2,12 5,8 8,10 11,4 14,6" fill="none" stroke="#60a5fa" stroke-width="1.8" stroke-linejoin="round"/></svg>';

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
} as const;

/** A request answered with an HTTP error. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The host name of a `Host` header (`[::1]:80` → `::1`). */
function hostName(header: string): string {
  const m = /^\[([^\]]*)\](?::\d*)?$/.exec(header) ?? /^([^:]*)(?::\d*)?$/.exec(header);
  return (m?.[1] ?? header).toLowerCase();
}

/**
 * Serves live plots of the runs under `opts.dir` (see the module comment). Resolves once
 * listening; options are checked first (TypeError/RangeError `ERR_INVALID_OPTION`, RowlogError
 * `ERR_INSECURE_BIND` for a non-loopback host without `allowInsecure`).
 */
export async function serve(opts: ServeOptions = {}): Promise<ServeHandle> {
  if (typeof opts !== 'object' || opts === null) throw optionError('type', 'options', 'must be an object');
  const dirOpt = opts.dir ?? 'runs';
  if (typeof dirOpt !== 'string' || dirOpt === '') throw optionError('type', 'dir', `must be a non-empty string (got ${String(dirOpt)})`);
  const root = path.resolve(dirOpt);
  if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) throw optionError('range', 'dir', `is not a folder: ${dirOpt}`);
  const { host, port } = checkListen({ host: opts.host, port: opts.port, allowInsecure: opts.allowInsecure }, 'serve');
  const maxPoints = numberOption(opts.maxPoints ?? 10_000, 'maxPoints', { min: 10, max: 1_000_000, integer: true });
  const pollMs = numberOption(opts.pollMs ?? 250, 'pollMs', { min: 1, max: 60_000 });
  const refreshMs = numberOption(opts.refreshMs ?? 2000, 'refreshMs', { min: 10, max: 3_600_000 });
  if (opts.onWarning !== undefined && typeof opts.onWarning !== 'function') throw optionError('type', 'onWarning', 'must be a function');
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`rowlog serve: ${m}\n`));
  let remote: { host: string; port: number } | undefined;
  if (opts.connect !== undefined) {
    if (typeof opts.connect !== 'string') throw optionError('type', 'connect', 'must be a host:port string');
    remote = parseHostPort(opts.connect, 'connect');
  }
  checkToken(opts.token);
  if (opts.token !== undefined && remote === undefined) throw optionError('range', 'token', 'is only used with connect');

  const web = webDir();
  const require = createRequire(import.meta.url);
  const assets: Record<string, { file: string; type: string } | { body: string; type: string }> = {
    '/': { file: path.join(web, 'index.html'), type: 'text/html; charset=utf-8' },
    '/index.html': { file: path.join(web, 'index.html'), type: 'text/html; charset=utf-8' },
    '/app.js': { file: path.join(web, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/app.css': { file: path.join(web, 'app.css'), type: 'text/css; charset=utf-8' },
    '/uplot.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
    '/uplot.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
    '/favicon.svg': { body: FAVICON, type: 'image/svg+xml' },
    '/favicon.ico': { body: FAVICON, type: 'image/svg+xml' },
  };

  // --- the live run of `connect` -------------------------------------------------------------
  const liveId = remote === undefined ? undefined : `live:${remote.host}:${remote.port}`;
  const liveName = remote === undefined ? '' : `${remote.host.includes(':') ? `[${remote.host}]` : remote.host}:${remote.port}`;
  const liveTables = new Map<string, LiveTable>();
  let subscription: Readable | undefined;

  // --- the listing, shared by all pages --------------------------------------------------------
  let listing: { at: number; runs: ServedRun[]; json: string } | undefined;
  const runsNow = (maxAgeMs = 500): ServedRun[] => {
    if (listing === undefined || Date.now() - listing.at > maxAgeMs) {
      const runs = scanRuns(root);
      if (liveId !== undefined) {
        const tables = [...liveTables.entries()]
          .map(([name, t]): ServedTable => ({ name, file: '', format: 'jsonl', size: 0, mtime: t.mtime }))
          .sort((a, b) => (a.name < b.name ? -1 : 1));
        runs.push({ id: liveId, name: liveName, live: true, tables });
      }
      listing = { at: Date.now(), runs, json: JSON.stringify(runs) };
    }
    return listing.runs;
  };
  const runsBody = (maxAgeMs?: number) => ({ dir: root, now: Date.now(), runs: runsNow(maxAgeMs) });

  /** The run and table a request names, or an HTTP error (400: malformed, 404: not listed). */
  const resolveTable = (runId: string | null, table: string | null): { run: ServedRun; table: ServedTable; file: string } => {
    if (runId === null || table === null) throw new HttpError(400, 'run and table are required');
    if (!isValidName(table)) throw new HttpError(400, `invalid table name ${JSON.stringify(table)}`);
    if (runId !== liveId && runId !== '.' && !isValidName(runId, true)) throw new HttpError(400, `invalid run ${JSON.stringify(runId)}`);
    const find = (maxAge: number) => {
      const run = runsNow(maxAge).find((r) => r.id === runId);
      return { run, t: run?.tables.find((x) => x.name === table) };
    };
    let { run, t } = find(500);
    if (t === undefined) ({ run, t } = find(0)); // just created?
    if (run === undefined) throw new HttpError(404, `no run ${JSON.stringify(runId)}`);
    if (t === undefined) throw new HttpError(404, `no table ${JSON.stringify(table)} in run ${JSON.stringify(runId)}`);
    if (run.live) return { run, table: t, file: '' };
    const runDir = path.resolve(root, run.id);
    const file = path.resolve(runDir, t.file);
    if ((runDir !== root && !runDir.startsWith(root + path.sep)) || !file.startsWith(runDir + path.sep)) throw new HttpError(404, 'not found');
    return { run, table: t, file };
  };

  const snapshotOf = async (run: ServedRun, table: ServedTable, file: string) => {
    if (run.live) {
      const live = liveTables.get(table.name) as LiveTable;
      const block = live.dec.block();
      const snap: Snapshot = { run: run.id, table: table.name, file: '', format: 'live', total: live.dec.total, stride: live.dec.stride, followed: true, block };
      return { snap, lastKeys: [] as string[] };
    }
    const { dec, lastKeys } = await readSnapshot(file, maxPoints);
    const block = dec.block(); // first: it may make the stride coarser
    const snap: Snapshot = { run: run.id, table: table.name, file: table.file, format: table.format, total: dec.total, stride: dec.stride, followed: table.format !== 'csv', block };
    return { snap, lastKeys };
  };

  // --- event streams ----------------------------------------------------------------------------
  const streams = new Set<EventStream>();
  let refreshTimer: NodeJS.Timeout | undefined;
  const refresh = () => {
    if (streams.size === 0 && refreshTimer !== undefined) {
      clearInterval(refreshTimer); // no page open: nobody to tell
      refreshTimer = undefined;
    }
    const before = listing?.json;
    runsNow(0);
    if (listing !== undefined && listing.json !== before) for (const s of streams) s.send('runs', runsBody());
  };
  const startRefresh = () => {
    refreshTimer ??= setInterval(refresh, refreshMs);
    refreshTimer.unref();
  };

  /** Sends `table` of `run` to `es`: a snapshot, then rows as they are appended, until the page goes. */
  const follow = async (es: EventStream, run: ServedRun, table: ServedTable, file: string): Promise<void> => {
    const signal = es.abort.signal;
    const { snap, lastKeys } = await snapshotOf(run, table, file);
    if (signal.aborted) return;
    es.send('snapshot', snap);
    const dec = new Decimator(maxPoints, false);
    dec.total = snap.total;
    dec.stride = snap.stride;
    for (const c of snap.block.columns) dec.columns.add(c);
    const sendRows = (rows: NumRow[]) => {
      const kept: Array<{ index: number; row: NumRow }> = [];
      for (const row of rows) if (dec.push(row)) kept.push(dec.last as { index: number; row: NumRow });
      const last = dec.last;
      if (last !== undefined && kept[kept.length - 1] !== last) kept.push(last);
      if (kept.length === 0) return;
      es.send('rows', { run: run.id, table: table.name, total: dec.total, stride: dec.stride, block: toBlock(kept, [...dec.columns]) });
    };

    if (run.live) {
      const live = liveTables.get(table.name) as LiveTable;
      let pending: NumRow[] = [];
      let timer: NodeJS.Timeout | undefined;
      const listener = (row: NumRow) => {
        pending.push(row);
        timer ??= setTimeout(() => {
          timer = undefined;
          const rows = pending;
          pending = [];
          sendRows(rows);
        }, pollMs);
      };
      live.listeners.add(listener);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      live.listeners.delete(listener);
      clearTimeout(timer);
      return;
    }

    if (!snap.followed) {
      // CSV cannot be tailed (a new column rewrites the whole file): read it again when it changes.
      let seen = fs.statSync(file, { throwIfNoEntry: false });
      while (!signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(pollMs, 1000));
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
        const now = fs.statSync(file, { throwIfNoEntry: false });
        if (signal.aborted || now === undefined || (seen !== undefined && now.mtimeMs === seen.mtimeMs && now.size === seen.size && now.ino === seen.ino)) continue;
        seen = now;
        const again = await snapshotOf(run, table, file);
        es.send('snapshot', again.snap);
      }
      return;
    }

    let first = true;
    let index = snap.total;
    for await (const lines of tailBatches(file, { lines: ALIGN_ROWS, follow: true, pollMs, signal })) {
      let parsed = lines.map((l) => parseRow(l)).filter((r) => r !== undefined);
      if (first) {
        first = false;
        parsed = parsed.slice(alignTail(parsed.map((r) => JSON.stringify(r)), lastKeys));
      }
      if (parsed.length > 0) sendRows(parsed.map((r) => numericRow(r, index++)));
    }
  };

  const events = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const table = url.searchParams.get('table');
    const runIds = [...new Set(url.searchParams.getAll('run'))];
    // Check everything before the stream starts, so a bad request gets a plain HTTP error.
    const targets = table === null && runIds.length === 0 ? [] : runIds.length === 0 ? [resolveTable(null, table)] : runIds.map((r) => resolveTable(r, table));
    const es = new EventStream(res);
    streams.add(es);
    es.abort.signal.addEventListener('abort', () => streams.delete(es), { once: true });
    req.on('close', () => es.close());
    startRefresh();
    es.send('runs', runsBody());
    for (const { run, table: t, file } of targets) {
      follow(es, run, t, file).catch((err: unknown) => {
        if (es.closed) return;
        const message = `${run.id}/${t.name}: ${(err as Error).message}`;
        warn(message);
        es.send('problem', { run: run.id, table: t.name, message });
      });
    }
  };

  // --- HTTP ----------------------------------------------------------------------------------
  const loopback = isLoopback(host);
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    if (loopback && !isLoopback(hostName(req.headers.host ?? ''))) throw new HttpError(403, 'this server only answers to 127.0.0.1 and localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new HttpError(405, 'only GET and HEAD');
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const asset = assets[url.pathname];
    if (asset !== undefined) {
      const body = 'body' in asset ? asset.body : await fs.promises.readFile(asset.file);
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
      res.end(body);
      return;
    }
    const json = (data: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(data));
    };
    switch (url.pathname) {
      case '/api/runs':
        return json(runsBody(0));
      case '/api/rows': {
        const { run, table, file } = resolveTable(url.searchParams.get('run'), url.searchParams.get('table'));
        return json((await snapshotOf(run, table, file)).snap);
      }
      case '/api/events':
        return events(req, res, url);
      default:
        throw new HttpError(404, 'not found');
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) warn(`${req.url ?? ''}: ${(err as Error).message}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${(err as Error).message}\n`);
    });
  });
  const bound = await listen(server, host, port);

  if (remote !== undefined) {
    // Rows of the socket sink, by `$table`, into memory; a new table shows up in the listing at once.
    const where = liveName;
    const rows = connect({ host: remote.host, port: remote.port, reconnect: true, ...(opts.token !== undefined ? { token: opts.token } : {}) });
    rows.on('data', (row: Record<string, unknown>) => {
      const name = isValidName(row.$table) ? row.$table : 'main';
      let t = liveTables.get(name);
      if (t === undefined) {
        if (liveTables.size >= MAX_LIVE_TABLES) return;
        liveTables.set(name, (t = new LiveTable(maxPoints)));
        refresh();
      }
      t.push(numericRow(row, t.dec.total));
    });
    rows.on('dropped', (n: number) => warn(`${where}: ${n} rows were dropped by the socket sink (not sent while this server was away or slow)`));
    rows.on('restart', () => warn(`${where}: the socket sink restarted (a new trainer on that port); its rows follow the old ones`));
    rows.on('error', (err: Error) => warn(`${where}: ${err.message}`));
    subscription = rows;
  }

  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port: bound,
    host,
    close() {
      closing ??= (async () => {
        clearInterval(refreshTimer);
        subscription?.destroy();
        for (const s of streams) s.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
