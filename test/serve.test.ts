/**
 * `rowlog serve`: the HTTP API a page (or a script) sees. The run listing (formats preferred,
 * nested tables, DIR itself a run, a folder that appears later), a table's rows under the M4 rule (no extreme lost; zooms;
 * x-axes), server-sent events delivering a row another process appends
 * (exactly once) and closing the file when the page goes, CSV re-read on change, rows from a
 * live socket sink (`connect`), paths that try to leave DIR, option checks, and the CLI: one URL
 * line on stdout, stopped by SIGTERM/SIGINT, bad port and insecure bind are usage errors.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import zlib from 'node:zlib';
import t from 'tap';
import type { Test } from 'tap';
import { createLogger, csvSink, jsonlSink, socketSink } from '../lib/index.js';
import type { Entry, FlatRow } from '../lib/index.js';
import { serve } from '../lib/serve/server.js';
import type { ServeHandle, ServeOptions } from '../lib/serve/server.js';
import { runCli, spawnCli } from './cli.js';
import { ROOT, tmpdir } from './helpers.js';
import { listenLocal } from './ports.js';
import { eventStream, get, getJson } from './serve-client.js';
import { patient, until as waitUntil } from './wait.js';

const WRITER = path.join(ROOT, 'test', 'fixtures', 'serve-writer.mjs');

interface Points {
  i: number[];
  x: number[];
  y: Array<number | string>;
}
interface Block {
  columns: string[];
  points: Points[];
}
interface Snapshot {
  run: string;
  table: string;
  format: string;
  total: number;
  x: string;
  bucket: number;
  maxBuckets: number;
  followed: boolean;
  block: Block;
}
interface Listing {
  dir: string;
  runs: Array<{ id: string; name: string; live: boolean; tables: Array<{ name: string; file: string; format: string }> }>;
}

/** A column's points of a block by name. */
const pts = (b: Block, name: string): Points => b.points[b.columns.indexOf(name)] ?? { i: [], x: [], y: [] };
/** A column's values (y), and their x (here: `$step`). */
const col = (b: Block, name: string) => pts(b, name).y;
const xs = (b: Block, name: string) => pts(b, name).x;


async function start(t: Test, opts: ServeOptions): Promise<ServeHandle> {
  const h = await serve({ onWarning: () => {}, ...opts });
  t.teardown(() => h.close());
  return h;
}

/** A run folder logged with rowlog's default sinks (train.jsonl.gz + train.csv, …). */
async function logRun(dir: string, rows: number, table = 'train'): Promise<void> {
  const log = createLogger({ dir, console: false, exitHooks: false });
  for (let i = 0; i < rows; i++) log.row(table, { loss: 1 / (i + 1), acc: i / rows, note: 'x', w: new Float32Array([i, i + 1]) }, { step: i * 10 });
  await log.close();
}

/** Runs the fixture writer (a separate process using the built package) and waits for it. */
function writer(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`serve-writer exited with ${code}`))));
  });
}

