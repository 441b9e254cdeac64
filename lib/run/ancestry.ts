/**
 * A resumed run's ancestors (issue 13 §1, docs/DESIGN.md §4): the one walker of the links
 * `run.json` keeps in `resumedFrom` (lib/run/run-dir.ts), for every reader that shows a resumed
 * run as one (readLog, query, tail, serve, ls).
 *
 * Why one walker: each reader must find the same parents, in the same order, and meet a broken
 * chain the same way — a warning, never a throw, with the run itself still read.
 *
 * A link is followed to the first of its two places that holds a run: `dir` resolved against
 * the child's folder (a tree moved or copied whole keeps its links), then `absoluteDir`, the
 * place whose `run.json` id (or `appendedTo`: the parent was reopened once since) matches the
 * link's preferred (lib/run/run-dir.ts's `parentOf`, which a reopened child starts from too). A folder holding another id is still followed, with a warning. Problems end the walk with `W_ANCESTRY`: a parent found in neither place, a link back
 * to a run already on the chain (a cycle, told by real path), more than {@link MAX_ANCESTRY}
 * links. An older rowlog's string `resumedFrom` (a same-folder append) is no link.
 */
import fs from 'node:fs';
import path from 'node:path';
import { numberOption, optionError, stringOption } from '../core/options.js';
import type { RowlogWarning } from '../core/warnings.js';
import { MAX_TABLE_DEPTH } from '../io/walk-files.js';
import { real } from './git-checkpoint.js';
import { hasRunMarker, TABLE_EXTS, tableFile } from './layout.js';
import { linkOf, parentOf, placesOf, readJson } from './run-dir.js';

/** Links followed at most (a chain longer than this is cut with `W_ANCESTRY`). */
export const MAX_ANCESTRY = 1000;

/** One run of a chain. */
export interface ChainRun {
  /** Its folder, absolute. */
  dir: string;
  /** Its `run.json` id and name, when it has them. */
  id?: string;
  name?: string;
}

/** What {@link ancestryOf} found. */
export interface Ancestry {
  /** The ancestors of the run, oldest first (the run itself not included). */
  ancestors: ChainRun[];
  /** Why the chain stopped early (`W_ANCESTRY`), if it did. */
  warnings: RowlogWarning[];
}

function chainRun(dir: string, info: Record<string, unknown> | undefined): ChainRun {
  const run: ChainRun = { dir };
  if (typeof info?.id === 'string') run.id = info.id;
  if (typeof info?.name === 'string') run.name = info.name;
  return run;
}

/** The ancestors of the run folder `dir`, oldest first; a broken chain stops with a warning, never a throw. */
export function ancestryOf(dir: string, maxDepth = MAX_ANCESTRY): Ancestry {
  if (stringOption(dir, 'dir') === undefined) throw optionError('type', 'dir', 'must be a run folder (got undefined)');
  numberOption(maxDepth, 'maxDepth', { min: 0, integer: true });
  const ancestors: ChainRun[] = [];
  const warnings: RowlogWarning[] = [];
  const warn = (message: string) => warnings.push({ code: 'W_ANCESTRY', message });
  let child = path.resolve(dir);
  const seen = new Set([real(child)]);
  let info = readJson(path.join(child, 'run.json'));
  for (;;) {
    const link = linkOf(info);
    if (link === undefined) break;
    if (ancestors.length >= maxDepth) {
      warn(`${child}: more than ${maxDepth} ancestors; the older ones are left out`);
      break;
    }
    const parent = parentOf(child, link);
    if (parent === undefined) {
      warn(`${child} was resumed from run ${link.id}, which is not at ${placesOf(child, link).join(' nor at ') || '(the link names no folder)'}; its rows are left out`);
      break;
    }
    const r = real(parent.dir);
    if (seen.has(r)) {
      warn(`${child} was resumed from ${parent.dir}, which is already on its chain (a cycle); the chain stops there`);
      break;
    }
    if (!parent.matched) warn(`${child} was resumed from run ${link.id}; ${parent.dir} holds run ${String(parent.info?.id)} now (reopened since?), followed anyway`);
    seen.add(r);
    ancestors.unshift(chainRun(parent.dir, parent.info));
    child = parent.dir;
    info = parent.info;
  }
  return { ancestors, warnings };
}

/**
 * The run folder a table file lies in (the nearest folder up with `run.json`/`status.json`,
 * at most the table depth up) and the file's path inside it, or undefined when it lies in none.
 */
export function runOfFile(file: string): { dir: string; rel: string } | undefined {
  const abs = path.resolve(file);
  let dir = path.dirname(abs);
  for (let up = 0; up <= MAX_TABLE_DEPTH; up++) {
    if (hasRunMarker(dir)) return { dir, rel: path.relative(dir, abs).split(path.sep).join('/') };
    const next = path.dirname(dir);
    if (next === dir) break;
    dir = next;
  }
  return undefined;
}

/**
 * The same table's file in each ancestor of the run that table file `file` belongs to, oldest
 * first (docs/DESIGN.md §6): the file of the same name when the ancestor has it, else the
 * table's first file in lib/run/layout.ts's order; an ancestor without the table has none. A file
 * in no run folder has no ancestors.
 */
export function ancestorFiles(file: string): { files: string[]; warnings: RowlogWarning[] } {
  const run = runOfFile(file);
  const table = run === undefined ? undefined : tableFile(path.posix.basename(run.rel));
  if (run === undefined || table === undefined) return { files: [], warnings: [] };
  const folder = path.posix.dirname(run.rel);
  const names = [path.posix.basename(run.rel), ...TABLE_EXTS.map((e) => `${table.name}${e}`)];
  const { ancestors, warnings } = ancestryOf(run.dir);
  const files: string[] = [];
  for (const a of ancestors) {
    const found = names.map((n) => path.join(a.dir, folder, n)).find((f) => fs.statSync(f, { throwIfNoEntry: false })?.isFile() === true);
    if (found !== undefined) files.push(found);
  }
  return { files, warnings };
}
