/**
 * A CSV past V8's largest string (512 MB; issue 9 point 3): resuming onto it and giving it a new
 * key must neither read it into one string (ERR_STRING_TOO_LONG lost every new row) nor lose a
 * row. The file is built by writing one block over and over (≈ 2 s); the streamed rewrite of
 * 560 MB takes some seconds.
 */
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import t from 'tap';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { csvSink } from '../sinks/csv.js';
import { tmpdir } from './helpers.js';

const HEAD = '$step,$time,$level,a,s';

t.test('a 560 MB CSV: resumed, then given a new key; every row once, under the union header', { timeout: 180_000 }, async (t) => {
  const file = path.join(tmpdir(t), 'big.csv');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, `${HEAD}\n`);
  const block = Buffer.from(Array.from({ length: 10_000 }, (_, k) => `7,7,20,${k},"old, ""row"""\n`).join(''));
  let old = 0;
  while (old * (block.length / 10_000) < 560 * 1024 * 1024) {
    fs.writeSync(fd, block);
    old += 10_000;
  }
  fs.closeSync(fd);
  const size = fs.statSync(file).size;
  t.ok(size > 512 * 1024 * 1024, `${(size / 2 ** 20).toFixed(0)} MB`);

  const sink = csvSink({ path: file });
  const warnings: RowlogWarning[] = [];
  const errors: Error[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  sink.on('error', (e: Error) => errors.push(e));
  for (let i = 0; i < 1000; i++) {
    const data = i < 500 ? { a: i, s: 'new' } : { a: i, s: 'new', z: -i };
    sink.write({ table: 't', level: 20, step: 8 + i, time: 8, data });
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  sink.end();
  await finished(sink).catch(() => {});
  t.same(errors, [], 'no error');

  // Count lines and keep the first and the last ones, in 8 MiB reads.
  const rfd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  let lines = 0;
  let first = '';
  let tail = '';
  for (let pos = 0, n = fs.readSync(rfd, buf, 0, buf.length, 0); n > 0; pos += n, n = fs.readSync(rfd, buf, 0, buf.length, pos)) {
    const chunk = buf.subarray(0, n);
    if (pos === 0) first = chunk.subarray(0, chunk.indexOf(10)).toString();
    for (let k = chunk.indexOf(10); k >= 0; k = chunk.indexOf(10, k + 1)) lines++;
    tail = (tail + chunk.subarray(Math.max(0, n - 32768)).toString()).slice(-32768);
  }
  fs.closeSync(rfd);
  t.equal(first, `${HEAD},z`, 'the union header');
  t.equal(lines, 1 + old + 1000, 'every old row and all 1,000 new rows, once');
  const last = tail.split('\n').slice(-502, -1);
  t.same(last[0], '507,8,20,499,new,', 'the last row before the new key, an empty cell for it');
  t.same(last.at(-1), '1007,8,20,999,new,-999', 'the last row, the new key filled');
  t.same(warnings.map((w) => w.code), ['W_NEW_KEYS']);
  t.same(fs.readdirSync(path.dirname(file)), ['big.csv']);
});
