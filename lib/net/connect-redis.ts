/**
 * `connect({redis, run, table})`: a Readable of the rows of one table's Redis stream
 * (docs/DESIGN.md §4 "Redis Streams", §6; issue 14 point 3), the reader behind
 * `rowlog tail -f redis://…` and `rowlog serve --redis`.
 *
 * Why it cannot lose or repeat a row: the only state is `lastId`, the id of the last stream
 * entry whose rows were all passed on (an entry's rows pass on as a unit). Every read asks for
 * the entries after it: the backlog by `XRANGE (lastId + COUNT page` in pages, then, once a page
 * comes back short, live by `XREAD BLOCK … STREAMS key lastId` on this reader's own connection.
 * The switch is the same question asked another way, so entries added while the backlog was
 * read are simply the next ones. A lost connection (Redis restarted) is redialled by
 * lib/io/redis-client.ts, and the reader asks again from `lastId`.
 *
 * Backpressure: when `push()` says the consumer is behind, the entry being passed on is
 * finished and nothing more is read until `read()` is called again; the next read is then a
 * backlog page (the reader may have fallen behind), as is one after an error, and a live read
 * that returns a full page goes back to pages.
 *
 * Trimming (`MAXLEN ~`, which removes the oldest entries): a backlog page is read from `lastId`
 * inclusive. While `lastId` is still in the stream nothing after it was trimmed; when it is
 * gone, entries the reader had not got may have gone with it: the stream emits `'dropped'`
 * (`{after, before}`, stream ids: {@link DroppedEntries}) and goes on with what is left.
 * (`XINFO STREAM`'s `max-deleted-entry-id` would say more, but Redis 7.0 moves it only on
 * XDEL, not on trimming.) A reader that starts from the beginning (no `since`) or at `last`
 * does not report what was trimmed before it came, and a `since` that never was an entry's id
 * reads as a trimmed one. The rows of a trimmed entry are gone with it, so the event carries
 * ids, not a count.
 *
 * Entries that are not rowlog blocks (parseBlock undefined: another writer's) are skipped, and
 * so are lines of a block that are not rows. The stream ends only when destroyed, or with
 * `follow: false` once the backlog is read; a wrong password or a key that is not a stream
 * fails it with `ERR_REDIS` (the message never holds the password).
 */
import { Readable } from 'node:stream';
import { isValidName } from '../core/entry.js';
import { RowlogError } from '../core/errors.js';
import { booleanOption, numberOption, objectOption, optionError, stringOption } from '../core/options.js';
import { lineToRow } from '../format/parse-lines.js';
import type { Row } from '../format/parse-lines.js';
import { DEFAULT_REDIS_PREFIX, isRedisPrefix, isRunName, parseBlock, streamKey } from '../format/redis-stream.js';
import { Backoff } from '../io/backoff.js';
import { RETRY_MAX_MS, RETRY_MIN_MS } from '../io/listen.js';
import { openRedis, redisTarget } from '../io/redis-client.js';
import type { Redis, RedisTarget } from '../io/redis-client.js';

