/**
 * `rowlog tail [-n N] [-f] [--pretty] FILE...` (docs/DESIGN.md §7): the last N rows of each file as
 * JSONL, then (`-f`) rows as they are logged, through truncation and replacement.
 *
 * Several files: every output line starts with `FILE: ` (with `--pretty`, the header line of
 * each row's block), so interleaved rows from following several files stay attributable and
 * `grep`-able; the first rows of each file are printed in the order the files were given.
 * Ctrl-C and a reader that goes away (`| head`, EPIPE) end quietly with exit 0; a missing file
 * is one line on stderr and exit 1, except with `-f`, which waits for it (as `tail -F`) and
 * says so on stderr. What lib/read/tail.ts notices (a damaged member skipped, a line longer than
 * the look-back) is one line on stderr each, `rowlog: tail: FILE: …`. On a terminal, control
 * characters in rows are shown as `less` shows them (lib/cli/visible.ts); a pipe gets the bytes.
 * `--ancestry`: a resumed run's ancestors' rows come first (issue 13 §1, docs/DESIGN.md §6).
 * A FILE that is a `redis://` or `rediss://` URL (`redis://host:port/RUN/TABLE`) is a table's
 * Redis stream, read by lib/cli/tail-redis.ts into the same batches and printing.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Command } from 'commander';
import { countArg, positiveArg, prefix, usageError } from './args.js';
import { visible } from './visible.js';
import { isRedisUrl, redisBatches, redisTableUrl } from './tail-redis.js';
import { renderRow } from '../../sinks/pretty.js';
import { rowJson } from '../format/json-line.js';
import { lineToRow } from '../format/parse-lines.js';
import type { RowlogWarning } from '../core/warnings.js';
import { ancestorCuts, belowCut, readLog } from '../read/read-log.js';
import type { ChainCut } from '../read/read-log.js';
import { DEFAULT_MAX_LOOKBACK_BYTES, tailBatches, tailLines } from '../read/tail.js';
import type { TailNotice } from '../read/tail.js';
import { jqReady, query } from '../read/query.js';
import type { JqRuntimeError } from '../read/query.js';
import { isCsvFormat, tableFile } from '../run/layout.js';

/** Options of {@link runTail}. */
export interface TailCliOptions {
  /** Rows to show from the end first. @default 10 */
  lines?: number;
  /** Keep printing rows as they are logged. @default false */
  follow?: boolean;
  /** Render each row like the console sink instead of JSONL. @default false */
  pretty?: boolean;
  /** Poll interval when following (ms). @default 100 */
  pollMs?: number;
  /** Decoded bytes looked back through for the first rows, and the longest row followed (lib/read/tail.ts). @default 32 MiB */
  maxLookbackBytes?: number;
  /** Where notices go (one line each). @default process.stderr */
  err?: Writable;
  /** Applied to each batch of lines before printing (e.g. a jq filter): input lines → output lines. */
  transform?: (lines: string[]) => Promise<string[]>;
  /** Where rows go. @default process.stdout */
  out?: Writable;
  /** Stops following (SIGINT does too). */
  signal?: AbortSignal;
  /**
   * A table file of a resumed run: the first rows are the last `lines` of the whole chain, the
   * ancestors' rows before the file's own (readLog's `ancestry` rule), then the file is followed.
   * @default false
   */
  ancestry?: boolean;
}

/**
 * The last `n` rows the ancestors of `file` give it (lib/read/read-log.ts's ancestorCuts), as
 * JSONL lines; the chain's problems are said on `err`. The newest ancestor first, each read from
 * its end ({@link lastBelow}), so a long parent is not read whole for a few rows.
 */
async function ancestorTail(file: string, n: number, err: Writable, tty: boolean): Promise<string[]> {
  let last: string[] = [];
  if (n === 0) return last;
  const say = (w: RowlogWarning) => {
    const line = `${prefix('tail')}${file}: ${w.code}: ${w.message}`;
    err.write(`${tty ? visible(line) : line}\n`);
  };
  const cuts = await ancestorCuts(file, { onWarning: say });
  for (let i = cuts.length - 1; i >= 0 && last.length < n; i--) {
    const { file: f, cut } = cuts[i] as ChainCut;
    last = (await lastBelow(f, cut, n - last.length)).map(rowJson).concat(last); // no spread: n may be millions
  }
  return last;
}

/** Lines asked of an ancestor's end at most before it is read whole instead. */
const MAX_END_LINES = 1 << 24;

