/**
 * collect() and `rowlog collect`: rows pushed over TCP (raw clients and socketSink's push mode)
 * land in one run folder per `$source`; partial, bad, hostile and duplicate lines are skipped
 * with one warning; tokens; clean files after close and after SIGTERM.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { BGZF_EOF } from '../lib/format/bgzf.js';
import { collect } from '../lib/net/collect.js';
import type { CollectOptions, CollectWarning, Collector } from '../lib/net/collect.js';
import { isRowlogError } from '../lib/core/errors.js';
import { readLog } from '../lib/read/read-log.js';
import { CLI as cli, runCli, spawnCli } from './cli.js';
import { ROOT, run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { until as waitUntil } from './wait.js';

type Row = Record<string, unknown>;
const pusher = path.join(ROOT, 'test', 'fixtures', 'collect-pusher.mjs');

const until = (cond: () => boolean, what: string, ms = 10_000): Promise<void> => waitUntil(cond, what, ms);

/** A collector on 127.0.0.1 writing into a fresh `<tmp>/runs`, closed when `t` ends; its warnings are kept. */
async function start(t: Test, opts: Partial<CollectOptions> = {}) {
  const tmp = tmpdir(t, 'rowlog-collect-');
  const dir = path.join(tmp, 'runs');
  const c = await collect({ port: 0, dir, ...opts });
  const warnings: CollectWarning[] = [];
  c.on('warning', (w: CollectWarning) => warnings.push(w));
  t.teardown(() => c.close());
  return { c, dir, tmp, warnings };
}

/**
 * Connects, sends `chunks` (strings or bytes) one by one, then ends, or (once `arrived()`)
 * resets or destroys the socket, and waits until closed; returns what came back.
 */
async function push(port: number, chunks: Array<string | Buffer>, how: 'end' | 'reset' | 'destroy' = 'end', arrived = () => true): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (s: string) => (got += s));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise((r) => socket.once('connect', r));
  for (const c of chunks) if (!socket.write(c)) await new Promise((r) => socket.once('drain', r));
  if (how === 'end') socket.end();
  else {
    await until(arrived, 'the bytes to arrive'); // a reset discards what the kernel did not send yet
    if (how === 'reset') socket.resetAndDestroy();
    else socket.destroy();
  }
  await closed;
  return got;
}

/** NDJSON lines of `n` rows of `source`. */
function lines(source: string, n: number, from = 0, extra: (i: number) => Row = () => ({})): string {
  let s = '';
  for (let i = from; i < from + n; i++) {
    s += `${JSON.stringify({ $step: i, $time: 1_700_000_000_000 + i, $level: 20, $table: 'train', $seq: i + 1, $source: source, i, ...extra(i) })}\n`;
  }
  return s;
}

async function rows(file: string): Promise<Row[]> {
  const out: Row[] = [];
  for await (const r of readLog(file)) out.push(r);
  return out;
}

/** Every file under `dir`, relative, sorted. */
/** The files of a run folder; its TensorBoard events file (the default sinks', named by time and host) as `events.out.tfevents.*`. */
function files(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .map((f) => (f.startsWith('events.out.tfevents.') ? 'events.out.tfevents.*' : f))
    .sort();
}

function endsCleanly(t: Test, file: string): void {
  const bytes = fs.readFileSync(file);
  t.ok(bytes.subarray(bytes.length - BGZF_EOF.length).equals(BGZF_EOF), `${path.basename(file)} ends with the BGZF EOF member`);
  if (peer('gzip') !== undefined) t.equal(run('gzip', ['-t', file]).status, 0, `gzip -t ${path.basename(file)}`);
}

function state(runDir: string): unknown {
  return (JSON.parse(fs.readFileSync(path.join(runDir, 'status.json'), 'utf8')) as Row).$state;
}

