/**
 * connect(): a Readable of the rows a socket sink serves (docs/DESIGN.md §6). The server sends its
 * backlog, then live rows, each with a `$seq`; the client remembers the last `$seq` it passed
 * on, so with `reconnect: true` a dropped connection is retried (100 ms doubling to 2 s) and the
 * backlog the server sends again is skipped up to that row: no duplicates. Rows the server
 * dropped for this client (it read too slowly) or that left the backlog while it was away are
 * reported as a `'dropped'` event with their count, never silently. A sink that restarted (a
 * new trainer on the same port, counting `$seq` from 1 again) is told apart by time: the first
 * row after reconnecting has a `$seq` already seen but a later `$time` than the last row passed
 * on. The stream then emits `'restart'` and passes the new sink's rows on.
 */
import net from 'node:net';
import { Readable } from 'node:stream';
import { RowlogError } from '../core/errors.js';
import { numberOption, objectOption, optionError } from '../core/options.js';
import { checkToken, DEFAULT_HOST, RETRY_MAX_MS, RETRY_MIN_MS } from '../io/listen.js';
import { LineSplitter } from '../format/line-split.js';
import { lineToRow } from '../format/parse-lines.js';
import { Backoff } from '../io/backoff.js';
import { connectRedis } from './connect-redis.js';
import type { RedisConnectOptions, RedisRowStream } from './connect-redis.js';

/**
 * Options of {@link connect} for a socket sink. With `redis` instead (a URL, plus `run`, `table`,
 * `since` a stream id, `prefix`, `last`, `follow`: {@link RedisConnectOptions}), connect reads
 * a table's Redis stream (lib/net/connect-redis.ts).
 */
export interface ConnectOptions {
  /** Port of the socket sink. */
  port: number;
  /** Its host. @default '127.0.0.1' */
  host?: string;
  /** The sink's token, sent as the first line. @default none */
  token?: string;
  /** Pass on only rows whose `$seq` is greater (resume after a row already seen). @default 0 */
  since?: number;
  /** Reconnect when the connection is refused or lost, and resume after the last row. @default false */
  reconnect?: boolean;
  /** Rows (and markers) buffered before the socket is paused. @default 1000 */
  highWaterMark?: number;
}

/** The longest line accepted from a server. */
const MAX_LINE = 64 * 1024 * 1024;

/** The stream {@link connect} returns: rows, with `'dropped'` (n) and `'restart'` (the old lastSeq) events. */
export interface RowStream extends Readable {
  /** `$seq` of the last row passed on (0 before the first). */
  readonly lastSeq: number;
}

/**
 * Subscribes to a `socketSink({port})`. Yields each row as an object (`$table`, `$seq`,
 * `$step`, `$time`, `$level`, data keys; NaN and ±Infinity restored). Ends when the server
 * closes, unless `reconnect`; fails with `ERR_BAD_TOKEN` when the server refuses the token,
 * or with the socket error (ECONNREFUSED, …) when not reconnecting. Emits `'dropped'` (n) and,
 * after reconnecting to a sink that restarted, `'restart'` (the last `$seq` of the old one).
 * With `redis`: the rows of one table's Redis stream, backlog then live, resumable by stream id
 * (lib/net/connect-redis.ts).
 */
export function connect(opts: RedisConnectOptions): RedisRowStream;
export function connect(opts: ConnectOptions): RowStream;
export function connect(opts: ConnectOptions | RedisConnectOptions): RowStream | RedisRowStream {
  objectOption(opts);
  if ('redis' in opts && opts.redis !== undefined) return connectRedis(opts);
  return connectSocket(opts as ConnectOptions);
}

function connectSocket(opts: ConnectOptions): RowStream {
  const port = numberOption(opts.port, 'port', { min: 1, max: 65535, integer: true });
  const host = opts.host ?? DEFAULT_HOST;
  if (typeof host !== 'string' || host === '') throw optionError('type', 'host', 'must be a non-empty string');
  const token = checkToken(opts.token);

  let lastSeq = numberOption(opts.since ?? 0, 'since', { min: 0 });
  const reconnect = opts.reconnect === true;

  let socket: net.Socket | undefined;
  // Redials 100 ms doubling to 2 s; the timer keeps the process alive, as a reader waiting for rows expects.
  const retry = new Backoff(RETRY_MIN_MS, RETRY_MAX_MS);
  let resumed = false; // the first row passed on after a reconnection may show a gap
  let fresh = false; // the next row is the first of a reconnection
  let lastTime = -Infinity; // `$time` of the row with `$seq` lastSeq

  const stream = new Readable({
    objectMode: true,
    highWaterMark: numberOption(opts.highWaterMark ?? 1000, 'highWaterMark', { min: 1, integer: true }),
    read() {
      socket?.resume();
    },
    destroy(err, cb) {
      retry.cancel();
      socket?.destroy();
      cb(err);
    },
  }) as RowStream;
  Object.defineProperty(stream, 'lastSeq', { get: () => lastSeq });

  const onLine = (line: string) => {
    const r = lineToRow(line);
    if (r === undefined) return; // a torn or foreign line: not a row
    if (typeof r.$error === 'string') {
      const code = r.$error === 'ERR_BAD_TOKEN' ? 'ERR_BAD_TOKEN' : 'ERR_SINK_IO';
      stream.destroy(new RowlogError(code, `${host}:${port}: ${String(r.message ?? r.$error)}`));
      return;
    }
    if (typeof r.$dropped === 'number') {
      stream.emit('dropped', r.$dropped);
      return;
    }
    const seq = r.$seq;
    if (fresh) {
      // The first row of a new connection: a $seq already passed on but a $time after the last
      // row passed on cannot come from the same sink (its old rows are older): the trainer was
      // restarted and its sink counts from 1 again. Start over instead of skipping its rows.
      fresh = false;
      if (typeof seq === 'number' && seq <= lastSeq && typeof r.$time === 'number' && r.$time > lastTime) {
        stream.emit('restart', lastSeq);
        lastSeq = 0;
        resumed = false;
      }
    }
    if (typeof seq === 'number') {
      if (seq <= lastSeq) return; // seen before this reconnection
      if (resumed && lastSeq > 0 && seq > lastSeq + 1) stream.emit('dropped', seq - lastSeq - 1);
      lastSeq = seq;
      if (typeof r.$time === 'number') lastTime = r.$time;
    }
    resumed = false;
    if (!stream.push(r)) socket?.pause();
  };

  const dial = () => {
    const s = net.connect({ host, port });
    socket = s;
    s.setNoDelay(true);
    s.once('connect', () => {
      retry.reset();
      if (token !== undefined) s.write(`${token}\n`);
    });
    let failure: Error | undefined;
    s.on('error', (err) => (failure = err));
    // The one linear splitter (docs/DESIGN.md §6); a line over MAX_LINE is skipped, never held whole.
    const lines = new LineSplitter<string>({ onLine, onLongLine: () => undefined }, { maxLineBytes: MAX_LINE, text: true });
    s.on('data', (chunk: Buffer) => {
      if (!stream.destroyed) lines.write(chunk);
    });
    s.once('close', () => {
      lines.discard(); // a torn last line is no row
      if (stream.destroyed) return;
      if (!reconnect) {
        if (failure !== undefined) stream.destroy(failure);
        else stream.push(null);
        return;
      }
      resumed = true;
      fresh = true;
      retry.schedule(dial, { ref: true });
    });
  };
  dial();
  return stream;
}
