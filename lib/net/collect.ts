/**
 * collect(): the other end of push-mode socket sinks (`socketSink({connect, source})`, issue 5).
 * Trainers connect and send NDJSON rows, each with `$source` (its run name), `$table`, `$seq`,
 * `$step`, `$time`, `$level` and data keys. Every source is written into its own run folder
 * `<dir>/<source>` (./collect-runs.ts). Each connection's lines are checked and written by
 * ./collect-conn.ts: nothing a client sends can crash the collector or write outside `dir`;
 * what is skipped is counted in `counts` and reported once per (code, source) (./collect-report.ts).
 * This file is the server: who may connect, and closing.
 *
 * Nor can too many connections (issue 9): every connection holds a file descriptor, and so do
 * the run files, so past `maxConnections` a connection gets one `{"$error":"ERR_TOO_MANY_CONNECTIONS"}`
 * line and is closed (what it sent before reading that line is still written: a socketSink
 * stops sending on the line and retries later, so it loses nothing). Whatever the cap, a
 * connection is also refused when it leaves fewer than `FD_HEADROOM` descriptors below the
 * process's open-files limit, so the run files can still open theirs. Node's own answer to
 * EMFILE at accept (libuv closes the waiting connections unseen) is never reached that way;
 * an accept error that still surfaces is warned once and the server keeps listening.
 *
 * Nor can a flood of partial lines (issue 11, docs/DESIGN.md §6): all connections' unfinished
 * lines together stay under `maxPendingBytes` (./collect-pending.ts cuts the largest holder
 * first), and a partial line that has not ended within `idleTimeoutMs` closes its connection.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { numberOption, objectOption, optionError } from '../core/options.js';
import { acceptClient, checkListen, errorLine, listen } from '../io/listen.js';
import type { ListenOptions } from '../io/listen.js';
import { PushConnection } from './collect-conn.js';
import { PendingBudget } from './collect-pending.js';
import { CollectReport } from './collect-report.js';
import type { CollectCounts } from './collect-report.js';
import { SourceRuns } from './collect-runs.js';

export type { CollectCounts, CollectWarning, SkipReason } from './collect-report.js';

/** Options of {@link collect}: where to listen (127.0.0.1 by default) and where to write. */
export interface CollectOptions extends ListenOptions {
  /** Folder of run folders: source `s` is written into `<dir>/s`. Created with parents. */
  dir: string;
  /** Longest line accepted, in bytes (UTF-8); a longer one is skipped and never held whole in memory. @default 4194304 (4 MiB) */
  maxLineLength?: number;
  /**
   * Most bytes all connections' partial (unfinished) lines may hold together. When a chunk takes
   * the sum past it, the connection holding the most is closed with
   * `{"$error":"ERR_PENDING_FULL",…}` and its partial line skipped (`W_COLLECT_PENDING_FULL`),
   * then the next largest, until under the bound. Less than `maxLineLength` lowers the longest
   * line that can get through to this.
   * @default 33554432 (32 MiB)
   */
  maxPendingBytes?: number;
  /**
   * How long a connection may hold a partial line that does not end (no `\n` since the last
   * line ended), in ms; then it is closed with `{"$error":"ERR_IDLE_TIMEOUT",…}` and the line
   * skipped (`W_COLLECT_IDLE`). A connection that has sent whole lines and is quiet is never closed.
   * @default 30000
   */
  idleTimeoutMs?: number;
  /** Most sources (run folders) one collector writes; rows of further sources are skipped. @default 1000 */
  maxSources?: number;
  /**
   * Most connections open at once. One more gets `{"$error":"ERR_TOO_MANY_CONNECTIONS",…}` and
   * is closed (a socketSink retries). Each connection holds a file descriptor, as do the run
   * files of every source; the default leaves most of a 1,024 descriptor limit (`ulimit -n`)
   * to them. Whatever this is, connections are also refused while fewer than 1/8 of the
   * open-files limit (at least 16) remain free.
   * @default 256
   */
  maxConnections?: number;
}

/**
 * The default of `maxPendingBytes`: 32 MiB of partial lines, whatever the number of connections
 * (eight lines of the longest kind at once; a trainer's lines are a few KiB and end at once). Freed
 * lines are garbage until the next GC, so the process can peak at ~1.5× this above its baseline.
 */
const DEFAULT_MAX_PENDING_BYTES = 32 * 1024 * 1024;
/** The default of `idleTimeoutMs`: a trainer's line takes microseconds to send, a stalled one gets half a minute. */
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/** How long `close()` lets pushers finish sending before cutting them off. */
const CLOSE_GRACE_MS = 1000;

