/**
 * `rowlog query FILTER [FILE...]` (docs/DESIGN.md §7): jq over `.jsonl`, `.json`, `.gz` and
 * `.csv` files (or `-`/no file for stdin), read in order, meant as a drop-in for the jq command:
 * its flags (lib/cli/query-args.ts) and its exit statuses (jq 1.7: 2 usage or unreadable file,
 * 3 compile error, 5 runtime error, `-e`'s 1 and 4, `halt_error`'s own). rowlog's own failures
 * (an input too large for jq-web, a fault inside it) exit 1. Lines that are not JSON are
 * skipped and summed up on stderr after the run (`--strict`: stop there, as jq).
 *
 * A per-row filter runs one query stream per file (so `input_filename` and line numbers are the
 * file's); slurp, `-n` and `input`/`inputs` run one over all files, as jq does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { isRowlogError, RowlogError } from '../core/errors.js';
import { decoded, type Damage } from '../read/decode.js';
import { countNewlines, DEFAULT_MAX_LINE_BYTES } from '../format/line-split.js';
import { rowJson } from '../format/json-line.js';
import { formatOf, readLog } from '../read/read-log.js';
import { jqReady, query, type QueryOptions, type QueryStream } from '../read/query.js';
import { runOfFile } from '../run/ancestry.js';
import { tableFile } from '../run/layout.js';
import { prefix, usageError } from './args.js';
import { parseQueryArgs, QUERY_FLAGS_HELP, UsageError, type QueryArgs } from './query-args.js';
import { Terminal } from './progress-line.js';

/** Exit statuses as jq 1.7's. */
const EXIT = { usage: 2, badInput: 2, compile: 3, runtime: 5, false: 1, noOutput: 4, rowlog: 1 } as const;

/** `{"a":1}` → `{"a":1,"$file":"x"}` on the text; anything else unchanged. */
function addFile(line: string, name: string): string {
  const t = line.trimEnd();
  if (!t.endsWith('}') || !t.trimStart().startsWith('{')) return line;
  const inner = t.slice(0, -1).trimEnd();
  return `${inner}${inner.endsWith('{') ? '' : ','}"$file":${name}}`;
}

/**
 * The decoded byte stream of one input: stdin or a file, inflated when it starts like gzip
 * (magic bytes, as every reader decides: docs/DESIGN.md §6); a truncated gzip ends at its last
 * whole line.
 */
function openInput(file: string, progress: { bytes: number }, onDamaged: (d: Damage) => void, maxLineBytes: number, q: QueryStream): Readable {
  const src = file === '-' ? process.stdin : fs.createReadStream(file, { highWaterMark: 1 << 18 });
  // After halt nothing more is read, as jq: a live pipe must not hold the run open.
  const stop = () => src.destroy();
  if (q.halted) stop();
  q.once('halt', stop);
  src.once('close', () => q.off('halt', stop));
  src.on('data', (b: Buffer) => {
    progress.bytes += b.length;
  });
  // Big inflate chunks: fewer writes, decodes and splits downstream.
  // A gzip that ends inside a member ends at its last whole line (decoded drops the torn one).
  // A damaged member of a blocked gzip is skipped, and said (docs/DESIGN.md §6).
  return Readable.from(decoded(src as AsyncIterable<Buffer>, { chunkSize: 1 << 18, onDamaged, maxLineBytes }), { objectMode: false });
}

/**
 * Writes `text` to the query stream, honouring backpressure. A stream that failed meanwhile (a
 * bad line under --strict, an input too large) throws its error here: its 'error' event may have
 * come while nothing waited for 'drain', and a write after it would wait for a 'drain' that
 * never comes.
 */
async function put(q: QueryStream, text: string | Buffer): Promise<void> {
  if (q.errored) throw q.errored;
  if (!q.write(text)) await once(q, 'drain');
}

/**
 * Feeds one file into `q`; returns its line count (a missing final newline is added). The
 * query stream cuts lines itself and bounds them by maxLineBytes; only `--with-file` needs whole
 * lines here, kept as a list of parts (linear on a long line) and passed on untouched once
 * longer than the bound (the query then skips it as too long).
 */
