/**
 * exportRun: an existing run folder's tables written again in another format (docs/DESIGN.md §7,
 * `rowlog export`), for people who logged with the defaults and decide later: Parquet for
 * DuckDB and pandas, CSV, a TensorBoard events file, a SQLite database (with the optional peer
 * better-sqlite3; without it `ERR_MISSING_DEPENDENCY` before anything is written).
 *
 * Each table is read from its first file in lib/run/layout.ts's order (`.jsonl.gz`, `.jsonl`,
 * then CSV), streamed row by row (memory bounded by the sink's own bound, whatever the size of
 * the run), and written through the same sink a live run would use, so the files are the ones
 * `createLogger` makes. Its `$step`, `$time` and `$level` are kept.
 *
 * Export writes new files only: a target that exists already (`<table>.parquet/`, `<table>.csv`,
 * any events file, `run.sqlite` in the output folder) fails with `ERR_EXPORT_EXISTS` naming it
 * before anything is written; `out` chooses another folder. Bad lines and damaged stretches of
 * a source are skipped, as every reader skips them, and counted in the result. Rows the sink
 * could not store (a full disk: `W_ROWS_DROPPED`) fail the export with `ERR_SINK_IO` at its end.
 * A SQLite export also gets run.json, params.json and status.json, as a live run's database does.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { RowlogError } from '../core/errors.js';
import type { Entry, FlatRow, Scalar } from '../core/entry.js';
import { Level } from '../core/levels.js';
import { optionError } from '../core/options.js';
import { isCsvFormat, scanRun } from '../run/layout.js';
import { readJson } from '../run/run-dir.js';
import type { RunTable } from '../run/layout.js';
import { datasetPath } from '../io/parquet-dataset.js';
import { csvSink } from '../../sinks/csv.js';
import { parquetSink } from '../../sinks/parquet.js';
import { SqliteSink, sqliteSink } from '../../sinks/sqlite.js';
import { tensorboardSink } from '../../sinks/tensorboard.js';
import { readLog } from './read-log.js';
import type { Damage } from './decode-options.js';
import { printWarning } from '../core/warnings.js';
import type { RowlogWarning } from '../core/warnings.js';

/** The formats {@link exportRun} writes. */
export const EXPORT_FORMATS = ['parquet', 'csv', 'tensorboard', 'sqlite'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Options of {@link exportRun}. */
export interface ExportOptions {
  /** The format to write. */
  to: ExportFormat;
  /** The folder to write into (created). @default the run folder */
  out?: string;
  /** Only these tables (`train`, `grad/layer1`). @default every table of the run */
  tables?: readonly string[];
  /** Called as the sources are read: bytes read so far of `total` (the sources' sizes). */
  onProgress?: (bytes: number, total: number) => void;
  /** A sink's warning (each distinct one once). @default printed to stderr */
  onWarning?: (w: RowlogWarning) => void;
}

/** What {@link exportRun} did with one table. */
export interface ExportedTable {
  name: string;
  /** The file it was read from, relative to the run folder. */
  from: string;
  rows: number;
  badLines: number;
  damaged: Damage[];
  truncated: boolean;
}

/** The files `format` writes for `table` in `out` that must not exist yet. */
function targetsOf(format: ExportFormat, out: string, table: string): string[] {
  switch (format) {
    case 'parquet':
      return [datasetPath(out, table)];
    case 'csv':
      return [path.join(out, `${table}.csv`)];
    case 'tensorboard': {
      let names: string[] = [];
      try {
        names = fs.readdirSync(out).filter((n) => n.startsWith('events.out.tfevents.'));
      } catch {
        // no folder yet
      }
      return names.map((n) => path.join(out, n));
    }
    case 'sqlite':
      return [path.join(out, 'run.sqlite')];
  }
}

/** The sink writing `format` into `out`. */
function sinkOf(format: ExportFormat, out: string): Writable {
  switch (format) {
    case 'parquet':
      return parquetSink({ dir: out });
    case 'csv':
      return csvSink({ dir: out });
    case 'tensorboard':
      return tensorboardSink({ dir: out });
    case 'sqlite':
      return sqliteSink({ dir: out });
  }
}

/** A database gets what the run folder says of the run, as the logger hands it a live run's (run.json, params, status). */
function describeRun(sink: SqliteSink, runDir: string): void {
  const run = readJson(path.join(runDir, 'run.json'));
  if (run !== undefined) sink.setRun({ ...run, dir: runDir });
  const params = readJson(path.join(runDir, 'params.json'));
  if (params !== undefined) sink.setParams(params);
  const status = readJson(path.join(runDir, 'status.json'));
  if (status !== undefined) sink.setStatus(status);
}

/** A row as read back → the Entry it was logged as (`$step`, `$time`, `$level` taken out). */
function toEntry(table: string, row: Record<string, unknown>, index: number): Entry<FlatRow> {
  const { $step, $time, $level, ...data } = row;
  return {
    table,
    step: typeof $step === 'number' ? $step : index,
    time: typeof $time === 'number' ? $time : 0,
    level: typeof $level === 'number' ? $level : Level.INFO,
    data: data as Record<string, Scalar>,
  };
}

/**
 * Writes the tables of the run folder `dir` in `opts.to` (see the module comment). Rejects with
 * `ERR_NO_RUN_DIR` when `dir` is not a run folder, `ERR_INVALID_OPTION` for an unknown format
 * or table, `ERR_EXPORT_EXISTS` when a target exists.
 */
export async function exportRun(dir: string, opts: ExportOptions): Promise<ExportedTable[]> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(opts.to)) {
    throw optionError('range', 'to', `must be ${EXPORT_FORMATS.join(', ')} (got ${String(opts.to)})`);
  }
  const run = scanRun(path.resolve(dir), '.');
  if (run === undefined) throw new RowlogError('ERR_NO_RUN_DIR', `${dir} is not a run folder (no run.json, status.json or table file)`);
  const out = path.resolve(opts.out ?? run.dir);
  let tables: RunTable[] = run.tables;
  if (opts.tables !== undefined) {
    const byName = new Map(run.tables.map((t) => [t.name, t]));
    tables = opts.tables.map((name) => {
      const t = byName.get(name);
      if (t === undefined) throw optionError('range', 'table', `${dir} has no table '${name}' (it has ${run.tables.map((x) => x.name).join(', ') || 'none'})`);
      return t;
    });
  }
  // A CSV export reads from JSONL (a table that only has CSV is CSV already).
  const sources = tables.flatMap((t) => {
    const file = t.files.find((f) => !(opts.to === 'csv' && isCsvFormat(f.format)));
    return file === undefined ? [] : [{ table: t, file }];
  });
  const taken = [...new Set(sources.flatMap((s) => targetsOf(opts.to, out, s.table.name)))].filter((p) => fs.existsSync(p));
  if (taken.length > 0) {
    throw new RowlogError('ERR_EXPORT_EXISTS', `${taken[0]} exists already (export writes new files only; --out chooses another folder)`);
  }
  const total = sources.reduce((n, s) => n + s.file.size, 0);
  let bytes = 0;
  const sink = sinkOf(opts.to, out);
  if (sink instanceof SqliteSink) describeRun(sink, run.dir);
  const warn = opts.onWarning ?? printWarning;
  let lost = false;
  sink.on('warning', (w: RowlogWarning) => {
    if (w.code === 'W_ROWS_DROPPED') lost = true;
    warn(w);
  });
  const done: ExportedTable[] = [];
  try {
    for (const { table, file } of sources) {
      const input = fs.createReadStream(path.join(run.dir, file.file));
      const counted = new PassThrough();
      input.on('data', (chunk) => {
        bytes += chunk.length;
        opts.onProgress?.(bytes, total);
      });
      input.on('error', (err) => counted.destroy(err));
      input.pipe(counted);
      const reader = readLog(counted, { format: isCsvFormat(file.format) ? 'csv' : 'jsonl' });
      let rows = 0;
      for await (const row of reader) {
        if (!sink.write(toEntry(table.name, row, rows))) await once(sink, 'drain');
        rows++;
      }
      done.push({ name: table.name, from: file.file, rows, badLines: reader.badLines.length, damaged: reader.damaged, truncated: reader.truncated });
    }
  } finally {
    sink.end();
    await finished(sink);
  }
  // The sink could not store every row (a full disk): the warnings said how many; the export failed.
  if (lost) throw new RowlogError('ERR_SINK_IO', `some rows could not be written into ${out} (see the W_ROWS_DROPPED warning above)`);
  return done;
}
