/**
 * `rowlog tail [-n N] [-f] redis://host:port/RUN/TABLE` against a real redis-server (issue 14
 * point 3): the last N rows as the table's JSONL lines, then `-f` rows as a producer adds them;
 * a table with `/` and `?prefix=`; Redis going away and coming back under `-f`; Ctrl-C and
 * `| head` ending quietly; a bad URL is a usage error; a password is never printed.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { PassThrough } from 'node:stream';
import { runTail } from '../lib/cli/tail.js';
import { redisTableUrl } from '../lib/cli/tail-redis.js';
import { rowJson } from '../lib/format/json-line.js';
import { startChild } from './child.js';
import { CLI, runCli } from './cli.js';
import { run } from './helpers.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';
import { addBlock, redisClient, stepRow } from './redis-blocks.js';
import { until } from './wait.js';

const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => rowJson(stepRow(from + i, true)));

t.test('rowlog tail redis://…', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis({ aof: true, password: 'pa:ss' });
  t.teardown(() => removeRedis(server));
  const c = redisClient(server.url);
  t.teardown(() => c.disconnect());
  for (let e = 0; e < 20; e++) await addBlock(c, 'exp1', 'train', e * 10, 10, { nan: true });
  await addBlock(c, 'exp1', 'grad/layer1', 0, 3, { prefix: 'team', nan: true });
  const url = `${server.url}/exp1/train`;

  t.test('-n N: the last N rows as the JSONL lines of the file', async (t) => {
    const r = runCli(['tail', '-n', '15', url]);
    t.equal(r.stderr, '');
    t.equal(r.status, 0);
    t.same(r.stdout.split('\n').slice(0, -1), lines(185, 200));
    t.match(r.stdout, /^\{"\$step":185,"\$time":1700000000185,"\$level":20,"loss":0\.00537/, 'no $table, as in the file');
    const nan = runCli(['tail', '-n', '1000', url]);
    t.equal(nan.stdout.split('\n')[0], '{"$step":0,"$time":1700000000000,"$level":20,"loss":NaN}', 'NaN written as the file writes it');
    t.equal(runCli(['tail', url]).stdout.split('\n').length - 1, 10, '10 by default');
    const sub = runCli(['tail', `${server.url}/exp1/grad/layer1?prefix=team`]);
    t.same(sub.stdout.split('\n').slice(0, -1), lines(0, 3), 'a table with / under another prefix');
    const none = runCli(['tail', `${server.url}/nobody/train`]);
    t.equal(none.status, 0);
    t.equal(none.stdout, '', 'a stream that does not exist: no rows');
  });

  t.test('--pretty and several sources: labels show the URL without its password', async (t) => {
    const r = runCli(['tail', '-n', '2', url, `${server.url}/exp1/grad/layer1?prefix=team`]);
    t.equal(r.status, 0);
    t.notMatch(r.stdout + r.stderr, /pa:ss|pa%3Ass/, 'the password is never printed');
    const out = r.stdout.split('\n').slice(0, -1);
    t.equal(out.length, 4);
    t.match(out[0], /^redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/exp1\/train: \{"\$step":198/);
    const p = runCli(['tail', '-n', '1', '--pretty', `${server.url}/exp1/grad/layer1?prefix=team`]);
    t.match(p.stdout, /grad\/layer1/, 'pretty names the table');
    t.match(p.stdout, /loss/);
  });

  t.test('-f: rows as they are added; Redis away and back; Ctrl-C ends quietly', async (t) => {
    const tail = startChild(CLI, ['tail', '-n', '2', '-f', url]);
    t.teardown(() => tail.proc.kill('SIGKILL'));
    await tail.line(/"\$step":199/);
    t.same(tail.lines, lines(198, 200));
    for (let e = 20; e < 25; e++) await addBlock(c, 'exp1', 'train', e * 10, 10, { nan: true });
    await tail.line(/"\$step":249/);
    // Redis goes away (killed) and comes back with its AOF: nothing lost, nothing twice.
    await server.stop('SIGKILL');
    await until(() => /out of reach/.test(tail.stderr()), 'the notice');
    await server.start();
    await until(() => c.status === 'ready', 'the test client');
    for (let e = 25; e < 30; e++) await addBlock(c, 'exp1', 'train', e * 10, 10, { nan: true });
    await tail.line(/"\$step":299/);
    t.same(tail.lines, lines(198, 300), 'every row once, in order');
    tail.proc.kill('SIGINT');
    const end = await tail.exited;
    t.same(end, { code: 0, signal: null }, 'SIGINT exits 0');
    t.match(tail.stderr(), /^rowlog: tail: redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/exp1\/train: Redis is out of reach \(.*\); still trying\n/);
    t.match(tail.stderr(), /Redis answers again/);
    t.notMatch(tail.stderr(), /pa:ss|pa%3Ass/);
  });

  t.test('| head ends quietly, following or not', async (t) => {
    const r = run('bash', ['-c', `node '${CLI}' tail -n 50 '${url}' | head -n 3; echo "exit \${PIPESTATUS[0]}" >&2`]);
    t.equal(r.stdout.split('\n').length - 1, 3);
    t.equal(r.stderr, 'exit 0\n', 'exit 0, nothing on stderr');
    // Following, tail learns that head is gone at its next write: a producer keeps writing.
    const piped = spawn('bash', ['-c', `node '${CLI}' tail -n 50 -f '${url}' | head -n 3; echo "exit \${PIPESTATUS[0]}" >&2`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    piped.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    piped.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    let done = false;
    const exited = new Promise((resolve) => piped.once('exit', () => resolve((done = true))));
    for (let step = 300; !done; step += 10) await addBlock(c, 'exp1', 'train', step, 10, { nan: true });
    await exited;
    t.equal(out.split('\n').length - 1, 3, '-f: three lines');
    t.equal(err, 'exit 0\n', '-f: exit 0, nothing on stderr');
  });

  t.test('a wrong password: exit 1, one line, no password', async (t) => {
    const r = runCli(['tail', server.url.replace('pa%3Ass', 'wrong-one') + '/exp1/train']);
    t.equal(r.status, 1);
    t.match(r.stderr, /^rowlog: tail: redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ rowlog:exp1:train: .*(WRONGPASS|invalid)/);
    t.notMatch(r.stderr, /wrong-one/);
    t.equal(r.stderr.split('\n').length, 2, 'one line');
  });

  t.test('in-process: runTail on a URL, followed and stopped by its signal', async (t) => {
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    out.setEncoding('utf8').on('data', (d: string) => (text += d));
    const stop = new AbortController();
    const done = runTail([url], { lines: 1, follow: true, out, err, signal: stop.signal });
    await until(() => text.split('\n').length > 1, 'the first row');
    await addBlock(c, 'exp1', 'train', 100_000, 2, { nan: true });
    await until(() => text.includes('"$step":100001'), 'the live rows');
    stop.abort();
    await done;
    t.same(text.split('\n').slice(-3, -1), lines(100_000, 100_002));
    await t.rejects(runTail([`${server.url.replace('pa%3Ass', 'x')}/exp1/train`], { out, err }), { code: 'ERR_REDIS' });
  });

  t.test('a URL that names no table: usage error', async (t) => {
    const r = runCli(['tail', `${server.url}/exp1`]);
    t.equal(r.status, 2);
    t.match(r.stderr, /^rowlog: tail: FILE: must name a run and a table: redis:\/\/host:port\/RUN\/TABLE \(got redis:\/\/:\*\*\*@127/);
    t.notMatch(r.stderr, /pa:ss|pa%3Ass/);
    t.equal(runCli(['tail', 'redis://127.0.0.1:1/a:b/t']).status, 2, 'a run name with a colon');
  });
});

t.test('tail: redis:// URLs checked (no server needed)', async (t) => {
  t.same(redisTableUrl('rediss://u:p@h:1/r/a/b?prefix=x'), { redis: 'rediss://u:p@h:1', shown: 'rediss://***:***@h:1/r/a/b?prefix=x', run: 'r', table: 'a/b', prefix: 'x' });
  t.throws(() => redisTableUrl('redis://h:1/r/t?prefix=a%20b'), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => redisTableUrl('redis://[h'), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => redisTableUrl('redis://h:1/r'), { code: 'ERR_INVALID_OPTION', message: /must name a run and a table/ });
  await t.rejects(runTail(['redis://:pw@h:1/a:b/t']), { code: 'ERR_INVALID_OPTION', message: /^FILE: must name a run and a table/ });
});
