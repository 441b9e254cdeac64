/**
 * The logger keeps run.json, params.json and status.json in a SQLite sink's tables too
 * (lib/log/logger.ts; sinks/sqlite.ts): read back with the sqlite3 command, after close(), after
 * a reopen of the folder, and after process.exit() without close().
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { sqliteSink } from '../sinks/sqlite.js';
import { ROOT, run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const sql = (db: string, ...queries: string[]) => run(peer('sqlite3') as string, ['-readonly', db, ...queries]).stdout.trim().split('\n');

t.test('runs, params and status follow run.json, params.json and status.json', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const dir = tmpdir(t);
  const ids: string[] = [];
  for (let k = 0; k < 2; k++) {
    const log = createLogger({ dir, sinks: [sqliteSink({ dir })] });
    ids.push(log.run?.id as string);
    log.params({ [`lr${k}`]: 0.1 * (k + 1) });
    log.status.epoch = k;
    for (let i = 0; i < 10; i++) log.row('main', { x: i });
    await log.close();
  }
  const db = path.join(dir, 'run.sqlite');
  t.same(sql(db, 'SELECT id, appended_to, resumed_from, dir FROM runs ORDER BY rowid'), [`${ids[0]}|||${dir}`, `${ids[1]}|${ids[0]}||${dir}`], 'runs: one row per run.json (a reopened folder: appended_to)');
  t.same(sql(db, 'SELECT key, value FROM params ORDER BY key'), ['lr0|0.1', 'lr1|0.2'], 'params: merged, as params.json');
  t.same(sql(db, `SELECT key, value FROM status WHERE key != '$updated' ORDER BY key`), ['$state|closed', '$steps|{"main":19}', 'epoch|1'], 'status: as status.json at close');
});

t.test('a resumed run: resumed_from is its parent, appended_to its earlier opening; an older database gets the column', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  const parent = createLogger({ dir: a, sinks: [] });
  await parent.close();
  // b/run.sqlite as an older rowlog made it: runs without appended_to.
  fs.mkdirSync(b);
  const db = path.join(b, 'run.sqlite');
  run(peer('sqlite3') as string, [db, 'CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT, dir TEXT, started TEXT, resumed_from TEXT, json TEXT)']);
  const ids: string[] = [];
  for (let k = 0; k < 2; k++) {
    const log = createLogger({ dir: b, resumeFrom: a, sinks: [sqliteSink({ dir: b })] });
    ids.push(log.run?.id as string);
    log.row('main', { x: k });
    await log.close();
  }
  t.same(sql(db, 'SELECT id, resumed_from, appended_to FROM runs ORDER BY rowid'), [`${ids[0]}|${parent.run?.id}|`, `${ids[1]}|${parent.run?.id}|${ids[0]}`]);
});

t.test('process.exit() without close(): status says exited, with the code', async (t) => {
  if (!needs(t, ['better-sqlite3', 'sqlite3'])) return;
  const dir = tmpdir(t);
  const script = path.join(dir, 'exit.mjs');
  fs.writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'index.js'))};
import { sqliteSink } from ${JSON.stringify(path.join(ROOT, 'dist', 'sinks', 'sqlite.js'))};
const dir = process.argv[2];
const log = createLogger({ dir, sinks: [sqliteSink({ dir })] });
for (let i = 0; i < 10; i++) log.row('main', { x: i });
process.exit(3);
`,
  );
  const r = run(process.execPath, [script, dir]);
  t.equal(r.status, 3, r.stderr);
  const db = path.join(dir, 'run.sqlite');
  t.same(sql(db, 'SELECT count(*) FROM main', `SELECT group_concat(key || '=' || value, ' ') FROM (SELECT * FROM status WHERE key IN ('$state', '$exitCode') ORDER BY key)`), ['10', '$exitCode=3 $state=exited']);
});
