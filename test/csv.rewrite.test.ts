/**
 * CSV new keys on big files (docs/DESIGN.md §4, issue 9 points 3, 4, 7, 11): the union rewrite streams
 * off the hot path, rows logged meanwhile land once and in order, several new keys during a
 * rewrite cost one more rewrite, a SIGKILL at any moment loses no flushed row, reopening reads
 * only the header and the end, and removes what an interrupted rewrite left.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import t from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import type { FileSink } from '../sinks/file-sink.js';
import { readLog } from '../lib/read/read-log.js';
import { createLogger } from '../lib/log/logger.js';
import { csvSink } from '../sinks/csv.js';
import { ROOT, run, tmpdir } from './helpers.js';

const HEAD = '$step,$time,$level';
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Writes a CSV of about `mb` MB directly (header `$step,$time,$level,i,s`); returns its row count. */
function build(file: string, mb: number): number {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, `${HEAD},i,s\n`);
  let rows = 0;
  for (let size = 0; size < mb * 1024 * 1024; ) {
    let chunk = '';
    for (let k = 0; k < 10_000; k++, rows++) chunk += `${rows},${rows},20,${rows},"row ${rows}, ""q"""\n`;
    size += fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
  return rows;
}

function entry(step: number, data: FlatRow): Entry<FlatRow> {
  return { table: 't', level: 20, step, time: step, data };
}

/**
 * What Python's csv module reads in `file`: the header, the row count, whether steps are 0…n-1
 * in order, and the cells of `cols` in the rows whose step is in `at`.
 */
function py(file: string, cols: string[], at: number[]): { header: string[]; rows: number; ordered: boolean; cells: Record<string, string[]> } {
  const script = `
import csv, json, sys
cols = json.loads(sys.argv[2]); at = set(json.loads(sys.argv[3]))
with open(sys.argv[1], newline='') as f:
    r = csv.reader(f)
    header = next(r)
    idx = [header.index(c) if c in header else None for c in cols]
    rows = 0; ordered = True; cells = {}
    for row in r:
        if int(row[0]) != rows: ordered = False
        if rows in at: cells[str(rows)] = [row[k] if k is not None and k < len(row) else None for k in idx]
        rows += 1
print(json.dumps({'header': header, 'rows': rows, 'ordered': ordered, 'cells': cells}))
`;
  const r = run('python3', ['-c', script, file, JSON.stringify(cols), JSON.stringify(at)]);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof py>;
}

function open(file: string): { sink: FileSink; warnings: RowlogWarning[] } {
  const sink = csvSink({ path: file });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  return { sink, warnings };
}

t.test('a new key on a big CSV while rows keep coming: no rewrite inside write(), later rows land after it in order, once', async (t) => {
  const file = path.join(tmpdir(t), 't.csv');
  const n = build(file, 8);
  const ino = fs.statSync(file).ino;
  const { sink, warnings } = open(file);
  let step = n;
  for (; step < n + 100; step++) sink.write(entry(step, { i: step, s: 'a' }));
  sink.write(entry(step++, { i: -1, s: 'new', z: 1 }));
  t.equal(fs.statSync(file).ino, ino, 'the row with the new key did not rewrite the file (that stalled the loop for seconds)');
  t.match(JSON.parse(fs.readFileSync(`${file}.columns`, 'utf8')), { entries: [{ base: [...HEAD.split(','), 'i', 's'], extras: ['z'] }] }, 'the sidecar names the new key at once');
  let during = 0;
  while (fs.statSync(file).ino === ino) {
    for (let k = 0; k < 100; k++, step++, during++) sink.write(entry(step, { i: step, s: 'b', z: step }));
    await tick();
  }
  t.ok(during > 0, `${during} rows were logged while the rewrite ran`);
  for (let k = 0; k < 100; k++, step++) sink.write(entry(step, { i: step, s: 'c', z: step }));
  sink.end();
  await finished(sink);
  const got = py(file, ['i', 's', 'z'], [0, n + 99, n + 100, n + 101, step - 1]);
  t.same(got.header, [...HEAD.split(','), 'i', 's', 'z']);
  t.equal(got.rows, step, 'every row once');
  t.ok(got.ordered, 'steps in order');
  t.same(got.cells, {
    0: ['0', 'row 0, "q"', ''],
    [n + 99]: [String(n + 99), 'a', ''],
    [n + 100]: ['-1', 'new', '1'],
    [n + 101]: [String(n + 101), 'b', String(n + 101)],
    [step - 1]: [String(step - 1), 'c', String(step - 1)],
  });
  t.same(fs.readdirSync(path.dirname(file)), ['t.csv'], 'no temp file or sidecar is left');
  t.same(warnings.map((w) => w.message), ["Adding new key 'z' to table 't'"]);
});

