/**
 * collect(): the other end of push-mode socket sinks (`socketSink({connect, source})`, issue 5).
 * Trainers connect and send NDJSON rows, each with `$source` (its run name), `$table`, `$seq`,
 * `$step`, `$time`, `$level` and data keys. Every source is written into its own run folder
 * `<dir>/<source>` by one Logger with the default file sinks, shared by all connections of that
 * source (reconnects, or several pushers under one name) and closed when the collector closes.
 *
 * Nothing a client sends can crash the collector or write outside `dir`: lines that are not JSON
 * objects, rows without a valid `$source` or with invalid metadata, lines longer than
 * `maxLineLength`, rows a connection repeats (`$seq`) and the partial last line of a connection that
 * ended mid-line are skipped, counted in `counts`, and reported as `'warning'` events once per
 * (code, source), or once per connection before a connection named a valid source.
 *
 * Nor can too many connections (issue 9): every connection holds a file descriptor, and so do
 * the run files, so past `maxConnections` a connection gets one `{"$error":"ERR_TOO_MANY_CONNECTIONS"}`
 * line and is closed (what it sent before reading that line is still written: a socketSink
 * stops sending on the line and retries later, so it loses nothing). Whatever the cap, a
 * connection is also refused when it leaves fewer than `FD_HEADROOM` descriptors below the
 * process's open-files limit, so the run files can still open theirs. Node's own answer to
 * EMFILE at accept (libuv closes the waiting connections unseen) is never reached that way;
 * an accept error that still surfaces is warned once and the server keeps listening.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import split2 from 'split2';
import { isValidName } from '../core/entry.js';
import { isRowlogError, numberOption, optionError } from '../core/errors.js';
import type { RowlogWarning } from '../core/errors.js';
import { Level, toLevel } from '../core/levels.js';
import { acceptClient, checkListen, errorLine, listen } from '../io/listen.js';
import type { ListenOptions } from '../io/listen.js';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { emitWarning, WarningGate } from '../core/warnings.js';
import { lineToRow } from '../format/parse-lines.js';

/** Options of {@link collect}: where to listen (127.0.0.1 by default) and where to write. */
export interface CollectOptions extends ListenOptions {
  /** Folder of run folders: source `s` is written into `<dir>/s`. Created with parents. */
  dir: string;
  /** Longest line accepted, in characters; a longer one is skipped and never held whole in memory. @default 4194304 (4 Mi) */
  maxLineLength?: number;
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

/** A warning of the collector: the source it concerns, when known. */
export interface CollectWarning extends RowlogWarning {
  /** The `$source` of the connection the problem was seen on. */
  source?: string;
}

/**
 * Why lines were not written: `badLine` not a JSON object; `badSource` no valid `$source`;
 * `badMeta` an invalid `$table`, `$level`, `$step` or `$time`; `duplicate` a `$seq` its
 * connection had sent already; `truncated` the partial last line of a connection that ended mid-line; `tooLong`
 * longer than `maxLineLength`; `unwritable` its run folder could not be opened (or `maxSources`).
 */
export type SkipReason = 'badLine' | 'badSource' | 'badMeta' | 'duplicate' | 'truncated' | 'tooLong' | 'unwritable';

/**
 * What the collector has seen so far: `connections` accepted, `refused` (bad token, HTTP, or
 * too many connections; `busy` counts the last alone).
 */
export type CollectCounts = Record<SkipReason | 'rows' | 'connections' | 'refused' | 'busy', number>;

/** How long `close()` lets pushers finish sending before cutting them off; also how long a refused connection may go on sending. */
const CLOSE_GRACE_MS = 1000;

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

/** Most refused connections kept open at once to take what their peer sent before the refusal. */
const MAX_LINGERING = 8;

/** Descriptors kept free for the run files (and Node's own) below the open-files limit `n`. */
const fdHeadroom = (n: number): number => Math.max(16, Math.floor(n / 8));

/** The descriptor number of an accepted socket (Unix; `undefined` where Node does not expose it). */
function socketFd(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** One run folder and its logger (`undefined` when it could not be opened or failed). */
interface Run {
  log: Logger | undefined;
  /** When to try opening the folder again after a failure (ms epoch; Infinity: never). */
  retryAt: number;
}

/**
 * `maxOpenFiles` of each source's file sinks: with up to `maxSources` runs in one process, a
 * sink per run cannot take the default 128 (the pool reopens files to append as they are used).
 */
const SOURCE_OPEN_FILES = 8;

/** One pushing connection. */
interface Conn {
  socket: net.Socket;
  peer: string;
  lines: Transform | undefined;
  /** Set when the socket closed: what split2 still hands over is a partial last line. */
  ending: boolean;
  /** A line was handled already (the first one is checked for HTTP). */
  spoke: boolean;
  /** Refused after it connected (an HTTP request): its further lines are ignored. */
  refused: boolean;
  /** Refused as one too many: written as usual, but not counted against `maxConnections`. */
  busy: boolean;
  /** The last valid `$source` seen on this connection. */
  source: string | undefined;
  /** Last `$seq` written per source by this connection. */
  seqs: Map<string, number>;
  /** Codes already reported for this connection before it named a source. */
  warned: Set<string>;
  /** Resolves once the socket closed and every line of it was handled. */
  done: Promise<void>;
}

/** True while split2 is skipping a line longer than its `maxLength` (its `overflow` field, untyped). */
const overflowing = (lines: Transform | undefined): boolean => (lines as { overflow?: boolean } | undefined)?.overflow === true;

/** The request line of an HTTP/1 request, e.g. `POST / HTTP/1.1`. */
const HTTP_REQUEST = /^[A-Z]+ \S+ HTTP\/\d(\.\d)?\r?$/;

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A collector started by {@link collect}. Emits `'warning'` ({@link CollectWarning}); printed to stderr when nobody listens. */
export class Collector extends EventEmitter {
  /** The folder of run folders (absolute). */
  readonly dir: string;
  /** The bound address. */
  readonly host: string;
  /** The bound port. */
  readonly port: number;
  /** Rows written, lines skipped by reason, connections accepted and refused (bad token, HTTP, too many). */
  readonly counts: CollectCounts = {
    rows: 0,
    connections: 0,
    refused: 0,
    busy: 0,
    badLine: 0,
    badSource: 0,
    badMeta: 0,
    duplicate: 0,
    truncated: 0,
    tooLong: 0,
    unwritable: 0,
  };

  readonly #server: net.Server;
  readonly #token: string | undefined;
  readonly #maxLine: number;
  readonly #maxSources: number;
  readonly #maxConns: number;
  /** Accepted sockets with a descriptor at or above this are refused (open-files limit − headroom). */
  readonly #fdCeiling: number;
  /** Connections open and not refused as busy (what `maxConnections` bounds). */
  #active = 0;
  /** Refused connections still open (read until their peer stops, ≤ CLOSE_GRACE_MS). */
  #lingering = 0;
  readonly #runs = new Map<string, Run>();
  readonly #conns = new Set<Conn>();
  readonly #gate = new WarningGate(this);
  #closing: Promise<void> | undefined;

  /** @internal Use {@link collect}. */
  constructor(
    server: net.Server,
    o: { dir: string; host: string; port: number; token: string | undefined; maxLine: number; maxSources: number; maxConns: number },
  ) {
    super();
    this.#server = server;
    this.dir = o.dir;
    this.host = o.host;
    this.port = o.port;
    this.#token = o.token;
    this.#maxLine = o.maxLine;
    this.#maxSources = o.maxSources;
    this.#maxConns = o.maxConns;
    const limit = openFilesLimit();
    this.#fdCeiling = limit === undefined ? Infinity : limit - fdHeadroom(limit);
    server.on('connection', (socket: net.Socket) => this.#accept(socket));
    // A net.Server keeps listening after an accept error; it is reported once per code, not per
    // connection (EMFILE during a flood would otherwise print a line per attempt).
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EMFILE' || err.code === 'ENFILE') this.#noFds(err.code);
      else this.#gate.warn({ code: 'W_COLLECT_FAILED', message: `collect: server error: ${err.message}` }, String(err.code));
    });
  }

  #noFds(why: string): void {
    this.#gate.warn({
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
    return [...this.#runs].filter(([, r]) => r.log !== undefined).map(([s]) => s);
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
        this.#gate.warn({
          code: 'W_COLLECT_TOO_MANY_CONNECTIONS',
          message: `collect: refused a connection from ${socket.remoteAddress}:${socket.remotePort}: ${why}; further refusals are not reported`,
        });
      }
      socket.on('error', () => undefined);
      // The line, then our end closed. A few refused connections stay open up to CLOSE_GRACE_MS
      // and what their peer sent before reading the line is still written (a socketSink stops
      // sending on the line and retries later, so it loses nothing); beyond those, a flood of
      // refused connections must not hold the descriptors the cap is there to save.
      socket.end(errorLine('ERR_TOO_MANY_CONNECTIONS', `collect: ${why}; try again later`));
      if (this.#lingering >= MAX_LINGERING) {
        socket.once('finish', () => socket.destroy());
        return;
      }
      this.#lingering++;
      socket.once('close', () => this.#lingering--);
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    } else {
      this.counts.connections++;
      this.#active++;
    }
    socket.setKeepAlive(true, 60_000); // a pusher whose machine vanished is noticed eventually
    socket.on('error', () => undefined); // ECONNRESET & co.: 'close' follows and ends the connection
    let closed!: () => void;
    const conn: Conn = {
      socket,
      peer: `${socket.remoteAddress}:${socket.remotePort}`,
      lines: undefined,
      ending: false,
      spoke: false,
      refused: false,
      busy,
      source: undefined,
      seqs: new Map(),
      warned: new Set(),
      done: new Promise((resolve) => (closed = resolve)),
    };
    this.#conns.add(conn);
    socket.once('close', () => {
      this.#conns.delete(conn);
      if (!conn.busy) this.#active--;
      conn.ending = true;
      if (conn.lines === undefined) return closed();
      conn.lines.end(); // a partial last line comes out now and is dropped
      finished(conn.lines).then(closed, closed);
    });
    void acceptClient(socket, this.#token).then((rest) => {
      if (rest === undefined) {
        this.counts.refused++;
        return;
      }
      if (socket.destroyed) return; // closed while the token was checked (only in close())
      const lines = split2((line: string) => this.#line(conn, line), { maxLength: this.#maxLine, skipOverflow: true } as split2.Options);
      conn.lines = lines;
      lines.resume(); // the mapper does the work; nothing is pushed
      const feed = (chunk: Buffer) => {
        const before = overflowing(lines);
        lines.write(chunk);
        if (overflowing(lines) && !before) this.#tooLong(conn);
      };
      if (rest.length > 0) feed(rest);
      socket.on('data', feed);
    });
  }

  #tooLong(conn: Conn): void {
    this.#skip(conn, 'tooLong', 'W_COLLECT_LONG_LINE', `skipped a line longer than ${this.#maxLine} characters`);
  }

  /** Handles one line of `conn` (split2's mapper: returns nothing, never throws). */
  #line(conn: Conn, line: string): undefined {
    try {
      this.#handle(conn, line);
    } catch (err) {
      // Not expected: every check is made before writing. Reported, and the collector goes on.
      this.#skip(conn, 'unwritable', 'W_COLLECT_FAILED', `a row could not be written: ${(err as Error).message}`);
    }
    return undefined;
  }

  #handle(conn: Conn, line: string): void {
    if (conn.refused) return;
    if (!conn.spoke) {
      conn.spoke = true;
      // Any web page can POST to a loopback port (no preflight for a plain-text body); an HTTP
      // request is never a pusher, so its body must not become rows.
      if (HTTP_REQUEST.test(line)) {
        conn.refused = true;
        this.counts.refused++;
        this.#warn({ code: 'W_COLLECT_HTTP', message: `${conn.peer}: refused an HTTP request (a web page trying to write rows?); use a token to keep browsers out entirely` }, conn);
        conn.socket.destroy();
        return;
      }
    }
    if (conn.ending) {
      // The stream ended without a final newline: the sender died mid-line.
      if (overflowing(conn.lines)) return; // already counted as too long
      this.#skip(conn, 'truncated', 'W_COLLECT_TRUNCATED', `a connection ended in the middle of a line; that line was dropped`);
      return;
    }
    if (line.length > this.#maxLine) return this.#tooLong(conn);
    const row = lineToRow(line, (_err, why) => {
      const what = why === 'notJson' ? `not JSON: ${JSON.stringify(line.slice(0, 40))}` : 'not a JSON object';
      this.#skip(conn, 'badLine', 'W_COLLECT_BAD_LINE', `skipped a line that is ${what}`);
    });
    if (row === undefined) return; // blank, or skipped just now
    const { $source, $seq, $table = 'main', $level, $step, $time, ...data } = row;
    if (!isValidName($source, true)) {
      const why = $source === undefined ? 'without a $source' : `whose $source ${JSON.stringify($source)} is not one [A-Za-z0-9_.-] path segment (not '.' or '..')`;
      return this.#skip(conn, 'badSource', 'W_COLLECT_BAD_SOURCE', `skipped a row ${why}`);
    }
    conn.source = $source;
    const run = this.#open($source, conn);
    if (run === undefined) return;
    const log = run.log as Logger;

    // Within one connection a pusher's $seq only grows: a row at or below the last one is a
    // repeat. Across connections nothing is dropped: rowlog's sinks never resend, and several
    // pushers (or a restarted trainer) may share a source, each counting on its own.
    const seq = isFiniteNumber($seq) ? $seq : undefined;
    if (seq !== undefined && seq <= (conn.seqs.get($source) ?? -Infinity)) {
      return this.#skip(conn, 'duplicate', 'W_COLLECT_DUPLICATE', `skipped rows this connection had sent already ($seq ${seq} and below)`);
    }

    let level: number = Level.INFO;
    const bad = (key: string, why: string): void =>
      this.#skip(conn, 'badMeta', 'W_COLLECT_BAD_META', `skipped a row whose ${key} ${why}`, key);
    if (!isValidName($table)) return bad('$table', `${JSON.stringify($table)} is not a valid table name`);
    if ($level !== undefined) {
      try {
        if (typeof $level !== 'number' && typeof $level !== 'string') throw new TypeError('not a level');
        level = toLevel($level, '$level');
      } catch {
        return bad('$level', `${JSON.stringify($level)} is not a level`);
      }
    }
    if ($step !== undefined && !isFiniteNumber($step)) return bad('$step', 'is not a finite number');
    if ($time !== undefined && !isFiniteNumber($time)) return bad('$time', 'is not a finite number');

    // An Entry, not the raw row: a row whose data keys happen to be `table`, `level` and `data`
    // must not be taken for one. Missing $step/$time: the logger numbers and stamps the row.
    log.write({ table: $table, level, step: $step ?? NaN, time: $time ?? NaN, data });
    this.counts.rows++;
    if (seq !== undefined) conn.seqs.set($source, seq);
  }

  /** The run of `source`, opened on first use; `undefined` (reported) when it cannot be written. */
  #open(source: string, conn: Conn): Run | undefined {
    let run = this.#runs.get(source);
    if (run === undefined) {
      if (this.#runs.size >= this.#maxSources) {
        this.#skip(conn, 'unwritable', 'W_COLLECT_TOO_MANY_SOURCES', `skipped a row: already writing ${this.#maxSources} sources (maxSources)`);
        return undefined;
      }
      run = { log: undefined, retryAt: 0 };
      this.#runs.set(source, run);
    }
    // A folder that could not be opened (held by another writer, EACCES) is tried again at most
    // once a second: a lock released later, or a permission fixed, lets the source's rows in.
    if (run.log === undefined && run.retryAt <= Date.now()) {
      try {
        // Each source's sinks keep few files open: a collector writes many runs at once (issue 9).
        const log = createLogger({ dir: path.join(this.dir, source), name: source, console: false, memory: 0, maxOpenFiles: SOURCE_OPEN_FILES });
        log.on('warning', (w: RowlogWarning) => {
          const cw: CollectWarning = { ...w, source, message: `${source}: ${w.message}` };
          emitWarning(this, cw);
        });
        const r = run;
        log.on('error', (err: Error) => {
          r.log = undefined;
          r.retryAt = Infinity;
          this.#warn({ code: 'W_COLLECT_FAILED', message: `${source}: its logger failed (${err.message}); further rows are skipped`, source }, conn);
        });
        run.log = log;
      } catch (err) {
        run.retryAt = Date.now() + 1000;
        const locked = isRowlogError(err) && err.code === 'ERR_RUN_LOCKED';
        this.#warn(
          {
            code: locked ? 'W_COLLECT_RUN_LOCKED' : 'W_COLLECT_RUN_DIR',
            message: `${source}: cannot open its run folder (${(err as Error).message}); its rows are skipped until it can (retried every second)`,
            source,
          },
          conn,
        );
      }
    }
    if (run.log === undefined) this.counts.unwritable++;
    return run.log === undefined ? undefined : run;
  }

  #skip(conn: Conn, reason: SkipReason, code: string, message: string, detail = ''): void {
    this.counts[reason]++;
    const source = conn.source;
    this.#warn(source === undefined ? { code, message: `${conn.peer}: ${message}` } : { code, message: `${source}: ${message}`, source }, conn, detail);
  }

  /** Once per (code, source, detail); before a connection named a source, once per (code, connection). */
  #warn(w: CollectWarning, conn: Conn, detail = ''): void {
    if (w.source !== undefined) this.#gate.warn(w, `${w.source}\0${detail}`);
    else if (!conn.warned.has(w.code)) {
      conn.warned.add(w.code);
      emitWarning(this, w);
    }
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
    await Promise.all([...this.#runs.values()].map((r) => r.log?.close().catch(() => undefined)));
  }
}

