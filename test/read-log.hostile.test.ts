/**
 * readLog on hostile input (issue 11 §1): lines of tens of MB, a line longer than maxLineBytes,
 * a gzip bomb of one line and endless zeros with memory bounded, a blocked-gzip file damaged in
 * the middle (every intact member's rows back, the damage reported), and a plain gzip damaged in
 * the middle (where decoding stopped).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import t from 'tap';
import { BGZF_EOF, bgzfMemberSync, splitForMembers } from '../lib/format/bgzf.js';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { isRowlogError } from '../lib/index.js';
import { readLog } from '../lib/read/read-log.js';
import type { LogReader, ReadLogOptions } from '../lib/read/read-log.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs } from './peers.js';

const row = (i: number) => ({ $step: i, $time: 1000 + i, loss: 1 / (i + 1), s: `row ${i}` });
const text = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `${JSON.stringify(row(from + k))}\n`).join('');

async function readAll(source: string | NodeJS.ReadableStream, opts?: ReadLogOptions): Promise<{ steps: number[]; reader: LogReader }> {
  const reader = readLog(source, opts);
  const steps: number[] = [];
  for await (const r of reader) steps.push(r.$step as number);
  return { steps, reader };
}

/** A BGZF file of rows 0..n-1 as rowlog writes it (members of whole lines, the EOF member last). */
function bgzfFile(file: string, n: number): Array<{ offset: number; size: number }> {
  const members = splitForMembers(Buffer.from(text(0, n))).map((c) => bgzfMemberSync(c, 1));
  fs.writeFileSync(file, Buffer.concat([...members, BGZF_EOF]));
  const fd = fs.openSync(file, 'r');
  try {
    return scanMembers(fd, fs.fstatSync(fd).size).members;
  } finally {
    fs.closeSync(fd);
  }
}

/** The steps held by the member at `offset` (decoded on its own). */
function stepsIn(file: string, m: { offset: number; size: number }): number[] {
  const bytes = fs.readFileSync(file).subarray(m.offset, m.offset + m.size);
  return zlib
    .gunzipSync(bytes)
    .toString()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { $step: number }).$step);
}

t.test('lines of 10 and 40 MB are read, and the rows after them too', async (t) => {
  for (const mb of [10, 40]) {
    const long = JSON.stringify({ $step: 0, blob: 'x'.repeat(mb << 20) });
    const chunks = [Buffer.from(long.slice(0, 100))];
    for (let i = 100; i < long.length; i += 65536) chunks.push(Buffer.from(long.slice(i, i + 65536)));
    chunks.push(Buffer.from(`\n${text(1, 3)}`));
    const { steps, reader } = await readAll(Readable.from(chunks));
    t.same(steps, [0, 1, 2], `a ${mb} MB line`);
    t.same(reader.badLines, []);
  }
});

t.test('a line longer than maxLineBytes is a bad line with its number; strict fails naming it', async (t) => {
  const input = () => Readable.from([text(0, 2), `{"$step":2,"x":"${'y'.repeat(5000)}"}\n`, text(3, 5)]);
  const bad: Array<[number, string]> = [];
  const { steps, reader } = await readAll(input(), { maxLineBytes: 1024, onBadLine: (n, _l, err) => bad.push([n, err.message]) });
  t.same(steps, [0, 1, 3, 4]);
  t.same(reader.badLines, [3]);
  t.match(bad[0]?.[1], /line of 5018 bytes is longer than maxLineBytes \(1024\)/);

  const err = await readAll(input(), { maxLineBytes: 1024, strict: true }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isRowlogError(err) && err.code === 'ERR_BAD_LINE', 'ERR_BAD_LINE');
  t.match((err as Error).message, /^line 3: line of 5018 bytes/);

  t.throws(() => readLog(input(), { maxLineBytes: 0 }), { code: 'ERR_INVALID_OPTION', message: /^maxLineBytes/ });
  t.throws(() => readLog(input(), { maxLineBytes: '9' as unknown as number }), { code: 'ERR_INVALID_OPTION', name: 'TypeError' });
});

t.test('CSV: a quoted record of 16 MB holding many line ends is read in linear time, in small chunks', { timeout: 20_000 }, async (t) => {
  // Rescanning the open record from its start at every chunk with a line end took ~65 s here
  // (1 KiB chunks; 4 s at 4 MB): quadratic. Linear, it takes well under a second.
  const cell = `${'y'.repeat(99)}\n`.repeat(16 * 10_000);
  const csv = `a,b\n1,2\n3,"${cell}"\n5,6\n`;
  const chunks: string[] = [];
  for (let i = 0; i < csv.length; i += 1024) chunks.push(csv.slice(i, i + 1024));
  const rows: Array<Record<string, unknown>> = [];
  const reader = readLog(Readable.from(chunks), { format: 'csv' });
  for await (const r of reader) rows.push(r);
  t.same(rows.map((r) => r.a), [1, 3, 5]);
  t.equal(rows[1]?.b, cell, 'the long cell, whole');
  t.same(reader.badLines, []);
});

