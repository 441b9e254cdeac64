/**
 * query: jq over JSON text (docs/DESIGN.md §6), built on jq-web's synchronous `raw()`. This file
 * is the Query stream's state machine (chunks in flight, their order, markers taken out of the
 * output); the pieces it drives live apart, each named for what it is:
 * - query-options.ts: the options, checked, the jq flags and prelude they make, the stream's
 *   types and the filter's compile check;
 * - query-line-bound.ts: whole lines out of any chunking, a line over `maxLineBytes` dropped as it
 *   comes (a bad line), so memory stays bounded on `/dev/zero`;
 * - query-chunk-cut.ts: where a streaming chunk ends;
 * - query-texts.ts: JSON texts over many lines (pretty-printed or concatenated) told from JSONL,
 *   and where such text may be cut;
 * - query-whole.ts: whole-input mode (slurp, `-n`, `input`/`inputs`), one jq run;
 * - jq-filter.ts: the jq wrappers and markers; query-worker.ts, query-pool.ts: jq-web instances
 *   and worker threads.
 *
 * How it runs:
 * - **Streaming** (the default): input lines are cut into chunks of `chunkLines` lines and each
 *   chunk is one jq-web call. Fast path: jq parses the chunk itself; only a chunk holding a bad
 *   line fails, and is run again with `-R`, where a wrapper parses every line with `fromjson`
 *   inside `try`, so one bad line does not sink its chunk: it yields a marker string
 *   (`"\u0001ROWLOG:B:<line>\u0002"`) that is removed from the output and counted. The user's
 *   filter runs inside `try … catch`, so a runtime error on one input yields an error marker
 *   instead (a `'jqerror'` event and `onError`) and the other inputs go on; `halt` and
 *   `halt_error` leave a marker too and end the output there (`halted`). Output that holds no
 *   marker is passed on untouched. Empty lines are not inputs. Large inputs run on worker
 *   threads; output order is always the input order.
 * - **JSON texts** that are not one per line: chunks are cut only before a line that starts a
 *   new value at column 0, and a chunk jq cannot parse waits for the next one; what jq still
 *   cannot parse at the end fails like jq (`ERR_BAD_LINE`, jq's message): there are no lines to
 *   skip in such input.
 * - **Whole input**: all text is collected and jq runs once. Limited to `maxInputBytes`.
 *
 * Why one file of ~500 lines: every method reads the same state (the chunks in flight and their
 * order, the line count, `halted`, the reader's backpressure, the idle timer of a live pipe);
 * cut further, each piece would need all of it.
 *
 * Known differences from the jq command: jq-web drops NUL characters from `raw` output; several
 * inputs in whole-input mode share one `input_filename` (the last).
 */
