/**
 * Each table's last step, read from the table's own files (issue 9 point 5, docs/DESIGN.md §4).
 *
 * `status.json` carries each table's last step, but it is saved on flush and close: a run
 * killed before its first save would restart its steps at 0 and repeat them. The files know
 * better, and cheaply: a blocked-gzip file's last member holds its last rows (the headers are
 * walked, only that member is inflated), a CSV's or plain JSONL's last line is in its last
 * few KiB. Nothing here reads a whole file. Only rowlog's own layout is understood (`$step`
 * first in every row); anything else contributes no step.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inflateMember, isGzip } from '../format/bgzf.js';
import { scanMembersResync, startsDamagedBgzf } from '../io/bgzf-file.js';
import { readAt } from '../io/read-at.js';
import { isCsvFormat, scanTables, tableFile } from './layout.js';

/** How far back from a plain file's end lines are looked for. */
const TAIL_BYTES = 64 * 1024;

/** The largest `$step` among the whole lines of `text` (a row's first field in both formats). */
function maxStep(text: string, csv: boolean): number | undefined {
  let best: number | undefined;
  const re = csv ? /(?:^|\n)(-?\d+),/g : /(?:^|\n)\{"\$step":(-?\d+)[,}]/g;
  // only lines that end: the last one may be torn (it is cut on reopen)
  const whole = text.slice(0, text.lastIndexOf('\n') + 1);
  for (const m of whole.matchAll(re)) {
    const v = Number(m[1]);
    if (Number.isSafeInteger(v) && (best === undefined || v > best)) best = v;
  }
  return best;
}

/** A row's place in its file: its `$step` and `$time`, the first two fields of every row rowlog writes. */
export interface RowMark {
  step: number;
  time: number;
}

/** The `$step` and `$time` of the last whole line of `text` that is a row (from the end back). */
function lastMark(text: string, csv: boolean): RowMark | undefined {
  const re = csv ? /^(-?\d+),([^,\n]+)/ : /^\{"\$step":(-?\d+),"\$time":([^,}]+)/;
  let end = text.lastIndexOf('\n'); // only lines that end: the last one may be torn
  while (end > 0) {
    const start = text.lastIndexOf('\n', end - 1) + 1;
    const m = re.exec(text.slice(start, end));
    if (m !== null) {
      const step = Number(m[1]);
      const time = Number(m[2]);
      if (Number.isSafeInteger(step) && !Number.isNaN(time)) return { step, time };
    }
    end = start - 1;
  }
  return undefined;
}

/**
 * `pick` applied to the end of one table file: the last few KiB of a plain file, else the last
 * members of a blocked gzip one, newest first, until `pick` finds something (undefined when
 * nothing there, or the file is missing or not rowlog's).
 */
function fromTail<T>(file: string, pick: (text: string, csv: boolean) => T | undefined): T | undefined {
  const table = tableFile(path.basename(file));
  if (table === undefined) return undefined;
  const csv = isCsvFormat(table.format); // gzip or not is read from the bytes
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    // By content, as every reader (lib/format/bgzf.ts); a first member whose header is damaged
    // still makes blocked gzip (read as text, its steps would be lost and then repeated).
    const gz = isGzip(readAt(fd, 0, 3)) || startsDamagedBgzf(fd, size);
    // a CSV someone else wrote may start with another column: its first field is not a step
    if (csv && !gz && !readAt(fd, 0, 6).toString('latin1').startsWith('$step')) return undefined;
    if (!gz) return pick(readAt(fd, Math.max(0, size - TAIL_BYTES), size).toString('utf8'), csv);
    // The readers' walk: past a damaged member in the middle to the true last members.
    const { members, bgzf } = scanMembersResync(fd, size);
    if (!bgzf) return undefined;
    // Members hold whole lines; the last ones may be empty (the EOF member).
    for (let i = members.length - 1; i >= 0 && i >= members.length - 4; i--) {
      const m = members[i] as { offset: number; size: number };
      const text = inflateMember(readAt(fd, m.offset, m.offset + m.size))?.toString('utf8');
      if (text === undefined) continue; // a damaged member: look at the one before
      const found = pick(text, csv);
      if (found !== undefined) return found;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** The last `$step` in one table file, or undefined when it has none rowlog can read cheaply. */
export function lastStepInFile(file: string): number | undefined {
  return fromTail(file, maxStep);
}

/**
 * The `$step` and `$time` of the last row of one table file (`.jsonl.gz`, `.jsonl`, `.csv`,
 * `.csv.gz`), read from its end as {@link lastStepInFile} reads; undefined when the file is
 * missing or holds no row rowlog can read cheaply. The Redis collector's per-file skip
 * (docs/DESIGN.md §4, "The ack rule").
 */
export function lastRowInFile(file: string): RowMark | undefined {
  return fromTail(file, lastMark);
}

/**
 * The last step of every table of run folder `dir`, as lib/run/layout.ts finds its tables (nested
 * tables included; `artifacts/` and runs of their own left out): the largest over the table's files.
 */
export function lastStepsInDir(dir: string): Map<string, number> {
  const steps = new Map<string, number>();
  for (const table of scanTables(dir)) {
    for (const f of table.files) {
      const step = lastStepInFile(path.join(dir, f.file));
      if (step !== undefined && step > (steps.get(table.name) ?? -Infinity)) steps.set(table.name, step);
    }
  }
  return steps;
}
