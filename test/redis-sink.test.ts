/**
 * redisSink (docs/DESIGN.md §4, "Redis Streams"; issue 14 point 1) against a real redis-server of
 * this file's own (test/redis.ts): rows arrive as blocks of JSONL lines, every row exactly once and
 * in order, read back with redis-cli and with ioredis; the run's meta hash and the runs set;
 * MAXLEN ~; createLogger({redis}) and ROWLOG_REDIS; options checked.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { createLogger } from '../lib/log/logger.js';
import { lineToRow } from '../lib/format/parse-lines.js';
import { parseBlock, streamKey } from '../lib/format/redis-stream.js';
import { redisSink } from '../sinks/redis.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import type { RedisServer } from './redis.js';
import { until } from './wait.js';

const IORedis = (createRequire(import.meta.url)('ioredis') as { default: new (url: string) => Redis }).default;

/** `XRANGE key - +` through ioredis: the decoded blocks with their ids. */
async function blocks(client: Redis, key: string) {
  const entries = (await client.xrange(key, '-', '+')) as Array<[string, string[]]>;
  return entries.map(([id, fields]) => ({ id, ...(parseBlock(fields) ?? { rows: '', n: -1, first: -1, last: -1 }) }));
}

/** Every row of a stream, in order (lineToRow restores NaN and Infinity). */
async function rowsOf(client: Redis, key: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const b of await blocks(client, key)) for (const line of b.rows.split('\n')) if (line !== '') out.push(lineToRow(line) as Record<string, unknown>);
  return out;
}

/** HGETALL through redis-cli, as a map. */
function hgetall(server: RedisServer, key: string): Record<string, string> {
  // Not a terminal: redis-cli prints each field and value raw on a line (the JSON texts hold no newline).
  const values = server.cli('HGETALL', key).split('\n').slice(0, -1);
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < values.length; i += 2) out[values[i] as string] = values[i + 1] as string;
  return out;
}

/** The `last` step of a stream's newest entry, from redis-cli (-1 when it has none). */
function lastStep(server: RedisServer, key: string): number {
  const out = server.cli('XREVRANGE', key, '+', '-', 'COUNT', '1').split('\n');
  const at = out.indexOf('last');
  return at < 0 ? -1 : Number(out[at + 1]);
}

function warnings(w: { on(ev: 'warning', f: (w: RowlogWarning) => void): unknown }): RowlogWarning[] {
  const seen: RowlogWarning[] = [];
  w.on('warning', (x) => seen.push(x));
  return seen;
}

