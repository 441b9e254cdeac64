/**
 * One writer per run folder (issue 9, docs/DESIGN.md §4). Two loggers appending to the same files at
 * offsets each fixed when it opened them interleave bytes: `zcat` stops early, `gzip -t` sees
 * trailing garbage, the CSV loses half its rows. So `createLogger({dir})` first takes
 * `rowlog.lock` in the folder, before it reads or writes anything else there.
 *
 * Taking it is atomic: the holder's record (pid, host, start time, and the kernel's start time
 * of the process, which tells a live holder from a recycled pid) is written to a temp file
 * and `link()`ed to the lock's name, which fails with EEXIST when a lock is there, so a reader
 * never sees a half-written lock. A lock held by a live process (this one included: two
 * loggers in one process) is refused with `ERR_RUN_LOCKED` naming the holder. A lock left by a
 * process of this host that is gone (SIGKILL, a power cut) is taken over with a warning, under a
 * second lock (`rowlog.lock.takeover`) that serialises take-overs, so openers racing for a stale
 * lock cannot both win and none deletes a live holder's lock. A lock from another host is never
 * taken over: whether its process lives cannot be known from here.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RowlogError } from '../core/errors.js';
import type { RowlogWarning } from '../core/warnings.js';

/** The lock's file name inside a run folder. */
export const LOCK_FILE = 'rowlog.lock';

/** What `rowlog.lock` holds. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  startTime: string;
  /** The process's start time in clock ticks since boot (Linux `/proc/<pid>/stat`), when known. */
  procStart?: number;
}

/** Locks this process holds, by folder: a second logger on one of them is refused too. */
const held = new Set<string>();

/** Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot. */
function procStart(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count fields after it
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(h: LockHolder): boolean {
  if (h.pid === process.pid) return h.procStart === undefined || h.procStart === procStart(process.pid);
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // ESRCH: no such process
  }
  // The pid is in use: by the holder, unless it was recycled (another start time).
  const now = procStart(h.pid);
  return h.procStart === undefined || now === undefined || now === h.procStart;
}

function readHolder(file: string): { text: string; holder: LockHolder | undefined } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.startTime === 'string') {
      return { text, holder: v as LockHolder };
    }
  } catch {
    // not a lock rowlog wrote
  }
  return { text, holder: undefined };
}

function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on ${h.host}, since ${h.startTime}`;
}

/** A held run-folder lock. */
export class RunLock {
  readonly file: string;
  readonly holder: LockHolder;
  readonly #text: string;
  #released = false;

  private constructor(file: string, holder: LockHolder, text: string) {
    this.file = file;
    this.holder = holder;
    this.#text = text;
  }

  /**
   * Takes the lock of `dir` (which must exist) or throws `ERR_RUN_LOCKED` naming the holder.
   * A stale lock of this host is taken over and reported through `onWarning` (`W_STALE_LOCK`).
   */
  static acquire(dir: string, onWarning: (w: RowlogWarning) => void): RunLock {
    const file = path.join(dir, LOCK_FILE);
    if (held.has(dir)) {
      const mine = readHolder(file)?.holder;
      throw locked(dir, mine ?? { pid: process.pid, host: os.hostname(), startTime: '?' }, 'another logger of this process');
    }
    const holder: LockHolder = { pid: process.pid, host: os.hostname(), startTime: new Date().toISOString() };
    const start = procStart(process.pid);
    if (start !== undefined) holder.procStart = start;
    const text = `${JSON.stringify(holder)}\n`;
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, text);
    try {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          fs.linkSync(tmp, file);
          held.add(dir);
          return new RunLock(file, holder, text);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const found = readHolder(file);
        if (found === undefined) continue; // released meanwhile: try again
        const h = found.holder;
        if (h !== undefined && (h.host !== os.hostname() || isAlive(h))) {
          throw locked(dir, h, h.host === os.hostname() ? 'a live process' : 'a process on another host');
        }
        // Stale (its process is gone) or not a lock at all. Take-overs are serialised by a second
        // lock, and the stale record is read again under it: only a take-over could replace it
        // now, so replacing it cannot replace a live holder's lock (three openers racing included).
        const guard = takeoverGuard(file);
        if (guard === undefined) {
          Atomics.wait(PAUSE, 0, 0, 2); // another opener is taking it over (µs): look again in 2 ms
          continue;
        }
        try {
          if (readHolder(file)?.text !== found.text) continue;
          // rename() replaces the stale lock with ours in one step: the name is never free, so
          // an opener that does not take over cannot slip in between.
          fs.renameSync(tmp, file);
        } finally {
          fs.rmSync(guard, { force: true });
        }
        held.add(dir);
        onWarning({
          code: 'W_STALE_LOCK',
          message: h
            ? `took over the lock of ${dir} left by ${describeHolder(h)}, which is no longer running`
            : `replaced ${file}, which was not a rowlog lock (${JSON.stringify(found.text.slice(0, 80))})`,
        });
        return new RunLock(file, holder, text);
      }
      throw new RowlogError('ERR_RUN_LOCKED', `could not take the lock of ${dir}: it kept changing hands`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Removes the lock, if it is still this one. Synchronous (exit hooks use it); never throws. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    held.delete(path.dirname(this.file));
    try {
      if (fs.readFileSync(this.file, 'utf8') === this.#text) fs.unlinkSync(this.file);
    } catch {
      // gone already, or the folder was removed: nothing to release
    }
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** A take-over guard older than this was left by a process that died taking over (it takes µs). */
const GUARD_STALE_MS = 10_000;

/**
 * Takes `<lock>.takeover` (atomic exclusive create), or returns undefined when another opener
 * holds it; a guard left behind by a dead opener is cleared once it is old.
 */
function takeoverGuard(file: string): string | undefined {
  const guard = `${file}.takeover`;
  try {
    fs.writeFileSync(guard, `${process.pid}\n`, { flag: 'wx' });
    return guard;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  try {
    if (Date.now() - fs.statSync(guard).mtimeMs > GUARD_STALE_MS) fs.rmSync(guard, { force: true });
  } catch {
    // gone meanwhile
  }
  return undefined;
}

function locked(dir: string, h: LockHolder, who: string): RowlogError {
  return new RowlogError(
    'ERR_RUN_LOCKED',
    `run folder ${dir} is in use by ${who} (${describeHolder(h)}): one writer per run folder; ` +
      'give each process its own folder (e.g. runs/exp/rank0) or send rows to one collector (rowlog collect)',
  );
}
