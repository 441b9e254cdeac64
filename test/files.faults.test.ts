/**
 * Faults of the file sinks, one file at a time (issue 9, points 2, 6 and 9): a run with more
 * tables than file descriptors, a full disk under one table, a damaged `.gz` reopened, and a
 * kill right after the first row. What a user checks afterwards: gzip -t, bgzip -t, Python's
 * csv and gzip, every row once.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { FileSink } from '../sinks/file-sink.js';
import { jsonlSink } from '../sinks/jsonl.js';
import { fullTmpfs, readJsonl, ROOT, run, tmpdir, tmpfs } from './helpers.js';
import { eventually, patient } from './wait.js';
import { needs } from './peers.js';

const fixtures = path.join(ROOT, 'test', 'fixtures');

function entry(table: string, step: number, data: FlatRow = { step }): Entry<FlatRow> {
  return { table, level: 20, step, time: 1_700_000_000_000 + step, data };
}

/** Every row of every `.jsonl.gz` and `.csv` in `dir`, read by Python: {file: [rows as dicts]}. */
function pythonRead(dir: string): Record<string, Array<Record<string, string | number>>> {
  const script = `
import csv, gzip, json, os, sys
out = {}
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    p = os.path.join(d, name)
    if name.endswith('.jsonl.gz'):
        with gzip.open(p, 'rt') as f:
            out[name] = [json.loads(l) for l in f if l.strip()]
    elif name.endswith('.csv'):
        with open(p, newline='') as f:
            out[name] = list(csv.DictReader(f))
print(json.dumps(out))
`;
  const r = run('python3', ['-c', script, dir]);
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, Array<Record<string, string | number>>>;
}

t.test('2,000 tables under `ulimit -n 256`: every row of every table in both file sinks', async (t) => {
  if (!needs(t, 'prlimit')) return;
  const dir = tmpdir(t);
  const r = run('prlimit', ['--nofile=256:256', process.execPath, path.join(fixtures, 'many-tables.mjs'), dir, '2000'], { cwd: ROOT });
  t.equal(r.status, 0, `the child ran to its end (${r.stderr.slice(0, 500)})`);
  const bgzip = needs(t, 'bgzip', 'bgzip -t on three of the files') ? ' && bgzip -t "$1"/t0.jsonl.gz "$1"/t1999.jsonl.gz "$1"/important.jsonl.gz' : '';
  const gz = run('sh', ['-c', `gzip -t "$1"/*.jsonl.gz${bgzip}`, 'sh', dir]);
  t.equal(gz.status, 0, `gzip -t passes on every .jsonl.gz (${gz.stderr.slice(0, 300)})`);
  const files = pythonRead(dir);
  t.same(files['important.jsonl.gz']?.map((row) => row.i), Array.from({ length: 101 }, (_, i) => i), 'the first table keeps its 101 rows (.jsonl.gz)');
  t.same(files['important.csv']?.map((row) => Number(row.i)), Array.from({ length: 101 }, (_, i) => i), 'the first table keeps its 101 rows (.csv)');
  const missing: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const want = [0, 1, 2];
    if (JSON.stringify(files[`t${i}.jsonl.gz`]?.map((row) => row.k)) !== JSON.stringify(want)) missing.push(`t${i}.jsonl.gz`);
    if (JSON.stringify(files[`t${i}.csv`]?.map((row) => Number(row.k))) !== JSON.stringify(want)) missing.push(`t${i}.csv`);
  }
  t.same(missing, [], 'every table has its 3 rows, once, in order, in both sinks');
  t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file is left');
});

