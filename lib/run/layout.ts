/**
 * What a folder of runs looks like on disk (docs/DESIGN.md §4), read in ONE place: `rowlog ls` and
 * serve's `/api/runs` list runs and tables through {@link scanRuns}, so they cannot disagree.
 *
 * - A table `T` is the files `T.jsonl.gz`, `T.jsonl`, `T.csv`, `T.csv.gz` of a run folder, read in that
 *   order of preference ({@link TABLE_EXTS}): JSONL keeps every level and every type, CSV is
 *   the spreadsheet copy. A nested table `grad/layer1` lives in the sub-folder `grad/`
 *   (table names are `[A-Za-z0-9_.-]` segments joined by `/`, lib/core/entry.ts).
 * - A run folder holds `run.json` or `status.json` (what lib/run/run-dir.ts writes), or at
 *   least one table file at its top. `artifacts/` and `node_modules/` at a run's top never hold
 *   tables; below a root, dot-folders are never runs.
 * - Under a root, the runs are the root itself when it is a run folder, then its direct
 *   sub-folders that are. Inside a run folder a sub-folder is a run of its own only when it has
 *   `run.json`/`status.json`; otherwise it is a table folder (so `runs/exp1/grad/` is the table
 *   folder of `grad/layer1`, not a run, whether one lists `runs` or `runs/exp1`).
 *
 * Symbolic links are never followed (a listed path stays inside the root), and a folder that
 * cannot be read is skipped: a listing is taken while runs are being written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isValidName } from '../core/entry.js';
import { MAX_TABLE_DEPTH } from '../io/walk-files.js';

/** Table file endings, in the order a table is read from. */
export const TABLE_EXTS = ['.jsonl.gz', '.jsonl', '.csv', '.csv.gz'] as const;
/** A table file's format: its ending without the dot. */
export type TableFormat = 'jsonl.gz' | 'jsonl' | 'csv' | 'csv.gz';

/** True for the CSV formats (`.csv`, `.csv.gz`): rows with a header line, not one JSON object a line. */
export const isCsvFormat = (format: TableFormat): boolean => format.startsWith('csv');
/** Files whose presence makes a folder a run folder (written by lib/run/run-dir.ts). */
export const RUN_MARKERS = ['run.json', 'status.json'] as const;
/** Top-level sub-folders of a run that never hold tables. */
const SKIP_DIRS = new Set(['artifacts', 'node_modules']);

/** One file of a table. */
export interface TableFile {
  /** Relative to the run folder, `/`-separated (`grad/layer1.jsonl.gz`). */
  file: string;
  format: TableFormat;
  size: number;
  /** Last modification, ms since the epoch. */
  mtime: number;
}

/** One table of a run folder. */
export interface RunTable {
  /** `train`, `grad/layer1`. */
  name: string;
  /** Its files, in {@link TABLE_EXTS} order: the first is the one a reader reads. */
  files: TableFile[];
}

/** One run folder. */
export interface RunFolder {
  /** Absolute path. */
  dir: string;
  /** Relative to the scanned root (`.` for the root itself), `/`-separated. */
  id: string;
  /** `run.json`'s `name` and `startTime`, when it has them. */
  name?: string;
  startTime?: string;
  /** By name. */
  tables: RunTable[];
}

/** The table name and format of a file name (`train.jsonl.gz` → `train`), or undefined for other files. */
export function tableFile(file: string): { name: string; format: TableFormat } | undefined {
  const ext = TABLE_EXTS.find((e) => file.endsWith(e) && file.length > e.length);
  if (ext === undefined) return undefined;
  const name = file.slice(0, -ext.length);
  return isValidName(name, true) ? { name, format: ext.slice(1) as TableFormat } : undefined;
}

/** A folder's entries, or none when it cannot be read (gone, no permission). */
function readdir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** True when `dir` holds a run marker (`run.json`, `status.json`). */
export function hasRunMarker(dir: string): boolean {
  return RUN_MARKERS.some((m) => fs.existsSync(path.join(dir, m)));
}