/**
 * The last `k` rows of an ancestor's table file `f` below its `cut`: from the file's end as tail
 * reads it (lib/read/tail.ts), asking 8× more lines while the cut leaves fewer than `k`; a CSV
 * file, or rows beyond the look-back, read whole.
 */
async function lastBelow(f: string, cut: number, k: number): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  const table = tableFile(path.basename(f));
  if (table !== undefined && !isCsvFormat(table.format)) {
    for (let lines = k; lines <= MAX_END_LINES; lines *= 8) {
      let short = false; // the look-back held fewer lines than asked
      let seen = 0;
      rows.length = 0;
      for await (const line of tailLines(f, { lines, onNotice: (x) => (short ||= x.type === 'lookback') })) {
        seen++;
        const row = lineToRow(line);
        if (row !== undefined && belowCut(row, cut)) rows.push(row);
      }
      if (rows.length >= k || (seen < lines && !short)) return rows.slice(-k);
      if (short) break;
    }
    rows.length = 0;
  }
  for await (const row of readLog(f)) {
    if (!belowCut(row, cut)) continue;
    rows.push(row);
    if (rows.length > 2 * k) rows.splice(0, rows.length - k);
  }
  return rows.slice(-k);
}

/** A row rendered like the console sink; lines that are not rows are printed as they are. `esc`: make control characters visible (a TTY). */
function pretty(line: string, table: string, color: boolean, esc: boolean): string {
  const row = lineToRow(line);
  if (row === undefined) return `${esc ? visible(line) : line}\n`;
  const { $table, $step, $level } = row;
  const text = renderRow(
    {
      table: typeof $table === 'string' ? $table : table,
      step: typeof $step === 'number' ? $step : '?',
      level: typeof $level === 'number' ? $level : '?',
      data: row,
    },
    { maxKeys: 40, digits: 6, color },
  );
  return esc ? visible(text, { keepSgr: true }) : text;
}

/** The table a file holds, from its name (`train.jsonl.gz` → `train`; lib/run/layout.ts's rule), else the name. */
function tableOf(file: string): string {
  return tableFile(path.basename(file))?.name ?? path.basename(file);
}

/** One line of stderr for what tail noticed in `file`. */
function noticeLine(file: string, n: TailNotice): string {
  const where = `${prefix('tail')}${file}: `;
  switch (n.type) {
    case 'damaged':
      return `${where}a damaged member at byte ${n.offset} was skipped (${n.length} bytes)`;
    case 'lookback':
      return n.shown === 0
        ? `${where}the last line is longer than ${n.limit} bytes; not shown`
        : `${where}only the last ${n.shown} ${n.shown === 1 ? 'line fits' : 'lines fit'} in ${n.limit} bytes; the lines before are not shown`;
    case 'long-line':
      return `${where}a line longer than ${n.limit} bytes was skipped`;
    case 'waiting':
      return `${prefix('tail')}waiting for ${file} to appear`;
  }
}

