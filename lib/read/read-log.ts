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
import { booleanOption, functionOption, optionError } from '../core/options.js';
import { printWarning } from '../core/warnings.js';
import type { RowlogWarning } from '../core/warnings.js';
import { ancestorFiles } from '../run/ancestry.js';

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
  /**
   * Read a resumed run as one (issue 13 §1, docs/DESIGN.md §6): first the same table of each
   * ancestor the run folder's `run.json` links to (`resumedFrom`, oldest first), each giving only
   * its rows with a `$step` below the first step of every later run on the chain (where a step
   * repeats, the child's row wins, as in Blocks), then the file itself. `badLines` numbers are
   * then per file. Needs a path. @default false
   */
  ancestry?: boolean;
  /** Called with each problem of the chain (`W_ANCESTRY`: a missing or cyclic ancestor; its rows are left out). @default a line on stderr */
  onWarning?: (w: RowlogWarning) => void;
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
  if (booleanOption(opts.ancestry, 'ancestry', false)) {
    if (typeof source !== 'string') throw optionError('range', 'ancestry', 'needs a path: the run folder is found from it');
    return chainReader(source, opts);
  }
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

/** The `$step` of a table file's first row, when it has one (a file that is gone or empty has none). */
async function firstStep(file: string, maxLineBytes: number | undefined): Promise<number | undefined> {
  try {
    for await (const row of readLog(file, maxLineBytes === undefined ? {} : { maxLineBytes })) return typeof row.$step === 'number' ? row.$step : undefined;
  } catch {
    // gone or unreadable: no first step
  }
  return undefined;
}

/** An ancestor's file of a chain and the `$step` from which the later runs' rows win (docs/DESIGN.md §6). */
export interface ChainCut {
  file: string;
  /** The ancestor gives its rows whose `$step` is below this (rows without a numeric `$step` always). */
  cut: number;
}

/**
 * The files of the ancestors of table file `file`, oldest first, each with its cut: the smallest
 * first step of the runs after it on the chain (`file` included; a run without rows of the table
 * sets no bound). The chain's problems go to `opts.onWarning`. Exported for `rowlog tail
 * --ancestry`, which reads each from its end.
 */
export async function ancestorCuts(file: string, opts: Omit<ReadLogOptions, 'ancestry'> = {}): Promise<ChainCut[]> {
  const warn = functionOption<(w: RowlogWarning) => void>(opts.onWarning, 'onWarning') ?? printWarning;
  const { files, warnings } = ancestorFiles(file);
  for (const w of warnings) warn(w);
  const cuts: ChainCut[] = [];
  let bound = (await firstStep(file, opts.maxLineBytes)) ?? Infinity;
  for (let i = files.length - 1; i >= 0; i--) {
    cuts[i] = { file: files[i] as string, cut: bound };
    bound = Math.min(bound, (await firstStep(files[i] as string, opts.maxLineBytes)) ?? Infinity);
  }
  return cuts;
}

/** True when a chain's ancestor gives `row` (below its cut, or without a numeric `$step`). */
export const belowCut = (row: Record<string, unknown>, cut: number): boolean => !(typeof row.$step === 'number' && row.$step >= cut);

/**
 * The rows the ancestors of table file `file` give a read with ancestry (docs/DESIGN.md §6),
 * oldest first: each ancestor's rows below its cut ({@link ancestorCuts}). Each ancestor's
 * reader is handed to `onReader` when it is done, for its bad lines and damage.
 */
export async function* ancestorRows(
  file: string,
  opts: Omit<ReadLogOptions, 'ancestry'> = {},
  onReader: (reader: LogReader) => void = () => undefined,
): AsyncGenerator<Record<string, unknown>> {
  const cuts = await ancestorCuts(file, opts);
  const { onWarning: _w, ...readOpts } = opts;
  for (const { file: f, cut } of cuts) {
    const reader = readLog(f, readOpts);
    for await (const row of reader) if (belowCut(row, cut)) yield row;
    onReader(reader);
  }
}

/** readLog with `ancestry`: the ancestors' rows ({@link ancestorRows}), then the file's own. */
function chainReader(file: string, opts: ReadLogOptions): LogReader {
  const { ancestry: _a, ...rest } = opts;
  const badLines: number[] = [];
  const damaged: Damage[] = [];
  let truncated = false;
  const take = (r: LogReader) => {
    badLines.push(...r.badLines);
    damaged.push(...r.damaged);
    truncated ||= r.truncated;
  };
  return {
    badLines,
    damaged,
    get truncated() {
      return truncated;
    },
    async *[Symbol.asyncIterator]() {
      yield* ancestorRows(file, rest, take);
      const { onWarning: _w, ...own } = rest;
      const reader = readLog(file, own);
      yield* reader;
      take(reader);
    },
  };
}
