/**
 * connect({redis}) against a real redis-server (issue 14 point 3): the backlog by XRANGE pages,
 * then live by XREAD BLOCK with no gap or duplicate at the switch while a producer keeps
 * writing; resuming from `lastId`; Redis SIGKILLed and restarted (AOF) under a live reader;
 * backpressure; trimming (`'dropped'`); foreign entries; `last`; a wrong password.
 */
import t from 'tap';
import path from 'node:path';
import { createLogger } from '../lib/index.js';
import { connect } from '../lib/net/connect.js';
import type { DroppedEntries, RedisRowStream } from '../lib/net/connect-redis.js';
import { compareIds, entryRows } from '../lib/net/connect-redis.js';
import { streamKey } from '../lib/format/redis-stream.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import type { RedisServer } from './redis.js';
import { addBlock, redisClient } from './redis-blocks.js';
import { tmpdir } from './helpers.js';
import { until } from './wait.js';

/** Collects the rows of `s` (flowing). */
function collect(s: RedisRowStream): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  s.on('data', (r: Record<string, unknown>) => rows.push(r));
  return rows;
}

const steps = (rows: Array<Record<string, unknown>>) => rows.map((r) => r.$step);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

t.test('connect({redis})', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server: RedisServer = await startRedis({ aof: true });
  t.teardown(() => removeRedis(server));
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());

  t.test('backlog then live: every step once, in order, while the producer writes through the switch', async (t) => {
    for (let e = 0; e < 200; e++) await addBlock(c, 'r1', 'train', e * 10, 10);
    const s = connect({ redis: server.url, run: 'r1', table: 'train', pageEntries: 7 });
    t.teardown(() => s.destroy());
    const rows = collect(s);
    let written = 200;
    let writtenAtLive = -1;
    s.once('live', () => (writtenAtLive = written));
    // A producer that writes while the backlog is being read, and on after the reader went live.
    while (written < 400) {
      await addBlock(c, 'r1', 'train', written * 10, 10);
      written++;
      if (writtenAtLive < 0 && written === 399) await until(() => writtenAtLive >= 0 || rows.length >= 3990, 'the reader to catch up');
    }
    await until(() => rows.length >= 4000, 'every row', 10_000);
    t.ok(writtenAtLive > 200, `entries were added while the backlog was read (${writtenAtLive - 200} of them)`);
    t.ok(writtenAtLive < 400, 'and after the switch to live');
    t.same(steps(rows), range(0, 4000), 'every step exactly once, in order');
    t.same(rows[0], { $step: 0, $time: 1_700_000_000_000, $level: 20, $table: 'train', loss: 1 }, 'rows as the socket connect gives them');
    t.equal(s.key, streamKey('rowlog', 'r1', 'train'));
    const lastIds = (await c.call('XREVRANGE', s.key, '+', '-', 'COUNT', '1')) as Array<[string, string[]]>;
    t.equal(s.lastId, lastIds[0]?.[0], 'lastId is the last entry read');
  });

  t.test('end to end: createLogger({redis}) writes while a reader follows', async (t) => {
    const s = connect({ redis: server.url, run: 'e2e', table: 'train' });
    t.teardown(() => s.destroy());
    const rows = collect(s);
    const log = createLogger({ dir: path.join(tmpdir(t), 'e2e'), redis: server.url, console: false, exitHooks: false, tensorboard: false });
    for (let i = 0; i < 5000; i++) {
      log.row('train', { loss: i === 7 ? NaN : 1 / (i + 1) });
      if (i % 1000 === 999) await log.flush();
    }
    await log.close();
    await until(() => rows.length >= 5000, 'every row', 10_000);
    t.same(steps(rows), range(0, 5000), 'every step once, in order');
    t.ok(Number.isNaN(rows[7]?.loss));
    t.equal(rows[0]?.$table, 'train');
  });

  t.test('resumes after lastId, exclusive', async (t) => {
    for (let e = 0; e < 10; e++) await addBlock(c, 'r2', 'train', e * 5, 5);
    const a = connect({ redis: server.url, run: 'r2', table: 'train' });
    const first = collect(a);
    await until(() => first.length >= 50, 'the backlog');
    const since = a.lastId;
    a.destroy();
    for (let e = 10; e < 20; e++) await addBlock(c, 'r2', 'train', e * 5, 5);
    const b = connect({ redis: server.url, run: 'r2', table: 'train', since });
    t.teardown(() => b.destroy());
    const rest = collect(b);
    await until(() => rest.length >= 50, 'the rest');
    t.same([...steps(first), ...steps(rest)], range(0, 100), 'nothing lost, nothing twice');
    const none = connect({ redis: server.url, run: 'r2', table: 'train', since: b.lastId, follow: false });
    const after = collect(none);
    await new Promise((resolve) => none.once('end', resolve));
    t.same(after, [], 'nothing after the last entry');
  });

  t.test('Redis killed and restarted (AOF) under a live reader: no gap, no duplicate', async (t) => {
    for (let e = 0; e < 20; e++) await addBlock(c, 'r3', 'train', e * 10, 10);
    const s = connect({ redis: server.url, run: 'r3', table: 'train', blockMs: 200 });
    t.teardown(() => s.destroy());
    const rows = collect(s);
    await until(() => rows.length >= 200, 'the backlog');
    await server.stop('SIGKILL');
    await server.start();
    await until(() => c.status === 'ready', 'the test client to redial');
    for (let e = 20; e < 40; e++) await addBlock(c, 'r3', 'train', e * 10, 10);
    await until(() => rows.length >= 400, 'the rows after the restart', 10_000);
    t.same(steps(rows), range(0, 400), 'every step exactly once, in order');
  });

  t.test('Redis killed in the middle of the backlog: the reader goes on from lastId', async (t) => {
    for (let e = 0; e < 400; e++) await addBlock(c, 'r3b', 'train', e * 5, 5);
    const s = connect({ redis: server.url, run: 'r3b', table: 'train', pageEntries: 5 });
    t.teardown(() => s.destroy());
    const rows: Array<Record<string, unknown>> = [];
    let offline = 0;
    s.on('offline', () => offline++);
    s.on('data', (r: Record<string, unknown>) => {
      rows.push(r);
      if (rows.length === 1000) s.pause(); // half way through the backlog
    });
    await until(() => s.isPaused(), 'half the backlog');
    await server.stop('SIGKILL');
    s.resume(); // reads while Redis is away
    await until(() => offline > 0, 'the reader to notice');
    await server.start();
    await until(() => rows.length >= 2000, 'the rest of the backlog', 10_000);
    t.same(steps(rows), range(0, 2000), 'every step exactly once, in order');
  });

  t.test('backpressure: a reader that is not read stops reading Redis', async (t) => {
    for (let e = 0; e < 100; e++) await addBlock(c, 'r4', 'train', e * 100, 100);
    const s = connect({ redis: server.url, run: 'r4', table: 'train', highWaterMark: 50, pageEntries: 10 });
    t.teardown(() => s.destroy());
    s.pause();
    s.once('readable', () => undefined); // starts reading into the buffer
    s.read(0);
    await until(() => s.readableLength >= 50, 'the buffer to fill');
    const held = s.readableLength;
    const id = s.lastId;
    // Redis gets more entries; the reader must not take them while nobody reads.
    for (let e = 100; e < 110; e++) await addBlock(c, 'r4', 'train', e * 100, 100);
    await c.call('PING');
    t.ok(held <= 150, `the buffer holds at most the high-water mark plus one entry (${held})`);
    t.equal(s.lastId, id, 'no more entries were taken');
    const rows: Array<Record<string, unknown>> = [];
    s.on('data', (r: Record<string, unknown>) => rows.push(r));
    s.resume();
    await until(() => rows.length >= 11_000, 'every row once read');
    t.same(steps(rows), range(0, 11_000));
  });

  t.test('trimmed entries: a dropped event, and the rows that are left', async (t) => {
    const ids: string[] = [];
    for (let e = 0; e < 100; e++) ids.push(await addBlock(c, 'r5', 'train', e, 1));
    await c.call('XTRIM', streamKey('rowlog', 'r5', 'train'), 'MAXLEN', '60');
    const s = connect({ redis: server.url, run: 'r5', table: 'train', since: ids[9] as string, follow: false });
    const dropped: DroppedEntries[] = [];
    s.on('dropped', (d: DroppedEntries) => dropped.push(d));
    const rows = collect(s);
    await new Promise((resolve) => s.once('end', resolve));
    t.same(dropped, [{ after: ids[9], before: ids[40] }], 'the gap, by stream ids');
    t.same(steps(rows), range(40, 100));
    // From the beginning, what was trimmed before the reader came is not a drop.
    const all = connect({ redis: server.url, run: 'r5', table: 'train', follow: false });
    let any = false;
    all.on('dropped', () => (any = true));
    const got = collect(all);
    await new Promise((resolve) => all.once('end', resolve));
    t.equal(got.length, 60);
    t.notOk(any);
  });

  t.test('foreign entries and lines are skipped; NaN restored; a table named meta', async (t) => {
    const key = streamKey('rowlog', 'r6', 'meta');
    t.equal(key, 'rowlog:r6:meta:rows');
    await addBlock(c, 'r6', 'meta', 0, 2, { nan: true });
    await c.call('XADD', key, '*', 'hello', 'world');
    await c.call('XADD', key, '*', 'rows', 'not json\n[1]\n{"$step":2,"$time":1,"$level":20,"x":Infinity}\n', 'n', '3', 'first', '2', 'last', '2');
    const s = connect({ redis: server.url, run: 'r6', table: 'meta', follow: false });
    const rows = collect(s);
    await new Promise((resolve) => s.once('end', resolve));
    t.same(steps(rows), [0, 1, 2]);
    t.ok(Number.isNaN(rows[0]?.loss), 'NaN restored');
    t.equal(rows[2]?.x, Infinity);
    t.same(entryRows(['hello', 'world'], 'meta'), []);
  });

  t.test('last: the last N rows, then live', async (t) => {
    for (let e = 0; e < 30; e++) await addBlock(c, 'r7', 'train', e * 10, 10);
    await c.call('XADD', streamKey('rowlog', 'r7', 'train'), '*', 'foreign', '1');
    const tail = async (last: number, page = 4) => {
      const s = connect({ redis: server.url, run: 'r7', table: 'train', last, follow: false, pageEntries: page });
      const rows = collect(s);
      await new Promise((resolve) => s.once('end', resolve));
      return steps(rows);
    };
    t.same(await tail(25), range(275, 300), 'cut inside an entry');
    t.same(await tail(20), range(280, 300), 'on an entry boundary');
    t.same(await tail(0), []);
    t.same(await tail(1000), range(0, 300), 'more than there are');
    t.same(await tail(300, 100), range(0, 300), 'exactly all, in one page');
    const s = connect({ redis: server.url, run: 'r7', table: 'train', last: 5 });
    t.teardown(() => s.destroy());
    const rows = collect(s);
    await new Promise((resolve) => s.once('live', resolve));
    await addBlock(c, 'r7', 'train', 300, 3);
    await until(() => rows.length >= 8, 'the live rows');
    t.same(steps(rows), range(295, 303));
    const empty = connect({ redis: server.url, run: 'nothing', table: 'train', last: 3, follow: false });
    t.same(collect(empty), []);
    await new Promise((resolve) => empty.once('end', resolve));
  });

  t.test('a stream id that does not exist yet: live from its first entry', async (t) => {
    const s = connect({ redis: server.url, run: 'r8', table: 'train' });
    t.teardown(() => s.destroy());
    const rows = collect(s);
    await new Promise((resolve) => s.once('live', resolve));
    await addBlock(c, 'r8', 'train', 0, 3);
    await until(() => rows.length >= 3, 'the rows');
    t.same(steps(rows), [0, 1, 2]);
  });

  t.test('a key that is not a stream fails with ERR_REDIS', async (t) => {
    await c.call('SET', streamKey('rowlog', 'r9', 'train'), 'x');
    const s = connect({ redis: server.url, run: 'r9', table: 'train' });
    s.resume();
    const err = await new Promise<Error & { code?: string }>((resolve) => s.once('error', resolve));
    t.equal(err.code, 'ERR_REDIS');
    t.match(err.message, /WRONGTYPE/);
  });

});

