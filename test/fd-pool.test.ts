/**
 * lib/io/fd-pool.ts through the file sinks: at most `maxOpenFiles` fds per sink, every row of
 * every table still lands, and a CSV writer replaced by a rewrite leaves the pool clean.
 */
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import t from 'tap';
import zlib from 'node:zlib';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { FileWriter } from '../lib/io/file-writer.js';
import { GzipWriter } from '../lib/io/gzip-writer.js';
import { csvSink } from '../sinks/csv.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { readJsonl, tmpdir } from './helpers.js';

function entry(table: string, step: number, data: FlatRow): Entry<FlatRow> {
  return { table, level: 20, step, time: 1_700_000_000_000 + step, data };
}

/** Fds this process holds on files under `dir`. */
function fdsUnder(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir + path.sep)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

t.test('maxOpenFiles: 3 with 40 tables: never more than 3 fds, every row of every table', async (t) => {
  const dir = tmpdir(t);
  const sink = jsonlSink({ dir, ext: '.jsonl.gz', maxOpenFiles: 3, flushIntervalMs: 2 });
  let most = 0;
  for (let round = 0; round < 20; round++) {
    for (let k = 0; k < 40; k++) sink.write(entry(`t${k}`, round, { k, round }));
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 1));
      most = Math.max(most, fdsUnder(dir));
    }
  }
  sink.end();
  await finished(sink);
  t.ok(most <= 3, `at most 3 fds open at once (saw ${most})`);
  t.ok(most >= 1, 'files were open while writing');
  const wrong: string[] = [];
  for (let k = 0; k < 40; k++) {
    const rounds = readJsonl(path.join(dir, `t${k}.jsonl.gz`)).map((r) => r.round);
    if (JSON.stringify(rounds) !== JSON.stringify(Array.from({ length: 20 }, (_, i) => i))) wrong.push(`t${k}`);
  }
  t.same(wrong, [], 'every table holds its 20 rows in order');
  t.equal(fdsUnder(dir), 0, 'nothing left open after end()');
});

t.test('CSV rewrites (new keys) with a pool of 2 and 10 tables: union headers, every row', async (t) => {
  const dir = tmpdir(t);
  const sink = csvSink({ dir, maxOpenFiles: 2, flushIntervalMs: 2 });
  sink.on('warning', () => undefined);
  for (let step = 0; step < 30; step++) {
    for (let k = 0; k < 10; k++) sink.write(entry(`t${k}`, step, step < 15 ? { a: step } : { a: step, b: -step }));
    await new Promise((r) => setTimeout(r, 1));
  }
  sink.end();
  await finished(sink);
  for (let k = 0; k < 10; k++) {
    const lines = fs.readFileSync(path.join(dir, `t${k}.csv`), 'utf8').trimEnd().split('\n');
    t.equal(lines[0], '$step,$time,$level,a,b');
    t.equal(lines.length, 31, `t${k}: the header and 30 rows`);
  }
  t.equal(fdsUnder(dir), 0, 'nothing left open');
});

t.test('FileWriter.before: a barrier runs between the chunks around it; EMFILE holds the later chunks back, silently, and retries', async (t) => {
  const dir = tmpdir(t);
  for (const gz of [false, true]) {
    const file = path.join(dir, gz ? 'b.csv.gz' : 'b.csv');
    const errors: Error[] = [];
    const w = gz ? new GzipWriter(file, (e) => errors.push(e)) : new FileWriter(file, (e) => errors.push(e));
    const read = () => (fs.existsSync(file) ? (gz ? zlib.gunzipSync(fs.readFileSync(file)) : fs.readFileSync(file)).toString() : '');
    let tries = 0;
    let fds = false; // the barrier meets EMFILE until this is set
    let seen: string | undefined;
    w.write(Buffer.from('a\n'), 1);
    w.before(() => {
      tries++;
      if (!fds) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
      seen = read();
    });
    w.write(Buffer.from('b\n'), 1);
    while (tries < 2) await new Promise((r) => setTimeout(r, 5));
    t.equal(read(), 'a\n', `${gz ? 'gzip' : 'plain'}: the chunk after a barrier that meets EMFILE waits (tried again ${tries - 1} times)`);
    fds = true;
    await w.flush();
    t.ok(tries >= 3, 'the barrier was tried until it ran');
    t.equal(seen, 'a\n', 'it ran after the chunk before it was on disk');
    t.equal(read(), 'a\nb\n', 'then the chunk after it landed');
    t.same(errors, [], 'no error reported: EMFILE is not a failure of the file');
    w.write(Buffer.from('c\n'), 1);
    w.before(() => {
      throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    });
    w.write(Buffer.from('d\n'), 1);
    await t.rejects(w.flush(), { code: 'ENOSPC' }, 'another error fails the file for now, like a write');
    t.equal(read(), 'a\nb\nc\n', 'the rows after it are held');
    t.equal(w.dropOldest(1e9).rows, 1, 'dropping takes the row, not the barrier');
    w.closeSync();
  }
});

t.test('maxOpenFiles is validated', async (t) => {
  t.throws(() => jsonlSink({ dir: '.', maxOpenFiles: 0 }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => jsonlSink({ dir: '.', maxOpenFiles: 1.5 }), { code: 'ERR_INVALID_OPTION' });
});
