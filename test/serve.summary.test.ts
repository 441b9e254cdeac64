/**
 * `GET /api/summary?table=T` (lib/serve/summary.ts): the runs table's data from a real serve on
 * real run folders written as a logger writes them (run.json, params.json, JSONL tables).
 * params.json flattened (nested objects with '/', arrays as JSON text, no params.json → {}),
 * each numeric column's last / min / max (a NaN last value by name), a run not read yet is
 * pending and then filled (a run the page has drawn at once, from serve's table cache), a live run answered with its last figures and read again, the
 * reads of pending runs at most two at once, and the query checked (400, unknown table → no runs).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import type { SummaryBody } from '../lib/serve/protocol.js';
import { RunListing } from '../lib/serve/runs.js';
import { serve } from '../lib/serve/server.js';
import { flattenParams, readFigures, Summaries } from '../lib/serve/summary.js';
import type { Figures } from '../lib/serve/summary.js';
import { TableCache } from '../lib/serve/table-cache.js';
import { metaKey } from '../lib/format/redis-stream.js';
import { tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import { addBlock, addRun, redisClient } from './redis-blocks.js';
import { get, getJson } from './serve-client.js';
import { patient, until } from './wait.js';

/** A run folder as the logger leaves it: run.json, params.json (when given) and `table`.jsonl. */
function writeRun(dir: string, name: string, rows: Array<Record<string, unknown>>, params?: unknown, table = 'train'): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ name, startTime: '2026-01-01T00:00:00.000Z' }));
  if (params !== undefined) fs.writeFileSync(path.join(dir, 'params.json'), JSON.stringify(params));
  fs.writeFileSync(path.join(dir, `${table}.jsonl`), rows.map((r, i) => JSON.stringify({ $step: i * 10, ...r })).join('\n') + '\n');
}

async function start(t: Test, dir: string) {
  const h = await serve({ dir, onWarning: () => {} });
  t.teardown(() => h.close());
  return h;
}

/** Asks until no run is pending. */
async function settled(url: string): Promise<SummaryBody> {
  let body: SummaryBody | undefined;
  for (let i = 0; i < 400; i++) {
    body = await getJson<SummaryBody>(url);
    if (!body.runs.some((r) => r.pending)) return body;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`still pending: ${JSON.stringify(body)}`);
}

t.test('each run with its params flattened and its columns last / min / max; pending, then filled', async (t) => {
  const root = tmpdir(t);
  writeRun(path.join(root, 'alpha'), 'alpha', [], { lr: 0.1, seed: 1, optim: { name: 'adam', beta: { b1: 0.9 } }, layers: [2, 8, 2], note: null });
  // A NaN loss as the logger writes it: the bare token (Python's json does the same).
  fs.writeFileSync(path.join(root, 'alpha', 'train.jsonl'), '{"$step":0,"loss":2,"acc":0.1}\n{"$step":10,"loss":0.5,"acc":0.4}\n{"$step":20,"loss":NaN,"acc":0.3}\n');
  writeRun(path.join(root, 'beta'), 'beta', [{ loss: 3 }, { loss: 1, extra: 7 }]); // no params.json
  writeRun(path.join(root, 'gamma'), 'gamma', [{ v: 1 }], { lr: 0.2 }, 'eval'); // no train table
  writeRun(path.join(root, 'delta'), 'delta', [{ v: 2 }], undefined, 'eval');
  fs.writeFileSync(path.join(root, 'delta', 'params.json'), '{"lr":'); // being written
  const h = await start(t, root);
  const url = `${h.url}api/summary?table=train`;

  const first = await getJson<SummaryBody>(url);
  t.equal(first.table, 'train');
  // Not read yet: pending, without figures; serve's background warming may have read them already.
  t.same(first.runs.map((r) => r.id), ['alpha', 'beta'], 'the runs with the table (gamma has no train table)');
  for (const r of first.runs) if (r.pending) t.same(r.stats, {}, `${r.id} pending: no figures yet`);
  t.same(first.runs[0]?.params, { lr: 0.1, seed: 1, 'optim/name': 'adam', 'optim/beta/b1': 0.9, layers: '[2,8,2]', note: null }, 'params are there at once');

  const body = await settled(url);
  t.same(body.columns, ['acc', 'extra', 'loss'], 'the sorted union of the numeric columns');
  t.same(body.params, ['layers', 'lr', 'note', 'optim/beta/b1', 'optim/name', 'seed'], 'the sorted union of the param keys');
  const alpha = body.runs.find((r) => r.id === 'alpha');
  t.equal(alpha?.name, 'alpha');
  t.equal(alpha?.rows, 3);
  t.same(alpha?.stats.loss, { n: 2, nonFinite: 1, last: 'NaN', lastStep: 20, min: 0.5, max: 2 }, 'a NaN last value by name; min/max of the finite ones');
  t.same(alpha?.stats.acc, { n: 3, nonFinite: 0, last: 0.3, lastStep: 20, min: 0.1, max: 0.4 });
  const beta = body.runs.find((r) => r.id === 'beta');
  t.same(beta?.params, {}, 'no params.json: {}');
  t.same(beta?.stats.extra, { n: 1, nonFinite: 0, last: 7, lastStep: 10, min: 7, max: 7 });
  t.equal(beta?.rows, 2);

  const evalBody = await settled(`${h.url}api/summary?table=eval`);
  t.same(evalBody.runs.map((r) => [r.id, r.params]), [['delta', {}], ['gamma', { lr: 0.2 }]], 'a params.json that is not JSON (yet): {}');
  t.same(evalBody.params, ['lr']);
});