/**
 * Starts a collector: listens on `host:port` (127.0.0.1 by default; another address needs a
 * `token` or `allowInsecure`, else `ERR_INSECURE_BIND`) and writes the rows pushed by
 * `socketSink({connect, source})` into `<dir>/<source>`, one run folder per source, with the
 * default file sinks (`<table>.jsonl.gz`, `<table>.csv`). Resolves once listening.
 */
export async function collect(opts: CollectOptions): Promise<Collector> {
  if (typeof opts !== 'object' || opts === null) throw optionError('type', 'options', 'must be an object');
  if (typeof opts.dir !== 'string' || opts.dir === '') throw optionError('type', 'dir', `must be a non-empty string (got ${String(opts.dir)})`);
  const { host, port, token } = checkListen(opts, 'collect');
  const maxLine = numberOption(opts.maxLineLength ?? 4 * 1024 * 1024, 'maxLineLength', { min: 1, integer: true });
  const maxSources = numberOption(opts.maxSources ?? 1000, 'maxSources', { min: 1, integer: true });
  const maxConns = numberOption(opts.maxConnections ?? 256, 'maxConnections', { min: 1, integer: true });
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const server = net.createServer();
  const bound = await listen(server, host, port);
  return new Collector(server, { dir, host, port: bound, token, maxLine, maxSources, maxConns });
}