/**
 * How long a refused connection is read (its bytes written, or dropped) before it is closed,
 * unless its peer goes first, as a socketSink does on the line. Closing a socket with unread
 * bytes resets it, and a reset can lose the line before a busy peer has read it.
 */
const REFUSED_GRACE_MS = 5000;

/**
 * The soft open-files limit of this process (`ulimit -n`), read from /proc/self/limits
 * (Linux); `undefined` elsewhere or when unlimited. Node has no getrlimit.
 */
function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * Most refused connections kept open at once to take what their peer sent before the refusal
 * (and so that the refusal line reaches a peer that is still sending: closing a socket with
 * unread bytes resets it, and the reset can lose the line); fewer when out of descriptors.
 */
const MAX_LINGERING = 64;
const MAX_LINGERING_NO_FDS = 8;

/** Descriptors kept free for the run files (and Node's own) below the open-files limit `n`. */
const fdHeadroom = (n: number): number => Math.max(16, Math.floor(n / 8));

/** The descriptor number of an accepted socket (Unix; `undefined` where Node does not expose it). */
function socketFd(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** A collector started by {@link collect}. Emits `'warning'` ({@link CollectWarning}); printed to stderr when nobody listens. */
export class Collector extends EventEmitter {
  /** The folder of run folders (absolute). */
  readonly dir: string;
  /** The bound address. */
  readonly host: string;
  /** The bound port. */
  readonly port: number;
  /** Rows written, lines skipped by reason, connections accepted and refused (bad token, HTTP, too many). */
  readonly counts: CollectCounts;

  readonly #server: net.Server;
  readonly #token: string | undefined;
  readonly #maxConns: number;
  /** Accepted sockets with a descriptor at or above this are refused (open-files limit − headroom). */
  readonly #fdCeiling: number;
  /** Connections open and not refused as busy (what `maxConnections` bounds). */
  #active = 0;
  /** Refused connections still open (read until their peer stops, ≤ REFUSED_GRACE_MS). */
  #lingering = 0;
  readonly #report: CollectReport;
  readonly #runs: SourceRuns;
  readonly #maxLine: number;
  readonly #pending: PendingBudget;
  readonly #idleMs: number;
  readonly #conns = new Set<PushConnection>();
  #closing: Promise<void> | undefined;

  /** @internal Use {@link collect}. */
  constructor(
    server: net.Server,
    o: {
      dir: string;
      host: string;
      port: number;
      token: string | undefined;
      maxLine: number;
      maxSources: number;
      maxConns: number;
      maxPending: number;
      idleMs: number;
    },
  ) {
    super();
    this.#server = server;
    this.dir = o.dir;
    this.host = o.host;
    this.port = o.port;
    this.#token = o.token;
    this.#maxLine = o.maxLine;
    this.#maxConns = o.maxConns;
    this.#pending = new PendingBudget(o.maxPending);
    this.#idleMs = o.idleMs;
    this.#report = new CollectReport(this);
    this.counts = this.#report.counts;
    this.#runs = new SourceRuns(o.dir, o.maxSources, this.#report);
    const limit = openFilesLimit();
    this.#fdCeiling = limit === undefined ? Infinity : limit - fdHeadroom(limit);
    server.on('connection', (socket: net.Socket) => this.#accept(socket));
    // A net.Server keeps listening after an accept error; it is reported once per code, not per
    // connection (EMFILE during a flood would otherwise print a line per attempt).
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EMFILE' || err.code === 'ENFILE') this.#noFds(err.code);
      else this.#report.warnOnce({ code: 'W_COLLECT_FAILED', message: `collect: server error: ${err.message}` }, String(err.code));
    });
  }

  #noFds(why: string): void {
    this.#report.warnOnce({
      code: 'W_COLLECT_NO_FDS',
      message: `collect: running out of file descriptors (${why}); new connections are refused until some close (raise \`ulimit -n\` or lower maxConnections)`,
    });
  }

  /** `host:port`, as `socketSink({connect})` takes it. */
  get address(): string {
    return net.isIPv6(this.host) ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** The sources written so far (their run folders are `<dir>/<source>`). */
  sources(): string[] {
    return this.#runs.sources();
  }

  /** Connections open now. */
  get connections(): number {
    return this.#conns.size;
  }

  #accept(socket: net.Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    const fd = socketFd(socket);
    const noFds = fd !== undefined && fd >= this.#fdCeiling;
    const busy = noFds || this.#active >= this.#maxConns;
    if (busy) {
      this.counts.refused++;
      this.counts.busy++;
      const why = noFds ? 'out of file descriptors' : `${this.#maxConns} connections are open (maxConnections)`;
      if (noFds) this.#noFds(`a connection got descriptor ${fd}; the last ones below the limit are kept for the run files`);
      else {
        this.#report.warnOnce({
          code: 'W_COLLECT_TOO_MANY_CONNECTIONS',
          message: `collect: refused a connection from ${socket.remoteAddress}:${socket.remotePort}: ${why}; further refusals are not reported`,
        });
      }
      socket.on('error', () => undefined);
      // The line, then our end closed. A few refused connections stay open up to REFUSED_GRACE_MS
      // and what their peer sent before reading the line is still written (a socketSink stops
      // sending on the line and retries later, so it loses nothing). Beyond those, what they send
      // is read and thrown away until they go (or REFUSED_GRACE_MS), so that the line reaches them
      // (closing a socket with unread bytes resets it, which can lose the line); out of
      // descriptors, they are closed at once: a flood of refused connections must not hold the
      // descriptors the cap is there to save.
      socket.end(errorLine('ERR_TOO_MANY_CONNECTIONS', `collect: ${why}; try again later`));
      if (this.#lingering >= (noFds ? MAX_LINGERING_NO_FDS : MAX_LINGERING)) {
        if (noFds) socket.once('finish', () => socket.destroy());
        else {
          socket.resume(); // no 'data' listener: read and dropped
          socket.once('end', () => socket.destroy());
          const timer = setTimeout(() => socket.destroy(), REFUSED_GRACE_MS).unref();
          socket.once('close', () => clearTimeout(timer));
        }
        return;
      }
      this.#lingering++;
      socket.once('close', () => this.#lingering--);
      const linger = setTimeout(() => socket.destroy(), REFUSED_GRACE_MS).unref();
      socket.once('close', () => clearTimeout(linger));
    } else {
      this.counts.connections++;
      this.#active++;
    }
    socket.setKeepAlive(true, 60_000); // a pusher whose machine vanished is noticed eventually
    socket.on('error', () => undefined); // ECONNRESET & co.: 'close' follows and ends the connection
    const conn = new PushConnection(socket, busy, {
      report: this.#report,
      runs: this.#runs,
      maxLine: this.#maxLine,
      pending: this.#pending,
      idleMs: this.#idleMs,
    });
    this.#conns.add(conn);
    socket.once('close', () => {
      this.#conns.delete(conn);
      if (!conn.busy) this.#active--;
    });
    void acceptClient(socket, this.#token).then((rest) => {
      if (rest === undefined) {
        this.counts.refused++;
        return;
      }
      if (socket.destroyed) return; // closed while the token was checked (only in close())
      conn.start(rest);
    });
  }

  /**
   * Stops accepting, lets connected pushers finish what they are sending (up to 1 s, then cuts
   * them off), and closes every run so its files end cleanly and `status.json` says closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const conns = [...this.#conns];
    for (const c of conns) c.socket.end();
    const grace = setTimeout(() => conns.forEach((c) => c.socket.destroy()), CLOSE_GRACE_MS);
    await Promise.all(conns.map((c) => c.done));
    clearTimeout(grace);
    await serverClosed;
    await this.#runs.close();
  }
}

/**
 * Starts a collector: listens on `host:port` (127.0.0.1 by default; another address needs a
 * `token` or `allowInsecure`, else `ERR_INSECURE_BIND`) and writes the rows pushed by
 * `socketSink({connect, source})` into `<dir>/<source>`, one run folder per source, with the
 * default file sinks (`<table>.jsonl.gz`, `<table>.csv`). Resolves once listening.
 */
export async function collect(opts: CollectOptions): Promise<Collector> {
  objectOption(opts);
  if (typeof opts.dir !== 'string' || opts.dir === '') throw optionError('type', 'dir', `must be a non-empty string (got ${String(opts.dir)})`);
  const { host, port, token } = checkListen(opts, 'collect');
  const maxLine = numberOption(opts.maxLineLength ?? 4 * 1024 * 1024, 'maxLineLength', { min: 1, integer: true });
  const maxSources = numberOption(opts.maxSources ?? 1000, 'maxSources', { min: 1, integer: true });
  const maxConns = numberOption(opts.maxConnections ?? 256, 'maxConnections', { min: 1, integer: true });
  const maxPending = numberOption(opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES, 'maxPendingBytes', { min: 1, integer: true });
  const idleMs = numberOption(opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, 'idleTimeoutMs', { min: 1, max: 2 ** 31 - 1, integer: true });
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const server = net.createServer();
  const bound = await listen(server, host, port);
  return new Collector(server, { dir, host, port: bound, token, maxLine, maxSources, maxConns, maxPending, idleMs });
}