async function feedFile(
  q: QueryStream,
  file: string,
  cli: QueryArgs,
  progress: { bytes: number },
  csvBad: (n: number) => void,
  onDamaged: (d: Damage) => void,
  onWarning: (message: string) => void,
): Promise<number> {
  // Only a table file of a run folder has a chain: any other file is read as without --ancestry.
  const chained = file !== '-' && cli.ancestry && tableFile(path.basename(file)) !== undefined && runOfFile(file) !== undefined;
  if (file !== '-' && formatOf(file) === 'csv' && !chained) {
    let lines = 1;
    const reader = readLog(file, { format: 'csv', strict: cli.opts.strict === true, onBadLine: csvBad });
    for await (const row of reader) {
      if (cli.withFile) row.$file = file;
      await put(q, `${JSON.stringify(row)}\n`);
      lines++;
    }
    return lines;
  }
  if (chained) {
    // The chain's rows, as readLog gives them (docs/DESIGN.md §6), one JSONL line each.
    let lines = 0;
    const reader = readLog(file, { ancestry: true, strict: cli.opts.strict === true, onBadLine: csvBad, onWarning: (w) => onWarning(`${w.code}: ${w.message}`) });
    for await (const row of reader) {
      if (cli.withFile) row.$file = file;
      await put(q, `${rowJson(row)}\n`);
      lines++;
    }
    for (const d of reader.damaged) onDamaged(d);
    return lines;
  }
  const name = JSON.stringify(file);
  const max = cli.opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let lines = 0;
  let lastByte = 10;
  let parts: Buffer[] = [];
  let held = 0;
  let passing = false; // a line past the bound: its bytes go on as they come
  try {
    await feedChunks();
  } catch (err) {
    if (!q.halted) throw err; // halt stopped the input (a premature close): nothing more to read
  }
  if (q.halted) return lines;
  if (parts.length > 0) await put(q, `${addFile(Buffer.concat(parts).toString('utf8'), name)}\n`);
  else if (lastByte !== 10) await put(q, '\n');
  if (lastByte !== 10) lines++;
  return lines;

  /** The file's chunks into `q` (lines, lastByte, and --with-file's parts kept above). */
  async function feedChunks(): Promise<void> {
    for await (const chunk of openInput(file, progress, onDamaged, max, q) as AsyncIterable<Buffer>) {
      if (q.halted) break;
      if (chunk.length === 0) continue;
      let from = 0;
      lines += countNewlines(chunk);
      lastByte = chunk[chunk.length - 1] as number;
      if (!cli.withFile) {
        await put(q, chunk);
        continue;
      }
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
        const piece = chunk.subarray(from, nl + 1);
        if (passing) await put(q, piece);
        else {
          parts.push(piece);
          const line = Buffer.concat(parts).toString('utf8').slice(0, -1);
          await put(q, `${addFile(line, name)}\n`);
        }
        parts = [];
        held = 0;
        passing = false;
        from = nl + 1;
      }
      if (from < chunk.length) {
        const rest = chunk.subarray(from);
        if (passing) await put(q, rest);
        else {
          parts.push(rest);
          held += rest.length;
          if (held > max) {
            for (const p of parts) await put(q, p);
            parts = [];
            passing = true;
          }
        }
      }
    }
  }
}

/** `n bad lines skipped (lines 10, 500, …)` */
export function badLinesSummary(count: number, where: string[]): string {
  const shown = where.slice(0, 10).join(', ') + (count > 10 ? ', …' : '');
  return `${count} bad line${count === 1 ? '' : 's'} skipped (line${count === 1 ? '' : 's'} ${shown})`;
}

/** Reads `--slurpfile`'s JSON texts into one JSON array text (with jq's own parser). */
async function slurpJson(file: string): Promise<string> {
  const q = query('.', { slurp: true, strict: true, filename: file });
  const out: Buffer[] = [];
  q.on('data', (d: Buffer) => out.push(d));
  const done = once(q, 'end');
  q.end(fs.readFileSync(file));
  await done;
  return Buffer.concat(out).toString('utf8').trim() || '[]';
}

/** The query options for the run: colour, the files' variables. */
async function finalOptions(cli: QueryArgs): Promise<QueryOptions> {
  const jqFlags = [...(cli.opts.jqFlags ?? [])];
  const noColor = (process.env.NO_COLOR ?? '') !== '';
  if (cli.color ?? (process.stdout.isTTY === true && !noColor)) jqFlags.push('-C');
  const args = { ...cli.opts.args };
  const jsonArgs = { ...cli.opts.jsonArgs };
  for (const [name, file] of cli.rawFiles) args[name] = fs.readFileSync(file, 'utf8');
  for (const [name, file] of cli.slurpFiles) jsonArgs[name] = await slurpJson(file);
  return { ...cli.opts, jqFlags, args, jsonArgs, ...(cli.exitStatus ? { exitStatus: true } : {}) };
}