t.test('two sources pushing concurrently land in two run folders with exactly their rows', async (t) => {
  const { c, dir, warnings } = await start(t);
  t.equal(c.host, '127.0.0.1');
  t.equal(c.address, `127.0.0.1:${c.port}`);
  const text = (s: string) =>
    lines(s, 1000, 0, (i) => ({ $table: i % 4 === 3 ? 'eval/acc' : 'train', loss: 1 / (i + 1), nan: i })).replace('"nan":7}', '"nan":NaN}');
  // Cut each stream into odd-sized chunks (lines split across writes) and send both at once.
  const cut = (s: string) => s.match(/[^]{1,777}/g) as string[];
  await Promise.all([push(c.port, cut(text('alpha'))), push(c.port, cut(text('beta')))]);
  await until(() => c.counts.rows === 2000, '2000 rows');
  t.same(c.sources().sort(), ['alpha', 'beta']);
  await c.close();
  t.same(warnings, [], 'no warning');
  for (const s of ['alpha', 'beta']) {
    const runDir = path.join(dir, s);
    t.same(files(runDir), ['eval/acc.csv', 'eval/acc.jsonl.gz', 'events.out.tfevents.*', 'run.json', 'status.json', 'train.csv', 'train.jsonl.gz']);
    const train = await rows(path.join(runDir, 'train.jsonl.gz'));
    const evals = await rows(path.join(runDir, 'eval/acc.jsonl.gz'));
    t.equal(train.length, 750, `${s}: 750 train rows`);
    t.equal(evals.length, 250, `${s}: 250 eval/acc rows`);
    t.same(train.slice(0, 2), [
      { $step: 0, $time: 1_700_000_000_000, $level: 20, i: 0, loss: 1, nan: 0 },
      { $step: 1, $time: 1_700_000_000_001, $level: 20, i: 1, loss: 0.5, nan: 1 },
    ], 'metadata first, no $source, $seq or $table, $step and $time kept');
    t.same(train.map((r) => r.i), [...Array(1000).keys()].filter((i) => i % 4 !== 3), 'every train row, in order');
    t.same(evals.map((r) => r.$step), [...Array(250).keys()].map((k) => 4 * k + 3), 'every eval row, $step kept');
    t.ok(Number.isNaN(evals.find((r) => r.i === 7)?.nan), 'NaN kept');
    t.notOk(train.some((r) => '$source' in r || '$seq' in r || '$table' in r));
    const csv = fs.readFileSync(path.join(runDir, 'train.csv'), 'utf8').trimEnd().split('\n');
    t.equal(csv[0], '$step,$time,$level,i,loss,nan');
    t.equal(csv.length, 751, 'CSV: header and 750 rows');
    endsCleanly(t, path.join(runDir, 'train.jsonl.gz'));
    if (needs(t, ['zcat', 'jq'], 'zcat | jq on the collected file')) {
      const r = run('sh', ['-c', `zcat '${path.join(runDir, 'train.jsonl.gz')}' | jq -c 'select(.i == 500) | [."$step", .loss]'`]);
      t.equal(r.stdout, '[500,0.001996007984031936]\n', 'zcat | jq reads it');
    }
    t.equal(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).name, s, 'run.json names the source');
    t.equal(state(runDir), 'closed', 'status.json says closed');
  }
});

t.test('a client killed mid-line loses only that line', async (t) => {
  const { c, dir, warnings } = await start(t);
  const half = lines('k', 1, 100).slice(0, 40);
  await push(c.port, [lines('k', 100), half], 'reset', () => c.counts.rows === 100); // ECONNRESET
  await push(c.port, [lines('k', 50, 101), half], 'destroy', () => c.counts.rows === 150); // FIN after half a line
  await push(c.port, [lines('k', 10, 151), '\n\n  \n']); // blank lines are no rows
  await until(() => c.counts.truncated === 2, 'two truncated lines');
  await c.close();
  const got = await rows(path.join(dir, 'k', 'train.jsonl.gz'));
  t.same(got.map((r) => r.i), [...Array(161).keys()].filter((i) => i !== 100), 'rows 0-99 and 101-160 (line 100 was cut twice)');
  t.equal(c.counts.rows, 160);
  t.same(warnings.map((w) => [w.code, w.source]), [['W_COLLECT_TRUNCATED', 'k']], 'one warning for the source');
  t.match(warnings[0]?.message, /^k: a connection ended in the middle of a line/);
});

