/**
 * Cutting bytes into lines: the one splitter of every reader and of the collector (docs/DESIGN.md §6).
 *
 * A line is the bytes before a `\n` (a `\r` before it is dropped, as `\r?\n`); the bytes after the
 * last `\n` are a line too when the input ends (or are dropped with {@link LineSplitter.discard}
 * when the input was cut short). Each chunk is searched once, from where the last line ended,
 * so the work is linear in the input however long its lines are; a partial line is copied into
 * blocks (512 B, then 4 KiB doubling to 1 MiB, so `pendingBytes` is the memory it really holds, however
 * small the chunks) and joined once, when its `\n` comes. With `keepCr` a `\r` stays in the line,
 * so that line + `\n` is exactly the input's bytes (`rowlog pipe`, docs/DESIGN.md §7).
 *
 * A line longer than `maxLineBytes` is never held whole: once its bytes pass the bound they are
 * dropped as they come (or handed to `onLongPart`, for a pipe to stream on), and when it ends it
 * is reported to `onLongLine` with its number, so memory stays within the bound whatever the
 * input (`/dev/zero`, a gzip bomb of one line, a flood of partial lines).
 *
 * Why not split2 (which rowlog used before): it appends each chunk to the partial line and
 * splits the whole string again, so a line of n bytes costs O(n²/chunk) (a 40 MB line took
 * 95 s), it decodes to a string before knowing where lines end (a pipe must pass bytes through
 * untouched), and its overflow mode drops a long line without telling which one it was.
 */
import { Transform } from 'node:stream';
import { numberOption } from '../core/options.js';

/** The default bound on one line: generous for any row (a row of 1M numbers is ~20 MB). */
export const DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024;

/** How many `\n` bytes `buf` holds (memchr-fast: Buffer#indexOf). */
export function countNewlines(buf: Uint8Array): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/** Checks a `maxLineBytes` option: an integer ≥ 1. */
export function maxLineBytesOption(value: unknown, name = 'maxLineBytes'): number {
  return value === undefined ? DEFAULT_MAX_LINE_BYTES : numberOption(value, name, { min: 1, integer: true });
}

/** Where a splitter's lines go: as bytes (`Buffer`) or as UTF-8 text (`string`). */
export interface LineSink<L extends Buffer | string = Buffer> {
  /** One whole line (without `\n`, and without a `\r` before it unless `keepCr`) and its 1-based number. A Buffer may be a view of the input: copy it to keep it. */
  onLine(line: L, lineNumber: number): void;
  /** A line longer than the bound (its bytes before the `\n`, a `\r` included), skipped: its number and length in bytes. */
  onLongLine(lineNumber: number, bytes: number): void;
  /**
   * When given, the bytes of a line longer than the bound are handed here as they come, in order,
   * instead of being dropped (a pipe streams them through); `onLongLine` follows at the line's
   * end. Each part may be a view of the input: copy it to keep it.
   */
  onLongPart?(part: Buffer): void;
}

/** Options of a {@link LineSplitter}. */
export interface LineSplitterOptions<L extends Buffer | string> {
  /** Longest line kept whole, in bytes. @default 268435456 (256 MiB, {@link DEFAULT_MAX_LINE_BYTES}) */
  maxLineBytes?: number | undefined;
  /** Lines reach the sink as strings (decoded as UTF-8), else as bytes. @default false */
  text?: L extends string ? true : false;
  /** Keep a `\r` before the `\n` in the line (to give the bytes back exactly, as `rowlog pipe` does). @default false */
  keepCr?: boolean;
}

/** The first block of a partial line, at least (a line cut by a chunk's end is usually short). */
const FIRST_BLOCK = 512;
/** Smallest further block a partial line is kept in (so a trickle of tiny chunks does not cost an object per byte). */
const MIN_BLOCK = 4096;
/** Largest block allocated ahead of the bytes that fill it (bounds what an almost empty last block wastes). */
const MAX_BLOCK = 1024 * 1024;

