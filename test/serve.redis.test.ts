/**
 * `serve({redis})` / `rowlog serve --redis URL` against a real redis-server (issue 14 point 3):
 * the runs in Redis listed beside the folder's as `redis:<run>` (names from Redis checked, the
 * password never shown), a table's snapshot read from its stream, new rows arriving as `rows`
 * events exactly once, bad names refused, option checks, and the CLI.
 */
import readline from 'node:readline';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../lib/index.js';
import { metaKey, runsKey, TABLE_FIELD } from '../lib/format/redis-stream.js';
import { serve } from '../lib/serve/server.js';
import { spawnCli } from './cli.js';
import { tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import { addBlock, addRun, redisClient } from './redis-blocks.js';
import { eventStream, get, getJson } from './serve-client.js';
import { until } from './wait.js';

interface Block {
  columns: string[];
  points: Array<{ i: number[]; x: number[]; y: Array<number | string> }>;
}
interface Listing {
  runs: Array<{ id: string; name: string; live: boolean; source?: string; tables: Array<{ name: string; mtime: number }> }>;
}
/** A column's x (here `$step`) in a block. */
const xs = (b: Block, name: string) => b.points[b.columns.indexOf(name)]?.x ?? [];

/** Polls `/api/runs` (one request at a time) until `ok` holds of the listing. */
async function listingWhen(url: string, ok: (l: Listing) => boolean, what: string): Promise<Listing> {
  let last: Listing | undefined;
  let inFlight = false;
  await until(() => {
    if (last !== undefined && ok(last)) return true;
    if (!inFlight) {
      inFlight = true;
      getJson<Listing>(`${url}api/runs`)
        .then((l) => (last = l), () => undefined)
        .finally(() => (inFlight = false));
    }
    return false;
  }, what);
  return last as Listing;
}

t.test('serve({redis})', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis({ password: 'hush' });
  t.teardown(() => removeRedis(server));
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());

  const dir = tmpdir(t);
  const log = createLogger({ dir: path.join(dir, 'local'), console: false, exitHooks: false });
  log.row('train', { loss: 1 });
  await log.close();

  await addRun(c, 'r1', ['train', 'grad/layer1'], { info: { name: 'r1' } });
  for (let e = 0; e < 30; e++) await addBlock(c, 'r1', 'train', e * 10, 10);
  await addBlock(c, 'r1', 'grad/layer1', 0, 4);
  // What Redis says is not trusted: bad run names and tables are not listed.
  await c.call('SADD', runsKey('rowlog'), '../evil', 'a:b', '');
  await c.call('HSET', metaKey('rowlog', 'r1'), `${TABLE_FIELD}../x`, 'rowlog:r1:../x');

  const warnings: string[] = [];
  const h = await serve({ dir, redis: server.url, onWarning: (m) => warnings.push(m), maxBuckets: 16 });
  t.teardown(() => h.close());

  const listing = await listingWhen(h.url, (l) => l.runs.some((r) => r.id === 'redis:r1'), 'the Redis run to be listed');
  t.same(
    listing.runs.map((r) => r.id),
    ['local', 'redis:r1'],
    'the folder run and the Redis run; bad names left out',
  );
  const r1 = listing.runs[1];
  t.equal(r1?.name, 'redis:r1');
  t.equal(r1?.live, false);
  t.match(r1?.source, /^redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ rowlog:r1:\*$/, 'where it lives, without the password');
  t.same(
    r1?.tables.map((x) => x.name),
    ['grad/layer1', 'train'],
  );
  t.ok((r1?.tables[1]?.mtime ?? 0) > Date.now() - 60_000, "a table's mtime is its last entry's time");
  t.notMatch(JSON.stringify(listing), /hush/);

  const snap = await getJson<{ total: number; bucket: number; format: string; block: Block }>(`${h.url}api/rows?run=redis:r1&table=train`);
  t.equal(snap.total, 300);
  t.equal(snap.bucket, 32, 'under the M4 rule as a file is: ≤ 16 buckets');
  t.equal(snap.format, 'live');
  t.same(xs(snap.block, 'loss').slice(0, 2), [0, 31], 'a falling loss: each bucket its first (max) and last (min) row');
  t.equal(xs(snap.block, 'loss').at(-1), 299, 'the last row');
  const zoom = await getJson<{ bucket: number; block: Block }>(`${h.url}api/rows?run=redis:r1&table=train&from=100&to=109`);
  t.same(xs(zoom.block, 'loss'), [100, 101, 102, 103, 104, 105, 106, 107, 108, 109], 'a zoom: the rows of its range');
  const grad = await getJson<{ total: number }>(`${h.url}api/rows?run=redis:r1&table=grad/layer1`);
  t.equal(grad.total, 4, 'a table with /');

  t.equal((await get(`${h.url}api/rows?run=redis:..&table=train`)).status, 400, 'a bad run name');
  t.equal((await get(`${h.url}api/rows?run=redis:nope&table=train`)).status, 404, 'a run not in Redis');
  t.equal((await get(`${h.url}api/rows?run=redis:r1&table=nope`)).status, 404);

  // The page's event stream: the snapshot, then rows as the producer adds them, exactly once.
  const es = eventStream(t, `${h.url}api/events?run=redis:r1&table=train`);
  const first = await es.next<{ total: number }>('snapshot');
  t.equal(first.total, 300);
  await addBlock(c, 'r1', 'train', 300, 5);
  const rows = await es.next<{ total: number; block: Block }>('rows');
  t.equal(rows.total, 305, 'the new rows are counted once');
  t.same(rows.block.points[0]?.i.at(-1), 304);
  t.same(xs(rows.block, 'loss').at(-1), 304);
  await addBlock(c, 'r1', 'train', 305, 3);
  const more = await es.next<{ total: number }>('rows', (r) => r.total >= 308);
  t.equal(more.total, 308);

  // A new run in Redis shows up in the open page's listing.
  await addRun(c, 'r2', ['train']);
  await c.call('HSET', metaKey('rowlog', 'r2'), 'run', 'not json'); // named after its key then
  await addBlock(c, 'r2', 'train', 0, 1);
  const now = await es.next<Listing>('runs', (l) => l.runs.some((r) => r.id === 'redis:r2'));
  t.equal(now.runs.find((r) => r.id === 'redis:r2')?.name, 'redis:r2');
  es.close();
  t.same(warnings, [], 'no warning');
});

