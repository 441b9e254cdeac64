/**
 * redisSink: the run's rows into Redis Streams, one stream per table (docs/DESIGN.md §4, "Redis
 * Streams"; issue 14), so runs on many machines meet in one Redis that collectors and readers
 * take them from. The keys and a stream entry's fields are lib/format/redis-stream.ts's; the
 * connection is lib/io/redis-client.ts's.
 *
 * This file is the sink's front: its options (checked with lib/core/options.ts), the run's name,
 * and the run's records (run.json, params, status) that the logger hands it as it saves them
 * ({@link RunRecorder}). Rows go through {@link BatchSink}: `log.row()` only keeps the Entry; in
 * the batch timer the backend (sinks/redis-backend.ts) turns each table's rows of a batch into one
 * NDJSON block, exactly the lines the JSONL sink writes, and sends it with one XADD, in order,
 * buffered within `maxBufferBytes` while Redis is away.
 */
import { nameSegment } from '../lib/core/entry.js';
import { numberOption, objectOption, optionError, stringOption } from '../lib/core/options.js';
import type { RunRecorder } from '../lib/core/sink.js';
import { DEFAULT_REDIS_PREFIX, isRedisPrefix, isRunName } from '../lib/format/redis-stream.js';
import { redisTarget } from '../lib/io/redis-client.js';
import { BatchSink, resolveBatchOptions } from './batch-sink.js';
import type { BatchSinkOptions } from './batch-sink.js';
import { RedisBackend } from './redis-backend.js';
import type { ResolvedRedisOptions } from './redis-backend.js';

/** Options of {@link redisSink}. */
export interface RedisSinkOptions extends BatchSinkOptions {
  /**
   * The Redis server: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS; passed to
   * ioredis as given. Messages and records show it with user and password as `***`.
   */
  url: string;
  /** The first part of every key (`<prefix>:runs`, `<prefix>:<run>:<table>`). @default 'rowlog' */
  prefix?: string;
  /**
   * The run's name in the keys, one name segment (`[A-Za-z0-9_.-]`). @default the logger's run
   * name (run.json's `name`, made one segment), else `<script>_<time>` as a default run folder is named
   */
  run?: string;
  /**
   * Cap each stream at about this many entries (`XADD … MAXLEN ~ maxLen`; an entry is one batch
   * of rows, not one row), for a Redis that is only a relay. @default no cap
   */
  maxLen?: number;
  /**
   * Bound on the NDJSON bytes of blocks not yet confirmed by Redis (while it is away, or slow).
   * Past it the oldest blocks are dropped: one `W_REDIS_DROPPED` warning with the count, and the
   * total when the sink closes. `log.row()` never waits for Redis. @default 67108864 (64 MiB)
   */
  maxBufferBytes?: number;
  /**
   * How long `close()` waits for the blocks still buffered to be confirmed (Redis away, or slow)
   * before it gives up on them, warns how many rows were not delivered (`W_REDIS_DROPPED`) and
   * disconnects; also how long `flush()` waits for a Redis that does not answer at all (stopped, a
   * network cut that leaves the socket open) before it counts it as away. At most 2147483647 (a
   * timer's range). @default 5000
   */
  closeTimeoutMs?: number;
}

/** The default of `maxBufferBytes`. */
export const DEFAULT_REDIS_BUFFER_BYTES = 64 * 1024 * 1024;

/** Checks the options (ERR_INVALID_OPTION naming the first bad one; never showing the password). */
export function resolveRedisOptions(opts: RedisSinkOptions): ResolvedRedisOptions {
  objectOption(opts);
  resolveBatchOptions(opts);
  const target = redisTarget(opts.url, 'url');
  const prefix = opts.prefix ?? DEFAULT_REDIS_PREFIX;
  if (!isRedisPrefix(prefix)) throw optionError('type', 'prefix', `must be 1 to 200 printable characters without spaces (got ${JSON.stringify(prefix)})`);
  const run = stringOption(opts.run, 'run');
  if (run !== undefined && !isRunName(run)) throw optionError('range', 'run', `must be one name segment of [A-Za-z0-9_.-] (got ${JSON.stringify(run)})`);
  return {
    target,
    prefix,
    run,
    maxLen: opts.maxLen === undefined ? undefined : numberOption(opts.maxLen, 'maxLen', { min: 1, integer: true }),
    maxBufferBytes: numberOption(opts.maxBufferBytes ?? DEFAULT_REDIS_BUFFER_BYTES, 'maxBufferBytes', { min: 0, integer: true }),
    // A timer's longest delay: past it Node fires at once (TimeoutOverflowWarning), and close() would give up at once.
    closeTimeoutMs: numberOption(opts.closeTimeoutMs ?? 5000, 'closeTimeoutMs', { min: 0, max: 2_147_483_647 }),
  };
}

/**
 * A Redis Streams sink: per table a stream `<prefix>:<run>:<table>`, one XADD per table per
 * flushed batch; the run in `<prefix>:runs` and its run.json, params and status in the hash
 * `<prefix>:<run>:meta`. Never makes `log.row()` wait; buffers within `maxBufferBytes` while
 * Redis is away and sends in order when it is back. Needs the npm package ioredis@6.
 */
export function redisSink(opts: RedisSinkOptions): RedisSink {
  return new RedisSink(opts);
}

/** The sink: a {@link BatchSink} whose backend sends blocks to Redis; it records the run too. */
export class RedisSink extends BatchSink implements RunRecorder {
  readonly #backend: RedisBackend;

  constructor(opts: RedisSinkOptions) {
    const o = resolveRedisOptions(opts);
    let backend: RedisBackend | undefined;
    super(opts, (warn) => (backend = new RedisBackend(o, warn)));
    this.#backend = backend as unknown as RedisBackend;
  }

  /** The server, as messages show it (password and user as `***`). */
  get shown(): string {
    return this.#backend.shown;
  }

  /** The run's name in the keys (known once the sink has claimed it; it may gain `.<id8>`, see DESIGN §4). */
  get runName(): string {
    return this.#backend.runName;
  }

  /** Records run.json's content in the meta hash's `run`; its `name` is the run name unless the `run` option was given. */
  setRun(run: Readonly<Record<string, unknown>>): void {
    const name = typeof run.name === 'string' && run.name !== '' ? nameSegment(run.name) : undefined;
    this.#backend.setRun(run, name);
  }

  /** Merges `params` into the meta hash's `params` (as params.json). */
  setParams(params: Readonly<Record<string, unknown>>): void {
    this.#backend.setParams(params);
  }

  /** Replaces the meta hash's `status` (what status.json holds). */
  setStatus(status: Readonly<Record<string, unknown>>): void {
    this.#backend.setStatus(status);
  }
}
