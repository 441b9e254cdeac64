/**
 * `rowlog view RUN [--table T] [--columns loss,acc] [-f] [--width N] [--height N]` (docs/DESIGN.md
 * §7, issue 15 §6): line charts of a table's columns in the terminal, for people on SSH (Skáld's
 * TUI), drawn by lib/cli/term-chart.ts with asciichart.
 *
 * - RUN is a run folder (its table `--table T`, else the table whose file changed last) or a
 *   table file. The table is read once through readLog with `ancestry` (a resumed run is one
 *   curve) into the M4 rule of lib/serve/decimate.ts (every bucket's extremes kept, whatever the
 *   length) and each column's last / min / max (lib/serve/table-index.ts's TableStats).
 * - Columns: `--columns` (an unknown one is a usage error naming the numeric columns), else the
 *   first numeric ones (in the order the table first has them) that fit the height, at most 4.
 * - Size: the terminal's; `--width`/`--height` choose another (and without a terminal, 80
 *   columns and 14 lines per chart).
 * - `-f`: the file is followed (lib/read/tail.ts tailBatches, lined up with where the read
 *   ended as serve does it, lib/serve/snapshot.ts's alignTail; a CSV is read again when it
 *   changes; a table not there yet is waited for, `main` when the run has none). On a terminal
 *   the charts are redrawn in place on the alternate screen, at most 5 times a second, and at the
 *   new size when the window is resized; `q` or Ctrl-C exits 0 and gives the screen back. Without
 *   a terminal a new frame is printed, after a blank line, at most once a second while rows come.
 * - Colours only on a terminal, and never with `NO_COLOR` set.
 * - A missing RUN, or a run without the table, is one line `rowlog: view: …` and exit 1 (with
 *   `-f` a missing table, or table file in a folder that is there, is waited for); bad options
 *   and unknown columns exit 2.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { isValidName } from '../core/entry.js';
import type { RowlogWarning } from '../core/warnings.js';
import { lineToRow } from '../format/parse-lines.js';
import { formatOf, readLog } from '../read/read-log.js';
import { tailBatches } from '../read/tail.js';
import type { TailNotice } from '../read/tail.js';
import { scanTables, tableFile } from '../run/layout.js';
import { fromWireY, TableM4, xOf } from '../serve/decimate.js';
import { alignTail } from '../serve/snapshot.js';
import { TableStats } from '../serve/table-index.js';
import { positiveArg, prefix, usageError } from './args.js';
import { fitCharts, formatCount, renderChart } from './term-chart.js';
import type { ChartInput, NonFinite } from './term-chart.js';

/** Options of {@link runView}. */
export interface ViewCliOptions {
  /** The table of a run folder. @default the table whose file changed last (`main` when the run has none yet) */
  table?: string;
  /** The columns to chart, in order. @default the first numeric columns that fit, at most 4 */
  columns?: string[];
  /** Keep redrawing as rows are logged. @default false */
  follow?: boolean;
  /** Columns of the drawing. @default the terminal's, else 80 */
  width?: number;
  /** Lines of the drawing. @default the terminal's, else 14 per chart */
  height?: number;
  /** How often a followed file is looked at (ms). @default 100 */
  pollMs?: number;
  /** Where the charts go. @default process.stdout */
  out?: Writable;
  /** Where warnings go. @default process.stderr */
  err?: Writable;
  /** Keys (`q`, Ctrl-C) when it is a terminal. @default process.stdin */
  input?: Readable;
  /** Stops following (SIGINT and SIGTERM do too). */
  signal?: AbortSignal;
}

/** A usage error found once the table is read (an unknown column): exit 2. */
export class ViewUsageError extends Error {
  override name = 'ViewUsageError';
}

