/**
 * tail(): the last rows of a .jsonl / .jsonl.gz like `zcat FILE | tail -n N`, reading a rowlog
 * .gz from its end only; following growth, torn members, truncation and replacement.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { jsonlSink } from '../lib/index.js';
import type { Entry, FlatRow } from '../lib/index.js';
import { tail, tailLines } from '../lib/read/tail.js';
import type { TailOptions } from '../lib/read/tail.js';
import { run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const entry = (i: number, data: FlatRow = { i, v: i / 7, s: `row ${i} ${'x'.repeat(i % 30)}` }): Entry<FlatRow> => ({
  table: 't',
  level: 20,
  step: i,
  time: 1000 + i,
  data,
});
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

async function write(file: string, rows: Entry<FlatRow>[]): Promise<void> {
  const sink = jsonlSink({ path: file });
  for (const e of rows) sink.write(e);
  await new Promise<void>((resolve, reject) => sink.on('error', reject).end(resolve));
}

/** What `zcat FILE | tail -n N` (or `tail -n N FILE`) prints. */
function unixTail(file: string, n: number): string {
  const r = run('sh', ['-c', `${file.endsWith('.gz') ? 'zcat' : 'cat'} '${file}' | tail -n ${n}`]);
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

async function collect(file: string, opts?: TailOptions): Promise<string> {
  let text = '';
  for await (const line of tailLines(file, opts)) text += `${line}\n`;
  return text;
}

/** Follows `file`, handing each line to `onLine` until it returns true; then stops the tail. */
async function follow(file: string, opts: TailOptions, onLine: (line: string) => boolean | Promise<boolean>): Promise<void> {
  const stop = new AbortController();
  for await (const line of tailLines(file, { ...opts, follow: true, pollMs: 20, signal: stop.signal })) {
    if (await onLine(line)) stop.abort();
  }
}

t.test('the last N lines of a .jsonl and a rowlog .jsonl.gz are those of `zcat FILE | tail -n N`', async (t) => {
  if (!needs(t, 'zcat')) return;
  const dir = tmpdir(t);
  const rows = range(0, 30_000).map((i) => entry(i));
  for (const name of ['t.jsonl', 't.jsonl.gz']) {
    const file = path.join(dir, name);
    await write(file, rows);
    for (const n of [0, 1, 10, 2500, 40_000]) t.equal(await collect(file, { lines: n }), unixTail(file, n), `${name} -n ${n}`);
    t.equal(await collect(file), unixTail(file, 10), `${name}: 10 by default`);
  }
});

t.test('tail() parses rows and restores NaN and Infinity', async (t) => {
  const file = path.join(tmpdir(t), 'nan.jsonl.gz');
  await write(file, [entry(0), entry(1, { a: NaN, b: Infinity, c: -Infinity, s: 'NaN Infinity "x"' })]);
  const rows = [];
  for await (const row of tail(file, { lines: 1 })) rows.push(row);
  t.same(rows, [{ $step: 1, $time: 1001, $level: 20, a: NaN, b: Infinity, c: -Infinity, s: 'NaN Infinity "x"' }]);
});

t.test('a large rowlog .gz: only the last members are read and inflated', async (t) => {
  const file = path.join(tmpdir(t), 'big.jsonl.gz');
  await write(file, range(0, 200_000).map((i) => entry(i)));
  const size = fs.statSync(file).size;
  const expected = unixTail(file, 20);

  // Count the bytes read: member headers (18 bytes each) plus the last members, not the file.
  const readSync = fs.readSync;
  let bytesRead = 0;
  fs.readSync = ((...args: Parameters<typeof fs.readSync>) => {
    const n = readSync(...args);
    bytesRead += n;
    return n;
  }) as typeof fs.readSync;
  let text: string;
  try {
    text = await collect(file, { lines: 20 });
  } finally {
    fs.readSync = readSync;
  }
  t.equal(text, expected);
  t.ok(bytesRead < size / 20, `read ${bytesRead} of ${size} bytes`);

  // Corrupt the deflate data of the first member: zcat fails, tail does not notice.
  const fd = fs.openSync(file, 'r+');
  const first = scanMembers(fd, size).members[0]!;
  fs.writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, first.offset + 30);
  fs.closeSync(fd);
  if (peer('zcat')) t.not(run('sh', ['-c', `zcat '${file}' > /dev/null`]).status, 0, 'the file is corrupt for zcat');
  t.equal(await collect(file, { lines: 20 }), expected, 'tail still shows the last rows');
});