t.test('bad lines, bad sources and escape attempts are skipped with one warning each; nothing leaves dir', async (t) => {
  const { c, dir, tmp, warnings } = await start(t);
  const bad = [
    'not json',
    '[1,2]',
    '42',
    '"str"',
    'null',
    '{"no":"source"}',
    '{"$source":"../x","a":1}',
    '{"$source":"a/b","a":1}',
    '{"$source":"..","a":1}',
    '{"$source":".","a":1}',
    '{"$source":"","a":1}',
    '{"$source":"/etc","a":1}',
    '{"$source":"x\\u0000y","a":1}',
    `{"$source":"${'s'.repeat(256)}","a":1}`,
    '{"$source":7,"a":1}',
  ];
  const out = await push(c.port, [`${bad.join('\n')}\n`]);
  t.equal(out, '', 'the collector sends nothing back');
  t.same(c.counts, { ...c.counts, rows: 0, badLine: 5, badSource: 10 });
  t.same(warnings.map((w) => w.code), ['W_COLLECT_BAD_LINE', 'W_COLLECT_BAD_SOURCE'], 'one warning per code for the connection');
  t.match(warnings[0]?.message, /^127\.0\.0\.1:\d+: skipped a line that is not JSON: "not json"$/);
  t.match(warnings[1]?.message, /^127\.0\.0\.1:\d+: skipped a row without a \$source$/);
  await push(c.port, ['{"$source":"../x"}\n']);
  t.match(warnings[2]?.message, /: skipped a row whose \$source "\.\.\/x" is not one \[A-Za-z0-9_.-\] path segment/, 'once per connection');

  const meta = [
    '{"$source":"ok","$table":"../t","a":1}',
    '{"$source":"ok","$table":"/abs","a":1}',
    '{"$source":"ok","$table":"a//b","a":1}',
    '{"$source":"ok","$table":5,"a":1}',
    '{"$source":"ok","$level":"LOUD","a":1}',
    '{"$source":"ok","$level":{},"a":1}',
    '{"$source":"ok","$step":"3","a":1}',
    '{"$source":"ok","$time":null,"a":1}',
    '{"$source":"ok","table":"../../x","level":5,"data":{"b":2},"a":1}',
    '{"$source":"ok","$table":"t/ok","$level":"results","a":2,"$other":3}',
    '{"$source":"ok","a":3,"b":[1,2,3]}',
    '{"$source":"ok","$seq":"x","a":4,"$step":NaN}',
  ];
  const hostile = [
    '{"$source":"ok","$table":"adv","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}',
    `{"$source":"ok","$table":"adv","deep":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`,
    JSON.stringify(Object.fromEntries([['$source', 'ok'], ['$table', 'adv'], ...[...Array(20_000).keys()].map((i) => [`k${i}`, i])])),
  ];
  await push(c.port, [`${meta.join('\n')}\n${hostile.join('\n')}\n`]);
  t.equal(c.counts.badMeta, 9, 'invalid $table, $level, $step, $time: skipped');
  t.equal(c.counts.rows, 6);
  await c.close();
  t.same(
    warnings.slice(3).filter((w) => w.code.startsWith('W_COLLECT')).map((w) => [w.code, w.source]),
    [['W_COLLECT_BAD_META', 'ok'], ['W_COLLECT_BAD_META', 'ok'], ['W_COLLECT_BAD_META', 'ok'], ['W_COLLECT_BAD_META', 'ok']],
    'once per (source, key)',
  );
  t.match(warnings.find((w) => w.code === 'W_NEW_KEYS'), { source: 'ok', message: /^ok: Adding 4 new keys/ }, "the run's own warnings, with the source");
  t.same(fs.readdirSync(tmp), ['runs'], 'nothing written next to dir');
  t.same(fs.readdirSync(dir), ['ok'], 'one run folder');
  const main = await rows(path.join(dir, 'ok', 'main.jsonl.gz'));
  t.same(main, [
    { $step: 0, $time: main[0]?.$time, $level: 20, a: 1, 'data/b': 2, level: 5, table: '../../x' },
    { $step: 1, $time: main[1]?.$time, $level: 20, a: 3, 'b.max': 3, 'b.mean': 2, 'b.min': 1, 'b.std': 0.816496580927726 },
  ], 'an Entry-shaped row is a plain row; defaults: table main, level INFO, next step');
  const adv = await rows(path.join(dir, 'ok', 'adv.jsonl.gz'));
  t.equal(adv.length, 3, 'hostile rows are just rows');
  t.equal(({} as Row).polluted, undefined, 'no prototype pollution');
  t.equal(Object.keys(adv[2] ?? {}).length, 10_003, 'the key limit held');
  const t2 = await rows(path.join(dir, 'ok', 't', 'ok.jsonl.gz'));
  t.same(t2.map((r) => [r.$level, r.a, r.$other]), [[35, 2, 3]], 'level names and $-keys that are not metadata are kept');
});