/**
 * A folder name that may be a run under a root: a name segment, not a dot-folder. Table folders
 * are any name segment (dot-folders too): a table `.cache/t` is valid and must be found on resume.
 */
const runFolder = (name: string) => isValidName(name, true) && !name.startsWith('.');

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * True when the folder `rel` (named `name`, `depth` levels below run folder `runDir`, 0 at its
 * top) may hold tables of that run: a name segment, not `artifacts/`/`node_modules/` at the top,
 * not a run of its own. The one folder rule of every walk over a run's tables (this scanner,
 * a file sink's resume).
 */
export function isTableFolder(runDir: string, rel: string, name: string, depth: number): boolean {
  return isValidName(name, true) && !(depth === 0 && SKIP_DIRS.has(name)) && !hasRunMarker(path.join(runDir, rel));
}

/** The tables of the run folder `dir`, nested ones included (sub-folders that are runs of their own excluded). */
export function scanTables(dir: string): RunTable[] {
  const found = new Map<string, RunTable>();
  const walk = (sub: string, depth: number) => {
    for (const e of readdir(path.join(dir, sub))) {
      const rel = sub === '' ? e.name : `${sub}/${e.name}`;
      if (e.isDirectory()) {
        if (depth < MAX_TABLE_DEPTH && isTableFolder(dir, rel, e.name, depth)) walk(rel, depth + 1);
        continue;
      }
      const t = e.isFile() ? tableFile(e.name) : undefined;
      if (t === undefined) continue;
      const name = sub === '' ? t.name : `${sub}/${t.name}`;
      if (!isValidName(name)) continue;
      let st: fs.Stats;
      try {
        st = fs.statSync(path.join(dir, rel));
      } catch {
        continue; // gone meanwhile
      }
      let table = found.get(name);
      if (table === undefined) found.set(name, (table = { name, files: [] }));
      table.files.push({ file: rel, format: t.format, size: st.size, mtime: Math.round(st.mtimeMs) });
    }
  };
  walk('', 0);
  const order = (f: TableFile) => TABLE_EXTS.indexOf(`.${f.format}`);
  for (const t of found.values()) t.files.sort((a, b) => order(a) - order(b));
  return [...found.values()].sort(byName);
}

/** The run folder `dir` as listed under `id`, or undefined when it is none. */
export function scanRun(dir: string, id: string): RunFolder | undefined {
  const entries = readdir(dir);
  const marked = entries.some((e) => e.isFile() && (RUN_MARKERS as readonly string[]).includes(e.name));
  if (!marked && !entries.some((e) => e.isFile() && tableFile(e.name) !== undefined)) return undefined;
  const run: RunFolder = { dir, id, tables: scanTables(dir) };
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { name?: unknown; startTime?: unknown };
    if (typeof info.name === 'string' && info.name !== '') run.name = info.name;
    if (typeof info.startTime === 'string') run.startTime = info.startTime;
  } catch {
    // none, being written, or not JSON: list the tables anyway
  }
  return run;
}

/** The runs under `root`: itself when it is a run folder, then its sub-folders that are, by name. */
export function scanRuns(root: string): RunFolder[] {
  const runs: RunFolder[] = [];
  const self = scanRun(root, '.');
  if (self !== undefined) runs.push(self);
  const subdirs = readdir(root)
    .filter((e) => e.isDirectory() && runFolder(e.name))
    .map((e) => e.name)
    .sort();
  for (const sub of subdirs) {
    const dir = path.join(root, sub);
    // Inside a run folder, only sub-folders with their own marker are runs (the others hold tables).
    if (self !== undefined && !hasRunMarker(dir)) continue;
    const run = scanRun(dir, sub);
    if (run !== undefined) runs.push(run);
  }
  return runs;
}
