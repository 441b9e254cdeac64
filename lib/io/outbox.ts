/**
 * What is queued for one TCP connection of a socket sink (docs/DESIGN.md §9): batches of whole lines,
 * in order, at most `max` bytes of them. Past that the oldest batches are dropped and counted,
 * so a slow or stalled peer never blocks the logger and never grows memory past its bound; with
 * `markDrops` the peer then gets `{"$dropped":n}` before the next lines. Shared by both modes of
 * the socket sink: one outbox per subscriber (server mode), one for the collector (push mode,
 * where the socket is replaced on each reconnection and the queue waits in between).
 */
import type net from 'node:net';

/** One batch of whole lines (one string shared by every outbox it is pushed to). */
export interface Chunk {
  text: string;
  lines: number;
}

export class Outbox {
  readonly #chunks: Chunk[] = [];
  #bytes = 0;
  #dropped = 0;
  #waiting = false;
  /** The connection lines are written to; `undefined` while there is none (they wait). */
  socket: net.Socket | undefined;
  /** Set at close: the socket is ended once everything queued is written. */
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

/** How long a closing socket sink lets its peers take their last lines before cutting them off. */
export const CLOSE_GRACE_MS = 1000;

/**
 * Sends what `boxes` hold and ends their sockets, waiting until they closed; a peer that has not
 * taken its lines within {@link CLOSE_GRACE_MS} is cut off. The sockets are ref'd meanwhile, so
 * `await log.close()` delivers the last rows before the process may exit.
 */
export async function drainOutboxes(boxes: Iterable<Outbox>): Promise<void> {
  const all = [...boxes];
  const sockets = all.map((b) => b.socket).filter((s): s is net.Socket => s !== undefined && !s.destroyed);
  for (const s of sockets) s.ref();
  for (const b of all) {
    b.ending = true;
    b.pump();
  }
  const grace = setTimeout(() => sockets.forEach((s) => s.destroy()), CLOSE_GRACE_MS);
  await Promise.all(sockets.map((s) => new Promise((r) => (s.destroyed ? r(undefined) : s.once('close', r)))));
  clearTimeout(grace);
}
