/**
 * The git checkpoint of a run (docs/DESIGN.md §4, after noko): the working tree as it was when the
 * run started, committed onto the branch `rowlog-checkpoints` of the repository the process runs
 * in, so `git show <checkpoint>:train.py` gives back the code that made the rows, uncommitted
 * edits and new files included.
 *
 * What is committed: what `git add -A` would stage (tracked changes, deletions, untracked files;
 * `.gitignore`, `.git/info/exclude` and `core.excludesFile` honoured), minus the run folder itself,
 * minus other rowlog run folders that are untracked (a folder holding `run.json` and
 * `status.json`), minus untracked files over `maxFileBytes` (data and weights, not code).
 *
 * Why the `git` CLI's plumbing: it is on every machine that has a repository, and measured
 * 0.03–0.07 s on a 3,000-file repository, where isomorphic-git spent 2.8 s on status alone. Why a
 * temporary index: the user's index, HEAD, branch, stash and working tree must stay as they were
 * (`git status` byte-identical before and after, `.git/index` not even rewritten).
 *
 * How, each step one `git` command run in the work tree's top folder (with `GIT_OPTIONAL_LOCKS=0`,
 * so no read refreshes the user's index):
 * ```
 * rev-parse --show-toplevel --git-path index     the top folder; the index to seed from
 * rev-parse -q --verify HEAD^{commit}            HEAD (none in an empty repository)
 * rev-parse -q --verify <ref>^{commit}           the last checkpoint, when there is one
 * ls-files -z --others --exclude-standard        untracked files: which are over the cap
 * GIT_INDEX_FILE=<tmp copy of the index> add -A --pathspec-from-file=-   (the exclusions)
 * GIT_INDEX_FILE=<tmp> write-tree                the tree
 * log -1 --format=%T %P <last>                   unchanged tree and same HEAD → reuse <last>
 * commit-tree <tree> -p <last> -p HEAD           parents: the last checkpoint first, then HEAD
 * update-ref <ref> <new> <last or "">            compare-and-swap; lost to a concurrent run → once more
 * diff-tree -p --binary <HEAD or empty tree> <new>  > from_head.diff (through atomic.ts)
 * ```
 * The commit's author and committer are the repository's configured identity, else
 * `rowlog <rowlog@localhost>` (a machine without `user.email` still gets its checkpoint).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { booleanOption, numberOption, objectOption } from '../core/options.js';
import { atomicTmpPath, renameOver } from '../io/atomic.js';

/** Options of the checkpoint (`createLogger({git: {…}})`). */
export interface GitCheckpointOptions {
  /**
   * Untracked files larger than this many bytes are left out of the checkpoint (tracked files are
   * always in it). Code is kilobytes; what is over a mebibyte and not committed is data, weights
   * or logs, which every checkpoint would otherwise keep in `.git` for good.
   * @default 1048576 (1 MiB)
   */
  maxFileBytes?: number;
  /**
   * Milliseconds the whole checkpoint may take (every `git` command of it, `from_head.diff`
   * included) before it is given up with a warning: `createLogger` waits for it, so it is one
   * bound on the start of the run, not one per command (a dozen commands of 30 s each would be
   * six minutes). @default 30000
   */
  timeout?: number;
}

/** The branch checkpoints are committed onto. */
export const CHECKPOINT_REF = 'refs/heads/rowlog-checkpoints';
/** The run folder's diff from HEAD to the checkpoint. */
export const CHECKPOINT_DIFF = 'from_head.diff';
const DEFAULT_MAX_FILE_BYTES = 1 << 20;
const DEFAULT_TIMEOUT = 30_000;
/** The identity of a checkpoint commit where git has none configured. */
const FALLBACK = { name: 'rowlog', email: 'rowlog@localhost' };

