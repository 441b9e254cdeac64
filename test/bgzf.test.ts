import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import t from 'tap';
import type { Test } from 'tap';
import { BGZF_EOF, BGZF_MAX_INPUT, bgzfMember, bgzfMemberSync, crc32, crc32Js, gunzipTolerant, splitForMembers } from '../lib/format/bgzf.js';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import type { Peer } from './peers.js';

/** A deterministic PRNG in [0, 1) (mulberry32), so the test data is the same on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that do not compress (deterministic). */
function noise(n: number, seed = 1): Buffer {
  const rnd = prng(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
}

/** ~300 KB of JSONL-like text with non-ASCII keys and one line longer than a member. */
const TEXT = (() => {
  const rnd = prng(42);
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) lines.push(`{"$step":${i},"$time":${1_700_000_000_000 + i},"loss":${rnd()},"λ/é":"${'x'.repeat(Math.floor(rnd() * 40))}"}`);
  lines.splice(1500, 0, `{"blob":"${noise(50_000, 7).toString('base64')}"}`); // ~66.7 KB: longer than BGZF_MAX_INPUT
  return lines.join('\n') + '\n';
})();

/** `text` as BGZF members (async path) plus, unless `eof` is false, the EOF member. */
async function bgzf(text: string | Buffer, { level = 6, eof = true } = {}): Promise<{ file: Buffer; members: Buffer[]; chunks: Buffer[] }> {
  const chunks = splitForMembers(Buffer.from(text));
  const members = await Promise.all(chunks.map((c) => bgzfMember(c, level)));
  return { file: Buffer.concat(eof ? [...members, BGZF_EOF] : members), members, chunks };
}

/** Writes `buf` to `name` in a fresh temp dir and returns the path. */
function put(t: Test, name: string, buf: Buffer): string {
  const file = path.join(tmpdir(t), name);
  fs.writeFileSync(file, buf);
  return file;
}

/** scanMembers on the file holding `buf`. */
function scanBuf(t: Test, buf: Buffer): ReturnType<typeof scanMembers> {
  const fd = fs.openSync(put(t, 'scan.gz', buf), 'r');
  try {
    return scanMembers(fd, buf.length);
  } finally {
    fs.closeSync(fd);
  }
}

/** The end offsets of the members in `members`, starting from 0. */
function boundaries(members: Buffer[]): number[] {
  let end = 0;
  return [0, ...members.map((m) => (end += m.length))];
}

/** Runs a command and returns its raw stdout (binary-safe), failing the test on a non-zero exit. */
function output(t: Test, cmd: Peer, args: string[]): Buffer {
  t.ok(peer(cmd) !== undefined, `${cmd} is on PATH`);
  const r = run(cmd, args);
  t.equal(r.status, 0, `${cmd} ${args.map((a) => path.basename(a)).join(' ')} exits 0`, { stderr: r.stderr });
  return Buffer.from(r.stdout, 'utf8');
}

/** A gzip file made by the real `gzip` command from `text` (its header names the file). */
function realGzip(t: Test, text: string): Buffer {
  const file = put(t, 'plain.txt', Buffer.from(text));
  output(t, 'gzip', ['-6', file]);
  return fs.readFileSync(`${file}.gz`);
}

t.test('BGZF_EOF is the spec block: an empty BGZF member that decodes to nothing', async (t) => {
  t.equal(BGZF_EOF.length, 28);
  t.same(bgzfMemberSync(Buffer.alloc(0), 6), BGZF_EOF, 'the empty member at the default level is exactly the EOF block');
  t.same(await bgzfMember(Buffer.alloc(0), 6), BGZF_EOF);
  t.equal(zlib.gunzipSync(BGZF_EOF).length, 0);
});

