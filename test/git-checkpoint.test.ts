/**
 * The git checkpoint (lib/run/git-checkpoint.ts, docs/DESIGN.md §4) on real repositories made with
 * `git init` in temp folders: what the checkpoint holds (staged, modified, deleted, untracked;
 * not ignored files, not the run folder, not untracked files over the cap), that the user's
 * repository is left as it was (`git status`, stash, HEAD, the index file's mtime, no lock), and
 * that `from_head.diff` applied to a clone at HEAD gives back the working files. The logger runs
 * in a child process whose cwd is the repository; the checkpoint's own cases call it directly.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { CHECKPOINT_REF, gitCheckpoint, gitCheckpointOption } from '../lib/run/git-checkpoint.js';
import { createLogger } from '../lib/log/logger.js';
import { scanRuns } from '../lib/run/layout.js';
import { ROOT, readJsonl, run, tmpdir } from './helpers.js';
import { needs } from './peers.js';

/** An environment without the caller's git identity or repository overrides. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_') && k !== 'EMAIL'));
  return { ...env, ...extra };
}

/** `git args` in `cwd`, which must succeed: its stdout. */
function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv()): string {
  const r = run('git', args, { cwd, env });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const write = (repo: string, file: string, text: string | Buffer) => {
  fs.mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
  fs.writeFileSync(path.join(repo, file), text);
};
const read = (repo: string, file: string) => fs.readFileSync(path.join(repo, file), 'utf8');
/** Commits everything with a fixed identity (the repository's own may be absent). */
const commitAll = (repo: string, msg: string) => {
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-q', '-m', msg], cleanEnv({ GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@b', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@b' }));
};

/**
 * A fresh repository on branch `main` with a local identity (unless `identity: false`), and a
 * first commit of `files` when given.
 */
function makeRepo(t: Test, { identity = true, files }: { identity?: boolean; files?: Record<string, string> } = {}): string {
  const dir = path.join(tmpdir(t, 'rowlog-git-'), 'repo');
  fs.mkdirSync(dir);
  git(dir, ['init', '-q', '-b', 'main']);
  if (identity) {
    git(dir, ['config', 'user.name', 'Test User']);
    git(dir, ['config', 'user.email', 'test@example.com']);
  }
  if (files !== undefined) {
    for (const [f, text] of Object.entries(files)) write(dir, f, text);
    commitAll(dir, 'init');
  }
  return dir;
}

/**
 * What the user sees of their repository: status, stash, HEAD, the index file, locks. Read with
 * GIT_OPTIONAL_LOCKS=0, or `git status` itself would rewrite a racily clean index.
 */
function userState(repo: string): Record<string, unknown> {
  const read = (args: string[]) => git(repo, args, cleanEnv({ GIT_OPTIONAL_LOCKS: '0' }));
  const index = path.resolve(repo, read(['rev-parse', '--git-path', 'index']).trim());
  const gitDir = path.resolve(repo, read(['rev-parse', '--git-dir']).trim());
  return {
    status: read(['status', '--porcelain=v2', '--branch']),
    stash: read(['stash', 'list']),
    head: run('git', ['rev-parse', '-q', '--verify', 'HEAD'], { cwd: repo }).stdout,
    symbolic: run('git', ['symbolic-ref', '-q', 'HEAD'], { cwd: repo }).stdout,
    branches: read(['branch', '--list']).split('\n').filter((b) => !b.includes('rowlog-checkpoints')).join('\n'),
    index: fs.existsSync(index) ? fs.statSync(index).mtimeMs : 'none',
    lock: fs.existsSync(`${index}.lock`) || fs.existsSync(path.join(gitDir, 'HEAD.lock')),
  };
}

/** The files of a commit's tree. */
const filesOf = (repo: string, commit: string) => git(repo, ['ls-tree', '-r', '--name-only', commit]).split('\n').filter((f) => f !== '');
const parentsOf = (repo: string, commit: string) => git(repo, ['log', '-1', '--format=%P', commit]).trim().split(' ').filter((p) => p !== '');
const refOf = (repo: string) => git(repo, ['rev-parse', CHECKPOINT_REF]).trim();

interface ChildResult {
  warnings: Array<{ code: string; message: string }>;
  dir: string;
  git?: { commit?: string; dirty?: boolean; branch?: string; checkpoint?: string };
  rows: number;
}

/** A child process in `cwd` that logs one row with `createLogger({dir, git, …})` and closes: what it saw. */
function runLogger(t: Test, cwd: string, dir: string, git: unknown = true, env: NodeJS.ProcessEnv = cleanEnv()): ChildResult {
  const script = path.join(tmpdir(t, 'rowlog-gitchild-'), 'child.mts');
  fs.writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(path.join(ROOT, 'lib/log/logger.js'))};
const warnings = [];
const log = createLogger({ dir: ${JSON.stringify(dir)}, git: ${JSON.stringify(git)}, console: false, tensorboard: false });
log.on('warning', (w) => warnings.push(w));
log.row('train', { loss: 0.5 });
await log.close();
console.log(JSON.stringify({ warnings, dir: log.dir, git: log.run.git, rows: log.table('train').length }));
`,
  );
  const r = spawnSync(process.execPath, [...process.execArgv, script], { cwd, env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as ChildResult;
}

const runJson = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { git?: ChildResult['git'] };

t.test('a run in a dirty repository: the checkpoint holds the working tree, the user keeps theirs', (t) => {
  if (!needs(t, 'git')) return t.end();
  const files = { 'staged.txt': 'v1\n', 'modified.txt': 'v1\n', 'deleted.txt': 'gone soon\n', 'stashed.txt': 'v1\n', '.gitignore': '*.log\n' };
  const repo = makeRepo(t, { files });
  write(repo, 'stashed.txt', 'in the stash\n');
  git(repo, ['stash', '-q']);
  write(repo, 'staged.txt', 'v2 staged\n');
  git(repo, ['add', 'staged.txt']);
  write(repo, 'modified.txt', 'v2 not staged\n');
  fs.rmSync(path.join(repo, 'deleted.txt'));
  write(repo, 'src/new.ts', 'export const x = 1;\n');
  write(repo, 'train.log', 'ignored\n');
  write(repo, 'weights.bin', Buffer.alloc((1 << 20) + 1, 7)); // over the 1 MiB cap
  write(repo, 'small.bin', Buffer.alloc(1 << 20, 7)); // at the cap: kept
  // an earlier run of rowlog, untracked: left out as the run folder itself is
  write(repo, 'runs/old/run.json', '{}\n');
  write(repo, 'runs/old/status.json', '{}\n');
  write(repo, 'runs/old/train.csv', 'step,loss\n');
  write(repo, 'runs/r1/notes.txt', 'the run folder, made before the run\n');
  const before = userState(repo);
  const head = git(repo, ['rev-parse', 'HEAD']).trim();

  const res = runLogger(t, repo, 'runs/r1');
  t.same(res.warnings, [], 'no warning');
  t.equal(res.rows, 1, 'the logger logged');
  t.same(userState(repo), before, 'status, stash, HEAD, branch and the index file are as they were; no lock left');
  const cp = refOf(repo);
  t.same(runJson(res.dir).git, { commit: head, dirty: true, branch: 'main', checkpoint: cp }, 'run.json records the checkpoint');
  t.same(parentsOf(repo, cp), [head], 'the first checkpoint has HEAD as its parent');
  t.equal(git(repo, ['log', '-1', '--format=%an <%ae>', cp]).trim(), 'Test User <test@example.com>', "the repository's identity");
  const msg = git(repo, ['log', '-1', '--format=%B', cp]);
  t.match(msg, /^rowlog checkpoint: r1\n/);
  t.match(msg, `dir: ${res.dir}`);
  t.same(filesOf(repo, cp), ['.gitignore', 'modified.txt', 'small.bin', 'src/new.ts', 'staged.txt', 'stashed.txt'], 'ignored, over the cap, deleted and the run folders are left out');
  for (const f of ['staged.txt', 'modified.txt', 'src/new.ts', 'stashed.txt']) t.equal(git(repo, ['show', `${cp}:${f}`]), read(repo, f), `${f} as in the working tree`);

  // from_head.diff applied to a clone at HEAD gives the working files back
  const diff = path.join(res.dir, 'from_head.diff');
  t.equal(run('git', ['apply', '--check', '-R', diff], { cwd: repo }).status, 0, 'the diff reverses cleanly on the working tree');
  const clone = path.join(path.dirname(repo), 'clone');
  git(path.dirname(repo), ['clone', '-q', repo, clone]);
  git(clone, ['apply', diff]);
  for (const f of ['staged.txt', 'modified.txt', 'src/new.ts']) t.equal(read(clone, f), read(repo, f), `${f} from HEAD + from_head.diff`);
  t.same(fs.readFileSync(path.join(clone, 'small.bin')), fs.readFileSync(path.join(repo, 'small.bin')), 'binary files too (--binary)');
  t.notOk(fs.existsSync(path.join(clone, 'deleted.txt')), 'the deletion too');

  // the scanner of rowlog ls and serve does not take from_head.diff for a table
  t.same(scanRuns(res.dir).map((r) => r.tables.map((tb) => tb.name)), [['train']], 'from_head.diff is not a table');
  t.end();
});

t.test('an unchanged tree reuses the checkpoint; a change or a new HEAD makes a new one on top', (t) => {
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t, { files: { 'a.py': 'print(1)\n' } });
  const runDir = path.join(path.dirname(repo), 'runs', 'r');
  const head1 = git(repo, ['rev-parse', 'HEAD']).trim();
  write(repo, 'a.py', 'print(2)\n');
  const run1 = { dir: runDir, name: 'r', id: 'id-1' };
  const first = gitCheckpoint(repo, run1);
  t.equal(first.reused, false);
  t.equal(first.head, head1);
  t.equal(first.branch, 'main');
  const before = userState(repo);
  const again = gitCheckpoint(repo, { ...run1, id: 'id-2' });
  t.same([again.commit, again.reused], [first.commit, true], 'same tree, same HEAD: the last checkpoint, no new commit');
  t.same(userState(repo), before);

  write(repo, 'a.py', 'print(3)\n');
  const second = gitCheckpoint(repo, run1);
  t.equal(second.reused, false);
  t.same(parentsOf(repo, second.commit), [first.commit, head1], 'first parent the previous checkpoint, then HEAD');
  t.equal(refOf(repo), second.commit);

  commitAll(repo, 'print 3'); // the same tree, but HEAD moved
  const head2 = git(repo, ['rev-parse', 'HEAD']).trim();
  const third = gitCheckpoint(repo, run1);
  t.equal(third.reused, false, 'a new HEAD is a new checkpoint');
  t.same(parentsOf(repo, third.commit), [second.commit, head2]);
  t.same(filesOf(repo, third.commit), ['a.py']);
  t.equal(git(repo, ['rev-parse', `${third.commit}^{tree}`]), git(repo, ['rev-parse', 'HEAD^{tree}']));
  t.end();
});

t.test('a racily clean file (changed in the tick the index was written, same size) is still committed as changed', (t) => {
  // Linux stamps files with a coarse clock (a few ms): a file rewritten with the same size in the
  // tick its index entry was written has the very stat the index recorded. git tells such a
  // "racily clean" entry by its mtime not being older than the index file's, and compares the
  // content then. Made deterministic here: the file's mtime set back, the index's set to it.
  // A copy of the index made later would hide the change (its own mtime is newer).
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t);
  // A ctime cannot be set back; git without trustctime (a setting of its own, too) compares mtimes only.
  git(repo, ['config', 'core.trustctime', 'false']);
  const file = path.join(repo, 'a.py');
  const stamp = Math.floor(Date.now() / 1000) - 60; // whole seconds: set exactly, to the nanosecond
  write(repo, 'a.py', 'print(1)\n');
  fs.utimesSync(file, stamp, stamp);
  commitAll(repo, 'init'); // the index records a.py with mtime `stamp`
  write(repo, 'a.py', 'print(2)\n');
  fs.utimesSync(file, stamp, stamp);
  const index = path.join(repo, '.git', 'index');
  fs.utimesSync(index, stamp, stamp);
  const cp = gitCheckpoint(repo, { dir: path.join(path.dirname(repo), 'runs', 'r'), name: 'r', id: 'id-1' });
  t.equal(git(repo, ['show', `${cp.commit}:a.py`]), 'print(2)\n', 'the checkpoint holds the working file');
  // (asked after: a `git status` that may write the index marks the entry, and would hide the race)
  t.match(git(repo, ['status', '--porcelain']), / M a\.py/, 'as git itself sees it');
  t.end();
});

t.test('a detached HEAD: checkpointed, still detached', (t) => {
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t, { files: { 'a.txt': '1\n' } });
  write(repo, 'a.txt', '2\n');
  commitAll(repo, 'two');
  git(repo, ['checkout', '-q', '--detach', 'HEAD~1']);
  write(repo, 'b.txt', 'new\n');
  const before = userState(repo);
  const cp = gitCheckpoint(repo, { dir: path.join(repo, 'runs', 'x'), name: 'x', id: 'i' });
  t.same(userState(repo), before);
  t.equal(cp.branch, undefined, 'no branch');
  t.equal(cp.head, git(repo, ['rev-parse', 'HEAD']).trim());
  t.same(filesOf(repo, cp.commit), ['a.txt', 'b.txt']);
  t.equal(git(repo, ['show', `${cp.commit}:a.txt`]), '1\n');
  t.end();
});

t.test('a linked worktree: its own working tree and index, the shared branch', (t) => {
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t, { files: { 'a.txt': 'main\n' } });
  const wt = path.join(path.dirname(repo), 'wt');
  git(repo, ['worktree', 'add', '-q', '-b', 'feature', wt]);
  write(wt, 'a.txt', 'feature work\n');
  write(wt, 'staged.txt', 'staged in wt\n');
  git(wt, ['add', 'staged.txt']);
  const before = [userState(repo), userState(wt)];
  const res = runLogger(t, path.join(wt), path.join(path.dirname(repo), 'runs', 'w'));
  t.same(res.warnings, []);
  t.same([userState(repo), userState(wt)], before, 'neither work tree changed');
  const cp = refOf(repo);
  t.equal(res.git?.checkpoint, cp, 'the branch lives in the shared repository');
  t.equal(res.git?.branch, 'feature');
  t.equal(git(repo, ['show', `${cp}:a.txt`]), 'feature work\n', "the worktree's files, not the main one's");
  t.equal(git(repo, ['show', `${cp}:staged.txt`]), 'staged in wt\n');
  t.end();
});

t.test('an empty repository (no commit yet): a root checkpoint, the diff from the empty tree', (t) => {
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t);
  write(repo, 'staged.txt', 'staged\n');
  git(repo, ['add', 'staged.txt']);
  write(repo, 'untracked.txt', 'untracked\n');
  const before = userState(repo);
  const res = runLogger(t, repo, path.join(path.dirname(repo), 'run'));
  t.same(res.warnings, []);
  t.same(userState(repo), before);
  const cp = refOf(repo);
  t.same(res.git, { branch: 'main', checkpoint: cp }, 'no commit to name, the checkpoint and the unborn branch');
  t.same(parentsOf(repo, cp), [], 'no parent');
  t.same(filesOf(repo, cp), ['staged.txt', 'untracked.txt']);
  const fresh = path.join(path.dirname(repo), 'fresh');
  fs.mkdirSync(fresh);
  git(fresh, ['init', '-q']);
  git(fresh, ['apply', path.join(res.dir, 'from_head.diff')]);
  t.equal(read(fresh, 'untracked.txt'), 'untracked\n', 'from_head.diff creates the files from nothing');
  // a second run: the same tree, no HEAD → reused
  const again = runLogger(t, repo, path.join(path.dirname(repo), 'run2'));
  t.equal(again.git?.checkpoint, cp);
  t.end();
});

t.test('a machine without any git identity: the fallback rowlog <rowlog@localhost>', (t) => {
  if (!needs(t, 'git')) return t.end();
  const home = tmpdir(t, 'rowlog-home-');
  const env = cleanEnv({ HOME: home, XDG_CONFIG_HOME: home, GIT_CONFIG_NOSYSTEM: '1' });
  const repo = makeRepo(t, { identity: false, files: { 'a.txt': 'a\n' } });
  write(repo, 'a.txt', 'b\n');
  t.not(run('git', ['config', 'user.email'], { cwd: repo, env }).status, 0, 'no user.email anywhere');
  const before = userState(repo);
  const res = runLogger(t, repo, path.join(path.dirname(repo), 'run'), true, env);
  t.same(res.warnings, []);
  t.same(userState(repo), before);
  const cp = res.git?.checkpoint as string;
  t.equal(git(repo, ['log', '-1', '--format=%an <%ae>|%cn <%ce>', cp]).trim(), 'rowlog <rowlog@localhost>|rowlog <rowlog@localhost>');
  t.end();
});

t.test('not a repository, or no git on PATH: one W_GIT_CHECKPOINT, and the run goes on', (t) => {
  if (!needs(t, 'git')) return t.end();
  const base = tmpdir(t, 'rowlog-norepo-');
  const cwd = path.join(base, 'plain');
  fs.mkdirSync(cwd);
  const env = cleanEnv({ GIT_CEILING_DIRECTORIES: base });
  for (const [what, e, re] of [
    ['not a repository', env, /no git checkpoint of the code: git rev-parse: fatal: not a git repository/],
    ['no git on PATH', { ...env, PATH: tmpdir(t, 'rowlog-nopath-') }, /no git checkpoint of the code: git is not on PATH/],
  ] as const) {
    const dir = path.join(base, `run-${what.replace(/ /g, '-')}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'from_head.diff'), 'an earlier run\n'); // stale: removed
    fs.writeFileSync(path.join(dir, 'from_head.diff.999999.tmp'), 'a writer killed mid-diff\n'); // a leftover: removed
    const res = runLogger(t, cwd, dir, { maxFileBytes: 10 }, e);
    t.equal(res.warnings.length, 1, `${what}: one warning`);
    t.equal(res.warnings[0]?.code, 'W_GIT_CHECKPOINT');
    t.match(res.warnings[0]?.message, re);
    t.equal(runJson(dir).git, undefined, 'no checkpoint in run.json');
    t.same(fs.readdirSync(dir).filter((f) => f.startsWith('from_head')), [], 'no from_head.diff, no leftover of one');
    t.same(readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => r.loss), [0.5], 'the row was logged');
  }
  t.end();
});