/** Buckets the charts are decimated from: more than any terminal is wide, so a resize needs no re-read. */
const VIEW_BUCKETS = 4096;
/** Rows kept to line a followed file up with where the read ended (lib/serve/snapshot.ts's alignTail). */
const ALIGN_ROWS = 16;
/** Charts shown by default at most. */
const MAX_DEFAULT_CHARTS = 4;
/** Lines per chart without a terminal (and without `--height`). */
const LINES_PER_CHART = 14;

/** A table as the charts need it, fed row by row: the M4 points, each column's figures, the kinds of non-finite values. */
export class ViewTable {
  /** Every column's points under the M4 rule against `$step` (lib/serve/decimate.ts). */
  readonly m4 = new TableM4(VIEW_BUCKETS);
  /** Every numeric column's rows, last, min and max (lib/serve/table-index.ts). */
  readonly stats = new TableStats();
  /** Every column's NaN, +Infinity and −Infinity, counted apart. */
  readonly kinds = new Map<string, NonFinite>();
  /** The last rows (turned into JSON only when a tail is lined up with them). */
  private readonly lastRows: Array<Record<string, unknown>> = [];
  /** Rows pushed. */
  rows = 0;

  /** The last rows as JSON, to line a tail up with (lib/serve/snapshot.ts's alignTail). */
  get lastKeys(): string[] {
    return this.lastRows.map((r) => JSON.stringify(r));
  }

  /** Adds the next row. */
  push(row: Record<string, unknown>): void {
    const i = this.rows++;
    this.stats.push(i, row);
    this.m4.push(i, xOf(row, i, '$step') as number, row); // `$step`, else the index: always a number
    for (const k in row) {
      const v = row[k];
      if (typeof v !== 'number' || v - v === 0 || k.charCodeAt(0) === 36 /* $ */) continue;
      let n = this.kinds.get(k);
      if (n === undefined) this.kinds.set(k, (n = { nan: 0, posInf: 0, negInf: 0 }));
      if (v !== v) n.nan++;
      else if (v > 0) n.posInf++;
      else n.negInf++;
    }
    this.lastRows.push(row);
    if (this.lastRows.length > ALIGN_ROWS) this.lastRows.splice(0, ALIGN_ROWS / 2);
  }

  /** The numeric columns, in the order the table first has them. */
  columns(): string[] {
    return [...this.stats.cols.keys()];
  }

  /** What the chart of `name` shows. */
  chart(name: string): ChartInput {
    const s = this.stats.cols.get(name);
    const points = this.m4.cols.get(name)?.points() ?? { i: [], x: [], y: [] };
    return {
      name,
      points,
      rows: s === undefined ? 0 : s.n + s.nonFinite,
      last: s?.last == null ? undefined : fromWireY(s.last),
      lastStep: s?.lastStep ?? undefined,
      min: s?.min ?? undefined,
      max: s?.max ?? undefined,
      nonFinite: this.kinds.get(name) ?? { nan: 0, posInf: 0, negInf: 0 },
      origin: this.m4.origin ?? 0,
      total: this.m4.total,
    };
  }
}

/** The table file `run` names, and how the header names it. */
export interface ViewTarget {
  /** The table file read (and followed). */
  file: string;
  /** The header's name for it: `RUN  TABLE`, or the file given. */
  label: string;
}

