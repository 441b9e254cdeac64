/**
 * `serve` (docs/DESIGN.md §7, issue 5): live plots of the runs under a folder, in the browser.
 *
 * A small node:http server on 127.0.0.1 serves one page (web/, compiled to dist/web/), uPlot
 * from the installed package, and a JSON/SSE API over the run folders (the README's "serve's
 * HTTP API" documents it; lib/serve/protocol.ts has its types):
 *
 * - `GET /api/runs`: the runs (lib/serve/runs.ts: DIR itself when it is a run folder, then its
 *   sub-folders that are, as lib/run/layout.ts finds them) and their tables.
 * - `GET /api/rows?run=R&table=T[&x=AXIS][&buckets=N][&from=A&to=B]`: a table's numeric
 *   columns under the M4 rule (lib/serve/decimate.ts: per bucket of rows each column's first,
 *   last, min and max, so no extreme is lost; a 2M-row table stays a few hundred KB) against the
 *   x-axis AXIS (`$step`, `$time`, a numeric column), at most N buckets (the page asks for twice
 *   its plot's width); `from`/`to` a zoom: the rows of that x range alone. A resumed run's table
 *   starts with its ancestors' rows (lib/serve/snapshot.ts), one curve. Tables are read once
 *   while unchanged (lib/serve/table-cache.ts).
 * - `GET /api/events?table=T&run=R&run=R2…[&x=AXIS][&buckets=N]`: server-sent events
 *   (lib/serve/events.ts): `runs` (the listing, again whenever it changes), then per run one
 *   `snapshot` and `rows` as rows are appended.
 * - `GET /api/summary?table=T`: the runs table (lib/serve/summary.ts): each run's params and
 *   its columns' last / min / max.
 *
 * With `connect`, rows from a live socket sink become one more run (lib/serve/live.ts); with
 * `redis`, the runs in a Redis are listed as `redis:<run>` (lib/serve/redis-runs.ts).
 *
 * This file holds what makes it safe to open: nothing a request says can reach outside DIR
 * (runs.ts only accepts names in the current listing), only the named assets are served, the
 * `Host` header must name a loopback address while the server is bound to one (no DNS
 * rebinding), and every response carries a strict CSP (`default-src 'self'`: the page's
 * modules, decimate.js included, come from this server as files, never inline).
 */
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { functionOption, numberOption, objectOption, optionError, stringOption } from '../core/options.js';
import type { RowlogWarning } from '../core/warnings.js';
import { checkListen, checkToken, isLoopback, listen, parseHostPort } from '../io/listen.js';
import { DEFAULT_REDIS_PREFIX, isRedisPrefix } from '../format/redis-stream.js';
import { redisTarget } from '../io/redis-client.js';
import { MAX_BUCKETS } from './decimate.js';
import { EventStream, follow } from './events.js';
import type { FollowContext } from './events.js';
import { HttpError } from './http-error.js';
import { LiveRun } from './live.js';
import { RedisRuns } from './redis-runs.js';
import { RunListing } from './runs.js';
import { snapshotOf } from './snapshot.js';
import { Summaries } from './summary.js';
import { TableCache } from './table-cache.js';
import { warmTables } from './table-warm.js';

import type { View } from './protocol.js';

export type { ServedRun, ServedTable } from './protocol.js';

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
  /**
   * A Redis (`redis://[user:password@]host:port`, `rediss://…`) whose runs (`P:runs`) are listed
   * beside the folder's, as `redis:<run>`, and plotted live from their streams (issue 14). @default none
   */
  redis?: string;
  /** The key prefix of the runs in `redis` (the sinks' `prefix`). @default 'rowlog' */
  redisPrefix?: string;
  /**
   * Most buckets of rows a table is read into (docs/DESIGN.md §7's M4 rule: up to 4 points per
   * column and bucket, plus NaN/±Infinity markers); a page asks for fewer (`buckets=`, twice its
   * plot's width), never more. @default 2048
   */
  maxBuckets?: number;
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

/** Where the page's files are: its static files (web/) and the compiled modules (dist/web/, dist/lib/serve/). */
function pageDirs(): { web: string; dist: string } {
  // This file is dist/lib/serve/server.js when built (installed, or the CLI), lib/serve/server.ts from source (tests).
  const here = path.dirname(fileURLToPath(import.meta.url));
  const top = path.resolve(here, '..', '..');
  const dist = path.basename(top) === 'dist' ? top : path.join(top, 'dist');
  return { web: path.join(path.dirname(dist), 'web'), dist };
}