/** `createLogger`'s `git` option: `true` or options → the options with defaults; `false`/`undefined` → undefined. */
export function gitCheckpointOption(v: unknown): Required<GitCheckpointOptions> | undefined {
  if (v === undefined || typeof v === 'boolean') return booleanOption(v, 'git', false) ? gitCheckpointOption({}) : undefined;
  const o = objectOption(v as GitCheckpointOptions, 'git');
  return {
    maxFileBytes: o.maxFileBytes === undefined ? DEFAULT_MAX_FILE_BYTES : numberOption(o.maxFileBytes, 'git.maxFileBytes', { min: 0, integer: true, infinite: true }),
    timeout: o.timeout === undefined ? DEFAULT_TIMEOUT : numberOption(o.timeout, 'git.timeout', { min: 1, integer: true }),
  };
}

/** What one checkpoint made. */
export interface GitCheckpoint {
  /** The checkpoint commit (on {@link CHECKPOINT_REF}). */
  commit: string;
  /** HEAD's commit; absent in a repository without a commit. */
  head?: string;
  /** HEAD's branch (`main`); absent on a detached HEAD. */
  branch?: string;
  /** True when the last checkpoint was reused (same tree, same HEAD). */
  reused: boolean;
  /** Untracked files left out for their size, relative to the top folder. */
  skipped: string[];
  /** The work tree's top folder. */
  top: string;
  /** What {@link writeCheckpointDiff} diffs from: HEAD, or the empty tree. */
  base: string;
  /** The checkpoint's `timeout` (`ms`) and when it runs out (`deadline`, ms since the epoch): {@link writeCheckpointDiff} keeps to it. */
  budget: { ms: number; deadline: number };
}

/** What the commit message names. */
export interface CheckpointRun {
  /** The run folder (left out of the checkpoint). */
  dir: string;
  name: string;
  id: string;
}

/** A `git` command's failure, its stderr summarized. */
class GitFailure extends Error {}

/** Runs git commands in one folder with one environment, all of them within one time budget. */
class Git {
  constructor(
    readonly cwd: string,
    readonly env: NodeJS.ProcessEnv,
    /** The budget's length (for messages) and its end (ms since the epoch). */
    readonly budget: { ms: number; deadline: number },
  ) {}

  /** stdout of `git args` (trimmed text); throws {@link GitFailure}; `undefined` when `quiet` and git exits 1. */
  run(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; quiet?: boolean; out?: number } = {}): string | undefined {
    const what = `git ${args[0] as string}`;
    const late = `${what} ran past the checkpoint's ${this.budget.ms} ms`;
    const left = this.budget.deadline - Date.now();
    if (left <= 0) throw new GitFailure(late);
    const r = spawnSync('git', args, {
      cwd: this.cwd,
      env: { ...this.env, ...opts.env },
      input: opts.input ?? '',
      timeout: left,
      maxBuffer: 256 << 20,
      stdio: ['pipe', opts.out ?? 'pipe', 'pipe'],
    });
    if (r.error !== undefined) {
      const code = (r.error as NodeJS.ErrnoException).code;
      throw new GitFailure(code === 'ENOENT' ? 'git is not on PATH' : code === 'ETIMEDOUT' ? late : `${what}: ${r.error.message}`);
    }
    if (r.status === 1 && opts.quiet === true) return undefined;
    if (r.status !== 0) throw new GitFailure(`${what}: ${summarize(r.stderr.toString('utf8')) || `exit ${r.status ?? r.signal}`}`);
    return r.stdout === null ? '' : r.stdout.toString('utf8').trim();
  }
}

/** git's stderr in one line: its first three lines that are not hints, at most 300 characters. */
function summarize(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('hint:'));
  const s = lines.slice(0, 3).join('; ');
  return s.length > 300 ? `${s.slice(0, 299)}…` : s;
}

/** The environment of every git command: no optional locks (a read never rewrites the user's index). */
export function baseEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GIT_OPTIONAL_LOCKS: '0' };
}

/** `p` relative to `top` with `/`, or undefined when it is not inside it (or is `top` itself). */
function inside(top: string, p: string): string | undefined {
  const rel = path.relative(top, p);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return rel.split(path.sep).join('/');
}