/** The table file of `run` (see the module comment); throws `view: …` (exit 1) or {@link ViewUsageError}. */
export function resolveTarget(run: string, table: string | undefined, follow: boolean): ViewTarget {
  const st = fs.statSync(run, { throwIfNoEntry: false });
  if (st === undefined) {
    // -f on a table file not there yet (its folder is): waited for, as `tail -F` does
    if (follow && tableFile(path.basename(run)) !== undefined && fs.existsSync(path.dirname(run))) return { file: run, label: run };
    throw new Error(`view: cannot open '${run}': no such file or folder`);
  }
  if (!st.isDirectory()) {
    if (table !== undefined) throw new ViewUsageError(`--table is for a run folder; '${run}' is a table file`);
    return { file: run, label: run };
  }
  if (table !== undefined && !isValidName(table)) throw new ViewUsageError(`'${table}' is not a table name`);
  const tables = scanTables(run);
  const names = tables.length === 0 ? 'it has none yet' : `its tables: ${tables.map((t) => t.name).join(', ')}`;
  // The newest file; of files changed in the same millisecond (a run closed), the largest.
  const rank = (t: (typeof tables)[number]) => [t.files[0]?.mtime ?? 0, t.files[0]?.size ?? 0] as const;
  const newest = tables.reduce<(typeof tables)[number] | undefined>((a, t) => {
    if (a === undefined) return t;
    const [tm, ts] = rank(t);
    const [am, as] = rank(a);
    return tm > am || (tm === am && ts > as) ? t : a;
  }, undefined);
  const found = table === undefined ? newest : tables.find((t) => t.name === table);
  const first = found?.files[0];
  if (found !== undefined && first !== undefined) return { file: path.join(run, first.file), label: `${run}  ${found.name}` };
  if (!follow) throw new Error(table === undefined ? `view: '${run}' has no tables` : `view: '${run}' has no table '${table}' (${names})`);
  const name = table ?? 'main';
  return { file: path.join(run, `${name}.jsonl.gz`), label: `${run}  ${name}` }; // waited for: the default sinks' file
}

/** The columns to chart: `asked` (each must be a numeric column of a table with rows), else the first `fit`. */
export function chooseColumns(table: ViewTable, asked: string[] | undefined, fit: number): string[] {
  const have = table.columns();
  if (asked === undefined) return have.slice(0, fit);
  const unknown = table.rows === 0 ? [] : asked.filter((c) => !have.includes(c));
  if (unknown.length > 0) {
    const list = have.length === 0 ? 'the table has no numeric columns' : `numeric columns: ${have.join(', ')}`;
    throw new ViewUsageError(`no column ${unknown.map((c) => `'${c}'`).join(', ')} (${list})`);
  }
  return asked;
}

/** What a frame is drawn from. */
export interface FrameInput {
  /** The rows read so far. */
  table: ViewTable;
  /** The header's name of the table ({@link ViewTarget}). */
  label: string;
  /** `--columns`, when given. */
  asked: string[] | undefined;
  /** Columns available. */
  width: number;
  /** Lines available; undefined: as many as the charts take. */
  height: number | undefined;
  /** ANSI colours. */
  color: boolean;
  /** Appended to the header (`following, q quits`, the last notice). */
  note: string;
}

/** One frame's lines: the header, then each chart, a blank line between. */
export function frameLines(f: FrameInput): string[] {
  const have = f.table.columns();
  const count = f.asked?.length ?? Math.min(have.length, f.height === undefined ? 3 : MAX_DEFAULT_CHARTS);
  const { charts, height } =
    f.height === undefined
      ? { charts: count, height: LINES_PER_CHART - 5 }
      : fitCharts(f.height, Math.max(1, count), f.asked === undefined ? { minHeight: 6 } : { minHeight: -Infinity });
  const columns = chooseColumns(f.table, f.asked, charts);
  const header = `${f.label}  ${formatCount(f.table.rows)} rows${f.note === '' ? '' : `  ${f.note}`}`;
  const lines = [header.length < f.width ? header : `${header.slice(0, f.width - 2)}…`];
  if (columns.length === 0) lines.push(f.table.rows === 0 ? '(no rows yet)' : '(no numeric columns)');
  columns.forEach((c, k) => {
    if (k > 0) lines.push('');
    lines.push(...renderChart(f.table.chart(c), { width: f.width, height, color: f.color }));
  });
  return lines;
}

/** Reads `file` whole (its ancestors first) into a new {@link ViewTable}; a missing file is an empty table. */
async function readTable(file: string, onWarning: (w: RowlogWarning) => void, signal: AbortSignal): Promise<ViewTable> {
  const table = new ViewTable();
  if (!fs.existsSync(file)) return table;
  for await (const row of readLog(file, { ancestry: true, onWarning })) {
    if (signal.aborted) break;
    table.push(row);
  }
  return table;
}