t.test('a wrong password: ERR_REDIS, the password never shown', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis({ password: 's3cret-pw' });
  t.teardown(() => removeRedis(server));
  const url = server.url.replace('s3cret-pw', 'wrong-pw');
  const s = connect({ redis: url, run: 'r', table: 'train' });
  s.resume();
  const err = await new Promise<Error & { code?: string }>((resolve) => s.once('error', resolve));
  t.equal(err.code, 'ERR_REDIS');
  t.notMatch(err.message, /wrong-pw|s3cret/);
  t.match(err.message, /\*\*\*/);
  // The right password reads.
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());
  await addBlock(c, 'r', 'train', 0, 2);
  const ok = connect({ redis: server.url, run: 'r', table: 'train', follow: false });
  const rows = collect(ok);
  await new Promise((resolve) => ok.once('end', resolve));
  t.same(steps(rows), [0, 1]);
});

t.test('connect({redis}): options are checked (no server needed)', async (t) => {
  const bad = (o: Record<string, unknown>, re: RegExp) => t.throws(() => connect({ redis: 'redis://127.0.0.1:1', run: 'r', table: 't', ...o } as never), { code: 'ERR_INVALID_OPTION', message: re });
  bad({ redis: 'http://x' }, /^redis:/);
  bad({ run: 'a/b' }, /^run:/);
  bad({ table: '../x' }, /^table:/);
  bad({ prefix: 'a b' }, /^prefix:/);
  bad({ since: 'yesterday' }, /^since:/);
  bad({ last: -1 }, /^last:/);
  bad({ last: 1, since: '0' }, /^last:/);
  bad({ follow: 'yes' }, /^follow:/);
  bad({ pageEntries: 0 }, /^pageEntries:/);
  t.ok(compareIds('2-0', '10-0') < 0 && compareIds('1-10', '1-9') > 0 && compareIds('3-3', '3-3') === 0);
});
