/**
 * `rowlog tail [-n N] [-f] redis://host:port/RUN/TABLE[?prefix=P]` (docs/DESIGN.md §7; issue 14
 * point 3): a FILE argument that is a `redis://` or `rediss://` URL names a table's Redis stream
 * (the path's first segment the run, the rest the table, which may hold `/`). Its rows come from
 * lib/net/connect-redis.ts in the batches lib/cli/tail.ts prints, as `tailBatches` gives a
 * file's: first the last N rows (`last: N`, XREVRANGE), then, with `-f`, rows as they come. Each
 * is printed as the JSONL line of the table's file (no `$table`). The URL is only ever shown
 * with its password as `***`; Redis out of reach is one notice per outage, and the reader redials.
 */
import { isValidName } from '../core/entry.js';
import { optionError } from '../core/options.js';
import { rowJson } from '../format/json-line.js';
import { DEFAULT_REDIS_PREFIX, isRedisPrefix, isRunName } from '../format/redis-stream.js';
import { redactUrl } from '../io/redis-client.js';
import { connectRedis } from '../net/connect-redis.js';
import type { Row } from '../format/parse-lines.js';

/** True when a FILE argument is a Redis URL. */
export function isRedisUrl(arg: string): boolean {
  return /^rediss?:\/\//i.test(arg);
}

/** A table's stream named by a URL. */
export interface RedisTableSource {
  /** The server's URL (user, password and TLS kept; no path): what connect dials. */
  redis: string;
  /** The URL as given, with its password as `***`: what messages show. */
  shown: string;
  run: string;
  table: string;
  prefix: string;
}

/** `redis://[user:pw@]host:port/RUN/TABLE[?prefix=P]` → its parts (ERR_INVALID_OPTION naming `option` when it names no table). */
export function redisTableUrl(arg: string, option = 'url'): RedisTableSource {
  const shown = redactUrl(arg);
  let u: URL;
  try {
    u = new URL(arg);
  } catch {
    throw optionError('type', option, `must be redis://host:port/RUN/TABLE (got ${shown})`);
  }
  const parts = u.pathname.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
  const run = parts[0];
  const table = parts.slice(1).join('/');
  if (run === undefined || !isRunName(run) || !isValidName(table)) throw optionError('range', option, `must name a run and a table: redis://host:port/RUN/TABLE (got ${shown})`);
  const prefix = u.searchParams.get('prefix') ?? DEFAULT_REDIS_PREFIX;
  if (!isRedisPrefix(prefix)) throw optionError('range', option, `has a bad prefix ${JSON.stringify(prefix)}`);
  u.pathname = '';
  u.search = '';
  u.hash = '';
  return { redis: u.toString(), shown, run, table, prefix };
}

/** Options of {@link redisBatches}. */
export interface RedisBatchesOptions {
  /** Rows from the end first. */
  lines: number;
  /** Then rows as they come. */
  follow: boolean;
  /** Ends the batches. */
  signal: AbortSignal;
  /** One line for something worth saying (Redis out of reach, rows trimmed before they were read). */
  onNotice: (text: string) => void;
}

/** A row as its table file's line: without the `$table` connect adds. */
function fileLine(row: Row): string {
  const { $table: _table, ...rest } = row;
  return rowJson(rest);
}

/**
 * The rows of `src` as batches of JSONL lines, as lib/read/tail.ts's `tailBatches` gives a
 * file's: the first batch (possibly empty) the last `lines` rows, then batches as rows come
 * (with `follow`). Fails with the reader's error (ERR_REDIS: a wrong password, a key that is not a stream).
 */
export async function* redisBatches(src: RedisTableSource, opts: RedisBatchesOptions): AsyncGenerator<string[]> {
  const s = connectRedis({ redis: src.redis, run: src.run, table: src.table, prefix: src.prefix, last: opts.lines, follow: opts.follow });
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let failure: Error | undefined;
  let ended = false;
  let caughtUp = false;
  s.on('readable', poke);
  s.on('live', () => ((caughtUp = true), poke()));
  s.on('end', () => ((ended = true), poke()));
  s.on('error', (err: Error) => ((failure = err), poke()));
  s.on('offline', (why: string) => opts.onNotice(`Redis is out of reach (${why}); still trying`));
  s.on('online', () => opts.onNotice('Redis answers again'));
  s.on('dropped', () => opts.onNotice('rows were trimmed from the stream (MAXLEN) before they could be read'));
  const stop = () => ((ended = true), poke());
  opts.signal.addEventListener('abort', stop, { once: true });
  try {
    let first = true;
    let batch: string[] = [];
    for (;;) {
      for (let row = s.read() as Row | null; row !== null; row = s.read() as Row | null) batch.push(fileLine(row));
      if (failure !== undefined) throw failure;
      if (opts.signal.aborted) return;
      if (!first || caughtUp || ended) {
        if (first || batch.length > 0) yield batch;
        first = false;
        batch = [];
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    opts.signal.removeEventListener('abort', stop);
    s.destroy();
  }
}