t.test('random bytes and huge lines do not crash the collector or hold a huge line', async (t) => {
  const { c, dir } = await start(t, { maxLineLength: 1 << 20 });
  const sends: Array<Promise<string>> = [];
  for (let k = 0; k < 8; k++) {
    const chunks: Buffer[] = [];
    for (let j = 0; j < 16; j++) chunks.push(randomBytes(1 + Math.floor(Math.random() * 20_000)));
    chunks.push(Buffer.from(`\n${lines('fuzz', 10, k * 10).replace(/"\$seq":\d+,/g, '')}`));
    sends.push(push(c.port, chunks, k % 2 ? 'end' : 'destroy'));
  }
  await Promise.all(sends);
  await until(() => c.counts.rows === 80, '80 rows after the noise');

  // 48 MiB without a newline, then a row: the collector keeps at most ~1 MiB of it.
  const heap = process.memoryUsage().heapUsed;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed - heap)), 5);
  const junk = Buffer.alloc(64 * 1024, 'x');
  await push(c.port, [...Array(768).fill(junk), `\n${lines('fuzz', 1, 80)}`, `{"$source":"fuzz","big":"${'y'.repeat(1.5 * (1 << 20))}"}\n`]);
  clearInterval(sampler);
  await until(() => c.counts.rows === 81, 'the row after the long line');
  t.equal(c.counts.tooLong, 2, 'the unterminated 48 MiB line and the 1.5 MiB complete one');
  await push(c.port, [...Array(40).fill(junk)]); // 2.5 MiB, then the end: too long, not also truncated
  t.same([c.counts.tooLong, c.counts.truncated], [3, 0]);
  t.ok(peak < 40 * 1024 * 1024, `heap grew by ${Math.round(peak / 2 ** 20)} MiB while 48 MiB came in`);
  await c.close();
  const got = await rows(path.join(dir, 'fuzz', 'train.jsonl.gz'));
  t.same(got.map((r) => r.i).sort((x, y) => Number(x) - Number(y)), [...Array(81).keys()], 'every intact row');
});

t.test('a token is required when set: a wrong one gets ERR_BAD_TOKEN and the door', async (t) => {
  const { c, dir } = await start(t, { token: 's3cret' });
  const out = await push(c.port, [`wrong\n${lines('tok', 5)}`]);
  t.match(JSON.parse(out) as Row, { $error: 'ERR_BAD_TOKEN' });
  const none = await push(c.port, [lines('tok', 5)]);
  t.match(JSON.parse(none) as Row, { $error: 'ERR_BAD_TOKEN' }, 'a first line that is a row is not the token');
  t.equal(await push(c.port, ['s3cr', `et\n${lines('tok', 3)}`]), '', 'the right token, split over two writes');
  await until(() => c.counts.rows === 3, '3 rows');
  t.equal(c.counts.refused, 2);
  await c.close();
  t.same((await rows(path.join(dir, 'tok', 'train.jsonl.gz'))).map((r) => r.i), [0, 1, 2]);
});

t.test('options: a non-loopback host needs a token; bad options are rejected before binding', async (t) => {
  const dir = path.join(tmpdir(t), 'runs');
  await t.rejects(collect({ host: '0.0.0.0', port: 0, dir }), { code: 'ERR_INSECURE_BIND' });
  await collect({ host: '0.0.0.0', port: 0, dir }).catch((err: unknown) => t.ok(isRowlogError(err)));
  await t.rejects(collect({ port: 0, dir: '' }), { code: 'ERR_INVALID_OPTION', name: 'TypeError' });
  await t.rejects(collect(null as unknown as CollectOptions), { code: 'ERR_INVALID_OPTION' });
  await t.rejects(collect({ port: 70000, dir }), { code: 'ERR_INVALID_OPTION', name: 'RangeError' });
  await t.rejects(collect({ port: 0, dir, maxSources: 0 }), { code: 'ERR_INVALID_OPTION' });
  await t.rejects(collect({ port: 0, dir, token: 'a\nb' }), { code: 'ERR_INVALID_OPTION' });
  t.notOk(fs.existsSync(dir), 'nothing created');
});

t.test('reconnects append to the run folder; rows a connection repeats are dropped; pushers sharing a source are not', async (t) => {
  const { c, dir, warnings } = await start(t);
  await push(c.port, [lines('r', 10)]); // $seq 1-10
  await push(c.port, [lines('r', 10, 10) + lines('r', 11, 15)]); // a reconnect: 11-20, then 16-26 (16-20 repeated)
  await until(() => c.counts.rows === 26, '26 rows');
  t.equal(c.counts.duplicate, 5);
  t.same(warnings.map((w) => [w.code, w.source]), [['W_COLLECT_DUPLICATE', 'r']]);
  // Two pushers with one name at once, both counting from 1: neither is taken for a resend.
  const x = lines('r', 50, 100, () => ({ who: 'x' })).replace(/"\$seq":(\d+)/g, (_, s: string) => `"$seq":${Number(s) - 100}`);
  const y = x.replaceAll('"who":"x"', '"who":"y"');
  await Promise.all([push(c.port, x.match(/[^]{1,500}/g) as string[]), push(c.port, y.match(/[^]{1,300}/g) as string[])]);
  await until(() => c.counts.rows === 126, '126 rows');
  await c.close();

  // A new collector on the same folder appends.
  const c2 = await collect({ port: 0, dir });
  await push(c2.port, [lines('r', 5, 200)]);
  await until(() => c2.counts.rows === 5, '5 more rows');
  await c2.close();
  const got = await rows(path.join(dir, 'r', 'train.jsonl.gz'));
  t.equal(got.length, 131);
  t.same(got.slice(0, 26).map((r) => r.i), [...Array(26).keys()], 'no duplicate');
  t.equal(got.filter((r) => r.who === 'x').length, 50);
  t.equal(got.filter((r) => r.who === 'y').length, 50);
  t.same(got.slice(126).map((r) => r.i), [200, 201, 202, 203, 204]);
  t.equal(state(path.join(dir, 'r')), 'closed');
});

