// lib/io/worker-channel.ts: jobs run in order on the worker; flush() and waitSync() wait for
// them (waitSync with the event loop blocked, as on process exit); failures and a dying worker
// are reported and never leave anyone waiting.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { serveJobs, WorkerChannel } from '../lib/io/worker-channel.js';
import { ROOT, tmpdir } from './helpers.js';
import { until } from './wait.js';

import type { Job } from './fixtures/channel-worker.js';
const script = new URL('./fixtures/channel-worker.ts', import.meta.url);

/**
 * Runs `body` as a child process's module (the channel imported as `WorkerChannel`, the fixture's
 * URL as `script`), with Node `flags` before the test's loader flags: {status, stdout, stderr}.
 */
function runChild(dir: string, body: string, flags: string[] = []) {
  const child = path.join(dir, 'child.mts');
  fs.writeFileSync(
    child,
    `import { WorkerChannel } from ${JSON.stringify(path.join(ROOT, 'lib/io/worker-channel.js'))};
const script = new URL(${JSON.stringify(script.href)});
${body}`,
  );
  return spawnSync(process.execPath, [...flags, ...process.execArgv, child], { encoding: 'utf8', timeout: 120_000 });
}

t.test('jobs run in order; flush waits for them; buffers move to the worker', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'out');
  const errors: string[] = [];
  const ch = new WorkerChannel<Job>(script, { init: { hello: 'init' }, onError: (e) => errors.push(e.message) });
  const buf = new ArrayBuffer(16);
  for (let i = 0; i < 5; i++) ch.post({ file, text: `${i},`, spinMs: i === 0 ? 50 : 0 });
  ch.post({ file, text: 'async' });
  ch.post({ file, text: 'b', bytes: buf }, [buf]);
  t.equal(buf.byteLength, 0, 'the buffer was transferred, not copied');
  t.ok(ch.pending > 0, 'jobs are pending before the worker ran them');
  await ch.flush();
  t.equal(ch.pending, 0);
  t.equal(fs.readFileSync(file, 'utf8'), '0,1,2,3,4,asyncb:16');
  await ch.flush(); // nothing pending: resolves at once
  await ch.close();
  t.same(errors, []);
  t.equal(ch.dead, true);
  ch.post({ file, text: 'late' }); // after close: ignored, not thrown
  t.equal(ch.pending, 0);
});

t.test('a job that throws is reported with its code and counted finished; the next job runs', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'out');
  const errors: Array<{ message: string; code: string | undefined; job: number | undefined }> = [];
  const ch = new WorkerChannel<Job>(script, {
    init: { hello: 'init' },
    onError: (e, job) => errors.push({ message: e.message, code: e.code, job }),
  });
  ch.post({ file, text: 'a' });
  ch.post({ file, text: 'x', fail: 'disk says no' });
  ch.post({ file, text: 'c' });
  await ch.flush();
  t.same(errors, [{ message: 'disk says no', code: 'E_TEST', job: 1 }]);
  t.equal(fs.readFileSync(file, 'utf8'), 'ac');
  ch.closeSync();
});

t.test('a worker that dies is reported, and nothing waits for it', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'out');
  const errors: Array<number | undefined> = [];
  const ch = new WorkerChannel<Job>(script, { init: { hello: 'init' }, onError: (_e, job) => errors.push(job) });
  ch.post({ file, text: 'a' });
  ch.post({ file, text: '', die: 3 });
  ch.post({ file, text: 'never' });
  const flushed = ch.flush();
  t.equal(ch.waitSync(60_000), true, 'waitSync returns once the worker is gone');
  await flushed;
  t.equal(ch.dead, true);
  t.equal(ch.pending, 0);
  await until(() => errors.length > 0, 'the exit reported');
  t.same(errors, [undefined], 'reported once, as the worker (no job)');
  t.equal(fs.readFileSync(file, 'utf8'), 'a');
});

t.test('waitSync bounds its wait', async (t) => {
  const dir = tmpdir(t);
  const ch = new WorkerChannel<Job>(script, { init: { hello: 'init' }, onError: () => {} });
  ch.post({ file: path.join(dir, 'out'), text: 'a', spinMs: 3000 });
  t.equal(ch.waitSync(1), false, 'not finished within 1 ms');
  t.equal(ch.waitSync(60_000), true);
  await ch.close();
});

t.test('on process exit, waitSync lets the worker finish what was posted (the event loop is gone)', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'out');
  const r = runChild(
    dir,
    `const ch = new WorkerChannel(script, { init: { hello: 'init' }, onError: (e) => { console.error(e.message); } });
process.on('exit', () => { ch.post({ file: ${JSON.stringify(file)}, text: 'at-exit', spinMs: 300 }); process.stdout.write(String(ch.waitSync())); });
ch.post({ file: ${JSON.stringify(file)}, text: 'before,', spinMs: 300 });
process.exit(0);
`,
  );
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'true');
  t.equal(fs.readFileSync(file, 'utf8'), 'before,at-exit', 'both jobs landed although the process was exiting');
});

t.test('a worker that fails to start is reported; serveJobs refuses the main thread', async (t) => {
  const errors: string[] = [];
  const ch = new WorkerChannel<Job>(new URL('data:text/javascript,throw new Error("boom at load")'), {
    onError: (e, job) => errors.push(`${job}:${e.message}`),
  });
  ch.post({ file: '/nonexistent', text: 'x' });
  await ch.flush();
  t.same(errors, ['undefined:boom at load']);
  t.equal(ch.dead, true);
  t.throws(() => serveJobs(() => {}), /serveJobs runs in a worker thread/);
});

t.test('on exit, a worker whose script never loaded is not waited for its whole timeout', async (t) => {
  const dir = tmpdir(t);
  const r = runChild(
    dir,
    `const ch = new WorkerChannel(new URL('data:text/javascript,throw new Error("boom at load")'), { onError: () => {} });
process.on('exit', () => { const t0 = performance.now(); const ok = ch.waitSync(120_000); process.stdout.write(JSON.stringify({ ok, ms: performance.now() - t0 })); });
ch.post({});
process.exit(0);
`,
  );
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; ms: number };
  t.equal(out.ok, false, 'it says the job was not done');
  t.ok(out.ms < 60_000, `gave up after ${Math.round(out.ms)} ms, not the 120 s asked`);
});

t.test('a process started with flags workers refuse (--max-old-space-size, --expose-gc) still runs its jobs', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'out');
  const r = runChild(
    dir,
    `const ch = new WorkerChannel(script, { init: { hello: 'init' }, onError: (e) => { console.error(e.message); process.exitCode = 1; } });
ch.post({ file: ${JSON.stringify(file)}, text: 'ran' });
await ch.close();
`,
    ['--max-old-space-size=512', '--expose-gc'],
  );
  t.equal(r.status, 0, r.stderr);
  t.equal(fs.readFileSync(file, 'utf8'), 'ran');
});
