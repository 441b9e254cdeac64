/**
 * `serve({redis})`'s close (review of issue 14 point 3; docs/DESIGN.md §6): a page that opened a
 * Redis run while Redis was away leaves a reader waiting for Redis; `handle.close()` must end it
 * too, so a program that serves and then closes exits (the readers' redial timers hold the loop).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startChild } from './child.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import { addBlock, addRun, redisClient } from './redis-blocks.js';
import { eventStream, getJson } from './serve-client.js';
import { eventually, until } from './wait.js';

const TS_ENV = { NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...process.execArgv].join(' ').trim() };
const SERVER = path.join(ROOT, 'lib', 'serve', 'server.js');
const SCRIPT = `
import { serve } from ${JSON.stringify(SERVER)};
const [dir, redis] = process.argv.slice(2);
const h = await serve({ dir, port: 0, redis });
console.log('url ' + h.url);
process.stdin.once('data', async () => {
  process.stdin.destroy();
  await h.close();
  console.log('closed');
});
`;

t.test('serve({redis}).close() ends the readers of pages opened while Redis is away', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());
  await addRun(c, 'r1', ['train']);
  await addBlock(c, 'r1', 'train', 0, 10);

  const dir = tmpdir(t);
  const script = path.join(dir, 'serve.mts');
  fs.writeFileSync(script, SCRIPT);
  const child = startChild(script, [path.join(dir, 'runs'), server.url], TS_ENV);
  t.teardown(() => child.proc.kill('SIGKILL'));
  const url = (await child.line(/^url /)).slice(4);
  let listed = false;
  let asking = false;
  await until(() => {
    if (!asking && !listed) {
      asking = true;
      getJson<{ runs: Array<{ id: string }> }>(`${url}api/runs`)
        .then((l) => (listed = l.runs.some((r) => r.id === 'redis:r1')), () => undefined)
        .finally(() => (asking = false));
    }
    return listed;
  }, 'redis:r1 listed');

  await server.stop();
  const page = eventStream(t, `${url}api/events?run=redis:r1&table=train`);
  await page.next('runs'); // sent once the run's snapshot reader has started (it waits for Redis)
  page.close();
  child.proc.stdin?.write('close\n');
  await child.line(/^closed$/);
  let end: unknown;
  void child.exited.then((e) => (end = e));
  t.ok(await eventually(() => end !== undefined, 5000), 'the program exits after close()');
  t.same(end, { code: 0, signal: null }, child.stderr());
});