t.test('CSV: a record longer than maxLineBytes is a bad line; the records after it are read', async (t) => {
  const csv = Readable.from(['a,b\n1,2\n', `3,"${'z'.repeat(3000)}`, `${'z'.repeat(3000)}"\n`, '5,6\n']);
  const rows: unknown[] = [];
  const reader = readLog(csv, { format: 'csv', maxLineBytes: 1000 });
  for await (const r of reader) rows.push(r);
  t.same(rows, [
    { a: 1, b: 2 },
    { a: 5, b: 6 },
  ]);
  t.same(reader.badLines, [3]);
});

/**
 * Peak RSS (MB, the child's own VmHWM) of a child that reads `file` through readLog with
 * `maxLineBytes`, printing the row count and bad lines.
 */
function readInChild(file: string, maxLineBytes: number): { peakMb: number; out: string } {
  const script = `
    import { readLog } from ${JSON.stringify(path.join(ROOT, 'dist/lib/read/read-log.js'))};
    import fs from 'node:fs';
    const reader = readLog(process.argv[1], { maxLineBytes: Number(process.argv[2]) });
    let n = 0;
    for await (const _ of reader) n++;
    const hwm = /^VmHWM:\\s*(\\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
    console.log(JSON.stringify({ rows: n, bad: reader.badLines, truncated: reader.truncated, hwm: Number(hwm) }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, file, String(maxLineBytes)], { encoding: 'utf8' });
  const out = r.stdout.trim();
  const { hwm } = JSON.parse(out) as { hwm: number };
  return { peakMb: hwm / 1024, out };
}

t.test('a gzip bomb of one 1 GiB line and 1 GiB of zeros: memory stays bounded by maxLineBytes', async (t) => {
  const dir = tmpdir(t);
  // 1 GiB of 'a' then one row, as one gzip stream of ~1 MB.
  const bomb = path.join(dir, 'bomb.jsonl.gz');
  const gz = zlib.createGzip({ level: 9 });
  const out = fs.createWriteStream(bomb);
  gz.pipe(out);
  const block = Buffer.alloc(1 << 20, 0x61);
  for (let i = 0; i < 1024; i++) if (!gz.write(block)) await new Promise<void>((r) => gz.once('drain', () => r()));
  gz.end(`\n${text(0, 1)}`);
  await new Promise<void>((r) => out.on('close', () => r()));
  t.ok(fs.statSync(bomb).size < 2 << 20, 'the bomb is small');

  const a = readInChild(bomb, 64 << 20);
  t.same(JSON.parse(a.out), { rows: 1, bad: [1], truncated: false, hwm: JSON.parse(a.out).hwm }, 'the long line is bad line 1; the row after it is read');
  t.ok(a.peakMb < 300, `peak RSS ${a.peakMb.toFixed(0)} MB < 300 MB`);

  const zeros = path.join(dir, 'zeros.jsonl');
  const fd = fs.openSync(zeros, 'w');
  fs.ftruncateSync(fd, 1 << 30); // a sparse GiB of NUL bytes, no newline
  fs.closeSync(fd);
  const z = readInChild(zeros, 64 << 20);
  t.match(JSON.parse(z.out), { rows: 0, bad: [1] });
  t.ok(z.peakMb < 300, `peak RSS ${z.peakMb.toFixed(0)} MB < 300 MB`);
});

/** A BGZF member holding `text` whatever its size (BSIZE bounds the compressed bytes only: a bomb's member). */
function bombMember(text: Buffer): Buffer {
  const deflated = zlib.deflateRawSync(text, { level: 9 });
  const head = Buffer.from(BGZF_EOF.subarray(0, 18));
  head.writeUInt16LE(18 + deflated.length + 8 - 1, 16);
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(zlib.crc32(text), 0);
  tail.writeUInt32LE(text.length, 4);
  return Buffer.concat([head, deflated, tail]);
}

t.test('a blocked-gzip bomb (40 members of 63 MB of one line each, 2.5 MB on disk): bounded memory, the row after it read', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'bomb.jsonl.gz');
  const member = bombMember(Buffer.alloc(63 << 20, 0x61));
  t.ok(member.length <= 65536, `one member is ${member.length} bytes`);
  const row = bombMember(Buffer.from(`\n${text(0, 1)}`));
  fs.writeFileSync(file, Buffer.concat([...Array.from({ length: 40 }, () => member), row, BGZF_EOF]));
  const r = readInChild(file, 64 << 20);
  t.match(JSON.parse(r.out), { rows: 1, bad: [1], truncated: false });
  t.ok(r.peakMb < 300, `peak RSS ${r.peakMb.toFixed(0)} MB < 300 MB`);
});

t.test('a damaged middle member of blocked gzip: every other row, and the damage reported', async (t) => {
  const dir = tmpdir(t);
  const cases: Array<[string, (buf: Buffer, m: { offset: number; size: number }) => void]> = [
    ['its magic byte zeroed', (buf, m) => (buf[m.offset] = 0)],
    ['a byte of its deflate data changed', (buf, m) => (buf[m.offset + 40] = (buf[m.offset + 40] as number) ^ 0x55)],
    ['its CRC changed', (buf, m) => (buf[m.offset + m.size - 8] = (buf[m.offset + m.size - 8] as number) ^ 1)],
    ['its BSIZE made larger (it swallows the next member)', (buf, m) => buf.writeUInt16LE(m.size + 999, m.offset + 16)],
  ];
  for (const [what, damage] of cases) {
    const file = path.join(dir, 'train.jsonl.gz');
    const members = bgzfFile(file, 50_000);
    t.ok(members.length > 20, `${members.length} members`);
    const m = members[Math.floor(members.length / 2)] as { offset: number; size: number };
    const lost = stepsIn(file, m);
    const buf = fs.readFileSync(file);
    damage(buf, m);
    fs.writeFileSync(file, buf);

    const { steps, reader } = await readAll(file);
    const want = Array.from({ length: 50_000 }, (_, i) => i).filter((i) => !lost.includes(i));
    t.same(steps, want, `${what}: the rows of every intact member, in order`);
    t.equal(steps.at(-1), 49_999, `${what}: the real last row`);
    t.equal(reader.truncated, false);
    t.same(reader.badLines, []);
    t.equal(reader.damaged.length, 1, `${what}: one damage`);
    t.match(reader.damaged[0], { offset: m.offset }, `${what}: where the member was`);
    if (what.startsWith('its magic') || what.startsWith('its CRC')) {
      t.same(reader.damaged[0], { offset: m.offset, length: m.size, rowsLost: lost.length }, `${what}: its rows counted`);
    }
  }
});

t.test('damage at the end with no member after it is a torn end, not damage', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'train.jsonl.gz');
  bgzfFile(file, 2000);
  fs.appendFileSync(file, Buffer.alloc(4096)); // zeros after a crash (a filesystem's unwritten tail)
  const { steps, reader } = await readAll(file);
  t.equal(steps.length, 2000);
  t.equal(reader.truncated, true);
  t.same(reader.damaged, []);
});

t.test('a plain gzip damaged in the middle says where decoding stopped', async (t) => {
  const dir = tmpdir(t);
  const a = zlib.gzipSync(text(0, 100));
  const b = zlib.gzipSync(text(100, 200));
  const c = zlib.gzipSync(text(200, 300));

  // A later member's magic byte zeroed: zlib stops there without a word.
  const file = path.join(dir, 'gnu.jsonl.gz');
  const b0 = Buffer.from(b);
  b0[0] = 0;
  fs.writeFileSync(file, Buffer.concat([a, b0, c]));
  let r = await readAll(file);
  t.same(r.steps, Array.from({ length: 100 }, (_, i) => i));
  t.same(r.reader.damaged, [{ offset: a.length, length: b.length + c.length }]);

  // A bad CRC in the second member of large ones: decoding stops in it, the rows before it are read.
  const big = [zlib.gzipSync(text(0, 20_000)), zlib.gzipSync(text(20_000, 40_000)), zlib.gzipSync(text(40_000, 41_000))];
  const [a1, b1, c1] = big as [Buffer, Buffer, Buffer];
  b1[b1.length - 8] = (b1[b1.length - 8] as number) ^ 0xff;
  fs.writeFileSync(file, Buffer.concat(big));
  r = await readAll(file);
  t.ok(r.steps.length >= 19_000 && r.steps.every((s, i) => s === i), `the first ${r.steps.length} rows, in order`);
  t.ok(r.steps.length < 40_000, 'none after the damage');
  t.equal(r.reader.damaged.length, 1);
  const at = r.reader.damaged[0]?.offset ?? -1;
  t.ok(at >= a1.length + b1.length - 65536 && at < a1.length + b1.length, `decoding stopped at byte ${at}, within 64 KiB before the bad CRC`);
  t.equal((r.reader.damaged[0]?.offset ?? 0) + (r.reader.damaged[0]?.length ?? 0), a1.length + b1.length + c1.length, 'the rest of the file is counted as damaged');
});

t.test('gzip -t and zcat agree the damaged file is damaged (the reader is not alone in seeing it)', async (t) => {
  if (!needs(t, 'gzip')) return;
  const dir = tmpdir(t);
  const file = path.join(dir, 'train.jsonl.gz');
  const members = bgzfFile(file, 5000);
  const buf = fs.readFileSync(file);
  const m = members[2] as { offset: number };
  buf[m.offset] = 0;
  fs.writeFileSync(file, buf);
  t.not(spawnSync('gzip', ['-t', file]).status, 0, 'gzip -t fails');
  const { steps, reader } = await readAll(file);
  t.ok(steps.length > 4000 && steps.at(-1) === 4999, 'readLog reads past it');
  t.equal(reader.damaged.length, 1);
});

t.test("resume's last step reads past a damaged middle member to the true last one", async (t) => {
  const { lastStepInFile } = await import('../lib/run/last-step.js');
  const dir = tmpdir(t);
  const file = path.join(dir, 'train.jsonl.gz');
  const members = bgzfFile(file, 20_000);
  t.equal(lastStepInFile(file), 19_999);
  const buf = fs.readFileSync(file);
  buf[(members[3] as { offset: number }).offset] = 0;
  fs.writeFileSync(file, buf);
  t.equal(lastStepInFile(file), 19_999, 'not the step before the damage (then steps would repeat)');
  buf[0] = 0; // the first member's magic byte too: still blocked gzip, not text
  fs.writeFileSync(file, buf);
  t.equal(lastStepInFile(file), 19_999, 'a damaged first member: still the true last step');
});

t.test('a damaged member whose deflate data runs on far past its BSIZE (a bomb): counting its lost rows stays bounded', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'train.jsonl.gz');
  // 512 MiB of 'a' as one raw deflate stream (~500 KB), behind a BGZF header whose BSIZE says
  // 1 KB: the member fails, and the bytes up to the next valid member are the damage.
  const deflate = zlib.createDeflateRaw({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (b: Buffer) => parts.push(b));
  const ended = new Promise<void>((r) => deflate.on('end', () => r()));
  const block = Buffer.alloc(1 << 20, 0x61);
  for (let i = 0; i < 512; i++) if (!deflate.write(block)) await new Promise<void>((r) => deflate.once('drain', () => r()));
  deflate.end();
  await ended;
  const head = Buffer.from(BGZF_EOF.subarray(0, 18));
  head.writeUInt16LE(18 + 1000 + 8 - 1, 16);
  const good = splitForMembers(Buffer.from(text(0, 10))).map((c) => bgzfMemberSync(c, 1));
  const after = splitForMembers(Buffer.from(text(10, 20))).map((c) => bgzfMemberSync(c, 1));
  fs.writeFileSync(file, Buffer.concat([...good, head, ...parts, ...after, BGZF_EOF]));

  const r = readInChild(file, 64 << 20);
  t.match(JSON.parse(r.out), { rows: 20, bad: [], truncated: false }, 'every row of the intact members');
  t.ok(r.peakMb < 300, `peak RSS ${r.peakMb.toFixed(0)} MB < 300 MB`);
});

t.test('blocked gzip whose members cut lines (as bgzip writes): a damaged member never joins two rows into one', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'foreign.jsonl.gz');
  const all = Buffer.from(text(0, 40));
  // Member A ends inside row 10 just after `{"$step":1`, member C starts inside row 20 just
  // after `{"$step":2`: with B lost, joining the two pieces reads as a valid row 10 with row 20's data.
  const cut1 = all.indexOf('{"$step":10,') + '{"$step":1'.length;
  const cut2 = all.indexOf('{"$step":20,') + '{"$step":2'.length;
  const [a, b, c] = [all.subarray(0, cut1), all.subarray(cut1, cut2), all.subarray(cut2)].map((p) => bgzfMemberSync(p, 1)) as [Buffer, Buffer, Buffer];
  b[b.length - 8] = (b[b.length - 8] as number) ^ 1; // B's CRC
  fs.writeFileSync(file, Buffer.concat([a, b, c, BGZF_EOF]));

  const rows: Array<Record<string, unknown>> = [];
  const reader = readLog(file);
  for await (const r of reader) rows.push(r);
  t.same(
    rows.map((r) => r.$step),
    [...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 19 }, (_, i) => 21 + i)],
    'the rows of A and C, none made of pieces of two',
  );
  t.ok(rows.every((r) => r.$time === 1000 + (r.$step as number)), 'every row is one row');
  t.equal(reader.damaged.length, 1, 'the damage reported');
  t.equal(reader.badLines.length, 2, 'the pieces at either side of it are bad lines');
});

t.test("a damaged first member (its magic byte zeroed) is damage too, as tail and ls see it: the other members' rows", async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'train.jsonl.gz');
  const members = bgzfFile(file, 20_000);
  const first = members[0] as { offset: number; size: number };
  const lost = stepsIn(file, first);
  const buf = fs.readFileSync(file);
  buf[0] = 0;
  fs.writeFileSync(file, buf);
  for (const source of [file, () => fs.createReadStream(file, { highWaterMark: 4096 })]) {
    const { steps, reader } = await readAll(typeof source === 'string' ? source : source());
    t.same(steps, Array.from({ length: 20_000 }, (_, i) => i).filter((i) => !lost.includes(i)), 'the rows of every intact member');
    t.same(reader.badLines, [], 'no garbage read as text');
    t.same(reader.damaged, [{ offset: 0, length: first.size, rowsLost: lost.length }], 'the damage at byte 0');
  }
  // Text that merely starts with a NUL byte is still text.
  const { steps } = await readAll(Readable.from([Buffer.from(`\0\n${text(0, 3)}`)]));
  t.same(steps, [0, 1, 2]);
});

t.test('leaving the loop early while a damaged batch is still inflating does not crash the process', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'train.jsonl.gz');
  const members = bgzfFile(file, 300_000); // ~4 MB: several batches of 1 MiB
  const m = members.find((x) => x.offset > 1.5 * 2 ** 20) as { offset: number; size: number }; // in the second batch
  const buf = fs.readFileSync(file);
  buf[m.offset + 40] = (buf[m.offset + 40] as number) ^ 0x55;
  fs.writeFileSync(file, buf);
  const script = `
    import { readLog } from ${JSON.stringify(path.join(ROOT, 'dist/lib/read/read-log.js'))};
    for await (const _ of readLog(process.argv[1])) break;
    // The batch still inflating keeps the process alive until it settles: its rejection, if
    // unhandled, fails the child before it exits.
    process.on('exit', (code) => { if (code === 0) console.log('alive'); });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, file], { encoding: 'utf8' });
  t.equal(r.stderr, '', 'no unhandled rejection');
  t.equal(r.status, 0);
  t.equal(r.stdout, 'alive\n');
});

