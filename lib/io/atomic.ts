/**
 * One atomic replace of a file (docs/DESIGN.md §4): readers see the old file or the new one, never half
 * of either, whatever kills the process. The new bytes go to a temp file in the same folder
 * (a rename is atomic only within one file system), are fsync'ed when asked, and are renamed
 * over the file; then, when asked, the folder is fsync'ed too, because the rename lives in the
 * folder, and a power loss may otherwise undo it (or leave the file missing, for a new one).
 *
 * Every rename-into-place of rowlog goes through {@link renameOver}: the small JSON files of a
 * run folder, a CSV's sidecar and each part of a Parquet dataset ({@link writeFileAtomic};
 * lib/io/parquet-dataset.ts), a new table file's first chunk
 * (lib/io/file-writer.ts: its temp file is the one being written), and a CSV rewrite's
 * streamed temp file (sinks/csv-rewrite.ts writes and fsyncs it in steps, then renames it here).
 * The run lock's link + rename (lib/run/run-lock.ts) is another protocol and does not.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Options of {@link renameOver}. */
export interface RenameOptions {
  /** fsync the folder after the rename (durability 'flush'). @default false */
  fsync?: boolean;
  /**
   * The file replaced may be large (a table file): a rename over a big file frees its blocks
   * synchronously (≈ 0.2 s for 500 MB), so a second link `<file>.old.tmp` keeps the rename cheap
   * and is unlinked on the thread pool. @default false
   */
  large?: boolean;
}

/** From this size a replaced file is unlinked on the thread pool (freeing its blocks takes time). */
const LARGE_FILE = 16 * 1024 * 1024;

/** The temp file {@link writeFileAtomic} writes by default: `<file>.<pid>.tmp`. */
export const atomicTmpPath = (file: string): string => `${file}.${process.pid}.tmp`;

/** The second link of a large file being replaced (see {@link RenameOptions.large}). */
export const oldLinkPath = (file: string): string => `${file}.old.tmp`;

/**
 * Renames `tmp` (whole on disk; fsync'ed by the caller when durability asks) over `file`.
 * Throws the rename's error, with `file` as it was.
 */
export function renameOver(tmp: string, file: string, opts: RenameOptions = {}): void {
  let old: string | undefined;
  if (opts.large === true) {
    try {
      if (fs.statSync(file).size >= LARGE_FILE) {
        const link = oldLinkPath(file);
        fs.rmSync(link, { force: true });
        fs.linkSync(file, link);
        old = link;
      }
    } catch {
      // no such file yet, or no hard links here: the rename frees the old file itself
    }
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    if (old !== undefined) fs.rmSync(old, { force: true });
    throw err;
  }
  if (old !== undefined) fs.unlink(old, () => {});
  if (opts.fsync === true) fsyncDir(path.dirname(file));
}

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** fsync the temp file before the rename and the folder after it. @default false */
  fsync?: boolean;
  /** The temp file's name (in the folder of `file`). @default {@link atomicTmpPath} */
  tmp?: string;
}

/**
 * Writes `data` to `file` through a temp file and {@link renameOver}, so readers never see half
 * of it. On failure (a full disk) the temp file is removed, so none is left behind.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const tmp = opts.tmp ?? atomicTmpPath(file);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      if (opts.fsync === true) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    renameOver(tmp, file, { fsync: opts.fsync === true });
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * fsyncs a folder, so a rename in it survives a power loss. Best effort: the rename has
 * happened, and a file system that cannot fsync a folder (EINVAL, EISDIR elsewhere) must not
 * turn it into a failure the caller would retry.
 */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // see above
  } finally {
    fs.closeSync(fd);
  }
}
