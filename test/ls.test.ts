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
  t.match(out, /^runs\/alpha\/ {2}\(started \d{4}-\d\d-\d\dT[\d:.]+Z, closed\)\n/, "the run folder first, with its start time and status.json's state");
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

t.test('ls on a large run reads the ends of its files only: a damaged first member does not stop it; rows are estimated', async (t) => {
  const cwd = tmpdir(t);
  const dir = path.join(cwd, 'runs', 'big');
  const log = createLogger({ dir, console: false, exitHooks: false });
  for (let i = 0; i < 100_000; i++) log.row('train', { loss: 1 / (i + 1), lr: 1e-3, acc: i / 1e5, grad: Math.sqrt(i) }, { step: i, time: Date.UTC(2026, 0, 1) + i });
  await log.close();
  const gz = path.join(dir, 'train.jsonl.gz');
  t.ok(fs.statSync(gz).size > 1 << 20, 'over 1 MiB: read at its ends');
  // Damage the first member (its magic byte): reading the whole file would have to resync; ls never gets there.
  const bytes = fs.readFileSync(gz);
  const second = 18 + bytes.readUInt16LE(16) - 17; // first member's size: BSIZE + 1
  const firstIntact = (JSON.parse(zlib.gunzipSync(bytes.subarray(second, second + bytes.readUInt16LE(second + 16) + 1)).toString('utf8').split('\n')[0]!) as { $step: number }).$step;
  bytes[0] = 0;
  fs.writeFileSync(gz, bytes);
  const csvOnly = path.join(cwd, 'runs', 'sheet');
  fs.mkdirSync(csvOnly);
  fs.copyFileSync(path.join(dir, 'train.csv'), path.join(csvOnly, 'train.csv'));

  const r = rowlog(['ls'], cwd);
  t.equal(r.status, 0, r.stderr);
  const train = /\n {2}train +~(\d+)k +7 +(\d+) +99999 +2026-01-01T00:01:39\.999Z +train\.jsonl\.gz [\d.]+ MiB, train\.csv [\d.]+ MiB {2}\[1 damaged member skipped\]\n/.exec(r.stdout);
  t.ok(train, "the big table's line: estimate, steps, time, files and the damage", { stdout: r.stdout });
  t.ok(Math.abs(Number(train?.[1]) - 100) <= 10, `~${train?.[1]}k rows: within 10 % of 100k`);
  t.equal(Number(train?.[2]), firstIntact, 'the first step of the first intact member');
  const sheet = /\nruns\/sheet\/\n {2}TABLE.*\n {2}train +~(\d+)k +7 +0 +99999 +2026-01-01T00:01:39\.999Z +train\.csv [\d.]+ MiB\n/.exec(r.stdout);
  t.ok(sheet, 'a large CSV: its header and last rows');
  t.ok(Math.abs(Number(sheet?.[1]) - 100) <= 10, `~${sheet?.[1]}k rows`);
  t.match(r.stdout, /\n~ rows: estimated from the size of a file over 1\.0 MiB, read at its ends only \(rowlog query -s length FILE counts them\)\n$/, 'what ~ means, once at the end');
});

t.test('ls estimates a large table of few wide rows as ~N, and of many rows as ~N.NM', async (t) => {
  const cwd = tmpdir(t);
  const wide = path.join(cwd, 'runs', 'wide');
  fs.mkdirSync(wide, { recursive: true });
  const row = (i: number) => `${JSON.stringify({ $step: i, $time: 1_767_225_600_000 + i, blob: 'x'.repeat(3000) })}\n`;
  fs.writeFileSync(path.join(wide, 'train.jsonl'), Array.from({ length: 500 }, (_, i) => row(i)).join(''));
  const many = path.join(cwd, 'runs', 'many');
  fs.mkdirSync(many);
  const short = (i: number) => `{"$step":${i},"$time":${1_767_225_600_000 + i},"a":1}\n`;
  fs.writeFileSync(path.join(many, 'train.jsonl'), Array.from({ length: 1_100_000 }, (_, i) => short(i)).join(''));
  const r = rowlog(['ls'], cwd);
  t.equal(r.status, 0, r.stderr);
  const est = (run: string) => new RegExp(`(?:^|\\n)runs/${run}/\\n {2}TABLE.*\\n {2}train +(~[\\d.]+[kM]?) `).exec(r.stdout)?.[1];
  const w = est('wide');
  t.match(w, /^~\d+$/, `few rows: ${w}`);
  t.ok(Math.abs(Number(w?.slice(1)) - 500) <= 50, `${w} within 10 % of 500`);
  t.match(est('many'), /^~1\.[01]M$/, `many rows: ${est('many')}`);
});
