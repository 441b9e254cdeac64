/**
 * The socket sink's push mode (`socketSink({connect, source})`, docs/DESIGN.md §6, §9): the sink
 * connects to a collector (`rowlog collect`), sends the token first when there is one, and
 * writes every line (each carrying `$source`) through one outbox that outlives connections:
 * while the collector is away the lines wait there (the oldest dropped past `maxClientBytes`,
 * with a `W_SOCKET_DROPPED` warning) and the sink redials with a doubling delay. The socket is
 * unref'd: a collector that is away never keeps a finished training script alive.
 */
import net from 'node:net';
import type { WarningGate } from '../lib/core/warnings.js';
import { RETRY_MAX_MS, RETRY_MIN_MS } from '../lib/io/listen.js';
import { CLOSE_GRACE_MS, drainOutboxes, Outbox } from '../lib/io/outbox.js';
import type { Chunk } from '../lib/io/outbox.js';
import { Backoff } from '../lib/io/backoff.js';

/** What {@link SocketPush} is built from (checked by the sink). */
export interface SocketPushOptions {
  target: { host: string; port: number };
  token: string | undefined;
  /** The run name sent as `$source` (a valid one-segment name). */
  source: string;
  /** Bytes queued for the collector before the oldest lines are dropped. */
  maxClientBytes: number;
  /** Where the sink's warnings go. */
  gate: WarningGate;
}

export class SocketPush {
  /** Added to every line: its `$source`. */
  readonly meta: string;
  /** Lines always go to the outbox (they wait there while the collector is away). */
  readonly active = true;
  /** Push mode has no subscribers. */
  readonly clients = 0;

  readonly #o: SocketPushOptions;
  readonly #box: Outbox;
  /** Redials after a lost or refused connection: 100 ms doubling to 2 s (lib/io/backoff.ts). */
  readonly #retry = new Backoff(RETRY_MIN_MS, RETRY_MAX_MS);
  /** The connection being set up, until it connects or fails. */
  #dialing: net.Socket | undefined;
  #closing = false;

  constructor(o: SocketPushOptions) {
    this.#o = o;
    this.meta = `,"$source":${JSON.stringify(o.source)}`;
    this.#box = new Outbox(o.maxClientBytes, false);
    this.#dial();
  }

  /** Push mode keeps no backlog. */
  keep(_line: string): void {}

  /** Queues a batch for the collector; warns when the outbox had to drop old lines for it. */
  deliver(chunk: Chunk): void {
    const box = this.#box;
    const before = box.dropped;
    box.push(chunk);
    if (box.dropped > before) {
      const { host, port } = this.#o.target;
      this.#o.gate.warn({
        code: 'W_SOCKET_DROPPED',
        message: `socketSink: the collector at ${host}:${port} is away and ${this.#o.maxClientBytes} bytes are buffered; dropping the oldest rows for it`,
      });
    }
  }

  #dial(): void {
    const { host, port } = this.#o.target;
    const box = this.#box;
    const socket = net.connect({ host, port });
    this.#dialing = socket;
    socket.unref();
    socket.setNoDelay(true);
    socket.once('connect', () => {
      if (this.#dialing === socket) this.#dialing = undefined;
      this.#retry.reset();
      if (this.#o.token !== undefined) socket.write(`${this.#o.token}\n`);
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
      this.#o.gate.warn({ code: 'W_SOCKET_REFUSED', message: `socketSink: the collector at ${host}:${port} refused the connection: ${text.trim()}` }, code);
    });
    socket.on('error', () => undefined); // followed by 'close'
    socket.once('close', () => {
      if (this.#dialing === socket) this.#dialing = undefined;
      if (box.socket === socket) box.attach(undefined);
      if (this.#closing) return;
      this.#retry.schedule(() => this.#dial());
    });
  }

  /** At the sink's end: delivers what is queued (within CLOSE_GRACE_MS per step) and closes. */
  async finish(): Promise<void> {
    this.#closing = true;
    this.#retry.cancel();
    const box = this.#box;
    if (box.socket === undefined && !box.empty) {
      // Not connected at close: a sink ended right after its first rows is usually still
      // connecting, and a collector that was away may be back before the next retry. One
      // last connection gets the rows; only what it cannot deliver is reported lost (issue 9).
      await this.#lastDial();
      if (box.socket === undefined && !box.empty) {
        const { host, port } = this.#o.target;
        this.#o.gate.warn(
          { code: 'W_SOCKET_DROPPED', message: `socketSink: the collector at ${host}:${port} is away at close; ${box.lines} rows buffered for it are lost` },
          'close',
        );
      }
    }
    await drainOutboxes([box]);
  }

  /** At close: waits (≤ CLOSE_GRACE_MS) for the connection under way, or makes one. */
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

  /** The sink was destroyed: everything is cut off now. */
  destroy(): void {
    this.#closing = true;
    this.#retry.cancel();
    this.#box.socket?.destroy();
  }
}
