/**
 * Resume with ancestry (issue 13 §1; lib/run/run-dir.ts, lib/run/ancestry.ts, readLog's
 * `ancestry`): a new folder that links to its parent, starts from its status and steps, and reads
 * back as one run, the child's rows winning where steps repeat; broken chains warn.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { PassThrough } from 'node:stream';
import { runTail } from '../lib/cli/tail.js';
import { formatListing, listRuns } from '../lib/cli/ls.js';
import { ancestorRows, readLog } from '../lib/read/read-log.js';
import { ancestorFiles, ancestryOf, runOfFile } from '../lib/run/ancestry.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { readJsonl, tmpdir } from './helpers.js';
import { runCli } from './cli.js';

const quiet = { console: false, exitHooks: false, tensorboard: false } as const;

/** A run of `n` rows of table `train` (and `n/2` of `eval`) from step `from` (the logger's own count when undefined). */
async function runOf(dir: string, n: number, extra: { resumeFrom?: string; from?: number; tag?: string; status?: Record<string, unknown> } = {}) {
  const log = createLogger({ dir, ...quiet, ...(extra.resumeFrom !== undefined ? { resumeFrom: extra.resumeFrom } : {}) });
  const start = { status: { ...log.status }, run: log.run };
  for (let i = 0; i < n; i++) {
    const step = extra.from === undefined ? undefined : extra.from + i;
    log.row('train', { loss: 1 / (i + 1), who: extra.tag ?? path.basename(dir) }, step === undefined ? {} : { step });
    if (i % 2 === 0) log.row('eval', { acc: i, who: extra.tag ?? path.basename(dir) }, step === undefined ? {} : { step });
  }
  Object.assign(log.status, extra.status ?? {});
  await log.close();
  return start;
}

async function rows(file: string, warnings?: RowlogWarning[]) {
  const out: Array<Record<string, unknown>> = [];
  for await (const r of readLog(file, { ancestry: true, onWarning: (w) => warnings?.push(w) })) out.push(r);
  return out;
}

t.test('resumeFrom: a new folder linked to its parent, with its status and steps', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'exp1');
  const b = path.join(root, 'exp1-resumed');
  await runOf(a, 10, { status: { epochs_done: 3, best: 0.5 } });
  const parent = JSON.parse(fs.readFileSync(path.join(a, 'run.json'), 'utf8')) as { id: string };
  const start = await runOf(b, 5, { resumeFrom: a });
  t.same(start.status, { epochs_done: 3, best: 0.5 }, "status starts as the parent's (user keys only)");
  t.same(start.run?.resumedFrom, { id: parent.id, dir: '../exp1', absoluteDir: a }, 'run.json links to the parent: relative, and absolute as the fallback');
  t.notOk('appendedTo' in (start.run ?? {}), 'a new folder appends to nothing');
  t.same(readJsonl(path.join(b, 'train.jsonl.gz')).map((r) => r.$step), [10, 11, 12, 13, 14], "steps continue from the parent's last, per table");
  t.same(readJsonl(path.join(b, 'eval.jsonl.gz')).map((r) => r.$step), [5, 6, 7], 'eval: its own last step');
  const status = JSON.parse(fs.readFileSync(path.join(b, 'status.json'), 'utf8')) as Record<string, unknown>;
  t.equal(status.epochs_done, 3);

  // Reopening the resumed child appends to it, keeping its link; its own steps go on.
  const again = await runOf(b, 2, { resumeFrom: a });
  t.same(again.run?.resumedFrom, start.run?.resumedFrom, 'the link is kept');
  t.equal(again.run?.appendedTo, start.run?.id, 'the earlier opening is appendedTo');
  const plain = await runOf(b, 1);
  t.same(plain.run?.resumedFrom, start.run?.resumedFrom, 'reopened without resumeFrom: the link is carried over');
  t.same(readJsonl(path.join(b, 'train.jsonl.gz')).map((r) => r.$step), [10, 11, 12, 13, 14, 15, 16, 17]);

  const got = await rows(path.join(b, 'train.jsonl.gz'));
  t.same(got.map((r) => r.$step), Array.from({ length: 18 }, (_, i) => i), 'readLog with ancestry: steps 0..17 once, the parent first');
  t.same(ancestryOf(b), { ancestors: [{ dir: a, id: parent.id, name: 'exp1' }], warnings: [] });
  t.same(ancestryOf(a), { ancestors: [], warnings: [] }, 'a run that was not resumed has no ancestors');
});