/** The modules the page loads (web/*.ts compiled to dist/web/), by URL. */
const PAGE_MODULES = ['align.js', 'app.js', 'axis.js', 'charts.js', 'dom.js', 'export.js', 'export-data.js', 'format.js', 'group.js', 'runs-table.js', 'runs-view.js', 'series.js', 'smooth.js', 'state.js'];

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
  objectOption(opts);
  const dirOpt = opts.dir ?? 'runs';
  if (typeof dirOpt !== 'string' || dirOpt === '') throw optionError('type', 'dir', `must be a non-empty string (got ${String(dirOpt)})`);
  const root = path.resolve(dirOpt);
  if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) throw optionError('range', 'dir', `is not a folder: ${dirOpt}`);
  const { host, port } = checkListen({ host: opts.host, port: opts.port, allowInsecure: opts.allowInsecure }, 'serve');
  const maxBuckets = numberOption(opts.maxBuckets ?? MAX_BUCKETS, 'maxBuckets', { min: 16, max: 16_384, integer: true });
  const pollMs = numberOption(opts.pollMs ?? 250, 'pollMs', { min: 1, max: 60_000 });
  const refreshMs = numberOption(opts.refreshMs ?? 2000, 'refreshMs', { min: 10, max: 3_600_000 });
  const warn = functionOption<(m: string) => void>(opts.onWarning, 'onWarning') ?? ((m: string) => process.stderr.write(`rowlog serve: ${m}\n`));
  let remote: { host: string; port: number } | undefined;
  if (opts.connect !== undefined) {
    if (typeof opts.connect !== 'string') throw optionError('type', 'connect', 'must be a host:port string');
    remote = parseHostPort(opts.connect, 'connect');
  }
  checkToken(opts.token);
  if (opts.token !== undefined && remote === undefined) throw optionError('range', 'token', 'is only used with connect');
  const redisAt = opts.redis === undefined ? undefined : redisTarget(opts.redis, 'redis');
  const redisPrefix = stringOption(opts.redisPrefix, 'redisPrefix') ?? DEFAULT_REDIS_PREFIX;
  if (!isRedisPrefix(redisPrefix)) throw optionError('range', 'redisPrefix', `must be printable and without spaces (got ${JSON.stringify(redisPrefix)})`);
  if (opts.redisPrefix !== undefined && redisAt === undefined) throw optionError('range', 'redisPrefix', 'is only used with redis');

  const { web, dist } = pageDirs();
  const require = createRequire(import.meta.url);
  const js = 'text/javascript; charset=utf-8';
  const assets: Record<string, { file: string; type: string } | { body: string; type: string }> = {
    '/': { file: path.join(web, 'index.html'), type: 'text/html; charset=utf-8' },
    '/index.html': { file: path.join(web, 'index.html'), type: 'text/html; charset=utf-8' },
    '/app.css': { file: path.join(web, 'app.css'), type: 'text/css; charset=utf-8' },
    // The striding the server uses, loaded by the page as an ES module (one implementation).
    '/lib/serve/decimate.js': { file: path.join(dist, 'lib', 'serve', 'decimate.js'), type: js },
    '/uplot.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: js },
    '/uplot.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
    '/favicon.svg': { body: FAVICON, type: 'image/svg+xml' },
    '/favicon.ico': { body: FAVICON, type: 'image/svg+xml' },
  };
  for (const m of PAGE_MODULES) assets[`/${m}`] = { file: path.join(dist, 'web', m), type: js };

  const live = remote === undefined ? undefined : new LiveRun(remote);
  const redis = redisAt === undefined ? undefined : new RedisRuns(redisAt, redisPrefix, warn);
  const listing = new RunListing(root, live, redis);

  // --- event streams: the listing pushed to every open page when it changes --------------------
  const streams = new Set<EventStream>();
  let refreshTimer: NodeJS.Timeout | undefined;
  const refresh = () => {
    if (streams.size === 0 && refreshTimer !== undefined) {
      clearInterval(refreshTimer); // no page open: nobody to tell
      refreshTimer = undefined;
    }
    if (!listing.changed()) return;
    for (const s of streams) s.send('runs', listing.body());
    warmTables(listing, cache); // new tables read in the background too
  };
  const startRefresh = () => {
    refreshTimer ??= setInterval(refresh, refreshMs);
    refreshTimer.unref();
  };
  // A broken chain of a resumed run (W_ANCESTRY) is said once per problem, not on every read.
  const chainWarned = new Set<string>();
  const chainWarning = (w: RowlogWarning) => {
    if (chainWarned.has(w.message) || chainWarned.size >= 1000) return;
    chainWarned.add(w.message);
    warn(`${w.code}: ${w.message}`);
  };
  const cache = new TableCache({ maxBuckets, onWarning: chainWarning });
  // The runs table's figures come from the same cache (docs/DESIGN.md §7).
  const summaries = new Summaries(listing, cache, { ...(redis ? { paramsOf: (id: string) => redis.paramsOf(id) } : {}), onWarning: chainWarning, onError: (file, err) => warn(`${path.relative(root, file)}: ${err.message}`) });
  const sources = { cache, live, redis, onWarning: chainWarning };
  const ctx: FollowContext = { pollMs, live, redis, snapshot: (target, view, signal) => snapshotOf(target, view, sources, signal) };

  /** The view a request asks for: `x=` (default `$step`), `buckets=` (at most maxBuckets), `from=`/`to=` (a zoom, both or neither). */
  const viewOf = (url: URL, zoom: boolean): View => {
    const q = url.searchParams;
    const x = q.get('x') ?? '$step';
    if (x !== '$step' && x !== '$time' && (x === '' || x.length > 200 || x.startsWith('$'))) throw new HttpError(400, `invalid x ${JSON.stringify(x)}: $step, $time or a column name`);
    const b = q.get('buckets');
    const n = b === null ? maxBuckets : Number(b);
    if (!Number.isInteger(n) || n < 1) throw new HttpError(400, `invalid buckets ${JSON.stringify(b)}: a positive integer`);
    const view: View = { x, maxBuckets: Math.min(n, maxBuckets) };
    const from = q.get('from');
    const to = q.get('to');
    if (from !== null || to !== null) {
      const a = Number(from);
      const z = Number(to);
      if (!zoom) throw new HttpError(400, 'from and to are for /api/rows');
      if (from === null || to === null || from === '' || to === '' || !Number.isFinite(a) || !Number.isFinite(z) || a > z) throw new HttpError(400, 'from and to must both be numbers, from ≤ to');
      view.range = { from: a, to: z };
    }
    return view;
  };

  const events = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const table = url.searchParams.get('table');
    const runIds = [...new Set(url.searchParams.getAll('run'))];
    // Check everything before the stream starts, so a bad request gets a plain HTTP error.
    const view = viewOf(url, false);
    const targets = table === null && runIds.length === 0 ? [] : runIds.length === 0 ? [listing.resolve(null, table)] : runIds.map((r) => listing.resolve(r, table));
    const es = new EventStream(res);
    streams.add(es);
    es.abort.signal.addEventListener('abort', () => streams.delete(es), { once: true });
    req.on('close', () => es.close());
    startRefresh();
    es.send('runs', listing.body());
    for (const target of targets) {
      follow(es, target, view, ctx).catch((err: unknown) => {
        if (es.closed) return;
        const message = `${target.run.id}/${target.table.name}: ${(err as Error).message}`;
        warn(message);
        es.send('problem', { run: target.run.id, table: target.table.name, message });
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
        return json(listing.body(0));
      case '/api/rows':
        return json((await ctx.snapshot(listing.resolve(url.searchParams.get('run'), url.searchParams.get('table')), viewOf(url, true))).snap);
      case '/api/events':
        return events(req, res, url);
      case '/api/summary':
        return json(summaries.body(url.searchParams.get('table')));
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
  // Every listed table read once in the background, most recently changed first (lib/serve/table-warm.ts).
  setImmediate(() => warmTables(listing, cache));

  // A new table of the socket sink shows up in the listing at once.
  live?.start(opts.token, refresh, warn);
  // The Redis runs are read every second at most, and pushed to open pages when they changed.
  redis?.start(Math.min(refreshMs, 1000), () => {
    if (streams.size > 0) refresh();
  });

  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port: bound,
    host,
    close() {
      closing ??= (async () => {
        clearInterval(refreshTimer);
        cache.close();
        summaries.close();
        live?.close();
        redis?.close();
        for (const s of streams) s.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
