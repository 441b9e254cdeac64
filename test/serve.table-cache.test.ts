/**
 * serve's table cache (lib/serve/table-cache.ts) and background warming (table-warm.ts), on real
 * JSONL files: one read however many ask, a file that changed read again, the byte budget (the
 * least recently used entries go, their figures stay for the runs table), warming that reads
 * every listed table most recently changed first and stands still while a page's read runs,
 * a warmed read a page then waits for, and close().
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { RunListing } from '../lib/serve/runs.js';
import { TableCache, entryBytes } from '../lib/serve/table-cache.js';
import { warmTables } from '../lib/serve/table-warm.js';
import { tmpdir } from './helpers.js';
import { until } from './wait.js';

/** A JSONL table of `rows` rows of two columns (`loss` = 1/(i+1), `acc` = i) at `file`. */
function table(file: string, rows: number): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let s = '';
  for (let i = 0; i < rows; i++) s += `{"$step":${i},"$time":${1000 + i},"loss":${1 / (i + 1)},"acc":${i}}\n`;
  fs.writeFileSync(file, s);
  return file;
}

t.test('one read however many ask; a file that changed is read again', async (t) => {
  const dir = tmpdir(t);
  const f = table(path.join(dir, 'a.jsonl'), 100);
  const cache = new TableCache({ maxBuckets: 64 });
  const [a, b] = await Promise.all([cache.get(f), cache.get(f)]);
  t.equal(a, b, 'the two asks share one read');
  t.equal(a.total, 100);
  t.equal(cache.peek(f), a, 'held');
  t.equal(await cache.get(f), a, 'no second read while unchanged');
  t.same(cache.peekStats(f)?.stats.toJSON().loss, { n: 100, nonFinite: 0, last: 1 / 100, lastStep: 99, min: 1 / 100, max: 1 }, 'figures');
  t.ok(cache.bytes >= entryBytes(a) && entryBytes(a) > 0, 'its bytes are counted');
  fs.appendFileSync(f, '{"$step":100,"loss":0.5,"acc":100}\n');
  t.equal(cache.peek(f), undefined, 'stale once the file grew');
  t.equal(cache.peekStats(f), undefined, 'its figures too');
  t.equal((await cache.get(f)).total, 101, 'read again');
  t.equal(cache.size, 1, 'the new read replaced the old entry');
  t.equal(cache.peek(path.join(dir, 'none.jsonl')), undefined, 'a file never read');
});