t.test('git failures are warnings with git’s words: a lost compare-and-swap is retried once, a slow git times out', (t) => {
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t, { files: { 'a.txt': 'a\n' } });
  write(repo, 'a.txt', 'changed\n');
  // a reference-transaction hook that refuses the first N updates, as a concurrent run moving the branch would
  const counter = path.join(path.dirname(repo), 'refusals');
  const hook = path.join(repo, '.git', 'hooks', 'reference-transaction');
  fs.writeFileSync(
    hook,
    `#!/bin/sh\n[ "$1" = prepared ] || exit 0\nn=$(cat ${JSON.stringify(counter)})\n[ "$n" -gt 0 ] || exit 0\necho $((n - 1)) > ${JSON.stringify(counter)}\necho "refused by the test" >&2\nexit 1\n`,
    { mode: 0o755 },
  );
  const runInfo = { dir: path.join(repo, 'run'), name: 'r', id: 'i' };
  fs.writeFileSync(counter, '1');
  const cp = gitCheckpoint(repo, runInfo);
  t.equal(refOf(repo), cp.commit, 'refused once: the second attempt landed');
  write(repo, 'a.txt', 'changed again\n');
  fs.writeFileSync(counter, '2');
  t.throws(() => gitCheckpoint(repo, runInfo), /git update-ref: .*refused by the test/, 'refused twice: given up, with git’s stderr');
  t.equal(refOf(repo), cp.commit, 'the branch did not move');
  fs.rmSync(hook);

  git(repo, ['symbolic-ref', 'HEAD', CHECKPOINT_REF]); // the user checked the branch out
  t.throws(() => gitCheckpoint(repo, runInfo), /HEAD is on refs\/heads\/rowlog-checkpoints/, 'never moves the checked-out branch');
  git(repo, ['symbolic-ref', 'HEAD', 'refs/heads/main']);

  // a clean filter that takes 5 s: `add -A` is stopped at the timeout, the user's index untouched
  write(repo, '.gitattributes', '*.slow filter=slow\n');
  git(repo, ['config', 'filter.slow.clean', 'sleep 5; cat']);
  write(repo, 'x.slow', 'slow\n');
  const before = userState(repo);
  t.throws(() => gitCheckpoint(repo, runInfo, { timeout: 2000 }), /ran past the checkpoint's 2000 ms/);
  t.same(userState(repo), before);
  t.end();
});

