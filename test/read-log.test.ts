/**
 * readLog: the rows of our own files (JSONL, blocked gzip, CSV), of gzip written by `gzip` and
 * Python, of multi-member and torn gzip, and of streams; NaN/Infinity restored; bad lines numbered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import t from 'tap';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { csvSink, isRowlogError, jsonlSink } from '../lib/index.js';
import type { Entry, FlatRow } from '../lib/index.js';
import { readLog } from '../lib/read/read-log.js';
import type { LogReader, ReadLogOptions } from '../lib/read/read-log.js';
import { run, tmpdir } from './helpers.js';
import { needs } from './peers.js';

const entry = (i: number, data: FlatRow = { i, v: i / 7, s: `row ${i}` }): Entry<FlatRow> => ({ table: 't', level: 20, step: i, time: 1000 + i, data });
const row = (i: number) => ({ $step: i, $time: 1000 + i, $level: 20, i, s: `row ${i}`, v: i / 7 });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function write(sink: ReturnType<typeof jsonlSink>, rows: Entry<FlatRow>[]): Promise<void> {
  for (const e of rows) sink.write(e);
  await new Promise<void>((resolve, reject) => sink.on('error', reject).end(resolve));
}

async function readAll(source: string | NodeJS.ReadableStream, opts?: ReadLogOptions): Promise<{ rows: Array<Record<string, unknown>>; reader: LogReader }> {
  const reader = readLog(source, opts);
  const rows: Array<Record<string, unknown>> = [];
  for await (const r of reader) rows.push(r);
  return { rows, reader };
}

/** The JSONL text of rows 0..n-1 as our sink writes it. */
const jsonlText = (n: number) => range(n).map((i) => `${JSON.stringify(row(i))}\n`).join('');

t.test('files written by jsonlSink and csvSink, plain and .gz, read back the rows', async (t) => {
  const dir = tmpdir(t);
  const rows = range(3000).map((i) => entry(i));
  for (const file of ['t.jsonl', 't.jsonl.gz']) await write(jsonlSink({ path: path.join(dir, file) }), rows);
  await write(csvSink({ path: path.join(dir, 't.csv') }), rows);
  const expected = range(3000).map(row);
  for (const file of ['t.jsonl', 't.jsonl.gz', 't.csv']) {
    const { rows: got, reader } = await readAll(path.join(dir, file));
    t.same(got, expected, file);
    t.same(reader.badLines, [], `${file}: no bad lines`);
    t.equal(reader.truncated, false, `${file}: not truncated`);
  }
  fs.renameSync(path.join(dir, 't.jsonl.gz'), path.join(dir, 'renamed.txt'));
  t.same((await readAll(path.join(dir, 'renamed.txt'))).rows, expected, 'gzip is found by its magic bytes, not the name');
});

t.test('gzip written by the gzip command and by Python, and concatenated members', async (t) => {
  if (!needs(t, ['gzip', 'python3'])) return;
  const dir = tmpdir(t);
  const plain = path.join(dir, 'p.jsonl');
  fs.writeFileSync(plain, jsonlText(5000));
  const expected = range(5000).map(row);

  t.equal(run('gzip', ['-k', '-9', plain]).status, 0);
  t.same((await readAll(`${plain}.gz`)).rows, expected, 'gzip -9');

  const py = path.join(dir, 'py.jsonl.gz');
  const r = run('python3', ['-c', `
import gzip, json, math, sys
with gzip.open(sys.argv[1], 'wt') as f:
    for i in range(5000):
        f.write(json.dumps({"$step": i, "$time": 1000 + i, "$level": 20, "i": i, "s": f"row {i}", "v": i / 7}) + "\\n")
    f.write(json.dumps({"nan": math.nan, "pinf": math.inf, "ninf": -math.inf, "s": "NaN"}) + "\\n")
`, py]);
  t.equal(r.status, 0, r.stderr);
  const fromPy = await readAll(py);
  t.same(fromPy.rows.slice(0, -1), expected, 'Python-written gzip');
  t.match(fromPy.rows.at(-1), { nan: NaN, pinf: Infinity, ninf: -Infinity, s: 'NaN' }, 'Python NaN/Infinity come back as numbers');
  t.ok(Number.isNaN(fromPy.rows.at(-1)?.nan));

  const multi = path.join(dir, 'multi.gz');
  const text = jsonlText(5000);
  const cut = text.indexOf('\n', 100_000) + 1;
  fs.writeFileSync(multi, Buffer.concat([zlib.gzipSync(text.slice(0, cut)), zlib.gzipSync(''), zlib.gzipSync(text.slice(cut))]));
  const m = await readAll(multi);
  t.same(m.rows, expected, 'three members, one empty');
  t.equal(m.reader.truncated, false);
});

