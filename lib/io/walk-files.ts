/**
 * The files of a run folder, table sub-folders included (a table `a/b` lives in `a/`): one walk
 * for the readers that look at what a run left (last steps, leftovers, unfinished work).
 */
import fs from 'node:fs';
import path from 'node:path';

/** How deep table folders are looked for, by every scanner of a run (this walk and lib/run/layout.ts). */
export const MAX_TABLE_DEPTH = 16;

/** What {@link walkFiles} looks at. */
export interface WalkOptions {
  /** Folder levels below `dir` to enter (0: `dir` only). @default 16 */
  depth?: number;
  /** Also enter `artifacts/` at the top (the user's files, not tables). @default false */
  artifacts?: boolean;
  /**
   * Which folders to enter besides (`rel` below `dir`, its `name`, its `level`, 0 at the top):
   * lib/run/layout.ts's `isTableFolder` to walk only a run's table folders. @default every folder
   */
  enter?: (rel: string, name: string, level: number) => boolean;
}

/**
 * Calls `visit(file, rel, name)` for every regular file under `dir` (`rel` with `/` separators).
 * A folder that cannot be read is skipped.
 */
export function walkFiles(dir: string, visit: (file: string, rel: string, name: string) => void, opts: WalkOptions = {}): void {
  const { depth = MAX_TABLE_DEPTH, artifacts = false, enter } = opts;
  const walk = (sub: string, level: number): void => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(path.join(dir, sub), { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      const rel = sub === '' ? d.name : `${sub}/${d.name}`;
      if (d.isDirectory()) {
        if (level < depth && (artifacts || sub !== '' || d.name !== 'artifacts') && (enter === undefined || enter(rel, d.name, level))) walk(rel, level + 1);
      } else if (d.isFile()) visit(path.join(dir, rel), rel, d.name);
    }
  };
  walk('', 0);
}