/** What went wrong while a query ran, for the exit status. */
interface Outcome {
  status: number;
  badCount: number;
  bad: string[];
  errors: number;
  out: boolean;
  /** The last output's truth (jq's -e), undefined before any output. */
  truthy: boolean | undefined;
  halted: boolean;
  /** Damaged gzip stretches skipped (exit 1 at the end unless --allow-damage). */
  damaged: number;
}

async function runQuery(cli: QueryArgs): Promise<number> {
  await jqReady(); // so a bad filter fails here, before any input is read
  let opts: QueryOptions;
  try {
    opts = await finalOptions(cli);
    query(cli.filter, opts); // compile once: a bad filter is exit 3 before any file is read
  } catch (err) {
    const msg = (err as Error).message;
    if (isRowlogError(err) && err.code === 'ERR_JQ') {
      process.stderr.write(`${msg}\n`);
      return EXIT.compile;
    }
    process.stderr.write(`${prefix('query')}${msg}\n`);
    return EXIT.usage;
  }
  const term = new Terminal();
  const outcome: Outcome = { status: 0, badCount: 0, bad: [], errors: 0, out: false, truthy: undefined, halted: false, damaged: 0 };
  const stdoutError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  };
  process.stdout.on('error', stdoutError);
  const progress = { bytes: 0 };
  const sizeOf = (f: string) => (f === '-' ? 0 : (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0));
  term.startProgress(cli.files.reduce((s, f) => s + sizeOf(f), 0), progress);
  const label = (file: string, line: number) => (cli.files.length > 1 ? `${file}:${line}` : `${line}`);
  const fileLine = (file: string, line: number) => `${file === '-' ? '<stdin>' : file}:${line}`;
  const noteBad = (text: string) => {
    outcome.badCount++;
    if (outcome.bad.length < 10) outcome.bad.push(text);
  };
  // Unreadable inputs: said as jq says them, the others still read, exit 2 at the end.
  const readable = cli.files.filter((f) => {
    if (f === '-') return true;
    try {
      fs.closeSync(fs.openSync(f, 'r'));
      if (fs.statSync(f).isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${f}'`), { code: 'EISDIR' });
      return true;
    } catch (err) {
      term.say(`${prefix('query')}${(err as Error).message}\n`);
      outcome.status = EXIT.badInput;
      return false;
    }
  });
  const whole = opts.slurp === true || opts.nullInput === true || /\binputs?\b/.test(cli.filter);
  const groups = whole ? [readable] : readable.map((f) => [f]);
  if (whole && readable.length === 0 && cli.files.length > 0 && opts.nullInput !== true) groups.length = 0;
  try {
    for (const files of groups) {
      if (outcome.halted) break;
      await runOne(cli, opts, files, outcome, term, progress, { label, fileLine, noteBad });
    }
  } catch (err) {
    const msg = (err as Error).message;
    if (isRowlogError(err) && err.code === 'ERR_BAD_LINE') {
      term.say(`${msg}\n`);
      term.stop();
      return EXIT.badInput;
    }
    term.say(`${prefix('query')}${msg}\n`);
    term.stop();
    return outcome.status || EXIT.rowlog;
  } finally {
    term.stop();
  }
  if (outcome.badCount > 0) {
    const note = outcome.out || outcome.errors > 0 ? '' : ': no line of the input was JSON';
    term.say(`${badLinesSummary(outcome.badCount, outcome.bad)}${note}\n`);
  }
  if (outcome.halted) return outcome.status;
  if (outcome.status !== 0) return outcome.status;
  if (outcome.errors > 0) return EXIT.runtime;
  if (outcome.damaged > 0 && !cli.allowDamage) return EXIT.rowlog;
  if (cli.exitStatus) {
    if (outcome.truthy === undefined) return EXIT.noOutput;
    if (!outcome.truthy) return EXIT.false;
  }
  return 0;
}

