/**
 * redisSink when Redis refuses the run's records rather than its rows (docs/DESIGN.md §4, "Redis
 * Streams"; review of issue 14 point 1): a meta write refused for now (OOM) is retried with the
 * doubling delay, not at once in a loop, and `flush()` does not wait for it; a meta key Redis can
 * never write (not a hash / not a set) is warned and given up, not retried forever.
 */
import t from 'tap';
import { redisSink } from '../sinks/redis.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import { until } from './wait.js';

/** How many times Redis got `cmd`, run or refused (INFO commandstats: `calls` + `rejected_calls`). */
function calls(cli: (...a: string[]) => string, cmd: string): number {
  const line = new RegExp(`cmdstat_${cmd}:([^\\r\\n]*)`).exec(cli('INFO', 'commandstats'))?.[1] ?? '';
  return Number(/\bcalls=(\d+)/.exec(line)?.[1] ?? 0) + Number(/rejected_calls=(\d+)/.exec(line)?.[1] ?? 0);
}

t.test('redisSink: refused meta writes', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));

  t.test('a status refused for now (OOM): flush() resolves, retried with the delay, then written', async (t) => {
    const sink = redisSink({ url: server.url, run: 'oommeta' });
    const seen: RowlogWarning[] = [];
    sink.on('warning', (w: RowlogWarning) => seen.push(w));
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 0 } });
    await sink.flush();
    server.cli('CONFIG', 'SET', 'maxmemory', '1');
    t.teardown(() => server.cli('CONFIG', 'SET', 'maxmemory', '0'));
    const before = calls(server.cli, 'hset');
    sink.setStatus({ $state: 'running', epoch: 1 });
    let flushed = false;
    void sink.flush().then(() => (flushed = true));
    await until(() => flushed, 'flush() to resolve while Redis refuses the status');
    await until(() => seen.some((w) => w.code === 'W_REDIS_ERROR'), 'a warning');
    t.match(seen, [{ code: 'W_REDIS_ERROR', message: /refuses writes for now \(OOM/ }], 'warned once');
    // The sink retries with 0.1 s doubling to 2 s: in any stretch it cannot have tried more than a
    // few times. Measure over the time until the 5th retry is due at the latest (0.1+0.2+0.4+0.8+1.6 s).
    await until(() => calls(server.cli, 'hset') - before >= 3, 'a few retries', 5000, 50);
    const tries = calls(server.cli, 'hset') - before;
    t.ok(tries < 50, `the status was tried ${tries} times, not in a loop`);
    server.cli('CONFIG', 'SET', 'maxmemory', '0');
    await until(() => server.cli('HGET', 'rowlog:oommeta:meta', 'status').includes('"epoch":1'), 'the status, once Redis takes it');
    await new Promise<void>((resolve) => sink.end(resolve));
  });

  t.test('Redis restarted without its data: the run is claimed again (meta id) with the rest of its records', async (t) => {
    const sink = redisSink({ url: server.url, run: 'again' });
    sink.setRun({ id: 'run-id-1', name: 'again' });
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 0 } });
    await sink.flush();
    t.equal(server.cli('HGET', 'rowlog:again:meta', 'id').trim(), 'run-id-1', 'claimed');
    await server.stop('SIGKILL');
    await server.start(); // no AOF, no RDB: empty
    sink.write({ table: 'main', level: 20, step: 1, time: 1, data: { x: 1 } });
    await until(() => server.cli('XLEN', 'rowlog:again:main').trim() === '1', 'the next block, after the restart');
    await sink.flush();
    t.equal(server.cli('HGET', 'rowlog:again:meta', 'id').trim(), 'run-id-1', 'the claim is back');
    t.equal(server.cli('SISMEMBER', 'rowlog:runs', 'again').trim(), '1', 'and the run in rowlog:runs');
    await new Promise<void>((resolve) => sink.end(resolve));
  });

  t.test('a Redis that does not answer (SIGSTOP: the socket stays open): flush() gives up after closeTimeoutMs, nothing lost', async (t) => {
    const sink = redisSink({ url: server.url, run: 'hung', closeTimeoutMs: 300 });
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 0 } });
    await sink.flush();
    process.kill(server.pid, 'SIGSTOP');
    let stopped = true;
    t.teardown(() => {
      if (stopped) process.kill(server.pid, 'SIGCONT');
    });
    sink.write({ table: 'main', level: 20, step: 1, time: 1, data: { x: 1 } });
    let flushed = false;
    void sink.flush().then(() => (flushed = true));
    await until(() => flushed, 'flush() to give up on a Redis that does not answer');
    process.kill(server.pid, 'SIGCONT');
    stopped = false;
    await until(() => server.cli('XLEN', 'rowlog:hung:main').trim() === '2', 'the block, once Redis answers');
    sink.write({ table: 'main', level: 20, step: 2, time: 2, data: { x: 2 } });
    await until(() => server.cli('XLEN', 'rowlog:hung:main').trim() === '3', 'the next block');
    const steps = server.cli('XRANGE', 'rowlog:hung:main', '-', '+').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).$step as number);
    t.same(steps, [0, 1, 2], 'every row once, in order');
    await new Promise<void>((resolve) => sink.end(resolve));
  });

  t.test('rowlog:runs that is not a set: warned, the rows still go, flush() resolves, no endless rounds', async (t) => {
    server.cli('SET', 'wt:runs', 'not a set');
    const sink = redisSink({ url: server.url, run: 'r', prefix: 'wt' });
    const seen: RowlogWarning[] = [];
    sink.on('warning', (w: RowlogWarning) => seen.push(w));
    const before = calls(server.cli, 'sadd');
    sink.write({ table: 'main', level: 20, step: 0, time: 0, data: { x: 0 } });
    let flushed = false;
    void sink.flush().then(() => (flushed = true));
    await until(() => flushed, 'flush() to resolve');
    t.equal(server.cli('XLEN', 'wt:r:main').trim(), '1', 'the row is in its stream');
    t.match(seen, [{ code: 'W_REDIS_ERROR', message: /refuses to record the run at wt:runs \(WRONGTYPE/ }], 'one warning');
    t.equal(seen.length, 1, 'only one');
    const a = calls(server.cli, 'sadd') - before;
    // Another flush must not make it loop either.
    sink.write({ table: 'main', level: 20, step: 1, time: 1, data: { x: 1 } });
    await sink.flush();
    t.equal(server.cli('XLEN', 'wt:r:main').trim(), '2');
    const b = calls(server.cli, 'sadd') - before;
    t.ok(a < 20 && b < 20, `SADD tried ${a}, then ${b} times in all`);
    await new Promise<void>((resolve) => sink.end(resolve));
  });
});