t.test('blocked gzip followed by a plain gzip (files concatenated with cat): every row of both', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'cat.jsonl.gz');
  bgzfFile(file, 3000);
  const bgzf = fs.readFileSync(file);
  fs.writeFileSync(file, Buffer.concat([bgzf.subarray(0, bgzf.length - BGZF_EOF.length), zlib.gzipSync(text(3000, 4000))]));
  const { steps, reader } = await readAll(file);
  t.same(steps, Array.from({ length: 4000 }, (_, i) => i));
  t.same(reader.damaged, []);
  t.equal(reader.truncated, false);
});

t.test('6 MB of garbage between members: skipped with bounded memory, reported as one stretch, every row around it', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'train.jsonl.gz');
  const members = bgzfFile(file, 10_000);
  const buf = fs.readFileSync(file);
  const at = (members[5] as { offset: number }).offset;
  const garbage = Buffer.alloc(6 << 20, 0x5a); // no 0x1f byte: no member can start in it
  fs.writeFileSync(file, Buffer.concat([buf.subarray(0, at), garbage, buf.subarray(at)]));
  const { steps, reader } = await readAll(file);
  t.same(steps, Array.from({ length: 10_000 }, (_, i) => i), 'no row lost: the garbage held none');
  t.same(reader.damaged, [{ offset: at, length: garbage.length }]);
});

t.test('a bomb-sized member whose CRC is wrong is damage: skipped, the rows after it read', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'bomb.jsonl.gz');
  const member = bombMember(Buffer.alloc(20 << 20, 0x61));
  member[member.length - 8] = (member[member.length - 8] as number) ^ 1;
  fs.writeFileSync(file, Buffer.concat([bombMember(Buffer.from(text(0, 2))), member, bombMember(Buffer.from(text(2, 4))), BGZF_EOF]));
  const { steps, reader } = await readAll(file);
  t.same(steps, [0, 1, 2, 3]);
  t.equal(reader.damaged.length, 1);
  t.match(reader.damaged[0], { offset: bombMember(Buffer.from(text(0, 2))).length, length: member.length });
  t.same(reader.badLines, [], 'none of its 20 MB of text was passed on');
});
