/**
 * `rowlog pipe` gives back the trainer's bytes exactly (issue 11): 20 MB of random bytes
 * (invalid UTF-8, NUL, `\r\n`, a last line without `\n`, a line past --max-line-bytes) with
 * rows among them → stdout is the input without the row lines (same sha256), and the rows are
 * logged. A slow reader of stdout slows pipe down; it does not make it hold the input.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { spawnCli } from './cli.js';
import { readJsonl, tmpdir } from './helpers.js';
import { until } from './wait.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 2 ** 20;
const NL = Buffer.from('\n');

/** Runs `rowlog pipe ARGS` with `input` on stdin; resolves with its exit code, stdout and stderr. */
async function pipe(args: string[], input: Buffer) {
  const child = spawnCli(['pipe', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => (err += b));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  const code = await new Promise<number | null>((r) => child.once('close', r));
  return { code, stdout: Buffer.concat(out), stderr: err };
}

t.test('20 MB of random bytes with rows among them: stdout is exactly the bytes that are not rows', async (t) => {
  const dir = path.join(tmpdir(t), 'run');
  const parts: Buffer[] = [];
  const text: Buffer[] = [];
  const add = (b: Buffer, isRow = false) => {
    parts.push(b);
    if (!isRow) text.push(b);
  };
  add(Buffer.from('caf\xe9 latin-1, not UTF-8\r\n', 'latin1'));
  add(Buffer.from([0, 0, 0x0a, 0xff, 0xfe, 0x0d, 0x0a, 0xed, 0xa0, 0x80, 0x0a])); // NULs, BOM-ish bytes, a lone surrogate
  add(Buffer.from('{"not": "an object"\n[1,2]\n{"crlf": "text"} trailing\r\n'));
  for (let i = 0; i < 200; i++) {
    add(Buffer.concat([randomBytes(100 * 1024), NL]));
    add(Buffer.from(`{"$step":${i},"loss":${1 / (i + 1)}}${i % 2 ? '\r' : ''}\n`), true);
  }
  add(Buffer.concat([Buffer.alloc(3 * MiB, '{'), NL])); // past --max-line-bytes: streamed through, not read
  add(Buffer.from(randomBytes(5000).map((b) => (b === 10 ? 32 : b)))); // the last line, without `\n`
  const input = Buffer.concat(parts);
  const expected = Buffer.concat(text);
  const r = await pipe(['--dir', dir, '--no-console', '--max-line-bytes', String(MiB)], input);
  t.equal(r.code, 0, `exit 0 ${r.stderr}`);
  t.equal(r.stdout.length, expected.length, `${r.stdout.length} bytes out for ${expected.length} that are not rows (${input.length} in)`);
  t.equal(sha(r.stdout), sha(expected), 'stdout is byte for byte the input without its rows (sha256)');
  t.match(r.stderr, /^rowlog warning W_PIPE_LONG_LINE: line \d+ is longer than 1048576 bytes \(--max-line-bytes\): passed through to stdout, not logged/m, 'the long line that looks like a row is told');
  t.equal(r.stderr.match(/W_PIPE_LONG_LINE/g)?.length, 1, 'once');
  const rows = readJsonl(path.join(dir, 'main.jsonl.gz'));
  t.same(rows.map((x) => x.$step), [...Array(200).keys()], 'every row logged, \\r\\n ones too');
  t.equal(rows[3]?.loss, 0.25);
});

t.test('a slow reader of stdout: pipe waits for it instead of holding the input', async (t) => {
  if (process.platform !== 'linux') return;
  const dir = path.join(tmpdir(t), 'run');
  const child = spawnCli(['pipe', '--dir', dir, '--no-console'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b));
  child.stdin.on('error', () => undefined);
  const closed = new Promise<number | null>((r) => child.once('close', r));
  const line = Buffer.from(`${'progress '.repeat(100)}\n`);
  const chunk = Buffer.concat(Array(1000).fill(line) as Buffer[]); // ~900 KB of text lines
  const n = 450;
  const total = n * chunk.length; // ~400 MB
  // The reader takes one piece (≤ 64 KiB) per millisecond at most: ~60 MB/s, far slower than
  // pipe, so without backpressure pipe would hold most of the 400 MB (its RSS would show it).
  let got = 0;
  let peak = 0;
  const sample = () => {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      peak = Math.max(peak, Number(m?.[1]) * 1024);
    } catch {}
  };
  child.stdout.on('data', (b: Buffer) => {
    got += b.length;
    child.stdout.pause();
    sample();
    setTimeout(() => child.stdout.resume(), 1);
  });
  let written = 0;
  for (let i = 0; i < n; i++) {
    written += chunk.length;
    if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
  }
  child.stdin.end();
  await until(() => got === total || child.exitCode !== null, 'all the text back', 60_000);
  t.equal(await closed, 0, `exit 0 ${err}`);
  t.equal(got, total, 'every byte came back');
  t.ok(peak < 200e6, `pipe's peak RSS ${Math.round(peak / 1e6)} MB while ${Math.round(written / 1e6)} MB went through`);
});

