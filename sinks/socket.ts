/**
 * socketSink: rows over TCP as NDJSON, for watching a run live (docs/DESIGN.md §6, §9). Two modes share
 * this front: server mode (`port`, ./socket-server.ts) serves subscribers, each getting the last
 * `backlog` rows then live ones, every line carrying `$table` and a `$seq` that grows by one per
 * row over the sink's life; push mode (`connect`, ./socket-push.ts) sends every line, with
 * `$source`, to a collector (`rowlog collect`) and reconnects while it is away.
 *
 * The logger never waits on a socket: `_write` serializes the row once and calls back. Lines
 * are batched per event-loop turn (or every ~64 KiB) and one batch string is shared by every
 * connection. Each connection's outbox (lib/io/outbox.ts) holds at most `maxClientBytes`; past
 * it its oldest batches are dropped and a subscriber then gets `{"$dropped":n}` before the next
 * rows.
 */
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { isEntry, isValidName } from '../lib/core/entry.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { numberOption, objectOption, optionError } from '../lib/core/options.js';
import type { Sink } from '../lib/core/sink.js';
import { WarningGate } from '../lib/core/warnings.js';
import { jsonLine, KeyOrder } from '../lib/format/json-line.js';
import { checkListen, checkToken, parseHostPort } from '../lib/io/listen.js';
import type { ListenOptions } from '../lib/io/listen.js';
import { SocketPush } from './socket-push.js';
import { SocketServer } from './socket-server.js';

/** Options of {@link socketSink}. Server mode takes `port`; push mode takes `connect`. */
export interface SocketSinkOptions extends ListenOptions {
  /**
   * Server mode: TCP port subscribers connect to (0 picks a free one; see `sink.address()`).
   * Binds `host` (127.0.0.1 by default; another address needs `token` or `allowInsecure`).
   */
  port?: number;
  /** Server mode: rows every new subscriber gets first (the most recent ones). @default 1000 */
  backlog?: number;
  /**
   * Bytes queued for one client (or, in push mode, for the collector) before its oldest lines
   * are dropped. @default 4194304 (4 MiB)
   */
  maxClientBytes?: number;
  /** Push mode: `host:port` of a collector (`rowlog collect`). The token, if any, is sent first. */
  connect?: string;
  /** Push mode: the run name sent as `$source` (one `[A-Za-z0-9_.-]` segment). @default `<host>-<pid>` */
  source?: string;
}

/** Largest batch shared by the connections: bounds the step in which lines are dropped. */
const MAX_BATCH = 65536;

/** A sink that serves rows to TCP subscribers or pushes them to a collector (see {@link socketSink}). */
export class SocketSink extends Writable implements Sink {
  readonly #order = new KeyOrder();
  readonly #gate = new WarningGate(this);
  readonly #batchMax: number;
  readonly #mode: SocketServer | SocketPush;
  #seq = 0;
  #batch: string[] = [];
  #batchChars = 0;
  #scheduled: NodeJS.Immediate | undefined;

  constructor(opts: SocketSinkOptions) {
    super({ objectMode: true });
    objectOption(opts);
    const maxClientBytes = numberOption(opts.maxClientBytes ?? 4 * 1024 * 1024, 'maxClientBytes', { min: 1024, integer: true });
    this.#batchMax = Math.min(MAX_BATCH, Math.floor(maxClientBytes / 4));
    if ((opts.connect === undefined) === (opts.port === undefined)) {
      throw optionError('type', 'port', 'give exactly one of port (serve subscribers) and connect (push to a collector)');
    }
    if (opts.connect !== undefined) {
      if (typeof opts.connect !== 'string') throw optionError('type', 'connect', 'must be a string host:port');
      const target = parseHostPort(opts.connect, 'connect');
      const source = opts.source ?? `${hostname()}-${process.pid}`;
      if (!isValidName(source, true)) {
        throw optionError('range', 'source', `must be one [A-Za-z0-9_.-] path segment (got ${JSON.stringify(source)})`);
      }
      this.#mode = new SocketPush({ target, token: checkToken(opts.token), source, maxClientBytes, gate: this.#gate });
      return;
    }
    const { host, port, token } = checkListen(opts, 'socketSink');
    this.#mode = new SocketServer({
      host,
      port,
      token,
      backlog: numberOption(opts.backlog ?? 1000, 'backlog', { min: 0, integer: true }),
      maxClientBytes,
      batchMax: this.#batchMax,
      flushBatch: () => this.#flushBatch(),
      onError: (err) => this.destroy(err),
    });
  }

  /** Server mode: the port, once listening. */
  get port(): number | undefined {
    return this.#mode instanceof SocketServer ? this.#mode.port : undefined;
  }

  /** Server mode: resolves with the bound address once listening (rejects if it could not bind). */
  address(): Promise<{ host: string; port: number }> {
    if (!(this.#mode instanceof SocketServer)) return Promise.reject(optionError('type', 'port', 'address() is for server mode (port)'));
    return this.#mode.listening;
  }

  /** Server mode: how many subscribers are connected now. */
  get clients(): number {
    return this.#mode.clients;
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!isEntry(entry)) {
      callback(new TypeError(`socketSink: expected an Entry {table, level, step, time, data} (got ${String(entry)})`));
      return;
    }
    const mode = this.#mode;
    const line = jsonLine(entry, this.#order, true, `,"$seq":${++this.#seq}${mode.meta}`);
    mode.keep(line);
    if (mode.active) {
      this.#batch.push(line);
      this.#batchChars += line.length;
      if (this.#batchChars >= this.#batchMax) this.#flushBatch();
      else this.#scheduled ??= setImmediate(() => this.#flushBatch());
    }
    callback();
  }

  /** Hands the lines batched so far to every connection's outbox. */
  #flushBatch(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    if (this.#batch.length === 0) return;
    const chunk = { text: this.#batch.join(''), lines: this.#batch.length };
    this.#batch = [];
    this.#batchChars = 0;
    this.#mode.deliver(chunk);
  }

  /** Hands every batched row to the sockets (they send it as fast as the peers read). */
  flush(): Promise<void> {
    this.#flushBatch();
    return Promise.resolve();
  }

  /** Same as {@link flush}: socket writes cannot be made synchronous. */
  flushSync(): void {
    this.#flushBatch();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#flushBatch();
    void this.#mode.finish().then(() => callback());
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#mode.destroy();
    callback(err);
  }
}

/**
 * A sink that sends rows over TCP as NDJSON. With `port`: a server whose subscribers get the
 * last `backlog` rows, then live ones (each with `$table` and `$seq`); read it with
 * `connect()`, `nc`, or `rowlog serve --connect`. With `connect: 'host:port'`: pushes rows
 * (with `$source`) to `rowlog collect`. Throws `ERR_INVALID_OPTION` on bad options and
 * `ERR_INSECURE_BIND` for a non-loopback `host` without `token` or `allowInsecure`.
 */
export function socketSink(opts: SocketSinkOptions): SocketSink {
  return new SocketSink(opts);
}
