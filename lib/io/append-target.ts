/**
 * Where a FileWriter's bytes go on disk, and how its fd is opened (lib/io/file-writer.ts).
 *
 * A new file never appears empty or half-written (issue 9, point 9: a 0-byte `.jsonl.gz` fails
 * `gzip -t`): its first chunk goes to `<path>.<pid>.new.tmp`, which {@link AppendTarget.commit}
 * renames onto `path` once that chunk is whole (lib/io/atomic.ts; the fd stays valid across the
 * rename). So a `.gz` is never shorter than one whole member and a CSV never lacks its header
 * line. A killed process's temp file is adopted or removed when the run folder is reopened
 * (lib/run/run-dir.ts). The folder is created at the first open.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import { renameOver } from './atomic.js';

/** The temp file a new file's first chunk is written to: `<path>.<pid>.new.tmp`. */
export const newFileTmpPath = (path: string): string => `${path}.${process.pid}.new.tmp`;

/** The file name a {@link newFileTmpPath} name (of any process) is the first chunk of; undefined for other names. */
export const newFileTmpTarget = (name: string): string | undefined => /^(.+)\.\d+\.new\.tmp$/.exec(name)?.[1];

export class AppendTarget {
  readonly path: string;
  /** End of the bytes confirmed on disk; -1 until the first open. */
  pos = -1;
  /** The first chunk goes to this temp file, renamed onto `path` when whole. */
  #tmp: string | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Opens an fd to write at `pos`: the temp file of a first chunk not yet whole, the file (a
   * parked one reopened, or an existing one, `pos` its size), or a new temp file (`pos` 0, the
   * folder made). `restarted`: the file was removed while parked, so it starts again from 0 and
   * the chunk that was being written must be written whole. Throws the system error.
   */
  open(): { fd: number; restarted: boolean } {
    if (this.#tmp !== undefined) return { fd: fs.openSync(this.#tmp, fs.constants.O_WRONLY), restarted: false }; // its first chunk, resumed
    let restarted = false;
    if (this.pos >= 0) {
      try {
        return { fd: fs.openSync(this.path, fs.constants.O_WRONLY), restarted: false }; // a parked file, reopened
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        restarted = true; // removed meanwhile: start it again
      }
    }
    try {
      const fd = fs.openSync(this.path, fs.constants.O_WRONLY);
      try {
        this.pos = fs.fstatSync(fd).size;
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
      return { fd, restarted };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    fs.mkdirSync(nodePath.dirname(this.path), { recursive: true });
    const tmp = newFileTmpPath(this.path);
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
    this.#tmp = tmp;
    this.pos = 0;
    return { fd, restarted };
  }

  /** The first chunk is whole (and fsync'ed with durability 'flush'): the temp file becomes the file. */
  commit(fsync: boolean): void {
    if (this.#tmp === undefined) return;
    renameOver(this.#tmp, this.path, { fsync });
    this.#tmp = undefined;
  }

  /** The writer closed before its first chunk was whole: the temp file goes. */
  discard(): void {
    if (this.#tmp !== undefined) fs.rm(this.#tmp, { force: true }, () => undefined);
  }
}
