/**
 * `rowlog pipe --dir D --table T [--level L] [--max-line-bytes N]`: a trainer in any language
 * prints rows as NDJSON on stdout and pipes it here. Each line that is a JSON object goes
 * through the full pipeline (summarize, route, the default sinks of the run folder D), with
 * `$table`, `$step`, `$time` and `$level` keys honoured; every other line (the trainer's own
 * prints, progress bars, JSON that is not an object, binary noise) passes to stdout byte for
 * byte (issue 11, docs/DESIGN.md §7): invalid UTF-8, NUL bytes, `\r\n`, a last line without
 * `\n` are not decoded or re-encoded, and a line longer than `--max-line-bytes` is streamed
 * through as it comes instead of being held (lib/format/line-split.ts: keepCr, onLongPart), and
 * so is a partial line whose first byte past JSON whitespace is not `{` (it cannot be a row: a
 * prompt, a progress bar redrawn with `\r`), so it shows while the trainer waits.
 * The console sink writes to stderr here, so stdout stays exactly the trainer's own bytes.
 *
 * Backpressure: what passes through is written once per input chunk, and the next chunk is taken
 * only once stdout has taken it (its `write()` said so, or `'drain'`), so a slow reader slows the
 * trainer down instead of growing this process.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { createLogger } from '../log/logger.js';
import type { Logger, LoggerOptions } from '../log/logger.js';
import { LineSplitter, maxLineBytesOption } from '../format/line-split.js';
import { lineToRow } from '../format/parse-lines.js';
import { positiveArg } from './args.js';

/** Options of {@link runPipe}. */
export interface PipeOptions {
  /** Run folder. */
  dir: string;
  /** Table of rows without `$table`. @default 'main' */
  table?: string;
  /** Level of rows without `$level`. @default 'INFO' */
  level?: string;
  /** Show rows on the console (stderr). @default true */
  console?: boolean;
  /** Longest line read as a possible row, in bytes; a longer one passes through unread, never held whole. @default 268435456 (256 MiB) */
  maxLineBytes?: number;
}

const NEWLINE = Buffer.from('\n');

/** The first byte of `buf` that is not JSON whitespace (space, tab, `\r`), or -1 when there is none. */
function firstNonSpace(buf: Buffer): number {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i] as number;
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return b;
  }
  return -1;
}

/** True when the first byte that is not JSON whitespace is `{`: only such a line can be a row (the rest are never decoded). */
const mayBeObject = (line: Buffer): boolean => firstNonSpace(line) === 0x7b;

/** True when `head` (a partial line's start) holds a byte that is not JSON whitespace and not `{`: the line cannot be a row (whitespace so far: not known yet). */
function cannotBeObject(head: Buffer): boolean {
  const b = firstNonSpace(head);
  return b !== -1 && b !== 0x7b;
}

/**
 * The logger options of {@link runPipe} and `rowlog run` (`capture`: the console capture too): the
 * run folder, defaults, the console sink on stderr.
 */
export function pipeLoggerOptions(opts: PipeOptions, capture = false): LoggerOptions {
  const pretty = opts.console !== false;
  return {
    dir: opts.dir,
    ...(opts.table === undefined ? {} : { table: opts.table }),
    ...(opts.level === undefined ? {} : { level: opts.level }),
    console: capture ? { stream: process.stderr, pretty, capture } : pretty ? { stream: process.stderr } : false,
  };
}