t.test('several new keys while a rewrite runs cost exactly one more rewrite', async (t) => {
  const file = path.join(tmpdir(t), 't.csv');
  const n = build(file, 4);
  const renames: string[] = [];
  const rename = fs.renameSync;
  fs.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
    if (to === file) renames.push(String(from));
    rename(from, to);
  };
  t.teardown(() => {
    fs.renameSync = rename;
  });
  const { sink } = open(file);
  let step = n;
  sink.write(entry(step++, { i: 0, a: 1 }));
  sink.write(entry(step++, { i: 1, a: 1, b: 2 }));
  sink.write(entry(step++, { i: 2, c: 3 }));
  for (let k = 0; k < 5; k++, step++) sink.write(entry(step, { i: 3, d: k, a: 4 }));
  sink.end();
  await finished(sink);
  t.equal(renames.length, 2, 'two rewrites for four new keys arriving one after the other');
  const got = py(file, ['a', 'b', 'c', 'd'], [0, n, n + 1, n + 2, step - 1]);
  t.same(got.header, [...HEAD.split(','), 'a', 'b', 'c', 'd', 'i', 's']);
  t.equal(got.rows, step);
  t.ok(got.ordered);
  t.same(got.cells, { 0: ['', '', '', ''], [n]: ['1', '', '', ''], [n + 1]: ['1', '2', '', ''], [n + 2]: ['', '', '3', ''], [step - 1]: ['4', '', '', '4'] });
});

t.test('reading a CSV mid-rewrite: Python csv reads it, readLog names the new fields from the sidecar', async (t) => {
  const file = path.join(tmpdir(t), 't.csv');
  const n = build(file, 2);
  const ino = fs.statSync(file).ino;
  const { sink } = open(file);
  sink.write(entry(n, { i: 1, z: 'x,y' }));
  await sink.flush();
  t.equal(fs.statSync(file).ino, ino, 'the rewrite is still under way');
  const got = py(file, ['i', 's'], [n]);
  t.equal(got.rows, n + 1, 'Python csv reads every row of the ragged file');
  const rows: Array<Record<string, unknown>> = [];
  for await (const row of readLog(file)) rows.push(row as Record<string, unknown>);
  t.equal(rows.length, n + 1);
  t.same(rows.at(-1), { $step: n, $time: n, $level: 20, i: 1, s: null, z: 'x,y' });
  sink.destroy();
});

t.test('reopening a big CSV reads its header and its end only', async (t) => {
  const file = path.join(tmpdir(t), 't.csv');
  const n = build(file, 16);
  let bytes = 0;
  const readSync = fs.readSync;
  const readFileSync = fs.readFileSync;
  fs.readSync = ((...args: Parameters<typeof fs.readSync>) => {
    const got = readSync(...args);
    bytes += got;
    return got;
  }) as typeof fs.readSync;
  fs.readFileSync = ((...args: Parameters<typeof fs.readFileSync>) => {
    const got = readFileSync(...args);
    bytes += got.length;
    return got;
  }) as typeof fs.readFileSync;
  const { sink } = open(file);
  sink.write(entry(n, { i: n, s: 'again' }));
  fs.readSync = readSync;
  fs.readFileSync = readFileSync;
  t.ok(bytes < 2 * 1024 * 1024, `opened a 16 MB CSV reading ${bytes} bytes`);
  sink.end();
  await finished(sink);
  t.equal(py(file, [], []).rows, n + 1);
});