t.test('a BGZF file torn at random points gives a prefix of the rows, truncated, no bad lines', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'torn.jsonl.gz');
  await write(jsonlSink({ path: file, flushBytes: 4000 }), range(4000).map((i) => entry(i)));
  const bytes = fs.readFileSync(file);
  const fd = fs.openSync(file, 'r');
  const scan = scanMembers(fd, bytes.length);
  fs.closeSync(fd);
  t.ok(scan.members.length > 20, `${scan.members.length} members`);
  const boundaries = new Set(scan.members.map((m) => m.offset));
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const cuts = [1, 2, 17, 18, 30, bytes.length - 29, bytes.length - 1, ...range(40).map(() => 1 + Math.floor(random() * (bytes.length - 2)))];
  const torn = path.join(dir, 'cut.jsonl.gz');
  let checked = 0;
  for (const cut of cuts) {
    if (boundaries.has(cut)) continue; // a whole-member end is a valid (unfinished) gzip, not torn
    fs.writeFileSync(torn, bytes.subarray(0, cut));
    const { rows, reader } = await readAll(torn);
    const prefix = range(rows.length).map(row);
    if (JSON.stringify(rows) !== JSON.stringify(prefix)) t.fail(`cut at ${cut}: rows are not a prefix`);
    if (!reader.truncated) t.fail(`cut at ${cut}: not truncated`);
    if (reader.badLines.length > 0) t.fail(`cut at ${cut}: bad lines ${reader.badLines.join(',')}`);
    checked++;
  }
  t.ok(checked > 40, `${checked} cuts checked`);
  const nearEnd = bytes.length - 29 - 1000;
  fs.writeFileSync(torn, bytes.subarray(0, nearEnd));
  const { rows } = await readAll(torn);
  t.ok(rows.length > 3500 && rows.length < 4000, `a cut near the end keeps most rows (${rows.length})`);
  const cleanEnd = path.join(dir, 'no-eof.jsonl.gz');
  fs.writeFileSync(cleanEnd, bytes.subarray(0, bytes.length - 28));
  const noEof = await readAll(cleanEnd);
  t.equal(noEof.rows.length, 4000, 'without the EOF member (still being written): every row');
  t.equal(noEof.reader.truncated, false);
});

t.test('NaN and ±Infinity are restored in JSONL and CSV; the string "NaN" stays a string', async (t) => {
  const dir = tmpdir(t);
  const data = { nan: NaN, pinf: Infinity, ninf: -Infinity, s: 'NaN', inf: '-Infinity', n: null, b: true, f: false, z: 0 };
  for (const [file, sink] of [
    ['n.jsonl', jsonlSink],
    ['n.jsonl.gz', jsonlSink],
    ['n.csv', csvSink],
  ] as const) {
    await write(sink({ path: path.join(dir, file) }), [entry(0, data)]);
    const { rows } = await readAll(path.join(dir, file));
    t.equal(rows.length, 1);
    const r = rows[0] as Record<string, unknown>;
    t.ok(Number.isNaN(r.nan), `${file}: NaN`);
    t.same({ ...r, nan: 'NaN!' }, { $step: 0, $time: 1000, $level: 20, ...data, nan: 'NaN!' }, file);
  }
});

t.test('3 malformed lines among 1000: 997 rows and their line numbers; strict rejects naming line 10', async (t) => {
  const file = path.join(tmpdir(t), 'bad.jsonl');
  const lines = range(1000).map((i) => JSON.stringify(row(i)));
  lines[9] = '{"i": 9, broken';
  lines[499] = 'Traceback (most recent call last):';
  lines[998] = '{"i": NaN NaN}';
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  const seen: number[] = [];
  const { rows, reader } = await readAll(file, { onBadLine: (n) => seen.push(n) });
  t.equal(rows.length, 997);
  t.same(reader.badLines, [10, 500, 999]);
  t.same(seen, [10, 500, 999], 'onBadLine is called too');
  t.same(rows.map((r) => r.i), range(1000).filter((i) => ![9, 499, 998].includes(i)));
  const err = await readAll(file, { strict: true }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isRowlogError(err));
  t.match(err, { code: 'ERR_BAD_LINE', message: /\bline 10\b/ });
  await t.rejects(readAll(path.join(tmpdir(t), 'missing.jsonl')), { code: 'ENOENT' }, 'a missing file rejects');
});