/** Reads NDJSON from `input` into a logger on `opts.dir`; other lines go to `output`, byte for byte. */
export async function runPipe(opts: PipeOptions, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<void> {
  const maxLineBytes = maxLineBytesOption(opts.maxLineBytes);
  const log = createLogger(pipeLoggerOptions(opts));
  await pipeRows(log, input, output, maxLineBytes);
  await log.close();
}

/**
 * The pipe itself (shared by `rowlog pipe` and `rowlog run`): NDJSON rows of `input` into `log`,
 * every other line to `output` byte for byte; resolves when `input` has ended and `output` took
 * the rest. `log` stays open.
 */
export async function pipeRows(log: Logger, input: NodeJS.ReadableStream, output: NodeJS.WritableStream, maxLineBytes: number): Promise<void> {
  let outputGone = false;
  // EPIPE: keep logging rows, stop waiting on `output` (its drain may never come); what passes
  // through is still handed to it (dropped there: process.stdout stays open), so that `rowlog
  // run`'s console capture, a tee of its write, still keeps it in console.log.
  output.on('error', () => (outputGone = true));

  // What passes through from the current chunk: views of it (or of a joined line), copied once by the flush.
  let out: Buffer[] = [];
  let outBytes = 0;
  let ending = false; // the line being ended now is the input's last, without its `\n`
  let longStart = true; // the next onLongPart is a long line's first part
  let longWarned = false;
  const pass = (b: Buffer) => {
    out.push(b);
    outBytes += b.length;
  };
  const splitter = new LineSplitter(
    {
      onLine(line) {
        if (mayBeObject(line)) {
          const row = lineToRow(line.toString('utf8'));
          if (row !== undefined) {
            log.writeRow(row); // never mistaken for an Entry
            return;
          }
        }
        pass(line);
        if (!ending) pass(NEWLINE);
      },
      onLongPart(part) {
        // A long line that starts like a row was probably meant as one: say once that it was not logged.
        if (longStart && !longWarned && mayBeObject(part.subarray(0, 64))) {
          longWarned = true;
          process.stderr.write(
            `rowlog warning W_PIPE_LONG_LINE: line ${splitter.lineNumber + 1} is longer than ${maxLineBytes} bytes (--max-line-bytes): passed through to stdout, not logged; further ones are not reported\n`,
          );
        }
        longStart = false;
        pass(part);
      },
      onLongLine() {
        longStart = true;
        if (!ending) pass(NEWLINE);
      },
    },
    { maxLineBytes, keepCr: true },
  );

  /** Writes what passed through; calls `cb` once `output` has taken it. */
  const flush = (cb: () => void): void => {
    if (outBytes === 0) return cb();
    const bytes = Buffer.concat(out, outBytes);
    out = [];
    outBytes = 0;
    if (output.write(bytes) || outputGone) return cb();
    const go = () => {
      output.off('drain', go);
      output.off('close', go);
      output.off('error', go);
      cb();
    };
    output.on('drain', go);
    output.on('close', go);
    output.on('error', go);
  };

  await pipeline(
    input,
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        splitter.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
        // A partial line that cannot be a row (a prompt, a progress bar redrawn with `\r`) is
        // passed on now, not at its newline: the user sees it while the program waits.
        if (splitter.partial && !splitter.overLong && cannotBeObject(splitter.partialHead)) splitter.streamPartial();
        flush(cb);
      },
      final(cb) {
        ending = true;
        splitter.end();
        flush(cb);
      },
    }),
  );
}

/** What commander parses {@link pipeFlags} into. */
export interface PipeFlags {
  dir: string;
  table: string;
  level: string;
  console: boolean;
  maxLineBytes?: number;
}

/** The flags `rowlog pipe` and `rowlog run` share, added to `cmd`. */
export function pipeFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--dir <dir>', 'run folder')
    .option('--table <table>', 'table of rows without $table', 'main')
    .option('--level <level>', 'level of rows without $level', 'INFO')
    .option('--no-console', 'do not show rows on stderr')
    .option('--max-line-bytes <n>', 'a longer line is passed through as it comes, never read as a row (default 256 MiB)', positiveArg);
}

/** {@link PipeOptions} from the parsed {@link pipeFlags}. */
export function pipeOptions(o: PipeFlags): PipeOptions {
  return { dir: o.dir, table: o.table, level: o.level, console: o.console, ...(o.maxLineBytes === undefined ? {} : { maxLineBytes: o.maxLineBytes }) };
}

export function registerPipe(program: Command): void {
  pipeFlags(program.command('pipe').description('log NDJSON rows from stdin into a run folder; other lines pass through to stdout byte for byte')).action(
    async (o: PipeFlags) => {
      await runPipe(pipeOptions(o));
    },
  );
}