t.test('redisSink', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const client = new IORedis(server.url);
  t.teardown(() => client.disconnect());

  t.test('rows arrive as blocks, every row once, in order, NaN and Infinity kept', async (t) => {
    const sink = redisSink({ url: server.url, run: 'r1', maxBatchRows: 100 });
    const seen = warnings(sink);
    const N = 1000;
    for (let i = 0; i < N; i++) {
      sink.write({ table: 'train', level: 20, step: i, time: 1_700_000_000_000 + i, data: { loss: i === 7 ? NaN : i / 2, big: i === 8 ? -Infinity : i, tag: `s${i}` } });
      if (i % 10 === 0) sink.write({ table: 'eval/acc', level: 20, step: i / 10, time: 1_700_000_000_000 + i, data: { acc: 1 } });
    }
    await sink.flush();
    const key = streamKey('rowlog', 'r1', 'train');
    const bs = await blocks(client, key);
    t.equal(server.cli('XLEN', key).trim(), String(bs.length), 'redis-cli XLEN: one entry per batch');
    t.ok(bs.length >= N / 100 && bs.length <= N / 90 + 1, `${bs.length} blocks: one per table per batch of 100 rows`);
    t.ok(bs.every((b, k) => b.n === b.last - b.first + 1 && b.first === (k === 0 ? 0 : (bs[k - 1]?.last ?? NaN) + 1)), 'n/first/last of each block: contiguous steps');
    const rows = await rowsOf(client, key);
    t.same(rows.map((r) => r.$step), Array.from({ length: N }, (_, i) => i), 'steps 0..N-1 exactly once, in order');
    t.ok(Number.isNaN(rows[7]?.loss), 'NaN kept');
    t.equal(rows[8]?.big, -Infinity, '-Infinity kept');
    t.equal(bs[0]?.rows.split('\n')[0], '{"$step":0,"$time":1700000000000,"$level":20,"big":0,"loss":0,"tag":"s0"}', 'the line jsonlSink writes');
    t.match(server.cli('XRANGE', key, '-', '+', 'COUNT', '1'), /"\$step":0/, 'redis-cli XRANGE shows the rows');
    t.equal((await rowsOf(client, streamKey('rowlog', 'r1', 'eval/acc'))).length, N / 10, 'the other table in its own stream');
    t.equal(server.cli('SISMEMBER', 'rowlog:runs', 'r1').trim(), '1', 'the run is in rowlog:runs');
    const meta = hgetall(server, 'rowlog:r1:meta');
    t.equal(meta['table:train'], key, 'meta names the stream of each table');
    t.equal(meta['table:eval/acc'], 'rowlog:r1:eval/acc');
    t.match(meta.id, /^[0-9a-f-]{36}$/, 'the run claimed its name with an id');
    await new Promise<void>((resolve) => sink.end(resolve));
    t.same(seen, [], 'no warning');
  });

  t.test('ids continue after the stream\'s own top: a reopened run appends after its blocks', async (t) => {
    const key = streamKey('rowlog', 'r2', 'main');
    // A top far in the future (a clock that stepped back since): new blocks must still be added after it.
    client.xadd(key, '99999999999999-5', 'rows', '', 'n', '0', 'first', '0', 'last', '0');
    const sink = redisSink({ url: server.url, run: 'r2' });
    sink.write({ table: 'main', level: 20, step: 0, time: 1, data: { x: 1 } });
    await sink.flush();
    sink.write({ table: 'main', level: 20, step: 1, time: 2, data: { x: 2 } });
    await sink.flush();
    const bs = await blocks(client, key);
    t.same(bs.map((b) => b.id), ['99999999999999-5', '99999999999999-6', '99999999999999-7'], 'ids after the top, one apart');
    await new Promise<void>((resolve) => sink.end(resolve));
  });

  t.test('MAXLEN ~ caps each stream', async (t) => {
    const sink = redisSink({ url: server.url, run: 'capped', maxLen: 10, maxBatchRows: 1 });
    for (let i = 0; i < 2000; i++) sink.write({ table: 'main', level: 20, step: i, time: i, data: { x: i } });
    await sink.flush();
    const len = Number(server.cli('XLEN', 'rowlog:capped:main').trim());
    t.ok(len >= 10 && len < 2000, `XLEN ${len} capped near 10 (~)`);
    const rows = await rowsOf(client, 'rowlog:capped:main');
    t.equal(rows.at(-1)?.$step, 1999, 'the newest rows kept');
    await new Promise<void>((resolve) => sink.end(resolve));
  });

  t.test('createLogger({redis}): run name, meta run/params/status, table named meta', async (t) => {
    const dir = path.join(tmpdir(t), 'exp 1');
    const log = createLogger({ dir, redis: { url: server.url, prefix: 'p' }, console: false, tensorboard: false });
    log.params({ lr: 0.1 });
    for (let i = 0; i < 5; i++) log.row('train', { loss: i }, { level: 'TRACE' });
    log.row('meta', { k: 1 });
    log.status.epoch = 3;
    await log.flush();
    const run = 'exp_1';
    t.equal(server.cli('SISMEMBER', 'p:runs', run).trim(), '1', 'run name = the folder name as one segment');
    t.same((await rowsOf(client, `p:${run}:train`)).map((r) => r.loss), [0, 1, 2, 3, 4]);
    t.same((await rowsOf(client, `p:${run}:meta:rows`)).map((r) => r.k), [1], 'a table named meta goes to meta:rows');
    let meta = hgetall(server, `p:${run}:meta`);
    t.equal(JSON.parse(meta.run ?? '{}').id, log.run?.id, 'meta run = run.json');
    t.equal(meta.id, log.run?.id, 'the name is claimed by the run id');
    t.same(JSON.parse(meta.params ?? '{}'), { lr: 0.1 });
    t.equal(JSON.parse(meta.status ?? '{}').epoch, 3);
    t.equal(JSON.parse(meta.status ?? '{}').$state, 'running');
    await log.close();
    meta = hgetall(server, `p:${run}:meta`);
    t.equal(JSON.parse(meta.status ?? '{}').$state, 'closed', 'status closed at close');
    t.notOk(fs.readFileSync(path.join(dir, 'run.json'), 'utf8').includes('redis://'), 'run.json holds no URL');

    // Reopening the folder: a new run id, the earlier opening's (appendedTo): same name, same streams.
    const again = createLogger({ dir, redis: { url: server.url, prefix: 'p' }, console: false, tensorboard: false });
    const seen = warnings(again);
    again.row('train', { loss: 5 }, { level: 'TRACE' });
    await again.close();
    t.same((await rowsOf(client, `p:${run}:train`)).map((r) => r.$step), [0, 1, 2, 3, 4, 5], 'the reopened run continues its stream');
    t.equal(hgetall(server, `p:${run}:meta`).id, again.run?.id, 'the claim passes to the reopened run');
    t.same(seen.filter((w) => w.code.startsWith('W_REDIS')), [], 'no warning');
  });

  t.test('a name held by another run: written as <run>.<id8> with W_REDIS_RUN_TAKEN', async (t) => {
    server.cli('HSET', 'rowlog:taken:meta', 'id', 'someone-else');
    const log = createLogger({ dir: path.join(tmpdir(t), 'taken'), redis: server.url, console: false, tensorboard: false });
    const seen = warnings(log);
    log.row('main', { x: 1 });
    await log.flush();
    const renamed = `taken.${log.run?.id.slice(0, 8)}`;
    t.equal(server.cli('SISMEMBER', 'rowlog:runs', renamed).trim(), '1');
    t.equal((await rowsOf(client, `rowlog:${renamed}:main`)).length, 1);
    t.same(seen.map((w) => w.code), ['W_REDIS_RUN_TAKEN']);
    await log.close();
  });

  t.test('ROWLOG_REDIS adds the sink to the defaults', async (t) => {
    process.env.ROWLOG_REDIS = server.url;
    t.teardown(() => delete process.env.ROWLOG_REDIS);
    const log = createLogger({ dir: path.join(tmpdir(t), 'fromenv'), console: false, tensorboard: false });
    log.row('main', { x: 1 });
    await log.close();
    t.equal((await rowsOf(client, 'rowlog:fromenv:main')).length, 1);
    const off = createLogger({ dir: path.join(tmpdir(t), 'notsent'), redis: false, console: false, tensorboard: false });
    off.row('main', { x: 1 });
    await off.close();
    t.equal(server.cli('EXISTS', 'rowlog:notsent:main').trim(), '0', 'redis: false: none, ROWLOG_REDIS or not');
  });

  t.test('an XADD Redis executed whose reply was lost is sent again and not added twice', async (t) => {
    // A proxy on 127.0.0.1 that, once armed, lets one XADD through to Redis, swallows its reply and
    // cuts the connection: the sink cannot know the block is in, and sends it again.
    let armed = false;
    let cuts = 0;
    const proxy = net.createServer((down) => {
      const up = net.connect(server.port, '127.0.0.1');
      let swallow = false;
      down.on('data', (b) => {
        if (armed && b.includes('XADD')) {
          armed = false;
          swallow = true;
        }
        up.write(b);
      });
      up.on('data', (b) => {
        if (!swallow) return void down.write(b);
        cuts++;
        down.destroy();
        up.destroy();
      });
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
      down.on('close', () => up.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    t.teardown(() => proxy.close());
    const sink = redisSink({ url: `redis://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, run: 'lost' });
    const seen = warnings(sink);
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 0 } });
    await sink.flush();
    armed = true;
    sink.write({ table: 'main', level: 20, step: 1, time: 1, data: { x: 1 } });
    await until(() => cuts === 1, 'the reply swallowed');
    sink.write({ table: 'main', level: 20, step: 2, time: 2, data: { x: 2 } });
    await until(() => lastStep(server, 'rowlog:lost:main') === 2, 'the later block');
    await sink.flush();
    t.same((await rowsOf(client, 'rowlog:lost:main')).map((r) => r.$step), [0, 1, 2], 'every row once: the resend was refused as already there');
    t.notOk(seen.some((w) => /another writer/.test(w.message)), 'not taken for another writer');
    await new Promise<void>((resolve) => sink.end(resolve));
  });

  t.test('a key that is not a stream: its blocks are dropped and counted (W_REDIS_DROPPED)', async (t) => {
    server.cli('SET', 'rowlog:wt:main', 'not a stream');
    const sink = redisSink({ url: server.url, run: 'wt' });
    const seen = warnings(sink);
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 1 } });
    sink.write({ table: 'other', level: 20, step: 0, time: 0, data: { x: 1 } });
    await sink.flush();
    t.match(seen, [{ code: 'W_REDIS_DROPPED', message: /1 rows dropped: Redis refuses them \(WRONGTYPE/ }]);
    t.equal((await rowsOf(client, 'rowlog:wt:other')).length, 1, 'the other table is written');
    await new Promise<void>((resolve) => sink.end(resolve));
    t.match(seen[1], { code: 'W_REDIS_DROPPED', message: /1 rows were dropped before/ }, 'the total at close');
  });

  t.test('another writer on the stream: the next block gets an id after its entry, nothing lost', async (t) => {
    const sink = redisSink({ url: server.url, run: 'ow' });
    const seen = warnings(sink);
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 0 } });
    await sink.flush();
    await client.xadd('rowlog:ow:main', '99999999999999-0', 'foreign', '1');
    sink.write({ table: 'main', level: 20, step: 1, time: 1, data: { x: 1 } });
    await sink.flush();
    const ids = ((await client.xrange('rowlog:ow:main', '-', '+')) as Array<[string, string[]]>).map(([id]) => id);
    t.equal(ids.length, 3);
    t.equal(ids[2], '99999999999999-1', 'after the foreign entry');
    t.same((await rowsOf(client, 'rowlog:ow:main')).map((r) => r.x), [0, 1], 'both rows, the foreign entry skipped by parseBlock');
    t.match(seen, [{ code: 'W_REDIS_ERROR', message: /another writer adds to rowlog:ow:main/ }]);
    await new Promise<void>((resolve) => sink.end(resolve));
  });

  t.test('Redis refusing writes for now (OOM): warned once, retried, then delivered', async (t) => {
    const sink = redisSink({ url: server.url, run: 'oom' });
    const seen = warnings(sink);
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 0 } });
    await sink.flush();
    server.cli('CONFIG', 'SET', 'maxmemory', '1');
    t.teardown(() => server.cli('CONFIG', 'SET', 'maxmemory', '0'));
    sink.write({ table: 'main', level: 20, step: 1, time: 1, data: { x: 1 } });
    await sink.flush(); // resolves: Redis refuses for now, the block waits
    t.match(seen, [{ code: 'W_REDIS_ERROR', message: /refuses writes for now \(OOM/ }]);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    sink.setParams({ cyclic });
    t.match(seen[1], { code: 'W_STATUS', message: /could not record the params/ }, 'a record that is not JSON warns');
    server.cli('CONFIG', 'SET', 'maxmemory', '0');
    await until(() => lastStep(server, 'rowlog:oom:main') === 1, 'the refused block, sent again');
    t.same((await rowsOf(client, 'rowlog:oom:main')).map((r) => r.x), [0, 1]);
    await new Promise<void>((resolve) => sink.end(resolve));
    t.equal(seen.length, 2, 'no more warnings');
  });

  t.test('a sink without a logger or run option uses the default run name', async (t) => {
    const sink = redisSink({ url: server.url });
    t.match(sink.runName, /^[A-Za-z0-9_.-]+$/);
    t.match(sink.shown, /^redis:\/\/127\.0\.0\.1:\d+/);
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 1 } });
    await sink.flush();
    t.equal((await rowsOf(client, `rowlog:${sink.runName}:main`)).length, 1, 'written under that name');
    await new Promise<void>((resolve) => sink.end(resolve));
    sink.setStatus({ late: true }); // after close: nothing, no throw
    sink.destroy();
    t.notOk(hgetall(server, `rowlog:${sink.runName}:meta`).status, 'nothing recorded after close');
  });
});

t.test('options are checked (ERR_INVALID_OPTION), the password never shown', async (t) => {
  const bad = (opts: unknown, re: RegExp) =>
    t.throws(() => redisSink(opts as never), { code: 'ERR_INVALID_OPTION', message: re });
  bad({ url: 'http://x' }, /^url: /);
  bad({ url: 'redis://:s3cret@h:1', prefix: 'a b' }, /^prefix: /);
  bad({ url: 'redis://h:1', run: 'a/b' }, /^run: /);
  bad({ url: 'redis://h:1', maxLen: 0 }, /^maxLen: /);
  bad({ url: 'redis://h:1', maxBufferBytes: -1 }, /^maxBufferBytes: /);
  bad({ url: 'redis://h:1', closeTimeoutMs: 'x' }, /^closeTimeoutMs: /);
  bad({ url: 'redis://h:1', closeTimeoutMs: 1e12 }, /^closeTimeoutMs: .*from 0 to 2147483647/); // past a timer's range
  bad({ url: 'redis://h:1', maxBatchRows: 0 }, /^maxBatchRows: /);
  try {
    redisSink({ url: 'ftp://u:s3cret@h' });
    t.fail('a bad URL throws');
  } catch (err) {
    t.match(err, { code: 'ERR_INVALID_OPTION', message: /\*\*\*/ });
    t.notOk((err as Error).message.includes('s3cret'), 'no password in the message');
  }
  t.throws(() => createLogger({ dir: path.join(tmpdir(t), 'never'), redis: 5 as never }), { code: 'ERR_INVALID_OPTION' });
  // A ROWLOG_REDIS without its scheme (a common slip) is named in the error, its password hidden.
  process.env.ROWLOG_REDIS = 'u:s3cret@redis-host:6379';
  try {
    createLogger({ dir: path.join(tmpdir(t), 'never2'), console: false });
    t.fail('a bad ROWLOG_REDIS throws');
  } catch (err) {
    t.match(err, { code: 'ERR_INVALID_OPTION', message: /^ROWLOG_REDIS: must be a redis:\/\/ or rediss:\/\/ URL \(got \*\*\*@redis-host:6379\)/ });
  } finally {
    delete process.env.ROWLOG_REDIS;
  }
  const q = redisSink({ url: 'redis://127.0.0.1:1?password=s3cret', closeTimeoutMs: 0 });
  t.equal(q.shown, 'redis://127.0.0.1:1?password=***', 'a password given as ioredis\'s query option is hidden too');
  q.destroy();
  for (const url of [':s3cret@h:1', 'redis//u:s3cret@h:1', 'redis:/u:s3cret@h']) {
    try {
      redisSink({ url });
      t.fail(`${url} throws`);
    } catch (err) {
      t.notOk((err as Error).message.includes('s3cret'), `no password in the message for ${url.replace('s3cret', '…')}`);
    }
  }
});