t.test('maxSources bounds the run folders; an unwritable run folder skips its rows', async (t) => {
  const { c, dir, warnings } = await start(t, { maxSources: 2 });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'file'), 'not a folder');
  await push(c.port, [lines('a', 2), lines('file', 2), lines('b', 2), lines('c', 2)]);
  await until(() => c.counts.rows + c.counts.unwritable === 8, '8 lines');
  t.same(c.sources(), ['a']);
  t.equal(c.counts.unwritable, 6);
  t.same(warnings.map((w) => w.code), ['W_COLLECT_RUN_DIR', 'W_COLLECT_TOO_MANY_SOURCES', 'W_COLLECT_TOO_MANY_SOURCES']);
  await c.close();
  t.same(fs.readdirSync(dir).sort(), ['a', 'file']);
});

t.test('close() lets connected pushers finish their lines, then closes every run; warnings print to stderr when nobody listens', async (t) => {
  const dir = path.join(tmpdir(t), 'runs');
  const c = await collect({ port: 0, dir });
  const socket = net.connect({ host: '127.0.0.1', port: c.port });
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  socket.write(lines('open', 20));
  await until(() => c.counts.rows === 20, '20 rows');
  t.equal(c.connections, 1);
  socket.write(lines('open', 5, 20));
  const writes: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => writes.push(s) !== 0) as typeof process.stderr.write;
  socket.write('{"no source"}\n');
  await until(() => c.counts.badLine === 1, 'the bad line');
  process.stderr.write = write;
  t.match(writes, [/^rowlog warning W_COLLECT_BAD_LINE: open: skipped a line that is not JSON/]);
  await Promise.all([c.close(), c.close()]);
  t.ok(socket.destroyed || socket.readableEnded, 'the pusher was let go');
  t.equal(c.counts.rows, 25);
  t.equal(state(path.join(dir, 'open')), 'closed');
  endsCleanly(t, path.join(dir, 'open', 'train.jsonl.gz'));
  await t.rejects(
    new Promise((resolve, reject) => net.connect({ host: '127.0.0.1', port: c.port }).once('connect', resolve).once('error', reject)),
    { code: 'ECONNREFUSED' },
    'no longer listening',
  );
});