/** What tail noticed, in a few words for the header (on a terminal, stderr would be drawn over). */
export function noticeText(n: TailNotice): string {
  switch (n.type) {
    case 'damaged':
      return `a damaged member at byte ${n.offset} was skipped`;
    case 'lookback':
    case 'long-line':
      return `a line longer than ${n.limit} bytes was skipped`;
    case 'waiting':
      return 'waiting for the file';
  }
}

// The terminal's control sequences.
const ALT_ON = '\x1b[?1049h\x1b[?25l';
const ALT_OFF = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const EOL = '\x1b[K';
const EOS = '\x1b[J';

/** Draws the charts of `run` (see the module comment); resolves when done, or, following, when stopped. */
export async function runView(run: string, opts: ViewCliOptions = {}): Promise<void> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const tty = (out as { isTTY?: boolean }).isTTY === true;
  const term = out as Writable & { columns?: number; rows?: number };
  const follow = opts.follow === true;
  const color = tty && !process.env.NO_COLOR;
  const { file, label } = resolveTarget(run, opts.table, follow);
  const stop = new AbortController();
  const onStop = () => stop.abort();
  opts.signal?.addEventListener('abort', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  let failure: Error | undefined;
  const onError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') failure ??= e;
    stop.abort();
  };
  out.on('error', onError);
  const warn = (w: RowlogWarning) => err.write(`${prefix('view')}${file}: ${w.code}: ${w.message}\n`);
  const size = () => ({
    width: opts.width ?? (tty && term.columns ? term.columns : 80),
    // on a terminal, a line is left for the cursor (writing the last one would scroll)
    height: opts.height ?? (tty && term.rows ? term.rows - 1 : undefined),
  });
  let table: ViewTable;
  let note = follow ? (tty ? 'following, q quits' : 'following') : '';
  const frame = () => frameLines({ table, label, asked: opts.columns, ...size(), color, note });
  try {
    table = await readTable(file, warn, stop.signal);
    const lines = frame(); // an unknown column is a usage error before the screen is taken
    if (!follow) {
      out.write(`${lines.join('\n')}\n`);
      return;
    }
  } finally {
    if (!follow) cleanup();
  }

  const input = opts.input ?? process.stdin;
  const keys = tty && (input as { isTTY?: boolean }).isTTY === true ? (input as Readable & { setRawMode(on: boolean): void }) : undefined;
  const onKey = (d: Buffer | string) => {
    const s = String(d);
    if (s.includes('q') || s.includes('Q') || s.includes('\x03')) stop.abort();
  };
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const interval = tty ? 200 : 1000;
  const draw = () => {
    timer = undefined;
    drawn = Date.now();
    let lines: string[];
    try {
      lines = frame();
    } catch (e) {
      failure ??= e as Error; // a column asked for is not in the rows that came: a usage error
      stop.abort();
      return;
    }
    if (tty) {
      const h = size().height ?? lines.length;
      out.write(`${HOME}${lines.slice(0, h).map((l) => l + EOL).join('\n')}${EOS}`);
    } else {
      out.write(`\n${lines.join('\n')}\n`);
    }
  };
  /** A redraw soon: now if the last was long enough ago (or `now`), else when it is. */
  const redraw = (now = false) => {
    if (stop.signal.aborted) return;
    const wait = now ? 0 : Math.max(0, interval - (Date.now() - drawn));
    if (timer !== undefined) {
      if (!now) return;
      clearTimeout(timer);
    }
    timer = setTimeout(draw, wait);
  };
  const onResize = () => redraw(true);
  if (tty) {
    out.write(ALT_ON);
    term.on('resize', onResize);
    if (keys !== undefined) {
      keys.setRawMode(true);
      keys.on('data', onKey);
      keys.resume();
    }
    draw();
  } else {
    out.write(`${frame().join('\n')}\n`);
    drawn = Date.now();
  }
  try {
    if (formatOf(file) === 'csv') {
      await followCsv(file, (t) => ((table = t), redraw()), warn, opts.pollMs ?? 100, stop.signal);
    } else {
      let first = true;
      const onNotice = (n: TailNotice) => {
        note = `${tty ? 'following, q quits' : 'following'}  (${noticeText(n)})`;
        redraw();
      };
      for await (const lines of tailBatches(file, { lines: ALIGN_ROWS, follow: true, waitForFile: true, pollMs: opts.pollMs ?? 100, signal: stop.signal, onNotice })) {
        let rows = lines.map((l) => lineToRow(l)).filter((r) => r !== undefined);
        if (first) {
          first = false;
          rows = rows.slice(alignTail(rows.map((r) => JSON.stringify(r)), table.lastKeys));
        }
        for (const r of rows) table.push(r);
        if (rows.length > 0) redraw();
      }
    }
  } finally {
    clearTimeout(timer);
    if (tty) {
      term.off('resize', onResize);
      if (keys !== undefined) {
        keys.off('data', onKey);
        keys.setRawMode(false);
        keys.pause();
      }
      out.write(ALT_OFF);
    }
    cleanup();
  }
  if (failure) throw failure;

  function cleanup(): void {
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    opts.signal?.removeEventListener('abort', onStop);
    out.off('error', onError);
    out.on('error', () => {}); // a pipe that went away may still say so
  }
}

