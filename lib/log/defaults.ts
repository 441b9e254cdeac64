/**
 * The default sinks of a run folder (docs/DESIGN.md §5): what `createLogger({dir})` writes to when it is
 * given no `sinks`. `<table>.jsonl.gz` and `<table>.csv` at TRACE, a memory ring for
 * `log.table()`, the console at INFO (one print per table per second, RESULTS and above
 * always), a TensorBoard events file at INFO (as noko's default backends), and on request a socket. The Logger (./logger.ts) routes rows to whatever list it
 * gets; only this file knows what the defaults are.
 */
import { nameSegment } from '../core/entry.js';
import { booleanOption, objectOption, optionError } from '../core/options.js';
import { csvSink } from '../../sinks/csv.js';
import { jsonlSink } from '../../sinks/jsonl.js';
import { memorySink } from '../../sinks/memory.js';
import { prettySink } from '../../sinks/pretty.js';
import type { PrettySinkOptions } from '../../sinks/pretty.js';
import { SocketSink, socketSink } from '../../sinks/socket.js';
import { parquetSink } from '../../sinks/parquet.js';
import type { ParquetSinkOptions } from '../../sinks/parquet.js';
import { sqliteSink } from '../../sinks/sqlite.js';
import type { SqliteSinkOptions } from '../../sinks/sqlite.js';
import { tensorboardSink } from '../../sinks/tensorboard.js';
import { redisTarget } from '../io/redis-client.js';
import { redisSink } from '../../sinks/redis.js';
import type { RedisSinkOptions } from '../../sinks/redis.js';
import type { SocketSinkOptions } from '../../sinks/socket.js';
import type { SinkSpec } from './routes.js';

/** `createLogger`'s `console` option: the console sink's options, and the console capture's. */
export interface ConsoleOptions extends PrettySinkOptions {
  /**
   * Also write everything the process prints to stdout and stderr (console.*, direct writes,
   * worker threads' console, rowlog's own prints) to `console.log` in the run folder, line by
   * line, flushed at exit and on SIGINT/SIGTERM/SIGHUP; the terminal sees the same bytes
   * (lib/log/console-capture.ts). Needs a run folder; applies with `sinks` given too.
   * @default false
   */
  capture?: boolean;
  /**
   * With the default sinks: the console sink that prints rows; `false` for none while still
   * capturing (`{capture: true, pretty: false}`). @default true
   */
  pretty?: boolean;
}

/** What `createLogger`'s `console` option asks for: the console sink's options (or none), and whether to capture. */
export function consoleChoice(v: ConsoleOptions | false | undefined): { pretty: PrettySinkOptions | undefined; capture: boolean } {
  if (v === false) return { pretty: undefined, capture: false };
  if (v === undefined) return { pretty: {}, capture: false };
  const { capture, pretty, ...sink } = objectOption(v, 'console');
  return { pretty: booleanOption(pretty, 'console.pretty', true) ? sink : undefined, capture: booleanOption(capture, 'console.capture', false) };
}

/** The options of `createLogger` that shape its default sinks (ignored when `sinks` is given). */
export interface DefaultSinkOptions {
  /**
   * With the default sinks: also send every row over TCP, to subscribers (`{port}`, read them
   * with `connect()` or `rowlog serve --connect`) or to a collector (`{connect: 'host:port'}`,
   * `$source` defaulting to the run name). A {@link SocketSink} is used as is. @default none
   */
  socket?: SocketSinkOptions | SocketSink;
  /**
   * The console: with the default sinks, the console sink's options, or `false` for none; and
   * `capture: true` to also keep everything the process prints in `console.log` (see
   * {@link ConsoleOptions}). `false` is no console sink and no capture. @default {}
   */
  console?: ConsoleOptions | false;
  /**
   * With the default sinks: a TensorBoard events file in the run folder for the rows at INFO and
   * above (`tensorboard --logdir <dir>`), as noko writes one by default; `false` for none. Rows at
   * TRACE and DEBUG (per-step rows) stay in the JSONL and CSV only. @default true
   */
  tensorboard?: boolean;
  /**
   * With the default sinks: also a Parquet dataset per table in the run folder
   * (`<table>.parquet/part-NNNNN.parquet`, for DuckDB and pandas), at TRACE like the JSONL, as
   * noko and Skáld write on request; `true` or parquetSink's options (without `dir`). @default false
   */
  parquet?: boolean | Omit<ParquetSinkOptions, 'dir'>;
  /**
   * With the default sinks: also the run as one SQLite database, `<dir>/run.sqlite` (a wide table
   * per rowlog table, `runs`, `params`, `status`, Blocks' `entries` view), at TRACE; `true` or
   * sqliteSink's options (without `dir`/`path`). Needs the optional peer `better-sqlite3@12`
   * (else `ERR_MISSING_DEPENDENCY`). @default false
   */
  sqlite?: boolean | Omit<SqliteSinkOptions, 'dir' | 'path'>;
  /**
   * With the default sinks: also every row into Redis Streams (sinks/redis.ts; one stream per
   * table, `<prefix>:<run>:<table>`), at TRACE, for `rowlog collect --redis` and the readers: a
   * `redis://` or `rediss://` URL, or redisSink's options (`run` defaults to the run name). Never
   * makes `log.row()` wait; while Redis is away rows are buffered within `maxBufferBytes`.
   * `false`: none, even when `ROWLOG_REDIS` is set (a collector's runs, which came from Redis).
   * @default the environment variable `ROWLOG_REDIS` (a URL) when set, else none
   */
  redis?: string | RedisSinkOptions | false;
  /**
   * With the default sinks: rows kept in memory per table for `log.table()`. Kept small on
   * purpose: rows that stay longer are promoted to V8's old space, and at tens of thousands of
   * rows a second a 1000-row ring costs ~18 MB of peak RSS where 100 costs nothing (measured).
   * @default 100
   */
  memory?: number;
  /**
   * Bound on bytes each default sink, and the console capture's `console.log`, holds for the
   * disk; past it the sink writes synchronously (the caller slows down, no row is dropped).
   * Sinks you pass take their own option.
   * @default 2097152 (2 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * With the default sinks: files each file sink keeps open at once (an LRU of fds; others are
   * reopened to append when written). Sinks you pass take their own option. @default 128
   */
  maxOpenFiles?: number;
}

