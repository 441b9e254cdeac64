/**
 * query: jq over JSON text (docs/DESIGN.md §6), built on jq-web's synchronous `raw()`.
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
 * - **JSON texts** that are not one per line (pretty-printed over many lines, or concatenated
 *   like `{"a":1}{"a":2}`), told by the first line that is not blank: chunks are cut only before
 *   a line that starts a new value at column 0, and a chunk jq cannot parse waits for the next
 *   one; what jq still cannot parse at the end fails like jq (`ERR_BAD_LINE`, jq's message):
 *   there are no lines to skip in such input.
 * - **Whole input** (`slurp`, `nullInput`, or a filter that uses `input`/`inputs`): all text is
 *   collected and jq runs once, exactly as the jq command would. Slurp first lets jq parse the
 *   text itself; only when that fails are lines checked in JS (`JSON.parse`, then jq's parser
 *   for what JSON.parse rejects, e.g. `NaN`) and bad lines blanked out (so jq's line numbers
 *   stay right). Limited to `maxInputBytes`.
 * - A line longer than `maxLineBytes` is never held: its bytes are dropped as they come and it
 *   is a bad line (`ERR_BAD_LINE` under `strict`), so memory stays bounded on `/dev/zero`.
 *
 * Known differences from the jq command: jq-web drops NUL characters from `raw` output; several
 * inputs in whole-input mode share one `input_filename` (the last).
 *
 * Why one file of this size: the Query stream is one state machine (chunks in flight, bad-line
 * markers, whole-input mode, the worker pool's order) that every method reads; the jq wrappers
 * (jq-filter.ts), the jq-web instances (query-worker.ts) and the worker pool (query-pool.ts)
 * live apart.
 */
