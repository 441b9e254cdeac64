/**
 * One pushing connection of a collector (issue 5, 9, 11): its lines, cut by the LineSplitter
 * (lib/format/line-split.ts) and each made a row of its source's run, or skipped, counted and
 * reported (lib/net/collect-report.ts). Nothing a client sends can crash the collector or write
 * outside its folder: lines that are not JSON objects, rows without a valid `$source` or with
 * invalid metadata, lines longer than `maxLineLength`, rows the connection repeats (`$seq`), an
 * HTTP request (any web page can POST to a loopback port) and the partial last line of a
 * connection that ended mid-line are skipped. Nor can it hold memory or a descriptor for long
 * (docs/DESIGN.md §6): its partial line counts against the collector's `maxPendingBytes`
 * (lib/net/collect-pending.ts cuts the largest holder), and a connection whose partial line has
 * not ended for `idleTimeoutMs` is closed; both get one `{"$error":…}` line saying why.
 */
import type net from 'node:net';
import { isValidName } from '../core/entry.js';
import { Level, toLevel } from '../core/levels.js';
import { errorLine } from '../io/listen.js';
import { LineSplitter } from '../format/line-split.js';
import { lineToRow } from '../format/parse-lines.js';
import type { CollectReport, Reporter, SkipReason } from './collect-report.js';
import type { PendingBudget, PendingHolder } from './collect-pending.js';
import type { SourceRuns } from './collect-runs.js';

/** How long a connection cut off goes on being read (and ignored) before it is destroyed (as a refused one: collect.ts's REFUSED_GRACE_MS). */
const CUT_GRACE_MS = 5000;

/** The request line of an HTTP/1 request, e.g. `POST / HTTP/1.1`. */
const HTTP_REQUEST = /^[A-Z]+ \S+ HTTP\/\d(\.\d)?\r?$/;


const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** What a connection writes into and reports to: its collector's parts. */
export interface ConnectionContext {
  report: CollectReport;
  runs: SourceRuns;
  /** Longest line accepted, in bytes. */
  maxLine: number;
  /** The bound on every connection's partial line together. */
  pending: PendingBudget;
  /** How long a partial line may stay unfinished before the connection is closed, in ms. */
  idleMs: number;
}

export class PushConnection implements Reporter, PendingHolder {
  readonly socket: net.Socket;
  readonly peer: string;
  /** Refused as one too many: written as usual, but not counted against `maxConnections`. */
  readonly busy: boolean;
  /** The last valid `$source` seen on this connection. */
  source: string | undefined;
  /** Codes already reported for this connection before it named a source. */
  readonly warned = new Set<string>();
  /** Resolves once the socket closed and every line of it was handled. */
  readonly done: Promise<void>;

  readonly #ctx: ConnectionContext;
  #lines: LineSplitter<string> | undefined;
  /** What the pending budget counts for this connection (its splitter's pendingBytes after the last chunk). */
  #told = 0;
  /** The partial line passed maxLine and was counted as too long already. */
  #longCounted = false;
  /** Cut off (idle, or over the pending bound): further bytes are ignored. */
  #cut = false;
  /** Since when the partial line has been waiting for its end (`undefined`: none pending). */
  #partialSince: number | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** A line was handled already (the first one is checked for HTTP). */
  #spoke = false;
  /** Refused after it connected (an HTTP request): its further lines are ignored. */
  #refused = false;
  /** Last `$seq` written per source by this connection. */
  readonly #seqs = new Map<string, number>();

