/**
 * One writer per run folder (issue 9 point 1): a second logger on a folder another live logger
 * holds gets ERR_RUN_LOCKED naming the holder before it touches any file; a lock left by a dead
 * process of this host is taken over with a warning; a failed createLogger leaves nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { isRowlogError } from '../lib/core/errors.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { startChild } from './child.js';
import { readJsonl, ROOT, run, tmpdir } from './helpers.js';
import { needs } from './peers.js';

const holder = path.join(ROOT, 'test', 'fixtures', 'run-holder.mjs');

/** Every file under `dir` with its bytes, to show nothing was touched. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = `${fs.statSync(p).mtimeMs} ${fs.readFileSync(p).toString('base64')}`;
  }
  return out;
}

t.test('two loggers in one process: the second gets ERR_RUN_LOCKED and touches nothing', async (t) => {
  const dir = tmpdir(t);
  const first = createLogger({ dir, console: false, exitHooks: false });
  for (let i = 0; i < 100; i++) first.row('train', { i });
  await first.flush();
  const before = snapshot(dir);
  t.ok(before['rowlog.lock'], 'the folder holds rowlog.lock');
  t.match(JSON.parse(fs.readFileSync(path.join(dir, 'rowlog.lock'), 'utf8')), { pid: process.pid, host: os.hostname(), startTime: String });
  t.throws(() => createLogger({ dir, console: false, exitHooks: false }), {
    name: 'RowlogError',
    code: 'ERR_RUN_LOCKED',
    message: new RegExp(`in use by another logger of this process \\(pid ${process.pid} on ${os.hostname()}`),
  });
  t.same(snapshot(dir), before, 'not a byte of the folder changed');
  for (let i = 100; i < 200; i++) first.row('train', { i });
  await first.close();
  t.notOk(fs.existsSync(path.join(dir, 'rowlog.lock')), 'close gives the lock up');
  const again = createLogger({ dir, console: false, exitHooks: false });
  again.row('train', { i: 200 });
  await again.close();
  const rows = readJsonl(path.join(dir, 'train.jsonl.gz'));
  t.same(rows.map((r) => r.i), Array.from({ length: 201 }, (_, i) => i), 'every row once, in order');
  t.same(rows.map((r) => r.$step), Array.from({ length: 201 }, (_, i) => i));
  t.equal(run('gzip', ['-t', path.join(dir, 'train.jsonl.gz')]).status, 0);
});

t.test('a second process on a held folder is refused with the holder named; the first keeps every row', async (t) => {
  const dir = tmpdir(t);
  const a = startChild(holder, ['hold', '1000'], { DIR: dir });
  await a.line(/^ready$/);
  const before = snapshot(dir);
  const b = startChild(holder, ['hold', '1000'], { DIR: dir });
  const refused = await b.line(/^ERR_RUN_LOCKED/);
  t.match(refused, new RegExp(`pid ${a.proc.pid} on ${os.hostname()}`), 'names the holder');
  t.equal((await b.exited).code, 3);
  t.same(snapshot(dir), before, 'the second process touched nothing');
  let err: unknown;
  try {
    createLogger({ dir, console: false, exitHooks: false });
  } catch (e) {
    err = e;
  }
  t.ok(isRowlogError(err) && err.code === 'ERR_RUN_LOCKED' && /a live process/.test(err.message), 'this process is refused too');
  a.proc.stdin?.end();
  await a.line(/^closed$/);
  t.equal((await a.exited).code, 0);
  t.equal(readJsonl(path.join(dir, 'train.jsonl.gz')).length, 1000);
  if (needs(t, 'bgzip', 'bgzip -t')) t.equal(run('bgzip', ['-t', path.join(dir, 'train.jsonl.gz')]).status ?? 0, 0);
});

t.test('two processes started together on a new folder: one writes, the other is refused', async (t) => {
  for (let trial = 0; trial < 5; trial++) {
    const dir = path.join(tmpdir(t), 'run');
    const kids = [startChild(holder, ['hold', '2000'], { DIR: dir }), startChild(holder, ['hold', '2000'], { DIR: dir })];
    // both have opened (or failed to) before either lets go
    await Promise.all(kids.map((k) => k.line(/^(ready|ERR_)/)));
    for (const k of kids) k.proc.stdin?.end();
    const ends = await Promise.all(kids.map((k) => k.exited));
    const codes = ends.map((e) => e.code).sort();
    t.same(codes, [0, 3], `trial ${trial}: one wrote, one was refused`);
    const rows = readJsonl(path.join(dir, 'train.jsonl.gz'));
    t.same(rows.map((r) => r.$step), Array.from({ length: 2000 }, (_, i) => i), `trial ${trial}: 2000 rows, each once`);
    t.equal(run('gzip', ['-t', path.join(dir, 'train.jsonl.gz')]).status, 0);
    const csv = fs.readFileSync(path.join(dir, 'train.csv'), 'utf8').trim().split('\n');
    t.equal(csv.length, 2001, `trial ${trial}: the CSV holds a header and 2000 rows`);
  }
});

t.test('a lock left by a killed process is taken over with a warning', async (t) => {
  const dir = tmpdir(t);
  const a = startChild(holder, ['hold', '10'], { DIR: dir });
  await a.line(/^ready$/);
  const pid = a.proc.pid;
  a.proc.kill('SIGKILL');
  await a.exited;
  t.ok(fs.existsSync(path.join(dir, 'rowlog.lock')), 'SIGKILL leaves the lock behind');
  const warnings: RowlogWarning[] = [];
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.on('warning', (w: RowlogWarning) => warnings.push(w));
  await new Promise((r) => setImmediate(r));
  t.match(warnings, [{ code: 'W_STALE_LOCK', message: new RegExp(`left by pid ${pid} on ${os.hostname()}, .*no longer running`) }]);
  t.equal(JSON.parse(fs.readFileSync(path.join(dir, 'rowlog.lock'), 'utf8')).pid, process.pid, 'the lock is ours now');
  log.row('train', { i: 10 });
  await log.close();
  t.same(readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => r.$step), Array.from({ length: 11 }, (_, i) => i), 'steps continue');
  // Now a stale lock of a dead pid, seen with a listener: through a child that prints warnings.
  fs.writeFileSync(path.join(dir, 'rowlog.lock'), JSON.stringify({ pid, host: os.hostname(), startTime: '2026-01-01T00:00:00.000Z' }));
  const b = startChild(holder, ['end', '5'], { DIR: dir });
  t.equal((await b.exited).code, 0, b.stderr());
  t.match(b.lines.join('\n'), new RegExp(`W_STALE_LOCK: took over the lock of .* left by pid ${pid} on ${os.hostname()}`));
  t.notOk(fs.existsSync(path.join(dir, 'rowlog.lock')), 'released at exit');
});

t.test("a lock from another host is never taken over; a lock that is not rowlog's is replaced with a warning", async (t) => {
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'rowlog.lock'), JSON.stringify({ pid: 1, host: 'gpu-node-7', startTime: '2026-12-01T00:00:00.000Z' }));
  t.throws(() => createLogger({ dir, console: false, exitHooks: false }), {
    code: 'ERR_RUN_LOCKED',
    message: /a process on another host \(pid 1 on gpu-node-7/,
  });
  t.same(fs.readdirSync(dir), ['rowlog.lock'], 'nothing else was created');
  fs.writeFileSync(path.join(dir, 'rowlog.lock'), 'garbage');
  const c = startChild(holder, ['end', '1'], { DIR: dir });
  t.equal((await c.exited).code, 0);
  t.match(c.lines.join('\n'), /W_STALE_LOCK: replaced .*rowlog\.lock, which was not a rowlog lock/);
});

t.test('a createLogger that fails on its options creates nothing', async (t) => {
  const root = tmpdir(t);
  const dir = path.join(root, 'new', 'run');
  t.throws(() => createLogger({ dir, maxQueuedBytes: -1 }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => createLogger({ dir, sinks: [{ sink: 5 as never }] }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => createLogger({ dir, console: { intervalMs: -1 } }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => createLogger({ dir, level: 'LOUD' }), /LOUD/);
  t.notOk(fs.existsSync(path.join(root, 'new')), 'no folder, no run.json, no lock');
});

t.test('four processes racing for a stale lock: exactly one takes it over', async (t) => {
  for (let trial = 0; trial < 5; trial++) {
    const dir = path.join(tmpdir(t), 'run');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'rowlog.lock'), JSON.stringify({ pid: 2 ** 22 + 7, host: os.hostname(), startTime: '2026-01-01T00:00:00.000Z' }));
    const kids = Array.from({ length: 4 }, () => startChild(holder, ['hold', '500'], { DIR: dir }));
    await Promise.all(kids.map((k) => k.line(/^(ready|ERR_)/)));
    for (const k of kids) k.proc.stdin?.end();
    const codes = (await Promise.all(kids.map((k) => k.exited))).map((e) => e.code).sort();
    t.same(codes, [0, 3, 3, 3], `trial ${trial}: one writer, three refused`);
    t.equal(kids.filter((k) => k.lines.some((l) => /W_STALE_LOCK/.test(l))).length, 1, `trial ${trial}: one take-over warned`);
    t.same(readJsonl(path.join(dir, 'train.jsonl.gz')).map((r) => r.$step), Array.from({ length: 500 }, (_, i) => i));
    t.same(fs.readdirSync(dir).filter((f) => f.startsWith('rowlog.lock')), [], `trial ${trial}: no lock files left`);
  }
});
