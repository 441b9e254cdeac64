/**
 * Small holes of the run folder (issue 9 point 11): leftovers of a process that died mid-write
 * are removed on reopen, a full disk leaves no temp file, params() after close() throws like
 * row(), and a step that would stop the auto-step is refused with a warning.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { jsonlSink } from '../sinks/jsonl.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { readJsonl, tmpdir, tmpfs } from './helpers.js';

t.test('reopening removes temp files a killed process left', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.params({ lr: 0.1 });
  await log.close();
  fs.writeFileSync(path.join(dir, 'params.json.4242.tmp'), '');
  fs.writeFileSync(path.join(dir, 'status.json.99.tmp'), '{"half');
  fs.mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'artifacts', 'model.json.77.tmp'), 'x');
  fs.writeFileSync(path.join(dir, 'notes.7.tmp'), 'the user’s own file');
  // a new table file whose first chunk was written but not yet renamed into place
  const first = '{"$step":0,"$time":1,"$level":20,"i":0}\n';
  fs.mkdirSync(path.join(dir, 'a'));
  fs.writeFileSync(path.join(dir, 'a', 'b.jsonl.31337.new.tmp'), first);
  fs.writeFileSync(path.join(dir, 'params.json.31337.new.tmp'), 'x');
  const again = createLogger({ dir, console: false, exitHooks: false, sinks: [jsonlSink({ dir })] });
  again.row('a/b', { i: 1 });
  await again.close();
  const left = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.tmp'));
  t.same(left, ['notes.7.tmp'], "rowlog's leftovers are gone, other files stay");
  t.same(readJsonl(path.join(dir, 'a', 'b.jsonl')).map((r) => [r.$step, r.i]), [[0, 0], [1, 1]], 'the unrenamed first chunk was adopted; steps continue');
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'params.json'), 'utf8')), { lr: 0.1 });
});

t.test('a full disk leaves no 0-byte params.json.<pid>.tmp', async (t) => {
  const disk = tmpfs(t, '64k');
  if (disk === undefined) return;
  const dir = disk.mnt;
  const log = createLogger({ dir, console: false, exitHooks: false });
  t.throws(() => log.params({ blob: 'x'.repeat(200_000) }), { code: 'ENOSPC' });
  t.same(
    fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp file left',
  );
  log.params({ lr: 1 });
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'params.json'), 'utf8')), { lr: 1 }, 'params still work once there is room');
  await log.close();
});

t.test('params() and artifact() after close() throw ERR_SINK_CLOSED and change nothing', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.params({ lr: 0.1 });
  await log.close();
  t.throws(() => log.params({ lr: 0.2 }), { code: 'ERR_SINK_CLOSED', message: /log\.params\(\): the logger is closed/ });
  t.throws(() => log.artifact('m.txt', 'x'), { code: 'ERR_SINK_CLOSED' });
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'params.json'), 'utf8')), { lr: 0.1 });
  t.notOk(fs.existsSync(path.join(dir, 'artifacts')));
});

t.test('a step that is not a safe integer warns W_BAD_META and the row gets the next step', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  const warnings: RowlogWarning[] = [];
  log.on('warning', (w: RowlogWarning) => warnings.push(w));
  log.row('t', { i: 0 });
  log.row('t', { i: 1 }, { step: 1e300 });
  log.row('t', { i: 2 }, { step: 2.5 });
  log.row('t', { i: 3 });
  log.writeRow({ $table: 't', $step: 2 ** 60, i: 4 });
  log.row('t', { i: 5 }, { step: 10 });
  log.row('t', { i: 6 });
  log.write({ table: 't', level: 20, step: NaN, time: NaN, data: { i: 7 } }); // an Entry's "no step" (collect): no warning
  await log.close();
  t.same(readJsonl(path.join(dir, 't.jsonl.gz')).map((r) => [r.i, r.$step]), [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 10], [6, 11], [7, 12]]);
  t.match(warnings, [
    { code: 'W_BAD_META', table: 't', message: /^step: must be a safe integer \(got 1e\+300\); the row got the next step/ },
    { code: 'W_BAD_META', table: 't', message: /^\$step: must be a safe integer \(got 1152921504606847000\)/ },
  ]);
  t.equal(warnings.length, 2, 'once per table and key');
});

t.test('an unrenamed first chunk is adopted only as far as it is whole', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, console: false, exitHooks: false });
  for (let i = 0; i < 3; i++) log.row('whole', { i });
  await log.close();
  const member = fs.readFileSync(path.join(dir, 'whole.jsonl.gz')).subarray(0, -28); // without the EOF member
  fs.rmSync(path.join(dir, 'whole.jsonl.gz'));
  fs.rmSync(path.join(dir, 'whole.csv'));
  // one whole member and half of another; half a member alone; a CSV cut inside its first row
  fs.writeFileSync(path.join(dir, 'whole.jsonl.gz.999.new.tmp'), Buffer.concat([member, member.subarray(0, 20)]));
  fs.writeFileSync(path.join(dir, 'half.jsonl.gz.999.new.tmp'), member.subarray(0, member.length - 5));
  fs.writeFileSync(path.join(dir, 'half.csv.999.new.tmp'), '$step,$time,$level,i\n0,1,20');
  const again = createLogger({ dir, console: false, exitHooks: false });
  again.row('half', { i: 0 });
  again.row('whole', { i: 3 });
  await again.close();
  t.equal(spawnSync('gzip', ['-t', path.join(dir, 'whole.jsonl.gz')]).status, 0, 'the adopted file is a valid gzip');
  t.same(readJsonl(path.join(dir, 'whole.jsonl.gz')).map((r) => r.i), [0, 1, 2, 3], 'its whole member kept, the torn one cut');
  t.same(readJsonl(path.join(dir, 'half.jsonl.gz')).map((r) => r.i), [0], 'half a member was not adopted');
  t.equal(fs.readFileSync(path.join(dir, 'half.csv'), 'utf8').split('\n')[1]?.split(',').at(-1), '0', 'the CSV kept its header, not the cut row');
  t.same((fs.readdirSync(dir) as string[]).filter((f) => f.endsWith('.tmp')), []);
});

t.test('a bad socket option leaves no folder and no lock behind', async (t) => {
  const dir = path.join(tmpdir(t), 'run');
  t.throws(() => createLogger({ dir, console: false, exitHooks: false, socket: { port: -5 } }), { code: 'ERR_INVALID_OPTION' });
  t.notOk(fs.existsSync(dir), 'nothing created');
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.row('t', { x: 1 });
  await log.close();
  t.ok(fs.existsSync(path.join(dir, 't.jsonl.gz')), 'the folder can be opened right after');
});

t.test("reopening a run leaves a run of its own inside it alone: its sidecars, temp files and torn rows are its writer's", async (t) => {
  const dir = tmpdir(t);
  const sub = path.join(dir, 'rank0');
  fs.mkdirSync(sub, { recursive: true });
  const files: Record<string, string> = {
    'status.json': '{"$state":"running"}',
    't.csv': '$step,$time,$level,a\n0,1,20,1\n1,2,20', // a torn last row, as its live writer may leave it mid-write
    't.csv.columns': '{"entries":[]}',
    't.csv.1.tmp': 'a rewrite in progress',
    'params.json.123.tmp': '{}',
  };
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(sub, name), text);
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.row('t', { a: 1 });
  await log.close();
  for (const [name, text] of Object.entries(files)) t.equal(fs.readFileSync(path.join(sub, name), 'utf8'), text, `rank0/${name} untouched`);
});