t.test('a file of members plus EOF is valid gzip for gzip, zcat, Python and bgzip, with the exact text', async (t) => {
  const bgzip = needs(t, 'bgzip', 'bgzip -t and bgzip -d');
  for (const level of [0, 1, 6, 9]) {
    const { file: buf, members } = await bgzf(TEXT, { level });
    t.ok(members.length >= 4, `level ${level}: several members`);
    const file = put(t, 'log.jsonl.gz', buf);
    output(t, 'gzip', ['-t', file]);
    t.equal(output(t, 'zcat', [file]).toString(), TEXT, `level ${level}: zcat gives the text`);
    t.equal(output(t, 'python3', ['-c', 'import gzip,sys; sys.stdout.write(gzip.open(sys.argv[1]).read().decode())', file]).toString(), TEXT);
    if (!bgzip) continue;
    t.same(run('bgzip', ['-t', file]), { status: 0, stdout: '', stderr: '' }, 'bgzip -t: no complaint, EOF marker present');
    t.equal(output(t, 'bgzip', ['-d', '-c', file]).toString(), TEXT, `level ${level}: bgzip -d gives the text`);
  }
});

t.test('after every member (no EOF yet) the file is already valid gzip', async (t) => {
  const { members, chunks } = await bgzf(TEXT, { eof: false });
  const bgzip = needs(t, 'bgzip', 'bgzip -t');
  for (const n of [1, 2, members.length]) {
    const file = put(t, 'partial.gz', Buffer.concat(members.slice(0, n)));
    output(t, 'gzip', ['-t', file]);
    if (bgzip) output(t, 'bgzip', ['-t', file]);
    t.equal(output(t, 'zcat', [file]).toString(), Buffer.concat(chunks.slice(0, n)).toString(), `${n} member(s)`);
  }
});

t.test('every member is ≤ 64 KiB with a BC subfield whose BSIZE is its size − 1, and decodes alone', async (t) => {
  const { members, chunks } = await bgzf(TEXT);
  members.forEach((m, i) => {
    const chunk = chunks[i] as Buffer;
    t.ok(m.length <= 65536, `member ${i} is ${m.length} bytes`);
    t.same([...m.subarray(0, 4)], [31, 139, 8, 4], 'gzip magic, deflate, FLG = FEXTRA');
    t.equal(m.readUInt16LE(10), 6, 'XLEN 6');
    t.equal(m.toString('latin1', 12, 14), 'BC');
    t.equal(m.readUInt16LE(14), 2, 'SLEN 2');
    t.equal(m.readUInt16LE(16), m.length - 1, 'BSIZE = size − 1');
    t.equal(m.readUInt32LE(m.length - 4), chunk.length, 'ISIZE');
    t.same(zlib.gunzipSync(m), chunk, 'decodes alone to its chunk (gunzip checks the CRC)');
  });
});

t.test('bgzfMember (thread pool) and bgzfMemberSync give the same bytes', async (t) => {
  for (const level of [-1, 0, 1, 5, 9]) {
    for (const data of [Buffer.alloc(0), Buffer.from('a\n'), Buffer.from(TEXT.slice(0, 60_000)), noise(BGZF_MAX_INPUT)]) {
      t.same(await bgzfMember(data, level), bgzfMemberSync(data, level), `level ${level}, ${data.length} bytes`);
    }
  }
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: -1, max: 9 }), async (arr, level) => {
      const data = Buffer.from(arr);
      return (await bgzfMember(data, level)).equals(bgzfMemberSync(data, level));
    }),
    { numRuns: 100 },
  );
  t.pass('property: identical for random data and levels');
});

t.test('incompressible input of BGZF_MAX_INPUT bytes still fits BSIZE at every level', async (t) => {
  const data = noise(BGZF_MAX_INPUT, 3);
  for (let level = 0; level <= 9; level++) {
    const m = bgzfMemberSync(data, level);
    t.ok(m.length <= 65536 && m.readUInt16LE(16) === m.length - 1, `level ${level}: ${m.length} bytes`);
    t.same(zlib.gunzipSync(m), data);
  }
  const big = Buffer.alloc(BGZF_MAX_INPUT + 1);
  t.throws(() => bgzfMemberSync(big, 6), { name: 'RangeError', code: 'ERR_INVALID_OPTION' });
  await t.rejects(bgzfMember(big, 6), { name: 'RangeError' });
});

