/** Rows reach the disk when the process ends without close(): beforeExit, process.exit(), a crash. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { readJsonl, ROOT, run, tmpdir } from './helpers.js';

const fixture = path.join(ROOT, 'test', 'fixtures', 'exit-flush.mjs');

function child(mode: string, dir: string, n = 1000) {
  return run(process.execPath, [fixture, mode, String(n)], { env: { ...process.env, DIR: dir, ROWLOG_DIR: dir } });
}

function steps(file: string): number[] {
  return readJsonl(file).map((r) => r.$step as number);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

t.test('logRow() with no close: the default logger flushes on beforeExit into ROWLOG_DIR', async (t) => {
  const dir = tmpdir(t);
  const r = child('default', dir, 5000);
  t.equal(r.status, 0, r.stderr);
  const rows = readJsonl(path.join(dir, 'train.jsonl.gz'));
  t.same(rows.map((r) => r.i), range(5000));
  t.same(Object.keys(rows[0] ?? {}), ['$step', '$time', '$level', 'i', 'w.max', 'w.mean', 'w.min', 'w.std']);
  t.equal(rows[0]?.$level, 20, 'logRow defaults to INFO');
  t.ok(fs.existsSync(path.join(dir, 'run.json')));
});

t.test('process.exit() mid-run: the exit hook writes every row synchronously', async (t) => {
  const dir = tmpdir(t);
  const r = child('exit', dir, 20_000);
  t.equal(r.status, 0, r.stderr);
  t.same(steps(path.join(dir, 'train.jsonl')), range(20_000));
  const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as Record<string, unknown>;
  t.equal(status.epochs_done, 3, 'status saved at exit');
  t.same(status.$steps, { train: 19_999 });
});

t.test('an uncaught exception in the training loop still leaves every row on disk', async (t) => {
  const dir = tmpdir(t);
  const r = child('throw', dir, 3000);
  t.equal(r.status, 1);
  t.match(r.stderr, /boom: the training loop crashed/);
  t.same(steps(path.join(dir, 'train.jsonl')), range(3000));
});

t.test('with no warning listener, a too-low row prints one line to stderr, once per table', async (t) => {
  const dir = tmpdir(t);
  const r = child('warn', dir, 50);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, "rowlog warning W_LOW_LEVEL: Log to table 'noisy' was too low level for any sink\n");
  t.notOk(fs.existsSync(path.join(dir, 'noisy.jsonl')));
  t.equal(readJsonl(path.join(dir, 'kept.jsonl')).length, 1);
});