t.test('reopening removes what an interrupted rewrite left', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 't.csv');
  fs.writeFileSync(file, `${HEAD},a\n0,0,20,1\n`);
  for (const name of ['t.csv.4242.tmp', 't.csv.rewrite.tmp', 't.csv.columns.tmp', 'u.csv.4242.tmp']) fs.writeFileSync(path.join(dir, name), '0,0,20,1\n');
  const { sink } = open(file);
  sink.write(entry(1, { a: 2 }));
  sink.end();
  await finished(sink);
  t.same(fs.readdirSync(dir).sort(), ['t.csv', 'u.csv.4242.tmp'], "the table's leftovers are gone, another table's are not touched");
  t.equal(fs.readFileSync(file, 'utf8'), `${HEAD},a\n0,0,20,1\n1,1,20,2\n`);
});

t.test('SIGKILL during rewrites: after a reopen every flushed row is in the CSV exactly once', async (t) => {
  const fixture = path.join(ROOT, 'test', 'fixtures', 'csv-rewrite-writer.mjs');
  const dir = tmpdir(t);
  // [rewrite the kill aims at (1: the first, for k1; 2: the second, for k2), extra delay in ms]
  const trials: Array<[number, number]> = [[1, 0], [1, 2], [1, 6], [2, 0], [2, 3]];
  for (const [trial, [which, delay]] of trials.entries()) {
    const file = path.join(dir, `t${trial}.csv`);
    const n = build(file, 12);
    const { flushed, rewriting } = await new Promise<{ flushed: number; rewriting: boolean }>((resolve, reject) => {
      const child = spawn(process.execPath, [fixture, file, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      let last = { flushed: -1, rewriting: false };
      let aimed = false;
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        for (const m of out.matchAll(/flushed (\d+) (\d)\n/g)) last = { flushed: Number(m[1]), rewriting: m[2] === '1' };
        out = out.slice(out.lastIndexOf('\n') + 1);
        const inAimed = last.rewriting && (which === 1 ? last.flushed < n + 1200 : last.flushed > n + 1200);
        if (inAimed && !aimed) {
          aimed = true;
          setTimeout(() => child.kill('SIGKILL'), delay);
        }
        if (last.flushed > n + 20_000) child.kill('SIGKILL'); // never aimed: the assertion below says so
      });
      child.on('error', reject);
      child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve(last) : reject(new Error(`writer exited (${String(signal)})`))));
    });
    t.ok(rewriting, `trial ${trial}: killed while rewrite ${which} ran (its temp file existed at the last flush)`);
    const got = py(file, [], []);
    t.ok(got.rows >= flushed && got.ordered, `trial ${trial}: after the kill Python reads ${got.rows} rows in order (${flushed} flushed)`);
    const { sink } = open(file);
    sink.write(entry(got.rows, { i: -1, s: 'after', k1: 0, k2: 0 }));
    sink.end();
    await finished(sink);
    const after = py(file, ['i', 'k1', 'k2'], [n + 205, n + 1205, got.rows]);
    t.ok(after.ordered && after.rows === got.rows + 1, `trial ${trial}: after a reopen steps 0…${got.rows} once each, in order`);
    t.same(after.header, [...HEAD.split(','), 'i', 'k1', 'k2', 's'], `trial ${trial}: one header with every key`);
    if (got.rows > n + 205) t.same(after.cells[n + 205], ['205', '205', ''], `trial ${trial}: a row logged during the first rewrite kept its new key`);
    if (got.rows > n + 1205) t.same(after.cells[n + 1205], ['1205', '1205', '-1205'], `trial ${trial}: and one logged during the second`);
    t.same(fs.readdirSync(dir).filter((f) => f.startsWith(`t${trial}.`)), [`t${trial}.csv`], `trial ${trial}: nothing left beside the CSV`);
  }
});

