/**
 * `rowlog ls [DIR]` (docs/DESIGN.md §7): the run folders under DIR (default `runs`) and their tables,
 * found by lib/run/layout.ts's scanner, the one serve's `/api/runs` uses (DIR itself when it is
 * a run folder, then its sub-folders that are; nested tables such as `grad/layer1` included).
 * For each table: rows, columns, first and last `$step`, last `$time`, and the size of each of
 * its files. Rows are counted by reading the table's first file through {@link readLog}
 * (JSONL preferred over CSV, as it keeps every level).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readLog } from '../read/read-log.js';
import { scanRuns } from '../run/layout.js';
import type { RunTable } from '../run/layout.js';

/** What `ls` shows of one table. */
export interface TableListing {
  /** `train`, `grad/layer1`. */
  name: string;
  rows: number;
  columns: number;
  firstStep: unknown;
  lastStep: unknown;
  lastTime: unknown;
  /** File (relative to the run folder) and size in bytes, in the order a table is read from (lib/run/layout.ts). */
  files: Array<{ file: string; size: number }>;
  /** Lines skipped as unreadable, and whether the file read was cut short. */
  badLines: number;
  truncated: boolean;
  /** Why the table could not be read, when it could not. */
  error?: string;
}

/** What `ls` shows of one run folder. */
export interface RunListing {
  dir: string;
  /** `run.json`'s name and start time, when present. */
  name?: string;
  startTime?: string;
  tables: TableListing[];
}

/** Reads one table's first file to count its rows and columns. */
async function listTable(dir: string, table: RunTable): Promise<TableListing> {
  const files = table.files.map(({ file, size }) => ({ file, size }));
  const t: TableListing = { name: table.name, rows: 0, columns: 0, firstStep: undefined, lastStep: undefined, lastTime: undefined, files, badLines: 0, truncated: false };
  const columns = new Set<string>();
  const reader = readLog(path.join(dir, (files[0] as { file: string }).file));
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
  return t;
}

/** The run folders of `dir` as lib/run/layout.ts finds them (as serve lists them), each table read. */
export async function listRuns(dir: string): Promise<RunListing[]> {
  const runs: RunListing[] = [];
  for (const found of scanRuns(dir)) {
    const run: RunListing = { dir: found.dir, tables: [] };
    if (found.name !== undefined) run.name = found.name;
    if (found.startTime !== undefined) run.startTime = found.startTime;
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
  for (const run of runs) {
    const where = path.relative(cwd, run.dir) || '.';
    const about = [run.name !== undefined && run.name !== path.basename(run.dir) ? `name ${run.name}` : '', run.startTime ? `started ${run.startTime}` : '']
      .filter((s) => s !== '')
      .join(', ');
    out += `${where}/${about ? `  (${about})` : ''}\n`;
    const rows = [['TABLE', 'ROWS', 'COLS', 'FIRST STEP', 'LAST STEP', 'LAST TIME', 'FILES']];
    for (const t of run.tables) {
      const notes = [
        t.error !== undefined ? `unreadable: ${t.error}` : '',
        t.truncated ? 'cut short' : '',
        t.badLines > 0 ? `${t.badLines} bad ${t.badLines === 1 ? 'line' : 'lines'}` : '',
      ].filter((s) => s !== '');
      const files = t.files.map((f) => `${f.file} ${formatSize(f.size)}`).join(', ');
      const step = (v: unknown) => (v === undefined ? '-' : String(v));
      rows.push([t.name, String(t.rows), String(t.columns), step(t.firstStep), step(t.lastStep), formatTime(t.lastTime), notes.length > 0 ? `${files}  [${notes.join('; ')}]` : files]);
    }
    out += run.tables.length > 0 ? aligned(rows, '  ') : '  (no tables)\n';
  }
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
  const runs = await listRuns(path.resolve(dir));
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
