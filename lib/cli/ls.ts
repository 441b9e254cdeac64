/**
 * `rowlog ls [DIR]` (docs/DESIGN.md §7): the run folders under DIR (default `runs`) and their tables,
 * found by lib/run/layout.ts's scanner, the one serve's `/api/runs` uses (DIR itself when it is
 * a run folder, then its sub-folders that are; nested tables such as `grad/layer1` included).
 * For each run: its state from `status.json` (`closed`, `running`, `interrupted`…) and, for a
 * resumed run, its chain (`resumed from runs/exp1 → runs/exp1-b`, oldest first). For each
 * table: rows, columns, first and last `$step`, last `$time`, and the size of each of its files,
 * from the table's first file (JSONL preferred over CSV, as it keeps every level).
 *
 * **Only the ends of a large file are read** (issue 11 §1: 6 s on a 300k-row run). A file of at
 * most {@link WHOLE_READ_BYTES} is read whole through {@link readLog}: exact rows. A larger one
 * is read at its ends only, as `tail` reads it: for blocked gzip, the member headers are walked
 * ({@link scanMembersResync}, which skips a damaged member), the first and last intact members
 * are inflated, and the text's size is the sum of the members' ISIZEs; for plain text, its first
 * and last 64 KiB. The rows are then an estimate, shown `~N`: the text's size over the mean
 * length of the last rows; the columns are those of the last rows. A gzip that is not blocked
 * cannot be read at its end and is read whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { inflateMember, isGzip } from '../format/bgzf.js';
import { scanMembersResync, startsDamagedBgzf } from '../io/bgzf-file.js';
import type { MemberScan } from '../io/bgzf-file.js';
import { readAt } from '../io/read-at.js';
import { readLog } from '../read/read-log.js';
import { isCsvFormat, scanRuns } from '../run/layout.js';
import type { RunTable, TableFormat } from '../run/layout.js';
import { ancestryOf } from '../run/ancestry.js';
import type { RowlogWarning } from '../core/warnings.js';

/** Files up to this size are read whole (exact row counts); larger ones at their ends only. */
export const WHOLE_READ_BYTES = 1 << 20;
/** Bytes of a plain file read at each end. */
const END_BYTES = 64 << 10;
/** Members looked at from each end of a blocked gzip for a whole line. */
const END_MEMBERS = 8;

/** What `ls` shows of one table. */
export interface TableListing {
  /** `train`, `grad/layer1`. */
  name: string;
  rows: number;
  /** `rows` is an estimate (the file was read at its ends only). */
  estimated: boolean;
  columns: number;
  firstStep: unknown;
  lastStep: unknown;
  lastTime: unknown;
  /** File (relative to the run folder) and size in bytes, in the order a table is read from (lib/run/layout.ts). */
  files: Array<{ file: string; size: number }>;
  /** Lines skipped as unreadable, and whether the file read was cut short. */
  badLines: number;
  truncated: boolean;
  /** Damaged stretches of blocked gzip skipped. */
  damaged: number;
  /** Why the table could not be read, when it could not. */
  error?: string;
}

/** What `ls` shows of one run folder. */
export interface RunListing {
  dir: string;
  /** `run.json`'s name and start time, when present. */
  name?: string;
  startTime?: string;
  /** `status.json`'s `$state`, with its `$signal` or `$exitCode` (`interrupted SIGINT`, `exited 1`). */
  state?: string;
  /** A resumed run's ancestors' folders, oldest first (lib/run/ancestry.ts). */
  resumedFrom?: string[];
  tables: TableListing[];
}

/** The rows of `text` (whole lines), parsed by readLog as `format`; for CSV `header` first. */
async function rowsOf(text: Buffer, format: TableFormat, header?: Buffer): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  const input = Readable.from(header !== undefined ? [header, Buffer.from('\n'), text] : [text]);
  for await (const row of readLog(input, { format: isCsvFormat(format) ? 'csv' : 'jsonl' })) rows.push(row);
  return rows;
}

/** The whole lines of `buf`: after its first `\n` unless `fromStart`, up to its last. */
function wholeLines(buf: Buffer, fromStart: boolean): Buffer {
  const start = fromStart ? 0 : buf.indexOf(10) + 1;
  return buf.subarray(start, Math.max(start, buf.lastIndexOf(10) + 1));
}

/** What the ends of a large file hold: text from its start and its end, the whole text's size, damage. */
interface Ends {
  head: Buffer;
  tail: Buffer;
  /** Whether `tail` starts at a line start (the last member starts the text, or the whole file was read). */
  tailFromStart: boolean;
  textBytes: number;
  damaged: number;
  truncated: boolean;
}