  constructor(socket: net.Socket, busy: boolean, ctx: ConnectionContext) {
    this.socket = socket;
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.busy = busy;
    this.#ctx = ctx;
    let closed!: () => void;
    this.done = new Promise((resolve) => (closed = resolve));
    socket.once('close', () => {
      clearTimeout(this.#idleTimer);
      ctx.pending.remove(this);
      const lines = this.#lines;
      // A partial last line: the sender died mid-line (unless it was counted already, or the
      // collector itself closed it: refused as one too many, cut off, an HTTP request).
      if (lines !== undefined && lines.discard() && !this.#longCounted && !this.#cut && !this.#refused && !this.busy) {
        this.#skip('truncated', 'W_COLLECT_TRUNCATED', `a connection ended in the middle of a line; that line was dropped`);
      }
      closed();
    });
  }

  /** Memory held by this connection's partial line, as last told to the budget. */
  get pendingBytes(): number {
    return this.#told;
  }

  /** The token was accepted: reads lines from here on, starting with `rest` (what came after the token). */
  start(rest: Buffer): void {
    const lines = new LineSplitter<string>(
      {
        onLine: (line) => this.#line(line),
        onLongLine: () => {
          if (this.#longCounted) this.#longCounted = false;
          else this.#tooLong();
        },
      },
      { maxLineBytes: this.#ctx.maxLine, text: true },
    );
    this.#lines = lines;
    this.#ctx.pending.add(this);
    const feed = (chunk: Buffer) => {
      if (this.#cut || this.#refused) return;
      const ended = lines.lineNumber;
      lines.write(chunk);
      if (lines.overLong && !this.#longCounted) {
        this.#longCounted = true; // told as soon as it passes the bound, not when (if ever) it ends
        this.#tooLong();
      }
      if (this.#cut || this.#refused) return;
      const delta = lines.pendingBytes - this.#told;
      this.#told = lines.pendingBytes;
      this.#ctx.pending.change(delta); // may cut this connection or another
      this.#watchIdle(lines.lineNumber !== ended);
    };
    if (rest.length > 0) feed(rest);
    this.socket.on('data', feed);
  }

  /**
   * Arms the idle check while a partial line is pending: measured from when the last line
   * ended (`completed`) or the partial line began; one timer per connection, re-armed for the
   * time left when it fires, so a busy pusher costs no timer churn.
   */
  #watchIdle(completed: boolean): void {
    if (!(this.#lines?.partial ?? false)) {
      this.#partialSince = undefined;
      return;
    }
    if (completed || this.#partialSince === undefined) this.#partialSince = Date.now();
    if (this.#idleTimer !== undefined) return;
    const check = (): void => {
      this.#idleTimer = undefined;
      if (this.#partialSince === undefined || this.#cut || this.socket.destroyed) return;
      const left = this.#partialSince + this.#ctx.idleMs - Date.now();
      if (left > 0) {
        this.#idleTimer = setTimeout(check, left).unref();
        return;
      }
      // Timers run before the loop polls sockets: after a stall of this process the line's end
      // may be waiting unread. Decide after the next poll (setImmediate runs after it).
      const since = this.#partialSince;
      setImmediate(() => {
        if (this.#cut || this.socket.destroyed) return;
        if (this.#partialSince !== since) {
          if (this.#partialSince !== undefined && this.#idleTimer === undefined) this.#idleTimer = setTimeout(check, this.#ctx.idleMs).unref();
          return;
        }
        const s = this.#ctx.idleMs / 1000;
        this.#cutOff('idle', 'W_COLLECT_IDLE', 'ERR_IDLE_TIMEOUT', `closed a connection whose partial line had not ended for ${s} s (idleTimeoutMs)`);
      });
    };
    this.#idleTimer = setTimeout(check, this.#ctx.idleMs).unref();
  }

  /** Over maxPendingBytes and the largest holder: the budget let go of its bytes already. */
  cutForPending(): void {
    const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
    this.#cutOff(
      'pendingFull',
      'W_COLLECT_PENDING_FULL',
      'ERR_PENDING_FULL',
      `closed the connection holding the longest partial line (${mib(this.pendingBytes)}): all partial lines together passed ${mib(this.#ctx.pending.max)} (maxPendingBytes)`,
    );
  }

  /**
   * Drops the partial line and closes the connection with one `{"$error":code}` line. Reported
   * with the source once per source; from a connection that never named one (a flood), once
   * for the whole collector, or a flood of 500 would print 500 lines.
   */
  #cutOff(reason: SkipReason, code: string, errCode: string, message: string): void {
    this.#cut = true;
    clearTimeout(this.#idleTimer);
    this.#ctx.pending.remove(this);
    this.#lines?.discard();
    if (this.source !== undefined) this.#skip(reason, code, message);
    else {
      this.#ctx.report.counts[reason]++;
      this.#ctx.report.warnOnce({ code, message: `collect: ${this.peer}: ${message}; further ones from connections without a source are not reported` });
    }
    // The line, then our end closed; what the peer still sends is read and ignored until it goes
    // or CUT_GRACE_MS (closing a socket with unread bytes resets it, and a reset can lose the
    // line before a busy peer has read it).
    this.socket.end(errorLine(errCode, `collect: ${message}`));
    const linger = setTimeout(() => this.socket.destroy(), CUT_GRACE_MS).unref();
    this.socket.once('close', () => clearTimeout(linger));
  }

  #skip(reason: SkipReason, code: string, message: string, detail = ''): void {
    this.#ctx.report.skip(this, reason, code, message, detail);
  }

  #tooLong(): void {
    this.#skip('tooLong', 'W_COLLECT_LONG_LINE', `skipped a line longer than ${this.#ctx.maxLine} bytes`);
  }

  /** Handles one line (never throws). */
  #line(line: string): undefined {
    try {
      this.#handle(line);
    } catch (err) {
      // Not expected: every check is made before writing. Reported, and the collector goes on.
      this.#skip('unwritable', 'W_COLLECT_FAILED', `a row could not be written: ${(err as Error).message}`);
    }
    return undefined;
  }

  #handle(line: string): void {
    if (this.#refused) return;
    const { report, runs } = this.#ctx;
    if (!this.#spoke) {
      this.#spoke = true;
      // Any web page can POST to a loopback port (no preflight for a plain-text body); an HTTP
      // request is never a pusher, so its body must not become rows.
      if (HTTP_REQUEST.test(line)) {
        this.#refused = true;
        report.counts.refused++;
        report.warn({ code: 'W_COLLECT_HTTP', message: `${this.peer}: refused an HTTP request (a web page trying to write rows?); use a token to keep browsers out entirely` }, this);
        this.socket.destroy();
        return;
      }
    }
    const row = lineToRow(line, (_err, why) => {
      const what = why === 'notJson' ? `not JSON: ${JSON.stringify(line.slice(0, 40))}` : 'not a JSON object';
      this.#skip('badLine', 'W_COLLECT_BAD_LINE', `skipped a line that is ${what}`);
    });
    if (row === undefined) return; // blank, or skipped just now
    const { $source, $seq, $table = 'main', $level, $step, $time, ...data } = row;
    if (!isValidName($source, true)) {
      const why = $source === undefined ? 'without a $source' : `whose $source ${JSON.stringify($source)} is not one [A-Za-z0-9_.-] path segment (not '.' or '..')`;
      return this.#skip('badSource', 'W_COLLECT_BAD_SOURCE', `skipped a row ${why}`);
    }
    this.source = $source;
    const log = runs.open($source, this);
    if (log === undefined) return;

    // Within one connection a pusher's $seq only grows: a row at or below the last one is a
    // repeat. Across connections nothing is dropped: rowlog's sinks never resend, and several
    // pushers (or a restarted trainer) may share a source, each counting on its own.
    const seq = isFiniteNumber($seq) ? $seq : undefined;
    if (seq !== undefined && seq <= (this.#seqs.get($source) ?? -Infinity)) {
      return this.#skip('duplicate', 'W_COLLECT_DUPLICATE', `skipped rows this connection had sent already ($seq ${seq} and below)`);
    }

    let level: number = Level.INFO;
    const bad = (key: string, why: string): void => this.#skip('badMeta', 'W_COLLECT_BAD_META', `skipped a row whose ${key} ${why}`, key);
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
    report.counts.rows++;
    if (seq !== undefined) this.#seqs.set($source, seq);
  }
}