t.test('the byte budget: least recently used entries go, their figures stay', async (t) => {
  const dir = tmpdir(t);
  const files = ['a', 'b', 'c'].map((n) => table(path.join(dir, `${n}.jsonl`), 200));
  const probe = new TableCache({ maxBuckets: 64 });
  const one = entryBytes(await probe.get(files[0] as string));
  const cache = new TableCache({ maxBuckets: 64, maxBytes: Math.floor(one * 2.5) });
  await cache.get(files[0] as string);
  await cache.get(files[1] as string);
  t.ok(cache.peek(files[0] as string), 'a used again: b is now the least recently used');
  await cache.get(files[2] as string);
  t.equal(cache.size, 2, 'two fit');
  t.ok(cache.bytes <= cache.maxBytes, 'within the budget');
  t.equal(cache.peek(files[1] as string), undefined, 'b went');
  t.ok(cache.peek(files[0] as string) && cache.peek(files[2] as string), 'a and c stay');
  t.equal(cache.peekStats(files[1] as string)?.total, 200, "b's figures stay (the runs table)");
  t.equal(cache.peekStats(files[1] as string)?.stats.toJSON().acc?.max, 199);
  const tiny = new TableCache({ maxBuckets: 64, maxBytes: 0 });
  await tiny.get(files[0] as string);
  t.equal(tiny.size, 1, 'a read a page waits for is kept whatever the budget (the last one)');
  await tiny.get(files[1] as string);
  t.equal(tiny.size, 1, 'and pushes the one before out');
  t.throws(() => new TableCache({ maxBuckets: 64, maxBytes: -1 }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => new TableCache({ maxBuckets: 64, concurrency: 0 }), { code: 'ERR_INVALID_OPTION' });
});

t.test('warming: every listed table, most recently changed first; figures alone past the budget', async (t) => {
  const dir = tmpdir(t);
  const a = table(path.join(dir, 'r1', 'train.jsonl'), 300);
  const b = table(path.join(dir, 'r2', 'train.jsonl'), 300);
  const c = table(path.join(dir, 'r2', 'eval.jsonl'), 30);
  fs.utimesSync(a, new Date(), new Date(Date.now() + 60_000)); // r1's table changed last
  const listing = new RunListing(dir, undefined);
  const cache = new TableCache({ maxBuckets: 64, maxBytes: 1 });
  warmTables(listing, cache);
  await until(() => [a, b, c].every((f) => cache.peekStats(f) !== undefined), 'every table warmed');
  t.equal(cache.size, 0, 'past the budget a background read keeps its figures alone');
  t.equal(cache.peekStats(b)?.total, 300);
  const roomy = new TableCache({ maxBuckets: 64 });
  warmTables(listing, roomy);
  await until(() => [a, b, c].every((f) => roomy.peekStats(f) !== undefined), 'every table warmed');
  t.equal(roomy.size, 3, 'within the budget their points stay too');
  const had = roomy.peek(a);
  roomy.warm([a, b]);
  t.equal(roomy.peek(a), had, 'warming again reads nothing held');
  // a listing whose run went, and runs that are not files (live, Redis), are passed over
  const stub = {
    runs: () => [
      { id: 'gone', name: 'gone', live: false, tables: [{ name: 'train', file: 'train.jsonl', format: 'jsonl', size: 0, mtime: 0 }] },
      { id: 'live:127.0.0.1:1', name: 'x', live: true, tables: [{ name: 'train', file: '', format: 'jsonl', size: 0, mtime: 0 }] },
      { id: 'redis:r', name: 'r', live: false, source: 'redis://x', tables: [{ name: 'train', file: '', format: 'jsonl', size: 0, mtime: 0 }] },
    ],
    resolve: () => {
      throw new Error('gone');
    },
  } as unknown as RunListing;
  t.doesNotThrow(() => warmTables(stub, roomy));
});

t.test("warming stands still while a page's read runs, and a page may take a warming read over", async (t) => {
  const dir = tmpdir(t);
  const big = table(path.join(dir, 'big.jsonl'), 100_000);
  const small = table(path.join(dir, 'small.jsonl'), 20_000);
  const cache = new TableCache({ maxBuckets: 64, maxBytes: 0 });
  cache.warm([big]);
  const page = await cache.get(small);
  t.equal(page.total, 20_000);
  t.equal(cache.peekStats(big), undefined, "the page's read ended first: the warming read was still under way");
  // a page now asks for the file being warmed: it is the page's read from here on (kept, whatever the budget)
  const other = cache.get(table(path.join(dir, 'other.jsonl'), 10)); // urgent: the warming read stands still
  const taken = await cache.get(big);
  await other;
  t.equal(taken.total, 100_000);
  t.equal(cache.peek(big), taken, 'held with its points, as a page read is');
  // a warming read a page asks for before it started
  const x = table(path.join(dir, 'x.jsonl'), 50);
  const y = table(path.join(dir, 'y.jsonl'), 50);
  cache.warm([x, y]);
  t.equal((await cache.get(y)).total, 50, 'a queued warming read taken over');
  t.ok(cache.peek(y), 'and kept with its points');
});

t.test('close(): queued warming is dropped, reads under way end early and are not kept', async (t) => {
  const dir = tmpdir(t);
  const files = ['a', 'b', 'c'].map((n) => table(path.join(dir, `${n}.jsonl`), 30_000));
  const cache = new TableCache({ maxBuckets: 64 });
  const reading = cache.get(files[0] as string);
  cache.warm(files.slice(1));
  cache.close();
  const partial = await reading;
  t.ok(partial.total < 30_000, `the read under way stopped (${partial.total} rows)`);
  t.equal(cache.size, 0, 'nothing kept');
  t.equal(cache.peekStats(files[1] as string), undefined, 'queued warming never ran');
});

t.test('a file removed or replaced while a read of it is under way: a new ask reads it again', async (t) => {
  const dir = tmpdir(t);
  const f = table(path.join(dir, 'a.jsonl'), 50_000);
  const cache = new TableCache({ maxBuckets: 64 });
  const first = cache.get(f);
  await new Promise((r) => setImmediate(r)); // under way
  fs.rmSync(f);
  await t.rejects(cache.get(f), { code: 'ENOENT' }, 'gone: not the read that started before');
  await first.catch(() => undefined);
  table(f, 10); // another file of that name
  const again = cache.get(f);
  await new Promise((r) => setImmediate(r));
  fs.appendFileSync(f, '{"$step":10,"loss":1,"acc":10}\n');
  t.equal(cache.get(f), again, 'grown: the read under way is shared');
  t.ok((await again).total >= 10);
});

/** A run folder with run.json (its id, and a parent's link) and train.jsonl of `steps`. */
function writeRun(dir: string, id: string, steps: number[], parent?: { id: string; dir: string }): void {
  fs.mkdirSync(dir, { recursive: true });
  const link = parent === undefined ? {} : { resumedFrom: { id: parent.id, dir: path.relative(dir, parent.dir), absoluteDir: parent.dir } };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ id, name: id, startTime: '2026-01-01T00:00:00.000Z', ...link }));
  fs.writeFileSync(path.join(dir, 'train.jsonl'), steps.map((s) => JSON.stringify({ $step: s, loss: s })).join('\n') + '\n');
}

const steps = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

t.test('a resumed run read again when a parent file changes, its own file unchanged', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  writeRun(a, 'A', steps(0, 10));
  writeRun(b, 'B', steps(5, 15), { id: 'A', dir: a });
  const cache = new TableCache({ maxBuckets: 64 });
  const child = path.join(b, 'train.jsonl');
  t.equal((await cache.get(child)).total, 15, 'the parent up to step 5, then the child');
  // The parent's file replaced by a shorter one (a rename: a new inode), the child's untouched.
  const tmp = path.join(a, 'train.jsonl.tmp');
  fs.writeFileSync(tmp, steps(0, 3).map((s) => JSON.stringify({ $step: s, loss: s })).join('\n') + '\n');
  fs.renameSync(tmp, path.join(a, 'train.jsonl'));
  t.equal(cache.peek(child), undefined, 'the entry is stale');
  t.equal((await cache.get(child)).total, 13, 'read again: the parent has 3 rows now');
  fs.rmSync(path.join(a, 'train.jsonl'));
  t.equal((await cache.get(child)).total, 10, 'the parent gone: the child alone');
});

