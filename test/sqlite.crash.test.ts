/**
 * Crash safety of sqliteSink (docs/DESIGN.md §4): a writer SIGKILLed while it logs leaves a
 * database that opens, passes `PRAGMA integrity_check`, and holds exactly the rows of whole
 * batches, steps 0..n-1 with no gap and no duplicate, n at least what a reader saw committed
 * before the kill (WAL + synchronous=NORMAL: a commit is in the WAL file, which the next open replays).
 * Read by the sqlite3 command, which rowlog did not write.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ROOT, run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { startChild } from './child.js';
import { until } from './wait.js';
import { sqliteSink } from '../sinks/sqlite.js';

const fixture = path.join(ROOT, 'test', 'fixtures', 'sqlite-crash-writer.mjs');
const KILLS = 6;

t.test(`SIGKILL after K committed flushes, ${KILLS} times: integrity ok, steps 0..n-1, whole batches`, async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const sqlite3 = peer('sqlite3') as string;
  const dir = tmpdir(t);
  for (let k = 1; k <= KILLS; k++) {
    const db = path.join(dir, `run${k}.sqlite`);
    const child = startChild(fixture, [db]);
    // The event: the K-th `committed` line; the writer is already logging the next batches.
    let committed = 0;
    for (let seen = 0; seen < k; seen++) committed = Number((await child.line(new RegExp(`^committed ${2500 * (seen + 1)}$`))).split(' ')[1]);
    // Then the event of a reader: the sqlite3 command sees batches committed after that flush,
    // while the writer goes on (so the kill lands mid-run, likely inside a transaction).
    let seen = committed;
    await until(() => {
      seen = Number(run(sqlite3, [db, 'SELECT count(*) FROM t']).stdout.trim());
      return seen > committed;
    }, `sqlite3 to see rows past ${committed}`, 10_000, 1);
    child.proc.kill('SIGKILL');
    const end = await child.exited;
    t.equal(end.signal, 'SIGKILL', `kill ${k}: the writer was killed`);
    t.ok(fs.existsSync(`${db}-wal`), 'the WAL file is left, as after any crash');
    const r = run(sqlite3, [db, 'PRAGMA integrity_check', 'SELECT count(*), count(DISTINCT "$step"), min("$step"), max("$step"), sum("$step" != i) FROM t']);
    t.equal(r.status, 0, r.stderr);
    const [integrity, counts] = r.stdout.trim().split('\n');
    t.equal(integrity, 'ok', `kill ${k}: PRAGMA integrity_check`);
    const [n, distinct, min, max, wrong] = (counts ?? '').split('|').map(Number) as [number, number, number, number, number];
    t.ok(n >= seen, `kill ${k}: ${n} rows, at least the ${seen} a reader saw committed before the kill (flushed: ${committed})`);
    t.same([distinct, min, max, wrong], [n, 0, n - 1, 0], `kill ${k}: steps 0..${n - 1}, no gap, no duplicate, each row its own`);
    t.equal(n % 250, 0, `kill ${k}: whole batches only (one transaction each)`);
  }

  // A killed database takes more rows: a new sink appends after the replayed WAL.
  const db = path.join(dir, 'run1.sqlite');
  const before = Number(run(sqlite3, [db, 'SELECT count(*) FROM t']).stdout.trim());
  const sink = sqliteSink({ path: db });
  sink.write({ table: 't', level: 20, step: before, time: 0, data: { i: before, v: 0, s: 'after' } });
  await new Promise<void>((resolve) => sink.end(resolve));
  const r = run(sqlite3, [db, 'PRAGMA integrity_check', `SELECT count(*), max("$step"), (SELECT s FROM t WHERE "$step" = ${before}) FROM t`]);
  t.same(r.stdout.trim().split('\n'), ['ok', `${before + 1}|${before}|after`], 'reopened after the kill: appended');
});

t.test('process.exit() without close(): the exit hook waits for the worker to commit every row', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const db = path.join(tmpdir(t), 'exit.sqlite');
  const w = run(process.execPath, [fixture, db, 'exit']);
  t.equal(w.status, 0, w.stderr);
  const r = run(peer('sqlite3') as string, [db, 'PRAGMA integrity_check', 'SELECT count(*), count(DISTINCT "$step"), max("$step") FROM t']);
  t.same(r.stdout.trim().split('\n'), ['ok', '10000|10000|9999'], 'all 10,000 rows');
});

t.test('node --input-type=module -e: the worker starts (the option is not passed on to it), every row committed at exit', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const db = path.join(tmpdir(t), 'eval.sqlite');
  const script = `import { createLogger } from ${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'index.js'))};
import { sqliteSink } from ${JSON.stringify(path.join(ROOT, 'dist', 'sinks', 'sqlite.js'))};
const log = createLogger({ sinks: [sqliteSink({ path: process.argv[1] })] });
for (let i = 0; i < 10; i++) log.row('t', { i });
process.exit(0);`;
  const w = run(process.execPath, ['--input-type=module', '-e', script, db]);
  t.equal(w.status, 0, w.stderr);
  t.equal(w.stderr, '', 'no warning');
  t.equal(run(peer('sqlite3') as string, [db, 'SELECT count(*) FROM t']).stdout.trim(), '10');
});