t.test('a run the page has drawn: its figures from the cache at once, no second read', async (t) => {
  const root = tmpdir(t);
  writeRun(path.join(root, 'drawn'), 'drawn', [{ loss: 3 }, { loss: 1 }, { loss: 2 }], { lr: 1 });
  writeRun(path.join(root, 'not'), 'not', [{ loss: 5 }]);
  const h = await start(t, root);
  await getJson(`${h.url}api/rows?run=drawn&table=train`); // what the page asks for a chart
  const body = await getJson<SummaryBody>(`${h.url}api/summary?table=train`);
  // `not` may be pending or already read by serve's background warming (lib/serve/table-warm.ts): either is right.
  t.same(body.runs.map((r) => r.id), ['drawn', 'not']);
  t.equal(body.runs[0]?.pending, false, 'the drawn run: not pending');
  t.same(body.runs[0]?.stats.loss, { n: 3, nonFinite: 0, last: 2, lastStep: 20, min: 1, max: 3 });
  t.equal(body.runs[0]?.rows, 3);
  let later = body;
  for (const end = Date.now() + patient(10_000); later.runs[1]?.pending !== false && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 20));
    later = await getJson<SummaryBody>(`${h.url}api/summary?table=train`);
  }
  t.same(later.runs[1]?.stats.loss, { n: 1, nonFinite: 0, last: 5, lastStep: 0, min: 5, max: 5 }, 'the other run: its figures once read');
});

t.test('the query: a bad or missing table name is a 400, an unknown table has no runs', async (t) => {
  const root = tmpdir(t);
  writeRun(path.join(root, 'a'), 'a', [{ x: 1 }]);
  const h = await start(t, root);
  for (const q of ['table=..%2Fx', 'table=', 'table=a%20b', '']) {
    const r = await get(`${h.url}api/summary?${q}`);
    t.equal(r.status, 400, `?${q}: 400 (${r.body.trim()})`);
  }
  const none = await getJson<SummaryBody>(`${h.url}api/summary?table=nothing`);
  t.same(none, { table: 'nothing', columns: [], params: [], runs: [] });
});

t.test('a run logged to after its read: the last figures at once, read again in the background', async (t) => {
  const root = tmpdir(t);
  const dir = path.join(root, 'live');
  writeRun(dir, 'live', [{ loss: 1 }, { loss: 0.5 }]);
  const listing = new RunListing(root, undefined);
  const s = new Summaries(listing, new TableCache({ maxBuckets: 64 }), { refreshMs: 0 });
  t.teardown(() => s.close());
  await until(() => s.body('train').runs[0]?.pending === false, 'first read', 5000, 20);
  t.same(s.body('train').runs[0]?.stats.loss?.last, 0.5);
  fs.appendFileSync(path.join(dir, 'train.jsonl'), '{"$step":20,"loss":0.25}\n');
  const after = s.body('train').runs[0];
  t.equal(after?.pending, false, 'grown: not pending, the figures of the last read');
  t.equal(after?.rows, 2);
  await until(() => s.body('train').runs[0]?.rows === 3, 'read again', 5000, 20);
  t.same(s.body('train').runs[0]?.stats.loss, { n: 3, nonFinite: 0, last: 0.25, lastStep: 20, min: 0.25, max: 1 });
});

t.test('pending runs are read at most two at once, the rest queued; a table that cannot be read is not pending forever', async (t) => {
  const root = tmpdir(t);
  for (let r = 0; r < 7; r++) writeRun(path.join(root, `r${r}`), `r${r}`, Array.from({ length: 50 }, (_, i) => ({ v: r * 100 + i })), { seed: r });
  // A table whose read fails as a disk's EIO would (readLog skips bad lines and a cut gzip
  // member, so only an I/O error fails a read, and one cannot be provoked on a real disk here).
  writeRun(path.join(root, 'broken'), 'broken', [{ v: 1 }]);
  let now = 0;
  let most = 0;
  let reads = 0;
  const read = (file: string): Promise<Figures> => {
    reads++;
    now++;
    most = Math.max(most, now);
    const fig = file.includes(`${path.sep}broken${path.sep}`) ? Promise.reject(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })) : readFigures(file);
    return fig.finally(() => now--);
  };
  const errors: string[] = [];
  const cache = new TableCache({ maxBuckets: 64 });
  const s = new Summaries(new RunListing(root, undefined), cache, { read, refreshMs: 0, onError: (f, e) => errors.push(`${path.basename(path.dirname(f))}: ${e.message}`) });
  t.teardown(() => s.close());
  const first = s.body('train');
  t.equal(first.runs.length, 8);
  t.ok(first.runs.every((r) => r.pending), 'all pending at first');
  t.equal(now, 2, 'two reads under way');
  await until(() => !s.body('train').runs.some((r) => r.pending), 'all read', 10_000, 20);
  t.equal(most, 2, 'never more than two at once');
  const body = s.body('train');
  t.same(body.runs.filter((r) => r.id !== 'broken').map((r) => r.stats.v?.last), [49, 149, 249, 349, 449, 549, 649]);
  const broken = body.runs.find((r) => r.id === 'broken');
  t.same(broken?.stats, {}, 'the broken table: no figures');
  t.equal(cache.peek(path.join(root, 'r0', 'train.jsonl')), undefined, 'read for the figures alone, not into the cache');
  t.equal(errors.length, 1, 'its error said once');
  t.match(errors[0], /^broken: EIO/);
  t.equal(s.body('train').runs.find((r) => r.id === 'broken')?.pending, false, 'not read again while the file is unchanged');
  t.equal(errors.length, 1);
  t.equal(reads, 8, 'each table read once');
  s.body('train');
  await new Promise((r) => setImmediate(r));
  t.equal(reads, 8, 'asked again: unchanged files are not read again');
});