t.test('.csv.gz: a streamed rewrite by whole BGZF members while rows keep coming', async (t) => {
  const file = path.join(tmpdir(t), 't.csv.gz');
  const first = csvSink({ path: file });
  const N = 60_000;
  for (let i = 0; i < N; i++) first.write(entry(i, { i, r: Math.sin(i), s: `row ${i}` }));
  first.end();
  await finished(first);
  const ino = fs.statSync(file).ino;
  t.ok(fs.statSync(file).size > 512 * 1024, 'big enough for an asynchronous rewrite');
  const { sink } = open(file);
  let step = N;
  sink.write(entry(step++, { i: -1, z: 1 }));
  t.equal(fs.statSync(file).ino, ino, 'not rewritten inside write()');
  while (fs.statSync(file).ino === ino) {
    for (let k = 0; k < 100; k++, step++) sink.write(entry(step, { i: step, z: step }));
    await tick();
  }
  for (let k = 0; k < 100; k++, step++) sink.write(entry(step, { i: step, z: step }));
  sink.end();
  await finished(sink);
  const r = run('sh', ['-c', `gzip -t '${file}' && zcat '${file}' > '${file}.txt'`]);
  t.equal(r.status, 0, 'gzip -t passes');
  const got = py(`${file}.txt`, ['i', 'z'], [0, N, N + 1, step - 1]);
  fs.rmSync(`${file}.txt`);
  t.same(got.header, [...HEAD.split(','), 'i', 'r', 's', 'z']);
  t.equal(got.rows, step, 'every row once');
  t.ok(got.ordered, 'in order');
  t.same(got.cells, { 0: ['0', ''], [N]: ['-1', '1'], [N + 1]: [String(N + 1), String(N + 1)], [step - 1]: [String(step - 1), String(step - 1)] });
});

t.test('a rewrite that cannot be done warns W_REWRITE_FAILED; rows keep landing, the new keys named by the sidecar', async (t) => {
  const file = path.join(tmpdir(t), 't.csv');
  const n = build(file, 1);
  fs.mkdirSync(`${file}.rewrite.tmp`); // the temp file's name is taken by a folder
  const { sink, warnings } = open(file);
  sink.write(entry(n, { i: 1, z: 2 }));
  sink.write(entry(n + 1, { i: 2, s: 'x' }));
  sink.end();
  await finished(sink);
  t.same(
    warnings.map((w) => w.code),
    ['W_NEW_KEYS', 'W_REWRITE_FAILED'],
  );
  const got = py(file, ['i', 's'], [n, n + 1]);
  t.equal(got.rows, n + 2, 'every row landed');
  const rows: Array<Record<string, unknown>> = [];
  for await (const row of readLog(file)) rows.push(row as Record<string, unknown>);
  t.same(rows.slice(-2), [
    { $step: n, $time: n, $level: 20, i: 1, s: null, z: 2 },
    { $step: n + 1, $time: n + 1, $level: 20, i: 2, s: 'x', z: null },
  ]);
});

t.test('a rewrite a killed process left is finished by the next logger, for a table that gets no row', async (t) => {
  const dir = tmpdir(t);
  // What a kill mid-rewrite leaves: rows with a trailing field the sidecar names, a partial temp file.
  const rows = ['$step,$time,$level,a', '0,1,20,0', '1,1,20,1'];
  const from = `${rows.join('\n')}\n`.length;
  fs.writeFileSync(path.join(dir, 'quiet.csv'), `${[...rows, '2,1,20,2,20', '3,1,20,3,30'].join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'quiet.csv.columns'), JSON.stringify({ entries: [{ base: ['$step', '$time', '$level', 'a'], extras: ['b'], from }] }));
  fs.writeFileSync(path.join(dir, 'quiet.csv.rewrite.tmp'), '$step,$time,$level,a,b\n0,1,');
  const log = createLogger({ dir, console: false, exitHooks: false });
  log.row('other', { x: 1 });
  await log.close();
  t.equal(fs.readFileSync(path.join(dir, 'quiet.csv'), 'utf8'), '$step,$time,$level,a,b\n0,1,20,0,\n1,1,20,1,\n2,1,20,2,20\n3,1,20,3,30\n', 'rewritten under the union header');
  t.same(fs.readdirSync(dir).filter((f) => f.startsWith('quiet.')), ['quiet.csv'], 'no sidecar, no temp file left');
});
