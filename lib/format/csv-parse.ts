/**
 * Reading CSV (RFC 4180, docs/DESIGN.md §4, §6): a record scanner shared by csvSink's rewrites and by
 * readLog, plus the streaming reader that turns CSV text into rows. Cells are typed the way
 * csvSink writes them: an empty cell is null, `true`/`false` are booleans, numbers (and the
 * tokens `NaN`, `Infinity`, `-Infinity`) are numbers, and a quoted cell always stays a string
 * (the sink quotes every string a reader could take for something else).
 */
import { Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { badLineHandler, longLineError } from './parse-lines.js';
import { maxLineBytesOption } from './line-split.js';
import type { ParseLinesOptions } from './parse-lines.js';
import type { Scalar } from '../core/entry.js';

const QUOTE = 0x22;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;

/** Result of {@link scanRecords}. */
export interface Scanned {
  /** Where the text not yet turned into records starts (the text's length when all was). */
  rest: number;
  /** What must follow the text for the next record to start cleanly: '', '\n' or '"\n'. */
  closing: string;
}

/**
 * Splits `text` from `i` into records of raw fields (quotes kept). Line ends are `\n`, `\r\n` or
 * `\r`. With `final`, a text that ends mid-record (a crash) still yields that record, its open
 * quote closed; without it, a record not yet ended is left for later (`rest` is where it starts).
 *
 * A line holding no quote and no `\r` (nearly every line rowlog writes) is split natively;
 * other records are read character by character.
 */
export function scanRecords(text: string, i: number, onRecord: (fields: string[]) => void, final: boolean): Scanned {
  const n = text.length;
  let nextQuote = -1; // the first '"' at or after i (n: none left); -1: not looked up yet
  let nextCr = -1;
  while (i < n) {
    const lf = text.indexOf('\n', i);
    const end = lf < 0 ? n : lf;
    if (nextQuote < i) nextQuote = indexOrEnd(text, '"', i);
    if (nextCr < i) nextCr = indexOrEnd(text, '\r', i);
    if (nextQuote >= end && nextCr >= end) {
      if (lf < 0 && !final) return { rest: i, closing: '' };
      onRecord(text.slice(i, end).split(','));
      if (lf < 0) return { rest: n, closing: '\n' };
      i = lf + 1;
      continue;
    }
    const record = i;
    const fields: string[] = [];
    let start = i;
    for (;;) {
      if (i >= n) {
        if (!final) return { rest: record, closing: '' };
        fields.push(text.slice(start));
        onRecord(fields);
        return { rest: n, closing: '\n' };
      }
      const c = text.charCodeAt(i);
      if (c === QUOTE && i === start) {
        // A quoted field: up to the next quote not followed by another.
        for (;;) {
          const q = text.indexOf('"', i + 1);
          if (q < 0) {
            if (!final) return { rest: record, closing: '' };
            fields.push(`${text.slice(start)}"`);
            onRecord(fields);
            return { rest: n, closing: '"\n' };
          }
          i = q + 1;
          if (text.charCodeAt(i) !== QUOTE) break;
        }
      } else if (c === COMMA) {
        fields.push(text.slice(start, i));
        start = ++i;
      } else if (c === LF || c === CR) {
        if (c === CR && i + 1 >= n && !final) return { rest: record, closing: '' }; // a '\n' may follow
        fields.push(text.slice(start, i));
        onRecord(fields);
        i += c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
        break;
      } else i++;
    }
  }
  return { rest: n, closing: '' };
}

/**
 * Splits CSV text into records of raw fields (quotes kept, so a field can be written back as
 * is). Line ends are `\n`, `\r\n` or `\r`; a leading BOM is skipped. A text that ends mid-record
 * (a crash) still yields that record, its open quote closed. Returns what must follow the text
 * for the next record to start cleanly: '' (it ends with a line end), '\n', or '"\n'.
 */
export function scanCsv(text: string, onRecord: (fields: string[]) => void): string {
  return scanRecords(text, text.charCodeAt(0) === 0xfeff ? 1 : 0, onRecord, true).closing;
}

/** Where `ch` next occurs in `text` from `from` on, or `text.length`. */
function indexOrEnd(text: string, ch: string, from: number): number {
  const k = text.indexOf(ch, from);
  return k < 0 ? text.length : k;
}

/** The string a raw field from {@link scanCsv} holds (a quoted one always has its closing quote). */
export function unquote(raw: string): string {
  if (raw.charCodeAt(0) !== QUOTE) return raw;
  const end = raw.lastIndexOf('"');
  return raw.slice(1, end).replaceAll('""', '"') + raw.slice(end + 1);
}

/** An empty line. */
export function isBlank(fields: readonly string[]): boolean {
  return fields.length === 1 && fields[0] === '';
}

/** Unquoted cells that are numbers: JSON-style numbers (a leading `+` or `.` too) and the non-finite tokens. */
const NUMBER = /^(?:NaN|[-+]?Infinity|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$/;

/** The value of a raw CSV field: empty → null, `true`/`false`, numbers; quoted cells and other text stay strings. */
export function csvValue(raw: string): Scalar {
  if (raw === '') return null;
  if (raw.charCodeAt(0) === QUOTE) return unquote(raw);
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return NUMBER.test(raw) ? Number(raw) : raw;
}

/** Line ends inside the quoted fields of a record (unquoted fields hold none). */
function innerLineEnds(fields: readonly string[]): number {
  let count = 0;
  for (const f of fields) {
    if (f.charCodeAt(0) !== QUOTE) continue;
    for (let k = f.indexOf('\n'); k >= 0; k = f.indexOf('\n', k + 1)) count++;
  }
  return count;
}

/** Options of {@link parseCsv}. */
export interface ParseCsvOptions extends ParseLinesOptions {
  /**
   * Names of fields past the header's end for a given header: csvSink's extras during a rewrite,
   * from the sidecar `<file>.columns` (sinks/csv-rewrite.ts). A record may then hold up to that
   * many more fields than the header. @default none
   */
  extras?: (header: readonly string[]) => readonly string[] | undefined;
}

/**
 * Object-mode Transform: CSV text (Buffers/strings, any chunking; header row first) → one row
 * object per record, keys in header order, cells typed by {@link csvValue}. Blank lines are
 * skipped. A record whose field count differs from the header's is a bad line: skipped and
 * reported with the 1-based number of the line it starts on, or with `strict` the stream
 * errors with RowlogError `ERR_BAD_LINE`.
 */
export function parseCsv(opts: ParseCsvOptions = {}): Transform {
  const bad = badLineHandler(opts);
  const max = maxLineBytesOption(opts.maxLineBytes);
  const decoder = new StringDecoder('utf8');
  let tail = '';
  /** Text after `tail` not scanned yet: held until a line end comes, and while the open record in `tail` is longer (linear in long records). */
  let waiting: string[] = [];
  let waitingChars = 0;
  /** Some of `waiting` holds a line end (so the record in `tail` may have ended). */
  let waitingEnds = false;
  /** The record being read grew past `max`: its text is dropped up to the next line end. */
  let skipping = false;
  let started = false;
  let header: string[] | undefined;
  let extras: readonly string[] = [];
  let line = 1; // the line the next record starts on
  const onRecord = (push: (row: Record<string, unknown>) => void) => (fields: string[]) => {
    const at = line;
    line += 1 + innerLineEnds(fields);
    if (isBlank(fields)) return;
    if (header === undefined) {
      header = fields.map(unquote);
      extras = opts.extras?.(header) ?? [];
      return;
    }
    if (fields.length < header.length || fields.length > header.length + extras.length) {
      bad(at, fields.join(','), new SyntaxError(`expected ${header.length} fields, got ${fields.length}`));
      return;
    }
    const row: Record<string, unknown> = {};
    for (let k = 0; k < fields.length; k++) row[(header[k] ?? extras[k - header.length]) as string] = csvValue(fields[k] as string);
    push(row);
  };
  const scan = (stream: Transform, text: string, final: boolean): void => {
    if (!started && text.length > 0) {
      started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    tail = text.slice(scanRecords(text, 0, onRecord((row) => stream.push(row)), final).rest);
  };
  const take = (stream: Transform, chunk: string): void => {
    if (skipping) {
      // A record over the bound ends at the next line end (a quoted line end inside it cannot be told apart).
      const nl = chunk.search(/\r?\n|\r/);
      if (nl === -1) return;
      skipping = false;
      const eol = chunk.startsWith('\r\n', nl) ? 2 : 1;
      bad(line, '', longLineError(max));
      line++;
      chunk = chunk.slice(nl + eol);
    }
    if (chunk.length === 0) return;
    waiting.push(chunk);
    waitingChars += chunk.length;
    if (!waitingEnds) waitingEnds = chunk.includes('\n') || chunk.includes('\r');
    // Characters ≤ bytes: the bound is checked in characters, at most 3× generous for non-ASCII text.
    const total = tail.length + waitingChars;
    if (!waitingEnds) {
      // No line end since the open record in `tail`: it cannot have ended.
      if (total > max) {
        skipping = true;
        tail = '';
        waiting = [];
        waitingChars = 0;
      }
      return;
    }
    // The open record in `tail` is scanned again from its start: only once the text after it
    // is at least as long (or the bound is reached), so a quoted record of many lines costs
    // linear time, not one rescan per chunk (quadratic). A short `tail` (a line cut by the
    // chunk's end, the usual case) is scanned with the very next chunk.
    if (waitingChars < tail.length && total <= max) return;
    const text = tail + waiting.join('');
    waiting = [];
    waitingChars = 0;
    waitingEnds = false;
    scan(stream, text, false);
    if (tail.length > max) {
      skipping = true;
      tail = '';
    }
  };
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer | string, _enc, cb) {
      try {
        take(this, typeof chunk === 'string' ? chunk : decoder.write(chunk));
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb) {
      try {
        if (skipping) bad(line, '', longLineError(max));
        else scan(this, tail + waiting.join('') + decoder.end(), true);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}