/** The ends of the open file `fd` (see the module comment); undefined for a gzip that is not blocked. */
function readEnds(fd: number, size: number): Ends | undefined {
  if (!isGzip(readAt(fd, 0, 3)) && !startsDamagedBgzf(fd, size)) {
    return { head: readAt(fd, 0, END_BYTES), tail: readAt(fd, Math.max(0, size - END_BYTES), size), tailFromStart: size <= END_BYTES, textBytes: size, damaged: 0, truncated: false };
  }
  const scan = scanMembersResync(fd, size);
  if (!scan.bgzf) return undefined;
  let damaged = scan.damaged.length;
  let textBytes = 0;
  for (const m of scan.members) textBytes += readAt(fd, m.offset + m.size - 4, m.offset + m.size).readUInt32LE(0);
  const text = (m: MemberScan['members'][number]): Buffer | undefined => {
    const t = inflateMember(readAt(fd, m.offset, m.offset + m.size));
    if (t === undefined) damaged++;
    return t;
  };
  // From the start: intact members until one holds a line end; the same from the end.
  const heads: Buffer[] = [];
  for (let i = 0; i < Math.min(END_MEMBERS, scan.members.length); i++) {
    const t = text(scan.members[i]!);
    if (t === undefined) continue;
    heads.push(t);
    if (t.includes(10)) break;
  }
  const tails: Buffer[] = [];
  let first = scan.members.length;
  for (let i = scan.members.length - 1; i >= Math.max(0, scan.members.length - END_MEMBERS); i--) {
    const t = text(scan.members[i]!);
    first = i;
    if (t === undefined) continue;
    tails.unshift(t);
    if (t.subarray(0, -1).includes(10)) break;
  }
  return { head: Buffer.concat(heads), tail: Buffer.concat(tails), tailFromStart: first === 0, textBytes, damaged, truncated: scan.torn };
}

/** Lists a large file from its ends (see the module comment); false when it cannot be (a gzip that is not blocked). */
async function listEnds(file: string, format: TableFormat, t: TableListing): Promise<boolean> {
  const fd = fs.openSync(file, 'r');
  let ends: Ends | undefined;
  try {
    ends = readEnds(fd, fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
  if (ends === undefined) return false;
  const csv = isCsvFormat(format);
  const nl = ends.head.indexOf(10);
  const header = csv && nl >= 0 ? ends.head.subarray(0, nl) : undefined;
  const headRows = await rowsOf(wholeLines(csv ? ends.head.subarray(nl + 1) : ends.head, true), format, header);
  const tailText = wholeLines(ends.tail, ends.tailFromStart && !csv);
  const tailRows = await rowsOf(tailText, format, header);
  const columns = new Set<string>();
  for (const row of tailRows) for (const k in row) columns.add(k);
  const last = tailRows.at(-1);
  t.firstStep = headRows[0]?.$step;
  t.lastStep = last?.$step;
  t.lastTime = last?.$time;
  t.columns = columns.size;
  const lines = tailRows.length;
  const textBytes = ends.textBytes - (header !== undefined ? header.length + 1 : 0);
  t.rows = lines > 0 ? Math.round(textBytes / (tailText.length / lines)) : 0;
  t.estimated = true;
  t.damaged = ends.damaged;
  t.truncated = ends.truncated;
  return true;
}

/** Reads one table's first file for its rows, columns and steps: whole when small, else its ends. */
async function listTable(dir: string, table: RunTable): Promise<TableListing> {
  const files = table.files.map(({ file, size }) => ({ file, size }));
  const t: TableListing = { name: table.name, rows: 0, estimated: false, columns: 0, firstStep: undefined, lastStep: undefined, lastTime: undefined, files, badLines: 0, truncated: false, damaged: 0 };
  const first = table.files[0]!;
  const file = path.join(dir, first.file);
  if (first.size > WHOLE_READ_BYTES) {
    try {
      if (await listEnds(file, first.format, t)) return t;
    } catch (err) {
      t.error = (err as Error).message;
      return t;
    }
  }
  const columns = new Set<string>();
  const reader = readLog(file);
  try {
    for await (const row of reader) {
      if (t.rows++ === 0) t.firstStep = row.$step;
      t.lastStep = row.$step;
      t.lastTime = row.$time;
      for (const k in row) columns.add(k);
    }
  } catch (err) {
    t.error = (err as Error).message;
  }
  t.columns = columns.size;
  t.badLines = reader.badLines.length;
  t.truncated = reader.truncated;
  t.damaged = reader.damaged.length;
  return t;
}

/** The run's state from `status.json` (lib/run/run-dir.ts's `$state`), if it has one. */
function runState(dir: string): string | undefined {
  try {
    const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as Record<string, unknown>;
    const state = status.$state;
    if (typeof state !== 'string') return undefined;
    const detail = state === 'interrupted' ? status.$signal : state === 'exited' ? status.$exitCode : undefined;
    return detail === undefined ? state : `${state} ${String(detail)}`;
  } catch {
    return undefined; // none, being written, or not JSON
  }
}

/**
 * The run folders of `dir` as lib/run/layout.ts finds them (as serve lists them), each table
 * read; a broken chain of a resumed run is handed to `onWarning` (`W_ANCESTRY`).
 */
export async function listRuns(dir: string, onWarning: (w: RowlogWarning) => void = () => undefined): Promise<RunListing[]> {
  const runs: RunListing[] = [];
  for (const found of scanRuns(dir)) {
    const run: RunListing = { dir: found.dir, tables: [] };
    if (found.name !== undefined) run.name = found.name;
    if (found.startTime !== undefined) run.startTime = found.startTime;
    const state = runState(found.dir);
    if (state !== undefined) run.state = state;
    const chain = ancestryOf(found.dir);
    if (chain.ancestors.length > 0) run.resumedFrom = chain.ancestors.map((a) => a.dir);
    chain.warnings.forEach(onWarning);
    for (const table of found.tables) run.tables.push(await listTable(found.dir, table));
    runs.push(run);
  }
  return runs;
}

/** A byte count for people: `812 B`, `12.3 KiB`, `4.0 MiB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u] as string}`;
}

/** An estimated row count: `~812`, `~301k`, `~2.0M`. */
function formatEstimate(n: number): string {
  if (n < 1000) return `~${n}`;
  if (n < 1e6) return `~${Math.round(n / 1e3)}k`;
  return `~${(n / 1e6).toFixed(1)}M`;
}

/** A `$time` (ms epoch) as ISO text, else as it is. */
function formatTime(v: unknown): string {
  return typeof v === 'number' && Number.isFinite(v) ? new Date(v).toISOString() : v === undefined ? '-' : String(v);
}

/** Rows of cells as text, each column padded to its widest cell (the last one not padded). */
function aligned(rows: string[][], indent: string): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => `${indent}${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}\n`).join('');
}