import os from 'node:os';
import { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { RowlogError } from '../core/errors.js';
import { compileMessage, isParseError, LINE_BASE, mayHoldMarker, rawInputFilter, splitMarkers, streamingFilter, wholeFilter, withName } from './jq-filter.js';
import { chunkCut } from './query-chunk-cut.js';
import { LineBound } from './query-line-bound.js';
import { compileFilter, querySettings, type JqRuntimeError, type QueryHalt, type QueryOptions, type QuerySettings, type QueryStream } from './query-options.js';
import { WorkerPool } from './query-pool.js';
import { decideTexts, textsCut } from './query-texts.js';
import { runWhole } from './query-whole.js';
import { jqLoaded, loadJq, runJq, type JqJob, type JqResult } from './query-worker.js';

export type { JqRuntimeError, QueryHalt, QueryOptions, QueryStream } from './query-options.js';

const MAX_BAD_LINES_KEPT = 1000;
/** How long input must pause before the lines waiting for a full chunk are run (#armIdle). */
const IDLE_MS = 50;

/** One chunk in flight: its first line number and its jq result to come. */
interface InFlight {
  firstLine: number;
  result: Promise<JqResult>;
}

class Query extends Duplex implements QueryStream {
  badLineCount = 0;
  readonly badLines: number[] = [];
  errorCount = 0;
  halted: QueryHalt | undefined;
  lastOutput = '';
  lastTruthy: boolean | undefined;

  readonly #userFilter: string;
  readonly #o: QuerySettings;
  #workers: number | undefined;
  #pool: WorkerPool | undefined;
  readonly #decoder = new StringDecoder('utf8');
  readonly #bound: LineBound;
  #parts: string[] = [];
  #partChars = 0;
  #wholeParts: Buffer[] = [];
  /** Streaming JSONL: the lines of the chunk being collected, as bytes. */
  #bparts: Buffer[] = [];
  #partLines = 0;
  #bytes = 0;
  #linesIn = 0;
  readonly #inflight: InFlight[] = [];
  #ready: Promise<void> | undefined;
  /** Streaming jobs: jq parses the lines (fast), else `-R` with markers (slow). */
  #fast: { filter: string; flags: string[] } | undefined;
  #slow: { filter: string; flags: string[] } | undefined;
  /** Undecided until the first line that is not blank: JSONL, or JSON texts over lines. */
  #texts: boolean | undefined;
  /** JSON texts mode: how many characters the last attempt that could not cut or parse had. */
  #tried = 0;
  /** Armed after each write that leaves whole lines waiting for a full chunk (see #armIdle). */
  #idle: NodeJS.Timeout | undefined;
  /** The empty write the idle timer sent: run what waits instead of waiting for more. */
  #flushWanted = false;
  /** push() said the reader is behind; #wake resumes the input when it reads (_read). */
  #full = false;
  #wake: (() => void) | undefined;

  constructor(filter: string, opts: QueryOptions) {
    super({ decodeStrings: true, readableHighWaterMark: 1 << 20 });
    const o = querySettings(filter, opts);
    this.#o = o;
    this.#userFilter = filter;
    this.#workers = o.workers;
    this.#bound = new LineBound(o.maxLineBytes, (n) => this.#badLine(n, `longer than maxLineBytes (${o.maxLineBytes} bytes)`));
    const { pre } = o;
    if (!o.whole) {
      if (o.rawInput) {
        this.#fast = { filter: rawInputFilter(pre, filter, o.marks), flags: ['-R', ...o.flags] };
      } else {
        this.#fast = { filter: wholeFilter(pre, filter, o.marks), flags: o.flags };
        this.#slow = { filter: streamingFilter(pre, filter, o.marks), flags: ['-R', ...o.flags] };
      }
    }
    // jq-web loads on first use (see jqReady): with it loaded, a bad filter throws here; else the
    // check runs as soon as it is, and the stream fails with ERR_JQ before any output.
    const compile = (): void => compileFilter(filter, o);
    if (jqLoaded()) compile();
    else {
      this.#ready = loadJq().then(compile);
      this.#ready.catch(() => undefined); // reported through the stream when it is written to
    }
  }

  override _read(): void {
    // Output is pushed as chunks finish. Backpressure: at most a few chunks in flight (#submit),
    // and once push() says the reader is behind, no new chunk starts until it asks for more.
    this.#full = false;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Resolves when the reader has taken the results pushed so far (at once if it keeps up). */
  #room(): Promise<void> {
    if (!this.#full) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    clearTimeout(this.#idle);
    const callback = (err?: Error | null): void => {
      if (!err) this.#armIdle();
      done(err);
    };
    if (chunk.length === 0 && this.#flushWanted) {
      this.#flushWanted = false;
      this.#flushIdle().then(() => callback(), callback);
      return;
    }
    let text: string;
    try {
      const lines = this.#bound.take(chunk);
      if (this.#o.whole) {
        this.#keep(lines);
        callback();
        return;
      }
      if (this.#byBytes(lines)) {
        (this.#ready ?? Promise.resolve()).then(() => this.#feedBytes(lines)).then(() => callback(), callback);
        return;
      }
      text = this.#decoder.write(lines);
    } catch (err) {
      callback(err as Error);
      return;
    }
    (this.#ready ?? Promise.resolve()).then(() => this.#feed(text)).then(() => callback(), callback);
  }

  /**
   * A live pipe (`tail -f log | rowlog query …`): whole lines that wait for a full chunk are run
   * once no input came for {@link IDLE_MS}, and the results in flight are let out, so each result
   * comes as jq would give it, not at the end or 10,000 lines later (a fast file never idles
   * that long between reads). The timer writes an empty chunk, so this runs in _write's order.
   */
  #armIdle(): void {
    if (this.#o.whole || this.#texts === true || this.halted) return;
    if (this.#bparts.length === 0 && this.#inflight.length === 0) return;
    this.#idle = setTimeout(() => {
      if (this.writableEnded || this.destroyed || this.writableLength > 0) return;
      this.#flushWanted = true;
      this.write(Buffer.alloc(0));
    }, IDLE_MS);
    this.#idle.unref();
  }

  async #flushIdle(): Promise<void> {
    await this.#ready;
    if (this.#bparts.length > 0) await this.#submit(false);
    await this.#drain(0);
  }

  /**
   * True when these whole lines go to jq as the bytes they are (JSONL, `-R`): no UTF-8 decode
   * here and re-encode in the worker. JSON texts over lines are cut as text (#feed).
   */
  #byBytes(lines: Buffer): boolean {
    if (this.#o.rawInput) return true;
    if (this.#texts === undefined && lines.length > 0) {
      this.#texts = decideTexts(lines.subarray(0, 1 << 16).toString('utf8'));
      if (this.#texts === true) {
        // Blank lines seen before the first value: counted, not sent.
        this.#linesIn += this.#partLines;
        this.#bparts = [];
        this.#partLines = 0;
        this.#partChars = 0;
      }
    }
    return this.#texts !== true;
  }

  /** Streaming JSONL as bytes: cuts chunks of `chunkLines` lines or about `chunkChars` bytes. */
  async #feedBytes(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    const next = (i: number) => b.indexOf(10, i);
    for (let from = 0; ; ) {
      const c = chunkCut(next, from, this.#partLines, this.#partChars, this.#o.chunkLines, this.#o.chunkChars);
      if (!c.full) {
        if (from < b.length) this.#bparts.push(from === 0 ? b : b.subarray(from));
        this.#partLines += c.lines;
        this.#partChars += b.length - from;
        return;
      }
      this.#bparts.push(b.subarray(from, c.at + 1));
      this.#partLines += c.lines;
      await this.#submit(false);
      from = c.at + 1;
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    clearTimeout(this.#idle);
    let rest: string;
    try {
      const last = this.#bound.end();
      if (this.#o.whole) {
        this.#keep(last);
        rest = '';
      } else if (this.#byBytes(last)) {
        this.#bparts.push(last);
        rest = '';
      } else rest = this.#decoder.write(last) + this.#decoder.end();
    } catch (err) {
      callback(err as Error);
      return;
    }
    (this.#ready ?? Promise.resolve())
      .then(() => this.#feed(rest))
      .then(async () => {
        if (this.#o.whole) {
          await this.#runWhole();
        } else if (this.#texts === true) {
          await this.#feedTexts(true);
        } else {
          if (this.#parts.length > 0 || this.#bparts.length > 0) await this.#submit(true);
          await this.#drain(0);
        }
        this.#pool?.close();
        this.push(null);
        callback();
      })
      .catch((err: Error) => {
        this.#pool?.close();
        callback(err);
      });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.#idle);
    this.#pool?.close();
    callback(err);
  }

  /** Whole-input mode keeps the bytes as they are (jq-web takes bytes): no decode, no re-encode. */
  #keep(b: Buffer): void {
    if (b.length === 0) return;
    if (this.#texts === undefined && !this.#o.rawInput) this.#texts = decideTexts(b.subarray(0, 1 << 16).toString('utf8'));
    this.#bytes += b.length;
    if (this.#bytes > this.#o.maxInputBytes) {
      throw new RowlogError(
        'ERR_JQ',
        `input is over ${Math.round(this.#o.maxInputBytes / 1048576)} MiB, too large for slurp, -n or input/inputs ` +
          '(jq-web has a 2 GB heap): use a per-row filter, or the jq command',
      );
    }
    this.#wholeParts.push(b);
  }

  /** Takes decoded text: whole-input mode keeps it; streaming cuts chunks of `chunkLines` lines. */
  async #feed(s: string): Promise<void> {
    if (s === '') return;
    if (this.#texts === undefined && !this.#o.rawInput) this.#texts = decideTexts(s);
    if (this.#o.whole || this.#texts === true) {
      this.#bytes += Buffer.byteLength(s);
      if (this.#bytes > this.#o.maxInputBytes) {
        throw new RowlogError(
          'ERR_JQ',
          this.#o.whole
            ? `input is over ${Math.round(this.#o.maxInputBytes / 1048576)} MiB, too large for slurp, -n or input/inputs ` +
                '(jq-web has a 2 GB heap): use a per-row filter, or the jq command'
            : `a JSON text over ${Math.round(this.#o.maxInputBytes / 1048576)} MiB: too large for jq-web's 2 GB heap`,
        );
      }
      this.#parts.push(s);
      this.#partChars += s.length;
      if (this.#texts === true && !this.#o.whole) await this.#feedTexts(false);
      return;
    }
    const next = (i: number) => s.indexOf('\n', i);
    for (let from = 0; ; ) {
      const c = chunkCut(next, from, this.#partLines, this.#partChars, this.#o.chunkLines, this.#o.chunkChars);
      if (!c.full) {
        this.#parts.push(s.slice(from));
        this.#partLines += c.lines;
        this.#partChars += s.length - from;
        return;
      }
      this.#parts.push(s.slice(from, c.at + 1));
      this.#partLines += c.lines;
      await this.#submit(false);
      from = c.at + 1;
    }
  }

  /**
   * JSON texts over many lines: runs jq on what came, cut before the last line that starts a
   * value at column 0; a piece jq cannot parse waits for more text (or, at the end, fails).
   */
  async #feedTexts(last: boolean): Promise<void> {
    if (!last && this.#partChars - this.#tried < this.#o.chunkChars) return;
    const text = this.#parts.join('');
    this.#parts = text === '' ? [] : [text];
    let cut = text.length;
    if (!last) {
      cut = textsCut(text, this.#tried);
      if (cut === -1) {
        this.#tried = text.length;
        return;
      }
    }
    const piece = text.slice(0, cut);
    const base = this.#linesIn;
    const r = await runJq({ input: piece, filter: this.#fastFilter(base), flags: this.#o.flags });
    if (isParseError(r) && !last) {
      this.#tried = text.length; // wait for more before trying again
      return;
    }
    if ('error' in r && isParseError(r)) throw new RowlogError('ERR_BAD_LINE', withName(r.error.stderr, this.#o.filename));
    for (let i = piece.indexOf('\n'); i !== -1; i = piece.indexOf('\n', i + 1)) this.#linesIn++;
    this.#bytes -= Buffer.byteLength(piece);
    const rest = text.slice(cut);
    this.#parts = rest === '' ? [] : [rest];
    this.#partChars = rest.length;
    this.#tried = 0;
    this.#emit(r, base);
    await this.#room();
  }

  #fastFilter(base: number): string {
    return (this.#fast as { filter: string }).filter.replace(LINE_BASE, String(base));
  }

  /** Sends the collected lines to jq (inline or on a worker), then waits while too many are in flight. */
  async #submit(last: boolean): Promise<void> {
    let input: string | Buffer;
    if (this.#bparts.length > 0) {
      // Always a compact copy: posting a view to a worker clones its whole ArrayBuffer.
      input = Buffer.concat(this.#bparts);
      if (last && input.length > 0 && input[input.length - 1] !== 10) input = Buffer.concat([input, Buffer.from('\n')]);
      else if (last) last = false; // it ends with its newline: no line to add
    } else input = this.#parts.join('');
    const firstLine = this.#linesIn + 1;
    this.#linesIn += this.#partLines;
    if (last && typeof input === 'string' && !input.endsWith('\n')) {
      input += '\n';
      this.#linesIn++;
    } else if (last && typeof input !== 'string') this.#linesIn++;
    this.#bparts = [];
    this.#parts = [];
    this.#partLines = 0;
    this.#partChars = 0;
    if (this.halted) return;
    const base = String(firstLine - 1);
    const fast = this.#fast as { filter: string; flags: string[] };
    const job: JqJob = {
      input,
      filter: fast.filter.replace(LINE_BASE, base),
      flags: fast.flags,
      ...(this.#slow ? { fallback: { filter: this.#slow.filter.replace(LINE_BASE, base), flags: this.#slow.flags } } : {}),
    };
    if (this.#workers === undefined && this.#linesIn > this.#o.autoAfter) {
      this.#workers = os.availableParallelism() >= 2 ? 2 : 0;
    }
    if (this.#workers && !this.#pool) this.#pool = new WorkerPool(this.#workers);
    const result = this.#pool ? this.#pool.run(job) : runJq(job);
    // When the stream fails (a bad line under strict) the chunks after it are never awaited, and
    // closing the pool fails them: that must not be an unhandled rejection (it ends the process).
    result.catch(() => undefined);
    this.#inflight.push({ firstLine, result });
    await this.#drain(this.#pool ? 2 * (this.#workers ?? 1) - 1 : 0);
    await this.#room();
  }

  /** Emits finished chunks, in order, until at most `keep` are in flight. */
  async #drain(keep: number): Promise<void> {
    while (this.#inflight.length > keep) {
      const head = this.#inflight.shift() as InFlight;
      const r = await head.result;
      if (!this.halted) this.#emit(r, head.firstLine - 1);
    }
  }

  /** Whole-input mode: one jq run (query-whole.ts). */
  async #runWhole(): Promise<void> {
    const bytes = Buffer.concat(this.#wholeParts);
    this.#wholeParts = [];
    const o = this.#o;
    const r = await runWhole(bytes, {
      filter: wholeFilter(o.pre, this.#userFilter, o.marks).replace(LINE_BASE, '0'),
      flags: o.flags,
      rawInput: o.rawInput,
      slurp: o.slurp,
      texts: this.#texts === true,
      strict: o.strict,
      filename: o.filename,
      badLine: (n) => this.#badLine(n),
    });
    this.#emit(r, 0);
  }

  #badLine(n: number, why = 'not valid JSON'): void {
    if (this.#o.strict) throw new RowlogError('ERR_BAD_LINE', `line ${n}: ${why}`);
    this.badLineCount++;
    if (this.badLines.length < MAX_BAD_LINES_KEPT) this.badLines.push(n);
    this.#o.onBadLine?.(n);
  }

  /** Pushes output text (with `--seq`'s RS before each value) and keeps its end for `-e`. */
  #out(text: string): void {
    if (text === '') return;
    this.lastOutput = (this.lastOutput + text).slice(-64);
    if (!this.push(text)) this.#full = true;
  }

  /** Pushes one jq result, taking markers out (line numbers are `base` + jq's). */
  #emit(r: JqResult, base: number): void {
    if ('error' in r) {
      if (r.error.fault) throw new RowlogError('ERR_JQ', r.error.message);
      throw new RowlogError('ERR_JQ', withName(compileMessage(r.error.stderr), this.#o.filename));
    }
    // jq-web's output lacks the newline after the last result.
    const out = r.out === '' || r.out.endsWith('\n') || this.#o.joined ? r.out : `${r.out}\n`;
    if (!mayHoldMarker(out)) {
      this.#out(out);
      return;
    }
    let kept = '';
    for (const part of splitMarkers(out)) {
      if (typeof part === 'string') {
        kept += part;
        continue;
      }
      if (part.kind === 'B') {
        if (this.#o.strict && kept !== '') this.#out(kept);
        if (this.#o.strict) kept = '';
        this.#badLine(part.num);
      } else if (part.kind === 'S') {
        kept += '\x1e';
      } else if (part.kind === 'T') {
        this.lastTruthy = part.num === 1;
      } else if (part.kind === 'E') {
        const v = JSON.parse(part.json) as unknown;
        const err = { line: part.num, message: typeof v === 'string' ? v : `${JSON.stringify(v)} (not a string)` };
        this.errorCount++;
        this.#o.onError?.(err);
        this.emit('jqerror', err);
      } else {
        this.halted = { code: part.num, message: part.json };
        queueMicrotask(() => this.emit('halt', this.halted));
        break;
      }
    }
    this.#out(kept);
  }

}

/**
 * Resolves once jq-web is loaded in this thread (it loads on first use, not when rowlog is
 * imported). After it, `query()` throws `ERR_JQ` for a bad filter at creation.
 */
export async function jqReady(): Promise<void> {
  await loadJq();
}

/**
 * A Duplex from JSONL text (any chunking) to jq's output text for `filter`. A bad filter throws
 * here (once jq-web is loaded: see {@link jqReady}; before, the stream fails with it), a
 * `RowlogError` `ERR_JQ` with jq's message. Lines that are not JSON are skipped and
 * counted (`badLineCount`, `badLines`, `onBadLine`), or fail the stream with `strict`. A
 * runtime error on one input is a `'jqerror'` event (`{ line, message }`) and the rest go on.
 */
export function query(filter: string, opts: QueryOptions = {}): QueryStream {
  return new Query(filter, opts);
}