/**
 * The default sinks of the run folder `dir` (absolute) named `runName` (docs/DESIGN.md §5), built now:
 * they touch no file until a row comes, so a logger that fails later leaves nothing behind.
 */
export function defaultSinks(dir: string, runName: string, opts: DefaultSinkOptions): SinkSpec[] {
  const files = {
    dir,
    ...(opts.maxQueuedBytes === undefined ? {} : { maxQueuedBytes: opts.maxQueuedBytes }),
    ...(opts.maxOpenFiles === undefined ? {} : { maxOpenFiles: opts.maxOpenFiles }),
  };
  const specs: SinkSpec[] = [
    { sink: jsonlSink({ ...files, ext: '.jsonl.gz' }), level: 'TRACE' },
    { sink: csvSink(files), level: 'TRACE' },
    { sink: memorySink({ maxlen: opts.memory ?? 100 }), level: 'TRACE' },
  ];
  const pretty = consoleChoice(opts.console).pretty;
  if (pretty !== undefined) specs.push({ sink: prettySink(pretty), level: 'INFO' });
  if (booleanOption(opts.tensorboard, 'tensorboard', true)) specs.push({ sink: tensorboardSink({ dir, ...(opts.maxQueuedBytes === undefined ? {} : { maxQueuedBytes: opts.maxQueuedBytes }) }), level: 'INFO' });
  const parquet = sinkChoice(opts.parquet, 'parquet');
  if (parquet !== undefined) specs.push({ sink: parquetSink({ ...parquet, dir }), level: 'TRACE' });
  const sqlite = sinkChoice(opts.sqlite, 'sqlite');
  if (sqlite !== undefined) specs.push({ sink: sqliteSink({ ...sqlite, dir }), level: 'TRACE' });
  if (opts.socket !== undefined) specs.push(socketSpec(runName, opts.socket));
  // A bad ROWLOG_REDIS is named as such (ERR_INVALID_OPTION 'ROWLOG_REDIS: …'), not as redisSink's `url`.
  const env = process.env.ROWLOG_REDIS || undefined;
  const redis = opts.redis ?? (env === undefined ? undefined : redisTarget(env, 'ROWLOG_REDIS').url);
  if (redis !== undefined && redis !== false) specs.push({ sink: redisSink({ run: nameSegment(runName), ...(typeof redis === 'string' ? { url: redis } : objectOption(redis, 'redis')) }), level: 'TRACE' });
  return specs;
}

/** An opt-in default sink's option: `true` or its options turn it on (the options returned), `false` or none off. */
function sinkChoice<T extends object>(v: boolean | T | undefined, option: string): T | Record<string, never> | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return {};
  if (typeof v !== 'object' || v === null) throw optionError('type', option, `must be true, false or the sink's options (got ${String(v)})`);
  return v;
}

/** `createLogger({socket})`'s sink: `source` (push mode only) is the run name made a valid `$source` segment. */
function socketSpec(runName: string, sock: SocketSinkOptions | SocketSink): SinkSpec {
  const sink = sock instanceof SocketSink ? sock : socketSink({ source: nameSegment(runName), ...sock });
  return { sink, level: 'TRACE' };
}
