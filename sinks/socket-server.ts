/**
 * The socket sink's server mode (`socketSink({port})`, docs/DESIGN.md §6, §9): subscribers connect
 * (sending the token first when there is one) and get the last `backlog` lines, then live ones.
 * Backlog and live lines come from one outbox per client, filled in the same synchronous step
 * (the sink's pending batch is handed out first, so those lines are in the backlog and reach the
 * newcomer once): the switch-over has no gap and no duplicate. The server and the sockets are
 * unref'd: a live view never keeps a finished training script alive.
 */
import net from 'node:net';
import { Ring } from '../lib/core/ring.js';
import { acceptClient, listen } from '../lib/io/listen.js';
import { drainOutboxes, Outbox } from '../lib/io/outbox.js';
import type { Chunk } from '../lib/io/outbox.js';

/** What {@link SocketServer} is built from (checked by the sink). */
export interface SocketServerOptions {
  host: string;
  port: number;
  token: string | undefined;
  /** Lines every new subscriber gets first. */
  backlog: number;
  /** Bytes queued per client before its oldest lines are dropped. */
  maxClientBytes: number;
  /** Largest batch of backlog lines handed to a new client at once. */
  batchMax: number;
  /** Hands the sink's pending batch to the clients (called before a new client is added). */
  flushBatch: () => void;
  /** Could not listen: the sink fails with `err`. */
  onError: (err: Error) => void;
}

export class SocketServer {
  /** Server mode adds nothing to the lines. */
  readonly meta = '';
  /** Resolves with the bound address once listening (rejects if it could not bind). */
  readonly listening: Promise<{ host: string; port: number }>;
  /** The port, once listening. */
  port: number | undefined;

  readonly #server: net.Server;
  readonly #backlog: Ring<string>;
  readonly #clients = new Set<Outbox>();
  /** Connections still sending their token: cut off at once on close. */
  readonly #handshaking = new Set<net.Socket>();
  readonly #o: SocketServerOptions;
  #closing = false;

  constructor(o: SocketServerOptions) {
    this.#o = o;
    this.#backlog = new Ring<string>(o.backlog);
    const server = net.createServer((socket) => this.#accept(socket));
    server.unref();
    this.#server = server;
    this.listening = listen(server, o.host, o.port).then(
      (p) => {
        this.port = p;
        return { host: o.host, port: p };
      },
      (err: Error) => {
        o.onError(err);
        throw err;
      },
    );
    this.listening.catch(() => undefined); // reported through the sink's 'error'
  }

  /** How many subscribers are connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** True when lines written now have somewhere to go besides the backlog. */
  get active(): boolean {
    return this.#clients.size > 0;
  }

  /** Keeps a line written by the sink in the backlog. */
  keep(line: string): void {
    this.#backlog.push(line);
  }

  /** Queues a batch for every subscriber. */
  deliver(chunk: Chunk): void {
    for (const c of this.#clients) c.push(chunk);
  }

  #accept(socket: net.Socket): void {
    socket.unref();
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy()); // a client that vanished is just gone
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#handshaking.add(socket);
    void acceptClient(socket, this.#o.token).then((rest) => {
      this.#handshaking.delete(socket);
      if (rest === undefined || socket.destroyed) return;
      if (this.#closing) {
        socket.destroy();
        return;
      }
      socket.resume(); // what subscribers send after the token is ignored
      this.#o.flushBatch(); // rows not yet sent to the others are in the backlog: no duplicate
      const box = new Outbox(this.#o.maxClientBytes, true);
      this.#clients.add(box);
      socket.once('close', () => this.#clients.delete(box));
      for (const chunk of backlogChunks(this.#backlog, this.#o.batchMax)) box.push(chunk);
      box.attach(socket);
    });
  }

  /** At the sink's end: delivers what is queued (see `drainOutboxes`) and closes the server. */
  async finish(): Promise<void> {
    this.#closing = true;
    for (const s of this.#handshaking) s.destroy(); // no rows promised to them yet
    const server = this.#server;
    const serverClosed = new Promise<void>((r) => (!server.listening ? r() : server.close(() => r())));
    await Promise.all([drainOutboxes(this.#clients), serverClosed]);
  }

  /** The sink was destroyed: everything is cut off now. */
  destroy(): void {
    this.#closing = true;
    this.#server.close();
    for (const s of this.#handshaking) s.destroy();
    for (const c of this.#clients) c.socket?.destroy();
  }
}

/** The backlog's lines, oldest first, as batches of at most `max` characters. */
function backlogChunks(backlog: Ring<string>, max: number): Chunk[] {
  const out: Chunk[] = [];
  let text = '';
  let lines = 0;
  for (let i = 0; i < backlog.length; i++) {
    const line = backlog.at(i);
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