import os from 'node:os';
import { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { RowlogError } from '../core/errors.js';
import { DEFAULT_MAX_LINE_BYTES } from '../format/line-split.js';
import { booleanOption, functionOption, numberOption, objectOption, optionError, stringRecordOption } from '../core/options.js';
import {
  compileMessage,
  defineUserFilter,
  LINE_BASE,
  mayHoldMarker,
  prelude,
  rawInputFilter,
  splitMarkers,
  streamingFilter,
  wholeFilter,
} from './jq-filter.js';
import { WorkerPool } from './query-pool.js';
import { jqLoaded, loadJq, runJq, runJqSync, type JqJob, type JqResult } from './query-worker.js';

/** Options of {@link query}. */
export interface QueryOptions {
  /** Run the filter once over an array of all input rows (jq `-s`). Needs the whole input in memory. @default false */
  slurp?: boolean;
  /** Print strings without quotes (jq `-r`). @default false */
  raw?: boolean;
  /** One result per line (jq `-c`); `false` pretty-prints like jq without `-c`. @default true */
  compact?: boolean;
  /** Run the filter once with `null` as input; rows are read with `input`/`inputs` (jq `-n`). @default false */
  nullInput?: boolean;
  /** String variables: `{ name: 'v' }` is `$name` (jq `--arg name v`). @default {} */
  args?: Record<string, string>;
  /** JSON variables: `{ n: '3' }` is `$n` = 3 (jq `--argjson n 3`). @default {} */
  jsonArgs?: Record<string, string>;
  /** Called with the 1-based line number of every line that is not JSON (the line is skipped). @default undefined */
  onBadLine?: (lineNumber: number) => void;
  /** Called for every jq runtime error (the input is skipped, the others go on); also a `'jqerror'` event. @default undefined */
  onError?: (err: JqRuntimeError) => void;
  /** A line that is not JSON fails the stream with `RowlogError` `ERR_BAD_LINE` naming the line. @default false */
  strict?: boolean;
  /**
   * Worker threads for streaming mode. `undefined`: none for small inputs, then 2 (none on a
   * single-core machine) once more than `autoWorkersAfterLines` lines came in. Output order is kept.
   * @default undefined (automatic)
   */
  workers?: number;
  /**
   * Characters per jq-web call in streaming mode: a chunk ends at `chunkLines` lines or about
   * this many characters, whichever comes first. Each worker's wasm heap grows to its largest
   * chunk and never shrinks, so this bounds memory for wide rows. @default 1048576
   */
  chunkChars?: number;
  /** Lines per jq-web call in streaming mode. @default 10000 */
  chunkLines?: number;
  /** Automatic workers start after this many input lines. @default 30000 */
  autoWorkersAfterLines?: number;
  /** Whole-input modes (`slurp`, `nullInput`, `input`/`inputs`) refuse more input than this (jq-web has a 2 GB wasm heap). @default 250 MiB */
  maxInputBytes?: number;
  /**
   * A line longer than this many bytes is skipped as it comes (never held in memory) and counted
   * as a bad line (`ERR_BAD_LINE` under `strict`): memory stays bounded whatever the input
   * (`/dev/zero`, a gzip bomb of one line). @default 268435456 (256 MiB)
   */
  maxLineBytes?: number;
  /** Each line is an input string, not JSON (jq `-R`; with `slurp`, the whole text is one string). @default false */
  rawInput?: boolean;
  /** What jq's `input_filename` gives. @default null (as jq for stdin) */
  filename?: string | null;
  /** `$ARGS.positional`, as JSON texts (jq `--args`: pass `JSON.stringify(s)`; `--jsonargs`: the texts). @default [] */
  positionalArgs?: string[];
  /**
   * jq's output flags, passed to jq as they are: `-S` (sort keys), `--tab`, `--indent N`, `-a`
   * (ASCII), `-C`/`-M` (colour on/off), `-j` (join: implies `raw`), and their long forms. @default []
   */
  jqFlags?: string[];
  /** Each output is preceded by an ASCII RS character (jq `--seq`'s output side). @default false */
  seq?: boolean;
  /** What `$ENV` and `env` give. @default process.env */
  env?: Record<string, string | undefined>;
}

/** The output flags {@link QueryOptions.jqFlags} accepts (`--indent` takes a number after it). */
const JQ_OUTPUT_FLAGS = new Set(['-S', '--sort-keys', '--tab', '-a', '--ascii-output', '-C', '--color-output', '-M', '--monochrome-output', '-j', '--join-output', '--indent']);

/** How `halt`/`halt_error` ended the output. */
export interface QueryHalt {
  /** The exit status it asked for (0 for `halt`). */
  code: number;
  /** `halt_error`'s message as JSON text (`null` for `halt`). */
  message: string;
}

/** A jq runtime error on one input (e.g. `.a + 1` where `.a` is a string). */
export interface JqRuntimeError {
  /** The 1-based input line jq was on. */
  line: number;
  /** jq's message, e.g. `string ("x") and number (1) cannot be added`. */
  message: string;
}

/** The Duplex {@link query} returns: JSONL text in, jq's output text out. */
export interface QueryStream extends Duplex {
  /** How many lines were not JSON (skipped). */
  readonly badLineCount: number;
  /** The 1-based numbers of the first 1000 bad lines. */
  readonly badLines: readonly number[];
  /** How many jq runtime errors there were. */
  readonly errorCount: number;
  /** Set when `halt` or `halt_error` ended the output (the rest of the input is read and ignored). */
  readonly halted: QueryHalt | undefined;
  /** The end of the output so far (its last value, for jq's `-e`), '' before any output. */
  readonly lastOutput: string;
}

const MAX_BAD_LINES_KEPT = 1000;

/** One chunk in flight: its first line number and its jq result to come. */
interface InFlight {
  firstLine: number;
  result: Promise<JqResult>;
}

/** The local zone's short name (`strflocaltime("%Z")`). */
function localZone(): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(new Date()).find((p) => p.type === 'timeZoneName')?.value ?? 'UTC';
  } catch {
    return 'UTC';
  }
}

/** True when jq's failure is about its input text (a parse error), not the filter. */
const isParseError = (r: JqResult) => 'error' in r && /^jq: (parse )?error.*(parse|Unfinished|Invalid|Expected|Exceeds depth|Unmatched|Truncated|Potentially truncated|Objects must|Unexpected)/m.test(r.error.stderr);

