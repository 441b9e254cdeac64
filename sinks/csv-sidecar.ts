/**
 * The sidecar `<table>.csv.columns` of a CSV table file (docs/DESIGN.md §4; why it exists:
 * sinks/csv-rewrite.ts): JSON `{"entries": [{"base": <header>, "extras": [...], "from": <offset>}]}`
 * naming the trailing fields rows carry from file offset `from` while the file's header is `base`.
 * Written atomically (lib/io/atomic.ts) before any row carrying the extras reaches the file; read
 * by the CSV sink on reopen and by readLog (lib/read/read-log.ts), which names the fields with it.
 */
import fs from 'node:fs';
import { writeFileAtomic } from '../lib/io/atomic.js';
import { isEmfile } from '../lib/io/errno.js';

/** One sidecar entry: the extras of the file while its header is `base`. */
export interface ColumnsEntry {
  base: string[];
  extras: string[];
  /** File offset from which rows carry the extras. */
  from: number;
}

/** The sidecar of table file `file`. */
export const columnsPath = (file: string): string => `${file}.columns`;

/** The sidecar's entries (none when it is absent or unreadable). */
export function readColumns(file: string): ColumnsEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(columnsPath(file), 'utf8');
  } catch (err) {
    if (isEmfile(err)) throw err; // out of fds is not "no sidecar": the caller tries again
    return [];
  }
  try {
    const parsed = JSON.parse(text) as { entries?: unknown };
    if (!Array.isArray(parsed.entries)) return [];
    return parsed.entries.filter(
      (e): e is ColumnsEntry =>
        typeof e === 'object' &&
        e !== null &&
        isStrings((e as ColumnsEntry).base) &&
        isStrings((e as ColumnsEntry).extras) &&
        Number.isSafeInteger((e as ColumnsEntry).from),
    );
  } catch {
    return [];
  }
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** The extras the sidecar of `file` names for `header`, if any. */
export function extrasFor(file: string, header: readonly string[]): ColumnsEntry | undefined {
  return readColumns(file).find((e) => sameColumns(e.base, header));
}

export function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

/** Writes the sidecar atomically (lib/io/atomic.ts, temp file `<sidecar>.tmp`); no entries removes it. */
export function writeColumns(file: string, entries: readonly ColumnsEntry[], fsync: boolean): void {
  const p = columnsPath(file);
  if (entries.length === 0) {
    fs.rmSync(p, { force: true });
    return;
  }
  writeFileAtomic(p, `${JSON.stringify({ entries })}\n`, { fsync, tmp: `${p}.tmp` });
}