/** Splits a byte stream into lines in linear time, holding at most `maxLineBytes` of a partial line. */
export class LineSplitter<L extends Buffer | string = Buffer> {
  /** Lines ended so far (the number of the last line reported). */
  lineNumber = 0;
  readonly #sink: LineSink<L>;
  readonly #max: number;
  readonly #text: boolean;
  readonly #keepCr: boolean;
  /**
   * The partial line, copied into blocks (never a view that pins a whole input chunk): every
   * block but the last is full; the last holds `#fill` bytes. Copying into blocks rather than
   * keeping one copy per chunk means a sender of one byte per packet costs a byte per byte.
   */
  #blocks: Buffer[] = [];
  #fill = 0;
  /** Bytes of the partial line held, and the bytes of the blocks holding them. */
  #held = 0;
  #capacity = 0;
  /** The partial line passed the bound: its bytes so far, none of them held. */
  #skipped: number | undefined;

  constructor(sink: LineSink<L>, opts: LineSplitterOptions<L> = {}) {
    this.#sink = sink;
    this.#max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.#text = opts.text === true;
    this.#keepCr = opts.keepCr === true;
  }

  /** Memory held for the partial line, in bytes (its blocks: at most ~2 × its length or 4 KiB, and never more than maxLineBytes). */
  get pendingBytes(): number {
    return this.#capacity;
  }

  /** True while a partial line is pending (held, or being skipped as too long). */
  get partial(): boolean {
    return this.#held > 0 || this.#skipped !== undefined;
  }

  /** True while the partial line is longer than the bound (being skipped, or streamed to `onLongPart`). */
  get overLong(): boolean {
    return this.#skipped !== undefined;
  }

