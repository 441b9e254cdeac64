/**
 * prettySink: the console view of a run. Shows the latest row of each table as aligned
 * `key  value` lines under a header naming the table, step and level, at most one print per
 * table per `intervalMs` (the latest row that arrived meanwhile is printed when the interval
 * ends). Rows at `alwaysLevel` or above print at once. A reader that goes away (`| head`,
 * EPIPE) silences the sink instead of crashing the training loop.
 *
 * The interval holds in a loop that never yields to the event loop too (issue 9, point 8: the
 * console printed twice in 24 s), when the timers cannot fire: each print schedules an immediate,
 * and until it has run (the loop is not turning) every row reads the clock, after it one row in
 * 64 does; a table whose interval is over prints its latest row from `_write` itself.
 */
import type { Writable as WritableStream } from 'node:stream';
import { Writable } from 'node:stream';
import { isEntry, META_KEYS } from '../lib/core/entry.js';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { booleanOption, numberOption, objectOption, optionError } from '../lib/core/options.js';
import { scalarJson } from '../lib/format/json-line.js';
import { levelName, toLevel } from '../lib/core/levels.js';
import type { LevelLike } from '../lib/core/levels.js';
import type { Sink } from '../lib/core/sink.js';
import { LoopWatch } from '../lib/core/loop-watch.js';

/** Options of {@link prettySink}. */
export interface PrettySinkOptions {
  /** Where the text goes. It is never ended by the sink. @default process.stdout */
  stream?: WritableStream;
  /** At most one print per table per this many ms; 0 prints every row. @default 1000 */
  intervalMs?: number;
  /** Rows at or above this level print at once, whatever the interval. @default 'RESULTS' */
  alwaysLevel?: LevelLike;
  /** Keys shown per row (an integer ≥ 0 or Infinity); the rest become one `… N more` line. @default 40 */
  maxKeys?: number;
  /** Significant digits of non-integer numbers (1 to 21). Integers are shown whole. @default 6 */
  digits?: number;
  /** ANSI colors. @default true when `stream` is a TTY and `NO_COLOR` is unset */
  color?: boolean;
}

/** Header lines are filled with `─` up to this width. */
const HEADER_WIDTH = 40;
const META = new Set<string>(META_KEYS);
// Control characters (ESC included) would break the layout or drive the terminal.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

interface TableState {
  timer: NodeJS.Timeout;
  pending: Entry<FlatRow> | undefined;
  /** When the table last printed (performance.now()). */
  since: number;
}


/** Text safe for one terminal line: as is, or JSON-quoted when it holds control characters. */
function safe(s: string): string {
  return CONTROL.test(s) ? JSON.stringify(s) : s;
}

/** A value as shown: integers whole, other numbers to `digits` significant digits. */
function formatValue(v: unknown, digits: number): string {
  if (typeof v === 'number') return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(digits)));
  return typeof v === 'string' ? safe(v) : scalarJson(v);
}

/** Options of {@link renderRow}: as in {@link PrettySinkOptions}, all required. */
export interface RenderRowOptions {
  maxKeys: number;
  digits: number;
  color: boolean;
}