t.test('a Readable source: plain text one byte at a time, gzip in odd chunks, CSV by format', async (t) => {
  const text = Buffer.from(jsonlText(300));
  const expected = range(300).map(row);
  const bytes = (buf: Buffer, size: number) => Readable.from(range(Math.ceil(buf.length / size)).map((k) => buf.subarray(k * size, (k + 1) * size)), { objectMode: false });
  t.same((await readAll(bytes(text, 1))).rows, expected, 'one byte at a time');
  t.same((await readAll(bytes(zlib.gzipSync(text), 7))).rows, expected, 'gzip in 7-byte chunks');
  t.same((await readAll(bytes(zlib.gzipSync(text), 1))).rows, expected, 'gzip one byte at a time');
  const gz = zlib.gzipSync(text);
  const torn = await readAll(bytes(gz.subarray(0, gz.length >> 1), 100));
  t.ok(torn.rows.length > 10 && torn.rows.length < 300, `${torn.rows.length} rows of a torn stream`);
  t.same(torn.rows, expected.slice(0, torn.rows.length));
  t.equal(torn.reader.truncated, true);
  t.same(torn.reader.badLines, []);
  t.same((await readAll(Readable.from(['a,b\n1,', 'x\n'], { objectMode: false }), { format: 'csv' })).rows, [{ a: 1, b: 'x' }]);
  t.same((await readAll(Readable.from([], { objectMode: false }))).rows, [], 'an empty stream');
});

t.test('CSV: quoted commas, quotes and newlines stay strings; a late column is null in earlier rows', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'q.csv');
  const sink = csvSink({ path: file });
  sink.on('warning', () => {});
  const tricky = ['a,b', 'say "hi"', 'two\nlines', 'cr\r\nlf', ' padded ', '12', 'true', ''];
  const rows = tricky.map((s, i) => entry(i, { s }));
  rows.push(entry(8, { s: 'late', late: 1.5 }));
  await write(sink, rows);
  const { rows: got, reader } = await readAll(file);
  t.same(reader.badLines, []);
  t.same(
    got.map((r) => r.s),
    tricky.concat('late'),
    'every string comes back as written',
  );
  t.same(
    got.map((r) => r.late),
    [...tricky.map(() => null), 1.5],
    'the late column: empty → null',
  );
  t.same(Object.keys(got[0] ?? {}), ['$step', '$time', '$level', 'late', 's']);

  const hand = path.join(dir, 'hand.csv');
  fs.writeFileSync(hand, '\ufeffx,"y",z\r\n1,"a,""b""\r\nc",\r\n2,3\r\n-1e3,+Infinity,.5\r\n');
  const h = await readAll(hand);
  t.same(h.rows, [{ x: 1, y: 'a,"b"\r\nc', z: null }, { x: -1000, y: Infinity, z: 0.5 }]);
  t.same(h.reader.badLines, [4], 'a record with a missing field is a bad line, numbered by physical line');
});

t.test('leaving the loop early closes the file, plain text, plain gzip and blocked gzip alike', async (t) => {
  const dir = tmpdir(t);
  const text = jsonlText(300_000); // ~20 MB of text: more than any read-ahead
  const files = {
    'plain.jsonl': Buffer.from(text),
    'gzip.jsonl.gz': zlib.gzipSync(text, { level: 1 }),
  };
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), bytes);
  await write(jsonlSink({ path: path.join(dir, 'bgzf.jsonl.gz') }), range(300_000).map((i) => entry(i)));
  for (const name of [...Object.keys(files), 'bgzf.jsonl.gz']) {
    const source = fs.createReadStream(path.join(dir, name), { highWaterMark: 64 * 1024 });
    const closed = new Promise<void>((resolve) => source.once('close', () => resolve()));
    let n = 0;
    for await (const _ of readLog(source)) if (++n === 10) break;
    t.equal(n, 10, `${name}: ten rows read`);
    // Closing is asynchronous; a file left open never closes (the wait is a bound, not a pace).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
    t.ok(source.destroyed, `${name}: the file is closed`);
  }
});