t.test('crc32: the JS fallback agrees with zlib (and the check value)', async (t) => {
  t.equal(crc32Js(Buffer.from('123456789')), 0xcbf43926);
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  t.equal(crc32Js(Buffer.alloc(0)), 0);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ maxLength: 50 }), (a, b) => {
      const whole = crc32Js(Buffer.concat([a, b]));
      return whole === zlib.crc32(Buffer.concat([a, b])) && whole === crc32Js(b, crc32Js(a));
    }),
  );
  t.pass('property: crc32Js equals zlib.crc32 and continues across calls');
});

t.test('splitForMembers', async (t) => {
  t.same(splitForMembers(Buffer.alloc(0)), [], 'empty input: no chunks');
  t.same(splitForMembers(Buffer.from('abc\n'), 4).map(String), ['abc\n'], 'exactly max: one chunk');
  t.same(splitForMembers(Buffer.from('ab\ncd\nef'), 4).map(String), ['ab\n', 'cd\n', 'ef']);
  t.same(splitForMembers(Buffer.from('a\n' + 'x'.repeat(9) + '\nb\n'), 4).map(String), ['a\n', 'xxxx', 'xxxx', 'x\nb\n'], 'a long line is cut inside');
  t.ok(splitForMembers(Buffer.from(TEXT)).every((c) => c.length <= BGZF_MAX_INPUT), 'default max is BGZF_MAX_INPUT');
  t.throws(() => splitForMembers(Buffer.from('a'), 0), { name: 'RangeError', code: 'ERR_INVALID_OPTION' });
  t.throws(() => splitForMembers(Buffer.from('a'), 1.5), { name: 'RangeError' });

  const line = fc.string({ unit: fc.constantFrom('a', 'é', '\n', '0'), maxLength: 30 });
  fc.assert(
    fc.property(fc.array(line, { maxLength: 40 }), fc.integer({ min: 1, max: 40 }), (lines, max) => {
      const buf = Buffer.from(lines.join('\n'));
      const chunks = splitForMembers(buf, max);
      let start = 0;
      chunks.forEach((c, i) => {
        assert.equal(c.buffer, buf.buffer, 'a view, not a copy');
        assert.equal(c.byteOffset, buf.byteOffset + start, 'in order, no gaps');
        assert.ok(c.length >= 1 && c.length <= max, 'never empty, never over max');
        if (i < chunks.length - 1) {
          const lastNl = buf.subarray(start, start + max).lastIndexOf(10);
          // cut after the last '\n' that fits; only a window without any '\n' is cut inside a line
          assert.equal(c.length, lastNl >= 0 ? lastNl + 1 : max);
        }
        start += c.length;
      });
      assert.equal(start, buf.length, 'the chunks cover the input');
    }),
    { numRuns: 300 },
  );
  t.pass('property: chunks are views, ≤ max, cut after the last newline that fits, cover the input');
});

t.test('scanMembers on a clean file lists every member, EOF included', async (t) => {
  const { file, members } = await bgzf(TEXT);
  const ends = boundaries([...members, BGZF_EOF]);
  const scan = scanBuf(t, file);
  t.same(scan, {
    members: ends.slice(0, -1).map((offset, i) => ({ offset, size: (ends[i + 1] as number) - offset })),
    wholeEnd: file.length,
    torn: false,
    bgzf: true,
  });
  t.same(scanBuf(t, Buffer.alloc(0)), { members: [], wholeEnd: 0, torn: false, bgzf: true }, 'an empty file');
});

t.test('scanMembers reads headers only: corrupt deflate data does not change the scan', async (t) => {
  const { file } = await bgzf(TEXT);
  const bad = Buffer.from(file);
  for (const m of scanBuf(t, file).members) bad.fill(0xff, m.offset + 20, m.offset + m.size - 10);
  t.same(scanBuf(t, bad), scanBuf(t, file));
});