t.test('a full disk under one table: one warning, the other files keep every row, the retried rows land once space returns', async (t) => {
  const fs64 = fullTmpfs(t);
  if (fs64 === undefined) return;
  const { base, mnt, filler } = fs64;
  const sink: FileSink = jsonlSink({ dir: base, ext: '.jsonl.gz', flushIntervalMs: 20 });
  const warnings: Array<{ code: string; message: string }> = [];
  sink.on('warning', (w: { code: string; message: string }) => warnings.push(w));
  const ok = path.join(base, 'ok.jsonl.gz');
  const stuck = path.join(mnt, 'x.jsonl.gz');
  for (let i = 0; i < 100; i++) {
    sink.write(entry('ok', i));
    sink.write(entry('mnt/x', i));
    if (i % 10 === 0) await sleep(1);
  }
  t.ok(await eventually(() => warnings.length > 0), 'a warning came');
  t.ok(await eventually(() => fs.existsSync(ok) && readJsonl(ok).length === 100), 'the other file got every row meanwhile');
  t.match(warnings, [{ code: 'W_FILE_ERROR', message: /mnt\/x\.jsonl\.gz cannot be written \(ENOSPC\)/ }], 'one warning, naming the file and the errno');
  t.notOk(sink.destroyed, 'the sink still runs');
  fs.rmSync(filler); // space returns
  t.ok(await eventually(() => fs.existsSync(stuck) && readJsonl(stuck).length === 100), 'the retry wrote the kept rows');
  for (let i = 100; i < 110; i++) {
    sink.write(entry('ok', i));
    sink.write(entry('mnt/x', i));
  }
  sink.end();
  await finished(sink);
  const steps = Array.from({ length: 110 }, (_, i) => i);
  t.same(readJsonl(ok).map((r) => r.$step), steps, 'ok: every row once, in order');
  t.same(readJsonl(stuck).map((r) => r.$step), steps, 'mnt/x: every row once, in order');
  t.equal(run('gzip', ['-t', ok, stuck]).status, 0, 'gzip -t passes');
  if (needs(t, 'bgzip', 'bgzip -t')) t.equal(run('bgzip', ['-t', stuck]).status, 0, 'bgzip -t passes');
  t.equal(warnings.length, 1, 'no more warnings');
});

t.test('a failing file past maxQueuedBytes drops its oldest batches with one W_ROWS_DROPPED; close writes what it holds', async (t) => {
  const fs64 = fullTmpfs(t);
  if (fs64 === undefined) return;
  const { base, mnt, filler } = fs64;
  const sink: FileSink = jsonlSink({ dir: base, flushBytes: 1000, maxQueuedBytes: 20_000, flushIntervalMs: 10 });
  const warnings: Array<{ code: string; message: string }> = [];
  sink.on('warning', (w: { code: string; message: string }) => warnings.push(w));
  const pad = 'x'.repeat(50);
  let i = 0;
  for (; i < 100; i++) sink.write(entry('mnt/x', i, { step: i, pad }));
  t.ok(await eventually(() => warnings.length > 0), 'the file failed');
  for (; i < 2000; i++) {
    sink.write(entry('mnt/x', i, { step: i, pad }));
    if (i % 100 === 0) await sleep(1);
  }
  t.ok(sink.queuedBytes <= 20_000 + 1000, `memory stays bounded (${sink.queuedBytes} bytes queued)`);
  const dropped = warnings.filter((w) => w.code === 'W_ROWS_DROPPED');
  t.equal(dropped.length, 1, 'one loud warning');
  const n = Number(/(\d+) rows dropped/.exec(dropped[0]?.message ?? '')?.[1]);
  t.ok(n > 0, `it counts the rows (${n})`);
  fs.rmSync(filler);
  sink.end();
  await finished(sink);
  const steps = readJsonl(path.join(mnt, 'x.jsonl')).map((r) => r.$step as number);
  t.equal(steps.at(-1), 1999, 'the newest rows are kept');
  t.same(steps, [...steps].sort((a, b) => a - b), 'in order');
  t.equal(new Set(steps).size, steps.length, 'each once');
  const total = Number(/(\d+) rows in all/.exec(warnings.at(-1)?.message ?? '')?.[1] ?? n);
  t.equal(steps.length + total, 2000, 'every row is either in the file or counted as dropped');
});

