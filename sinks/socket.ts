/**
 * socketSink: rows over TCP as NDJSON, for watching a run live (DESIGN §6, §9).
 *
 * Server mode (`port`): subscribers connect and get the last `backlog` rows, then live ones,
 * each line carrying `$table` and a `$seq` that grows by one per row over the sink's life.
 * Backlog and live rows come from one queue per client, filled in the same synchronous step,
 * so the switch-over has no gap and no duplicate. Push mode (`connect`): the sink connects to
 * a collector (`rowlog collect`), adds `$source` to every line, and reconnects while it is away.
 *
 * The logger never waits on a socket: `_write` serializes the row once and calls back. Lines
 * are batched per event-loop turn (or every ~64 KiB) and one batch string is shared by every
 * client. Each client holds at most `maxClientBytes` queued; past it its oldest batches are
 * dropped and it then gets `{"$dropped":n}` before the next rows. Sockets and the server are
 * unref'd: a live view never keeps a finished training script alive.
 */
import { hostname } from 'node:os';
import net from 'node:net';
import { Writable } from 'node:stream';
import { isEntry, isValidName } from '../lib/core/entry.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { numberOption, optionError } from '../lib/core/errors.js';
import { jsonLine, KeyOrder } from '../lib/format/json-line.js';
import { acceptClient, checkListen, checkToken, listen, parseHostPort, RETRY_MAX_MS, RETRY_MIN_MS } from '../lib/io/listen.js';
import type { ListenOptions } from '../lib/io/listen.js';
import type { Sink } from '../lib/core/sink.js';
import { WarningGate } from '../lib/core/warnings.js';

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

/** Largest batch shared by the clients: bounds the step in which lines are dropped. */
const MAX_BATCH = 65536;
/** How long `end()` waits for clients to take their last lines before closing them. */
const CLOSE_GRACE_MS = 1000;

/** One batch of whole lines. */
interface Chunk {
  text: string;
  lines: number;
}

/**
 * What is queued for one connection: batches in order, at most `max` bytes of them, and how
 * many lines were dropped since the last one written.
 */
class Outbox {
  readonly #chunks: Chunk[] = [];
  #bytes = 0;
  #dropped = 0;
  #waiting = false;
  socket: net.Socket | undefined;
  ending = false;

  constructor(
    readonly max: number,
    readonly markDrops: boolean,
  ) {}

  get empty(): boolean {
    return this.#chunks.length === 0;
  }

  /** Lines queued and not yet handed to a socket. */
  get lines(): number {
    let n = 0;
    for (const c of this.#chunks) n += c.lines;
    return n;
  }

  /** Lines dropped so far and not yet reported. */
  get dropped(): number {
    return this.#dropped;
  }

  push(chunk: Chunk): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.text.length;
    while (this.#bytes > this.max) {
      const old = this.#chunks.shift() as Chunk;
      this.#bytes -= old.text.length;
      this.#dropped += old.lines;
    }
    this.pump();
  }