  /** The first held block of the partial line (a view, no copy), to tell what it may be; empty when none is held. */
  get partialHead(): Buffer {
    const first = this.#blocks[0];
    return first === undefined ? Buffer.alloc(0) : first.subarray(0, this.#blocks.length === 1 ? this.#fill : first.length);
  }

  /**
   * Stops holding the partial line: its bytes so far, and the rest of it as it comes, go to
   * `onLongPart`, and its end to `onLongLine`, as a line over the bound does (a pipe that knows
   * the line cannot be a row streams it on instead of holding it until its newline).
   */
  streamPartial(): void {
    if (this.#skipped !== undefined || this.#held === 0 || this.#sink.onLongPart === undefined) return;
    this.#handHeld();
    const skipped = this.#held;
    this.discard();
    this.#skipped = skipped;
  }

  /** Takes the next bytes of the input. */
  write(chunk: Buffer): void {
    const first = chunk.indexOf(10);
    if (first === -1) {
      if (chunk.length > 0) this.#hold(chunk, 0);
      return;
    }
    this.#finish(chunk, 0, first);
    const last = chunk.lastIndexOf(10);
    if (this.#text && last > first && last - first - 1 <= this.#max) {
      // The lines between the first and the last `\n` are whole and within the bound: decode
      // them at once (one toString and one split beat one toString per line).
      const lines = chunk.toString('utf8', first + 1, last).split('\n');
      const keepCr = this.#keepCr;
      for (const l of lines) {
        const n = ++this.lineNumber;
        this.#sink.onLine((!keepCr && l.charCodeAt(l.length - 1) === 13 ? l.slice(0, -1) : l) as L, n);
      }
    } else {
      let start = first + 1;
      for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
        this.#finish(chunk, start, nl);
        start = nl + 1;
      }
    }
    if (last + 1 < chunk.length) this.#hold(chunk, last + 1);
  }

  /** The input ended: its bytes after the last `\n`, if any, are the last line. */
  end(): void {
    if (this.#skipped !== undefined || this.#held > 0) this.#finish(Buffer.alloc(0), 0, 0);
  }

  /** The input was cut short: drops the partial line. True if there was one. */
  discard(): boolean {
    const had = this.partial;
    this.#blocks = [];
    this.#fill = 0;
    this.#held = 0;
    this.#capacity = 0;
    this.#skipped = undefined;
    return had;
  }

  /** Ends the current line with `chunk[start, nl)`. */
  #finish(chunk: Buffer, start: number, nl: number): void {
    const n = ++this.lineNumber;
    const bytes = (this.#skipped ?? this.#held) + nl - start;
    if (this.#skipped !== undefined || bytes > this.#max) {
      if (this.#sink.onLongPart !== undefined) {
        if (this.#skipped === undefined) this.#handHeld();
        if (nl > start) this.#sink.onLongPart(chunk.subarray(start, nl));
      }
      this.discard();
      this.#sink.onLongLine(n, bytes);
      return;
    }
    let line = chunk.subarray(start, nl);
    if (this.#held > 0) {
      const parts = this.#blocks;
      parts[parts.length - 1] = (parts[parts.length - 1] as Buffer).subarray(0, this.#fill);
      parts.push(line);
      line = Buffer.concat(parts, bytes);
      this.discard();
    }
    if (!this.#keepCr && line[line.length - 1] === 13) line = line.subarray(0, -1);
    this.#sink.onLine((this.#text ? line.toString('utf8') : line) as L, n);
  }

  /** Hands the held bytes to `onLongPart` (the line just passed the bound). */
  #handHeld(): void {
    const blocks = this.#blocks;
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i] as Buffer;
      this.#sink.onLongPart?.(i === blocks.length - 1 ? b.subarray(0, this.#fill) : b);
    }
  }

  /** Keeps `chunk[start…]` as the partial line, or counts it (and hands it on) once the line is too long. */
  #hold(chunk: Buffer, start: number): void {
    const len = chunk.length - start;
    if (this.#skipped !== undefined) {
      this.#skipped += len;
      this.#sink.onLongPart?.(chunk.subarray(start));
    } else if (this.#held + len > this.#max) {
      if (this.#sink.onLongPart !== undefined) {
        this.#handHeld();
        this.#sink.onLongPart(chunk.subarray(start));
      }
      const skipped = this.#held + len;
      this.discard();
      this.#skipped = skipped;
    } else {
      let from = start;
      const last = this.#blocks[this.#blocks.length - 1];
      if (last !== undefined && this.#fill < last.length) {
        const copied = chunk.copy(last, this.#fill, from);
        this.#fill += copied;
        from += copied;
      }
      if (from < chunk.length) {
        // A new block: as large as what is held already (so blocks at most double the bytes),
        // between MIN_BLOCK and MAX_BLOCK, never beyond the bound, and at least what is left.
        const rest = chunk.length - from;
        const held = this.#held + (from - start); // = the capacity so far: every block is full now
        // The first block is small (most partial lines are a line cut by a chunk's end, ended by
        // the next chunk) and comes from Node's pool; later ones at least MIN_BLOCK.
        const want = held === 0 ? FIRST_BLOCK : Math.max(held, MIN_BLOCK);
        const size = Math.max(rest, Math.min(want, MAX_BLOCK, this.#max - held));
        const block = Buffer.allocUnsafe(size);
        chunk.copy(block, 0, from);
        this.#blocks.push(block);
        this.#fill = rest;
        this.#capacity += size;
      }
      this.#held += len;
    }
  }
}

/**
 * An object-mode Transform over a {@link LineSplitter}: bytes (or strings) in, `map(line, n)` of
 * each line's text
 * out (`undefined` pushes nothing). `onLongLine` hears of every line over the bound;
 * a throw from `map` or `onLongLine` errors the stream. `dropPartial()`, asked when the input
 * ends, says to drop a last line without its `\n` (a torn end) instead of mapping it.
 */
export function lineTransform(
  map: (line: string, lineNumber: number) => unknown,
  opts: { maxLineBytes?: number; onLongLine?: (lineNumber: number, bytes: number) => void; dropPartial?: () => boolean } = {},
): Transform {
  let out: Transform;
  const splitter = new LineSplitter<string>(
    {
      onLine(line, n) {
        const v = map(line, n);
        if (v !== undefined) out.push(v);
      },
      onLongLine(n, bytes) {
        opts.onLongLine?.(n, bytes);
      },
    },
    { maxLineBytes: opts.maxLineBytes, text: true },
  );
  out = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer | string, _enc, cb) {
      try {
        splitter.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      } catch (err) {
        return cb(err as Error);
      }
      cb();
    },
    flush(cb) {
      try {
        if (opts.dropPartial?.() === true) splitter.discard();
        else splitter.end();
      } catch (err) {
        return cb(err as Error);
      }
      cb();
    },
  });
  return out;
}
