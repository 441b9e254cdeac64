/**
 * The ack rule under SIGKILL (issue 14 point 4, docs/DESIGN.md §4 "The ack rule"): a real
 * `rowlog collect --redis` process is killed at 5 random moments while producers write into Redis,
 * and started again each time; in the end each run folder holds every row exactly once, in order,
 * in both `main.jsonl.gz` (gzip -t, zcat) and `main.csv` (python3's csv where there is one).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { streamKey } from '../lib/format/redis-stream.js';
import { spawnCli } from './cli.js';
import { tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import type { RedisServer } from './redis.js';
import { checkRun, perfect, producers } from './redis-producer.js';
import { until } from './wait.js';

/** A stream's consumer group as `XINFO GROUPS` shows it: entries delivered, and pending. */
function group(server: RedisServer, stream: string): { read: number; pending: number } {
  const lines = server.cli('XINFO', 'GROUPS', stream).split('\n');
  const at = (k: string) => Number(lines[lines.indexOf(k) + 1]);
  return { read: at('entries-read'), pending: at('pending') };
}

/** Entries acked over `streams` (delivered and no longer pending); 0 before the groups exist. */
function acked(server: RedisServer, streams: string[]): number {
  let n = 0;
  for (const s of streams) {
    try {
      const g = group(server, s);
      if (Number.isFinite(g.read)) n += g.read - g.pending;
    } catch {
      // no stream or no group yet
    }
  }
  return n;
}

/** Collectors still running, SIGKILLed when a test ends early (their pipes would keep it waiting). */
const running = new Set<ChildProcessWithoutNullStreams>();
t.teardown(() => running.forEach((p) => p.kill('SIGKILL')));

/** `rowlog collect --redis` in the background, its stdout kept. */
function collector(server: RedisServer, dir: string): { proc: ChildProcessWithoutNullStreams; out: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const proc = spawnCli(['collect', '--redis', server.url, '--dir', dir, '--poll-ms', '100', '--lease-ms', '3000']);
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  running.add(proc);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
    }),
  );
  return { proc, out: () => out, exited };
}

t.test('rowlog collect --redis SIGKILLed at 5 random moments and restarted: every row exactly once in both files', async (t) => {
  if (!needs(t, ['redis-server', 'gzip', 'zcat'])) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const dir = path.join(tmpdir(t), 'runs');
  const start = producers(tmpdir(t));
  const N = 60_000;
  const names = ['a', 'b'];
  const streams = names.map((n) => streamKey('rowlog', n, 'main'));
  // ~10 s of rows at 6,000 rows/s per trainer (createLogger({redis}): a block per batch)
  const kids = names.map((n) => start(server.url, n, N, { pace: 6000 }));
  let producing = kids.length;
  for (const k of kids) void k.exited.then(() => producing--);
  let output = '';
  for (let kill = 0; kill < 5; kill++) {
    const c = collector(server, dir);
    const before = acked(server, streams);
    // a random moment once it is writing: some entries acked since it started (or, on a machine so
    // slow that the trainers are done and nothing is left, once it is up), then 0–300 ms
    await until(() => acked(server, streams) > before || (producing === 0 && /reading redis/.test(c.out())), `collector ${kill} acking entries`, 20_000, 20);
    await new Promise((r) => setTimeout(r, Math.random() * 300));
    c.proc.kill('SIGKILL');
    t.equal((await c.exited).signal, 'SIGKILL', `collector ${kill} killed after ${acked(server, streams)} acked entries`);
    output += c.out();
  }
  for (const k of kids) t.equal((await k.exited).code, 0, `producer ok ${k.stderr()}`);
  const last = collector(server, dir);
  await until(() => streams.every((s) => group(server, s).pending === 0 && group(server, s).read === Number(server.cli('XLEN', s))), 'every entry read and acked', 30_000, 50);
  last.proc.kill('SIGTERM');
  t.equal((await last.exited).code, 0, 'the last collector stops cleanly on SIGTERM');
  output += last.out();
  t.match(last.out(), /rowlog collect: stopped; \d+ rows/);
  const replays = [...output.matchAll(/(\d+) pending entries written again, (\d+) rows the files held already left out/g)];
  t.comment(`replays: ${replays.length}, pending entries written again: ${replays.reduce((s, m) => s + Number(m[1]), 0)}, rows left out as already on disk: ${replays.reduce((s, m) => s + Number(m[2]), 0)}`);
  for (const n of names) t.same(checkRun(path.join(dir, n), N, peer('python3')), perfect(N), `run ${n}: every row once, in order, in both files`);
});

