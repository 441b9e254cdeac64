/**
 * `rowlog tail` under hostile input (issue 11 §1), through the real CLI: a gzip bomb of one line
 * (peak RSS from the child's own VmHWM), a damaged middle member (magic byte, deflate data), a
 * FIFO with a real writer, and `-f` on a file that does not exist yet.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { BGZF_EOF, bgzfMemberSync, crc32 } from '../lib/format/bgzf.js';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { createLogger, jsonlSink } from '../lib/index.js';
import type { Entry, FlatRow } from '../lib/index.js';
import { CLI, runCli, spawnCli } from './cli.js';
import { run, tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { until } from './wait.js';

const entry = (i: number): Entry<FlatRow> => ({ table: 't', level: 20, step: i, time: 1000 + i, data: { i, loss: 1 / (i + 1) } });
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
const rowText = (i: number) => `{"$step":${i},"$time":${1000 + i},"$level":20,"i":${i},"loss":${1 / (i + 1)}}`;

async function write(file: string, rows: Entry<FlatRow>[]): Promise<void> {
  const sink = jsonlSink({ path: file });
  for (const e of rows) sink.write(e);
  await new Promise<void>((resolve, reject) => sink.on('error', reject).end(resolve));
}

/** One BGZF member holding `mb` MB of 'a' (deflate of repeated bytes: ~1 KB per MB). */
function bombMember(mb: number): Buffer {
  const text = Buffer.alloc(mb * 1e6, 'a');
  const deflated = zlib.deflateRawSync(text, { level: 9 });
  const size = 18 + deflated.length + 8;
  const out = Buffer.alloc(size);
  BGZF_EOF.copy(out, 0, 0, 16);
  out.writeUInt16LE(size - 1, 16);
  deflated.copy(out, 18);
  out.writeUInt32LE(crc32(text), size - 8);
  out.writeUInt32LE(text.length, size - 4);
  return out;
}

/** Runs the CLI in a child that reports its own peak RSS (VmHWM, MB) on fd 3 as it exits (benchmarks/read.bench.ts's wrapper). */
const RSS_WRAPPER = `
  const [cli, ...rest] = process.argv.slice(1);
  process.argv = [process.argv[0], cli, ...rest];
  process.on('exit', () => {
    const m = /^VmHWM:\\s*(\\d+) kB/m.exec(require('fs').readFileSync('/proc/self/status', 'utf8'));
    require('fs').writeSync(3, m === null ? 'NaN' : m[1]);
  });
  import(require('url').pathToFileURL(cli).href);`;