t.test('resumeFrom errors: a parent that is no run, dir itself, a dir holding another run, no dir', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  await runOf(a, 2);
  const fresh = path.join(root, 'fresh');
  t.throws(() => createLogger({ dir: fresh, ...quiet, resumeFrom: path.join(root, 'nope') }), { code: 'ERR_RESUME_FROM', message: /does not exist; nothing was created/ });
  t.notOk(fs.existsSync(fresh), 'nothing was created');
  fs.mkdirSync(path.join(root, 'empty'));
  t.throws(() => createLogger({ dir: fresh, ...quiet, resumeFrom: path.join(root, 'empty') }), { code: 'ERR_RESUME_FROM', message: /holds no readable run.json/ });
  fs.mkdirSync(path.join(root, 'torn'));
  fs.writeFileSync(path.join(root, 'torn', 'run.json'), '{"id": ');
  t.throws(() => createLogger({ dir: fresh, ...quiet, resumeFrom: path.join(root, 'torn') }), { code: 'ERR_RESUME_FROM' });
  t.notOk(fs.existsSync(fresh));
  t.throws(() => createLogger({ dir: a, ...quiet, resumeFrom: a }), { code: 'ERR_RESUME_FROM', message: /is dir itself/ });
  const other = path.join(root, 'other');
  await runOf(other, 1);
  const before = fs.readFileSync(path.join(other, 'run.json'), 'utf8');
  t.throws(() => createLogger({ dir: other, ...quiet, resumeFrom: a }), { code: 'ERR_RESUME_FROM', message: /already holds a run that was not resumed from/ });
  t.equal(fs.readFileSync(path.join(other, 'run.json'), 'utf8'), before, "the other run's run.json is untouched");
  t.notOk(fs.existsSync(path.join(other, 'rowlog.lock')), 'and its lock given back');
  t.throws(() => createLogger({ ...quiet, sinks: [], resumeFrom: a }), { code: 'ERR_INVALID_OPTION', name: 'RangeError', message: /^resumeFrom: needs a run folder/ });
  t.throws(() => createLogger({ dir: fresh, ...quiet, resumeFrom: 3 as never }), { code: 'ERR_INVALID_OPTION', name: 'TypeError', message: /^resumeFrom: must be a non-empty string/ });
  t.throws(() => createLogger({ dir: fresh, ...quiet, resumeFrom: '' }), { code: 'ERR_INVALID_OPTION', message: /an empty string/ });
  t.notOk(fs.existsSync(fresh));
});

t.test('without dir: the default new folder; a parent reopened since still lets its child be reopened', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  await runOf(a, 3);
  const before = process.env.ROWLOG_DIR;
  process.env.ROWLOG_DIR = path.join(root, 'default');
  try {
    const log = createLogger({ ...quiet, resumeFrom: a });
    t.equal(log.dir, path.join(root, 'default'));
    t.equal(log.run?.resumedFrom?.dir, '../a');
    log.row('train', { loss: 1 });
    await log.close();
  } finally {
    if (before === undefined) delete process.env.ROWLOG_DIR;
    else process.env.ROWLOG_DIR = before;
  }
  const b = path.join(root, 'b');
  await runOf(b, 1, { resumeFrom: a });
  await runOf(a, 1); // the parent reopened: a new id
  await runOf(a, 1); // twice: its appendedTo is no longer the child's link either
  const again = await runOf(b, 1, { resumeFrom: a });
  const aId = (JSON.parse(fs.readFileSync(path.join(a, 'run.json'), 'utf8')) as { id: string }).id;
  t.equal(again.run?.resumedFrom?.id, aId, 'the same folder: reopened, the link renewed');
  t.same((await rows(path.join(b, 'train.jsonl.gz'))).map((r) => r.$step), [0, 1, 2, 3, 4], "a's rows below b's first step, then b's");
});

t.test('a resumed run reopened before its first status save still starts from its parent', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  await runOf(a, 4, { status: { epoch: 7 } });
  await runOf(b, 0, { resumeFrom: a });
  fs.rmSync(path.join(b, 'status.json'));
  const again = await runOf(b, 1, { resumeFrom: a });
  t.same(again.status, { epoch: 7 });
  t.same(readJsonl(path.join(b, 'train.jsonl.gz')).map((r) => r.$step), [4]);
});

