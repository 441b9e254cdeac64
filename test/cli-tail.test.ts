/**
 * `rowlog tail`: what a user sees. The last rows as `zcat | tail` shows them, several files with
 * a `FILE: ` prefix, `--pretty`, `-f` on a file another process is logging into (each row shown
 * within 500 ms), truncation and replacement, `| head` and Ctrl-C ending quietly.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import t from 'tap';
import type { Test } from 'tap';
import { jsonlSink } from '../lib/index.js';
import type { Entry, FlatRow } from '../lib/index.js';
import { CLI as MAIN, runCli, spawnCli } from './cli.js';
import { ROOT, run, tmpdir } from './helpers.js';
import { patient } from './wait.js';

const rowlog = (args: string[], cwd = ROOT) => runCli(args, { cwd });
const entry = (i: number, data: FlatRow = { i, loss: 1 / (i + 1) }): Entry<FlatRow> => ({ table: 't', level: 20, step: i, time: 1000 + i, data });
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

async function write(file: string, rows: Entry<FlatRow>[]): Promise<void> {
  const sink = jsonlSink({ path: file });
  for (const e of rows) sink.write(e);
  await new Promise<void>((resolve, reject) => sink.on('error', reject).end(resolve));
}

/** `rowlog tail ARGS` running in the background: the lines it printed (with when), and a way to wait for more. */
function follower(args: string[]) {
  const child = spawnCli(['tail', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<{ line: string; at: number }> = [];
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const wake: Array<() => void> = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push({ line, at: Date.now() });
    for (const w of wake.splice(0)) w();
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exit,
    stderr: () => stderr,
    /** Resolves once `done()` holds for the lines printed so far (re-checked on each line); rejects after patient(20 s). */
    async until(done: () => boolean, what: string): Promise<void> {
      const deadline = Date.now() + patient(20_000);
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`rowlog tail never printed ${what}; stderr: ${stderr}`);
        await new Promise<void>((resolve) => {
          wake.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

/** Starts a fixture writer and resolves once its first rows are in the file. */
async function startWriter(t: Test, fixture: string, file: string, mode?: string) {
  const writer = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', fixture), file, ...(mode ? [mode] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => writer.kill('SIGKILL'));
  await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
  return writer;
}

t.test('rowlog tail -n N prints what `zcat FILE | tail -n N` prints; several files get a FILE: prefix', async (t) => {
  const dir = tmpdir(t);
  await write(path.join(dir, 'a.jsonl.gz'), range(0, 50_000).map((i) => entry(i)));
  await write(path.join(dir, 'b.jsonl'), range(0, 100).map((i) => entry(i)));
  const r = rowlog(['tail', '-n', '20', 'a.jsonl.gz'], dir);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, '');
  t.equal(r.stdout, run('sh', ['-c', 'zcat a.jsonl.gz | tail -n 20'], { cwd: dir }).stdout);
  t.equal(rowlog(['tail', 'b.jsonl'], dir).stdout, run('tail', ['b.jsonl'], { cwd: dir }).stdout, '10 rows by default');

  const both = rowlog(['tail', '-n', '2', 'a.jsonl.gz', 'b.jsonl'], dir);
  t.equal(both.status, 0, both.stderr);
  t.equal(
    both.stdout,
    [
      'a.jsonl.gz: {"$step":49998,"$time":50998,"$level":20,"i":49998,"loss":0.00002000040000800016}',
      'a.jsonl.gz: {"$step":49999,"$time":50999,"$level":20,"i":49999,"loss":0.00002}',
      'b.jsonl: {"$step":98,"$time":1098,"$level":20,"i":98,"loss":0.010101010101010102}',
      'b.jsonl: {"$step":99,"$time":1099,"$level":20,"i":99,"loss":0.01}',
      '',
    ].join('\n'),
  );
});

t.test('rowlog tail --pretty renders rows like the console sink', async (t) => {
  const dir = tmpdir(t);
  await write(path.join(dir, 'train.jsonl.gz'), [entry(0), entry(7, { loss: 0.123456789, acc: 0.5, nan: NaN })]);
  const r = rowlog(['tail', '-n', '1', '--pretty', 'train.jsonl.gz'], dir);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '── train  step 7  INFO ─────────────────\nacc   0.5\nloss  0.123457\nnan   NaN\n');
});

t.test('rowlog tail --filter applies a jq filter to each row; a bad filter exits 2 before reading', async (t) => {
  const file = path.join(tmpdir(t), 'f.jsonl.gz');
  await write(file, range(0, 1000).map((i) => entry(i)));
  const r = rowlog(['tail', '-n', '4', '--filter', 'select(.i % 2 == 0) | {i, loss}', file]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, [996, 998].map((i) => `${JSON.stringify({ i, loss: 1 / (i + 1) })}\n`).join(''));
  const bad = rowlog(['tail', '--filter', '.[ oops', file]);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /syntax error/);
  t.equal(bad.stdout, '');
});

t.test('a missing file is one line on stderr and exit 1; a bad -n is a usage error', async (t) => {
  const dir = tmpdir(t);
  const missing = rowlog(['tail', 'nope.jsonl'], dir);
  t.equal(missing.status, 1);
  t.equal(missing.stdout, '');
  t.equal(missing.stderr, "rowlog: tail: cannot open 'nope.jsonl': no such file\n");
  const bad = rowlog(['tail', '-n', 'ten', 'nope.jsonl'], dir);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /-n, --lines.*'ten' is invalid/);
});

t.test('rowlog tail -f shows rows another process logs within 500 ms, flush after flush; Ctrl-C exits 0', async (t) => {
  const file = path.join(tmpdir(t), 'live.jsonl.gz');
  const writer = await startWriter(t, 'tail-writer.mjs', file);
  const tail = follower(['-f', '-n', '0', file]);
  const batches = new Set<number>();
  const delays: number[] = [];
  let checked = 0;
  await tail.until(() => {
    for (; checked < tail.lines.length; checked++) {
      const { line, at } = tail.lines[checked]!;
      const row = JSON.parse(line) as { $time: number; b: number };
      delays.push(at - row.$time);
      batches.add(row.b);
    }
    return batches.size >= 60;
  }, '60 batches');
  writer.kill('SIGKILL');
  t.ok(batches.size >= 50, `rows of ${batches.size} distinct flushes seen`);
  const slow = delays.filter((d) => d >= 500);
  t.same(slow, [], `every row shown within 500 ms of being logged (max ${Math.max(...delays)} ms)`);
  const rows = tail.lines.map(({ line }) => (JSON.parse(line) as { i: number }).i);
  t.same(rows, range(rows[0]!, rows[0]! + rows.length), 'every row once, in order');

  tail.child.kill('SIGINT');
  t.equal(await tail.exit, 0, 'SIGINT exits 0');
  t.equal(tail.stderr(), '');
});

t.test('rowlog tail -f survives truncation and delete + recreate, then shows the new rows', async (t) => {
  const file = path.join(tmpdir(t), 'rot.jsonl.gz');
  await write(file, range(0, 100).map((i) => entry(i)));
  const tail = follower(['-f', '-n', '2', file]);
  const seen = () => tail.lines.map(({ line }) => (JSON.parse(line) as { i: number }).i);
  await tail.until(() => seen().length === 2, 'the last 2 rows');
  fs.truncateSync(file, 0);
  await write(file, range(500, 503).map((i) => entry(i)));
  await tail.until(() => seen().includes(502), 'the rows after truncation');
  fs.rmSync(file);
  await write(file, range(900, 902).map((i) => entry(i)));
  await tail.until(() => seen().includes(901), 'the rows of the new file');
  t.same(seen(), [98, 99, 500, 501, 502, 900, 901]);
  tail.child.kill('SIGINT');
  t.equal(await tail.exit, 0);
  t.equal(tail.stderr(), '', 'nothing on stderr');
});

t.test('`rowlog tail | head -n 3` exits 0 quietly, following or not', async (t) => {
  const dir = tmpdir(t);
  const big = path.join(dir, 'big.jsonl.gz');
  await write(big, range(0, 100_000).map((i) => entry(i)));
  const live = path.join(dir, 'live.jsonl.gz');
  await startWriter(t, 'crash-writer.mjs', live, 'steady');
  for (const args of [`-n 100000 '${big}'`, `-f '${live}'`]) {
    const r = run('bash', ['-c', `node '${MAIN}' tail ${args} | head -n 3; echo "exit \${PIPESTATUS[0]}" >&2`]);
    t.equal(r.stdout.split('\n').length, 4, `${args}: three lines`);
    t.equal(r.stderr, 'exit 0\n', `${args}: exit 0, nothing on stderr`);
  }
});
