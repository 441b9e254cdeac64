/**
 * readLog (docs/DESIGN.md §6): the rows of a `.jsonl`, `.jsonl.gz` or `.csv` file, or of a stream of
 * such text, streamed (never the whole file in memory). Gzip is recognised by its magic bytes,
 * whatever the name, and may be anything gzip readers accept: one stream, many members (BGZF
 * or not), or cut short at the end by a crash or a writer still at work. A cut-short input ends
 * the rows early with `truncated: true`; its incomplete last line is dropped silently.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream';
import { jsonlParser } from '../format/parse-lines.js';
import { parseCsv } from '../format/csv-parse.js';
import { extrasFor } from '../../sinks/csv-sidecar.js';
import { decoded, type Damage } from './decode.js';
import { maxLineBytesOption } from '../format/line-split.js';

/** Options of {@link readLog}. */
export interface ReadLogOptions {
  /** A bad line rejects the iteration with RowlogError `ERR_BAD_LINE` instead of being skipped. @default false */
  strict?: boolean;
  /** The text's format. @default 'csv' for a path ending in `.csv` or `.csv.gz`, else 'jsonl' */
  format?: 'jsonl' | 'csv';
  /** Called for each skipped line with its 1-based number. */
  onBadLine?: (lineNumber: number, line: string, err: Error) => void;
  /**
   * A line longer than this many bytes is skipped and counted as a bad line (or fails with
   * `ERR_BAD_LINE` under `strict`); memory stays within about this bound whatever the input.
   * @default 268435456 (256 MiB)
   */
  maxLineBytes?: number;
}

/** The rows of a log, with what went wrong while reading them. */
export interface LogReader extends AsyncIterable<Record<string, unknown>> {
  /** 1-based line numbers of skipped lines, filled as reading goes. */
  readonly badLines: number[];
  /** True when the gzip input ended early (a file torn by a crash, or still being written). */
  readonly truncated: boolean;
  /**
   * Damaged stretches of gzip input, filled as reading goes: a damaged blocked-gzip member is
   * skipped (every intact member is still read); a damaged plain gzip ends the rows where
   * decoding stopped. Each with its offset in the file, its length and, where known, the rows lost.
   */
  readonly damaged: Damage[];
}

/** The default format for a path. */
export function formatOf(source: string | NodeJS.ReadableStream): 'jsonl' | 'csv' {
  return typeof source === 'string' && /\.csv(?:\.gz)?$/i.test(source) ? 'csv' : 'jsonl';
}

/**
 * Rows of a .jsonl, .jsonl.gz (any gzip: single stream, multi-member, BGZF, torn at the end,
 * Python-written; gzip is detected by its magic bytes, not by name) or .csv file (header row;
 * numbers, true/false, empty → null, NaN/Infinity/-Infinity tokens restored; quoted cells stay
 * strings), or of a Readable of such text. Streams: never loads the whole file. A bad line is
 * skipped and its number kept in `badLines` (with `strict`, iterating rejects with RowlogError
 * `ERR_BAD_LINE`). Each iteration reads the source again when it is a path.
 */
export function readLog(source: string | NodeJS.ReadableStream, opts: ReadLogOptions = {}): LogReader {
  const badLines: number[] = [];
  const damaged: Damage[] = [];
  let truncated = false;
  const format = opts.format ?? formatOf(source);
  const maxLineBytes = maxLineBytesOption(opts.maxLineBytes);
  const parseOpts = {
    strict: opts.strict ?? false,
    maxLineBytes,
    onBadLine: (lineNumber: number, line: string, err: Error) => {
      badLines.push(lineNumber);
      opts.onBadLine?.(lineNumber, line, err);
    },
  };
  return {
    badLines,
    damaged,
    get truncated() {
      return truncated;
    },
    [Symbol.asyncIterator]() {
      const input = (typeof source === 'string' ? fs.createReadStream(source) : source) as AsyncIterable<Buffer | string>;
      // A CSV that csvSink is rewriting holds trailing fields its sidecar names (docs/DESIGN.md §4).
      const extras = typeof source === 'string' ? (header: readonly string[]) => extrasFor(source, header)?.extras : undefined;
      // JSONL: the line splitter drops a torn last line itself, so decode holds nothing back.
      let cut = false;
      const csv = format === 'csv';
      const parser: Transform = csv ? parseCsv({ ...parseOpts, extras }) : jsonlParser(parseOpts, () => cut);
      const text = Readable.from(
        decoded(input, {
          onTruncated: () => (truncated = true),
          onDamaged: (d) => damaged.push(d),
          maxLineBytes,
          keepTornLine: !csv,
          onCut: () => (cut = true),
        }),
        { objectMode: false },
      );
      pipeline(text, parser, () => {}); // errors reach the iteration through the parser
      return (parser as AsyncIterable<Record<string, unknown>>)[Symbol.asyncIterator]();
    },
  };
}