t.test('the git option', (t) => {
  t.equal(gitCheckpointOption(undefined), undefined);
  t.equal(gitCheckpointOption(false), undefined);
  t.same(gitCheckpointOption(true), { maxFileBytes: 1 << 20, timeout: 30_000 }, 'off unless asked; 1 MiB, 30 s');
  t.same(gitCheckpointOption({ maxFileBytes: Infinity }), { maxFileBytes: Infinity, timeout: 30_000 });
  const dir = path.join(tmpdir(t), 'never');
  for (const [git, type] of [
    ['yes', TypeError],
    [null, TypeError],
    [{ maxFileBytes: -1 }, RangeError],
    [{ maxFileBytes: 'big' }, TypeError],
    [{ timeout: 0 }, RangeError],
  ] as const) {
    t.throws(() => createLogger({ dir, git: git as never }), { constructor: type, code: 'ERR_INVALID_OPTION', message: /^git/ }, JSON.stringify(git));
  }
  t.throws(() => createLogger({ sinks: [], git: true }), { constructor: RangeError, code: 'ERR_INVALID_OPTION', message: /^git: needs a run folder/ });
  t.notOk(fs.existsSync(dir), 'nothing made by a logger that failed on its options');
  t.end();
});

t.test('the timeout bounds the whole checkpoint, not each of its git commands', (t) => {
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t, { files: { 'a.txt': 'a\n' } });
  // `add -A` and `update-ref` each take 2 s, under a 3 s timeout, together over it
  write(repo, '.gitattributes', '*.slow filter=slow\n');
  git(repo, ['config', 'filter.slow.clean', 'sleep 2; cat']);
  write(repo, 'x.slow', 'slow\n');
  fs.writeFileSync(path.join(repo, '.git', 'hooks', 'reference-transaction'), '#!/bin/sh\n[ "$1" = prepared ] && sleep 2\nexit 0\n', { mode: 0o755 });
  const before = userState(repo);
  t.throws(() => gitCheckpoint(repo, { dir: path.join(repo, 'run'), name: 'r', id: 'i' }, { timeout: 3000 }), /ran past the checkpoint's 3000 ms/);
  t.same(userState(repo), before, 'the repository as it was');
  t.equal(run('git', ['rev-parse', '-q', '--verify', CHECKPOINT_REF], { cwd: repo }).status, 1, 'no checkpoint branch');
  t.end();
});

