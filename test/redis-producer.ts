/**
 * Producer processes for the Redis collector's tests (issue 14): each child is a trainer that logs
 * one run with `createLogger({dir, redis})` (sinks/redis.ts: the run in `P:runs`, its meta hash,
 * one XADD per table per batch), rows `{acc, loss, lr}` of table `main` at steps 0..rows-1, and
 * prints `done <rows>` once closed.
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
import { createLogger } from ${lib('log/logger.js')};
const [url, dir, rowsArg, paceArg] = process.argv.slice(2);
const rows = Number(rowsArg), pace = Number(paceArg); // pace: rows per second, 0 = as fast as the loop goes
const log = createLogger({ dir, redis: url, console: false, tensorboard: false });
log.params({ lr: 0.1 });
const t0 = Date.now();
for (let s = 0; s < rows; s++) {
  log.row('main', { acc: (s % 97) / 97, loss: 1 / (s + 1), lr: 0.1 }, { step: s, level: 'DEBUG' });
  if (s % 500 === 499) {
    const due = pace > 0 ? t0 + ((s + 1) / pace) * 1000 : 0;
    await new Promise((res) => (due > Date.now() ? setTimeout(res, due - Date.now()) : setImmediate(res)));
  }
}
log.status.done = true;
await log.close();
console.log('done ' + rows);
`;

/**
 * Writes the producer script into `dir` and returns a starter: `(url, run, rows, {pace})` → the
 * child, a trainer logging into `<dir>/<run>` with `createLogger({dir, redis: url})`, so the run
 * is named `run` in Redis too.
 */
export function producers(dir: string): (url: string, name: string, rows: number, o?: { pace?: number }) => Child {
  const script = path.join(dir, 'producer.mts');
  fs.writeFileSync(script, PRODUCER);
  return (url, name, rows, o = {}) => startChild(script, [url, path.join(dir, name), String(rows), String(o.pace ?? 0)], TS_ENV);
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