/** The listing as plain text, one block per run folder, paths relative to `cwd`. */
export function formatListing(runs: RunListing[], cwd = process.cwd()): string {
  let out = '';
  let estimated = false;
  for (const run of runs) {
    const where = path.relative(cwd, run.dir) || '.';
    const chain = run.resumedFrom?.map((d) => path.relative(cwd, d) || '.').join(' → ');
    const about = [
      run.name !== undefined && run.name !== path.basename(run.dir) ? `name ${run.name}` : '',
      run.startTime ? `started ${run.startTime}` : '',
      run.state ?? '',
      chain !== undefined ? `resumed from ${chain}` : '',
    ]
      .filter((s) => s !== '')
      .join(', ');
    out += `${where}/${about ? `  (${about})` : ''}\n`;
    const rows = [['TABLE', 'ROWS', 'COLS', 'FIRST STEP', 'LAST STEP', 'LAST TIME', 'FILES']];
    for (const t of run.tables) {
      const notes = [
        t.error !== undefined ? `unreadable: ${t.error}` : '',
        t.truncated ? 'cut short' : '',
        t.damaged > 0 ? `${t.damaged} damaged ${t.damaged === 1 ? 'member' : 'members'} skipped` : '',
        t.badLines > 0 ? `${t.badLines} bad ${t.badLines === 1 ? 'line' : 'lines'}` : '',
      ].filter((s) => s !== '');
      const files = t.files.map((f) => `${f.file} ${formatSize(f.size)}`).join(', ');
      const step = (v: unknown) => (v === undefined ? '-' : String(v));
      estimated ||= t.estimated;
      rows.push([t.name, t.estimated ? formatEstimate(t.rows) : String(t.rows), String(t.columns), step(t.firstStep), step(t.lastStep), formatTime(t.lastTime), notes.length > 0 ? `${files}  [${notes.join('; ')}]` : files]);
    }
    out += run.tables.length > 0 ? aligned(rows, '  ') : '  (no tables)\n';
  }
  if (estimated) out += `~ rows: estimated from the size of a file over ${formatSize(WHOLE_READ_BYTES)}, read at its ends only (rowlog query -s length FILE counts them)\n`;
  return out;
}

/** Lists the runs under `dir` to `out`; a missing `dir` throws (the CLI prints it and exits 1). */
export async function runLs(dir: string, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new Error(`ls: no such folder: ${dir}`);
  }
  if (!stat.isDirectory()) throw new Error(`ls: not a folder: ${dir}`);
  const runs = await listRuns(path.resolve(dir), (w) => process.stderr.write(`rowlog: ls: ${w.code}: ${w.message}\n`));
  out.write(runs.length > 0 ? formatListing(runs) : `no runs in ${dir}\n`);
}

/** Adds `ls [DIR]` to the `rowlog` command. */
export function registerLs(program: Command): void {
  program
    .command('ls')
    .description('list the run folders under DIR and their tables: rows, columns, steps, last time, file sizes')
    .argument('[dir]', 'folder of runs (or one run folder)', 'runs')
    .action(async (dir: string) => {
      await runLs(dir);
    });
}