/** jq-web names the input "inputString": put the file's name in its messages. */
const withName = (msg: string, name: string | null) => msg.replace(/\binputString\b/g, name ?? '<stdin>');

class Query extends Duplex implements QueryStream {
  badLineCount = 0;
  readonly badLines: number[] = [];
  errorCount = 0;
  halted: QueryHalt | undefined;
  lastOutput = '';

  readonly #userFilter: string;
  readonly #pre: string;
  readonly #flags: string[];
  readonly #whole: boolean;
  readonly #slurp: boolean;
  readonly #rawInput: boolean;
  readonly #strict: boolean;
  readonly #seq: boolean;
  readonly #filename: string | null;
  readonly #chunkLines: number;
  readonly #chunkChars: number;
  #partChars = 0;
  readonly #maxInputBytes: number;
  readonly #maxLineBytes: number;
  readonly #autoAfter: number;
  readonly #onBadLine: ((n: number) => void) | undefined;
  readonly #onError: ((e: JqRuntimeError) => void) | undefined;
  #workers: number | undefined;
  #pool: WorkerPool | undefined;
  readonly #decoder = new StringDecoder('utf8');
  #parts: string[] = [];
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
  /** Bytes of the line being received (since the last newline), held in #carry. */
  #carry: Buffer[] = [];
  #carryBytes = 0;
  /** Newlines passed on so far (a too-long line's number is this + 1). */
  #newlines = 0;
  #skipping = false;
  /** JSON texts mode: how many characters the last attempt that could not cut or parse had. */
  #tried = 0;

