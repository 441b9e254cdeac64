/**
 * Crash tolerance of parquetSink (docs/DESIGN.md §4): a writer SIGKILLed once K parts are on
 * disk leaves only whole parts (DuckDB reads every `*.parquet` of the folder), holding exactly
 * the first rows logged, in order (steps 0..n-1, no gap, no duplicate); reopening the run
 * continues the part numbers and removes a killed writer's temp file. A child that calls
 * `process.exit()` with rows in its open part finds them in a part afterwards (the exit hook's
 * flushSync waits for the worker).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import t from 'tap';
import { startChild } from './child.js';
import { ROOT, run, tmpdir } from './helpers.js';
import { until } from './wait.js';

const fixture = path.join(ROOT, 'test', 'fixtures', 'parquet-writer.mjs');
const KILLS = 4;
const PART = /^part-\d{5}\.parquet$/;

/** The whole part files of the dataset of table `t`. */
function partFiles(dir: string): string[] {
  const folder = path.join(dir, 't.parquet');
  return fs.existsSync(folder) ? fs.readdirSync(folder).filter((f) => PART.test(f)).sort() : [];
}

async function duck(sql: string): Promise<Array<Record<string, unknown>>> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjects() as Array<Record<string, unknown>>;
  } finally {
    c.closeSync();
  }
}

/** Steps and `i` of every row of the dataset, in step order, as DuckDB reads them. */
async function readSteps(dir: string): Promise<Array<[number, number, string]>> {
  const rows = await duck(`SELECT "$step", i, s FROM read_parquet('${path.join(dir, 't.parquet')}/*.parquet', union_by_name = true) ORDER BY "$step"`);
  return rows.map((r) => [Number(r.$step), r.i as number, r.s as string]);
}

t.test(`SIGKILL once K parts exist (${KILLS} runs): whole parts, exactly the first rows in order`, async (t) => {
  const root = tmpdir(t);
  for (let k = 0; k < KILLS; k++) {
    const dir = path.join(root, `run${k}`);
    const K = 2 + k;
    const child = startChild(fixture, [dir]);
    await until(() => partFiles(dir).length >= K, `${K} parts on disk`, 10_000, 5);
    child.proc.kill('SIGKILL');
    const { signal } = await child.exited;
    t.equal(signal, 'SIGKILL', `run ${k}: killed (${child.stderr()})`);
    const files = partFiles(dir);
    t.same(files, files.map((_, i) => `part-${String(i).padStart(5, '0')}.parquet`), `run ${k}: parts 0..${files.length - 1}, no gap`);
    const rows = await readSteps(dir);
    const n = rows.length;
    t.ok(n >= K * 500, `run ${k}: DuckDB reads all ${files.length} parts (${n} rows)`);
    t.ok(
      rows.every(([step, i, s], j) => step === j && i === j && s === `row ${j}`),
      `run ${k}: steps 0..${n - 1} in order, no gap, no duplicate, every value as logged`,
    );
    if (k === 0) {
      const folder = path.join(dir, 't.parquet');
      fs.writeFileSync(path.join(folder, `part-${String(files.length).padStart(5, '0')}.parquet.4242.tmp`), 'a part cut by the kill');
      const r = run(process.execPath, [fixture, dir, 'append-one']);
      t.equal(r.status, 0, `the run reopened and closed (${r.stderr.trim()})`);
      const after = partFiles(dir);
      t.equal(after.length, files.length + 1, 'reopening writes the next part number');
      t.notOk(fs.readdirSync(folder).some((f) => f.endsWith('.tmp')), 'and removes the temp file of the killed writer');
      const last = await duck(`SELECT "$step", appended FROM read_parquet('${path.join(folder, after.at(-1) as string)}')`);
      t.same(last.map((r) => [Number(r.$step), r.appended]), [[1_000_000, 1]], 'the new part holds the new row');
      const all = await readSteps(dir);
      t.same(all.at(-1), [1_000_000, null, null], 'the whole dataset reads with union_by_name (the old keys null in the new row)');
      t.equal(all.length, n + 1, 'the old rows and the new one');
    }
  }
});

t.test('process.exit() with rows in the open part: the exit hook writes them', async (t) => {
  const dir = tmpdir(t);
  const r = run(process.execPath, [fixture, dir, 'exit']);
  t.equal(r.status, 0, `the child exited 0 ${r.stderr}`);
  t.equal(partFiles(dir).length, 1, 'one part');
  const rows = await readSteps(dir);
  t.equal(rows.length, 1234, 'every row logged before process.exit()');
  t.ok(rows.every(([step, i], j) => step === j && i === j), 'in order');
});