/** A CSV table followed: read again (whole) when its size, mtime or inode change, looked at at most once a second. */
async function followCsv(file: string, onTable: (t: ViewTable) => void, warn: (w: RowlogWarning) => void, pollMs: number, signal: AbortSignal): Promise<void> {
  const key = () => {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    return st === undefined ? '' : `${st.size}:${st.mtimeMs}:${st.ino}`;
  };
  let seen = key();
  while (!signal.aborted) {
    try {
      await sleep(Math.max(pollMs, 1000), undefined, { signal });
    } catch {
      return; // stopped
    }
    const now = key();
    if (now === seen) continue;
    seen = now;
    onTable(await readTable(file, warn, signal));
  }
}

/** `--columns loss,acc`: the names, in order. */
function columnsArg(v: string): string[] {
  return v
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
}

/** Adds the `view` command to `program`. */
export function registerView(program: Command): Command {
  return program
    .command('view')
    .description('line charts of a run\'s columns in the terminal (for SSH), min/max-decimated to its width; -f follows the run live')
    .argument('<run>', 'a run folder (its table --table, else the one changed last) or a table file (.jsonl, .jsonl.gz, .csv)')
    .option('--table <table>', 'the table of the run folder to chart')
    .option('--columns <list>', 'the columns to chart, comma-separated (default: the first numeric ones that fit)', columnsArg)
    .option('-f, --follow', 'keep redrawing as rows are logged (q or Ctrl-C quits); without a terminal, a new frame at most once a second')
    .option('--width <n>', 'columns of the drawing (default: the terminal\'s, else 80)', positiveArg)
    .option('--height <n>', 'lines of the drawing (default: the terminal\'s, else 14 per chart)', positiveArg)
    .action(async (run: string, o: { table?: string; columns?: string[]; follow?: boolean; width?: number; height?: number }) => {
      if (o.columns !== undefined && o.columns.length === 0) {
        usageError('view', '--columns names no column');
        return;
      }
      try {
        await runView(run, {
          follow: o.follow === true,
          ...(o.table !== undefined ? { table: o.table } : {}),
          ...(o.columns !== undefined ? { columns: o.columns } : {}),
          ...(o.width !== undefined ? { width: o.width } : {}),
          ...(o.height !== undefined ? { height: o.height } : {}),
        });
      } catch (e) {
        if (!(e instanceof ViewUsageError)) throw e;
        usageError('view', e.message);
      }
    });
}