  constructor(filter: string, opts: QueryOptions) {
    super({ decodeStrings: true, readableHighWaterMark: 1 << 20 });
    if (typeof filter !== 'string') throw optionError('type', 'filter', 'must be a string');
    objectOption(opts);
    const slurp = booleanOption(opts.slurp, 'slurp', false);
    const nullInput = booleanOption(opts.nullInput, 'nullInput', false);
    const raw = booleanOption(opts.raw, 'raw', false);
    this.#strict = booleanOption(opts.strict, 'strict', false);
    this.#rawInput = booleanOption(opts.rawInput, 'rawInput', false);
    this.#seq = booleanOption(opts.seq, 'seq', false);
    const compact = booleanOption(opts.compact, 'compact', true);
    const args = stringRecordOption(opts.args, 'args');
    const jsonArgs = stringRecordOption(opts.jsonArgs, 'jsonArgs');
    for (const [k, v] of Object.entries(jsonArgs)) {
      try {
        JSON.parse(v);
      } catch {
        throw optionError('range', `jsonArgs.${k}`, `must be JSON text (got ${v})`);
      }
    }
    const positional = opts.positionalArgs ?? [];
    if (!Array.isArray(positional)) throw optionError('type', 'positionalArgs', 'must be an array of JSON texts');
    positional.forEach((v, i) => {
      try {
        JSON.parse(v);
      } catch {
        throw optionError('range', `positionalArgs[${i}]`, `must be JSON text (got ${String(v)})`);
      }
    });
    const jqFlags = opts.jqFlags ?? [];
    if (!Array.isArray(jqFlags)) throw optionError('type', 'jqFlags', 'must be an array of jq output flags');
    for (let i = 0; i < jqFlags.length; i++) {
      const f = jqFlags[i];
      if (typeof f !== 'string' || !JQ_OUTPUT_FLAGS.has(f)) throw optionError('range', 'jqFlags', `${String(f)} is not one of ${[...JQ_OUTPUT_FLAGS].join(' ')}`);
      if (f === '--indent') {
        const n = Number(jqFlags[++i]);
        if (!Number.isInteger(n) || n < 0 || n > 7) throw optionError('range', 'jqFlags', '--indent takes a number from 0 to 7');
      }
    }
    if (opts.filename !== undefined && opts.filename !== null && typeof opts.filename !== 'string') throw optionError('type', 'filename', 'must be a string or null');
    this.#filename = opts.filename ?? null;
    const env = opts.env ?? process.env;
    objectOption(env, 'env');
    this.#onBadLine = functionOption(opts.onBadLine, 'onBadLine');
    this.#onError = functionOption(opts.onError, 'onError');
    this.#workers = opts.workers === undefined ? undefined : numberOption(opts.workers, 'workers', { min: 0, max: 64, integer: true });
    this.#chunkLines = numberOption(opts.chunkLines ?? 10_000, 'chunkLines', { min: 1, integer: true });
    this.#chunkChars = numberOption(opts.chunkChars ?? 1 << 20, 'chunkChars', { min: 1 });
    this.#autoAfter = numberOption(opts.autoWorkersAfterLines ?? 30_000, 'autoWorkersAfterLines', { min: 0, integer: true });
    this.#maxInputBytes = numberOption(opts.maxInputBytes ?? 250 * 1024 * 1024, 'maxInputBytes', { min: 0 });
    this.#maxLineBytes = numberOption(opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, 'maxLineBytes', { min: 1, integer: true });

    this.#userFilter = filter;
    this.#slurp = slurp;
    this.#whole = slurp || nullInput || /\binputs?\b/.test(filter);
    const argFlags = [
      ...Object.entries(args).flatMap(([k, v]) => ['--arg', k, v]),
      ...Object.entries(jsonArgs).flatMap(([k, v]) => ['--argjson', k, v]),
    ];
    const outFlags = [...(compact ? ['-c'] : []), ...(raw ? ['-r'] : []), ...jqFlags];
    this.#pre = `${prelude(filter, { jsonArgNames: Object.keys(jsonArgs), positional, filename: this.#filename, env, localZone })}\n`;
    const rawFlag = this.#rawInput ? ['-R'] : [];
    this.#flags = this.#whole
      ? [...(slurp ? ['-s'] : []), ...(nullInput ? ['-n'] : []), ...rawFlag, ...outFlags, ...argFlags]
      : [...outFlags, ...argFlags];
    if (!this.#whole) {
      if (this.#rawInput) {
        this.#fast = { filter: rawInputFilter(this.#pre, filter), flags: ['-R', ...this.#flags] };
      } else {
        this.#fast = { filter: wholeFilter(this.#pre, filter), flags: this.#flags };
        this.#slow = { filter: streamingFilter(this.#pre, filter), flags: ['-R', ...this.#flags] };
      }
    }
    // Compile once, running nothing: jq-web prunes unused defs, so reference it under `if false`.
    const compile = (): void => {
      const check = runJqSync('', `${this.#pre.replace(LINE_BASE, '0')}${defineUserFilter(filter)}if false then __rowlog_f else empty end`, ['-n', ...argFlags]);
      if ('error' in check) {
        if (check.error.fault) throw new RowlogError('ERR_JQ', check.error.message);
        // For jq's own wording and line numbers, compile the bare filter too (it fails as well).
        const bare = runJqSync('', filter, ['-n', ...argFlags]);
        const stderr = 'error' in bare && bare.error.exitCode === 3 ? bare.error.stderr : check.error.stderr;
        throw new RowlogError('ERR_JQ', compileMessage(stderr));
      }
    };
    // jq-web loads on first use (see jqReady): with it loaded, a bad filter throws here; else the
    // check runs as soon as it is, and the stream fails with ERR_JQ before any output.
    if (jqLoaded()) compile();
    else {
      this.#ready = loadJq().then(compile);
      this.#ready.catch(() => undefined); // reported through the stream when it is written to
    }
  }

