/**
 * The run folder (docs/DESIGN.md §4), after Skáld and Blocks: `run.json` says who wrote the run and
 * from what code, `params.json` the hyper-parameters, `status.json` where training got to
 * (and each table's last step, so a resumed run continues counting), `artifacts/` the files.
 * Opening an existing folder appends to it: the new `run.json` names the earlier opening in
 * `appendedTo` and keeps its `resumedFrom`. A run resumed from another folder (`resumeFrom`,
 * Blocks' resume, issue 13 §1) is a new folder whose `run.json` links to its parent in
 * `resumedFrom: {id, dir, absoluteDir}` (`dir` relative to this folder, so a moved or copied tree
 * keeps its links; the absolute path as the fallback), whose status starts as the parent's and
 * whose steps continue from the parent's (docs/DESIGN.md §4). Small JSON files are written
 * atomically (lib/io/atomic.ts: temp file + rename).
 *
 * One writer at a time (issue 9): the folder's lock is taken right after the folder exists and
 * before anything in it is read or written (lib/run/run-lock.ts); then leftovers of a process that
 * died mid-write (`params.json.<pid>.tmp`) are removed, and each table's last step is the larger
 * of what `status.json` saved and what the table's files hold (a run killed before its first
 * status save must not repeat steps).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertName, nameSegment } from '../core/entry.js';
import { RowlogError } from '../core/errors.js';
import type { RowlogWarning } from '../core/warnings.js';
import { isGzip } from '../format/bgzf.js';
import { scanMembers } from '../io/bgzf-file.js';
import { isTableFolder } from './layout.js';
import { lastStepsInDir } from './last-step.js';
import { LOCK_FILE, RunLock } from './run-lock.js';
import { VERSION } from '../core/version.js';
import { writeFileAtomic } from '../io/atomic.js';
import { baseEnv, CHECKPOINT_DIFF, gitCheckpoint, writeCheckpointDiff } from './git-checkpoint.js';
import type { CheckpointRun, GitCheckpoint, GitCheckpointOptions } from './git-checkpoint.js';
import { readAt } from '../io/read-at.js';
import { walkFiles } from '../io/walk-files.js';
import { isStep } from '../core/ingest.js';

/** What `rowlog run` ran and how it ended: `run.json`'s `command` (docs/DESIGN.md §4, §7). */
export interface RunCommand {
  /** The program and its arguments, as given after `--`. */
  argv: string[];
  /** Where it ran. */
  cwd: string;
  /** Its process id (on a terminal: that of util-linux `script`, which runs it). */
  pid?: number;
  /** It ran on a pseudo-terminal (util-linux `script`) because rowlog's stdout was a terminal. */
  terminal: boolean;
  /** ISO time it started. */
  start: string;
  /** ISO time it ended (absent while it runs). */
  end?: string;
  /** Its exit code; null when a signal ended it (absent while it runs). */
  exitCode?: number | null;
  /** The signal that ended it (`SIGTERM`), or null (absent while it runs). */
  signal?: string | null;
}

/** What `run.json` holds. */
export interface RunInfo {
  /** A fresh UUID for this process's run. */
  id: string;
  /** The run's name (the folder's name unless given). */
  name: string;
  /** ISO time the logger was created. */
  startTime: string;
  argv: string[];
  cwd: string;
  host: string;
  pid: number;
  node: string;
  rowlog: string;
  /**
   * The git work tree the process runs in: HEAD's `commit` and whether tracked files had changes
   * (`dirty`), both absent before the first commit; with `createLogger({git})` also the
   * `checkpoint` commit of the working tree (lib/run/git-checkpoint.ts) and HEAD's `branch`.
   */
  git?: { commit?: string; dirty?: boolean; branch?: string; checkpoint?: string };
  /** The run this one was resumed from (`resumeFrom`), kept by later openings of this folder. */
  resumedFrom?: ResumedFrom;
  /** The id of the earlier opening of this same folder, when it already held a run (an append, not a link readers follow). */
  appendedTo?: string;
  /** With `rowlog run`: the program it ran, and how it ended. */
  command?: RunCommand;
  /** With `rowlog collect --redis`: where the run's rows came from (docs/DESIGN.md §4, "The ack rule"). */
  source?: RunSource;
}

