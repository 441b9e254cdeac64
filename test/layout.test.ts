/** lib/run/layout.ts: the one scanner of run folders and tables (used by `rowlog ls` and serve's /api/runs). */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { scanRun, scanRuns, tableFile } from '../lib/run/layout.js';
import { tmpdir } from './helpers.js';

const touch = (file: string, text = '{"a":1}\n') => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
};

t.test('tableFile: a table name and format from a file name', async (t) => {
  t.same(tableFile('train.jsonl.gz'), { name: 'train', format: 'jsonl.gz' });
  t.same(tableFile('train.jsonl'), { name: 'train', format: 'jsonl' });
  t.same(tableFile('m.csv'), { name: 'm', format: 'csv' });
  t.same(tableFile('m.csv.gz'), { name: 'm', format: 'csv.gz' }, 'a csvSink({ext: ".csv.gz"}) table');
  t.equal(tableFile('.jsonl'), undefined);
  t.equal(tableFile('run.json'), undefined);
  t.equal(tableFile('a b.csv'), undefined, 'not a valid name');
  t.equal(tableFile('...csv'), undefined);
});

t.test('a run: its tables, nested ones included, each file in reading order', async (t) => {
  const dir = tmpdir(t);
  touch(path.join(dir, 'run.json'), '{"name":"exp","startTime":"2026-01-01T00:00:00.000Z"}');
  touch(path.join(dir, 'train.csv'), '$step\n1\n');
  touch(path.join(dir, 'train.jsonl.gz'));
  touch(path.join(dir, 'grad', 'layer1.jsonl'));
  touch(path.join(dir, 'a', 'b', 'c', 'd', 't.jsonl'));
  touch(path.join(dir, 'a', 'b', 'c', 'd', 'e', 'deep.csv.gz'));
  touch(path.join(dir, ...'abcdefghijklmnopq'.split(''), 'too-deep.jsonl')); // 17 folders
  touch(path.join(dir, 'artifacts', 'x.jsonl'));
  touch(path.join(dir, '.hidden', 'x.jsonl'));
  touch(path.join(dir, 'rank0', 'status.json'), '{}');
  touch(path.join(dir, 'rank0', 'train.jsonl'));
  const outside = tmpdir(t);
  touch(path.join(outside, 'secret.jsonl'));
  fs.symlinkSync(outside, path.join(dir, 'link'));
  fs.symlinkSync(path.join(outside, 'secret.jsonl'), path.join(dir, 'linked.jsonl'));

  const run = scanRun(dir, '.');
  t.match(run, { id: '.', dir, name: 'exp', startTime: '2026-01-01T00:00:00.000Z' });
  t.same(
    run?.tables.map((x) => [x.name, x.files.map((f) => f.file)]),
    [
      ['.hidden/x', ['.hidden/x.jsonl']],
      ['a/b/c/d/e/deep', ['a/b/c/d/e/deep.csv.gz']],
      ['a/b/c/d/t', ['a/b/c/d/t.jsonl']],
      ['grad/layer1', ['grad/layer1.jsonl']],
      ['train', ['train.jsonl.gz', 'train.csv']],
    ],
    'a table under a dot-folder (a valid name); not artifacts/, sub-runs (rank0 has status.json), symbolic links, or deeper than 16 folders (the file sinks\' own walk: lib/io/walk-files.ts)',
  );
  t.match(run?.tables[4]?.files[1], { format: 'csv', size: 8, mtime: Number });
});

t.test('runs under a root: itself when it is one, then the sub-folders that are', async (t) => {
  const root = tmpdir(t);
  t.same(scanRuns(path.join(root, 'nope')), [], 'a missing root: none');
  touch(path.join(root, 'b', 'x.csv'), 'a\n1\n');
  touch(path.join(root, 'a', 'run.json'), 'not json yet');
  touch(path.join(root, 'a', 'grad', 'l1.jsonl'));
  fs.mkdirSync(path.join(root, 'empty'));
  touch(path.join(root, 'only-nested', 'grad', 'l1.jsonl'));
  t.same(
    scanRuns(root).map((r) => [r.id, r.name, r.tables.map((x) => x.name)]),
    [
      ['a', undefined, ['grad/l1']],
      ['b', undefined, ['x']],
    ],
    'a run.json being written still makes a run; folders without a marker or a top-level table are none',
  );
  touch(path.join(root, 'top.jsonl'));
  t.same(
    scanRuns(root).map((r) => r.id),
    ['.', 'a'],
    'the root is a run now: only sub-folders with their own marker are runs (b is a table folder)',
  );
  t.same(
    scanRuns(root)[0]?.tables.map((x) => x.name),
    ['b/x', 'only-nested/grad/l1', 'top'],
  );
});
