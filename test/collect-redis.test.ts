/**
 * The Redis collector (issue 14 point 2, docs/DESIGN.md §4 "The ack rule") against a real
 * redis-server: what a run folder holds after collection (rows in both files, params, status,
 * `run.json`'s source without the password), entries acked only once on disk, 4 producer
 * processes × 250,000 rows collected exactly once, a Redis restarted (AOF) while collecting,
 * and two collectors of one group sharing the runs and taking over from one SIGKILLed.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { collectRedis } from '../lib/net/collect-redis.js';
import type { RedisCollector } from '../lib/net/collect-redis.js';
import { blockFields, metaKey, ownerKey, runsKey, streamKey, TABLE_FIELD } from '../lib/format/redis-stream.js';
import { openRedis, redisTarget } from '../lib/io/redis-client.js';
import type { Redis } from '../lib/io/redis-client.js';
import { createLogger } from '../lib/log/logger.js';
import { lastRowInFile } from '../lib/run/last-step.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { readJsonl, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import type { RedisServer } from './redis.js';
import { checkRun, perfect, producers } from './redis-producer.js';
import { until } from './wait.js';

const P = 'rowlog';

/** The rows of steps `first..last` of a block, as the sink writes them. */
function block(first: number, last: number, extra = ''): string[] {
  let rows = '';
  for (let s = first; s <= last; s++) rows += `{"$step":${s},"$time":${1000 + s},"$level":20,"loss":${s / 8}${extra}}\n`;
  return blockFields({ rows, n: last - first + 1, first, last });
}

function client(t: Test, server: RedisServer): Redis {
  const r = openRedis(redisTarget(server.url, 'url'));
  r.on('error', () => undefined);
  t.teardown(() => r.disconnect());
  return r;
}

/** Entries of the group not acked yet on `stream`. */
function pendingOf(server: RedisServer, stream: string, group = 'rowlog-collect'): number {
  const out = server.cli('XPENDING', stream, group).trim().split('\n');
  return Number(out[0]);
}

function warningsOf(c: RedisCollector): RowlogWarning[] {
  const seen: RowlogWarning[] = [];
  c.on('warning', (w: RowlogWarning) => seen.push(w));
  return seen;
}

t.test('a run in Redis becomes a run folder: rows in both files, params, status, source; entries acked once on disk', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis({ password: 's3cr:t/pw' });
  t.teardown(() => removeRedis(server));
  const r = client(t, server);
  const dir = tmpdir(t);
  await r.hset(metaKey(P, 'exp1'), 'id', 'run-id-1', 'run', JSON.stringify({ name: 'exp1', host: 'gpu7' }), 'params', '{"lr":0.1}', 'status', '{"epoch":3,"$state":"running","$steps":{"train":9}}');
  await r.hset(metaKey(P, 'exp1'), `${TABLE_FIELD}train`, streamKey(P, 'exp1', 'train'), `${TABLE_FIELD}meta`, streamKey(P, 'exp1', 'meta'), `${TABLE_FIELD}../x`, 'nope');
  await r.sadd(runsKey(P), 'exp1', 'bad:name');
  await r.xadd(streamKey(P, 'exp1', 'train'), '*', ...block(0, 4));
  await r.xadd(streamKey(P, 'exp1', 'train'), '*', 'something', 'else');
  await r.xadd(streamKey(P, 'exp1', 'train'), '*', ...blockFields({ rows: '{"$step":5,"$time":1005,"$level":20,"loss":NaN}\nnot json\n', n: 2, first: 5, last: 5 }));
  await r.xadd(streamKey(P, 'exp1', 'meta'), '*', ...block(0, 1));

  const c = collectRedis({ url: server.url, dir, pollMs: 50, leaseMs: 3000 });
  const warned = warningsOf(c);
  const taken: string[] = [];
  c.on('run', (n: string) => taken.push(n));
  await until(() => c.counts.rows === 8, 'the first rows');
  await until(() => pendingOf(server, streamKey(P, 'exp1', 'train')) === 0, 'the train entries acked');
  t.same(taken, ['exp1']);
  t.same(c.runs(), ['exp1']);
  // a block added later, and params changed, are followed
  await r.xadd(streamKey(P, 'exp1', 'train'), '*', ...block(6, 9, ',"new":1'));
  await r.hset(metaKey(P, 'exp1'), 'params', '{"lr":0.2,"bs":8}', 'status', '{"epoch":4}');
  await until(() => c.counts.rows === 12, 'the later rows');
  await until(() => fs.readFileSync(path.join(dir, 'exp1', 'params.json'), 'utf8').includes('"bs"'), 'params.json followed');
  t.equal(c.counts.badEntries, 1);
  t.equal(c.counts.badLines, 1);
  await c.close();

  const run = path.join(dir, 'exp1');
  const rows = fs.readFileSync(path.join(run, 'train.csv'), 'utf8').trim().split('\n');
  t.equal(rows[0], '$step,$time,$level,loss,new');
  t.same(rows.slice(1).map((l) => Number(l.split(',')[0])), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.match(rows[6], /^5,1005,20,NaN/, 'NaN kept');
  const zl = readJsonl(path.join(run, 'meta.jsonl.gz'));
  t.same(zl.map((x) => x.$step), [0, 1], 'a table named meta (stream P:R:meta:rows) is a table like any');
  t.same(lastRowInFile(path.join(run, 'train.jsonl.gz')), { step: 9, time: 1009 });
  t.same(lastRowInFile(path.join(run, 'train.csv')), { step: 9, time: 1009 });
  t.same(JSON.parse(fs.readFileSync(path.join(run, 'params.json'), 'utf8')), { lr: 0.2, bs: 8 });
  const status = JSON.parse(fs.readFileSync(path.join(run, 'status.json'), 'utf8')) as Record<string, unknown>;
  t.equal(status.epoch, 4);
  t.equal(status.$state, 'closed', "the folder's state is the collector's");
  const info = fs.readFileSync(path.join(run, 'run.json'), 'utf8');
  t.notMatch(info, /s3cr/, 'no password in run.json');
  const source = (JSON.parse(info) as { source: Record<string, unknown> }).source;
  t.same(source, { redis: `redis://:***@127.0.0.1:${server.port}`, prefix: P, run: 'exp1', id: 'run-id-1', info: { name: 'exp1', host: 'gpu7' } });
  t.equal(server.cli('EXISTS', ownerKey(P, 'exp1', 'rowlog-collect')).trim(), '0', 'the lease is released on close');
  const codes = new Set(warned.map((w) => w.code));
  for (const code of ['W_COLLECT_BAD_RUN', 'W_COLLECT_BAD_TABLE', 'W_COLLECT_BAD_ENTRY', 'W_COLLECT_BAD_LINE']) t.ok(codes.has(code), code);
  t.notOk(warned.some((w) => w.message.includes('s3cr')), 'no password in warnings');
});