t.test('three generations, overlaps: each ancestor gives only the steps before every later run starts', async (t) => {
  const root = tmpdir(t);
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(root, n)) as [string, string, string];
  await runOf(a, 10); // 0..9
  await runOf(b, 10, { resumeFrom: a, from: 6 }); // re-does 6..9, on to 15
  await runOf(c, 3, { resumeFrom: b, from: 4 }); // goes back further than b started: 4..6
  const got = await rows(path.join(c, 'train.jsonl.gz'));
  t.same(
    got.map((r) => [r.$step, r.who]),
    [[0, 'a'], [1, 'a'], [2, 'a'], [3, 'a'], [4, 'c'], [5, 'c'], [6, 'c']],
    "the child's rows win; no step twice",
  );
  const viaB = await rows(path.join(b, 'train.jsonl.gz'));
  t.same(viaB.map((r) => `${String(r.$step)}${String(r.who)}`).join(' '), '0a 1a 2a 3a 4a 5a 6b 7b 8b 9b 10b 11b 12b 13b 14b 15b');
  // CSV reads the same chain (the ancestors' CSV files).
  const csv = await rows(path.join(c, 'train.csv'));
  t.same(csv.map((r) => r.$step), [0, 1, 2, 3, 4, 5, 6]);
  // A table the child has not written yet: every ancestor row (here via the eval table of a
  // child folder that only holds the parent's chain).
  t.same(ancestorFiles(path.join(c, 'eval.jsonl.gz')).files, [path.join(a, 'eval.jsonl.gz'), path.join(b, 'eval.jsonl.gz')]);
  t.same(runOfFile(path.join(c, 'x', 'y', 'z.jsonl')), { dir: c, rel: 'x/y/z.jsonl' }, 'a nested table lies in the run above its folder');
  t.equal(runOfFile(path.join('/', 'nonexistent-rowlog', 'z.jsonl')), undefined);
});

t.test('the tree moved, or only the absolute path left: links still found', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'runs', 'a');
  const b = path.join(root, 'runs', 'b');
  await runOf(a, 3);
  await runOf(b, 2, { resumeFrom: a });
  const moved = path.join(root, 'moved');
  fs.renameSync(path.join(root, 'runs'), moved);
  const w: RowlogWarning[] = [];
  t.same((await rows(path.join(moved, 'b', 'train.jsonl.gz'), w)).map((r) => r.$step), [0, 1, 2, 3, 4], 'the relative link leads to the moved parent');
  t.same(w, []);
  // The child alone elsewhere: the absolute path (the parent put back where it was).
  fs.mkdirSync(path.join(root, 'runs'));
  fs.renameSync(path.join(moved, 'a'), a);
  t.same((await rows(path.join(moved, 'b', 'train.jsonl.gz'), w)).map((r) => r.$step), [0, 1, 2, 3, 4], 'absoluteDir is the fallback');
  t.same(w, []);
});

t.test('both places hold a run, only absoluteDir the linked one: the reopened child and the readers take the same parent', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'runs', 'a');
  const b = path.join(root, 'runs', 'b');
  await runOf(a, 3); // train 0..2
  await runOf(b, 0, { resumeFrom: a }); // no rows of its own yet
  fs.rmSync(path.join(b, 'status.json')); // killed before its first status save: it starts from its parent's
  // The child moved; its relative link (../a) now finds another run, the absolute one the real parent.
  const moved = path.join(root, 'moved');
  fs.mkdirSync(moved);
  fs.renameSync(b, path.join(moved, 'b'));
  await runOf(path.join(moved, 'a'), 10, { tag: 'other' });
  await runOf(path.join(moved, 'b'), 2);
  t.same(readJsonl(path.join(moved, 'b', 'train.jsonl.gz')).map((r) => r.$step), [3, 4], "reopened, it goes on from the matching parent's steps");
  const w: RowlogWarning[] = [];
  const got = await rows(path.join(moved, 'b', 'train.jsonl.gz'), w);
  t.same(got.map((r) => [r.$step, r.who]), [[0, 'a'], [1, 'a'], [2, 'a'], [3, 'b'], [4, 'b']], "readLog's ancestry shows that parent's rows");
  t.same(w, []);
});