/** One query stream over `files` (one file, or all of them in whole-input mode). */
async function runOne(
  cli: QueryArgs,
  opts: QueryOptions,
  files: string[],
  outcome: Outcome,
  term: Terminal,
  progress: { bytes: number },
  names: { label: (f: string, n: number) => string; fileLine: (f: string, n: number) => string; noteBad: (s: string) => void },
): Promise<void> {
  const last = files[files.length - 1];
  const size = files.reduce((s, f) => s + (f === '-' ? 0 : (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0)), 0);
  // Files of some size: start the worker threads at once instead of after the first chunks.
  const workers = opts.workers ?? (size > 8 * 1024 * 1024 && os.availableParallelism() >= 2 ? 2 : undefined);
  const q = query(cli.filter, { ...opts, filename: last === undefined || last === '-' ? null : last, ...(workers === undefined ? {} : { workers }) });
  // Line numbers of a whole-input run count across its files: which file a line is in.
  const ends: Array<{ file: string; end: number }> = [];
  let current = { file: files[0] ?? '-', start: 0 };
  const locate = (n: number): { file: string; line: number } => {
    let start = 0;
    for (const { file, end } of ends) {
      if (n <= end) return { file, line: n - start };
      start = end;
    }
    return { file: current.file, line: n - current.start };
  };
  let strictAt = '';
  q.on('jqerror', (e: { line: number; message: string }) => {
    outcome.errors++;
    const at = locate(e.line);
    term.say(`jq: error (at ${names.fileLine(at.file, at.line)}): ${e.message}\n`);
  });
  q.on('data', (d: Buffer) => {
    term.beforeOut();
    outcome.out = true;
    if (!process.stdout.write(d)) {
      q.pause();
      process.stdout.once('drain', () => q.resume());
    }
  });
  const finished = once(q, 'end');
  // The stream can fail while its files are still fed (then put throws); this promise is awaited
  // only after them, so it must not count as an unhandled rejection meanwhile.
  finished.catch(() => undefined);
  try {
    for (const file of files) {
      current = { file, start: current.start };
      const damaged = (d: Damage) => {
        outcome.damaged++;
        const lost = d.rowsLost === undefined ? 'rows lost unknown' : `${d.rowsLost} row${d.rowsLost === 1 ? '' : 's'} lost`;
        term.say(`${prefix('query')}${file === '-' ? '<stdin>' : file}: damaged gzip member at byte ${d.offset} skipped (${lost})\n`);
      };
      const lines = await feedFile(
        q,
        file,
        cli,
        progress,
        (n) => {
          if (opts.strict === true) strictAt = names.fileLine(file, n);
          else names.noteBad(names.label(file, n));
        },
        damaged,
        (message) => term.say(`${prefix('query')}${file}: ${message}\n`),
      );
      ends.push({ file, end: current.start + lines });
      current = { file, start: current.start + lines };
    }
    q.end();
    await finished;
  } catch (err) {
    if (isRowlogError(err) && err.code === 'ERR_BAD_LINE') {
      const m = /^line (\d+): (.*)$/.exec(err.message);
      if (m) {
        const at = locate(Number(m[1]));
        throw new RowlogError('ERR_BAD_LINE', `jq: error (at ${strictAt || names.fileLine(at.file, at.line)}): ${m[2]} (--strict)`);
      }
    }
    throw err;
  }
  for (const n of q.badLines) {
    const at = locate(n);
    names.noteBad(names.label(at.file, at.line));
  }
  outcome.badCount += q.badLineCount - Math.min(q.badLineCount, q.badLines.length);
  if (q.lastTruthy !== undefined) outcome.truthy = q.lastTruthy;
  if (q.halted) {
    outcome.halted = true;
    const { code, message } = q.halted;
    if (code !== 0 || message !== 'null') {
      const v = JSON.parse(message) as unknown;
      // jq 1.7: a string is printed as it is, anything else as JSON and a newline.
      term.say(typeof v === 'string' ? v : `${message}\n`);
    }
    outcome.status = code;
  }
}

/** Adds `rowlog query` to `program`. */
export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('run a jq filter over .jsonl, .json, .gz and .csv files (stdin without FILE), in order, as the jq command does')
    .usage('[options] FILTER [FILE...]')
    .argument('[FILTER]')
    .argument('[FILE...]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', QUERY_FLAGS_HELP)
    .action(async (_filter: string, _files: string[], _opts: unknown, cmd: Command) => {
      let cli: QueryArgs;
      try {
        // The raw words after `query`: commander would drop a `--` the filter may need.
        const raw = process.argv;
        const at = raw.indexOf('query', 2);
        cli = parseQueryArgs(at === -1 ? cmd.args : raw.slice(at + 1), process.stdin.isTTY === true);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        usageError('query', err.message);
        return;
      }
      if (cli.help) {
        cmd.outputHelp();
        return;
      }
      process.exitCode = await runQuery(cli);
    });
}