t.test('entries read by a collector that lost the run after the read (pending, never written) are claimed by the owner once idle for leaseMs', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const r = client(t, server);
  const dir = tmpdir(t);
  const stream = streamKey(P, 'orph', 'train');
  await r.hset(metaKey(P, 'orph'), `${TABLE_FIELD}train`, stream);
  await r.sadd(runsKey(P), 'orph');
  await r.xadd(stream, '*', ...block(0, 4));
  const c = collectRedis({ url: server.url, dir, pollMs: 50, leaseMs: 400 });
  t.teardown(() => c.close());
  await until(() => c.counts.rows === 5 && pendingOf(server, stream) === 0, 'the first block written and acked');
  // A collector that held the run before, its read served after its lease ran out: the entry is
  // delivered to it (in one transaction, before the owner's blocked read can get it) and never written.
  await r.multi().xadd(stream, '*', ...block(5, 9)).call('XREADGROUP', 'GROUP', 'rowlog-collect', 'gone:1', 'STREAMS', stream, '>').exec();
  t.match(server.cli('XPENDING', stream, 'rowlog-collect', '-', '+', '10', 'gone:1'), /gone:1/, 'the entry went to the other consumer');
  await r.xadd(stream, '*', ...block(10, 11));
  await until(() => c.counts.rows === 12 && pendingOf(server, stream) === 0, `every row written and acked (${c.counts.rows})`);
  await c.close();
  const steps = readJsonl(path.join(dir, 'orph', 'train.jsonl.gz')).map((x) => x.$step).sort((a, b) => Number(a) - Number(b));
  t.same(steps, [...Array(12).keys()], 'every row once in the JSONL');
  const csv = fs.readFileSync(path.join(dir, 'orph', 'train.csv'), 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[0])).sort((a, b) => a - b);
  t.same(csv, [...Array(12).keys()], 'every row once in the CSV');
});