/** `run.json`'s `source`: the Redis a collected run was read from, and the run there. */
export interface RunSource {
  /** The Redis URL, its password (and user) as `***`. */
  redis: string;
  /** The key prefix. */
  prefix: string;
  /** The run's name in Redis. */
  run: string;
  /** The id of the producing run (its meta hash's `id`), when known. */
  id?: string;
  /** The producing run's own `run.json` (its meta hash's `run`), when it parses. */
  info?: Record<string, unknown>;
}

/** `run.json`'s link to the parent of a resumed run (docs/DESIGN.md §4). */
export interface ResumedFrom {
  /** The parent's `run.json` id when this run was resumed from it. */
  id: string;
  /** The parent's folder relative to this run's folder (`../exp1`), `/`-separated: found again after the tree is moved or copied. */
  dir: string;
  /** The parent's absolute folder when this run was created: the fallback when `dir` does not lead to it. */
  absoluteDir: string;
}

/** The parent of a run being resumed: who it is, and what the child starts from. */
interface Parent {
  link: ResumedFrom;
  /** Its `appendedTo`: the id it had before it was last reopened. */
  appendedTo?: string;
  status: Record<string, unknown>;
  steps: Record<string, number>;
}

/** Status keys rowlog keeps in `status.json` beside the user's own. */
const STEPS_KEY = '$steps';
const STATE_KEY = '$state';
const UPDATED_KEY = '$updated';
const SIGNAL_KEY = '$signal';
const EXIT_CODE_KEY = '$exitCode';
const RESERVED = new Set([STEPS_KEY, STATE_KEY, UPDATED_KEY, SIGNAL_KEY, EXIT_CODE_KEY]);

/**
 * Where a run got to, in `status.json`'s `$state`: `running` (saved on flush), `closed`
 * (`log.close()`), `interrupted` (SIGINT, SIGTERM or SIGHUP ended the process; `$signal` names
 * it), `exited` (the process ended without `close()`; `$exitCode`).
 */
export type RunState =
  | { state: 'running' | 'closed' }
  | { state: 'interrupted'; signal: string }
  | { state: 'exited'; exitCode: number };

/** Temp files of writeFileAtomic (lib/io/atomic.ts): `<name>.<pid>.tmp`. */
const ATOMIC_TMP = /^.+\.\d+\.tmp$/;

/** A new table file's first chunk, before its rename into place (lib/io/append-target.ts): `<file>.<pid>.new.tmp`. */
const NEW_FILE_TMP = /^(.+)\.\d+\.new\.tmp$/;

/**
 * Cuts an unrenamed first chunk to what is whole (whole gzip members for `.gz`, whole lines
 * otherwise); false when nothing whole is left, so a file is never adopted torn or empty.
 */