t.test('end to end: a trainer with socketSink({connect, source}) pushes 1000 rows', async (t) => {
  const { c, dir } = await start(t);
  const child = spawn(process.execPath, [pusher, c.address, 'trainer-1', '1000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const code = await new Promise((r) => child.once('exit', r));
  t.equal(code, 0);
  await until(() => c.counts.rows === 1000, '1000 rows');
  await c.close();
  const got = await rows(path.join(dir, 'trainer-1', 'train.jsonl.gz'));
  t.same(got.map((r) => r.$step), [...Array(1000).keys()]);
  t.same(got[999], { $step: 999, $time: got[999]?.$time, $level: 20, i: 999, sq: 998001, 'w.max': 1000, 'w.mean': 999.5, 'w.min': 999, 'w.std': 0.5 });
  endsCleanly(t, path.join(dir, 'trainer-1', 'train.jsonl.gz'));
});

t.test('end to end: a collector restarted while a trainer pushes gets the rows logged while it was away', async (t) => {
  const { c, dir } = await start(t);
  const port = c.port;
  const child = spawn(process.execPath, [pusher, c.address, 'trainer-2', '1000', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let logged = 0; // the trainer's `logged <n>` lines
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    for (const m of s.matchAll(/logged (\d+)/g)) logged = Math.max(logged, Number(m[1]));
  });
  const exited = new Promise((r) => child.once('exit', r));
  await until(() => c.counts.rows >= 200, 'the first 200 rows');
  await c.close();
  const first = c.counts.rows;
  await until(() => logged >= first + 200, 'the trainer to log 200 rows into its buffer'); // while the collector is away
  const c2 = await collect({ port, dir });
  t.teardown(() => c2.close());
  t.equal(await exited, 0);
  await until(() => c2.counts.rows === 1000 - first, 'the rest');
  await c2.close();
  const got = await rows(path.join(dir, 'trainer-2', 'train.jsonl.gz'));
  t.same(got.map((r) => r.i), [...Array(1000).keys()], 'all 1000 rows, once each, in order');
  t.equal(c2.counts.duplicate, 0);
});

/** `rowlog collect --port 0 --dir DIR` in the background: its output so far, and how it ended. */
async function collectCli(dir: string) {
  const child = spawnCli(['collect', '--port', '0', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = { out: '', err: '' };
  child.stdout.on('data', (s: Buffer) => (seen.out += s));
  child.stderr.on('data', (s: Buffer) => (seen.err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  await until(() => seen.out.includes('\n'), 'the listening line');
  return { child, seen, exited };
}

t.test('rowlog collect: prints where it listens, writes pushed rows, and closes the files on SIGTERM', async (t) => {
  const dir = path.join(tmpdir(t), 'runs');
  const { child, seen, exited } = await collectCli(dir);
  const m = /^rowlog collect: listening on 127\.0\.0\.1:(\d+), writing into (.*)\n$/.exec(seen.out);
  t.ok(m, seen.out);
  t.equal(m?.[2], dir);
  const port = Number(m?.[1]);
  await Promise.all([push(port, [lines('one', 300)]), push(port, [lines('two', 200), '{"$source":"../up"}\n'])]);
  child.kill('SIGTERM');
  t.same(await exited, { code: 0, signal: null }, seen.err);
  t.match(seen.err, /W_COLLECT_BAD_SOURCE/);
  t.match(seen.err, /rowlog collect: stopped; 500 rows from 2 sources written; lines skipped: 1\n$/);
  for (const [s, n] of [['one', 300], ['two', 200]] as const) {
    const file = path.join(dir, s, 'train.jsonl.gz');
    t.equal((await rows(file)).length, n, `${s}: ${n} rows`);
    endsCleanly(t, file);
    t.equal(state(path.join(dir, s)), 'closed');
  }
});

t.test('rowlog collect: SIGTERM while a source is still connected closes cleanly (exit 0, the stopped line)', async (t) => {
  // The run loggers' exit hook (signal-exit) re-raised the signal once stopSignal had removed its
  // listener: exit 143, no "stopped" line, the run never closed. (A child of tap's test process
  // does not show it, for a reason not found; run outside tap, it did every time.)
  const dir = path.join(tmpdir(t), 'runs');
  const { child, seen, exited } = await collectCli(dir);
  const port = Number(/:(\d+),/.exec(seen.out)?.[1]);
  const socket = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => socket.destroy());
  socket.on('error', () => undefined);
  socket.write(lines('open', 50));
  await until(() => fs.existsSync(path.join(dir, 'open', 'run.json')), 'the run folder of the connected source');
  child.kill('SIGTERM');
  t.same(await exited, { code: 0, signal: null }, seen.err);
  t.match(seen.err, /rowlog collect: stopped; 50 rows from 1 sources written; lines skipped: 0\n$/);
  t.equal((await rows(path.join(dir, 'open', 'train.jsonl.gz'))).length, 50);
  t.equal(state(path.join(dir, 'open')), 'closed');
});

t.test('rowlog collect with a token (ROWLOG_TOKEN or --token): pushers must send it first; a port in use is a runtime error (exit 1)', async (t) => {
  const { c, dir } = await start(t);
  const busy = runCli(['collect', '--port', String(c.port), '--dir', dir]);
  t.equal(busy.status, 1);
  t.match(busy.stderr, /^rowlog: collect: listen EADDRINUSE.*\n$/);
  // The token through the environment (ROWLOG_TOKEN), so it does not show in `ps`.
  const child = spawnCli(['collect', '--port', '0', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ROWLOG_TOKEN: 'tk' } });
  let out = '';
  child.stdout.on('data', (s: Buffer) => (out += s));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  await until(() => out.includes('\n'), 'the listening line');
  const port = Number(/:(\d+),/.exec(out)?.[1]);
  t.match(JSON.parse(await push(port, [`nope\n${lines('tk', 2)}`])) as Row, { $error: 'ERR_BAD_TOKEN' });
  t.equal(await push(port, [`tk\n${lines('tk', 2)}`]), '');
  child.kill('SIGINT');
  t.equal(await exited, 0);
  t.same((await rows(path.join(dir, 'tk', 'train.jsonl.gz'))).map((r) => r.i), [0, 1]);
});

t.test('rowlog collect: usage errors exit 2 with one line', async (t) => {
  const dir = path.join(tmpdir(t), 'runs');
  const insecure = runCli(['collect', '--port', '0', '--dir', dir, '--host', '0.0.0.0']);
  t.equal(insecure.status, 2);
  t.match(insecure.stderr, /^rowlog: collect: binding 0\.0\.0\.0 would let anyone on the network connect; pass a token .*\n$/);
  t.equal(insecure.stdout, '');
  const port = runCli(['collect', '--port', 'abc', '--dir', dir]);
  t.equal(port.status, 2);
  t.match(port.stderr, /--port <port>' argument 'abc' is invalid/);
  const noDir = runCli(['collect', '--port', '0']);
  t.equal(noDir.status, 2);
  t.match(noDir.stderr, /required option '--dir <dir>'/);
  t.notOk(fs.existsSync(dir));
});

t.test('an HTTP request (what any web page can send to a loopback port) is refused: its body never becomes rows', async (t) => {
  const { c, dir, warnings } = await start(t);
  const body = lines('victim', 3);
  const err = await new Promise<Error | undefined>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: c.port, method: 'POST', path: '/', headers: { 'content-type': 'text/plain' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(undefined));
    });
    req.on('error', resolve);
    req.end(body);
  });
  t.ok(err, `the request fails (${err?.message})`);
  await until(() => c.counts.refused === 1, 'the refusal');
  t.same(warnings.map((w) => w.code), ['W_COLLECT_HTTP']);
  t.equal(c.counts.rows, 0);
  t.same(c.sources(), []);
  t.notOk(fs.existsSync(path.join(dir, 'victim')));
  await push(c.port, [lines('real', 2)]); // a pusher still gets through
  await until(() => c.counts.rows === 2, 'rows of a real pusher');
});

/** Idle connections to `port`: each remembers what came back and whether it closed. */
function idlers(port: number, n: number) {
  const all = Array.from({ length: n }, () => {
    const c = { socket: net.connect({ host: '127.0.0.1', port }), got: '', closed: false };
    c.socket.setEncoding('utf8');
    c.socket.on('data', (s: string) => (c.got += s));
    c.socket.on('error', () => undefined);
    c.socket.once('close', () => (c.closed = true));
    return c;
  });
  return {
    all,
    refused: () => all.filter((c) => c.got !== ''),
    destroy: () => all.forEach((c) => c.socket.destroy()),
  };
}

/** `rowlog collect` in a child whose open-files limit is `nofile` (prlimit, else `ulimit -n`); resolves once listening. */
async function lowFdCollector(t: Test, nofile: number, extra: string[] = []) {
  const dir = path.join(tmpdir(t), 'runs');
  const argv = [cli, 'collect', '--port', '0', '--dir', dir, ...extra];
  const child = peer('prlimit') !== undefined
    ? spawn('prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (s: Buffer) => (out += s));
  child.stderr.on('data', (s: Buffer) => (err += s));
  let exit: number | null | undefined;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r((exit = code))));
  t.teardown(() => {
    if (exit === undefined) child.kill('SIGKILL');
  });
  await until(() => out.includes('\n') || exit !== undefined, 'the listening line');
  const port = Number(/:(\d+),/.exec(out)?.[1]);
  return { child, dir, port, exited, alive: () => exit === undefined, err: () => err };
}