t.test('scanMembers on a file cut anywhere: wholeEnd is the last whole member, torn inside a member', async (t) => {
  const { file, members } = await bgzf(TEXT);
  const ends = boundaries([...members, BGZF_EOF]);
  const check = (cut: number): void => {
    const scan = scanBuf(t, file.subarray(0, cut));
    const wholeEnd = Math.max(...ends.filter((e) => e <= cut));
    assert.deepEqual(
      { wholeEnd: scan.wholeEnd, torn: scan.torn, bgzf: scan.bgzf, members: scan.members },
      { wholeEnd, torn: cut !== wholeEnd, bgzf: true, members: scanBuf(t, file).members.slice(0, ends.indexOf(wholeEnd)) },
      `cut at ${cut}`,
    );
  };
  // edges: inside the first header, at and just after each boundary, inside the EOF block
  const edges = [1, 2, 11, 12, 17, 18, ...ends.slice(1).flatMap((e) => [e, e + 1, e + 15]), file.length - 1].filter((c) => c <= file.length);
  edges.forEach(check);
  t.pass(`${edges.length} edge cuts`);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: file.length }), (cut) => check(cut)),
    { numRuns: 20 },
  );
  t.pass('20 random cuts');
});

t.test('repair: truncating a torn file to wholeEnd and appending gives a valid gzip', async (t) => {
  const { file, members, chunks } = await bgzf(TEXT, { eof: false });
  const cut = (boundaries(members)[2] as number) + 1000;
  const name = put(t, 'torn.gz', file.subarray(0, cut));
  const fd = fs.openSync(name, 'r+');
  const { wholeEnd, torn } = scanMembers(fd, cut);
  t.ok(torn);
  fs.ftruncateSync(fd, wholeEnd);
  fs.closeSync(fd);
  fs.appendFileSync(name, Buffer.concat([bgzfMemberSync(Buffer.from('{"after":"crash"}\n'), 6), BGZF_EOF]));
  output(t, 'gzip', ['-t', name]);
  if (needs(t, 'bgzip', 'bgzip -t')) output(t, 'bgzip', ['-t', name]);
  t.equal(output(t, 'zcat', [name]).toString(), Buffer.concat(chunks.slice(0, 2)).toString() + '{"after":"crash"}\n');
});

t.test('scanMembers: plain gzip, foreign files and trailing zeros', async (t) => {
  t.same(scanBuf(t, realGzip(t, TEXT)), { members: [], wholeEnd: 0, torn: false, bgzf: false }, 'a file made by gzip');
  const { file, members } = await bgzf(TEXT);
  const mixed = scanBuf(t, Buffer.concat([file, realGzip(t, 'more\n')]));
  t.same([mixed.members.length, mixed.wholeEnd, mixed.torn, mixed.bgzf], [members.length + 1, file.length, false, false], 'BGZF then a gzip member appended with cat');
  t.same(scanBuf(t, Buffer.from('{"a":1}\n')), { members: [], wholeEnd: 0, torn: false, bgzf: false }, 'not gzip at all: never torn (nothing to truncate)');
  const zeros = scanBuf(t, Buffer.concat([file, Buffer.alloc(4096)]));
  t.same([zeros.wholeEnd, zeros.torn, zeros.bgzf], [file.length, true, true], 'a zero-filled tail after a crash is torn');
  const bad = Buffer.from(BGZF_EOF);
  bad.writeUInt16LE(10, 16); // BSIZE smaller than a header and trailer
  t.same(scanBuf(t, bad), { members: [], wholeEnd: 0, torn: true, bgzf: true }, 'an impossible BSIZE is a bad header');
});