function keepWhole(file: string): boolean {
  const fd = fs.openSync(file, 'r+');
  try {
    const size = fs.fstatSync(fd).size;
    let keep: number;
    if (isGzip(readAt(fd, 0, 3))) {
      const scan = scanMembers(fd, size);
      keep = scan.bgzf ? scan.wholeEnd : 0;
    } else {
      keep = readAt(fd, 0, size).lastIndexOf(10) + 1; // one batch at most (≤ flushBytes)
    }
    if (keep > 0 && keep < size) fs.ftruncateSync(fd, keep);
    return keep > 0;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `rowlog.lock`'s temp file (`rowlog.lock.<pid>.<hex>.tmp`) left by an opener killed while it
 * took the lock: removed when that process is gone (it lives µs otherwise), or when old.
 */
function isLockLeftover(name: string, file: string): boolean {
  const m = /^rowlog\.lock\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
  if (m === null || name.startsWith(`${LOCK_FILE}.takeover`)) return false;
  try {
    process.kill(Number(m[1]), 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  try {
    return Date.now() - fs.statSync(file).mtimeMs > 60_000;
  } catch {
    return false;
  }
}

/**
 * Leftovers of a process that died mid-write, found on reopen (the lock is ours, so they are
 * nobody's now): `<name>.json.<pid>.tmp` of writeFileAtomic and `from_head.diff.<pid>.tmp` are
 * removed (the file they were to replace is whole); a new table file's first chunk that never got its rename is adopted when
 * the file does not exist (its rows were written; a torn end is cut as any torn tail), else
 * removed. Table folders are walked too: a table `a/b` lives in `a/`.
 */
function removeLeftovers(dir: string): void {
  walkFiles(dir, (p, _rel, name) => {
    const fresh = NEW_FILE_TMP.exec(name);
    if (fresh !== null) {
      const target = path.join(path.dirname(p), fresh[1] as string);
      if (!fs.existsSync(target) && keepWhole(p)) fs.renameSync(p, target);
      else fs.rmSync(p, { force: true });
    } else if ((ATOMIC_TMP.test(name) && (name.includes('.json.') || name.startsWith(`${CHECKPOINT_DIFF}.`))) || isLockLeftover(name, p)) {
      fs.rmSync(p, { force: true });
    }
  }, {
    artifacts: true,
    // artifacts/ (log.artifact's temp files) and the table folders, never a run of its own inside this one
    enter: (rel, name, level) => (level === 0 && name === 'artifacts') || isTableFolder(dir, rel, name, level),
  });
}

/** A run folder's JSON file as an object; undefined when it is missing, unreadable or not an object. */
export function readJson(file: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function gitInfo(cwd: string): RunInfo['git'] {
  const run = (args: string[]): string =>
    execFileSync('git', args, {
      cwd,
      env: baseEnv(), // status must not rewrite the user's index
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
      encoding: 'utf8',
    }).trim();
  try {
    const commit = run(['rev-parse', 'HEAD']);
    return { commit, dirty: run(['status', '--porcelain', '--untracked-files=no']) !== '' };
  } catch {
    return undefined; // not a git work tree, no commit yet, or no git
  }
}

/**
 * The `JSON.stringify` replacer of the run folder's JSON files: the values JSON cannot hold made
 * readable (BigInt as text, typed arrays as arrays, a Map as an object, a Set as an array). The
 * SQLite sink uses it too, so its run/params/status hold what the JSON files hold.
 */
export function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>, Number);
  if (v instanceof Map) return Object.fromEntries(v);
  if (v instanceof Set) return [...v];
  return v;
}

/** JSON with the values JSON cannot hold made readable ({@link jsonReplacer}). */
function toJson(value: unknown): string {
  return `${JSON.stringify(value, jsonReplacer, 2)}\n`;
}

/** Options of a {@link RunDir}. */
export interface RunDirOptions {
  /** Run name written to `run.json`. @default the folder's name */
  name?: string;
  /** Where problems that do not stop the run go (W_STALE_LOCK, W_GIT_CHECKPOINT). @default dropped */
  onWarning?: (w: RowlogWarning) => void;
  /** Commit a git checkpoint of the working tree first (lib/run/git-checkpoint.ts). @default none */
  git?: GitCheckpointOptions;
  /** The parent run folder of a resumed run (docs/DESIGN.md §4). @default none */
  resumeFrom?: string;
}

/** An open run folder. */
export class RunDir {
  readonly dir: string;
  readonly info: RunInfo;
  /** The status saved by an earlier run in this folder (user keys only). */
  readonly savedStatus: Record<string, unknown>;
  /** Each table's last step saved by an earlier run in this folder. */
  readonly savedSteps: Record<string, unknown>;
  #params: Record<string, unknown>;
  readonly #lock: RunLock;

  /**
   * Creates `dir` (with parents) or opens it to append, takes its lock (`ERR_RUN_LOCKED` when
   * another logger holds it; nothing in the folder is touched then), writes `run.json`.
   * With `resumeFrom`, the parent folder is read first (`ERR_RESUME_FROM` when it holds no
   * readable `run.json`, before anything is created); a `dir` that already holds a run is
   * appended to only when that run was resumed from the same parent (reopening a resumed run),
   * else `ERR_RESUME_FROM`. With `git`, the git checkpoint is committed and `from_head.diff`
   * written before `run.json` (a failure: one `W_GIT_CHECKPOINT`, and no checkpoint in `run.json`).
   */
  constructor(dir: string, opts: RunDirOptions = {}) {
    const { name, onWarning = () => undefined, git, resumeFrom } = opts;
    this.dir = path.resolve(dir);
    const parent = resumeFrom === undefined ? undefined : readParent(this.dir, resumeFrom);
    fs.mkdirSync(this.dir, { recursive: true });
    this.#lock = RunLock.acquire(this.dir, onWarning);
    try {
      const previous = readJson(path.join(this.dir, 'run.json'));
      const carried = linkOf(previous);
      if (parent !== undefined && previous !== undefined && !sameParent(this.dir, carried, parent)) {
        throw new RowlogError('ERR_RESUME_FROM', `resumeFrom: ${this.dir} already holds a run that was not resumed from ${parent.link.absoluteDir}; give a new dir`);
      }
      removeLeftovers(this.dir);
      // A resumed run reopened without resumeFrom starts from the parent its link names, as with it.
      const from = parent ?? (carried === undefined ? undefined : carriedStart(this.dir, carried));
      // A resumed run reopened before its first status save starts from its parent's, as it did.
      const saved = readJson(path.join(this.dir, 'status.json'));
      const own = startOf(this.dir, saved);
      this.savedStatus = saved === undefined && from !== undefined ? { ...from.status } : own.status;
      // A table of this folder's own continues from its own last step, the others from the parent's.
      this.savedSteps = { ...from?.steps, ...own.steps };
      this.#params = readJson(path.join(this.dir, 'params.json')) ?? {};
      this.info = this.#writeInfo(name, previous, parent?.link ?? carried, git, onWarning);
    } catch (err) {
      this.#lock.release();
      throw err;
    }
  }

  #writeInfo(
    name: string | undefined,
    previous: Record<string, unknown> | undefined,
    link: ResumedFrom | undefined,
    checkpoint: GitCheckpointOptions | undefined,
    onWarning: (w: RowlogWarning) => void,
  ): RunInfo {
    const id = randomUUID();
    name ??= path.basename(this.dir);
    const git = checkpoint === undefined ? gitInfo(process.cwd()) : this.#checkpoint({ dir: this.dir, name, id }, checkpoint, onWarning);
    const info: RunInfo = {
      id,
      name,
      startTime: new Date().toISOString(),
      argv: process.argv.slice(),
      cwd: process.cwd(),
      host: os.hostname(),
      pid: process.pid,
      node: process.version,
      rowlog: VERSION,
      ...(git ? { git } : {}),
      ...(link !== undefined ? { resumedFrom: link } : {}),
      ...(typeof previous?.id === 'string' ? { appendedTo: previous.id } : {}),
    };
    writeFileAtomic(path.join(this.dir, 'run.json'), toJson(info));
    return info;
  }

  /**
   * gitInfo() plus the checkpoint and `from_head.diff` (docs/DESIGN.md §4); any failure is one
   * warning, never a throw. A checkpoint made whose diff cannot be written is still recorded.
   */
  #checkpoint(run: CheckpointRun, opts: GitCheckpointOptions, onWarning: (w: RowlogWarning) => void): RunInfo['git'] {
    const git = gitInfo(process.cwd());
    const diff = path.join(this.dir, CHECKPOINT_DIFF);
    const fail = (message: string) => {
      onWarning({ code: 'W_GIT_CHECKPOINT', message });
      try {
        fs.rmSync(diff, { force: true }); // an earlier run's in this folder would name another checkpoint
      } catch {
        // not a file (a folder in the way): left alone
      }
    };
    let cp: GitCheckpoint;
    try {
      cp = gitCheckpoint(process.cwd(), run, opts);
    } catch (err) {
      fail(`no git checkpoint of the code: ${(err as Error).message}`);
      return git;
    }
    try {
      writeCheckpointDiff(cp, diff);
    } catch (err) {
      fail(`the git checkpoint ${cp.commit} was made, but ${CHECKPOINT_DIFF} could not be written: ${(err as Error).message}`);
    }
    return { ...git, ...(cp.branch !== undefined ? { branch: cp.branch } : {}), checkpoint: cp.commit };
  }

  /** Merges `fields` into `info` and writes `run.json` again, atomically (`rowlog run`'s `command`). */
  updateInfo(fields: Partial<RunInfo>): void {
    Object.assign(this.info, fields);
    writeFileAtomic(path.join(this.dir, 'run.json'), toJson(this.info));
  }

  /** Gives the folder's lock up (on close, and at process exit). Never throws. */
  releaseLock(): void {
    this.#lock.release();
  }

  /** Merges `params` into `params.json` (top-level keys replace earlier ones). */
  params(params: Record<string, unknown>): void {
    const merged = { ...this.#params, ...params };
    writeFileAtomic(path.join(this.dir, 'params.json'), toJson(merged));
    this.#params = merged; // only once on disk: a failed write (a full disk) must not poison later ones
  }

  /** All params given so far (including an earlier run's in this folder). */
  get paramsSoFar(): Readonly<Record<string, unknown>> {
    return this.#params;
  }

  /**
   * Writes `artifacts/<name>`: bytes and strings as they are, anything else as JSON.
   * `name` follows the table-name rule, so it cannot leave the folder. Returns the path.
   */
  artifact(name: string, data: unknown): string {
    assertName(name, 'artifact');
    const file = path.join(this.dir, 'artifacts', name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const bytes =
      typeof data === 'string'
        ? data
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : data instanceof ArrayBuffer
            ? new Uint8Array(data)
            : toJson(data);
    writeFileAtomic(file, bytes);
    return file;
  }

  /** Writes `status.json`: the user's status plus each table's last step and the run state. */
  saveStatus(status: Record<string, unknown>, steps: Record<string, number>, run: RunState): void {
    writeFileAtomic(path.join(this.dir, 'status.json'), toJson(statusRecord(status, steps, run)));
  }
}

/** What `status.json` holds: the user's status, each table's last step, the run state, the time. */
export function statusRecord(status: Record<string, unknown>, steps: Record<string, number>, run: RunState): Record<string, unknown> {
  const extra = run.state === 'interrupted' ? { [SIGNAL_KEY]: run.signal } : run.state === 'exited' ? { [EXIT_CODE_KEY]: run.exitCode } : {};
  return { ...status, [STEPS_KEY]: steps, [STATE_KEY]: run.state, ...extra, [UPDATED_KEY]: new Date().toISOString() };
}

/** The user's keys of a saved `status.json` (rowlog's `$` keys left out). */
export function userStatus(saved: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(saved).filter(([k]) => !RESERVED.has(k)));
}

/**
 * `run.json`'s `resumedFrom` when it is a link (an object with an id; an older rowlog wrote a
 * string there for a same-folder append, which is no link).
 */
export function linkOf(info: Record<string, unknown> | undefined): ResumedFrom | undefined {
  const v = info?.resumedFrom;
  if (typeof v !== 'object' || v === null) return undefined;
  const { id, dir, absoluteDir } = v as Record<string, unknown>;
  if (typeof id !== 'string') return undefined;
  return { id, dir: typeof dir === 'string' ? dir : '', absoluteDir: typeof absoluteDir === 'string' ? absoluteDir : '' };
}

/** The places, in order and without repeats, the link `link` of the run folder `child` (absolute) names. */
export function placesOf(child: string, link: ResumedFrom): string[] {
  return [...new Set([link.dir === '' ? '' : path.resolve(child, link.dir), link.absoluteDir].filter((p) => p !== ''))];
}

/**
 * The folder the link `link` of the run folder `child` (absolute) points to: of its two places,
 * `dir` resolved against `child` (a tree moved or copied whole keeps its links), then
 * `absoluteDir`, the first whose `run.json` id (or `appendedTo`: reopened once since) is the
 * link's, else the first holding any `run.json` (`matched` false); undefined when neither does.
 * The one answer for every reader of the link (lib/run/ancestry.ts) and for a reopened child.
 */
export function parentOf(child: string, link: ResumedFrom): { dir: string; info: Record<string, unknown>; matched: boolean } | undefined {
  const found = placesOf(child, link).flatMap((dir) => {
    const info = readJson(path.join(dir, 'run.json'));
    return info === undefined ? [] : [{ dir, info, matched: info.id === link.id || info.appendedTo === link.id }];
  });
  return found.find((p) => p.matched) ?? found[0];
}

/** True when `link` (a run's own) names `parent`: by id, by the id it had before it was reopened, or by its folder. */
function sameParent(dir: string, link: ResumedFrom | undefined, parent: Parent): boolean {
  if (link === undefined) return false;
  const at = parent.link.absoluteDir;
  return link.id === parent.link.id || link.id === parent.appendedTo || link.absoluteDir === at || (link.dir !== '' && path.resolve(dir, link.dir) === at);
}

/** The parent `from` of the run to be created at `child` (absolute): its link, status and last steps; `ERR_RESUME_FROM` when it is no run. */
function readParent(child: string, from: string): Parent {
  const dir = path.resolve(from);
  if (dir === child) throw new RowlogError('ERR_RESUME_FROM', `resumeFrom: ${dir} is dir itself; to append to a folder, open it without resumeFrom`);
  const info = readJson(path.join(dir, 'run.json'));
  if (typeof info?.id !== 'string') {
    const why = fs.existsSync(dir) ? 'holds no readable run.json' : 'does not exist';
    throw new RowlogError('ERR_RESUME_FROM', `resumeFrom: ${dir} ${why}; nothing was created`);
  }
  return {
    ...(typeof info.appendedTo === 'string' ? { appendedTo: info.appendedTo } : {}),
    link: { id: info.id, dir: path.relative(child, dir).split(path.sep).join('/'), absoluteDir: dir },
    ...startOf(dir),
  };
}

/** What a child of the run folder `dir` starts from (and a reopened `dir` itself): its user status and each table's last step; `saved` its `status.json` when read already. */
function startOf(dir: string, saved = readJson(path.join(dir, 'status.json'))): Pick<Parent, 'status' | 'steps'> {
  saved ??= {};
  const steps = saved[STEPS_KEY];
  return { status: userStatus(saved), steps: lastSteps(dir, typeof steps === 'object' && steps !== null ? (steps as Record<string, unknown>) : {}) };
}

/**
 * The start of the parent a reopened folder's carried link names ({@link parentOf}, as
 * lib/run/ancestry.ts finds it), or none when it is gone or is the folder itself.
 */
function carriedStart(child: string, link: ResumedFrom): Pick<Parent, 'status' | 'steps'> | undefined {
  const at = parentOf(child, link);
  return at === undefined || at.dir === child ? undefined : startOf(at.dir);
}

/** Each table's last step: the larger of `saved` (status.json) and what the table's files hold. */
function lastSteps(dir: string, saved: Record<string, unknown>): Record<string, number> {
  const steps: Record<string, number> = {};
  for (const [t, s] of Object.entries(saved)) if (isStep(s)) steps[t] = s;
  for (const [t, s] of lastStepsInDir(dir)) if (!(s <= (steps[t] ?? -Infinity))) steps[t] = s;
  return steps;
}

/** `ROWLOG_DIR`, else `runs/<script>_<local time>` (docs/DESIGN.md §5). */
export function defaultRunDir(script = process.argv[1] ? path.basename(process.argv[1]).replace(/\.[^.]*$/, '') : 'node'): string {
  const env = process.env.ROWLOG_DIR;
  if (env !== undefined && env !== '') return env;
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  const time = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
  return path.join('runs', nameSegment(`${script}_${time}`));
}