t.test('missing, cyclic and reopened ancestors: a warning, the child still read', async (t) => {
  const root = tmpdir(t);
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(root, n)) as [string, string, string];
  await runOf(a, 3);
  await runOf(b, 3, { resumeFrom: a });
  await runOf(c, 3, { resumeFrom: b });
  const file = path.join(c, 'train.jsonl.gz');

  // The parent reopened since (a new id, the old one in appendedTo): followed, no warning.
  await runOf(a, 0);
  let w: RowlogWarning[] = [];
  t.same((await rows(file, w)).map((r) => r.$step), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  t.same(w, []);
  // Twice: another id; followed with a warning.
  await runOf(a, 0);
  w = [];
  t.same((await rows(file, w)).map((r) => r.$step), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  t.match(w, [{ code: 'W_ANCESTRY', message: /holds run .* now \(reopened since\?\), followed anyway/ }]);

  // A cycle: a's run.json edited by hand to point at c.
  const aInfo = JSON.parse(fs.readFileSync(path.join(a, 'run.json'), 'utf8')) as Record<string, unknown>;
  const cInfo = JSON.parse(fs.readFileSync(path.join(c, 'run.json'), 'utf8')) as { id: string };
  fs.writeFileSync(path.join(a, 'run.json'), JSON.stringify({ ...aInfo, resumedFrom: { id: cInfo.id, dir: '../c', absoluteDir: c } }));
  w = [];
  t.same((await rows(file, w)).map((r) => r.$step), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'the chain up to the cycle');
  t.match(w, [{ code: 'W_ANCESTRY', message: /followed anyway/ }, { code: 'W_ANCESTRY', message: /already on its chain \(a cycle\)/ }]);
  t.equal(ancestryOf(c, 1).ancestors.length, 1, 'a depth cap');
  t.match(ancestryOf(c, 1).warnings, [{ code: 'W_ANCESTRY', message: /more than 1 ancestors/ }]);

  // A missing parent: b gone.
  fs.rmSync(b, { recursive: true });
  w = [];
  t.same((await rows(file, w)).map((r) => r.$step), [6, 7, 8], "only the child's rows");
  t.match(w, [{ code: 'W_ANCESTRY', message: /was resumed from run .*, which is not at .*; its rows are left out/ }]);

  // An older rowlog's string resumedFrom is no link; nothing to warn.
  fs.writeFileSync(path.join(c, 'run.json'), JSON.stringify({ ...cInfo, resumedFrom: 'some-old-id' }));
  w = [];
  t.same((await rows(file, w)).map((r) => r.$step), [6, 7, 8]);
  t.same(w, []);
});

t.test('readLog ancestry: the default warning goes to stderr; a stream cannot have ancestry', async (t) => {
  const root = tmpdir(t);
  const b = path.join(root, 'b');
  await runOf(path.join(root, 'a'), 1);
  await runOf(b, 1, { resumeFrom: path.join(root, 'a') });
  fs.rmSync(path.join(root, 'a'), { recursive: true });
  const write = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    const got: unknown[] = [];
    for await (const r of readLog(path.join(b, 'train.jsonl.gz'), { ancestry: true })) got.push(r);
    t.equal(got.length, 1);
  } finally {
    process.stderr.write = write;
  }
  t.match(err, /^rowlog warning W_ANCESTRY: .*not at/);
  t.throws(() => readLog(fs.createReadStream(path.join(b, 'train.jsonl.gz')), { ancestry: true }), { code: 'ERR_INVALID_OPTION', message: /^ancestry: needs a path/ });
  t.throws(() => readLog(path.join(b, 'train.jsonl.gz'), { ancestry: 1 as never }), { code: 'ERR_INVALID_OPTION' });
  // A file in no run folder reads as itself.
  const loose = path.join(root, 'loose.jsonl');
  fs.writeFileSync(loose, '{"$step":0,"x":1}\n');
  const got: unknown[] = [];
  for await (const r of readLog(loose, { ancestry: true })) got.push(r);
  t.same(got, [{ $step: 0, x: 1 }]);
});

