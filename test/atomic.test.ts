/** lib/io/atomic.ts: the one atomic write, and lib/format/bgzf.ts's isGzip, the one gzip rule. */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { isGzip } from '../lib/format/bgzf.js';
import { atomicTmpPath, oldLinkPath, renameOver, writeFileAtomic } from '../lib/io/atomic.js';
import { lastStepInFile } from '../lib/run/last-step.js';
import { tmpdir } from './helpers.js';

t.test('writeFileAtomic: the whole file or the old one, no temp file left, with or without fsync', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'status.json');
  writeFileAtomic(file, '{"a":1}\n');
  t.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n');
  writeFileAtomic(file, new Uint8Array([123, 125, 10]), { fsync: true });
  t.equal(fs.readFileSync(file, 'utf8'), '{}\n', 'bytes, fsync\'ed');
  writeFileAtomic(file, 'x', { tmp: `${file}.mine.tmp` });
  t.equal(fs.readFileSync(file, 'utf8'), 'x', 'a temp name of the caller');
  t.same(fs.readdirSync(dir), ['status.json'], 'no temp file is left');
  t.equal(atomicTmpPath(file), `${file}.${process.pid}.tmp`);
  // A temp file that cannot be renamed (a folder in the file's place): the error, the temp file gone.
  const blocked = path.join(dir, 'blocked');
  fs.mkdirSync(path.join(blocked, 'inside'), { recursive: true });
  t.throws(() => writeFileAtomic(blocked, 'y'));
  t.notOk(fs.existsSync(atomicTmpPath(blocked)), 'the temp file of a failed write is removed');
});

t.test('renameOver: a large file is replaced through a second link, freed later; fsync of the folder', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 't.csv');
  fs.writeFileSync(file, Buffer.alloc(17 * 1024 * 1024, 97));
  const tmp = path.join(dir, 't.csv.rewrite.tmp');
  fs.writeFileSync(tmp, 'new\n');
  renameOver(tmp, file, { large: true, fsync: true });
  t.equal(fs.readFileSync(file, 'utf8'), 'new\n');
  t.notOk(fs.existsSync(tmp));
  // the old link is unlinked on the thread pool: wait until its name is gone (ceiling 30 s)
  const until = Date.now() + 30_000;
  while (fs.existsSync(oldLinkPath(file)) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  t.notOk(fs.existsSync(oldLinkPath(file)), 'the second link is gone');
  t.throws(() => renameOver(path.join(dir, 'missing.tmp'), file, { large: true }), { code: 'ENOENT' });
  t.equal(fs.readFileSync(file, 'utf8'), 'new\n', 'a failed rename leaves the file as it was');
  t.notOk(fs.existsSync(oldLinkPath(file)));
});

t.test('isGzip: magic and deflate as far as present; readers go by bytes, not by name', async (t) => {
  const gz = zlib.gzipSync('{"$step":7}\n');
  t.ok(isGzip(gz));
  t.ok(isGzip(gz.subarray(0, 1)), 'a file torn after its first byte is gzip');
  t.ok(isGzip(gz.subarray(0, 2)));
  t.notOk(isGzip(Buffer.from([0x1f, 0x8b, 7])), 'CM must be deflate');
  t.notOk(isGzip(Buffer.from('{"a":1}')));
  t.notOk(isGzip(Buffer.alloc(0)));
  const dir = tmpdir(t);
  const named = path.join(dir, 'a.jsonl.gz');
  fs.writeFileSync(named, '{"$step":3}\n{"$step":4}\n');
  t.equal(lastStepInFile(named), 4, 'a plain file named .jsonl.gz is read as plain text');
});