/** The pid holding run `name`'s lease (its holder is `<host>:<pid> <boot id>`), or undefined. */
function owner(server: RedisServer, name: string): number | undefined {
  const v = server.cli('GET', `rowlog:${name}:owner:rowlog-collect`).trim();
  const m = /:(\d+) /.exec(v);
  return m === null ? undefined : Number(m[1]);
}

t.test('two collectors of one group share the runs; one frozen (SIGSTOP), the other takes its runs over after the lease, the first gives them up when it wakes', async (t) => {
  if (!needs(t, ['redis-server', 'gzip', 'zcat'])) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const dir = path.join(tmpdir(t), 'runs');
  const start = producers(tmpdir(t));
  const a = collector(server, dir);
  const b = collector(server, dir);
  t.teardown(() => void [a, b].forEach((c) => c.proc.kill('SIGKILL')));
  await until(() => server.cli('HLEN', 'rowlog:collectors').trim() === '2', 'both collectors polling', 20_000);
  const N = 40_000;
  const names = ['t0', 't1', 't2', 't3'];
  const kids = names.map((n) => start(server.url, n, N, { pace: 4000 }));
  const pids = [a.proc.pid, b.proc.pid];
  await until(() => names.every((n) => pids.includes(owner(server, n))), 'every run held by one of them', 20_000).catch((err: Error) => {
    throw new Error(`${err.message}: owners ${names.map((n) => String(owner(server, n))).join(' ')} of ${pids.join(' ')}; runs ${server.cli('SMEMBERS', 'rowlog:runs')}`);
  });
  const held = names.map((n) => owner(server, n));
  t.same(held.filter((p) => p === a.proc.pid).length, 2, `each collector holds two runs (${held.join(' ')})`);
  // each run's folder is written by the collector holding its lease, and only by it
  await until(() => names.every((n) => fs.existsSync(path.join(dir, n, 'run.json'))), 'four run folders');
  for (const [i, n] of names.entries()) t.equal((JSON.parse(fs.readFileSync(path.join(dir, n, 'run.json'), 'utf8')) as { pid: number }).pid, held[i], `${n} written by its lease holder`);
  // Frozen, not dead: its pid lives, so its leases run out (3 s) before the other takes its runs,
  // and it must notice it lost them when it wakes (and give the folders up) instead of writing on.
  a.proc.kill('SIGSTOP');
  const stoppedAt = Date.now();
  await until(() => names.every((n) => owner(server, n) === b.proc.pid), 'the other collector holds every run', 20_000);
  const after = Date.now() - stoppedAt;
  // renewed at most 1 s before the stop, a lease of 3 s runs out 2 s after it at the earliest (a dead pid would be ~0.1 s)
  t.ok(after >= 1900, `the runs of the frozen collector were taken over ${after} ms after it stopped, once its leases ran out (3000 ms)`);
  a.proc.kill('SIGCONT');
  await until(() => /W_COLLECT_LEASE_LOST/.test(a.out()), 'the woken collector says it lost its runs', 20_000);
  for (const k of kids) t.equal((await k.exited).code, 0, `producer ok ${k.stderr()}`);
  const streams = names.map((n) => streamKey('rowlog', n, 'main'));
  await until(() => streams.every((s) => group(server, s).pending === 0 && group(server, s).read === Number(server.cli('XLEN', s))), 'every entry read and acked', 30_000, 50);
  await until(() => names.every((n) => (JSON.parse(fs.readFileSync(path.join(dir, n, 'run.json'), 'utf8')) as { pid: number }).pid === b.proc.pid), 'every folder reopened by the survivor');
  for (const c of [a, b]) c.proc.kill('SIGTERM');
  t.same([(await a.exited).code, (await b.exited).code], [0, 0], 'both stop cleanly');
  for (const n of names) t.same(checkRun(path.join(dir, n), N, peer('python3')), perfect(N), `run ${n}: every row once, in order, in both files`);
});