/** Open file descriptors of this process that point at `file`. */
function fdsOn(file: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

const until = (ok: () => boolean, what: string, ms = 5000): Promise<void> => waitUntil(ok, what, ms, 50);

t.test('GET /api/runs lists the run folders and their tables, each from its preferred file', async (t) => {
  const root = tmpdir(t);
  await logRun(path.join(root, 'b-run'), 20);
  // jsonl only, with a nested table and artifacts that are not tables
  const a = path.join(root, 'a-run');
  const sink = jsonlSink({ dir: a });
  const e = (table: string, step: number): Entry<FlatRow> => ({ table, level: 20, step, time: 1000 + step, data: { v: step } });
  for (let i = 0; i < 5; i++) sink.write(e('eval', i)), sink.write(e('grad/layer1', i));
  await new Promise<void>((resolve) => sink.end(resolve));
  fs.mkdirSync(path.join(a, 'artifacts'));
  fs.writeFileSync(path.join(a, 'artifacts', 'model.jsonl'), '{"a":1}\n');
  fs.writeFileSync(path.join(a, 'notes.txt'), 'not a table');
  fs.writeFileSync(path.join(a, '.jsonl'), '{"a":1}\n'); // no name
  fs.writeFileSync(path.join(a, 'bad name.jsonl'), '{"a":1}\n'); // not a table name
  fs.mkdirSync(path.join(a, 'folder.jsonl')); // not a file
  fs.writeFileSync(path.join(a, 'eval.csv'), '$step,v\n0,0\n'); // .jsonl is preferred
  // csv only
  const c = path.join(root, 'c-run');
  const csv = csvSink({ dir: c });
  csv.write(e('metrics', 1));
  await new Promise<void>((resolve) => csv.end(resolve));
  // not runs: an empty folder, a hidden one, a symlink to a run
  fs.mkdirSync(path.join(root, 'empty'));
  fs.mkdirSync(path.join(root, '.hidden'));
  fs.writeFileSync(path.join(root, '.hidden', 't.jsonl'), '{"a":1}\n');
  fs.symlinkSync(a, path.join(root, 'link-run'));
  // a run.json being written: the run is listed under its folder's name
  fs.mkdirSync(path.join(root, 'd-run'));
  fs.writeFileSync(path.join(root, 'd-run', 'run.json'), '{"name":');

  const h = await start(t, { dir: root });
  t.match(h.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const body = await getJson<Listing>(`${h.url}api/runs`);
  t.equal(body.dir, root);
  t.same(
    body.runs.map((r) => [r.id, r.tables.map((x) => `${x.name}=${x.file}`)]),
    [
      ['a-run', ['eval=eval.jsonl', 'grad/layer1=grad/layer1.jsonl']],
      ['b-run', ['train=train.jsonl.gz']],
      ['c-run', ['metrics=metrics.csv']],
      ['d-run', []],
    ],
  );
  t.equal(body.runs[1]?.name, 'b-run', "run.json's name");
  t.equal(body.runs[0]?.live, false);
});

t.test('DIR may itself be a run folder (run ".") and may not exist yet', async (t) => {
  const root = tmpdir(t);
  await logRun(root, 3);
  const h = await start(t, { dir: root });
  const body = await getJson<Listing>(`${h.url}api/runs`);
  t.same(body.runs.map((r) => r.id), ['.']);
  const snap = await getJson<Snapshot>(`${h.url}api/rows?run=.&table=train`);
  t.equal(snap.total, 3);
  // In a run folder, a sub-folder with its own run.json is a run; one without holds tables.
  await logRun(path.join(root, 'sub'), 2);
  await logRun(root, 1, 'grad/layer1');
  t.same(
    (await getJson<Listing>(`${h.url}api/runs`)).runs.map((r) => [r.id, r.tables.map((x) => x.name)]),
    [
      ['.', ['grad/layer1', 'train']],
      ['sub', ['train']],
    ],
  );

  const later = path.join(tmpdir(t), 'runs');
  const h2 = await start(t, { dir: later, refreshMs: 50 });
  t.same((await getJson<Listing>(`${h2.url}api/runs`)).runs, [], 'nothing yet');
  const es = eventStream(t, `${h2.url}api/events`);
  await es.next('runs');
  await logRun(path.join(later, 'r1'), 2);
  const runs = await es.next<Listing>('runs', (d) => d.runs.length === 1);
  t.equal(runs.runs[0]?.id, 'r1', 'a run created later is pushed to open pages');
  es.close();
  await new Promise((r) => setTimeout(r, 200)); // the listing is no longer read with no page open
});

t.test('GET /api/rows: numeric columns against $step; NaN and ±Infinity by name; a missing cell is no point', async (t) => {
  const root = tmpdir(t);
  const r = path.join(root, 'r');
  fs.mkdirSync(r);
  fs.writeFileSync(
    path.join(r, 't.jsonl'),
    [
      '{"$step":0,"$time":1,"$level":20,"a":1,"s":"text","b":true}',
      '{"$step":5,"$time":2,"$level":20,"a":NaN,"c":-Infinity}',
      'not json',
      '{"$time":3,"a":3}',
      '',
    ].join('\n'),
  );
  const h = await start(t, { dir: root });
  const snap = await getJson<Snapshot & { startTime: number }>(`${h.url}api/rows?run=r&table=t`);
  t.match(snap, { run: 'r', table: 't', format: 'jsonl', total: 3, x: '$step', bucket: 1, maxBuckets: 2048, followed: true, startTime: 1 });
  t.same(snap.block.columns, ['a', 'c'], 'strings and booleans are not plotted, nor $-columns');
  t.same(pts(snap.block, 'a'), { i: [0, 1, 2], x: [0, 5, 2], y: [1, 'NaN', 3] }, 'a row without $step is placed at its index');
  t.same(pts(snap.block, 'c'), { i: [1], x: [5], y: ['-Infinity'] });
  const byTime = await getJson<Snapshot>(`${h.url}api/rows?run=r&table=t&x=$time`);
  t.same(pts(byTime.block, 'a').x, [1, 2, 3], 'x=$time: each point at its $time');
  const byA = await getJson<Snapshot>(`${h.url}api/rows?run=r&table=t&x=a`);
  t.same(pts(byA.block, 'a'), { i: [0, 2], x: [1, 3], y: [1, 3] }, 'x=a column: rows without a finite a are left out');
  for (const bad of ['x=$level', 'x=', 'buckets=0', 'buckets=x', 'from=1', 'from=2&to=1', 'from=a&to=3']) {
    t.equal((await get(`${h.url}api/rows?run=r&table=t&${bad}`)).status, 400, bad);
  }
  t.equal((await get(`${h.url}api/events?run=r&table=t&from=0&to=1`)).status, 400, 'a zoom is not followed');
});

t.test('GET /api/rows on a 91 KB gzip bomb (a line of 90 MB among rows): the rows around it, the line skipped', async (t) => {
  const root = tmpdir(t);
  const r = path.join(root, 'r');
  fs.mkdirSync(r);
  const rows = (from: number) => Array.from({ length: 5 }, (_, i) => `{"$step":${from + i},"loss":${from + i}}\n`).join('');
  const bomb = zlib.gzipSync(`${rows(0)}${'a'.repeat(90 << 20)}\n${rows(5)}`, { level: 9 });
  t.ok(bomb.length < 100_000, `${bomb.length} bytes on disk`);
  fs.writeFileSync(path.join(r, 'train.jsonl.gz'), bomb);
  const h = await start(t, { dir: root });
  const snap = await getJson<Snapshot>(`${h.url}api/rows?run=r&table=train`);
  t.equal(snap.total, 10, 'the ten rows (the line is no row: read linearly, then skipped)');
  t.same(col(snap.block, 'loss'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

t.test('a big table under the M4 rule: per bucket first, last, min and max, so a one-row spike is kept; a zoom at full resolution', async (t) => {
  const root = tmpdir(t);
  const r = path.join(root, 'r');
  fs.mkdirSync(r);
  const n = 25_001;
  const spike = 12_345; // not on any stride grid of a power of 2 above 1
  fs.writeFileSync(path.join(r, 'big.jsonl'), Array.from({ length: n }, (_, i) => `{"$step":${i},"v":${i === spike ? -1e6 : i * 2}}\n`).join(''));
  const h = await start(t, { dir: root, maxBuckets: 1000 });
  const snap = await getJson<Snapshot>(`${h.url}api/rows?run=r&table=big`);
  t.equal(snap.total, n);
  t.equal(snap.bucket, 32, 'the smallest power of 2 that keeps ≤ 1000 buckets');
  const p = pts(snap.block, 'v');
  t.ok(p.i.length <= 4 * 782, `${p.i.length} points sent`);
  t.equal(p.i.at(-1), n - 1, 'the last row is there');
  t.equal(p.i.at(0), 0, 'and the first');
  t.ok(p.i.includes(spike) && p.y[p.i.indexOf(spike)] === -1e6, 'the spike is kept');
  t.same(p.i.slice(0, 4), [0, 31, 32, 63], 'a rising line: each bucket its first (= min) and last (= max) row');
  const narrow = await getJson<Snapshot>(`${h.url}api/rows?run=r&table=big&buckets=100`);
  t.equal(narrow.bucket, 256, 'a narrower page asks for fewer buckets');
  t.ok(pts(narrow.block, 'v').i.includes(spike), 'the spike is still kept');
  t.equal((await getJson<Snapshot>(`${h.url}api/rows?run=r&table=big&buckets=99999`)).bucket, 32, 'never finer than maxBuckets');
  const zoom = await getJson<Snapshot & { range: { from: number; to: number; origin: number } }>(`${h.url}api/rows?run=r&table=big&from=12300&to=12400`);
  t.match(zoom, { bucket: 1, followed: false, range: { from: 12300, to: 12400, origin: 12300 } });
  t.same(pts(zoom.block, 'v').x, Array.from({ length: 101 }, (_, k) => 12_300 + k), 'every row of the range, each its own bucket');
});

t.test('a table that cannot be read: 500 for /api/rows, a problem event for a page', async (t) => {
  const root = tmpdir(t);
  await logRun(path.join(root, 'r'), 2);
  const warnings: string[] = [];
  const h = await start(t, { dir: root, onWarning: (m) => warnings.push(m) });
  await getJson<Listing>(`${h.url}api/runs`); // listed (and the listing cached) …
  fs.rmSync(path.join(root, 'r', 'train.jsonl.gz')); // … then gone
  const rows = await get(`${h.url}api/rows?run=r&table=train`);
  t.equal(rows.status, 500);
  t.match(rows.body, /ENOENT/);
  const es = eventStream(t, `${h.url}api/events?run=r&table=train`);
  const problem = await es.next<{ run: string; table: string; message: string }>('problem');
  t.match(problem, { run: 'r', table: 'train', message: /^r\/train: .*ENOENT/ });
  t.match(warnings, [/api\/rows.*ENOENT/, /^r\/train: .*ENOENT/]);
});

t.test('paths from the query string never leave DIR', async (t) => {
  const root = tmpdir(t);
  await logRun(path.join(root, 'r'), 2);
  fs.writeFileSync(path.join(path.dirname(root), `${path.basename(root)}-secret.jsonl`), '{"a":1}\n');
  fs.mkdirSync(path.join(root, 'r', 'artifacts'));
  fs.writeFileSync(path.join(root, 'r', 'artifacts', 'x.jsonl'), '{"a":1}\n');
  const outside = tmpdir(t);
  await logRun(outside, 2);
  fs.symlinkSync(outside, path.join(root, 'link'));
  const h = await start(t, { dir: root });
  const base = `${h.url}api/rows`;
  const cases: Array<[string, number]> = [
    [`?run=r&table=train`, 200],
    [`?run=..&table=train`, 400],
    [`?run=../r&table=train`, 400],
    [`?run=%2e%2e&table=${encodeURIComponent(`${path.basename(root)}-secret`)}`, 400],
    [`?run=r&table=..%2F..%2F${path.basename(root)}-secret`, 400],
    [`?run=r&table=${encodeURIComponent('/etc/passwd')}`, 400],
    [`?run=${encodeURIComponent(root)}&table=train`, 400],
    [`?run=r&table=train%00`, 400],
    [`?run=r&table=artifacts/x`, 404],
    [`?run=link&table=train`, 404],
    [`?run=.&table=r/train`, 404],
    [`?run=nope&table=train`, 404],
    [`?run=r&table=nope`, 404],
    [`?run=r`, 400],
    [`?table=train`, 400],
  ];
  for (const [q, status] of cases) {
    const res = await get(`${base}${q}`);
    t.equal(res.status, status, q);
    if (status !== 200) t.notMatch(res.body, /"\$step"/, `${q}: no rows`);
  }
  t.equal((await get(`${h.url}api/events?run=..&table=train`)).status, 400, 'events too');
  t.equal((await get(`${h.url}api/events?run=nope&table=train`)).status, 404);
  t.equal((await get(`${h.url}../../etc/passwd`)).status, 404);
  t.equal((await get(`${h.url}%2e%2e/%2e%2e/etc/passwd`)).status, 404);
  t.equal((await get(`${h.url}web/app.js`)).status, 404, 'only the named assets');
  t.equal((await get(`${h.url}lib/serve/server.js`)).status, 404, 'of the server modules, only decimate.js');
});

t.test('the page and its assets come from this server, with a strict CSP', async (t) => {
  const h = await start(t, { dir: tmpdir(t) });
  const want: Array<[string, RegExp]> = [
    ['', /^text\/html/],
    ['app.js', /^text\/javascript/],
    ['series.js', /^text\/javascript/],
    ['lib/serve/decimate.js', /^text\/javascript/],
    ['app.css', /^text\/css/],
    ['uplot.js', /^text\/javascript/],
    ['uplot.css', /^text\/css/],
    ['favicon.svg', /^image\/svg\+xml/],
  ];
  for (const [p, type] of want) {
    const r = await get(`${h.url}${p}`);
    t.equal(r.status, 200, `/${p}`);
    t.match(r.headers['content-type'], type);
    t.match(r.headers['content-security-policy'], /default-src 'self'/);
    t.equal(r.headers['x-content-type-options'], 'nosniff');
    if (p !== 'uplot.js' && p !== 'uplot.css') t.notMatch(r.body.replace(/xmlns="[^"]*"/g, ''), /https?:\/\//, `/${p} loads nothing from elsewhere`);
  }
  t.match((await get(`${h.url}uplot.js`)).body, /uPlot/);
  t.match((await get(`${h.url}`)).body, /<script type="module" src="\/app.js">/);
  t.equal((await get(`${h.url}`, {}, 'HEAD')).status, 200);
  const post = await get(`${h.url}api/runs`, {}, 'POST');
  t.equal(post.status, 405);
  t.equal(post.headers.allow, 'GET, HEAD');
  t.equal((await get(`${h.url}nope`)).status, 404);
  // DNS rebinding: a page on another name that resolves to 127.0.0.1 gets nothing.
  t.equal((await get(`${h.url}api/runs`, { host: 'evil.example:80' })).status, 403);
  t.equal((await get(`${h.url}api/runs`, { host: `localhost:${h.port}` })).status, 200);
  t.equal((await get(`${h.url}api/runs`, { host: `[::1]:${h.port}` })).status, 200);
  const noHost = await new Promise<string>((resolve) => {
    let reply = '';
    net
      .connect(h.port, '127.0.0.1', function (this: net.Socket) {
        this.end('GET /api/runs HTTP/1.0\r\n\r\n');
      })
      .setEncoding('utf8')
      .on('data', (d: string) => (reply += d))
      .on('close', () => resolve(reply));
  });
  t.match(noHost, /^HTTP\/1\.1 403/, 'no Host header: refused too');
});

t.test('events: a snapshot, then a row appended by another process, once; the file is closed when the page goes', async (t) => {
  const root = tmpdir(t);
  const dir = path.join(root, 'run1');
  await writer(dir, 'rows', '200');
  const h = await start(t, { dir: root, pollMs: 50 });
  const es = eventStream(t, `${h.url}api/events?run=run1&table=train`);
  const runs = await es.next<Listing>('runs');
  t.same(runs.runs.map((r) => r.id), ['run1']);
  const snap = await es.next<Snapshot>('snapshot');
  t.match(snap, { run: 'run1', table: 'train', format: 'jsonl.gz', total: 200, followed: true });
  t.same(xs(snap.block, 'loss').slice(-2), [198, 199]);
  const file = path.join(dir, 'train.jsonl.gz');
  await until(() => fdsOn(file) === 1, 'the tail to open the file');

  const before = Date.now();
  await writer(dir, 'row', '5000', '0.125');
  const rows = await es.next<{ run: string; total: number; block: Block }>('rows');
  t.comment(`row seen ${Date.now() - before} ms after the writer started`);
  t.equal(rows.run, 'run1');
  t.equal(rows.total, 201);
  t.same(xs(rows.block, 'loss'), [5000], 'only the new row: the rows already in the snapshot are not sent again');
  t.same(col(rows.block, 'loss'), [0.125]);
  t.same(pts(rows.block, 'loss').i, [200]);
  t.match(rows, { from: 200, bucket: 1, x: '$step' });
  await writer(dir, 'row', '5001', '0.25');
  const more = await es.next<{ total: number; block: Block }>('rows', (d) => d.total === 202);
  t.same(xs(more.block, 'loss'), [5001]);

  es.close();
  await until(() => fdsOn(file) === 0, 'the file to be closed after the page went');
  t.pass('no file handle left open');
});

t.test('events: a wide table whose snapshot alone is bigger than the backlog bound still gets live rows', async (t) => {
  const root = tmpdir(t);
  const dir = path.join(root, 'wide');
  const log = createLogger({ dir, console: false, exitHooks: false });
  const COLS = 150;
  const row = (s: number) => Object.fromEntries(Array.from({ length: COLS }, (_, c) => [`layer${c}/grad_norm`, Math.sin(s + c)]));
  for (let s = 0; s < 10_000; s++) log.row('grads', row(s), { step: s });
  await log.flush();
  const h = await start(t, { dir: root, pollMs: 50 });
  const es = eventStream(t, `${h.url}api/events?run=wide&table=grads`);
  const snap = await es.next<Snapshot>('snapshot', () => true, 30_000);
  t.equal(snap.total, 10_000);
  t.ok(JSON.stringify(snap).length > 16 << 20, `the snapshot is ${(JSON.stringify(snap).length / 2 ** 20).toFixed(1)} MiB`);
  log.row('grads', row(10_000), { step: 10_000 });
  await log.flush();
  const rows = await es.next<{ total: number; block: Block }>('rows', (d) => d.total === 10_001, 10_000);
  t.same(xs(rows.block, 'layer0/grad_norm').at(-1), 10_000, 'the new row arrives on the same stream');
  t.equal(es.events.filter((e) => e.event === 'snapshot').length, 1, 'the stream was not closed and re-read');
  await log.close();
});

t.test('events: a CSV-only table is read again when it changes; several runs in one stream', async (t) => {
  const root = tmpdir(t);
  const entry = (step: number, data: FlatRow): Entry<FlatRow> => ({ table: 'm', level: 20, step, time: step, data });
  const csv = csvSink({ dir: path.join(root, 'c') });
  csv.write(entry(0, { a: 1 }));
  await csv.flush();
  const j = jsonlSink({ dir: path.join(root, 'j') });
  j.write(entry(0, { a: 2 }));
  await j.flush();
  const h = await start(t, { dir: root, pollMs: 20 });
  const es = eventStream(t, `${h.url}api/events?table=m&run=c&run=j`);
  const first = await es.next<Snapshot>('snapshot', (s) => s.run === 'c');
  t.match(first, { format: 'csv', total: 1, followed: false });
  t.match(await es.next<Snapshot>('snapshot', (s) => s.run === 'j'), { format: 'jsonl', total: 1, followed: true });
  csv.write(entry(1, { a: 1, b: 7 })); // a new key: the CSV file is rewritten
  await csv.flush();
  const again = await es.next<Snapshot>('snapshot', (s) => s.run === 'c' && s.total === 2);
  t.same(again.block.columns, ['a', 'b']);
  t.same(pts(again.block, 'b'), { i: [1], x: [1], y: [7] }, 'a cell the first row lacks: no point there');
  j.write(entry(1, { a: 3 }));
  await j.flush();
  const rows = await es.next<{ run: string; block: Block }>('rows', (d) => d.run === 'j');
  t.same(col(rows.block, 'a'), [3]);
  await new Promise<void>((resolve) => csv.end(resolve));
  await new Promise<void>((resolve) => j.end(resolve));
});

t.test('--connect: rows of a live socket sink are a run named after its address', async (t) => {
  const sink = socketSink({ port: 0, backlog: 100, token: 's3cret' });
  const { port } = await sink.address();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  t.teardown(() => log.close());
  for (let i = 0; i < 5; i++) log.row('grad', { norm: i }, { step: i });
  await log.flush();
  const warnings: string[] = [];
  const h = await serve({ dir: tmpdir(t), connect: `127.0.0.1:${port}`, token: 's3cret', pollMs: 20, onWarning: (m) => warnings.push(m) });
  t.teardown(() => h.close());
  const id = `live:127.0.0.1:${port}`;
  let listing: Listing = { dir: '', runs: [] };
  for (const end = Date.now() + patient(5000); Date.now() < end; ) {
    listing = await getJson<Listing>(`${h.url}api/runs`);
    if (listing.runs[0]?.tables.length === 1) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.match(listing.runs, [{ id, name: `127.0.0.1:${port}`, live: true, tables: [{ name: 'grad' }] }]);
  const snap = await getJson<Snapshot>(`${h.url}api/rows?run=${encodeURIComponent(id)}&table=grad`);
  t.match(snap, { run: id, format: 'live', total: 5, followed: true });
  t.same(col(snap.block, 'norm'), [0, 1, 2, 3, 4]);

  const es = eventStream(t, `${h.url}api/events?table=grad&run=${encodeURIComponent(id)}`);
  await es.next('snapshot');
  log.row('grad', { norm: 42 }, { step: 42 });
  log.row('other', { x: 1 });
  const rows = await es.next<{ total: number; block: Block }>('rows');
  t.same(xs(rows.block, 'norm'), [42]);
  t.equal(rows.total, 6);
  const runs = await es.next<Listing>('runs', (l) => (l.runs[0]?.tables.length ?? 0) === 2);
  t.same(runs.runs[0]?.tables.map((x) => x.name), ['grad', 'other'], 'a new table is pushed to the page');
  t.same(warnings, []);
});

t.test('--connect: an x-axis asked for late is followed at the resolution a fresh snapshot has', async (t) => {
  const sink = socketSink({ port: 0, backlog: 100_000 });
  const { port } = await sink.address();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  t.teardown(() => log.close());
  for (let i = 0; i < 5000; i++) log.row('train', { loss: Math.sin(i) }, { step: i });
  await log.flush();
  const h = await serve({ dir: tmpdir(t), connect: `127.0.0.1:${port}`, pollMs: 20, onWarning: () => {} });
  t.teardown(() => h.close());
  const id = encodeURIComponent(`live:127.0.0.1:${port}`);
  for (const end = Date.now() + patient(5000); Date.now() < end; ) {
    if ((await get(`${h.url}api/rows?run=${id}&table=train`)).body.includes('"total":5000')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // The page asks for `epoch` (first asked now: the live run keeps it from row 5000 on), 64 buckets.
  const es = eventStream(t, `${h.url}api/events?table=train&run=${id}&x=epoch&buckets=64`);
  const snap = await es.next<Snapshot>('snapshot');
  t.match(snap, { total: 5000, x: 'epoch', bucket: 1 });
  for (let i = 5000; i < 5050; i++) log.row('train', { loss: i % 2, epoch: i / 10 }, { step: i });
  const last = await es.next<{ total: number }>('rows', (r) => r.total === 5050);
  const held = es.events.filter((e) => e.event === 'rows').map((e) => e.data as { bucket: number; block: Block });
  const fresh = await getJson<Snapshot>(`${h.url}api/rows?run=${id}&table=train&x=epoch&buckets=64`);
  t.equal(fresh.bucket, 1, 'a fresh snapshot: 50 rows in 64 buckets, one a bucket');
  t.same(held.map((r) => r.bucket), held.map(() => 1), 'so are the rows events');
  t.equal(xs(fresh.block, 'loss').length, 50);
  t.equal(last.total, 5050);
  const got = new Set(held.flatMap((r) => xs(r.block, 'loss')));
  t.equal(got.size, 50, 'every row of the new axis reached the page');
});

t.test('options are checked; another host than loopback needs allowInsecure', async (t) => {
  const dir = tmpdir(t);
  await t.rejects(serve({ dir, port: -1 }), { name: 'RangeError', code: 'ERR_INVALID_OPTION', message: /^port/ });
  await t.rejects(serve({ dir, port: 'x' as unknown as number }), { name: 'TypeError', code: 'ERR_INVALID_OPTION' });
  await t.rejects(serve({ dir, host: '0.0.0.0' }), { code: 'ERR_INSECURE_BIND', message: /0\.0\.0\.0/ });
  await t.rejects(serve({ dir, host: '' }), { code: 'ERR_INVALID_OPTION', message: /^host/ });
  await t.rejects(serve({ dir, maxBuckets: 5 }), { code: 'ERR_INVALID_OPTION', message: /^maxBuckets/ });
  await t.rejects(serve({ dir, pollMs: 0 }), { code: 'ERR_INVALID_OPTION', message: /^pollMs/ });
  await t.rejects(serve({ dir, refreshMs: 0 }), { code: 'ERR_INVALID_OPTION', message: /^refreshMs/ });
  await t.rejects(serve({ dir: '' }), { name: 'TypeError', message: /^dir/ });
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, '');
  await t.rejects(serve({ dir: file }), { name: 'RangeError', message: /^dir: is not a folder/ });
  await t.rejects(serve({ dir, connect: 'nope' }), { code: 'ERR_INVALID_OPTION', message: /^connect/ });
  await t.rejects(serve({ dir, connect: 7 as unknown as string }), { code: 'ERR_INVALID_OPTION', message: /^connect/ });
  await t.rejects(serve({ dir, token: 'x' }), { code: 'ERR_INVALID_OPTION', message: /^token: is only used with connect/ });
  await t.rejects(serve({ dir, connect: '127.0.0.1:9', token: 'a\nb' }), { code: 'ERR_INVALID_OPTION', message: /^token/ });
  await t.rejects(serve({ dir, onWarning: 1 as unknown as () => void }), { code: 'ERR_INVALID_OPTION', message: /^onWarning/ });
  await t.rejects(serve(null as unknown as ServeOptions), { code: 'ERR_INVALID_OPTION' });
  const h = await serve({ dir });
  await h.close();
  await h.close(); // twice is fine
  t.pass('closed');
});

// --- the command line ------------------------------------------------------------------------

/** `rowlog serve ARGS` in the background: its stdout lines and exit. */
function cli(t: Test, args: string[]) {
  const child = spawnCli(['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const lines: string[] = [];
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const first = new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      resolve(line);
    });
    child.on('exit', () => reject(new Error(`rowlog serve exited before printing its URL: ${stderr}`)));
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, first, exit, stderr: () => stderr };
}

t.test('rowlog serve prints one line with the URL, serves, and stops on SIGTERM and SIGINT', async (t) => {
  const root = tmpdir(t);
  await writer(path.join(root, 'r'), 'rows', '10');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const s = cli(t, [root, '--port', '0']);
    const line = await s.first;
    t.match(line, /^rowlog serve: http:\/\/127\.0\.0\.1:\d+\/$/, 'exactly that line');
    const url = line.slice('rowlog serve: '.length);
    const listing = await getJson<Listing>(`${url}api/runs`);
    t.same(listing.runs.map((r) => r.id), ['r']);
    const es = eventStream(t, `${url}api/events?run=r&table=train`);
    await es.next('snapshot'); // an open event stream must not keep it running
    const stopped = Date.now();
    s.child.kill(signal);
    t.equal(await s.exit, 0, `exit 0 on ${signal}`);
    t.ok(Date.now() - stopped < 2000, `stopped in ${Date.now() - stopped} ms`);
    t.same(s.lines, [line], 'one line on stdout');
    t.equal(s.stderr(), '');
  }
});

t.test('rowlog serve: a missing DIR is waited for; bad flags and an insecure bind exit 2; a port in use exits 1', async (t) => {
  const root = tmpdir(t);
  const s = cli(t, [path.join(root, 'later'), '--port', '0', '--connect', '127.0.0.1:9', '--token', 't']); // nobody there yet
  t.match(await s.first, /^rowlog serve: http:/);
  t.match(s.stderr(), /later does not exist yet/);
  s.child.kill('SIGTERM');
  t.equal(await s.exit, 0);

  for (const args of [['--port', '70000'], ['--port', 'abc'], ['--port', '-1'], ['--bogus']]) {
    const r = runCli(['serve', root, ...args]);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stdout, '');
    t.match(r.stderr, /\S/, `${args.join(' ')}: ${r.stderr.trim()}`);
  }
  const insecure = runCli(['serve', root, '--host', '0.0.0.0', '--port', '0']);
  t.equal(insecure.status, 2, 'insecure bind: exit 2');
  t.equal(insecure.stdout, '');
  t.match(insecure.stderr, /^rowlog: serve: binding 0\.0\.0\.0 would let anyone on the network connect/);
  t.equal(insecure.stderr.trim().split('\n').length, 1, 'one line');
  const file = path.join(root, 'f');
  fs.writeFileSync(file, '');
  const notDir = runCli(['serve', file, '--port', '0']);
  t.equal(notDir.status, 2);
  t.match(notDir.stderr, /dir: is not a folder/);

  const unbindable = runCli(['serve', root, '--host', '192.0.2.1', '--allow-insecure', '--port', '0']);
  t.equal(unbindable.status, 1, 'an address not on this machine (TEST-NET-1): exit 1');
  t.match(unbindable.stderr, /^rowlog: serve: cannot listen on 192\.0\.2\.1:0: .*EADDRNOTAVAIL/);

  const busy = net.createServer();
  const port = await listenLocal(busy);
  t.teardown(() => busy.close());
  const inUse = runCli(['serve', root, '--port', String(port)]);
  t.equal(inUse.status, 1);
  t.match(inUse.stderr, new RegExp(`port ${port} is in use`));
});
