/**
 * Reading JSONL (docs/DESIGN.md §6): one row object per line. rowlog writes non-finite numbers as the
 * bare tokens `NaN`, `Infinity`, `-Infinity` (as Python's json does), which JSON.parse refuses,
 * so a line that fails JSON.parse is tried once more with those tokens restored. The fast path
 * is plain JSON.parse: lines without such tokens pay nothing.
 */
import type { Transform } from 'node:stream';
import { RowlogError } from '../core/errors.js';
import { lineTransform, maxLineBytesOption } from './line-split.js';

/** Control characters a NaN sentinel may start with: their `\u00XX` escapes are all digits, so case cannot hide one. */
const SENTINEL_CHARS = [0, 1, 2, 3, 4, 5, 6, 7, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19];

/** The escape `\u00XX` of a sentinel character, as it would appear in a line. */
const escapeOf = (c: number): string => `\\u00${c.toString(16).padStart(2, '0')}`;

/**
 * A string no JSON string of `line` can decode to: a control character (which a JSON string can
 * only hold as an escape) that `line` never escapes, then `NaN`.
 */
function nanSentinel(line: string): string {
  for (const c of SENTINEL_CHARS) if (!line.includes(escapeOf(c))) return `${String.fromCharCode(c)}NaN`;
  throw new SyntaxError('Unexpected token: NaN in a line escaping every sentinel character');
}

/** Where the JSON string opening at `i` (a `"`) ends, just after its closing quote. */
function stringEnd(line: string, i: number): number {
  for (let from = i + 1; ; ) {
    const q = line.indexOf('"', from);
    if (q < 0) return line.length; // unterminated: JSON.parse reports it
    let backslashes = 0;
    while (line.charCodeAt(q - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/**
 * `line` with the bare tokens outside strings made valid JSON: `Infinity` → `1e999` (which
 * JSON.parse reads as Infinity, so `-Infinity` works too), `NaN` → the JSON string `sentinel`.
 */
function restoreTokens(line: string, sentinel: () => string): { text: string; nan: string | undefined } {
  let text = '';
  let last = 0;
  let nan: string | undefined;
  for (let i = 0; i < line.length; ) {
    const c = line.charCodeAt(i);
    if (c === 0x22) i = stringEnd(line, i);
    else if (c === 0x4e && line.startsWith('NaN', i)) {
      nan ??= sentinel();
      text += `${line.slice(last, i)}${JSON.stringify(nan)}`;
      last = i += 3;
    } else if (c === 0x49 && line.startsWith('Infinity', i)) {
      text += `${line.slice(last, i)}1e999`;
      last = i += 8;
    } else i++;
  }
  return { text: text + line.slice(last), nan };
}

/**
 * Parses one JSONL line; bare NaN, Infinity, -Infinity tokens (outside strings) become numbers.
 * Throws SyntaxError on a bad line.
 */
export function parseJsonLine(line: string): unknown {
  // A failing JSON.parse spends half its time capturing a stack trace nobody reads: skip it.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return JSON.parse(line);
  } catch (err) {
    Error.stackTraceLimit = stackTraceLimit;
    if (!line.includes('NaN') && !line.includes('Infinity')) throw err;
    const { text, nan } = restoreTokens(line, () => nanSentinel(line));
    if (text === line) throw err; // the tokens were all inside strings
    const v: unknown = JSON.parse(text);
    return nan === undefined ? v : restoreNaN(v, nan);
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** `v` with every string equal to `sentinel` replaced by NaN, in place (faster than a JSON.parse reviver). */
function restoreNaN(v: unknown, sentinel: string): unknown {
  if (v === sentinel) return NaN;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    for (const k in o) {
      const x = o[k];
      if (x === sentinel) o[k] = NaN;
      else if (typeof x === 'object' && x !== null) restoreNaN(x, sentinel);
    }
  }
  return v;
}

/** Options of {@link parseLines}. */
export interface ParseLinesOptions {
  /** A bad line errors the stream (RowlogError `ERR_BAD_LINE`) instead of being skipped. @default false */
  strict?: boolean;
  /** Called for each skipped line with its 1-based number (not called when `strict`). */
  onBadLine?: (lineNumber: number, line: string, err: Error) => void;
  /**
   * A line longer than this many bytes is a bad line (skipped and reported, its text given as
   * ''), and is never held whole: memory stays within this bound whatever the input. @default 256 MiB
   */
  maxLineBytes?: number;
}

/** A row read back: the JSON object of one line. */
export type Row = Record<string, unknown>;

/** Why a non-blank line holds no row: it is not JSON, or it is JSON but not an object. */
export type NotARow = 'notJson' | 'notObject';

/**
 * The one "line → row" rule of every reader (readLog, tail, connect, collect, `rowlog pipe`,
 * serve): the row a line holds when it is a JSON object (NaN/±Infinity restored, see
 * {@link parseJsonLine}), else `undefined`. A blank line is silently no row; any other line that
 * is not an object is also told to `onBad` with a SyntaxError and why. What a caller does with
 * such a line (skip it, count it, pass it through) is its own business.
 */
export function lineToRow(line: string, onBad?: (err: SyntaxError, why: NotARow) => void): Row | undefined {
  let v: unknown;
  try {
    v = parseJsonLine(line);
  } catch (err) {
    if (onBad !== undefined && line.trim() !== '') onBad(err as SyntaxError, 'notJson');
    return undefined;
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Row;
  onBad?.(new SyntaxError('not a JSON object'), 'notObject');
  return undefined;
}

/**
 * What to do with a bad line: with `strict`, throw RowlogError `ERR_BAD_LINE` naming its number;
 * else report it to `onBadLine` (the line is then skipped). Shared by the JSONL and CSV readers.
 */
export function badLineHandler(opts: ParseLinesOptions): (lineNumber: number, line: string, err: Error) => void {
  const { strict = false, onBadLine } = opts;
  return (lineNumber, line, err) => {
    if (strict) throw new RowlogError('ERR_BAD_LINE', `line ${lineNumber}: ${err.message}`, { cause: err });
    onBadLine?.(lineNumber, line, err);
  };
}

/** The error of a line over `maxLineBytes`, as a bad line's reason. */
export function longLineError(max: number, bytes?: number): SyntaxError {
  return new SyntaxError(`line${bytes === undefined ? '' : ` of ${bytes} bytes`} is longer than maxLineBytes (${max})`);
}

/**
 * Object-mode Transform: text (Buffers/strings, any chunking) → one row object per non-empty
 * line (`\n` or `\r\n`; lib/format/line-split.ts, linear however long the lines). A bad line
 * (not JSON, JSON that is not an object, or longer than `maxLineBytes`) is skipped and reported
 * with its 1-based line number, or with `strict` the stream errors with RowlogError
 * `ERR_BAD_LINE` naming the line number.
 */
export function parseLines(opts: ParseLinesOptions = {}): Transform {
  return jsonlParser(opts, () => false);
}

/** {@link parseLines}, dropping a last line without its `\n` when `dropPartial()` says the input was cut short. */
export function jsonlParser(opts: ParseLinesOptions, dropPartial: () => boolean): Transform {
  const bad = badLineHandler(opts);
  const max = maxLineBytesOption(opts.maxLineBytes);
  let lineNumber = 0;
  let current = '';
  const onBad = (err: Error) => bad(lineNumber, current, err);
  return lineTransform(
    (line, n) => {
      if (line === '') return undefined;
      lineNumber = n;
      current = line;
      return lineToRow(line, onBad);
    },
    { maxLineBytes: max, onLongLine: (n, bytes) => bad(n, '', longLineError(max, bytes)), dropPartial },
  );
}
