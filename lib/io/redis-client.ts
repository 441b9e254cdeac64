/**
 * The one way rowlog opens a Redis connection (issue 14): the sink, the collector and the readers
 * all come here, so a URL is checked once, a password never shows in a message, and every
 * client redials the same way.
 *
 * - `ioredis` is loaded on first use (createRequire), so a user who never names Redis never
 *   pays for loading it.
 * - Only `redis://` and `rediss://` URLs; user, password, db and TLS pass through to ioredis as
 *   they are. {@link redactUrl} is what every warning, error and `run.json` shows: the URL with
 *   its password (and user) replaced by `***`; {@link RedisTarget.scrub} also removes the
 *   password from any text (an error ioredis made).
 * - Lost connections are redialled by ioredis with a doubling delay, 100 ms up to 2 s (the
 *   constants of lib/io/listen.ts), forever: a collector or a sink outlives a Redis restart.
 */
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import { RowlogError } from '../core/errors.js';
import { optionError } from '../core/options.js';
import { RETRY_MAX_MS, RETRY_MIN_MS } from './listen.js';

export type { Redis } from 'ioredis';

/** A checked Redis URL: what to dial, and how to show it. */
export interface RedisTarget {
  /** The URL as given (with its password): only for ioredis. */
  readonly url: string;
  /** The URL with user and password as `***`: for messages and files. */
  readonly shown: string;
  /** `text` with the password (when there is one) replaced by `***`. */
  scrub(text: string): string;
}

/** Query parameters ioredis reads as credentials (its URL options come from the query too). */
const SECRET_PARAMS = ['password', 'username'];

/**
 * `url` with its user and password replaced by `***`. Text the URL parser sees no host in
 * (`user:secret@host:6379` without its scheme, `redis//…`) has everything up to its last `@` hidden.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.host !== '') {
      if (u.password !== '') u.password = '***';
      if (u.username !== '') u.username = '***';
      // ioredis also takes its options from the query (`?password=…`): hidden the same way.
      for (const k of SECRET_PARAMS) if (u.searchParams.has(k)) u.searchParams.set(k, '***');
      return u.toString();
    }
  } catch {
    // not a URL: the text below
  }
  return url.replace(/^([^@]*\/\/)?.*@/, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

/** Checks a Redis URL option (`ERR_INVALID_OPTION` naming `option`; the message never holds the password). */
export function redisTarget(url: unknown, option: string): RedisTarget {
  if (typeof url !== 'string' || url === '') throw optionError('type', option, 'must be a redis:// or rediss:// URL');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw optionError('type', option, `must be a redis:// or rediss:// URL (got ${redactUrl(url)})`);
  }
  // A host is required: `redis:/u:pw@h` (one slash) parses with none, and would dial localhost.
  if ((u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.host === '') {
    throw optionError('type', option, `must be a redis:// or rediss:// URL (got ${redactUrl(url)})`);
  }
  const given = [u.password, ...SECRET_PARAMS.map((k) => u.searchParams.get(k) ?? '')];
  const secrets = [...given, ...given.map(safeDecode)].filter((s) => s.length > 0);
  return {
    url,
    shown: redactUrl(url),
    scrub: (text) => secrets.reduce((t, s) => t.split(s).join('***'), text),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

type RedisClass = new (url: string, opts: RedisOptions) => Redis;
let Client: RedisClass | undefined;

/** The ioredis client class, loaded on first use; ERR_MISSING_DEPENDENCY when it is not installed. */
function redisClass(): RedisClass {
  if (Client !== undefined) return Client;
  try {
    const mod = createRequire(import.meta.url)('ioredis') as { default: RedisClass };
    Client = mod.default;
    return Client;
  } catch (err) {
    throw new RowlogError('ERR_MISSING_DEPENDENCY', `Redis needs the npm package ioredis@6 (${(err as Error).message.split('\n')[0]})`);
  }
}

/** Options of {@link openRedis}. */
export interface OpenRedisOptions {
  /** Queue commands while disconnected (ioredis's offline queue, unbounded). A sink keeps its own bounded buffer instead. @default true */
  offlineQueue?: boolean;
  /** Name shown by `CLIENT LIST`. */
  name?: string;
  /**
   * The socket and the redial timer never keep the process alive (a sink: a finished script
   * must exit while Redis is away). @default false
   */
  unref?: boolean;
  /**
   * Commands in flight when the connection drops are sent again by ioredis on reconnect
   * (`autoResendUnfulfilledCommands`); `false` rejects them, for a caller that resends itself. @default true
   */
  resend?: boolean;
}

/**
 * A client for `target`, connecting now and redialling with a doubling delay (100 ms to 2 s)
 * whenever the connection is lost. Its 'error' events must be listened to by the caller.
 */
export function openRedis(target: RedisTarget, opts: OpenRedisOptions = {}): Redis {
  const R = redisClass();
  const client = new R(target.url, {
    enableOfflineQueue: opts.offlineQueue ?? true,
    autoResendUnfulfilledCommands: opts.resend ?? true,
    // Commands wait for the connection instead of failing after 20 attempts (ioredis's default).
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(RETRY_MIN_MS * 2 ** Math.min(times - 1, 20), RETRY_MAX_MS),
    ...(opts.name === undefined ? {} : { connectionName: opts.name }),
  });
  if (opts.unref === true) unrefClient(client);
  return client;
}

/**
 * ioredis has no unref option: each socket it makes (`stream`, assigned as it is created, before
 * it connects) is unref'd as it is assigned, and the redial timer (`reconnectTimeout`) when
 * 'reconnecting' is emitted (on the next tick, after the timer is set).
 */
function unrefClient(client: Redis): void {
  const inner = client as unknown as { reconnectTimeout?: { unref?: () => void } | null };
  let stream: { unref?: () => void } | undefined;
  Object.defineProperty(client, 'stream', {
    configurable: true,
    enumerable: true,
    get: () => stream,
    set: (s: { unref?: () => void } | undefined) => {
      stream = s;
      s?.unref?.();
    },
  });
  client.on('reconnecting', () => inner.reconnectTimeout?.unref?.());
}
