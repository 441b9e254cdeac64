/**
 * The Redis sink when Redis is not there (docs/DESIGN.md §4, "Redis Streams"; issue 14 points 1
 * and 4), with trainers as child processes and this file's own redis-servers (test/redis.ts):
 * Redis down at start (the loop runs to its end, the rows arrive when it comes up); Redis
 * SIGKILLed and restarted mid-run with AOF (every step exactly once); past maxBufferBytes
 * (one W_REDIS_DROPPED, the newest rows arrive); a wrong password (one W_REDIS_AUTH without the
 * password, run.json without it); a script that ends while Redis is away exits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import t from 'tap';
import type { Test } from 'tap';
import type { Redis } from 'ioredis';
import { lineToRow } from '../lib/format/parse-lines.js';
import { parseBlock } from '../lib/format/redis-stream.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { createLogger } from '../lib/log/logger.js';
import { redisSink } from '../sinks/redis.js';
import { startChild } from './child.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import { until } from './wait.js';

const IORedis = (createRequire(import.meta.url)('ioredis') as { default: new (url: string, o?: object) => Redis }).default;
const LOGGER = path.join(ROOT, 'lib', 'log', 'logger.js');
/** The child runs a `.mts` file importing lib/ as tap's own process does (its TypeScript loader). */
const TS_ENV = { NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...process.execArgv].join(' ').trim() };

/** A trainer: logs N rows of `train` in chunks (yielding between them), then closes or just ends. */
const TRAINER = `
import { createLogger } from ${JSON.stringify(LOGGER)};
const [dir, url, n, mode, closeMs] = process.argv.slice(2);
const log = createLogger({ dir, redis: { url, closeTimeoutMs: Number(closeMs) }, console: false, tensorboard: false });
log.on('warning', (w) => console.log('warning ' + w.code + ' ' + w.message));
const N = Number(n);
for (let i = 0; i < N; i++) {
  log.row('train', { loss: i / N, x: i });
  if (i % 500 === 499) {
    console.log('logged ' + (i + 1));
    await new Promise((r) => setImmediate(r));
  }
}
console.log('logged all');
await log.flush();
console.log('flushed');
if (mode === 'close') {
  await log.close();
  console.log('closed');
}
`;

function trainer(t: Test): string {
  const file = path.join(tmpdir(t), 'trainer.mts');
  fs.writeFileSync(file, TRAINER);
  return file;
}

/** Every row of a stream, in order. */
async function rowsOf(client: Redis, key: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const [, fields] of (await client.xrange(key, '-', '+')) as Array<[string, string[]]>) {
    for (const line of parseBlock(fields)?.rows.split('\n') ?? []) if (line !== '') out.push(lineToRow(line) as Record<string, unknown>);
  }
  return out;
}