  override _read(): void {
    // Output is pushed as chunks finish; backpressure is the in-flight limit in _write.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let text: string;
    try {
      const lines = this.#lines(chunk);
      if (this.#whole) {
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
   * True when these whole lines go to jq as the bytes they are (JSONL, `-R`): no UTF-8 decode
   * here and re-encode in the worker. JSON texts over lines are cut as text (#feed).
   */
  #byBytes(lines: Buffer): boolean {
    if (this.#rawInput) return true;
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
    let from = 0;
    for (;;) {
      let at = from - 1;
      let n = 0;
      let full = false;
      for (;;) {
        if (this.#partLines + n >= this.#chunkLines || this.#partChars + (at + 1 - from) >= this.#chunkChars) {
          full = this.#partLines + n > 0;
          break;
        }
        const j = b.indexOf(10, at + 1);
        if (j === -1) break;
        at = j;
        n++;
      }
      if (!full) {
        if (from < b.length) this.#bparts.push(from === 0 ? b : b.subarray(from));
        this.#partLines += n;
        this.#partChars += b.length - from;
        return;
      }
      this.#bparts.push(b.subarray(from, at + 1));
      this.#partLines += n;
      await this.#submit(false);
      from = at + 1;
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    let rest: string;
    try {
      const last = this.#skipping ? this.#tooLong() : Buffer.concat(this.#carry);
      this.#carry = [];
      if (this.#whole) {
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
        if (this.#whole) {
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
    this.#pool?.close();
    callback(err);
  }

  /**
   * The whole lines of `chunk` (with those held from before); holds the last, unfinished one.
   * A line past maxLineBytes is dropped as it comes and passed on as an empty line, so line
   * numbers stay right (docs/DESIGN.md §6: every reader is linear and bounded).
   */
  #lines(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let runStart = 0; // the run of whole lines not yet passed on
    let from = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      const first = from === 0;
      const len = (first ? this.#carryBytes : 0) + nl - from;
      if ((first && this.#skipping) || len > this.#maxLineBytes) {
        if (from > runStart) out.push(chunk.subarray(runStart, from));
        this.#carry = [];
        this.#carryBytes = 0;
        out.push(this.#tooLong());
        runStart = nl + 1;
      } else {
        if (first && this.#carry.length > 0) out.push(...this.#carry);
        if (first) {
          this.#carry = [];
          this.#carryBytes = 0;
        }
        this.#newlines++;
      }
      from = nl + 1;
    }
    if (from > runStart) out.push(chunk.subarray(runStart, from));
    if (from < chunk.length && !this.#skipping) {
      this.#carry.push(from === 0 ? chunk : chunk.subarray(from));
      this.#carryBytes += chunk.length - from;
      if (this.#carryBytes > this.#maxLineBytes) {
        this.#carry = [];
        this.#carryBytes = 0;
        this.#skipping = true;
      }
    }
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** Whole-input mode keeps the bytes as they are (jq-web takes bytes): no decode, no re-encode. */
  #keep(b: Buffer): void {
    if (b.length === 0) return;
    if (this.#texts === undefined && !this.#rawInput) this.#texts = decideTexts(b.subarray(0, 1 << 16).toString('utf8'));
    this.#bytes += b.length;
    if (this.#bytes > this.#maxInputBytes) {
      throw new RowlogError(
        'ERR_JQ',
        `input is over ${Math.round(this.#maxInputBytes / 1048576)} MiB, too large for slurp, -n or input/inputs ` +
          '(jq-web has a 2 GB heap): use a per-row filter, or the jq command',
      );
    }
    this.#wholeParts.push(b);
  }

  /** A too-long line ended: count it (or fail under strict) and stand an empty line in for it. */
  #tooLong(): Buffer {
    this.#skipping = false;
    this.#newlines++;
    this.#badLine(this.#newlines, `longer than maxLineBytes (${this.#maxLineBytes} bytes)`);
    return Buffer.from('\n');
  }

  /** Takes decoded text: whole-input mode keeps it; streaming cuts chunks of `chunkLines` lines. */
  async #feed(s: string): Promise<void> {
    if (s === '') return;
    if (this.#texts === undefined && !this.#rawInput) this.#texts = decideTexts(s);
    if (this.#whole || this.#texts === true) {
      this.#bytes += Buffer.byteLength(s);
      if (this.#bytes > this.#maxInputBytes) {
        throw new RowlogError(
          'ERR_JQ',
          this.#whole
            ? `input is over ${Math.round(this.#maxInputBytes / 1048576)} MiB, too large for slurp, -n or input/inputs ` +
                '(jq-web has a 2 GB heap): use a per-row filter, or the jq command'
            : `a JSON text over ${Math.round(this.#maxInputBytes / 1048576)} MiB: too large for jq-web's 2 GB heap`,
        );
      }
      this.#parts.push(s);
      this.#partChars += s.length;
      if (this.#texts === true && !this.#whole) await this.#feedTexts(false);
      return;
    }
    let from = 0;
    for (;;) {
      // Take whole lines until the chunk has chunkLines lines or about chunkChars characters.
      let at = from - 1;
      let n = 0;
      let full = false;
      for (;;) {
        if (this.#partLines + n >= this.#chunkLines || this.#partChars + (at + 1 - from) >= this.#chunkChars) {
          full = this.#partLines + n > 0;
          break;
        }
        const j = s.indexOf('\n', at + 1);
        if (j === -1) break;
        at = j;
        n++;
      }
      if (!full) {
        this.#parts.push(s.slice(from));
        this.#partLines += n;
        this.#partChars += s.length - from;
        return;
      }
      this.#parts.push(s.slice(from, at + 1));
      this.#partLines += n;
      await this.#submit(false);
      from = at + 1;
    }
  }

  /**
   * JSON texts over many lines: runs jq on what came, cut before the last line that starts a
   * value at column 0; a piece jq cannot parse waits for more text (or, at the end, fails).
   */
  async #feedTexts(last: boolean): Promise<void> {
    if (!last && this.#partChars - this.#tried < this.#chunkChars) return;
    const text = this.#parts.join('');
    this.#parts = text === '' ? [] : [text];
    let cut = text.length;
    if (!last) {
      const re = /\n[^\s}\],:]/g;
      re.lastIndex = Math.max(0, this.#tried - 1);
      let at = -1;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) at = m.index;
      if (at === -1) {
        this.#tried = text.length;
        return;
      }
      cut = at + 1;
    }
    const piece = text.slice(0, cut);
    const base = this.#linesIn;
    const r = await runJq({ input: piece, filter: this.#fastFilter(base), flags: this.#flags });
    if (isParseError(r) && !last) {
      this.#tried = text.length; // wait for more before trying again
      return;
    }
    if ('error' in r && isParseError(r)) throw new RowlogError('ERR_BAD_LINE', withName(r.error.stderr, this.#filename));
    for (let i = piece.indexOf('\n'); i !== -1; i = piece.indexOf('\n', i + 1)) this.#linesIn++;
    this.#bytes -= Buffer.byteLength(piece);
    const rest = text.slice(cut);
    this.#parts = rest === '' ? [] : [rest];
    this.#partChars = rest.length;
    this.#tried = 0;
    this.#emit(r, base);
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
    if (this.#workers === undefined && this.#linesIn > this.#autoAfter) {
      this.#workers = os.availableParallelism() >= 2 ? 2 : 0;
    }
    if (this.#workers && !this.#pool) this.#pool = new WorkerPool(this.#workers);
    const result = this.#pool ? this.#pool.run(job) : runJq(job);
    this.#inflight.push({ firstLine, result });
    await this.#drain(this.#pool ? 2 * (this.#workers ?? 1) - 1 : 0);
  }

  /** Emits finished chunks, in order, until at most `keep` are in flight. */
  async #drain(keep: number): Promise<void> {
    while (this.#inflight.length > keep) {
      const head = this.#inflight.shift() as InFlight;
      const r = await head.result;
      if (!this.halted) this.#emit(r, head.firstLine - 1);
    }
  }

  /** Whole-input mode: one jq run; slurp lets jq parse first, else bad lines are blanked out first. */
  async #runWhole(): Promise<void> {
    const bytes = Buffer.concat(this.#wholeParts);
    this.#wholeParts = [];
    const filter = wholeFilter(this.#pre, this.#userFilter).replace(LINE_BASE, '0');
    if (this.#rawInput || (this.#slurp && bytes.length > 0) || this.#texts === true) {
      const r = await runJq({ input: bytes, filter, flags: this.#flags });
      if (!isParseError(r) || this.#rawInput) {
        this.#emit(r, 0);
        return;
      }
      if (this.#texts === true || this.#strict) {
        const first = this.#texts === true ? undefined : await this.#firstBadLine(bytes.toString('utf8'));
        if (first !== undefined) this.#badLine(first);
        throw new RowlogError('ERR_BAD_LINE', withName('error' in r ? r.error.stderr : '', this.#filename));
      }
    }
    const text = await this.#blankBadLines(bytes.toString('utf8'));
    this.#emit(await runJq({ input: text, filter, flags: this.#flags }), 0);
  }

  /** The lines of `text` that JSON.parse rejects and jq's parser too (it reads NaN, Infinity…). */
  async #suspects(lines: string[]): Promise<number[]> {
    const suspects: number[] = [];
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i] as string;
      if (l.trim() === '') continue;
      try {
        JSON.parse(l);
      } catch {
        suspects.push(i);
      }
    }
    if (suspects.length === 0) return [];
    const verdict = await runJq({ input: suspects.map((i) => lines[i]).join('\n') + '\n', filter: 'try (fromjson | "ok") catch "bad"', flags: ['-R', '-r'] });
    const said = 'out' in verdict ? verdict.out.split('\n') : [];
    return suspects.filter((_, k) => said[k] !== 'ok');
  }

  async #firstBadLine(text: string): Promise<number | undefined> {
    const bad = await this.#suspects(text.split('\n'));
    return bad.length > 0 ? (bad[0] as number) + 1 : undefined;
  }

  async #blankBadLines(text: string): Promise<string> {
    const lines = text.split('\n');
    const bad = await this.#suspects(lines);
    if (bad.length === 0) return text;
    for (const i of bad) {
      this.#badLine(i + 1);
      lines[i] = '';
    }
    return lines.join('\n');
  }

  #badLine(n: number, why = 'not valid JSON'): void {
    if (this.#strict) throw new RowlogError('ERR_BAD_LINE', `line ${n}: ${why}`);
    this.badLineCount++;
    if (this.badLines.length < MAX_BAD_LINES_KEPT) this.badLines.push(n);
    this.#onBadLine?.(n);
  }

  /** Pushes output text (with `--seq`'s RS before each value) and keeps its end for `-e`. */
  #out(text: string): void {
    if (text === '') return;
    if (this.#seq) text = text.replace(/^(?=[^\s}\]])/gm, '\x1e');
    this.lastOutput = (this.lastOutput + text).slice(-64);
    this.push(text);
  }

  /** Pushes one jq result, taking markers out (line numbers are `base` + jq's). */
  #emit(r: JqResult, base: number): void {
    if ('error' in r) {
      if (r.error.fault) throw new RowlogError('ERR_JQ', r.error.message);
      throw new RowlogError('ERR_JQ', withName(compileMessage(r.error.stderr), this.#filename));
    }
    // jq-web's output lacks the newline after the last result.
    const out = r.out === '' || r.out.endsWith('\n') || this.#joined() ? r.out : `${r.out}\n`;
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
        if (this.#strict && kept !== '') this.#out(kept);
        if (this.#strict) kept = '';
        this.#badLine(part.num);
      } else if (part.kind === 'E') {
        const v = JSON.parse(part.json) as unknown;
        const err = { line: part.num, message: typeof v === 'string' ? v : `${JSON.stringify(v)} (not a string)` };
        this.errorCount++;
        this.#onError?.(err);
        this.emit('jqerror', err);
      } else {
        this.halted = { code: part.num, message: part.json };
        break;
      }
    }
    this.#out(kept);
  }

  #joined(): boolean {
    return this.#flags.includes('-j') || this.#flags.includes('--join-output');
  }
}

/**
 * JSONL or JSON texts over lines (docs/DESIGN.md §6), from the first line that is not blank:
 * texts when it is a lone `{` or `[` (jq's pretty output) or holds values back to back
 * (`{"a":1}{"a":2}`); else JSONL (a torn first line of a log is JSONL with a bad line).
 */
function decideTexts(s: string): boolean | undefined {
  const m = /^[ \t\r]*\S[^\n]*(\n|$)/m.exec(s);
  if (m === null || m[1] === '') return undefined; // no whole non-blank line yet
  const line = m[0].trim();
  try {
    JSON.parse(line);
    return false;
  } catch {
    return /^[{[]$/.test(line) || /[}\]]\s*[{[]/.test(line);
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