  /** Writes what is queued while the socket takes it; ends the socket once empty if ending. */
  pump(): void {
    const socket = this.socket;
    if (socket === undefined || this.#waiting || socket.destroyed || !socket.writable) return;
    while (this.#chunks.length > 0) {
      let text = '';
      if (this.#dropped > 0 && this.markDrops) text = `{"$dropped":${this.#dropped}}\n`;
      this.#dropped = 0;
      const chunk = this.#chunks.shift() as Chunk;
      this.#bytes -= chunk.text.length;
      if (!socket.write(text + chunk.text)) {
        this.#waiting = true;
        socket.once('drain', () => {
          this.#waiting = false;
          this.pump();
        });
        return;
      }
    }
    if (this.ending) socket.end();
  }

  /** A new socket (push mode reconnects): nothing is waiting on the old one any more. */
  attach(socket: net.Socket | undefined): void {
    this.socket = socket;
    this.#waiting = false;
    this.pump();
  }
}

/** Fixed-capacity ring of the most recent lines. */
class Backlog {
  readonly #lines: string[] = [];
  #head = 0;

  constructor(readonly cap: number) {}

  push(line: string): void {
    if (this.#lines.length < this.cap) this.#lines.push(line);
    else if (this.cap > 0) {
      this.#lines[this.#head] = line;
      this.#head = (this.#head + 1) % this.cap;
    }
  }

  /** The kept lines, oldest first, as batches of at most `max` characters. */
  chunks(max: number): Chunk[] {
    const out: Chunk[] = [];
    let text = '';
    let lines = 0;
    const n = this.#lines.length;
    for (let i = 0; i < n; i++) {
      const line = this.#lines[(this.#head + i) % n] as string;
      if (lines > 0 && text.length + line.length > max) {
        out.push({ text, lines });
        text = '';
        lines = 0;
      }
      text += line;
      lines++;
    }
    if (lines > 0) out.push({ text, lines });
    return out;
  }
}

/** A sink that serves rows to TCP subscribers or pushes them to a collector (see {@link socketSink}). */
export class SocketSink extends Writable implements Sink {
  readonly #order = new KeyOrder();
  readonly #gate = new WarningGate(this);
  readonly #maxClientBytes: number;
  readonly #batchMax: number;
  readonly #meta: string;
  #seq = 0;
  #batch: string[] = [];
  #batchChars = 0;
  #scheduled: NodeJS.Immediate | undefined;

  // Server mode.
  readonly #server: net.Server | undefined;
  readonly #backlog: Backlog | undefined;
  readonly #clients = new Set<Outbox>();
  /** Connections still sending their token: cut off at once on close. */
  readonly #handshaking = new Set<net.Socket>();
  readonly #listening: Promise<{ host: string; port: number }> | undefined;
  #port: number | undefined;

  // Push mode.
  readonly #target: { host: string; port: number } | undefined;
  readonly #outbox: Outbox | undefined;
  readonly #token: string | undefined;
  #retryMs = RETRY_MIN_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  /** The connection being set up (push mode), until it connects or fails. */
  #dialing: net.Socket | undefined;
  #closing = false;

  constructor(opts: SocketSinkOptions) {
    super({ objectMode: true });
    if (typeof opts !== 'object' || opts === null) throw optionError('type', 'options', 'must be an object');
    this.#maxClientBytes = numberOption(opts.maxClientBytes ?? 4 * 1024 * 1024, 'maxClientBytes', { min: 1024, integer: true });
    this.#batchMax = Math.min(MAX_BATCH, Math.floor(this.#maxClientBytes / 4));
    if ((opts.connect === undefined) === (opts.port === undefined)) {
      throw optionError('type', 'port', 'give exactly one of port (serve subscribers) and connect (push to a collector)');
    }
    if (opts.connect !== undefined) {
      if (typeof opts.connect !== 'string') throw optionError('type', 'connect', 'must be a string host:port');
      this.#target = parseHostPort(opts.connect, 'connect');
      const source = opts.source ?? `${hostname()}-${process.pid}`;
      if (!isValidName(source, true)) {
        throw optionError('range', 'source', `must be one [A-Za-z0-9_.-] path segment (got ${JSON.stringify(source)})`);
      }
      this.#token = checkToken(opts.token);
      this.#meta = `,"$source":${JSON.stringify(source)}`;
      this.#outbox = new Outbox(this.#maxClientBytes, false);
      this.#dial();
      return;
    }
    const { host, port, token } = checkListen(opts, 'socketSink');
    this.#meta = '';
    this.#backlog = new Backlog(numberOption(opts.backlog ?? 1000, 'backlog', { min: 0, integer: true }));
    const server = net.createServer((socket) => this.#accept(socket, token));
    server.unref();
    this.#server = server;
    this.#listening = listen(server, host, port).then(
      (p) => {
        this.#port = p;
        return { host, port: p };
      },
      (err: Error) => {
        this.destroy(err);
        throw err;
      },
    );
    this.#listening.catch(() => undefined); // reported through 'error'
  }

  /** Server mode: the port, once listening. */
  get port(): number | undefined {
    return this.#port;
  }

  /** Server mode: resolves with the bound address once listening (rejects if it could not bind). */
  address(): Promise<{ host: string; port: number }> {
    if (this.#listening === undefined) return Promise.reject(optionError('type', 'port', 'address() is for server mode (port)'));
    return this.#listening;
  }

  /** Server mode: how many subscribers are connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!isEntry(entry)) {
      callback(new TypeError(`socketSink: expected an Entry {table, level, step, time, data} (got ${String(entry)})`));
      return;
    }
    const line = jsonLine(entry, this.#order, true, `,"$seq":${++this.#seq}${this.#meta}`);
    this.#backlog?.push(line);
    if (this.#outbox !== undefined || this.#clients.size > 0) {
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
    const chunk: Chunk = { text: this.#batch.join(''), lines: this.#batch.length };
    this.#batch = [];
    this.#batchChars = 0;
    if (this.#outbox !== undefined) {
      const before = this.#outbox.dropped;
      this.#outbox.push(chunk);
      if (this.#outbox.dropped > before) {
        this.#gate.warn({
          code: 'W_SOCKET_DROPPED',
          message: `socketSink: the collector at ${this.#target?.host}:${this.#target?.port} is away and ${this.#maxClientBytes} bytes are buffered; dropping the oldest rows for it`,
        });
      }
    }
    for (const c of this.#clients) c.push(chunk);
  }

  #accept(socket: net.Socket, token: string | undefined): void {
    socket.unref();
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy()); // a client that vanished is just gone
    if (this.#closing || this.destroyed) {
      socket.destroy();
      return;
    }
    this.#handshaking.add(socket);
    void acceptClient(socket, token).then((rest) => {
      this.#handshaking.delete(socket);
      if (rest === undefined || socket.destroyed) return;
      if (this.#closing || this.destroyed) {
        socket.destroy();
        return;
      }
      socket.resume(); // what subscribers send after the token is ignored
      this.#flushBatch(); // rows not yet sent to the others are in the backlog: no duplicate
      const box = new Outbox(this.#maxClientBytes, true);
      this.#clients.add(box);
      socket.once('close', () => this.#clients.delete(box));
      for (const chunk of (this.#backlog as Backlog).chunks(this.#batchMax)) box.push(chunk);
      box.attach(socket);
    });
  }

  #dial(): void {
    const { host, port } = this.#target as { host: string; port: number };
    const box = this.#outbox as Outbox;
    const socket = net.connect({ host, port });
    this.#dialing = socket;
    socket.unref();
    socket.setNoDelay(true);
    socket.once('connect', () => {
      if (this.#dialing === socket) this.#dialing = undefined;
      this.#retryMs = RETRY_MIN_MS;
      if (this.#token !== undefined) socket.write(`${this.#token}\n`);
      box.attach(socket);
    });
    // A collector only answers to refuse us (a wrong token, or too many connections); it then
    // closes and we retry. It still reads what we sent before the refusal arrived, so from here
    // on the rows wait in the outbox for the next connection instead of going to this one.
    socket.setEncoding('utf8').on('data', (text: string) => {
      if (!text.startsWith('{"$error"')) return;
      if (box.socket === socket) box.attach(undefined);
      socket.end();
      const code = /^\{"\$error":"([A-Z_]+)"/.exec(text)?.[1] ?? '';
      this.#gate.warn({ code: 'W_SOCKET_REFUSED', message: `socketSink: the collector at ${host}:${port} refused the connection: ${text.trim()}` }, code);
    });
    socket.on('error', () => undefined); // followed by 'close'
    socket.once('close', () => {
      if (this.#dialing === socket) this.#dialing = undefined;
      if (box.socket === socket) box.attach(undefined);
      if (this.#closing || this.destroyed) return;
      this.#retryTimer = setTimeout(() => this.#dial(), this.#retryMs);
      this.#retryTimer.unref();
      this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
    });
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
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    for (const s of this.#handshaking) s.destroy(); // no rows promised to them yet
    void this.#finish().then(() => callback());
  }

  /** Delivers what is queued (within CLOSE_GRACE_MS per step) and closes the sockets and the server. */
  async #finish(): Promise<void> {
    const box = this.#outbox;
    if (box !== undefined && box.socket === undefined && !box.empty) {
      // Not connected at close: a sink ended right after its first rows is usually still
      // connecting, and a collector that was away may be back before the next retry. One
      // last connection gets the rows; only what it cannot deliver is reported lost (issue 9).
      await this.#lastDial();
      if (box.socket === undefined && !box.empty) {
        this.#gate.warn(
          { code: 'W_SOCKET_DROPPED', message: `socketSink: the collector at ${this.#target?.host}:${this.#target?.port} is away at close; ${box.lines} rows buffered for it are lost` },
          'close',
        );
      }
    }
    const boxes = box === undefined ? [...this.#clients] : [box];
    const sockets = boxes.map((b) => b.socket).filter((s): s is net.Socket => s !== undefined && !s.destroyed);
    for (const s of sockets) s.ref(); // `await log.close()` delivers the last rows before the process may exit
    for (const b of boxes) {
      b.ending = true;
      b.pump();
    }
    // Peers get CLOSE_GRACE_MS to take their last lines; a stalled one is cut off.
    const grace = setTimeout(() => sockets.forEach((s) => s.destroy()), CLOSE_GRACE_MS);
    const closed = Promise.all(sockets.map((s) => new Promise((r) => (s.destroyed ? r(undefined) : s.once('close', r)))));
    const server = this.#server;
    const serverClosed = new Promise<void>((r) => (server === undefined || !server.listening ? r() : server.close(() => r())));
    await Promise.all([closed, serverClosed]);
    clearTimeout(grace);
  }

  /** Push mode at close: waits (≤ CLOSE_GRACE_MS) for the connection under way, or makes one. */
  #lastDial(): Promise<void> {
    if (this.#dialing === undefined) this.#dial();
    const socket = this.#dialing as net.Socket;
    socket.ref(); // the process waits for this attempt, as it waits for a connected socket
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        socket.destroy(); // too late: its rows are reported lost, so they must not be sent after all
        done();
      }, CLOSE_GRACE_MS);
      socket.once('connect', done).once('close', done);
    });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#server?.close();
    for (const s of this.#handshaking) s.destroy();
    for (const c of this.#clients) c.socket?.destroy();
    this.#outbox?.socket?.destroy();
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