t.test('serve({redis}): options (no server needed)', async (t) => {
  const dir = tmpdir(t);
  await t.rejects(serve({ dir, redis: 'http://x' }), { code: 'ERR_INVALID_OPTION', message: /^redis:/ });
  await t.rejects(serve({ dir, redisPrefix: 'p' }), { code: 'ERR_INVALID_OPTION', message: /^redisPrefix: is only used with redis/ });
  await t.rejects(serve({ dir, redis: 'redis://127.0.0.1:1', redisPrefix: 'a b' }), { code: 'ERR_INVALID_OPTION', message: /^redisPrefix:/ });
});

t.test('serve({redis}): Redis away', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const dir = tmpdir(t);
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());
  await addRun(c, 'x', ['train'], { prefix: 'team' });
  await addBlock(c, 'x', 'train', 0, 2, { prefix: 'team' });
  const warnings: string[] = [];
  const h = await serve({ dir, redis: server.url, redisPrefix: 'team', onWarning: (m) => warnings.push(m) });
  t.teardown(() => h.close());
  const listed = async () => (await getJson<Listing>(`${h.url}api/runs`)).runs.map((r) => r.id);
  const first = await listingWhen(h.url, (l) => l.runs.length > 0, 'the run under its prefix');
  t.same(first.runs.map((r) => r.id), ['redis:x']);
  await server.stop('SIGKILL');
  await until(() => warnings.length > 0, 'the warning');
  t.match(warnings[0], /^redis:\/\/127\.0\.0\.1:\d+: .*its runs are listed again when it answers/);
  t.same(await listed(), ['redis:x'], 'the last listing is kept while Redis is away');
});

t.test('rowlog serve --redis URL', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());
  await addRun(c, 'cli', ['train']);
  await addBlock(c, 'cli', 'train', 0, 3);
  const child = spawnCli(['serve', tmpdir(t), '--port', '0', '--redis', server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const url = await new Promise<string>((resolve) => readline.createInterface({ input: child.stdout }).once('line', (l) => resolve(l.replace(/^rowlog serve: /, ''))));
  const l = await listingWhen(url, (x) => x.runs.length > 0, 'the Redis run');
  t.same(l.runs.map((r) => r.id), ['redis:cli']);
  child.kill('SIGTERM');
  t.equal(await new Promise((resolve) => child.once('exit', resolve)), 0);
  // The URL from ROWLOG_REDIS, as collect and the trainers take it (no password on the command line).
  const fromEnv = spawnCli(['serve', tmpdir(t), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ROWLOG_REDIS: server.url } });
  t.teardown(() => fromEnv.kill('SIGKILL'));
  const envUrl = await new Promise<string>((resolve) => readline.createInterface({ input: fromEnv.stdout }).once('line', (l) => resolve(l.replace(/^rowlog serve: /, ''))));
  t.same((await listingWhen(envUrl, (x) => x.runs.length > 0, 'the Redis run, from ROWLOG_REDIS')).runs.map((r) => r.id), ['redis:cli'], 'ROWLOG_REDIS names the Redis');
  fromEnv.kill('SIGTERM');
  t.equal(await new Promise((resolve) => fromEnv.once('exit', resolve)), 0);
  const bad = spawnCli(['serve', '--redis', 'redis://:secret@[bad', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  t.equal(await new Promise((resolve) => bad.once('exit', resolve)), 2, 'a bad URL is a usage error');
  t.match(err, /^rowlog: serve: redis: must be a redis:\/\/ or rediss:\/\/ URL/);
  t.notMatch(err, /secret/);
});
