/**
 * `rowlog query FILTER FILE...` (docs/DESIGN.md §7): jq over `.jsonl`, `.gz` and `.csv` files (or `-`
 * for stdin), read in order as one stream. Exit 0 on success, 1 on a runtime failure (an
 * unreadable file, a bad line under `--strict`, a jq error on some input: the other inputs'
 * results still come out), 2 on usage errors (a bad filter prints jq's message, a bad flag).
 * Lines that are not JSON are skipped and summed up on stderr after the run.
 */
import fs from 'node:fs';
import os from 'node:os';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { isRowlogError } from '../core/errors.js';
import { decoded } from '../read/decode.js';
import { formatOf, readLog } from '../read/read-log.js';
import { jqReady, query, type QueryOptions, type QueryStream } from '../read/query.js';
import { prefix, usageError } from './args.js';

/** What the command line asked for. */
interface QueryArgs {
  filter: string;
  files: string[];
  opts: QueryOptions;
  withFile: boolean;
}

/** A usage error: one line on stderr, exit 2. */
class UsageError extends Error {}

type Flag = 'slurp' | 'compact' | 'raw' | 'nullInput' | 'strict';
const SHORT: Record<string, Flag> = { s: 'slurp', c: 'compact', r: 'raw', n: 'nullInput' };
const LONG: Record<string, Flag> = {
  '--slurp': 'slurp',
  '--compact-output': 'compact',
  '--raw-output': 'raw',
  '--null-input': 'nullInput',
  '--strict': 'strict',
};

/** jq-style arguments (`--arg NAME VALUE` takes two, which commander cannot express). */
function parseQueryArgs(argv: string[]): QueryArgs {
  const flags: Partial<Record<Flag, boolean>> = {};
  const args: Record<string, string> = {};
  const jsonArgs: Record<string, string> = {};
  const positional: string[] = [];
  let withFile = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    } else if (a === '--arg' || a === '--argjson') {
      const name = argv[i + 1];
      const value = argv[i + 2];
      if (name === undefined || value === undefined) throw new UsageError(`option '${a}' needs NAME and VALUE`);
      (a === '--arg' ? args : jsonArgs)[name] = value;
      i += 2;
    } else if (a === '--with-file') {
      withFile = true;
    } else if (LONG[a] !== undefined) {
      flags[LONG[a]] = true;
    } else if (/^-[a-z]+$/.test(a)) {
      for (const c of a.slice(1)) {
        const key = SHORT[c];
        if (key === undefined) throw new UsageError(`unknown option '-${c}'`);
        flags[key] = true;
      }
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`unknown option '${a}'`);
    } else {
      positional.push(a);
    }
  }
  const [filter, ...files] = positional;
  if (filter === undefined) throw new UsageError('missing FILTER');
  if (files.length === 0 && flags.nullInput !== true) throw new UsageError('missing FILE (use - for stdin)');
  const opts: QueryOptions = { ...flags, compact: flags.compact === true, args, jsonArgs };
  return { filter, files, opts, withFile };
}

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
function openInput(file: string, progress: { bytes: number }): Readable {
  const src = file === '-' ? process.stdin : fs.createReadStream(file, { highWaterMark: 1 << 18 });
  src.on('data', (b: Buffer) => {
    progress.bytes += b.length;
  });
  // Big inflate chunks: fewer writes, decodes and splits downstream.
  // A gzip that ends inside a member ends at its last whole line (decoded drops the torn one).
  return Readable.from(decoded(src as AsyncIterable<Buffer>, { chunkSize: 1 << 18 }), { objectMode: false });
}

/** Writes `text` to the query stream, honouring backpressure. */
async function put(q: QueryStream, text: string | Buffer): Promise<void> {
  if (!q.write(text)) await once(q, 'drain');
}

/** Feeds one file into `q`; returns its line count (a missing final newline is added). */
async function feedFile(q: QueryStream, file: string, cli: QueryArgs, progress: { bytes: number }, csvBad: (n: number) => void): Promise<number> {
  const name = JSON.stringify(file);
  if (formatOf(file) === 'csv') {
    let lines = 1;
    const reader = readLog(file, { format: 'csv', strict: cli.opts.strict === true, onBadLine: csvBad });
    for await (const row of reader) {
      if (cli.withFile) row.$file = file;
      await put(q, `${JSON.stringify(row)}\n`);
      lines++;
    }
    return lines;
  }
  let lines = 0;
  let tail: Buffer = Buffer.alloc(0);
  const lineText = (b: Buffer): string | Buffer =>
    cli.withFile ? `${b.toString('utf8').split('\n').slice(0, -1).map((l) => addFile(l, name)).join('\n')}\n` : b;
  const input = openInput(file, progress);
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const nl = chunk.lastIndexOf(10);
    if (nl === -1) {
      tail = Buffer.concat([tail, chunk]);
      continue;
    }
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    const whole = tail.length > 0 ? Buffer.concat([tail, chunk.subarray(0, nl + 1)]) : chunk.subarray(0, nl + 1);
    tail = chunk.subarray(nl + 1);
    await put(q, lineText(whole));
  }
  if (tail.length > 0) {
    await put(q, lineText(Buffer.concat([tail, Buffer.from('\n')])));
    lines++;
  }
  return lines;
}