t.test('from_head.diff that cannot be written: the checkpoint made is still recorded, one warning, the run goes on', (t) => {
  if (!needs(t, 'git')) return t.end();
  const repo = makeRepo(t, { files: { 'a.txt': 'a\n' } });
  write(repo, 'a.txt', 'changed\n');
  const dir = path.join(path.dirname(repo), 'runs', 'r');
  write(dir, 'from_head.diff/in-the-way.txt', 'a folder where the diff goes\n');
  const res = runLogger(t, repo, dir);
  t.equal(res.warnings.length, 1, 'one warning');
  t.equal(res.warnings[0]?.code, 'W_GIT_CHECKPOINT');
  t.match(res.warnings[0]?.message, /from_head\.diff could not be written/);
  t.equal(runJson(dir).git?.checkpoint, refOf(repo), 'run.json names the checkpoint that was made');
  t.equal(res.rows, 1, 'the logger logged');
  t.ok(fs.statSync(path.join(dir, 'from_head.diff')).isDirectory(), 'what was in the way is left alone');
  t.end();
});

t.test('a run folder inside a submodule: the superproject is checkpointed, its submodule as the commit it records', (t) => {
  if (!needs(t, 'git')) return t.end();
  const sub = makeRepo(t, { files: { 'lib.py': 'x = 1\n' } });
  const repo = makeRepo(t, { files: { 'train.py': 'print(1)\n' } });
  git(repo, ['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub, 'vendor/lib']);
  commitAll(repo, 'the submodule');
  write(repo, 'train.py', 'print(2)\n');
  const dir = path.join(repo, 'vendor', 'lib', 'runs', 'r1');
  write(dir, 'notes.txt', 'in the run folder\n');
  const before = userState(repo);
  const subBefore = userState(path.join(repo, 'vendor', 'lib'));
  const cp = gitCheckpoint(repo, { dir, name: 'r1', id: 'i' });
  t.same(filesOf(repo, cp.commit), ['.gitmodules', 'train.py', 'vendor/lib'], 'the superproject, the submodule as a commit');
  t.equal(git(repo, ['show', `${cp.commit}:train.py`]), 'print(2)\n');
  t.same(userState(repo), before, 'the superproject as it was');
  t.same(userState(path.join(repo, 'vendor', 'lib')), subBefore, 'the submodule as it was');
  t.end();
});
