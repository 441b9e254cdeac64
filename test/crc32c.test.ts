/**
 * CRC32C and TFRecord framing (lib/format/crc32c.ts, lib/format/tfrecord.ts): the published test
 * vectors, TFRecord's mask, continuing a CRC, and a framed record checked by the test's own
 * bit-by-bit CRC (test/tfevents.ts) and, when installed, by Python's `crc32c` module.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { crc32c, maskCrc32c } from '../lib/format/crc32c.js';
import { frameRecord, TFRECORD_HEAD, TFRECORD_OVERHEAD, tfrecord } from '../lib/format/tfrecord.js';
import { tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

t.test('test vectors: "123456789" (the check value) and RFC 3720 B.4', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283, '"123456789"');
  t.equal(crc32c(new Uint8Array(32)), 0x8a9136aa, '32 × 0x00');
  t.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, '32 × 0xFF');
  t.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e, '0..31 ascending');
  t.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c, '31..0 descending');
  t.equal(crc32c(new Uint8Array(0)), 0, 'empty');
});

t.test('continuing a CRC and ranges give the CRC of the whole, at every split and length', async (t) => {
  const data = Buffer.from(Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff));
  const whole = crc32c(data);
  let ok = true;
  for (let cut = 0; cut <= data.length; cut++) {
    ok &&= crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))) === whole;
    ok &&= crc32c(data, 0, 0, cut) === crc32c(data.subarray(0, cut));
    ok &&= crc32c(data, 0, cut) === crc32c(data.subarray(cut));
  }
  t.ok(ok, 'every split of 100 bytes (the 8-byte loop and the byte tail)');
});

t.test("TFRecord's mask", async (t) => {
  t.equal(maskCrc32c(0), 0xa282ead8);
  t.equal(maskCrc32c(0xe3069283), ((((0xe3069283 >>> 15) | (0xe3069283 << 17)) >>> 0) + 0xa282ead8) % 2 ** 32);
  t.equal(maskCrc32c(0xffffffff), (0xffffffff + 0xa282ead8) % 2 ** 32, 'wraps at 2^32');
});

t.test('a framed record: length, masked CRCs, data; checked by Python crc32c when installed', async (t) => {
  const data = Buffer.from('the data of one record');
  const rec = tfrecord(data);
  t.equal(rec.length, data.length + TFRECORD_OVERHEAD);
  t.equal(rec.readBigUInt64LE(0), BigInt(data.length), 'uint64 LE length');
  t.equal(rec.readUInt32LE(8), maskCrc32c(crc32c(rec.subarray(0, 8))), 'masked CRC of the length');
  t.same(rec.subarray(TFRECORD_HEAD, TFRECORD_HEAD + data.length), data);
  t.equal(rec.readUInt32LE(rec.length - 4), maskCrc32c(crc32c(data)), 'masked CRC of the data');
  const inPlace = Buffer.alloc(5 + rec.length);
  data.copy(inPlace, 5 + TFRECORD_HEAD);
  t.equal(frameRecord(inPlace, 5, data.length), inPlace.length, 'framed in place at an offset: returns its end');
  t.same(inPlace.subarray(5), rec);
  if (!needs(t, 'crc32c')) return;
  const file = path.join(tmpdir(t), 'rec');
  fs.writeFileSync(file, rec);
  const py = [
    'import crc32c, struct, sys',
    'b = open(sys.argv[1], "rb").read()',
    'm = lambda c: ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF',
    'n, = struct.unpack("<Q", b[:8])',
    'assert struct.unpack("<I", b[8:12])[0] == m(crc32c.crc32c(b[:8])), "length CRC"',
    'assert struct.unpack("<I", b[12 + n:16 + n])[0] == m(crc32c.crc32c(b[12:12 + n])), "data CRC"',
    'print(n, hex(crc32c.crc32c(b"123456789")))',
  ].join('\n');
  t.equal(execFileSync(peer('crc32c') as string, ['-c', py, file], { encoding: 'utf8' }).trim(), `${data.length} 0xe3069283`, 'Python crc32c agrees');
});