/** `n bad lines skipped (lines 10, 500, …)` */
export function badLinesSummary(count: number, where: string[]): string {
  const shown = where.slice(0, 10).join(', ') + (count > 10 ? ', …' : '');
  return `${count} bad line${count === 1 ? '' : 's'} skipped (line${count === 1 ? '' : 's'} ${shown})`;
}

async function runQuery(cli: QueryArgs): Promise<number> {
  await jqReady(); // so a bad filter fails here, before any input is read
  let q: QueryStream;
  try {
    // Files of some size: start the worker threads at once instead of after the first chunks.
    const size = cli.files.reduce((sum, f) => sum + (f === '-' ? 0 : (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0)), 0);
    const workers = cli.opts.workers ?? (size > 8 * 1024 * 1024 && os.availableParallelism() >= 2 ? 2 : undefined);
    q = query(cli.filter, workers === undefined ? cli.opts : { ...cli.opts, workers });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  // Global line number → the input it is in and the line there.
  const ends: Array<{ file: string; end: number }> = [];
  let current = { file: cli.files[0] ?? '-', start: 0 };
  const locate = (n: number): { file: string; line: number } => {
    let start = 0;
    for (const { file, end } of ends) {
      if (n <= end) return { file, line: n - start };
      start = end;
    }
    return { file: current.file, line: n - current.start };
  };
  const label = (file: string, line: number) => (cli.files.length > 1 ? `${file}:${line}` : `${line}`);
  const fileLine = (file: string, line: number) => `${file === '-' ? '<stdin>' : file}:${line}`;
  const bad: string[] = [];
  let badCount = 0;
  let errors = 0;
  const noteBad = (text: string) => {
    badCount++;
    if (bad.length < 10) bad.push(text);
  };
  let strictBad = '';
  q.on('jqerror', (e: { line: number; message: string }) => {
    errors++;
    const at = locate(e.line);
    process.stderr.write(`jq: error (at ${fileLine(at.file, at.line)}): ${e.message}\n`);
  });

  const stdoutError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  };
  process.stdout.on('error', stdoutError);
  q.pipe(process.stdout, { end: false });
  const finished = once(q, 'end');

  const progress = { bytes: 0 };
  const total = cli.files.reduce((s, f) => s + (f === '-' ? 0 : (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0)), 0);
  const timer =
    process.stderr.isTTY && total > 50 * 1024 * 1024
      ? setInterval(() => process.stderr.write(`\rquery: ${Math.floor((100 * progress.bytes) / total)}% of ${Math.round(total / 1048576)} MB`), 250)
      : undefined;
  try {
    for (const file of cli.files) {
      current = { file, start: current.start };
      const lines = await feedFile(q, file, cli, progress, (n) => {
        if (cli.opts.strict === true) strictBad = fileLine(file, n);
        else noteBad(label(file, n));
      });
      ends.push({ file, end: current.start + lines });
      current = { file, start: current.start + lines };
    }
    q.end();
    await finished;
  } catch (err) {
    const msg = (err as Error).message;
    if (isRowlogError(err) && err.code === 'ERR_BAD_LINE') {
      const n = /^line (\d+)/.exec(msg)?.[1];
      const at = n === undefined ? undefined : locate(Number(n));
      const where = strictBad || (at ? fileLine(at.file, at.line) : current.file);
      process.stderr.write(`${prefix('query')}bad line at ${where}: not valid JSON (--strict)\n`);
    } else {
      process.stderr.write(`${prefix('query')}${msg}\n`);
    }
    return 1;
  } finally {
    if (timer) {
      clearInterval(timer);
      process.stderr.write('\r\x1b[K');
    }
  }
  for (const n of q.badLines) {
    const at = locate(n);
    noteBad(label(at.file, at.line));
  }
  badCount += q.badLineCount - Math.min(q.badLineCount, q.badLines.length);
  if (badCount > 0) process.stderr.write(`${badLinesSummary(badCount, bad)}\n`);
  return errors > 0 ? 1 : 0;
}

/** Adds `rowlog query` to `program`. */
export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('run a jq filter over .jsonl, .gz and .csv files (- for stdin), in order')
    .usage('[options] FILTER FILE...')
    .argument('<FILTER>')
    .argument('[FILE...]')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      `
Options (as in jq):
  -s, --slurp              all rows as one array
  -c, --compact-output     one result per line
  -r, --raw-output         strings without quotes
  -n, --null-input         run once on null; read rows with input/inputs
  --arg NAME VALUE         $NAME is the string VALUE
  --argjson NAME JSON      $NAME is the JSON value
  --strict                 a line that is not JSON is an error (exit 1)
  --with-file              add "$file" (the input's name) to each row`,
    )
    .action(async (_filter: string, _files: string[], _opts: unknown, cmd: Command) => {
      let cli: QueryArgs;
      try {
        // The raw words after `query`: commander would drop a `--` the filter may need.
        const raw = process.argv;
        const at = raw.indexOf('query', 2);
        cli = parseQueryArgs(at === -1 ? cmd.args : raw.slice(at + 1));
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        usageError('query', err.message);
        return;
      }
      process.exitCode = await runQuery(cli);
    });
}
