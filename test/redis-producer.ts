/**
 * Producer processes for the Redis collector's tests (issue 14): each child writes one run into a
 * Redis as a trainer's redisSink does (lib/format/redis-stream.ts: the run in `P:runs`, its meta
 * hash, one XADD of a block of whole JSONL rows per batch), rows `{"$step":i,"$time":…,"$level":20,
 * "loss":…,"acc":…,"lr":…}` for steps 0..rows-1, and prints `done <rows>`. A child reconnects
 * when Redis is away (lib/io/redis-client.ts) and sends each block once it is acked by XADD.
 * `checkRun` reads a collected run folder back with real readers and says which steps are
 * missing or doubled in each file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startChild } from './child.js';
import type { Child } from './child.js';
import { ROOT, run } from './helpers.js';

/** The child runs a `.mts` file importing lib/ as tap's own process does (its TypeScript loader). */
const TS_ENV = { NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...process.execArgv].join(' ').trim() };

const lib = (p: string) => JSON.stringify(path.join(ROOT, 'lib', p));

const PRODUCER = `
import { openRedis, redisTarget } from ${lib('io/redis-client.js')};
import { blockFields, metaKey, runsKey, streamKey, TABLE_FIELD } from ${lib('format/redis-stream.js')};
const [url, name, rowsArg, blockArg, paceArg] = process.argv.slice(2);
const rows = Number(rowsArg), block = Number(blockArg), pace = Number(paceArg); // pace: rows per second, 0 = as fast as possible
const r = openRedis(redisTarget(url, 'url'));
r.on('error', () => undefined);
const stream = streamKey('rowlog', name, 'main');
await r.hset(metaKey('rowlog', name), 'id', 'id-' + name, 'run', JSON.stringify({ name, host: 'trainer' }), 'params', JSON.stringify({ lr: 0.1, name }), 'status', JSON.stringify({ epoch: 0 }), TABLE_FIELD + 'main', stream);
await r.sadd(runsKey('rowlog'), name);
const t0 = Date.now();
for (let first = 0; first < rows; first += block) {
  const last = Math.min(rows, first + block) - 1;
  let text = '';
  for (let s = first; s <= last; s++) text += '{"$step":' + s + ',"$time":' + (t0 + s) + ',"$level":20,"acc":' + (s % 97) / 97 + ',"loss":' + 1 / (s + 1) + ',"lr":0.1}\\n';
  await r.xadd(stream, '*', ...blockFields({ rows: text, n: last - first + 1, first, last }));
  if (pace > 0) {
    const due = t0 + ((last + 1) / pace) * 1000;
    if (due > Date.now()) await new Promise((res) => setTimeout(res, due - Date.now()));
  }
}
await r.hset(metaKey('rowlog', name), 'status', JSON.stringify({ epoch: 1, done: true }));
console.log('done ' + rows);
r.disconnect();
`;

/** Writes the producer script into `dir` and returns a starter: `(url, run, rows, {block, pace})` → the child. */
export function producers(dir: string): (url: string, name: string, rows: number, o?: { block?: number; pace?: number }) => Child {
  const script = path.join(dir, 'producer.mts');
  fs.writeFileSync(script, PRODUCER);
  return (url, name, rows, o = {}) => startChild(script, [url, name, String(rows), String(o.block ?? 1000), String(o.pace ?? 0)], TS_ENV);
}

/** What a run folder's `main` table holds, per file: rows, and the steps of 0..rows-1 missing or seen twice. */
export interface RunCheck {
  jsonl: { rows: number; missing: number; doubled: number; ordered: boolean };
  csv: { rows: number; missing: number; doubled: number; ordered: boolean };
}

function tally(steps: number[], rows: number): RunCheck['jsonl'] {
  const seen = new Uint8Array(rows);
  let doubled = 0;
  let ordered = true;
  steps.forEach((s, i) => {
    if (i > 0 && s <= (steps[i - 1] as number)) ordered = false;
    if (s < 0 || s >= rows || !Number.isInteger(s)) doubled++;
    else if ((seen[s] = (seen[s] ?? 0) + 1) > 1) doubled++;
  });
  return { rows: steps.length, missing: seen.filter((v) => v === 0).length, doubled, ordered };
}

/**
 * Reads `<runDir>/main.jsonl.gz` with `zcat` (after `gzip -t`) and `<runDir>/main.csv` as text
 * (python3's csv module when `python` is given), against steps 0..rows-1.
 */
export function checkRun(runDir: string, rows: number, python?: string): RunCheck {
  const gz = path.join(runDir, 'main.jsonl.gz');
  const test = run('gzip', ['-t', gz]);
  if (test.status !== 0) throw new Error(`gzip -t ${gz}: ${test.stderr}`);
  const z = run('zcat', [gz]);
  if (z.status !== 0) throw new Error(`zcat ${gz}: ${z.stderr}`);
  const jsonSteps = z.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { $step: number }).$step);
  const csv = path.join(runDir, 'main.csv');
  let csvSteps: number[];
  if (python !== undefined) {
    const py = run(python, ['-c', 'import csv,sys\nr=csv.DictReader(open(sys.argv[1],newline=""))\nfor row in r: print(row["$step"])', csv]);
    if (py.status !== 0) throw new Error(`python3 csv ${csv}: ${py.stderr}`);
    csvSteps = py.stdout.split('\n').filter((l) => l !== '').map(Number);
  } else {
    csvSteps = fs.readFileSync(csv, 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => Number(l.split(',')[0]));
  }
  return { jsonl: tally(jsonSteps, rows), csv: tally(csvSteps, rows) };
}

/** A {@link RunCheck} of a run that holds every row exactly once, in order, in both files. */
export function perfect(rows: number): RunCheck {
  const one = { rows, missing: 0, doubled: 0, ordered: true };
  return { jsonl: one, csv: { ...one } };
}