function withPeakRss(args: string[]) {
  const r = spawnSync(process.execPath, ['-e', RSS_WRAPPER, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 30, timeout: 600_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, rssMb: Number(r.output[3]) / 1024 };
}

t.test('tail -n 1 on a BGZF bomb (40 members of 63 MB of one line) says the line is too long and stays under 400 MB', async (t) => {
  const file = path.join(tmpdir(t), 'bomb.jsonl.gz');
  const member = bombMember(63);
  fs.writeFileSync(file, Buffer.concat([...Array.from({ length: 40 }, () => member), bgzfMemberSync(Buffer.from('\n'), 1), BGZF_EOF]));
  t.ok(fs.statSync(file).size < 3e6, `a ${(fs.statSync(file).size / 1e6).toFixed(1)} MB file`);
  const r = withPeakRss(['tail', '-n', '1', file]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '', 'nothing on stdout');
  t.equal(r.stderr, `rowlog: tail: ${file}: the last line is longer than 33554432 bytes; not shown\n`);
  t.ok(r.rssMb < 400, `peak RSS ${r.rssMb.toFixed(0)} MB`);
  t.comment(`tail -n 1 of the bomb: peak RSS ${r.rssMb.toFixed(0)} MB`);

  // Shorter rows after the long line are shown, the long one is said to be too long.
  fs.appendFileSync(file, Buffer.concat([bgzfMemberSync(Buffer.from(`${rowText(1)}\n${rowText(2)}\n`), 1), BGZF_EOF]));
  const some = runCli(['tail', '-n', '5', file]);
  t.equal(some.status, 0, some.stderr);
  t.equal(some.stdout, `${rowText(1)}\n${rowText(2)}\n`);
  t.equal(some.stderr, `rowlog: tail: ${file}: only the last 2 lines fit in 33554432 bytes; the lines before are not shown\n`);
  const small = runCli(['tail', '-n', '1', '--max-lookback', '10', file]);
  t.equal(small.stderr, `rowlog: tail: ${file}: the last line is longer than 10 bytes; not shown\n`, '--max-lookback sets the bound');
});

t.test('tail -n 1 on a plain file of one 100 MB line, and on a gzip (one stream) of 400 MB of one line', async (t) => {
  const dir = tmpdir(t);
  const plain = path.join(dir, 'long.jsonl');
  fs.writeFileSync(plain, Buffer.alloc(100e6, 'b'));
  fs.appendFileSync(plain, '\n');
  const r = withPeakRss(['tail', '-n', '1', plain]);
  t.equal(r.stdout, '');
  t.equal(r.stderr, `rowlog: tail: ${plain}: the last line is longer than 33554432 bytes; not shown\n`);
  t.ok(r.rssMb < 400, `plain: peak RSS ${r.rssMb.toFixed(0)} MB`);
  const gz = path.join(dir, 'long.jsonl.gz');
  const deflate = zlib.createGzip({ level: 9 });
  const out = fs.createWriteStream(gz);
  deflate.pipe(out);
  const block = Buffer.alloc(1 << 20, 'c');
  for (let i = 0; i < 400; i++) if (!deflate.write(block)) await new Promise<void>((resolve) => deflate.once("drain", () => resolve()));
  deflate.end(`\n${rowText(9)}\n`);
  await new Promise<void>((resolve) => out.on('close', () => resolve()));
  const g = withPeakRss(['tail', '-n', '2', gz]);
  t.equal(g.status, 0, g.stderr);
  t.equal(g.stdout, `${rowText(9)}\n`);
  t.equal(g.stderr, `rowlog: tail: ${gz}: only the last 1 line fits in 33554432 bytes; the lines before are not shown\n`);
  t.ok(g.rssMb < 400, `gzip: peak RSS ${g.rssMb.toFixed(0)} MB`);
});

t.test('tail -f stays bounded when a bomb is appended, says the line was skipped and shows the row after it', async (t) => {
  const file = path.join(tmpdir(t), 'grow.jsonl.gz');
  await write(file, [entry(0)]);
  const child = spawn(process.execPath, ['-e', RSS_WRAPPER, CLI, 'tail', '-f', '-n', '1', file], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  let rss = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => (rss += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until(() => stdout === `${rowText(0)}\n`, 'the first row');
  const member = bombMember(63);
  fs.appendFileSync(file, Buffer.concat([...Array.from({ length: 40 }, () => member), bgzfMemberSync(Buffer.from(`\n${rowText(1)}\n`), 1)]));
  await until(() => stdout.includes(rowText(1)), 'the row after the bomb', 60_000);
  child.kill('SIGINT');
  t.equal(await exit, 0);
  t.equal(stdout, `${rowText(0)}\n${rowText(1)}\n`);
  t.equal(stderr, `rowlog: tail: ${file}: a line longer than 33554432 bytes was skipped\n`);
  t.ok(Number(rss) / 1024 < 400, `peak RSS ${(Number(rss) / 1024).toFixed(0)} MB`);
});

/** A 50,000-row rowlog .gz, its members, and the lines of the middle one. */
async function damagedFile(dir: string, name: string) {
  const file = path.join(dir, name);
  await write(file, range(0, 50_000).map((i) => entry(i)));
  const fd = fs.openSync(file, 'r');
  const { members } = scanMembers(fd, fs.statSync(file).size);
  fs.closeSync(fd);
  const mid = members[Math.floor(members.length / 2)]!;
  const bytes = fs.readFileSync(file);
  const lost = zlib.gunzipSync(bytes.subarray(mid.offset, mid.offset + mid.size)).toString('utf8').split('\n').filter((l) => l !== '');
  return { file, mid, lost, all: range(0, 50_000).map(rowText) };
}

function poke(file: string, offset: number, byte: number): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([byte]), 0, 1, offset);
  fs.closeSync(fd);
}

t.test('a damaged middle member: tail shows the true last rows and says which member it skipped', async (t) => {
  const dir = tmpdir(t);
  // The magic byte zeroed: the header walk meets garbage and resyncs on the next member.
  const magic = await damagedFile(dir, 'magic.jsonl.gz');
  poke(magic.file, magic.mid.offset, 0);
  const warn = `rowlog: tail: ${magic.file}: a damaged member at byte ${magic.mid.offset} was skipped (${magic.mid.size} bytes)\n`;
  const r = runCli(['tail', '-n', '3', magic.file]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, `${range(49_997, 50_000).map(rowText).join('\n')}\n`, 'steps 49997–49999');
  t.equal(r.stderr, warn);
  const every = runCli(['tail', '-n', '50000', magic.file]);
  t.equal(every.stdout, `${magic.all.filter((l) => !magic.lost.includes(l)).join('\n')}\n`, `every row but the ${magic.lost.length} of the damaged member`);
  t.equal(every.stderr, warn);

  // A byte of its deflate data changed: found when that member is inflated (its CRC).
  const data = await damagedFile(dir, 'data.jsonl.gz');
  const at = data.mid.offset + 18 + 100;
  poke(data.file, at, fs.readFileSync(data.file)[at]! ^ 0x55);
  const last = runCli(['tail', '-n', '3', data.file]);
  t.equal(last.stdout, `${range(49_997, 50_000).map(rowText).join('\n')}\n`, 'the last rows (the damaged member is not read for them)');
  t.equal(last.stderr, '');
  const through = runCli(['tail', '-n', '50000', data.file]);
  t.equal(through.stdout, `${data.all.filter((l) => !data.lost.includes(l)).join('\n')}\n`, 'every row of every intact member');
  t.equal(through.stderr, `rowlog: tail: ${data.file}: a damaged member at byte ${data.mid.offset} was skipped (${data.mid.size} bytes)\n`);
});

t.test('tail -f keeps following past a damaged member appended to the file', async (t) => {
  const dir = tmpdir(t);
  const { file, mid } = await damagedFile(dir, 'live.jsonl.gz');
  const child = spawnCli(['tail', '-f', '-n', '1', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until(() => stdout === `${rowText(49_999)}\n`, 'the last row');
  const size = fs.statSync(file).size;
  const bad = Buffer.from(fs.readFileSync(file).subarray(mid.offset, mid.offset + mid.size));
  bad[0] = 0;
  const text = (from: number, to: number) => Buffer.from(`${range(from, to).map(rowText).join('\n')}\n`);
  fs.appendFileSync(file, Buffer.concat([bgzfMemberSync(text(50_000, 50_010), 1), bad, bgzfMemberSync(text(50_010, 50_020), 1)]));
  await until(() => stdout.includes(rowText(50_019)), 'the rows after the damage');
  child.kill('SIGINT');
  t.equal(await exit, 0);
  t.equal(stdout, `${range(49_999, 50_020).map(rowText).join('\n')}\n`, 'every intact row once, in order');
  const before = size - 0; // the appended members start where the file ended
  t.equal(stderr, `rowlog: tail: ${file}: a damaged member at byte ${before + bgzfMemberSync(text(50_000, 50_010), 1).length} was skipped (${bad.length} bytes)\n`);
});

t.test('tail FIFO reads a named pipe: the last rows when its writer closes; with -f each row as it comes', async (t) => {
  const dir = tmpdir(t);
  const fifo = path.join(dir, 'rows.jsonl');
  t.equal(run('mkfifo', [fifo]).status, 0);
  const lastTwo = spawnCli(['tail', '-n', '2', fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  lastTwo.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<number | null>((resolve) => lastTwo.on('exit', (code) => resolve(code)));
  const writer = run('sh', ['-c', `for i in 1 2 3 4 5; do echo "{\\"i\\":$i}"; done > '${fifo}'`]);
  t.equal(writer.status, 0);
  t.equal(await done, 0);
  t.equal(out, '{"i":4}\n{"i":5}\n');

  if (needs(t, 'gzip', 'a gzip through the FIFO')) {
    const plain = path.join(dir, 'p.jsonl');
    fs.writeFileSync(plain, `${range(0, 1000).map(rowText).join('\n')}\n`);
    const gz = spawnCli(['tail', '-n', '1', fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = '';
    gz.stdout.setEncoding('utf8').on('data', (d: string) => (got += d));
    const end = new Promise<number | null>((resolve) => gz.on('exit', (code) => resolve(code)));
    t.equal(run('sh', ['-c', `gzip -c '${plain}' > '${fifo}'`]).status, 0);
    t.equal(await end, 0);
    t.equal(got, `${rowText(999)}\n`, 'gzip is decoded by its magic bytes');
  }

  // -f: a writer that sends a row whenever it is told to; each shows before the next is sent.
  const follow = spawnCli(['tail', '-f', fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => follow.kill('SIGKILL'));
  let seen = '';
  let err = '';
  follow.stdout.setEncoding('utf8').on('data', (d: string) => (seen += d));
  follow.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const followed = new Promise<number | null>((resolve) => follow.on('exit', (code) => resolve(code)));
  const feeder = spawn(process.execPath, ['-e', `const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'w'); process.stdin.setEncoding('utf8').on('data', (d) => { for (const l of d.split('\\n')) if (l) fs.writeSync(fd, l + '\\n'); }).on('end', () => fs.closeSync(fd));`, fifo], { stdio: ['pipe', 'ignore', 'inherit'] });
  t.teardown(() => feeder.kill('SIGKILL'));
  for (const i of [1, 2, 3]) {
    feeder.stdin.write(`{"i":${i}}\n`);
    await until(() => seen.endsWith(`{"i":${i}}\n`), `row ${i} shown before the next is written`);
  }
  feeder.stdin.end();
  t.equal(await followed, 0, 'the writer closed: tail -f on a FIFO ends');
  t.equal(seen, '{"i":1}\n{"i":2}\n{"i":3}\n');
  t.equal(err, '');
});

/** True once a thread of process `pid` waits in the kernel for a FIFO's other end (Linux's wchan `wait_for_partner`). */
function inFifoOpen(pid: number): boolean {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).some((task) => {
      try {
        return fs.readFileSync(`/proc/${pid}/task/${task}/wchan`, 'utf8') === 'wait_for_partner';
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

t.test('Ctrl-C ends tail on a FIFO that no writer has opened yet, following or not', async (t) => {
  const fifo = path.join(tmpdir(t), 'idle.jsonl');
  t.equal(run('mkfifo', [fifo]).status, 0);
  for (const args of [['-f', fifo], [fifo]]) {
    const child = spawnCli(['tail', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until(() => inFifoOpen(child.pid!), 'tail to wait in open() for a writer');
    child.kill('SIGINT');
    t.equal(await exit, 0, `tail ${args.join(' ')}: exit 0`);
    t.equal(stderr, '');
  }
});

t.test('tail -f on a file that does not exist yet waits for it, then shows its rows from the start', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'run', 'late.jsonl.gz');
  const child = spawnCli(['tail', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until(() => stderr !== '', 'the waiting line');
  t.equal(stderr, `rowlog: tail: waiting for ${file} to appear\n`);
  const log = createLogger({ dir: path.join(dir, 'run'), console: false, exitHooks: false });
  for (let i = 0; i < 30; i++) log.row('late', { i }, { step: i, time: 5000 + i });
  await log.flush();
  const rows = () => stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { i: number }).i);
  await until(() => rows().length >= 30, 'the 30 rows');
  for (let i = 30; i < 35; i++) log.row('late', { i }, { step: i, time: 5000 + i });
  await log.close();
  await until(() => rows().length >= 35, 'the rows logged after');
  t.same(rows(), range(0, 35), 'every row from the start (not only the last 10), once, in order');
  child.kill('SIGINT');
  t.equal(await exit, 0);
  t.equal(stderr, `rowlog: tail: waiting for ${file} to appear\n`, 'one line on stderr');

  const missing = runCli(['tail', path.join(dir, 'nope.jsonl')]);
  t.equal(missing.status, 1, 'without -f a missing file is still an error');
  t.match(missing.stderr, /^rowlog: tail: cannot open '.*nope\.jsonl': no such file\n$/);
});

t.test('blocked gzip whose members cut lines (bgzip): a damaged member never joins two rows into one, first read or following', async (t) => {
  const { tailLines } = await import('../lib/read/tail.js');
  const dir = tmpdir(t);
  const all = Buffer.from(range(0, 40).map((i) => `${rowText(i)}\n`).join(''));
  // A ends inside row 10 after `{"$step":1`, C starts inside row 20 after `{"$step":2`: joined
  // with B lost, they read as a valid row 10 holding row 20's data.
  const cut1 = all.indexOf('{"$step":10,') + '{"$step":1'.length;
  const cut2 = all.indexOf('{"$step":20,') + '{"$step":2'.length;
  const [a, b, c] = [all.subarray(0, cut1), all.subarray(cut1, cut2), all.subarray(cut2)].map((p) => bgzfMemberSync(p, 1)) as [Buffer, Buffer, Buffer];
  b[b.length - 8] = (b[b.length - 8] as number) ^ 1; // B's CRC
  const want = [...range(0, 10), ...range(21, 40)];
  const steps = (lines: string[]) =>
    lines.flatMap((l) => {
      try {
        const r = JSON.parse(l) as { $step: number; $time: number };
        return [r.$time === 1000 + r.$step ? r.$step : -r.$step]; // a row made of two shows negative
      } catch {
        return []; // a piece: not a row
      }
    });

  const file = path.join(dir, 'foreign.jsonl.gz');
  fs.writeFileSync(file, Buffer.concat([a, b, c, BGZF_EOF]));
  const first: string[] = [];
  for await (const line of tailLines(file, { lines: 100 })) first.push(line);
  t.same(steps(first), want, 'first read: the rows of A and C only');

  const grown = path.join(dir, 'grown.jsonl.gz');
  fs.writeFileSync(grown, a);
  const ac = new AbortController();
  const seen: string[] = [];
  const follow = (async () => {
    for await (const line of tailLines(grown, { lines: 100, follow: true, pollMs: 20, signal: ac.signal })) {
      seen.push(line);
      if (line.includes('"$step":39,')) ac.abort();
    }
  })();
  await until(() => seen.length >= 10, 'the rows of A');
  fs.appendFileSync(grown, Buffer.concat([b, c]));
  await follow;
  t.same(steps(seen), want, 'following: the rows of A and C only');
});