/** Prints the tails of `files` (see the module comment); resolves when done or stopped. */
export async function runTail(files: string[], opts: TailCliOptions = {}): Promise<void> {
  // A redis:// FILE is a table's stream (lib/cli/tail-redis.ts), checked before anything is read.
  const redis = new Map(files.filter(isRedisUrl).map((f) => [f, redisTableUrl(f, 'FILE')]));
  for (const file of files) {
    if (redis.has(file)) continue;
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && opts.follow === true) continue; // waited for (tail -F)
      throw new Error(`tail: cannot open '${file}': ${code === 'ENOENT' ? 'no such file' : code}`);
    }
  }
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const tty = (out as { isTTY?: boolean }).isTTY === true;
  const color = opts.pretty === true && tty && !process.env.NO_COLOR;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort);
  process.on('SIGINT', onAbort);
  let failure: Error | undefined;
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') failure ??= err;
    stop.abort();
  };
  out.on('error', onError);

  const print = async (lines: string[], file: string, table: string): Promise<void> => {
    const label = files.length > 1 ? `${file}: ` : '';
    let text = '';
    for (const shown of opts.transform && lines.length > 0 ? await opts.transform(lines) : lines) {
      text += (tty ? visible(label) : label) + (opts.pretty === true ? pretty(shown, table, color, tty) : `${tty ? visible(shown) : shown}\n`);
    }
    if (text === '' || stop.signal.aborted) return;
    if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve).once('error', () => resolve()));
  };

  const tails = files.map((file) => {
    const src = redis.get(file);
    if (src !== undefined) {
      const onNotice = (text: string) => err.write(`${prefix('tail')}${tty ? visible(src.shown) : src.shown}: ${text}\n`);
      const it = redisBatches(src, { lines: opts.lines ?? 10, follow: opts.follow === true, signal: stop.signal, onNotice });
      return { file: src.shown, table: src.table, it };
    }
    const it = tailBatches(file, {
      lines: opts.lines ?? 10,
      follow: opts.follow === true,
      waitForFile: true,
      pollMs: opts.pollMs ?? 100,
      maxLookbackBytes: opts.maxLookbackBytes ?? DEFAULT_MAX_LOOKBACK_BYTES,
      onNotice: (n) => err.write(`${tty ? visible(noticeLine(file, n)) : noticeLine(file, n)}\n`),
      signal: stop.signal,
    });
    return { file, table: tableOf(file), it };
  });
  try {
    // The first batch of each file comes at once (possibly empty): print them in the order given.
    for (const { file, table, it } of tails) {
      const first = await it.next();
      const own = first.done === true ? [] : first.value;
      const n = opts.lines ?? 10;
      // With ancestry, the chain's last rows: the ancestors' fill what the file's own leave.
      const before = opts.ancestry === true && own.length < n && !isRedisUrl(file) ? await ancestorTail(file, n - own.length, err, tty) : [];
      if (!first.done || before.length > 0) await print([...before, ...own], file, table);
    }
    await Promise.all(
      tails.map(async ({ file, table, it }) => {
        for await (const batch of it) await print(batch, file, table);
      }),
    );
  } finally {
    process.off('SIGINT', onAbort);
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all(tails.map(({ it }) => it.return(undefined)));
    out.off('error', onError);
    // a failed stream may still emit 'error' later (EPIPE after the last write): keep it quiet
    out.on('error', () => {});
  }
  if (failure) throw failure;
}

/** Adds the `tail` command to `program`. */
export function registerTail(program: Command): Command {
  return program
    .command('tail')
    .description('print the last rows of .jsonl / .jsonl.gz files (a rowlog .gz is read from its end), and follow them with -f')
    .argument('<file...>', 'files to read (or redis://host:port/RUN/TABLE[?prefix=P]: a table\'s Redis stream); with several, each line starts with "FILE: "')
    .option('-n, --lines <n>', 'rows to show from the end of each file first', countArg, 10)
    .option('-f, --follow', 'keep printing rows as they are logged; survives truncation and replacement of the file, and waits for a file that does not exist yet')
    .option('--pretty', 'render each row like the console sink instead of JSONL')
    .option('--max-lookback <bytes>', 'decoded bytes looked back through for the last rows (a longer row is not shown, and said so)', positiveArg, DEFAULT_MAX_LOOKBACK_BYTES)
    .option('--ancestry', "a table file of a resumed run: its ancestors' rows first (the child's winning where a step repeats), then the file's own")
    .option('--filter <jq>', 'a jq filter applied to every row (e.g. \'select(.loss < 0.1) | {step: ."$step", loss}\')')
    .action(async (files: string[], o: { lines: number; follow?: boolean; pretty?: boolean; filter?: string; maxLookback: number; ancestry?: boolean }) => {
      for (const f of files.filter(isRedisUrl)) {
        try {
          redisTableUrl(f, 'FILE'); // a URL that names no table is a usage error: exit 2
        } catch (err) {
          usageError('tail', (err as Error).message);
          return;
        }
      }
      let transform: TailCliOptions['transform'];
      if (o.filter !== undefined) {
        const filter = o.filter;
        await jqReady();
        try {
          query(filter); // a bad filter is a usage error: exit 2 before reading anything
        } catch (err) {
          usageError('tail', (err as Error).message);
          return;
        }
        transform = (lines) => jqLines(filter, lines);
      }
      await runTail(files, { lines: o.lines, follow: o.follow === true, pretty: o.pretty === true, maxLookbackBytes: o.maxLookback, ancestry: o.ancestry === true, ...(transform ? { transform } : {}) });
    });
}

/** `filter` over one batch of JSONL lines (one small query stream per batch: a poll's worth). */
async function jqLines(filter: string, lines: string[]): Promise<string[]> {
  const q = query(filter, { workers: 0 });
  q.on('jqerror', (e: JqRuntimeError) => process.stderr.write(`jq: error: ${e.message}\n`));
  const out: string[] = [];
  q.on('data', (chunk: Buffer | string) => out.push(String(chunk)));
  q.end(`${lines.join('\n')}\n`);
  await finished(q);
  return out.join('').split('\n').filter((l) => l !== '');
}
