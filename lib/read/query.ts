/**
 * query: jq over JSONL text (docs/DESIGN.md §6), built on jq-web's synchronous `raw()`.
 *
 * How it runs:
 * - **Streaming** (the default): input lines are cut into chunks of `chunkLines` lines and each
 *   chunk is one `raw(text, wrapped, ['-R', …])` call. The wrapper parses every line with
 *   `fromjson` inside `try`, so one bad line does not sink its chunk: it yields a marker string
 *   (`"\u0001ROWLOG:B:<line>"`) that is removed from the output and counted. The user's filter
 *   runs inside `try … catch`, so a runtime error on one input yields an error marker instead
 *   (reported as a `'jqerror'` event and to `onError`) and the other inputs go on. Output that
 *   holds no marker is passed on untouched (the fast path). Empty lines are not inputs.
 *   Large inputs run on worker threads; output order is always the input order.
 * - **Whole input** (`slurp`, `nullInput`, or a filter that uses `input`/`inputs`): all lines
 *   are collected, checked in JS (`JSON.parse`, then jq's own parser for what JSON.parse
 *   rejects, e.g. `NaN`), bad lines are blanked out (so jq's line numbers stay right) and jq runs
 *   once, without `-R`, exactly as the jq command would. Limited to `maxInputBytes`.
 *
 * Known difference from the jq command: jq-web drops NUL characters from `raw` output.
 *
 * Why one file of ~380 lines: the Query stream is one state machine (chunks in flight, bad-line
 * markers, whole-input mode, the worker pool's order) that every method reads; the jq wrappers
 * (jq-filter.ts) and the worker pool (query-pool.ts) live apart.
 */
import os from 'node:os';
import { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { RowlogError } from '../core/errors.js';
import { booleanOption, functionOption, numberOption, objectOption, optionError, stringRecordOption } from '../core/options.js';
import { compileMessage, defineUserFilter, JSON_MARK, MARK, streamingFilter, wholeFilter } from './jq-filter.js';
import { WorkerPool } from './query-pool.js';
import { jqLoaded, loadJq, runJq, type JqJob, type JqResult } from './query-worker.js';

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
}

const MAX_BAD_LINES_KEPT = 1000;

/** One chunk in flight: its first line number and its jq result to come. */
interface InFlight {
  firstLine: number;
  result: Promise<JqResult>;
}

class Query extends Duplex implements QueryStream {
  badLineCount = 0;
  readonly badLines: number[] = [];
  errorCount = 0;

  readonly #filter: string;
  readonly #flags: string[];
  readonly #whole: boolean;
  readonly #raw: boolean;
  readonly #strict: boolean;
  readonly #chunkLines: number;
  readonly #chunkChars: number;
  #partChars = 0;
  readonly #maxInputBytes: number;
  readonly #autoAfter: number;
  readonly #onBadLine: ((n: number) => void) | undefined;
  readonly #onError: ((e: JqRuntimeError) => void) | undefined;
  #workers: number | undefined;
  #pool: WorkerPool | undefined;
  readonly #decoder = new StringDecoder('utf8');
  #parts: string[] = [];
  #partLines = 0;
  #bytes = 0;
  #linesIn = 0;
  readonly #inflight: InFlight[] = [];
  #ready: Promise<void> | undefined;
  #fast: { filter: string; flags: string[] } | undefined;

