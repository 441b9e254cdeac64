/**
 * One pushing connection of a collector (issue 5, 9): its lines, split by split2 and each made a
 * row of its source's run, or skipped, counted and reported (lib/net/collect-report.ts). Nothing
 * a client sends can crash the collector or write outside its folder: lines that are not JSON
 * objects, rows without a valid `$source` or with invalid metadata, lines longer than
 * `maxLineLength`, rows the connection repeats (`$seq`), an HTTP request (any web page can POST
 * to a loopback port) and the partial last line of a connection that ended mid-line are skipped.
 */
import type net from 'node:net';
import type { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import split2 from 'split2';
import { isValidName } from '../core/entry.js';
import { Level, toLevel } from '../core/levels.js';
import { lineToRow } from '../format/parse-lines.js';
import type { CollectReport, Reporter, SkipReason } from './collect-report.js';
import type { SourceRuns } from './collect-runs.js';

/** True while split2 is skipping a line longer than its `maxLength` (its `overflow` field, untyped). */
const overflowing = (lines: Transform | undefined): boolean => (lines as { overflow?: boolean } | undefined)?.overflow === true;

/** The request line of an HTTP/1 request, e.g. `POST / HTTP/1.1`. */
const HTTP_REQUEST = /^[A-Z]+ \S+ HTTP\/\d(\.\d)?\r?$/;

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** What a connection writes into and reports to: its collector's parts. */
export interface ConnectionContext {
  report: CollectReport;
  runs: SourceRuns;
  /** Longest line accepted, in characters. */
  maxLine: number;
}

export class PushConnection implements Reporter {
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
  #lines: Transform | undefined;
  /** Set when the socket closed: what split2 still hands over is a partial last line. */
  #ending = false;
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
      this.#ending = true;
      const lines = this.#lines;
      if (lines === undefined) return closed();
      lines.end(); // a partial last line comes out now and is dropped
      finished(lines).then(closed, closed);
    });
  }

  /** The token was accepted: reads lines from here on, starting with `rest` (what came after the token). */
  start(rest: Buffer): void {
    const lines = split2((line: string) => this.#line(line), { maxLength: this.#ctx.maxLine, skipOverflow: true } as split2.Options);
    this.#lines = lines;
    lines.resume(); // the mapper does the work; nothing is pushed
    const feed = (chunk: Buffer) => {
      const before = overflowing(lines);
      lines.write(chunk);
      if (overflowing(lines) && !before) this.#tooLong();
    };
    if (rest.length > 0) feed(rest);
    this.socket.on('data', feed);
  }

  #skip(reason: SkipReason, code: string, message: string, detail = ''): void {
    this.#ctx.report.skip(this, reason, code, message, detail);
  }

  #tooLong(): void {
    this.#skip('tooLong', 'W_COLLECT_LONG_LINE', `skipped a line longer than ${this.#ctx.maxLine} characters`);
  }

  /** Handles one line (split2's mapper: returns nothing, never throws). */
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
    if (this.#ending) {
      // The stream ended without a final newline: the sender died mid-line.
      if (overflowing(this.#lines)) return; // already counted as too long
      this.#skip('truncated', 'W_COLLECT_TRUNCATED', `a connection ended in the middle of a line; that line was dropped`);
      return;
    }
    if (line.length > this.#ctx.maxLine) return this.#tooLong();
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
