/**
 * A Parquet dataset folder on disk (docs/DESIGN.md §4): `<dir>/<table>.parquet/` holding
 * `part-00000.parquet`, `part-00001.parquet`, … — the layout DuckDB (`read_parquet('…/*.parquet',
 * union_by_name = true)`), pyarrow/pandas and Spark read as one table.
 *
 * Every part is written whole through lib/io/atomic.ts (a temp `part-NNNNN.parquet.<pid>.tmp`,
 * renamed into place), so a `*.parquet` in the folder is always a whole file with its footer and
 * a glob never meets half of one. Reopening a dataset continues the numbering after its highest
 * part and removes the temp files a killed writer left. Used by the sink's worker thread
 * (sinks/parquet-worker.ts): these are synchronous file calls, never on the main thread.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './atomic.js';

/** The dataset folder of `table` (a `/` in the name makes sub-folders: `a/b.parquet` in `a/`). */
export function datasetPath(dir: string, table: string): string {
  return path.join(dir, `${table}.parquet`);
}

/** The file name of part `n`. */
export function partName(n: number): string {
  return `part-${String(n).padStart(5, '0')}.parquet`;
}

const PART = /^part-(\d{5,})\.parquet$/;
/** A temp file of {@link writePart} (`writeFileAtomic`'s `<file>.<pid>.tmp`). */
const TEMP = /^part-\d{5,}\.parquet\.\d+\.tmp$/;

/**
 * Makes the dataset folder ready for writing: creates it (with parents), removes the temp files
 * of a killed writer, and returns the number of the next part (one more than the highest).
 */
export function openDataset(folder: string): number {
  fs.mkdirSync(folder, { recursive: true });
  let next = 0;
  for (const name of fs.readdirSync(folder)) {
    const m = PART.exec(name);
    if (m !== null) next = Math.max(next, Number(m[1]) + 1);
    else if (TEMP.test(name)) fs.rmSync(path.join(folder, name), { force: true });
  }
  return next;
}

/** Writes part `n` of the dataset in `folder`, whole or not at all (fsync'ed when asked). */
export function writePart(folder: string, n: number, bytes: Uint8Array, fsync: boolean): void {
  writeFileAtomic(path.join(folder, partName(n)), bytes, { fsync });
}