t.test('scanMembers agrees with bgzip and finds BC among other subfields', async (t) => {
  if (needs(t, 'bgzip', 'a file made by bgzip')) {
    const src = put(t, 'b.txt', Buffer.from(TEXT));
    output(t, 'bgzip', ['-f', src]);
    const made = fs.readFileSync(`${src}.gz`);
    const scan = scanBuf(t, made);
    t.ok(scan.members.length >= 4, `${scan.members.length} members from bgzip`);
    t.same([scan.wholeEnd, scan.torn, scan.bgzf], [made.length, false, true]);
    t.equal(gunzipTolerant(made).data.toString(), TEXT);
  }
  // a member whose extra field holds another subfield before BC (XLEN 12)
  const m = bgzfMemberSync(Buffer.from('hi\n'), 6);
  const other = Buffer.concat([m.subarray(0, 10), Buffer.from([12, 0, 65, 66, 2, 0, 1, 2]), m.subarray(12, 16), Buffer.alloc(2), m.subarray(18)]);
  other.writeUInt16LE(other.length - 1, 22);
  t.same(scanBuf(t, Buffer.concat([other, other])).members, [
    { offset: 0, size: other.length },
    { offset: other.length, size: other.length },
  ]);
  t.equal(zlib.gunzipSync(other).toString(), 'hi\n', 'still a valid gzip member');
});

t.test('gunzipTolerant decodes whole gzip from every writer', async (t) => {
  const clean = (buf: Buffer, text: string, what: string): void => {
    const r = gunzipTolerant(buf);
    t.same({ text: r.data.toString(), truncated: r.truncated, error: r.error }, { text, truncated: false, error: undefined }, what);
  };
  clean(realGzip(t, TEXT), TEXT, 'one stream from gzip');
  clean(Buffer.concat([realGzip(t, 'one\n'), realGzip(t, 'two\n')]), 'one\ntwo\n', 'two gzip outputs concatenated');
  clean((await bgzf(TEXT)).file, TEXT, 'BGZF');
  clean((await bgzf(TEXT, { eof: false })).file, TEXT, 'BGZF without the EOF block');
  clean(BGZF_EOF, '', 'the EOF block alone');
  clean(Buffer.alloc(0), '', 'empty input');
  const py = put(t, 'py.gz', Buffer.alloc(0));
  output(t, 'python3', ['-c', 'import gzip,sys; f=gzip.open(sys.argv[1],"wb"); f.write(sys.argv[2].encode()); f.close()', py, TEXT.slice(0, 5000)]);
  clean(fs.readFileSync(py), TEXT.slice(0, 5000), 'written by Python gzip');
});

t.test('gunzipTolerant on a BGZF file cut anywhere: the whole members and maybe more, a prefix, truncated', async (t) => {
  const { file, members, chunks } = await bgzf(TEXT);
  const ends = boundaries([...members, BGZF_EOF]);
  const textEnds = boundaries([...chunks, Buffer.alloc(0)]);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: file.length }), (cut) => {
      const r = gunzipTolerant(file.subarray(0, cut));
      const whole = ends.filter((e) => e <= cut).length - 1;
      assert.ok(r.data.length >= (textEnds[whole] as number), `cut ${cut}: at least the ${whole} whole members`);
      assert.ok(Buffer.from(TEXT).subarray(0, r.data.length).equals(r.data), 'a prefix of the text');
      assert.equal(r.truncated, !ends.includes(cut), 'truncated unless cut at a member boundary');
      assert.equal(r.error, undefined, 'a plain cut is not an error');
    }),
    { numRuns: 20 },
  );
  t.pass('20 random cuts: whole members kept, a prefix, truncated');
  const inside = (ends[3] as number) - 100; // near the end of the third member
  t.ok(gunzipTolerant(file.subarray(0, inside)).data.length > (textEnds[2] as number), 'decodes part of the torn member too');
});

t.test('gunzipTolerant on a single gzip stream cut short returns what decodes', async (t) => {
  const gz = realGzip(t, TEXT);
  for (const cut of [5, 30, gz.length >> 1, gz.length - 4]) {
    const r = gunzipTolerant(gz.subarray(0, cut));
    t.ok(r.truncated && r.error === undefined, `cut ${cut}: truncated`);
    t.ok(Buffer.from(TEXT).subarray(0, r.data.length).equals(r.data), `cut ${cut}: ${r.data.length} bytes, a prefix`);
  }
  t.equal(gunzipTolerant(gz.subarray(0, gz.length - 4)).data.toString(), TEXT, 'only ISIZE missing: all the text');
});