/** The real path of `p` (symbolic links resolved, so /tmp and /private/tmp compare equal), else `p`. */
export function real(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** True when the folder `rel` (`/`-separated, under `top`) lies in a nested repository: a folder above it, below `top`, holds `.git`. */
function inNestedRepo(top: string, rel: string): boolean {
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) if (fs.existsSync(path.join(top, ...parts.slice(0, i), '.git'))) return true;
  return false;
}

/**
 * What to leave out: the run folder, untracked rowlog run folders, untracked files over the cap.
 * Returns pathspecs (relative to the top folder) and the files skipped for their size.
 */
function exclusions(git: Git, top: string, runDir: string, maxFileBytes: number): { excluded: string[]; skipped: string[] } {
  const own = inside(top, real(runDir));
  // A run folder inside a submodule (or another nested repository) is not the top's to add: its
  // commit is all the top records, and a pathspec inside a submodule is an error to `git add`.
  const excluded = own === undefined || inNestedRepo(top, own) ? [] : [own];
  const skipped: string[] = [];
  const untracked = (git.run(['ls-files', '-z', '--others', '--exclude-standard']) as string).split('\0').filter((f) => f !== '');
  const files = new Set(untracked);
  const runs = new Set<string>();
  for (const f of untracked) {
    const dir = path.posix.dirname(f);
    if (dir !== '.' && path.posix.basename(f) === 'run.json' && files.has(`${dir}/status.json`)) runs.add(dir);
  }
  excluded.push(...[...runs].filter((d) => d !== own));
  const under = (f: string) => excluded.some((d) => f.startsWith(`${d}/`));
  for (const f of untracked) {
    if (maxFileBytes === Infinity || under(f)) continue;
    let size: number;
    try {
      const st = fs.lstatSync(path.join(top, f));
      size = st.isFile() ? st.size : 0;
    } catch {
      continue; // gone since the listing: add -A does not see it either
    }
    if (size > maxFileBytes) skipped.push(f);
  }
  return { excluded: [...excluded, ...skipped], skipped };
}

/**
 * Commits the working tree of the repository `cwd` is in onto {@link CHECKPOINT_REF} (see the
 * top of this file), or reuses the last checkpoint when nothing changed. Touches nothing of the
 * user's: index, HEAD, branches, stash. Throws an Error whose message says what failed (git's
 * stderr summarized): not a work tree, no git on PATH, a command that failed or timed out.
 */