t.test('hand-made chains: bad lines of every file counted, a child without the table, links without a folder', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  fs.writeFileSync(path.join(a, 'run.json'), JSON.stringify({ id: 'A' }));
  fs.writeFileSync(path.join(a, 't.jsonl'), '{"$step":0,"x":NaN}\nnot json\n{"x":"no step"}\n{"$step":1}\n{"$step":2}\n');
  fs.writeFileSync(path.join(b, 'run.json'), JSON.stringify({ id: 'B', resumedFrom: { id: 'A', dir: '../a', absoluteDir: a } }));
  fs.writeFileSync(path.join(b, 't.jsonl'), '{"$step":2,"x":"b"}\n{oops\n');
  const reader = readLog(path.join(b, 't.jsonl'), { ancestry: true });
  const got: unknown[] = [];
  for await (const r of reader) got.push(r);
  t.same(got, [{ $step: 0, x: NaN }, { x: 'no step' }, { $step: 1 }, { $step: 2, x: 'b' }], 'a row without $step is kept; the child wins step 2');
  t.same(reader.badLines, [2, 2], 'bad lines of each file, numbered in their file');
  t.equal(reader.truncated, false);
  t.same(reader.damaged, []);

  // A child whose first row has no $step sets no bound; maxLineBytes reaches every file.
  fs.writeFileSync(path.join(b, 'v.jsonl'), '{"x":"first"}\n{"$step":0}\n');
  fs.writeFileSync(path.join(a, 'v.jsonl'), `{"$step":0,"big":"${'z'.repeat(2000)}"}\n{"$step":1}\n`);
  const v = readLog(path.join(b, 'v.jsonl'), { ancestry: true, maxLineBytes: 1000 });
  const vRows: unknown[] = [];
  for await (const r of v) vRows.push(r);
  t.same(vRows, [{ $step: 1 }, { x: 'first' }, { $step: 0 }], 'the long line skipped; no bound from a row without $step');
  t.same(v.badLines, [1]);

  // The child has no rows of a table yet (a trainer just resumed): every ancestor row.
  const rows: unknown[] = [];
  for await (const r of ancestorRows(path.join(b, 'u.jsonl'))) rows.push(r);
  t.same(rows, []);
  fs.writeFileSync(path.join(a, 'u.csv'), '$step,y\n0,1\n1,2\n');
  for await (const r of ancestorRows(path.join(b, 'u.jsonl'))) rows.push(r);
  t.same(rows, [{ $step: 0, y: 1 }, { $step: 1, y: 2 }], "the ancestor's CSV when it has no file of the same name");

  // A link naming no folder; a folder that does not exist.
  fs.writeFileSync(path.join(b, 'run.json'), JSON.stringify({ id: 'B', resumedFrom: { id: 'A' } }));
  t.match(ancestryOf(b).warnings, [{ code: 'W_ANCESTRY', message: /the link names no folder/ }]);
  t.same(ancestryOf(path.join(root, 'nope')), { ancestors: [], warnings: [] });
});

t.test('tail --ancestry and ls in process: the chain, the warnings on err', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  await runOf(a, 6);
  await runOf(b, 2, { resumeFrom: a });
  const file = path.join(b, 'train.jsonl.gz');
  const capture = () => {
    let text = '';
    const w = new PassThrough();
    w.on('data', (d: Buffer) => (text += d.toString()));
    return { w, text: () => text };
  };
  const out = capture();
  await runTail([file], { ancestry: true, lines: 4, out: out.w, err: out.w });
  t.same(out.text().trim().split('\n').map((l) => (JSON.parse(l) as { $step: number }).$step), [4, 5, 6, 7]);
  const none = capture();
  await runTail([file], { ancestry: true, lines: 0, out: none.w, err: none.w });
  t.equal(none.text(), '', '-n 0: nothing');

  const listed = await listRuns(root);
  t.same(listed.map((r) => r.resumedFrom), [undefined, [a]]);
  t.match(formatListing(listed, root), /^b\/ {2}\(.*, resumed from a\)$/m);

  fs.rmSync(a, { recursive: true });
  const err = capture();
  const rows = capture();
  await runTail([file], { ancestry: true, lines: 10, out: rows.w, err: err.w });
  t.equal(rows.text().trim().split('\n').length, 2, "the child's own rows");
  t.match(err.text(), /^rowlog: tail: .*train\.jsonl\.gz: W_ANCESTRY: .*not at/);
  const warned: RowlogWarning[] = [];
  t.same((await listRuns(root, (w) => warned.push(w))).map((r) => r.resumedFrom), [undefined]);
  t.match(warned, [{ code: 'W_ANCESTRY' }]);
});

