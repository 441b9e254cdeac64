/**
 * The ack rule under SIGKILL (issue 14 point 4, docs/DESIGN.md §4 "The ack rule"): a real
 * `rowlog collect --redis` process is killed at 5 random moments while producers write into Redis,
 * and started again each time; in the end each run folder holds every row exactly once, in order,
 * in both `main.jsonl.gz` (gzip -t, zcat) and `main.csv` (python3's csv where there is one).
 */
import t from 'tap';
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

/** `rowlog collect --redis` in the background, its stdout kept. */
function collector(server: RedisServer, dir: string): { proc: ChildProcessWithoutNullStreams; out: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const proc = spawnCli(['collect', '--redis', server.url, '--dir', dir, '--poll-ms', '100', '--lease-ms', '3000']);
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
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
  let output = '';
  for (let kill = 0; kill < 5; kill++) {
    const c = collector(server, dir);
    const before = acked(server, streams);
    // a random moment once it is writing: some entries acked since it started, then 0–300 ms
    await until(() => acked(server, streams) > before, `collector ${kill} acking entries`, 20_000, 20);
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