t.test('reopening a .gz damaged in a middle member header deletes no byte: set aside, W_DAMAGED, new rows land', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 't.jsonl.gz');
  const first = jsonlSink({ path: file, flushBytes: 2000 });
  for (let i = 0; i < 500; i++) first.write(entry('t', i, { i, v: i * 0.5 }));
  first.end();
  await finished(first);
  const bytes = fs.readFileSync(file);
  const offsets: number[] = [];
  for (let p = 0; p < bytes.length; p += bytes.readUInt16LE(p + 16) + 1) offsets.push(p);
  t.ok(offsets.length > 6, `several members (${offsets.length})`);
  const at = offsets[Math.floor(offsets.length / 2)] as number;
  const damaged = Buffer.from(bytes);
  damaged[at + 16] = (damaged[at + 16] as number) ^ 0x5a; // BSIZE
  damaged[at + 1] = 0x00; // and the magic
  fs.writeFileSync(file, damaged);

  const second = jsonlSink({ path: file });
  const warnings: Array<{ code: string; message: string }> = [];
  second.on('warning', (w: { code: string; message: string }) => warnings.push(w));
  for (let i = 500; i < 510; i++) second.write(entry('t', i, { i, v: i * 0.5 }));
  second.end();
  await finished(second);
  t.match(warnings, [{ code: 'W_DAMAGED', message: new RegExp(`t\\.jsonl\\.gz: damaged gzip data at byte ${at} `) }]);
  const aside = fs.readdirSync(dir).filter((f) => f.startsWith('t.jsonl.gz.damaged-'));
  t.equal(aside.length, 1, 'the damaged file was set aside');
  t.ok(fs.readFileSync(path.join(dir, aside[0] as string)).equals(damaged), 'byte for byte as it was');
  t.match(warnings[0]?.message, aside[0] as string, 'the warning names where it went');
  t.equal(run('gzip', ['-t', file]).status, 0, 'gzip -t passes on the live file');
  if (needs(t, 'bgzip', 'bgzip -t')) t.equal(run('bgzip', ['-t', file]).status, 0, 'bgzip -t passes on the live file');
  t.same(readJsonl(file).map((r) => r.i), Array.from({ length: 10 }, (_, k) => 500 + k), 'the new rows are there');
});

t.test('a torn tail is still cut (and only the tail): no warning, the whole members stay', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 't.jsonl.gz');
  const first = jsonlSink({ path: file, flushBytes: 2000 });
  for (let i = 0; i < 300; i++) first.write(entry('t', i, { i }));
  first.end();
  await finished(first);
  const whole = fs.readFileSync(file);
  const member = whole.subarray(0, whole.readUInt16LE(16) + 1);
  fs.writeFileSync(file, Buffer.concat([whole.subarray(0, whole.length - 28), member.subarray(0, 100)])); // EOF gone, half a member
  const second = jsonlSink({ path: file });
  const warnings: string[] = [];
  second.on('warning', (w: { code: string }) => warnings.push(w.code));
  second.write(entry('t', 300, { i: 300 }));
  second.end();
  await finished(second);
  t.same(warnings, []);
  t.same(readJsonl(file).map((r) => r.i), Array.from({ length: 301 }, (_, k) => k));
  if (needs(t, 'bgzip', 'bgzip -t')) t.equal(run('bgzip', ['-t', file]).status, 0);
});

t.test('kill -9 right after the first row, 20 times: the .jsonl.gz is absent or passes gzip -t', async (t) => {
  const bad: string[] = [];
  let present = 0;
  for (let trial = 0; trial < 20; trial++) {
    const dir = path.join(tmpdir(t), 'run');
    const child = spawn(process.execPath, [path.join(fixtures, 'early-kill.mjs'), dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    await once(child.stdout, 'data'); // "row 1"
    await sleep(Math.random() * 400); // a random moment, mostly within the first flush interval (250 ms)
    child.kill('SIGKILL');
    await exited;
    const gz = path.join(dir, 't.jsonl.gz');
    if (!fs.existsSync(gz)) continue;
    present++;
    const r = run('gzip', ['-t', gz]);
    if (r.status !== 0) bad.push(`trial ${trial}: ${fs.statSync(gz).size} bytes: ${r.stderr.trim()}`);
    const csv = path.join(dir, 't.csv');
    if (fs.existsSync(csv) && !fs.readFileSync(csv, 'utf8').startsWith('$step,')) bad.push(`trial ${trial}: the CSV lacks its header`);
  }
  t.same(bad, [], `every .gz present (${present} of 20) is a valid gzip`);
});
