/**
 * Blocked-gzip JSONL (`.jsonl.gz`): read by zcat, jq, Python and bgzip; a torn end is repaired
 * on reopen; a reader racing the writer sees whole rows; the exit hook compresses what is left.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { BGZF_EOF } from '../lib/format/bgzf.js';
import { scanMembers } from '../lib/io/bgzf-file.js';
import { createLogger, jsonlSink } from '../lib/index.js';
import type { Entry, FlatRow } from '../lib/index.js';
import { ROOT, run, tmpdir } from './helpers.js';
import { needs } from './peers.js';

const entry = (i: number, data: FlatRow = { i, v: i / 7, s: `row ${i}` }): Entry<FlatRow> => ({ table: 't', level: 20, step: i, time: 1000 + i, data });

async function writeGz(file: string, rows: Entry<FlatRow>[], opts = {}): Promise<void> {
  const sink = jsonlSink({ path: file, ...opts });
  for (const e of rows) sink.write(e);
  await new Promise<void>((resolve, reject) => sink.on('error', reject).end(resolve));
}

function zcat(file: string): string {
  const r = run('zcat', [file]);
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

t.test('zcat, jq, bgzip -d and Python gzip+json read a .jsonl.gz; NaN/Infinity come back as floats', async (t) => {
  if (!needs(t, ['zcat', 'python3'])) return;
  const bgzip = needs(t, 'bgzip', 'bgzip -t and bgzip -d');
  const jq = needs(t, 'jq', 'zcat | jq');
  const file = path.join(tmpdir(t), 'train.jsonl.gz');
  const rows = range(20_000).map((i) => entry(i));
  rows.push(entry(20_000, { i: 20_000, nan: NaN, pinf: Infinity, ninf: -Infinity }));
  await writeGz(file, rows);
  t.equal(run('gzip', ['-t', file]).status, 0, 'gzip -t');
  if (bgzip) {
    const bt = run('bgzip', ['-t', file]);
    t.equal(bt.status, 0, 'bgzip -t');
    t.equal(bt.stderr, '', 'bgzip sees the EOF member of a clean close');
  }
  const text = zcat(file);
  t.equal(text.split('\n').length - 1, 20_001);
  if (bgzip) t.equal(run('bgzip', ['-dc', file]).stdout, text, 'bgzip -d gives the same text');
  t.match(text.split('\n')[0], /^\{"\$step":0,"\$time":1000,"\$level":20,"i":0,"s":"row 0","v":0\}$/);
  if (jq) t.equal(run('sh', ['-c', `zcat '${file}' | jq -c 'select(.i % 5000 == 0) | .i'`]).stdout, '0\n5000\n10000\n15000\n20000\n');
  const py = run('python3', ['-c', `
import gzip, json, math, sys
rows = [json.loads(l) for l in gzip.open(sys.argv[1], 'rt')]
last = rows[-1]
print(len(rows), rows[1]['s'], math.isnan(last['nan']), last['pinf'] == math.inf, last['ninf'] == -math.inf)
`, file]);
  t.equal(py.stdout.trim(), '20001 row 1 True True True', py.stderr);
});

t.test('each member holds whole lines and at most 64 KiB; the file ends with one EOF member', async (t) => {
  const file = path.join(tmpdir(t), 'm.jsonl.gz');
  await writeGz(file, range(30_000).map((i) => entry(i)), { flushBytes: 65280 });
  const fd = fs.openSync(file, 'r');
  const scan = scanMembers(fd, fs.fstatSync(fd).size);
  fs.closeSync(fd);
  t.ok(scan.bgzf && !scan.torn);
  t.ok(scan.members.length > 10, `${scan.members.length} members`);
  t.ok(scan.members.every((m) => m.size <= 65536));
  const bytes = fs.readFileSync(file);
  t.ok(bytes.subarray(-28).equals(BGZF_EOF), 'EOF member last');
  t.equal(bytes.indexOf(BGZF_EOF), bytes.length - 28, 'and only there');
  // Every member decodes alone to whole lines.
  const zlib = await import('node:zlib');
  for (const m of scan.members.slice(0, -1)) {
    const text = zlib.gunzipSync(bytes.subarray(m.offset, m.offset + m.size)).toString();
    if (!text.endsWith('\n') || text.length > 65280) t.fail(`member at ${m.offset} is not whole lines ≤ 65280 bytes`);
  }
});

t.test('reopening a file torn by a crash truncates it to the last whole member, then appends', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'torn.jsonl.gz');
  await writeGz(file, range(10_000).map((i) => entry(i)));
  const fd = fs.openSync(file, 'r');
  const scan = scanMembers(fd, fs.fstatSync(fd).size);
  fs.closeSync(fd);
  const last = scan.members.at(-2)!; // the last data member (the EOF member follows)
  fs.truncateSync(file, last.offset + Math.floor(last.size / 2)); // a crash mid-member
  t.not(run('gzip', ['-t', file]).status, 0, 'the torn file is not valid gzip');
  const survivors = run('sh', ['-c', `zcat '${file}' 2>/dev/null | head -c ${last.offset * 100}`]).stdout;

  await writeGz(file, [entry(99_999, { appended: true })]);
  t.equal(run('gzip', ['-t', file]).status, 0, 'valid gzip after reopening');
  if (needs(t, 'bgzip', 'bgzip -t')) t.equal(run('bgzip', ['-t', file]).status, 0, 'valid BGZF after reopening');
  const lines = zcat(file).split('\n').filter(Boolean);
  const rows = lines.map((l) => JSON.parse(l) as { i?: number; appended?: boolean });
  const kept = rows.slice(0, -1).map((r) => r.i);
  t.same(kept, range(kept.length), 'a prefix of the rows survives');
  t.ok(kept.length > 9000 && kept.length < 10_000, `all whole members kept (${kept.length} rows)`);
  t.ok(survivors.startsWith(lines.slice(0, -1).join('\n')), 'exactly what the whole members held');
  t.same(rows.at(-1), { $step: 99_999, $time: 100_999, $level: 20, appended: true });
});

t.test('a second process reading while rows are written always gets whole rows', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'live.jsonl.gz');
  const writer = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'crash-writer.mjs'), file, 'steady'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
  const reader = run(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'whole-reader.mjs'), file, '40']);
  writer.kill('SIGKILL');
  const reads = reader.stdout.trim().split('\n');
  t.equal(reads.length, 40, reader.stderr);
  t.same(reads.filter((r) => !r.startsWith('ok ')), [], 'no read saw a partial or out-of-order row');
  const counts = reads.map((r) => Number(r.slice(3)));
  t.ok(counts.every((c, i) => i === 0 || c >= (counts[i - 1] ?? 0)), 'the file only grows');
  t.ok((counts.at(-1) ?? 0) > (counts[0] ?? 0), `rows were being written during the reads (${counts[0]} → ${counts.at(-1)})`);
});

t.test('process.exit() with rows still batched: the exit hook compresses and writes them', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'exit.jsonl.gz');
  const script = `
    import { createLogger, jsonlSink } from 'rowlog';
    const log = createLogger({ sinks: [jsonlSink({ path: ${JSON.stringify(file)}, flushIntervalMs: 60000 })] });
    for (let i = 0; i < 50000; i++) log.row('t', { i });
    process.exit(0);`;
  const r = run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  t.equal(r.status, 0, r.stderr);
  t.equal(run('gzip', ['-t', file]).status, 0);
  t.same(zcat(file).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i), range(50_000));
});

t.test('bounded memory with gzip: a loop that never yields compresses synchronously past the bound', async (t) => {
  const file = path.join(tmpdir(t), 'bound.jsonl.gz');
  const sink = jsonlSink({ path: file, flushIntervalMs: 60_000, maxQueuedBytes: 256 * 1024 });
  let maxQueued = 0;
  for (let i = 0; i < 50_000; i++) {
    sink.write(entry(i));
    maxQueued = Math.max(maxQueued, sink.queuedBytes);
  }
  t.ok(fs.statSync(file).size > 100_000, 'members reached the file before any await');
  t.ok(maxQueued <= 256 * 1024 + 2 * 65280, `queued bytes stayed bounded (max ${maxQueued})`);
  await new Promise<void>((resolve) => sink.end(resolve));
  t.equal(zcat(file).split('\n').length - 1, 50_000);
});

t.test('durability: flush and gzipLevel 6 give the same rows; level 6 is smaller', async (t) => {
  const dir = tmpdir(t);
  const rows = range(20_000).map((i) => entry(i));
  await writeGz(path.join(dir, 'l1.jsonl.gz'), rows);
  await writeGz(path.join(dir, 'l6.jsonl.gz'), rows, { gzipLevel: 6, durability: 'flush' });
  t.equal(zcat(path.join(dir, 'l6.jsonl.gz')), zcat(path.join(dir, 'l1.jsonl.gz')));
  t.ok(fs.statSync(path.join(dir, 'l6.jsonl.gz')).size < fs.statSync(path.join(dir, 'l1.jsonl.gz')).size);
});

t.test('a logger with dir and .gz files: one file per table, sub-folders for a/b', async (t) => {
  const dir = tmpdir(t);
  const log = createLogger({ dir, sinks: [jsonlSink({ dir, ext: '.jsonl.gz' })], exitHooks: false });
  log.row('train', { loss: 1 });
  log.row('eval/val', { acc: 0.5 });
  await log.close();
  t.match(zcat(path.join(dir, 'train.jsonl.gz')), /"loss":1\}\n$/);
  t.match(zcat(path.join(dir, 'eval', 'val.jsonl.gz')), /"acc":0.5\}\n$/);
});