  constructor(filter: string, opts: QueryOptions) {
    super({ decodeStrings: true, readableHighWaterMark: 1 << 20 });
    if (typeof filter !== 'string') throw optionError('type', 'filter', 'must be a string');
    objectOption(opts);
    const slurp = booleanOption(opts.slurp, 'slurp', false);
    const nullInput = booleanOption(opts.nullInput, 'nullInput', false);
    this.#raw = booleanOption(opts.raw, 'raw', false);
    this.#strict = booleanOption(opts.strict, 'strict', false);
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
    this.#onBadLine = functionOption(opts.onBadLine, 'onBadLine');
    this.#onError = functionOption(opts.onError, 'onError');
    this.#workers = opts.workers === undefined ? undefined : numberOption(opts.workers, 'workers', { min: 0, max: 64, integer: true });
    this.#chunkLines = numberOption(opts.chunkLines ?? 10_000, 'chunkLines', { min: 1, integer: true });
    this.#chunkChars = numberOption(opts.chunkChars ?? 1 << 20, 'chunkChars', { min: 1 });
    this.#autoAfter = numberOption(opts.autoWorkersAfterLines ?? 30_000, 'autoWorkersAfterLines', { min: 0, integer: true });
    this.#maxInputBytes = numberOption(opts.maxInputBytes ?? 250 * 1024 * 1024, 'maxInputBytes', { min: 0 });

    this.#whole = slurp || nullInput || /\binputs?\b/.test(filter);
    const argFlags = [
      ...Object.entries(args).flatMap(([k, v]) => ['--arg', k, v]),
      ...Object.entries(jsonArgs).flatMap(([k, v]) => ['--argjson', k, v]),
    ];
    const outFlags = [...(compact ? ['-c'] : []), ...(this.#raw ? ['-r'] : [])];
    this.#flags = this.#whole
      ? [...(slurp ? ['-s'] : []), ...(nullInput ? ['-n'] : []), ...outFlags, ...argFlags]
      : ['-R', ...outFlags, ...argFlags];
    this.#filter = this.#whole ? wholeFilter(filter) : streamingFilter(filter);
    // Fast path for streaming chunks: jq parses the lines itself (twice as fast as `-R` with
    // `fromjson`); only a chunk holding a bad line fails, and is run again the `-R` way.
    if (!this.#whole) this.#fast = { filter: wholeFilter(filter), flags: [...outFlags, ...argFlags] };
    // Compile once, running nothing: jq-web prunes unused defs, so reference it under `if false`.
    const compile = (): void => {
      const check = runJq({ input: '', filter: `${defineUserFilter(filter)}if false then __rowlog_f else empty end`, flags: ['-n', ...argFlags] });
      if ('error' in check) {
        // For jq's own wording and line numbers, compile the bare filter too (it fails as well).
        const bare = runJq({ input: '', filter, flags: ['-n', ...argFlags] });
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
    const text = this.#decoder.write(chunk);
    (this.#ready ?? Promise.resolve()).then(() => this.#feed(text)).then(() => callback(), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    const rest = this.#decoder.end();
    (this.#ready ?? Promise.resolve())
      .then(() => this.#feed(rest))
      .then(async () => {
        if (this.#whole) {
          this.#runWhole();
        } else {
          if (this.#parts.length > 0) await this.#submit(true);
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

  /** Takes decoded text: whole-input mode keeps it; streaming cuts chunks of `chunkLines` lines. */
  async #feed(s: string): Promise<void> {
    if (s === '') return;
    if (this.#whole) {
      this.#bytes += Buffer.byteLength(s);
      if (this.#bytes > this.#maxInputBytes) {
        throw new RowlogError(
          'ERR_JQ',
          `input is over ${Math.round(this.#maxInputBytes / 1048576)} MiB, too large for slurp, -n or input/inputs ` +
            '(jq-web has a 2 GB heap): use a per-row filter, or the jq command',
        );
      }
      this.#parts.push(s);
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

  /** Sends the collected lines to jq (inline or on a worker), then waits while too many are in flight. */
  async #submit(last: boolean): Promise<void> {
    let input = this.#parts.join('');
    const firstLine = this.#linesIn + 1;
    this.#linesIn += this.#partLines;
    if (last && !input.endsWith('\n')) {
      input += '\n';
      this.#linesIn++;
    }
    this.#parts = [];
    this.#partLines = 0;
    this.#partChars = 0;
    const slow = { filter: this.#filter, flags: this.#flags };
    const job: JqJob = this.#fast ? { input, ...this.#fast, fallback: slow } : { input, ...slow };
    if (this.#workers === undefined && this.#linesIn > this.#autoAfter) {
      this.#workers = os.availableParallelism() >= 2 ? 2 : 0;
    }
    if (this.#workers && !this.#pool) this.#pool = new WorkerPool(this.#workers);
    const result = this.#pool ? this.#pool.run(job) : Promise.resolve(runJq(job));
    this.#inflight.push({ firstLine, result });
    await this.#drain(this.#pool ? 2 * (this.#workers ?? 1) - 1 : 0);
  }

  /** Emits finished chunks, in order, until at most `keep` are in flight. */
  async #drain(keep: number): Promise<void> {
    while (this.#inflight.length > keep) {
      const head = this.#inflight.shift() as InFlight;
      this.#emit(await head.result, head.firstLine - 1);
    }
  }

  /** Whole-input mode: blanks bad lines out, then one jq run. */
  #runWhole(): void {
    const lines = this.#parts.join('').split('\n');
    this.#parts = [];
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
    if (suspects.length > 0) {
      // jq's own parser has the last word (it reads NaN, Infinity…).
      const verdict = runJq({
        input: suspects.map((i) => lines[i]).join('\n') + '\n',
        filter: 'try (fromjson | "ok") catch "bad"',
        flags: ['-R', '-r'],
      });
      const said = 'out' in verdict ? verdict.out.split('\n') : [];
      for (let k = 0; k < suspects.length; k++) {
        if (said[k] === 'ok') continue;
        const i = suspects[k] as number;
        this.#badLine(i + 1);
        lines[i] = '';
      }
    }
    this.#emit(runJq({ input: lines.join('\n'), filter: this.#filter, flags: this.#flags }), 0);
  }

  #badLine(n: number): void {
    if (this.#strict) throw new RowlogError('ERR_BAD_LINE', `line ${n}: not valid JSON`);
    this.badLineCount++;
    if (this.badLines.length < MAX_BAD_LINES_KEPT) this.badLines.push(n);
    this.#onBadLine?.(n);
  }

  /** Pushes one jq result, taking markers out (line numbers are `base` + jq's). */
  #emit(r: JqResult, base: number): void {
    if ('error' in r) throw new RowlogError('ERR_JQ', compileMessage(r.error.stderr));
    const out = r.out === '' || r.out.endsWith('\n') ? r.out : `${r.out}\n`;
    if (!out.includes(this.#raw ? MARK : JSON_MARK)) {
      if (out !== '') this.push(out);
      return;
    }
    let kept = '';
    for (const line of out.split('\n').slice(0, -1)) {
      const text = this.#raw ? line : line.startsWith(JSON_MARK) ? (JSON.parse(line) as string) : line;
      if (!text.startsWith(MARK)) {
        kept += `${line}\n`;
        continue;
      }
      const [kind, num, ...msg] = text.slice(MARK.length).split(':');
      const lineNo = base + Number(num);
      if (kind === 'B') {
        if (this.#strict && kept !== '') this.push(kept);
        this.#badLine(lineNo);
      } else {
        const v = JSON.parse(msg.join(':')) as unknown;
        const err = { line: lineNo, message: typeof v === 'string' ? v : `${JSON.stringify(v)} (not a string)` };
        this.errorCount++;
        this.#onError?.(err);
        this.emit('jqerror', err);
      }
    }
    if (kept !== '') this.push(kept);
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