t.test('a file that refuses rows (W_FILE_ERROR / W_ROWS_DROPPED) leaves its entries unacked: the run is given up, and written whole once the file works', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const r = client(t, server);
  const dir = tmpdir(t);
  const stream = streamKey(P, 'full', 'train');
  await r.hset(metaKey(P, 'full'), `${TABLE_FIELD}train`, stream);
  await r.sadd(runsKey(P), 'full');
  await r.xadd(stream, '*', ...block(0, 4));
  // train.csv cannot be written (a folder in its place: EISDIR, as a full disk's ENOSPC).
  const csv = path.join(dir, 'full', 'train.csv');
  fs.mkdirSync(csv, { recursive: true });
  const c = collectRedis({ url: server.url, dir, pollMs: 50, leaseMs: 400 });
  t.teardown(() => c.close());
  const warned = warningsOf(c);
  const lost: string[] = [];
  c.on('lost', (n: string) => lost.push(n));
  await until(() => lost.length > 0, 'the run given up');
  t.ok(warned.some((w) => w.code === 'W_FILE_ERROR' || w.code === 'W_ROWS_DROPPED'), 'the file error is warned');
  t.equal(pendingOf(server, stream), 1, 'its entry is not acked');
  fs.rmSync(csv, { recursive: true });
  await until(() => pendingOf(server, stream) === 0 && c.runs().includes('full'), 'taken again, written and acked', 10_000);
  await c.close();
  t.same(readJsonl(path.join(dir, 'full', 'train.jsonl.gz')).map((x) => x.$step), [0, 1, 2, 3, 4], 'the JSONL once (its rows left out when written again)');
  const steps = fs.readFileSync(csv, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[0]));
  t.same(steps, [0, 1, 2, 3, 4], 'the CSV whole');
});

t.test('in one process: a folder held by another writer waits, a lease taken away is a run lost and taken again, rows once', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const r = client(t, server);
  const dir = tmpdir(t);
  const stream = streamKey(P, 'ls', 'train');
  await r.hset(metaKey(P, 'ls'), `${TABLE_FIELD}train`, stream);
  await r.sadd(runsKey(P), 'ls');
  await r.xadd(stream, '*', ...block(0, 4));
  const other = createLogger({ dir: path.join(dir, 'ls'), sinks: [] }); // holds rowlog.lock
  const c = collectRedis({ url: server.url, dir, pollMs: 50, leaseMs: 300 });
  t.teardown(() => c.close());
  const warned = warningsOf(c);
  const events: string[] = [];
  c.on('run', (n: string) => events.push(`run ${n}`));
  c.on('lost', (n: string) => events.push(`lost ${n}`));
  await until(() => warned.some((w) => w.code === 'W_COLLECT_RUN_LOCKED'), 'the locked folder warned');
  t.equal(c.counts.rows, 0, 'nothing written while another writer holds the folder');
  await other.close();
  await until(() => c.counts.rows === 5 && pendingOf(server, stream) === 0, 'written once the folder is free');
  // Another collector's lease in its place: the renewal fails, the run is given up.
  await r.set(ownerKey(P, 'ls', 'rowlog-collect'), 'elsewhere:1 boot', 'PX', 400);
  await until(() => events.includes('lost ls'), 'the run lost');
  t.ok(warned.some((w) => w.code === 'W_COLLECT_LEASE_LOST'));
  await r.xadd(stream, '*', ...block(5, 9));
  // That lease runs out: the run is taken again and its rows written.
  await until(() => events.filter((e) => e === 'run ls').length >= 2 && c.counts.rows === 10 && pendingOf(server, stream) === 0, `taken again (${events.join(', ')})`);
  await c.close();
  t.same(readJsonl(path.join(dir, 'ls', 'train.jsonl.gz')).map((x) => x.$step), [...Array(10).keys()]);
  t.ok(c.counts.taken >= 2 && c.counts.lost >= 1, 'taken twice, lost once (more on a loaded machine, whose short leases may lapse)');
});

t.test('options are checked', async (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ url: 'http://x', dir: 'd' }, /^url: /],
    [{ url: 'redis://x', dir: '' }, /^dir: /],
    [{ url: 'redis://x', dir: 'd', name: 'a b' }, /^name: /],
    [{ url: 'redis://x', dir: 'd', prefix: '' }, /^prefix: /],
    [{ url: 'redis://x', dir: 'd', leaseMs: 5 }, /^leaseMs: /],
    [{ url: 'redis://x', dir: 'd', pollMs: 'x' }, /^pollMs: /],
    [{ url: 'redis://x', dir: 'd', batchEntries: 0 }, /^batchEntries: /],
  ];
  for (const [opts, message] of bad) t.throws(() => collectRedis(opts as never), { code: 'ERR_INVALID_OPTION', message }, JSON.stringify(opts));
  t.throws(() => collectRedis(null as never), { code: 'ERR_INVALID_OPTION' });
});

