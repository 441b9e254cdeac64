/** `rowlog ls [DIR]`: the runs under a folder and their tables, from the built CLI. */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { createLogger, serve } from '../lib/index.js';
import { runCli } from './cli.js';
import { tmpdir } from './helpers.js';

const rowlog = (args: string[], cwd: string) => runCli(args, { cwd });

t.test('ls lists each run made by createLogger with its tables, row counts, columns, steps, time and sizes', async (t) => {
  const cwd = tmpdir(t);
  const log = createLogger({ dir: path.join(cwd, 'runs', 'alpha'), console: false, exitHooks: false });
  for (let i = 0; i < 250; i++) log.row('train', { loss: 1 / (i + 1), lr: 0.1 }, { step: i, time: Date.UTC(2026, 0, 2, 3, 4, 5) + i });
  for (let i = 0; i < 3; i++) log.row('eval', { acc: 0.5 + i / 10 }, { step: 100 * i, time: Date.UTC(2026, 0, 2) });
  await log.close();
  const loose = path.join(cwd, 'runs', 'loose');
  fs.mkdirSync(loose);
  fs.writeFileSync(path.join(loose, 'm.csv'), '$step,x\n7,1\n9,2\n');
  fs.writeFileSync(path.join(loose, 'torn.jsonl.gz'), zlib.gzipSync('{"$step":1}\n{"$step":2}\n{"$step":3}\n').subarray(0, 25));
  fs.mkdirSync(path.join(cwd, 'runs', 'empty-folder'));

  const r = rowlog(['ls'], cwd);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, '');
  const out = r.stdout;
  t.match(out, /^runs\/alpha\/ {2}\(started \d{4}-\d\d-\d\dT[\d:.]+Z\)\n/, 'the run folder first, with its start time');
  t.match(out, /\n {2}TABLE +ROWS +COLS +FIRST STEP +LAST STEP +LAST TIME +FILES\n/);
  t.match(out, /\n {2}eval +3 +4 +0 +200 +2026-01-02T00:00:00\.000Z +eval\.jsonl\.gz \d+(\.\d)? (B|KiB), eval\.csv \d+(\.\d)? (B|KiB)\n/);
  t.match(out, /\n {2}train +250 +5 +0 +249 +2026-01-02T03:04:05\.249Z +train\.jsonl\.gz \d+(\.\d)? (B|KiB), train\.csv \d+\.\d KiB\n/);
  t.ok(out.indexOf('  eval') < out.indexOf('  train'), 'tables by name');
  t.match(out, /\nruns\/loose\/\n/, 'a folder of tables without run.json is a run too');
  t.match(out, /\n {2}m +2 +2 +7 +9 +- +m\.csv 16 B\n/);
  t.match(out, /\n {2}torn +\d +1 +1 +\d +- +torn\.jsonl\.gz 25 B {2}\[cut short\]\n/);
  t.notMatch(out, /empty-folder/, 'a folder without tables is no run');
  const lines = out.split('\n');
  const header = lines.find((l) => l.includes('TABLE')) as string;
  const train = lines.find((l) => l.startsWith('  train')) as string;
  t.equal(train.indexOf('250'), header.indexOf('ROWS'), 'columns are aligned');

  const self = rowlog(['ls', path.join('runs', 'alpha')], cwd);
  t.equal(self.status, 0, self.stderr);
  t.match(self.stdout, /^runs\/alpha\/ .*\n {2}TABLE/, 'DIR itself when it is a run');
  t.notMatch(self.stdout, /artifacts/);
});

t.test('ls on a missing folder: one line on stderr, exit 1', async (t) => {
  const cwd = tmpdir(t);
  const r = rowlog(['ls'], cwd);
  t.equal(r.status, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^rowlog: ls: no such folder: runs\n$/);
  const other = rowlog(['ls', 'nowhere/else'], cwd);
  t.equal(other.status, 1);
  t.equal(other.stderr.split('\n').length, 2, 'one line');
});

/** `rowlog ls` output (run in `cwd`) as {id, tables}: each block's folder relative to `dir` (`.` for itself) and its table names. */
function lsBlocks(out: string, dir: string, cwd: string): Array<{ id: string; tables: string[] }> {
  const blocks: Array<{ id: string; tables: string[] }> = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    if (!line.startsWith(' ')) blocks.push({ id: path.relative(dir, path.resolve(cwd, (line.split('  ')[0] as string).replace(/\/$/, ''))) || '.', tables: [] });
    else if (!line.startsWith('  TABLE ')) blocks[blocks.length - 1]?.tables.push(line.trim().split(/ +/)[0] as string);
  }
  return blocks;
}

async function apiRuns(dir: string): Promise<Array<{ id: string; tables: string[] }>> {
  const h = await serve({ dir, onWarning: () => {} });
  try {
    const body = await new Promise<string>((resolve, reject) => {
      http.get(`${h.url}api/runs`, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (d: string) => (b += d));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    const runs = (JSON.parse(body) as { runs: Array<{ id: string; tables: Array<{ name: string }> }> }).runs;
    return runs.map((r) => ({ id: r.id, tables: r.tables.map((x) => x.name) }));
  } finally {
    await h.close();
  }
}

t.test("ls and serve's /api/runs agree: nested tables are tables of their run, sub-runs are runs", async (t) => {
  const cwd = tmpdir(t);
  const exp1 = path.join(cwd, 'runs', 'exp1');
  const log = createLogger({ dir: exp1, console: false, exitHooks: false });
  log.row('train', { loss: 1 }, { step: 0 });
  for (let i = 0; i < 2; i++) log.row('grad/layer1', { norm: i }, { step: i });
  await log.close();
  const rank0 = createLogger({ dir: path.join(exp1, 'rank0'), console: false, exitHooks: false });
  rank0.row('train', { loss: 2 }, { step: 5 });
  await rank0.close();

  const all = rowlog(['ls', 'runs'], cwd);
  t.equal(all.status, 0, all.stderr);
  t.match(all.stdout, /\n {2}grad\/layer1 +2 +4 +0 +1 +\S+ +grad\/layer1\.jsonl\.gz \d+ B, grad\/layer1\.csv \d+ B\n/, 'ls runs: the nested table, with its files');
  t.same(lsBlocks(all.stdout, path.join(cwd, 'runs'), cwd), [{ id: 'exp1', tables: ['grad/layer1', 'train'] }], 'ls runs: one run, its own tables');
  t.same(await apiRuns(path.join(cwd, 'runs')), lsBlocks(all.stdout, path.join(cwd, 'runs'), cwd), '/api/runs says the same');

  const one = rowlog(['ls', path.join('runs', 'exp1')], cwd);
  t.equal(one.status, 0, one.stderr);
  t.notMatch(one.stdout, /grad\/\s/, 'the table folder grad/ is no run');
  t.same(
    lsBlocks(one.stdout, exp1, cwd),
    [
      { id: '.', tables: ['grad/layer1', 'train'] },
      { id: 'rank0', tables: ['train'] },
    ],
    'ls runs/exp1: the run itself, then its sub-run (a folder with run.json)',
  );
  t.same(await apiRuns(exp1), lsBlocks(one.stdout, exp1, cwd), '/api/runs says the same');
});