t.test('a resumed run killed before its first status save, reopened without resumeFrom: status and steps still the parent’s', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  await runOf(a, 4, { status: { epoch: 7 } }); // train 0..3, eval 0, 1
  const child = createLogger({ dir: b, ...quiet, resumeFrom: a });
  child.row('train', { loss: 0 }); // step 4; no eval yet
  await child.close();
  // What a kill -9 before the first status save leaves: run.json and the table files, no status.json.
  fs.rmSync(path.join(b, 'status.json'));
  const log = createLogger({ dir: b, ...quiet });
  t.same(log.status, { epoch: 7 }, "the parent's status, as on the first opening");
  log.row('train', { loss: 0 });
  log.row('eval', { acc: 1 });
  await log.close();
  t.same(readJsonl(path.join(b, 'train.jsonl.gz')).map((r) => r.$step), [4, 5], 'its own table goes on from its own rows');
  t.same(readJsonl(path.join(b, 'eval.jsonl.gz')).map((r) => r.$step), [2], "a table only the parent had goes on from the parent's last step");
  t.same((await rows(path.join(b, 'eval.jsonl.gz'))).map((r) => r.$step), [0, 1, 2], "so the chain keeps the parent's eval rows");

  // The parent gone: reopened from its own status and files alone, the link kept.
  fs.rmSync(a, { recursive: true });
  const alone = await runOf(b, 1);
  t.same(alone.status, { epoch: 7 }, 'its own status.json now');
  t.same(alone.run?.resumedFrom?.absoluteDir, a);
  t.same(readJsonl(path.join(b, 'train.jsonl.gz')).map((r) => r.$step), [4, 5, 6]);
});

t.test('query --ancestry on a file in no run folder reads it as query does without (a JSON text over lines too)', async (t) => {
  const root = tmpdir(t);
  const pretty = path.join(root, 'pretty.json');
  fs.writeFileSync(pretty, '{\n  "a": 1\n}\n');
  const r = runCli(['query', '--ancestry', '-c', '.', pretty]);
  t.equal(r.stdout, '{"a":1}\n', r.stderr);
  t.equal(r.status, 0);
  t.equal(r.stderr, '');
});

t.test('tail --ancestry reads each ancestor from its end: the same rows as the whole chain, overlaps included', async (t) => {
  const root = tmpdir(t);
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(root, n)) as [string, string, string];
  await runOf(a, 300); // 0..299
  await runOf(b, 21, { resumeFrom: a, from: 150 }); // redoes 150..170: a's last 150 rows are past its cut
  await runOf(c, 6, { resumeFrom: b, from: 160 }); // 160..165
  const file = path.join(c, 'train.jsonl.gz');
  const chain = (await rows(file)).map((r) => `${String(r.$step)}${String(r.who)}`);
  t.equal(chain.length, 166);
  for (const n of [1, 6, 7, 16, 17, 100, 166, 500]) {
    let text = '';
    const out = new PassThrough();
    out.on('data', (d: Buffer) => (text += d.toString()));
    await runTail([file], { ancestry: true, lines: n, out, err: out });
    const got = text.trim().split('\n').map((l) => {
      const r = JSON.parse(l) as { $step: number; who: string };
      return `${r.$step}${r.who}`;
    });
    t.same(got, chain.slice(-n), `-n ${n}`);
  }
  // An ancestor with only its CSV file: read whole, the same rows.
  fs.rmSync(path.join(a, 'train.jsonl.gz'));
  let text = '';
  const out = new PassThrough();
  out.on('data', (d: Buffer) => (text += d.toString()));
  await runTail([file], { ancestry: true, lines: 20, out, err: out });
  t.same(text.trim().split('\n').map((l) => (JSON.parse(l) as { $step: number }).$step), Array.from({ length: 20 }, (_, i) => 146 + i), "a's CSV rows below its cut, then b's and c's");
});

t.test('ancestryOf checks its arguments as every option is checked (ERR_INVALID_OPTION naming it)', (t) => {
  t.throws(() => ancestryOf(undefined as unknown as string), { code: 'ERR_INVALID_OPTION', message: /^dir: must be a run folder/ });
  t.throws(() => ancestryOf(''), { code: 'ERR_INVALID_OPTION', message: /^dir: must be a non-empty string/ });
  t.throws(() => ancestryOf(42 as unknown as string), { code: 'ERR_INVALID_OPTION', message: /^dir: / });
  t.throws(() => ancestryOf('runs/x', -1), { code: 'ERR_INVALID_OPTION', message: /^maxDepth: / });
  t.same(ancestryOf(path.join(tmpdir(t), 'nothing-here')).ancestors, [], 'a folder that is no run: no ancestors, no throw');
  t.end();
});