/** The text the console sink prints for one row: a header line, then one `key  value` line per key (metadata keys left out). */
export function renderRow(
  entry: { table: string; step: number | string; level: number | string; data: Record<string, unknown> },
  opts: RenderRowOptions,
): string {
  const { table, step, level, data } = entry;
  const keys = Object.keys(data)
    .filter((k) => !META.has(k))
    .sort();
  const shown = keys.slice(0, opts.maxKeys);
  const names = shown.map(safe);
  const width = Math.max(0, ...names.map((k) => k.length)) + 2;
  const head = `── ${safe(table)}  step ${step}  ${typeof level === 'number' ? levelName(level) : level} `;
  const paint = (code: string, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  let text = `${paint('1;36', head + '─'.repeat(Math.max(2, HEADER_WIDTH - head.length)))}\n`;
  shown.forEach((k, i) => {
    const name = names[i] as string;
    text += `${paint('2', name)}${' '.repeat(width - name.length)}${formatValue(data[k], opts.digits)}\n`;
  });
  if (keys.length > shown.length) text += `${paint('2', `… ${keys.length - shown.length} more`)}\n`;
  return text;
}

/** The console sink (see {@link prettySink}). */
export class PrettySink extends Writable implements Sink {
  readonly #stream: WritableStream;
  readonly #intervalMs: number;
  readonly #alwaysLevel: number;
  readonly #maxKeys: number;
  readonly #digits: number;
  readonly #color: boolean;
  readonly #tables = new Map<string, TableState>();
  #lastWrite: Promise<void> = Promise.resolve();
  /** The stream failed (or its reader went away): nothing more is written. */
  #broken = false;
  readonly #onStreamError = (err: NodeJS.ErrnoException) => this.#fail(err);
  /** Whether the event loop turned since the last print (lib/core/loop-watch.ts). */
  readonly #loop = new LoopWatch();

  constructor(opts: PrettySinkOptions = {}) {
    super({ objectMode: true });
    objectOption(opts);
    const stream = opts.stream ?? process.stdout;
    const { write, on } = stream as Partial<WritableStream>;
    if (typeof write !== 'function' || typeof on !== 'function') {
      throw optionError('type', 'stream', 'must be a Writable');
    }
    this.#stream = stream;
    this.#intervalMs = numberOption(opts.intervalMs ?? 1000, 'intervalMs', { min: 0, max: 2 ** 31 - 1 });
    this.#alwaysLevel = toLevel(opts.alwaysLevel ?? 'RESULTS', 'alwaysLevel');
    this.#maxKeys = numberOption(opts.maxKeys ?? 40, 'maxKeys', { min: 0, integer: true, infinite: true });
    this.#digits = numberOption(opts.digits ?? 6, 'digits', { min: 1, max: 21, integer: true });
    this.#color = booleanOption(opts.color, 'color', (stream as { isTTY?: boolean }).isTTY === true && !process.env.NO_COLOR);
    stream.on('error', this.#onStreamError);
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!isEntry(entry)) {
      callback(new TypeError(`prettySink: expected an Entry {table, level, step, time, data} (got ${String(entry)})`));
      return;
    }
    if (this.#broken) return callback();
    const st = this.#tables.get(entry.table);
    if (entry.level >= this.#alwaysLevel || this.#intervalMs === 0) {
      if (st !== undefined) st.pending = undefined; // older than what is printed now
      this.#printPending(); // other tables' waiting rows are older: they come first
      this.#print(entry);
    } else if (st === undefined) {
      this.#print(entry);
      this.#tables.set(entry.table, { timer: this.#startTimer(entry.table), pending: undefined, since: performance.now() });
    } else {
      st.pending = entry;
      if (this.#loop.due()) {
        const now = performance.now();
        if (now - st.since >= this.#intervalMs) {
          // Due, and the timer has not fired: the event loop is not turning. Print from here.
          clearTimeout(st.timer);
          this.#print(entry);
          st.pending = undefined;
          st.since = now;
          st.timer = this.#startTimer(entry.table);
        }
      }
    }
    callback();
  }

  /** Ends the table's interval: prints its pending row and starts another, or forgets the table. */
  #startTimer(table: string): NodeJS.Timeout {
    this.#loop.mark();
    return setTimeout(() => {
      const st = this.#tables.get(table) as TableState;
      if (st.pending === undefined) {
        this.#tables.delete(table);
        return;
      }
      this.#print(st.pending);
      st.pending = undefined;
      st.since = performance.now();
      st.timer = this.#startTimer(table);
    }, this.#intervalMs).unref();
  }

  /** Prints every pending row now. */
  #printPending(): void {
    for (const st of this.#tables.values()) {
      if (st.pending !== undefined) this.#print(st.pending);
      st.pending = undefined;
    }
  }

  #print(entry: Entry<FlatRow>): void {
    const text = this.#render(entry);
    this.#lastWrite = new Promise((resolve) => {
      this.#stream.write(text, (err?: Error | null) => {
        if (err) this.#fail(err);
        resolve();
      });
    });
  }

  /** The text printed for `entry` (see {@link renderRow}). */
  #render(entry: Entry<FlatRow>): string {
    return renderRow(entry, { maxKeys: this.#maxKeys, digits: this.#digits, color: this.#color });
  }

  /** A stream error: EPIPE (or an already destroyed stream) silences the sink; others destroy it. */
  #fail(err: NodeJS.ErrnoException): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#clear();
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') this.destroy(err);
  }

  #clear(): void {
    for (const st of this.#tables.values()) clearTimeout(st.timer);
    this.#tables.clear();
  }

  /** Prints every pending row; resolves when the stream has taken the text. */
  async flush(): Promise<void> {
    this.#printPending();
    await this.#lastWrite;
  }

  /** Prints every pending row now (the stream's own buffering decides when it is shown). */
  flushSync(): void {
    this.#printPending();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#printPending();
    this.#clear();
    void this.#lastWrite.then(() => callback()); // never rejects: write errors go to #fail
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#clear();
    // A failed stream may still emit 'error': keep listening so it cannot crash the process.
    if (!this.#broken) this.#stream.off('error', this.#onStreamError);
    callback(err);
  }
}

/**
 * A console sink showing the latest row of each table, throttled per table (see
 * {@link PrettySinkOptions}). The logger's default console sink is `prettySink()` at INFO.
 */
export function prettySink(opts?: PrettySinkOptions): PrettySink {
  return new PrettySink(opts);
}