t.test('4 producer processes × 250,000 rows: each run folder holds every row exactly once', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const dir = tmpdir(t);
  const start = producers(tmpdir(t));
  const N = 250_000;
  const c = collectRedis({ url: server.url, dir: path.join(dir, 'runs'), pollMs: 200 });
  const t0 = Date.now();
  const kids = [0, 1, 2, 3].map((i) => start(server.url, `trainer${i}`, N));
  for (const k of kids) t.equal((await k.exited).code, 0, `producer ok ${k.stderr()}`);
  const produced = Date.now() - t0;
  await until(() => c.counts.rows === 4 * N, `${4 * N} rows collected (${c.counts.rows})`, 60_000, 50);
  const collected = Date.now() - t0;
  await until(() => [0, 1, 2, 3].every((i) => pendingOf(server, streamKey(P, `trainer${i}`, 'main')) === 0), 'every entry acked');
  await c.close();
  t.comment(`4 × ${N} rows: produced in ${produced} ms, on disk after ${collected} ms (${Math.round((4 * N) / (collected / 1000))} rows/s)`);
  for (let i = 0; i < 4; i++) t.same(checkRun(path.join(dir, 'runs', `trainer${i}`), N, peer('python3')), perfect(N), `trainer${i}`);
  t.equal(c.counts.skipped, 0);
});

t.test('Redis killed and restarted (AOF) while collecting: the collector reconnects, nothing lost or doubled', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis({ aof: true });
  t.teardown(() => removeRedis(server));
  const dir = path.join(tmpdir(t), 'runs');
  const start = producers(tmpdir(t));
  const N = 40_000;
  const c = collectRedis({ url: server.url, dir, pollMs: 100, leaseMs: 3000 });
  const warned = warningsOf(c);
  const kids = ['r1', 'r2'].map((n) => start(server.url, n, N, { pace: 5000 }));
  await until(() => c.counts.rows > N / 4, 'a quarter of the rows collected', 20_000);
  await server.stop('SIGKILL');
  const during = c.counts.rows;
  await server.start();
  for (const k of kids) t.equal((await k.exited).code, 0, `producer ok ${k.stderr()}`);
  await until(() => ['r1', 'r2'].every((n) => pendingOf(server, streamKey(P, n, 'main')) === 0) && c.counts.rows >= 2 * N, 'every row collected and acked', 30_000, 50);
  await c.close();
  t.ok(during < 2 * N, `Redis went away mid-run (${during} of ${2 * N} rows collected then)`);
  t.ok(warned.some((w) => w.code === 'W_COLLECT_REDIS'), 'the lost connection is one warning with a code');
  for (const n of ['r1', 'r2']) t.same(checkRun(path.join(dir, n), N, peer('python3')), perfect(N), `run ${n}`);
});

t.test('lastRowInFile: the $step and $time of a table file\'s last whole row, from its end', async (t) => {
  const dir = tmpdir(t);
  const { createLogger } = await import('../lib/log/logger.js');
  const log = createLogger({ dir, console: false, tensorboard: false, exitHooks: false });
  for (let s = 0; s < 3000; s++) log.row('t', { x: s, s: 'a,b' }, { step: s, time: 5000 + s });
  await log.close();
  for (const f of ['t.jsonl.gz', 't.csv']) t.same(lastRowInFile(path.join(dir, f)), { step: 2999, time: 7999 }, f);
  fs.appendFileSync(path.join(dir, 't.csv'), '3000,8000,2'); // a torn row: not whole
  t.same(lastRowInFile(path.join(dir, 't.csv')), { step: 2999, time: 7999 }, 'a torn last row is not a row');
  fs.writeFileSync(path.join(dir, 'h.csv'), '$step,$time,$level,x\n');
  t.equal(lastRowInFile(path.join(dir, 'h.csv')), undefined, 'a header alone');
  fs.writeFileSync(path.join(dir, 'p.jsonl'), '{"$step":4,"$time":1.5,"$level":20}\nnot a row\n');
  t.same(lastRowInFile(path.join(dir, 'p.jsonl')), { step: 4, time: 1.5 }, 'the last line that is a row');
  t.equal(lastRowInFile(path.join(dir, 'missing.jsonl.gz')), undefined);
  t.equal(lastRowInFile(path.join(dir, 'run.json')), undefined, 'not a table file');
});

t.test('rowlog collect: --port or --redis (or ROWLOG_REDIS), not both; a bad URL is a usage error', async (t) => {
  const { runCli } = await import('./cli.js');
  const dir = tmpdir(t);
  const env = { ...process.env, ROWLOG_REDIS: '' };
  const none = runCli(['collect', '--dir', dir], { env });
  t.equal(none.status, 2);
  t.match(none.stderr, /rowlog: collect: needs --port P .* or --redis URL/);
  const both = runCli(['collect', '--dir', dir, '--port', '0', '--redis', 'redis://127.0.0.1:1'], { env });
  t.equal(both.status, 2);
  t.match(both.stderr, /not both/);
  const bad = runCli(['collect', '--dir', dir, '--redis', 'http://u:pw@x'], { env });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /^rowlog: collect: --redis: must be a redis:\/\/ or rediss:\/\/ URL/);
  t.notMatch(bad.stderr, /pw/);
});