t.test('flattenParams, runs without a folder, and the options', async (t) => {
  t.same(flattenParams({ a: { b: { c: 1 } }, s: 'x', t: true, arr: [{ k: 1 }], e: {} }), { 'a/b/c': 1, s: 'x', t: true, arr: '[{"k":1}]' });
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 10; i++) deep = { d: deep };
  const flat = flattenParams(deep);
  t.same(Object.keys(flat), ['d/d/d/d/d/d/d/d'], 'deeper than 8 levels: JSON text');
  t.match(flat['d/d/d/d/d/d/d/d'], /^\{"d":\{"d":\{"leaf":1\}\}\}$/);
  t.equal(Object.keys(flattenParams(Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`k${i}`, i])))).length, 1000, 'at most 1000 keys');
  const proto = flattenParams(JSON.parse('{"__proto__": {"polluted": 1}, "lr": 0.1}') as Record<string, unknown>);
  t.same(Object.entries(proto), [['__proto__/polluted', 1], ['lr', 0.1]], 'a __proto__ key of params.json is a parameter, not a prototype');
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing polluted');

  // A Redis or connect run: its params by id, no figures, never pending.
  const listing = {
    root: '/nowhere',
    runs: () => [{ id: 'redis:r1', name: 'redis:r1', live: false, source: 'redis://x', tables: [{ name: 'train', file: '', format: 'jsonl', size: 0, mtime: 0 }] }],
  } as unknown as RunListing;
  const s = new Summaries(listing, new TableCache({ maxBuckets: 64 }), { paramsOf: (id) => (id === 'redis:r1' ? { optim: { lr: 1 } } : undefined) });
  t.same(s.body('train').runs, [{ id: 'redis:r1', name: 'redis:r1', params: { 'optim/lr': 1 }, rows: 0, stats: {}, pending: false }]);
  const bare = new Summaries(listing, new TableCache({ maxBuckets: 64 }));
  t.same(bare.body('train').runs[0]?.params, {});
  // A folder run whose table went between the listing and the lookup: left out.
  const gone = {
    root: '/nowhere',
    runs: () => [{ id: 'old', name: 'old', live: false, tables: [{ name: 'train', file: 'train.jsonl', format: 'jsonl', size: 1, mtime: 0 }] }],
    resolve: () => {
      throw new Error('no table "train" in run "old"');
    },
  } as unknown as RunListing;
  t.same(new Summaries(gone, new TableCache({ maxBuckets: 64 })).body('train').runs, []);
  t.throws(() => new Summaries(listing, new TableCache({ maxBuckets: 64 }), { concurrency: 0 }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => new Summaries(listing, new TableCache({ maxBuckets: 64 }), { refreshMs: -1 }), { code: 'ERR_INVALID_OPTION' });
});

t.test('a Redis run: its params from the meta hash, no figures', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());
  await addRun(c, 'rr', ['train']);
  await addBlock(c, 'rr', 'train', 0, 5);
  await c.call('HSET', metaKey('rowlog', 'rr'), 'params', JSON.stringify({ optim: { lr: 0.5 }, seed: 3 }));
  await addRun(c, 'plain', ['train']);
  await c.call('HSET', metaKey('rowlog', 'plain'), 'params', '[1,2]'); // not an object: none
  const root = tmpdir(t);
  const h = await serve({ dir: root, redis: server.url, refreshMs: 50, onWarning: () => {} });
  t.teardown(() => h.close());
  let body = await getJson<SummaryBody>(`${h.url}api/summary?table=train`);
  for (let i = 0; i < 400 && body.runs.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 25)); // the listing polls Redis every 50 ms
    body = await getJson<SummaryBody>(`${h.url}api/summary?table=train`);
  }
  t.same(body.runs, [
    { id: 'redis:plain', name: 'redis:plain', params: {}, rows: 0, stats: {}, pending: false },
    { id: 'redis:rr', name: 'redis:rr', params: { 'optim/lr': 0.5, seed: 3 }, rows: 0, stats: {}, pending: false },
  ]);
});