/** Options of {@link connectRedis} (`connect({redis, …})`). */
export interface RedisConnectOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` of the Redis the run writes to. */
  redis: string;
  /** The run's name (one name segment, as in `P:runs`). */
  run: string;
  /** The table (`train`, `grad/layer1`). */
  table: string;
  /** The key prefix the sink was given. @default 'rowlog' */
  prefix?: string;
  /**
   * Pass on only entries after this stream id (exclusive): a {@link RedisRowStream.lastId} saved
   * earlier, to resume. `'0'` or `'0-0'` is the stream's beginning. @default '0-0'
   */
  since?: string;
  /** Start with the last `last` rows of the stream instead of its beginning (`tail -n`); not with `since`. @default all */
  last?: number;
  /** After the backlog, wait for new rows (XREAD BLOCK); false ends the stream once the backlog is read. @default true */
  follow?: boolean;
  /** Entries asked for per XRANGE/XREAD (`COUNT`). @default 100 */
  pageEntries?: number;
  /** How long one XREAD waits for new entries before asking again (ms). @default 2000 */
  blockMs?: number;
  /** Rows buffered before reading stops. @default 1000 */
  highWaterMark?: number;
}

/**
 * What {@link connectRedis} returns: rows, with events `'live'` (the backlog is read),
 * `'dropped'` ({@link DroppedEntries}), `'offline'` (why, password scrubbed: Redis cannot be
 * reached, once per outage; the reader keeps redialling) and `'online'` (reached again).
 */
export interface RedisRowStream extends Readable {
  /** The id of the last entry whose rows were all passed on (`since`, or `'0-0'`, before the first): pass it as `since` to resume. */
  readonly lastId: string;
  /** The stream's key (`P:R:<table>`). */
  readonly key: string;
}

/** The `'dropped'` event: entries after `after` and before `before` (stream ids) may have been trimmed before they were read. */
export interface DroppedEntries {
  /** The last entry passed on (`lastId`), which is no longer in the stream. */
  after: string;
  /** The first entry left after it, read next. */
  before: string;
}

/** A stream entry as Redis returns it: its id and flat field list. */
type StreamEntry = [id: string, fields: string[]];

/** A stream id as two numbers (ms, seq); undefined when `id` is none. */
function idParts(id: string): [bigint, bigint] | undefined {
  const m = /^(\d{1,20})-(\d{1,20})$/.exec(id);
  return m === null ? undefined : [BigInt(m[1] as string), BigInt(m[2] as string)];
}

/** `a` compared with `b` (stream ids): negative, 0 or positive. */
export function compareIds(a: string, b: string): number {
  const x = idParts(a) ?? [0n, 0n];
  const y = idParts(b) ?? [0n, 0n];
  return x[0] !== y[0] ? (x[0] < y[0] ? -1 : 1) : x[1] === y[1] ? 0 : x[1] < y[1] ? -1 : 1;
}

/** The id just before `id`, so that "after it" includes `id` itself. */
function idBefore(id: string): string {
  const [ms, seq] = idParts(id) ?? [0n, 0n];
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : '0-0';
}

/** A row of a block, with `$table` after `$level`, where the socket sink puts it. */
function tableRow(r: Row, table: string): Row {
  const out: Row = {};
  if ('$step' in r) out.$step = r.$step;
  if ('$time' in r) out.$time = r.$time;
  if ('$level' in r) out.$level = r.$level;
  out.$table = table;
  Object.assign(out, r);
  out.$table = table;
  return out;
}

/** The rows of one entry's block (none for an entry that is no rowlog block), `skip` first rows left out. */
export function entryRows(fields: readonly string[], table: string, skip = 0): Row[] {
  const block = parseBlock(fields);
  if (block === undefined) return [];
  const rows: Row[] = [];
  for (const line of block.rows.split('\n')) {
    const r = lineToRow(line);
    if (r === undefined) continue;
    if (skip > 0) skip--;
    else rows.push(tableRow(r, table));
  }
  return rows;
}

/** An error Redis answered with (a reply, not a lost connection): reading again cannot help. */
function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/** The id after which the last `n` rows of `key` start, and how many rows of the first entry after it to skip. */
async function lastRowsStart(client: Redis, key: string, n: number, page: number): Promise<{ after: string; skip: number }> {
  let rows = 0;
  let end = '+';
  for (;;) {
    const entries = (await client.call('XREVRANGE', key, end, '-', 'COUNT', String(page))) as StreamEntry[];
    for (const [id, fields] of entries) {
      if (n === 0) return { after: id, skip: 0 };
      const b = parseBlock(fields);
      if (b === undefined) continue;
      rows += b.n;
      if (rows >= n) return { after: idBefore(id), skip: rows - n };
    }
    const oldest = entries[entries.length - 1];
    if (entries.length < page || oldest === undefined) return { after: '0-0', skip: 0 };
    end = `(${oldest[0]}`;
  }
}

/** Checks {@link RedisConnectOptions} (ERR_INVALID_OPTION). */
function checkOptions(opts: RedisConnectOptions) {
  objectOption(opts);
  const target = redisTarget(opts.redis, 'redis');
  if (!isRunName(opts.run)) throw optionError('type', 'run', `must be a run name (one segment of [A-Za-z0-9_.-]; got ${JSON.stringify(opts.run)})`);
  if (!isValidName(opts.table)) throw optionError('type', 'table', `must be a table name (got ${JSON.stringify(opts.table)})`);
  const prefix = stringOption(opts.prefix, 'prefix') ?? DEFAULT_REDIS_PREFIX;
  if (!isRedisPrefix(prefix)) throw optionError('range', 'prefix', `must be printable and without spaces (got ${JSON.stringify(prefix)})`);
  let since = stringOption(opts.since, 'since') ?? '0-0';
  if (since === '0') since = '0-0';
  if (idParts(since) === undefined) throw optionError('range', 'since', `must be a stream id such as 1700000000000-0 (got ${JSON.stringify(since)})`);
  const last = opts.last === undefined ? undefined : numberOption(opts.last, 'last', { min: 0, integer: true });
  if (last !== undefined && opts.since !== undefined) throw optionError('range', 'last', 'cannot be given with since');
  return {
    target,
    key: streamKey(prefix, opts.run, opts.table),
    since,
    last,
    follow: booleanOption(opts.follow, 'follow', true),
    page: numberOption(opts.pageEntries ?? 100, 'pageEntries', { min: 1, max: 100_000, integer: true }),
    blockMs: numberOption(opts.blockMs ?? 2000, 'blockMs', { min: 1, max: 600_000, integer: true }),
    highWaterMark: numberOption(opts.highWaterMark ?? 1000, 'highWaterMark', { min: 1, integer: true }),
  };
}

/**
 * Reads the rows of `opts.table` of run `opts.run` from Redis (see the module comment): each
 * row as an object (`$step`, `$time`, `$level`, `$table`, data keys; NaN and ±Infinity
 * restored), the backlog first, then live rows. Emits `'live'` each time the backlog is read
 * (rows from then on are new), `'dropped'` ({@link DroppedEntries}) for trimmed entries,
 * `'offline'` (message) and `'online'` around an outage.
 */
export function connectRedis(opts: RedisConnectOptions): RedisRowStream {
  const o = checkOptions(opts);
  const { key, table, page } = { ...o, table: opts.table };
  const target: RedisTarget = o.target;
  let lastId = o.since;
  let skip = 0; // rows of the next entry already before the asked-for last rows
  let started = o.last === undefined; // `last` is looked up first
  let checkTrim = lastId !== '0-0'; // report trimming after `since`
  let mode: 'backlog' | 'live' = 'backlog';
  let backlogDone = false; // the last backlog page came back short
  let pending: StreamEntry[] = [];
  let wanted = false;
  let pumping = false;
  const retry = new Backoff(RETRY_MIN_MS, RETRY_MAX_MS);

  const client = openRedis(target, { name: 'rowlog-connect' });
  const stream = new Readable({
    objectMode: true,
    highWaterMark: o.highWaterMark,
    read() {
      wanted = true;
      void pump();
    },
    destroy(err, cb) {
      retry.cancel();
      client.disconnect();
      cb(err);
    },
  }) as RedisRowStream;
  Object.defineProperty(stream, 'lastId', { get: () => lastId });
  Object.defineProperty(stream, 'key', { value: key });

  const fail = (err: Error) => stream.destroy(new RowlogError('ERR_REDIS', `${target.shown} ${key}: ${target.scrub(err.message)}`, { cause: err }));
  // Connection errors are redialled by ioredis (said once per outage); a refused password will not get better.
  let offline = false;
  client.on('error', (err: Error) => {
    if (isReplyError(err) && /WRONGPASS|NOAUTH|invalid password|invalid username/i.test(err.message)) fail(err);
    else if (!offline && !stream.destroyed) {
      offline = true;
      stream.emit('offline', target.scrub(err.message));
    }
  });
  client.on('ready', () => {
    if (offline && !stream.destroyed) stream.emit('online');
    offline = false;
  });

  /** The next entries to pass on ([] to ask again), or null at the end (`follow: false`). */
  const fetch = async (): Promise<StreamEntry[] | null> => {
    if (!started) {
      const s = await lastRowsStart(client, key, o.last as number, page);
      lastId = s.after;
      skip = s.skip;
      started = true;
      checkTrim = false;
    }
    if (mode === 'backlog') {
      if (backlogDone) {
        if (!o.follow) return null;
        mode = 'live';
        backlogDone = false;
        stream.emit('live');
        return [];
      }
      // From lastId inclusive: it is still there unless it was trimmed (then so may the entries after it be).
      const from = lastId === '0-0' ? '-' : lastId;
      const entries = (await client.call('XRANGE', key, from, '+', 'COUNT', String(page + 1))) as StreamEntry[];
      if (entries.length < page + 1) backlogDone = true;
      const first = entries[0]?.[0];
      if (first === lastId) entries.shift();
      else if (first !== undefined && checkTrim) stream.emit('dropped', { after: lastId, before: first } satisfies DroppedEntries);
      else if (entries.length > page) entries.pop(); // the next page asks again from lastId anyway
      checkTrim = true;
      return entries;
    }
    const reply = (await client.call('XREAD', 'COUNT', String(page), 'BLOCK', String(o.blockMs), 'STREAMS', key, lastId)) as Array<[string, StreamEntry[]]> | null;
    const entries = reply?.[0]?.[1] ?? [];
    if (entries.length >= page) mode = 'backlog'; // behind: read pages (and check for trimming)
    return entries;
  };

  const pump = async () => {
    if (pumping) return;
    pumping = true;
    try {
      while (wanted && !stream.destroyed) {
        const entry = pending.shift();
        if (entry === undefined) {
          const got = await fetch();
          if (stream.destroyed) break;
          if (got === null) {
            stream.push(null);
            break;
          }
          retry.reset();
          pending = got;
          continue;
        }
        const [id, fields] = entry;
        let more = true;
        for (const row of entryRows(fields, table, skip)) more = stream.push(row) && more;
        skip = 0;
        lastId = id;
        if (!more) {
          wanted = false;
          // The consumer is behind: once it asks again, read pages (and check for trimming).
          if (mode === 'live') {
            mode = 'backlog';
            backlogDone = false;
          }
        }
      }
    } catch (err) {
      if (stream.destroyed) return;
      if (isReplyError(err)) {
        fail(err);
        return;
      }
      // Lost connection: ask again from lastId once redialled, as a backlog page.
      pending = [];
      mode = 'backlog';
      backlogDone = false;
      retry.schedule(() => void pump(), { ref: true });
    } finally {
      pumping = false;
    }
  };
  return stream;
}