t.test('too many connections under a low fd limit: refused with one line, one warning; the collector lives and every row lands', async (t) => {
  // 128 descriptors, the default maxConnections (256) above them: the descriptor guard refuses.
  const col = await lowFdCollector(t, 128);
  t.ok(col.port > 0, 'listening');
  // Source A is connected before the flood and keeps sending through it.
  const a = net.connect({ host: '127.0.0.1', port: col.port });
  a.on('error', () => undefined);
  await new Promise((r) => a.once('connect', r));
  a.write(lines('a', 100));
  const flood = idlers(col.port, 200);
  t.teardown(() => {
    flood.destroy();
    a.destroy();
  });
  // At most 128 descriptors exist, so at least 72 of the 200 are refused; wait for those.
  await until(() => flood.refused().length >= 72, 'the refusals');
  a.write(lines('a', 100, 100));
  a.write(lines('a', 5, 200, () => ({ $table: 'eval' }))); // a new table: its files open in the descriptors kept free
  // Source B, a real trainer (socketSink in a child), comes while the collector is full.
  const b = spawn(process.execPath, [pusher, `127.0.0.1:${col.port}`, 'b', '300', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let bErr = '';
  b.stderr.on('data', (s: Buffer) => (bErr += s));
  const bExited = new Promise<number | null>((r) => b.once('exit', r));
  t.teardown(() => {
    if (b.exitCode === null) b.kill('SIGKILL');
  });
  await until(() => bErr.includes('W_SOCKET_REFUSED'), 'the trainer to be refused');
  t.match(bErr, /ERR_TOO_MANY_CONNECTIONS/, 'the trainer was told why');
  // Every connection was either taken (and sits idle) or refused with exactly one line.
  await until(() => flood.refused().every((c) => c.closed), 'the refused connections to be closed');
  const line = '{"$error":"ERR_TOO_MANY_CONNECTIONS","message":"collect: out of file descriptors; try again later"}\n';
  t.same([...new Set(flood.refused().map((c) => c.got))], [line], `${flood.refused().length} refused, each with that one line`);
  t.ok(flood.all.filter((c) => c.got === '').every((c) => !c.closed), 'the connections it took stay open');
  t.ok(col.alive(), 'the collector is alive');
  flood.destroy(); // descriptors free again: the trainer's retry gets in
  t.equal(await bExited, 0, bErr);
  a.end();
  await new Promise((r) => a.once('close', r));
  // Listening still: a new pusher gets through after the flood.
  await push(col.port, [lines('c', 3)]);
  col.child.kill('SIGTERM');
  t.equal(await col.exited, 0, col.err());
  const warnings = col.err().match(/rowlog warning \w+/g) ?? [];
  t.same(warnings, ['rowlog warning W_COLLECT_NO_FDS'], `one warning: ${col.err()}`);
  t.match(col.err(), /rowlog collect: stopped; 508 rows from 3 sources written; lines skipped: 0; connections refused: \d+\n$/);
  t.same((await rows(path.join(col.dir, 'a', 'train.jsonl.gz'))).map((r) => r.i), [...Array(200).keys()], 'A: every train row, once, in order');
  t.same((await rows(path.join(col.dir, 'a', 'eval.jsonl.gz'))).map((r) => r.i), [200, 201, 202, 203, 204], 'A: the new table too');
  t.same((await rows(path.join(col.dir, 'b', 'train.jsonl.gz'))).map((r) => r.i), [...Array(300).keys()], 'B: every row, once, in order');
  t.equal((await rows(path.join(col.dir, 'c', 'train.jsonl.gz'))).length, 3);
  for (const f of ['a/train.jsonl.gz', 'a/eval.jsonl.gz', 'b/train.jsonl.gz']) endsCleanly(t, path.join(col.dir, f));
});

t.test('maxConnections: one more is refused with one line and one warning; what it sent first is still written', async (t) => {
  // A collector that starts anyway (the option ignored) is closed, so the test still ends.
  const attempt = (maxConnections: unknown) =>
    collect({ port: 0, dir: tmpdir(t), maxConnections: maxConnections as number }).then(async (c) => {
      await c.close();
      return c;
    });
  await t.rejects(attempt(0), { name: 'RangeError', code: 'ERR_INVALID_OPTION', message: /^maxConnections: / });
  await t.rejects(attempt('5'), { name: 'TypeError', code: 'ERR_INVALID_OPTION' });
  const { c, dir, warnings } = await start(t, { maxConnections: 2 });
  const held = idlers(c.port, 2);
  t.teardown(held.destroy);
  await until(() => c.connections === 2, 'two connections');
  const line = '{"$error":"ERR_TOO_MANY_CONNECTIONS","message":"collect: 2 connections are open (maxConnections); try again later"}\n';
  // A pusher that writes its rows before it reads the refusal loses none of them.
  t.equal(await push(c.port, [lines('late', 5)]), line, 'the refused pusher got the line');
  await until(() => c.counts.rows === 5, 'its rows');
  const flood = idlers(c.port, 20);
  t.teardown(flood.destroy);
  await until(() => flood.all.every((x) => x.closed), 'the refusals');
  t.same([...new Set(flood.all.map((x) => x.got))], [line], 'each refused connection got that one line');
  t.same(warnings.map((w) => w.code), ['W_COLLECT_TOO_MANY_CONNECTIONS'], 'one warning');
  t.match(c.counts, { connections: 2, refused: 21, busy: 21 });
  held.destroy();
  await until(() => c.connections === 0, 'the held connections to close');
  t.equal(await push(c.port, [lines('after', 3)]), '', 'a slot is free again');
  await until(() => c.counts.rows === 8, 'rows after the flood');
  await c.close();
  t.same((await rows(path.join(dir, 'late', 'train.jsonl.gz'))).map((r) => r.i), [0, 1, 2, 3, 4]);
  t.equal((await rows(path.join(dir, 'after', 'train.jsonl.gz'))).length, 3);
});
