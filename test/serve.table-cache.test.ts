/**
 * lib/serve/table-cache.ts: serve's reads of table files, kept while what they read holds. A
 * resumed run's entry goes stale when a parent's file changes (the child's own file unchanged),
 * and the entries are bounded in points however many files and x-axes are asked for (`x=` is
 * the page's to choose), the least recently used going first.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { TableCache } from '../lib/serve/table-cache.js';
import { tmpdir } from './helpers.js';

/** A run folder with run.json (its id, and a parent's link) and train.jsonl of `steps`. */
function writeRun(dir: string, id: string, steps: number[], parent?: { id: string; dir: string }): void {
  fs.mkdirSync(dir, { recursive: true });
  const link = parent === undefined ? {} : { resumedFrom: { id: parent.id, dir: path.relative(dir, parent.dir), absoluteDir: parent.dir } };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ id, name: id, startTime: '2026-01-01T00:00:00.000Z', ...link }));
  fs.writeFileSync(path.join(dir, 'train.jsonl'), steps.map((s) => JSON.stringify({ $step: s, loss: s })).join('\n') + '\n');
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

t.test('a resumed run read again when a parent file changes, its own file unchanged', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  writeRun(a, 'A', range(0, 10));
  writeRun(b, 'B', range(5, 15), { id: 'A', dir: a });
  const cache = new TableCache({ maxBuckets: 64 });
  const child = path.join(b, 'train.jsonl');
  t.equal((await cache.get(child)).total, 15, 'the parent up to step 5, then the child');
  // The parent's file replaced by a shorter one (a rename: a new inode), the child's untouched.
  const tmp = path.join(a, 'train.jsonl.tmp');
  fs.writeFileSync(tmp, range(0, 3).map((s) => JSON.stringify({ $step: s, loss: s })).join('\n') + '\n');
  fs.renameSync(tmp, path.join(a, 'train.jsonl'));
  t.equal(cache.peek(child), undefined, 'the entry is stale');
  t.equal((await cache.get(child)).total, 13, 'read again: the parent has 3 rows now');
  fs.rmSync(path.join(a, 'train.jsonl'));
  t.equal((await cache.get(child)).total, 10, 'the parent gone: the child alone');
});

t.test('entries bounded in points, the least recently used dropped', async (t) => {
  const root = tmpdir(t);
  const files = [0, 1, 2].map((k) => {
    const dir = path.join(root, `r${k}`);
    writeRun(dir, `R${k}`, range(0, 2000));
    return path.join(dir, 'train.jsonl');
  });
  // 2000 rows at 64 buckets: 32 rows a bucket, 2 points each (first=min, last=max): 128 points an entry (1024 counted).
  const cache = new TableCache({ maxBuckets: 64, maxPoints: 2500 });
  const [f0, f1, f2] = files as [string, string, string];
  await cache.get(f0);
  await cache.get(f1);
  t.ok(cache.peek(f0), 'two entries fit');
  await cache.get(f2);
  t.equal(cache.peek(f1), undefined, 'a third: the one used longest ago went');
  t.ok(cache.peek(f0) && cache.peek(f2), 'the others stay');
  t.ok(cache.points <= 2500, `points held ${cache.points}`);
  // Axes no row has (a hostile x=): each an entry, all within the bound.
  for (let k = 0; k < 20; k++) await cache.get(f0, `nothing${k}`);
  t.ok(cache.points <= 2500, `after 20 other axes: points held ${cache.points}`);
  t.throws(() => new TableCache({ maxBuckets: 64, maxPoints: -1 }), { code: 'ERR_INVALID_OPTION' });
});