t.test('a gzip written by the gzip command (one stream, or members concatenated) is decoded whole', async (t) => {
  if (!needs(t, 'gzip')) return;
  const dir = tmpdir(t);
  const plain = path.join(dir, 'p.jsonl');
  await write(plain, range(0, 20_000).map((i) => entry(i)));
  const one = path.join(dir, 'one.jsonl.gz');
  const two = path.join(dir, 'two.jsonl.gz');
  t.equal(run('sh', ['-c', `gzip -c '${plain}' > '${one}' && (head -n 7 '${plain}' | gzip -c; tail -n +8 '${plain}' | gzip -c) > '${two}'`]).status, 0);
  for (const file of [one, two]) {
    t.equal(await collect(file, { lines: 15 }), unixTail(plain, 15), path.basename(file));
  }
  t.equal(await collect(two, { lines: 20_000 }), fs.readFileSync(plain, 'utf8'), 'every line across members');
  t.equal(await collect(one, { lines: 0 }), '', '-n 0');

  // Cut short (still being written): the whole lines that decode.
  const cut = path.join(dir, 'cut.jsonl.gz');
  fs.writeFileSync(cut, fs.readFileSync(one).subarray(0, 20_000));
  const partial = await collect(cut, { lines: 20_000 });
  t.ok(partial.length > 1000 && fs.readFileSync(plain, 'utf8').startsWith(partial), `a prefix of whole lines (${partial.length} bytes)`);

  // Following: another member appended, then the file truncated and written again.
  const grow = path.join(dir, 'grow.jsonl.gz');
  fs.copyFileSync(one, grow);
  const seen: string[] = [];
  await follow(grow, { lines: 1 }, (line) => {
    seen.push(line);
    if (line === 'first') fs.writeFileSync(grow, gzip('again\n'));
    else if (seen.length === 1) fs.appendFileSync(grow, gzip('first\nsecond\n'));
    return line === 'again';
  });
  t.same(seen.slice(1), ['first', 'second', 'again']);
});

function gzip(text: string): Buffer {
  return zlib.gzipSync(text);
}

t.test('a torn last member and a line without its newline are not shown until whole', async (t) => {
  const dir = tmpdir(t);
  const gz = path.join(dir, 'torn.jsonl.gz');
  await write(gz, range(0, 10_000).map((i) => entry(i)));
  const full = fs.readFileSync(gz);
  const fd = fs.openSync(gz, 'r');
  const members = scanMembers(fd, full.length).members;
  fs.closeSync(fd);
  const last = members.at(-2)!; // the last data member (the EOF member follows)
  fs.writeFileSync(gz, full.subarray(0, 10)); // not even a whole header yet
  t.equal(await collect(gz), '', 'a first member cut in its header: no lines');
  fs.writeFileSync(gz, full.subarray(0, last.offset + 10)); // cut inside the last member
  const before = (await collect(gz, { lines: 3 })).split('\n');
  t.ok(JSON.parse(before[2]!).i < 9999, 'the rows of the torn member are not shown');

  // The rest of the member lands: following shows exactly the rows after those shown.
  const seen: number[] = [];
  await follow(gz, { lines: 1 }, (line) => {
    seen.push((JSON.parse(line) as { i: number }).i);
    if (seen.length === 1) fs.appendFileSync(gz, full.subarray(last.offset + 10));
    return seen.at(-1) === 9999;
  });
  t.same(seen, range(seen[0]!, 10_000), 'every row once, in order');

  const plain = path.join(dir, 'p.jsonl');
  fs.writeFileSync(plain, '{"a":1}\n{"a":2}\n{"a":');
  const lines: string[] = [];
  await follow(plain, {}, (line) => {
    lines.push(line);
    if (lines.length === 2) fs.appendFileSync(plain, '3}\n{"a":4}\n');
    return lines.length === 4;
  });
  t.same(lines, ['{"a":1}', '{"a":2}', '{"a":3}', '{"a":4}']);
});

t.test('following: growth, truncation to 0 and delete + recreate, each new file from its start', async (t) => {
  const dir = tmpdir(t);
  for (const name of ['f.jsonl.gz', 'f.jsonl']) {
    const file = path.join(dir, name);
    await write(file, range(0, 1000).map((i) => entry(i)));
    const seen: number[] = [];
    // Each step runs once the rows before it have been shown.
    const steps: Array<[number, () => unknown]> = [
      [999, () => write(file, range(1000, 1500).map((i) => entry(i)))], // growth (a writer reopening the file)
      [1499, async () => {
        fs.truncateSync(file, 0);
        await write(file, range(5000, 5003).map((i) => entry(i)));
      }],
      [5002, () => {
        fs.rmSync(file);
        // recreated while the tail polls: the first polls find no file
        setTimeout(() => void write(file, range(7000, 7002).map((i) => entry(i))), 100);
      }],
    ];
    await follow(file, { lines: 2 }, async (line) => {
      const i = (JSON.parse(line) as { i: number }).i;
      seen.push(i);
      const step = steps.find(([after]) => after === i);
      if (step) await step[1]();
      return i === 7001;
    });
    t.same(seen, [998, 999, ...range(1000, 1500), 5000, 5001, 5002, 7000, 7001], name);
  }
});