t.test('gunzipTolerant on corrupt data keeps the members before it and says why', async (t) => {
  const { file, members, chunks } = await bgzf(TEXT);
  const first = (chunks[0] as Buffer).toString();
  const second = members[0]!.length;
  const flipped = Buffer.from(file);
  flipped.fill(0x55, second + 100, second + 200); // inside the second member's deflate data
  const r = gunzipTolerant(flipped);
  t.same([r.data.toString() === first, r.truncated, r.error instanceof Error], [true, true, true], 'deflate error');

  const badCrc = Buffer.from(file);
  badCrc.writeUInt32LE(badCrc.readUInt32LE(second + members[1]!.length - 8) ^ 1, second + members[1]!.length - 8);
  const c = gunzipTolerant(badCrc);
  t.same([c.data.toString() === first, c.truncated], [true, true], 'CRC mismatch drops that member');
  t.match(c.error?.message, /CRC/);

  const tail = gunzipTolerant(Buffer.concat([file, Buffer.alloc(512)]));
  t.same([tail.data.toString() === TEXT, tail.truncated], [true, true], 'trailing zeros: all the text, truncated');
  t.match(tail.error?.message, /not a gzip member at offset/);

  const foreign = gunzipTolerant(Buffer.from('hello\n'));
  t.same([foreign.data.length, foreign.truncated, foreign.error instanceof Error], [0, true, true], 'not gzip: nothing, with an error');
});

t.test('every optional gzip header field: read like Python reads it; a non-BC extra field is not BGZF', async (t) => {
  const text = 'with name, comment, extra and header CRC\n';
  const body = bgzfMemberSync(Buffer.from(text), 6).subarray(18); // raw deflate, CRC32, ISIZE
  // FLG = FHCRC | FEXTRA | FNAME | FCOMMENT; extra has one 'XY' subfield; the header CRC16 is 0 (wrong: zlib refuses it)
  const head = Buffer.from([31, 139, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 3, 4, 0, 88, 89, 0, 0, ...Buffer.from('a.txt\0c\0'), 0, 0]);
  const member = Buffer.concat([head, body]);
  t.throws(() => zlib.gunzipSync(member), { code: 'Z_DATA_ERROR' }, 'zlib checks the header CRC');
  const file = put(t, 'fields.gz', member);
  t.equal(output(t, 'python3', ['-c', 'import gzip,sys; sys.stdout.write(gzip.open(sys.argv[1]).read().decode())', file]).toString(), text, 'Python ignores it');
  t.same(gunzipTolerant(member), { data: Buffer.from(text), truncated: false }, 'so does gunzipTolerant (the data CRC still holds)');
  t.same(scanBuf(t, Buffer.concat([BGZF_EOF, member])), { members: [{ offset: 0, size: 28 }], wholeEnd: 28, torn: false, bgzf: false });
});

t.test('scanMembers from a member boundary lists only the members after it (what a follower rescans)', async (t) => {
  const { file, members } = await bgzf(TEXT, { level: 1 });
  t.ok(members.length >= 3, `${members.length} members`);
  const starts = boundaries(members);
  const fd = fs.openSync(put(t, 'from.gz', file), 'r');
  try {
    const from = starts[2] as number;
    const scan = scanMembers(fd, file.length, from);
    t.same(
      scan.members.map((m) => m.offset),
      [...starts.slice(2, -1), starts.at(-1)],
      'the members from the third on, and the EOF member',
    );
    t.equal(scan.wholeEnd, file.length);
    t.match(scanMembers(fd, file.length, from + 1), { bgzf: false, torn: false, members: [] }, 'not a boundary: not gzip there');
    t.match(scanMembers(fd, file.length, file.length), { bgzf: true, members: [], wholeEnd: file.length }, 'nothing new');
  } finally {
    fs.closeSync(fd);
  }
});