/** The `last` step of a stream's newest entry, from redis-cli (-1 when it has none). */
function lastStep(cli: (...a: string[]) => string, key: string): number {
  const out = cli('XREVRANGE', key, '+', '-', 'COUNT', '1').split('\n');
  const at = out.indexOf('last');
  return at < 0 ? -1 : Number(out[at + 1]);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

t.test('the Redis sink without Redis', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis({ aof: true });
  t.teardown(() => removeRedis(server));
  const client = new IORedis(server.url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  t.teardown(() => client.disconnect());
  const script = trainer(t);

  t.test('Redis down at start: the loop runs to its end, the rows arrive when Redis comes up', async (t) => {
    await server.stop();
    const N = 20_000;
    const child = startChild(script, [path.join(tmpdir(t), 'late'), server.url, String(N), 'close', '60000'], TS_ENV);
    await child.line(/^flushed$/);
    t.ok(child.lines.includes('logged all'), 'every row was logged while Redis was down');
    t.match(child.lines.find((l) => l.startsWith('warning W_REDIS_ERROR')), /ECONNREFUSED/, 'one warning: not reachable');
    await server.start();
    await child.line(/^closed$/);
    t.same(await child.exited, { code: 0, signal: null }, child.stderr());
    const rows = await rowsOf(client, 'rowlog:late:train');
    t.same(rows.map((r) => r.$step), range(N), 'every step exactly once, in order');
    t.equal(child.lines.filter((l) => l.startsWith('warning')).length, 1, 'one warning in all');
  });

  t.test('Redis SIGKILLed and restarted mid-run (AOF): every step exactly once', async (t) => {
    const N = 100_000;
    const child = startChild(script, [path.join(tmpdir(t), 'restart'), server.url, String(N), 'close', '60000'], TS_ENV);
    await until(() => lastStep(server.cli, 'rowlog:restart:train') >= 10_000, 'rows in the stream before the kill', 20_000, 20);
    await server.stop('SIGKILL');
    const atKill = child.lines.filter((l) => l.startsWith('logged ')).length;
    await server.start();
    await child.line(/^closed$/);
    t.same(await child.exited, { code: 0, signal: null }, child.stderr());
    t.ok(atKill * 500 < N, `the kill came mid-run (${atKill * 500} rows logged then)`);
    const steps = (await rowsOf(client, 'rowlog:restart:train')).map((r) => r.$step);
    t.equal(steps.length, N, 'as many rows as logged');
    t.same(steps, range(N), 'every step 0..N-1 exactly once, in order');
    t.notOk(child.lines.some((l) => l.includes('W_REDIS_DROPPED')), 'nothing dropped');
  });

  t.test('a script that ends while Redis is away exits (nothing keeps it alive)', async (t) => {
    await server.stop();
    t.teardown(() => server.start());
    const child = startChild(script, [path.join(tmpdir(t), 'gone'), server.url, '1000', 'exit', '5000'], TS_ENV);
    const end = await child.exited;
    t.same(end, { code: 0, signal: null }, child.stderr());
    t.ok(child.lines.includes('flushed'), 'flush() resolved with Redis away');
    const closing = startChild(script, [path.join(tmpdir(t), 'gone2'), server.url, '1000', 'close', '200'], TS_ENV);
    t.same(await closing.exited, { code: 0, signal: null }, closing.stderr());
    t.match(closing.lines.find((l) => l.startsWith('warning W_REDIS_DROPPED')), /1000 rows were not delivered when the sink closed/, 'close() gives up after closeTimeoutMs and counts the rows');
  });

  t.test('past maxBufferBytes: one W_REDIS_DROPPED, the newest rows arrive, the total at close', async (t) => {
    await server.stop();
    const sink = redisSink({ url: server.url, run: 'bounded', maxBufferBytes: 20_000, maxBatchRows: 100 });
    const seen: RowlogWarning[] = [];
    sink.on('warning', (w: RowlogWarning) => seen.push(w));
    const N = 5000;
    for (let i = 0; i < N; i++) sink.write({ table: 'main', level: 20, step: i, time: i, data: { x: i } });
    await sink.flush();
    const drops = seen.filter((w) => w.code === 'W_REDIS_DROPPED');
    t.equal(drops.length, 1, 'one warning for the drops');
    t.match(drops[0]?.message, /rows dropped: more than maxBufferBytes \(20000\)/);
    await server.start();
    await until(() => lastStep(server.cli, 'rowlog:bounded:main') === N - 1, 'the buffered rows');
    await sink.flush();
    const steps = (await rowsOf(client, 'rowlog:bounded:main')).map((r) => r.$step as number);
    t.ok(steps.length > 0 && steps.length < N, `${steps.length} newest rows kept`);
    t.same(steps, range(steps.length).map((i) => N - steps.length + i), 'a contiguous run of the newest steps, each once');
    await new Promise<void>((resolve) => sink.end(resolve));
    const total = seen.filter((w) => w.code === 'W_REDIS_DROPPED');
    t.equal(total.length, 2, 'and the total at close');
    t.match(total[1]?.message, new RegExp(`${N - steps.length} rows were dropped before`));
  });
});

t.test('a wrong password: one W_REDIS_AUTH without it, run.json without it, rows kept', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis({ password: 'right-pass' });
  t.teardown(() => removeRedis(server));
  const url = `redis://:wr0ng-secret@127.0.0.1:${server.port}`;
  const dir = path.join(tmpdir(t), 'auth');
  const log = createLogger({ dir, redis: url, console: false, tensorboard: false });
  const seen: RowlogWarning[] = [];
  log.on('warning', (w: RowlogWarning) => seen.push(w));
  for (let i = 0; i < 100; i++) log.row('main', { x: i });
  const connections = () => Number(/total_connections_received:(\d+)/.exec(server.cli('INFO', 'stats'))?.[1] ?? 0);
  const before = connections();
  await until(() => connections() >= before + 3, 'three refused attempts');
  const auth = seen.filter((w) => w.code === 'W_REDIS_AUTH');
  t.equal(auth.length, 1, 'one warning, however many attempts');
  t.match(auth[0]?.message, /refused the credentials \((WRONGPASS|NOAUTH)/);
  t.match(auth[0]?.message, /redis:\/\/:\*\*\*@127\.0\.0\.1/, 'the URL with ***');
  t.notOk(seen.some((w) => w.message.includes('wr0ng-secret')), 'no warning holds the password');
  t.notOk(fs.readFileSync(path.join(dir, 'run.json'), 'utf8').includes('wr0ng-secret'), 'run.json does not hold it');
  await log.flush(); // resolves: Redis refuses, the rows wait
  // The server now takes that password: the rows kept are sent.
  server.cli('CONFIG', 'SET', 'requirepass', 'wr0ng-secret');
  const client = new IORedis(url);
  t.teardown(() => client.disconnect());
  await until(() => client.status === 'ready', 'a client with the new password');
  let n = 0;
  await until(() => {
    void client.xlen('rowlog:auth:main').then((x) => (n = x));
    return n > 0;
  }, 'the kept rows');
  await log.close();
  t.same((await rowsOf(client, 'rowlog:auth:main')).map((r) => r.x), range(100), 'every row kept and sent');
});