t.test('a rowlog .gz rewritten in place (same inode) is read again from its start', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'r.jsonl.gz');
  const other = path.join(dir, 'other.jsonl.gz');
  await write(file, range(0, 10).map((i) => entry(i)));
  await write(other, range(100, 3000).map((i) => entry(i)));
  const seen: number[] = [];
  await follow(file, { lines: 1 }, (line) => {
    seen.push((JSON.parse(line) as { i: number }).i);
    if (seen.length === 1) fs.writeFileSync(file, fs.readFileSync(other)); // larger, other member boundaries
    return seen.at(-1) === 2999;
  });
  t.same(seen, [9, ...range(100, 3000)]);
});

t.test('tail() skips lines that are not JSON objects', async (t) => {
  const file = path.join(tmpdir(t), 'mixed.jsonl');
  fs.writeFileSync(file, '{"a":1}\nnot json\n[1,2]\n{"b":NaN, "c": "x"}\n');
  const rows = [];
  for await (const row of tail(file)) rows.push(row);
  t.same(rows, [{ a: 1 }, { b: NaN, c: 'x' }]);
});

t.test('an empty file is waited for; aborting ends the iteration; a missing file throws', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'late.jsonl.gz');
  fs.writeFileSync(file, '');
  t.equal(await collect(file), '', 'an empty file has no lines');
  const got: string[] = [];
  const pending = follow(file, {}, (line) => {
    got.push(line);
    return true;
  });
  await write(file, [entry(1)]);
  await pending;
  t.same(got.map((l) => JSON.parse(l) as unknown), [{ $step: 1, $time: 1001, $level: 20, i: 1, s: 'row 1 x', v: 1 / 7 }]);

  const stop = new AbortController();
  stop.abort();
  t.equal(await collect(file, { follow: true, signal: stop.signal }), `${got[0]}\n`, 'already aborted: the last lines, then done');
  await t.rejects(collect(path.join(dir, 'missing.jsonl')), { code: 'ENOENT' });
  await t.rejects(collect(file, { lines: -1 }), { code: 'ERR_INVALID_OPTION' });
});

t.test('tail() options: maxLookbackBytes bounds the first read and is noticed; bad options are ERR_INVALID_OPTION', async (t) => {
  const file = path.join(tmpdir(t), 'long.jsonl');
  fs.writeFileSync(file, `{"a":1}\n{"b":"${'x'.repeat(5000)}"}\n{"c":3}\n`);
  const notices: unknown[] = [];
  t.equal(await collect(file, { lines: 3, maxLookbackBytes: 100, onNotice: (n) => notices.push(n) }), '{"c":3}\n', 'only what fits in 100 bytes');
  t.same(notices, [{ type: 'lookback', limit: 100, shown: 1 }]);
  notices.length = 0;
  t.equal(await collect(file, { lines: 3, maxLookbackBytes: 10_000, onNotice: (n) => notices.push(n) }), fs.readFileSync(file, 'utf8'), 'all of it within 10,000');
  t.same(notices, []);

  // Following: a line over the bound is skipped and noticed, the next one shown.
  const seen: string[] = [];
  await follow(file, { lines: 1, maxLookbackBytes: 100, onNotice: (n) => notices.push(n) }, (line) => {
    seen.push(line);
    if (line === '{"c":3}') fs.appendFileSync(file, `{"d":"${'y'.repeat(500)}"}\n{"e":5}\n`);
    return line === '{"e":5}';
  });
  t.same(seen, ['{"c":3}', '{"e":5}']);
  t.same(notices, [{ type: 'long-line', limit: 100 }]);

  await t.rejects(collect(file, { maxLookbackBytes: 0 }), { code: 'ERR_INVALID_OPTION', message: /^maxLookbackBytes/ });
  await t.rejects(collect(file, { onNotice: 'loud' as never }), { code: 'ERR_INVALID_OPTION', message: /^onNotice/ });
});