export function gitCheckpoint(cwd: string, run: CheckpointRun, opts: GitCheckpointOptions = {}): GitCheckpoint {
  const { maxFileBytes, timeout } = gitCheckpointOption(opts) as Required<GitCheckpointOptions>;
  const budget = { ms: timeout, deadline: Date.now() + timeout };
  let git = new Git(cwd, baseEnv(), budget);
  const where = git.run(['rev-parse', '--show-toplevel', '--git-path', 'index']) as string;
  const [topLine = '', indexLine = ''] = where.split('\n');
  const top = real(topLine);
  git = new Git(top, git.env, budget);
  const index = path.resolve(top, indexLine);
  const head = git.run(['rev-parse', '-q', '--verify', 'HEAD^{commit}'], { quiet: true });
  const symbolic = git.run(['symbolic-ref', '-q', 'HEAD'], { quiet: true });
  if (symbolic === CHECKPOINT_REF) throw new GitFailure(`HEAD is on ${CHECKPOINT_REF}: a checkpoint would move the checked-out branch`);
  const { excluded, skipped } = exclusions(git, top, run.dir, maxFileBytes);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-git-'));
  let tree: string;
  try {
    const tmpIndex = path.join(tmp, 'index');
    if (fs.existsSync(index)) {
      fs.copyFileSync(index, tmpIndex); // seeded: only changed files are hashed
      // ...with the index's own mtime (1 ms earlier, never later): git tells a "racily clean" entry
      // (a file rewritten, same size, in the clock tick its entry was written) by the entry's mtime
      // not being older than the index file's, and compares content then. A copy stamped now would
      // make such a change look clean, and leave it out of the checkpoint.
      const { atime, mtimeMs } = fs.statSync(index);
      fs.utimesSync(tmpIndex, atime, new Date(mtimeMs - 1));
    }
    const env = { GIT_INDEX_FILE: tmpIndex };
    const specs = ['.', ...excluded.map((p) => `:(exclude,literal)${p}`)];
    git.run(['add', '-A', '--pathspec-from-file=-', '--pathspec-file-nul'], { env, input: `${specs.join('\0')}\0` });
    tree = git.run(['write-tree'], { env }) as string;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const branch = symbolic?.startsWith('refs/heads/') === true ? symbolic.slice('refs/heads/'.length) : undefined;
  const base = head ?? (git.run(['hash-object', '-t', 'tree', '--stdin']) as string);
  const made = (commit: string, reused: boolean): GitCheckpoint => ({
    commit,
    ...(head !== undefined ? { head } : {}),
    ...(branch !== undefined ? { branch } : {}),
    reused,
    skipped,
    top,
    base,
    budget,
  });
  const identity = author(git);
  for (let attempt = 0; ; attempt++) {
    const last = git.run(['rev-parse', '-q', '--verify', `${CHECKPOINT_REF}^{commit}`], { quiet: true });
    if (last !== undefined) {
      const [lastTree, ...parents] = (git.run(['log', '-1', '--format=%T %P', last]) as string).split(' ');
      // Unchanged: the same tree on the same HEAD (with no HEAD, the same tree).
      if (lastTree === tree && (head === undefined || parents[parents.length - 1] === head)) return made(last, true);
    }
    const message = `rowlog checkpoint: ${run.name}\n\nrun: ${run.id}\ndir: ${run.dir}\n`;
    const parents = [last, head].flatMap((p) => (p === undefined ? [] : ['-p', p]));
    const commit = git.run(['commit-tree', tree, ...parents, '-F', '-'], { input: message, env: identity }) as string;
    try {
      git.run(['update-ref', '-m', `rowlog checkpoint: ${run.name}`, CHECKPOINT_REF, commit, last ?? '']);
      return made(commit, false);
    } catch (err) {
      if (attempt > 0) throw err; // a concurrent run moved the branch twice running: give up
    }
  }
}

/** The environment that gives a commit an identity when the repository configures none. */
function author(git: Git): NodeJS.ProcessEnv {
  const configured = git.run(['config', '--get-regexp', '^user\\.(name|email)$'], { quiet: true }) ?? '';
  const has = (key: string) => configured.split('\n').some((l) => l.startsWith(`user.${key} `));
  const env: NodeJS.ProcessEnv = {};
  for (const who of ['AUTHOR', 'COMMITTER']) {
    if (!has('name') && process.env[`GIT_${who}_NAME`] === undefined) env[`GIT_${who}_NAME`] = FALLBACK.name;
    if (!has('email') && process.env[`GIT_${who}_EMAIL`] === undefined) env[`GIT_${who}_EMAIL`] = FALLBACK.email;
  }
  return env;
}

/**
 * Writes `git diff --binary <HEAD or the empty tree> <checkpoint>` to `file`, streamed from git into
 * a temp file and renamed into place (lib/io/atomic.ts): `git apply` takes it. Within what is
 * left of the checkpoint's `timeout` (`cp.budget`).
 */
export function writeCheckpointDiff(cp: GitCheckpoint, file: string): void {
  const tmp = atomicTmpPath(file);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      new Git(cp.top, baseEnv(), cp.budget).run(['diff-tree', '-r', '-p', '--binary', '--no-color', '--no-ext-diff', '--no-textconv', cp.base, cp.commit], { out: fd });
    } finally {
      fs.closeSync(fd);
    }
    renameOver(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
