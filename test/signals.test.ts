/**
 * How a run ends (issue 9 points 10 and 5): Ctrl-C, SIGTERM and SIGHUP flush every row, record
 * `interrupted` with the signal and end the process by that signal; a program with its own
 * handler keeps control; a script that ends without close() records `exited`; a run killed
 * before its first status save resumes its steps from the table files.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { startChild } from './child.js';
import { readJsonl, ROOT, run, tmpdir } from './helpers.js';

const holder = path.join(ROOT, 'test', 'fixtures', 'run-holder.mjs');
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function status(dir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as Record<string, unknown>;
}

/** The `$step` column of a CSV rowlog wrote (python3's csv module reads it). */
function csvSteps(file: string): number[] {
  const r = run('python3', ['-c', 'import csv,sys,json; print(json.dumps([int(r["$step"]) for r in csv.DictReader(open(sys.argv[1], newline=""))]))', file]);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as number[];
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  t.test(`${signal}: every row on disk, status 'interrupted', the process ends by ${signal}`, async (t) => {
    const dir = tmpdir(t);
    const child = startChild(holder, ['hold', '5000'], { DIR: dir });
    await child.line(/^ready$/);
    // more rows after the last flush: only the signal hook can write these
    child.proc.kill(signal);
    const end = await child.exited;
    t.equal(end.signal, signal, `ended by ${signal} (a shell sees 128 + n)`);
    t.match(status(dir), { $state: 'interrupted', $signal: signal, epochs_done: 1, $steps: { train: 4999, epoch: 0 } });
    t.same(readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => r.i), range(5000));
    t.same(csvSteps(path.join(dir, 'train.csv')), range(5000));
    t.equal(run('gzip', ['-t', path.join(dir, 'train.jsonl.gz')]).status, 0);
    t.notOk(fs.existsSync(path.join(dir, 'rowlog.lock')), 'the lock is given up');
  });
}

t.test('a program with its own SIGTERM handler keeps control; its exit records exited', async (t) => {
  const dir = tmpdir(t);
  const child = startChild(holder, ['own-handler', '100'], { DIR: dir });
  await child.line(/^ready$/);
  child.proc.kill('SIGTERM');
  await child.line(/^handled$/);
  const end = await child.exited;
  t.same(end, { code: 0, signal: null }, 'the program decided how to end');
  t.match(status(dir), { $state: 'exited', $exitCode: 0 });
  t.same(readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => r.i), range(101), 'the row logged in the handler too');
});

t.test("a script that ends without close() records 'exited' with its exit code", async (t) => {
  for (const [mode, code] of [['end', 0], ['exit3', 3]] as const) {
    const dir = tmpdir(t);
    const child = startChild(holder, [mode, '300'], { DIR: dir });
    t.equal((await child.exited).code, code);
    t.match(status(dir), { $state: 'exited', $exitCode: code, $steps: { train: 299 } }, mode);
    t.equal(readJsonl(path.join(dir, 'train.jsonl.gz')).length, 300, mode);
  }
});

t.test('kill -9 before any status.json: reopening continues the steps from the files', async (t) => {
  const dir = tmpdir(t);
  const child = startChild(holder, ['on-disk', '5'], { DIR: dir });
  await child.line(/^ready$/);
  child.proc.kill('SIGKILL');
  await child.exited;
  t.notOk(fs.existsSync(path.join(dir, 'status.json')), 'no status was ever saved');
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.row('train', { i: 5 });
  log.row('epoch', { n: 2 });
  await log.close();
  t.same(readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => r.$step), range(6), 'gz: steps 0..5, none repeated');
  t.same(csvSteps(path.join(dir, 'train.csv')), range(6), 'csv: steps 0..5, none repeated');
  t.same(readJsonl(path.join(dir, 'epoch.jsonl.gz')).map((r) => r.$step), [0, 1]);
});

t.test('steps come from the newest of status.json and the files', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  for (let i = 0; i < 10; i++) log.row('a/nested', { i });
  log.row('b', { x: 1 }, { step: 1000 });
  await log.close();
  // status.json behind the files (a crash after later flushes), and ahead of them for another table
  const s = status(dir);
  fs.writeFileSync(path.join(dir, 'status.json'), JSON.stringify({ ...s, $steps: { 'a/nested': 3, b: 1000, c: 41 } }));
  const again = createLogger({ dir, console: false, exitHooks: false });
  again.row('a/nested', { i: 10 });
  again.row('b', { x: 2 });
  again.row('c', { y: 1 });
  await again.close();
  t.same(readJsonl(path.join(dir, 'a', 'nested.jsonl.gz')).map((r) => r.$step), range(11));
  t.same(readJsonl(path.join(dir, 'b.jsonl.gz')).map((r) => r.$step), [1000, 1001]);
  t.same(readJsonl(path.join(dir, 'c.jsonl.gz')).map((r) => r.$step), [42]);
});
