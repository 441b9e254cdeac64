/**
 * CSV files read back by real peers: Python's csv module (cells, quoting, multi-line fields,
 * rewrites) and pandas (NaN, ±Infinity restored as floats, late columns filled with NaN).
 * A missing peer is a peer skip (test/peers.ts), a failure in CI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { finished } from 'node:stream/promises';
import fc from 'fast-check';
import t from 'tap';
import type { Entry, FlatRow, Scalar } from '../lib/core/entry.js';
import type { FileSink } from '../sinks/file-sink.js';
import { csvSink } from '../sinks/csv.js';
import type { CsvNewKeys, CsvSinkOptions } from '../sinks/csv.js';
import { run, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const T0 = 1_700_000_000_000;
const META = ['$step', '$time', '$level'];

function entry(data: FlatRow, over: Partial<Entry<FlatRow>> = {}): Entry<FlatRow> {
  return { table: 't', level: 20, step: 0, time: T0, data, ...over };
}

/** Writes `es` through a quiet sink (warnings collected), ends it and waits for 'finish'. */
async function writeAll(opts: CsvSinkOptions, es: Array<Entry<FlatRow>>): Promise<number> {
  const sink: FileSink = csvSink(opts);
  let warnings = 0;
  sink.on('warning', () => warnings++);
  for (const e of es) sink.write(e);
  sink.end();
  await finished(sink);
  return warnings;
}

/** Python's csv module's view of a file: its records, as lists of strings. */
const CSV_READER = [
  'import csv, json, sys',
  'with open(sys.argv[1], newline="", encoding="utf-8") as f:',
  '    print(json.dumps(list(csv.reader(f))))',
].join('\n');

function pyRecords(py: string, file: string): string[][] {
  const r = run(py, ['-c', CSV_READER, file]);
  if (r.status !== 0) throw new Error(`python csv failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[][];
}

/** The text a reader should see in a cell for `v` (null or missing: empty). */
function cellText(v: Scalar | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : String(v);
  return String(v);
}

const py = peer('python3');
const pyPandas = peer('pandas');

t.test('Python csv module reads back the same cells', async (t) => {
  if (!needs(t, 'python3') || py === undefined) return;
  const file = path.join(tmpdir(t), 'cells.csv');
  const es = [
    entry({ s: 'a,b', q: 'say "hi"', nl: 'two\nlines', cr: 'x\r\ny', sp: ' lead', u: 'é漢😀', e: '', n: null, b: true, num: 0.1 }),
    entry({ s: 'plain', num: -2.5e-8, b: false, nan: NaN, inf: -Infinity }, { step: 1 }),
    entry({ s: '1.5', num: 3, late: 'z', 'key, "odd"\n': 1 }, { step: 2 }),
  ];
  await writeAll({ path: file, flushIntervalMs: 0 }, es);
  const keys = [...new Set(es.flatMap((e) => Object.keys(e.data)))].sort();
  t.same(pyRecords(py, file), [
    [...META, ...keys],
    ...es.map((e) => [String(e.step), String(T0), '20', ...keys.map((k) => cellText(e.data[k]))]),
  ]);
});

t.test('property: random rows, key sets, tables, modes and appends read back by Python csv', async (t) => {
  if (!needs(t, 'python3') || py === undefined) return;
  const py3 = py;
  const dir = tmpdir(t);
  const chars = fc.constantFrom('a', 'b', 'é', '😀', ' ', ',', '"', '\n', '\r', '\t', '1', '.', '-', 'e');
  const key = fc.oneof(
    fc.constantFrom('a', 'b', 'loss', 'w.mean', 'x/y', 'k,1', 'k"2', 'k\n3', ' k4', 'é'),
    fc.string({ unit: chars, minLength: 1, maxLength: 4 }),
  );
  const value: fc.Arbitrary<Scalar> = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.string({ unit: chars, maxLength: 8 }),
  );
  const row = fc.record({ table: fc.constantFrom('t', 'u', 'v/w'), data: fc.dictionary(key, value, { maxKeys: 6 }) });
  const mode = fc.constantFrom<CsvNewKeys>('rewrite', 'error', 'ignore');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(row, { minLength: 1, maxLength: 25 }),
      mode,
      fc.integer({ min: 0, max: 25 }),
      fc.constantFrom(1, 64, 100_000),
      async (rows, onNewKeys, split, flushBytes) => {
        const file = path.join(dir, `${n++}.csv`);
        const es = rows.map((r, i) => entry(r.data, { table: r.table, step: i, level: 5 + (i % 3) }));
        const opts = { path: file, withTable: true, onNewKeys, flushBytes };
        // Two sinks, one after the other: the second appends to the first one's file.
        await writeAll(opts, es.slice(0, split));
        await writeAll(opts, es.slice(split));
        const first = Object.keys((es[0] as Entry<FlatRow>).data);
        const keys = onNewKeys === 'rewrite' ? [...new Set(es.flatMap((e) => Object.keys(e.data)))].sort() : [...first].sort();
        const want = [
          [...META, '$table', ...keys],
          ...es.map((e) => [String(e.step), String(T0), String(e.level), e.table, ...keys.map((k) => cellText(e.data[k]))]),
        ];
        return isDeepStrictEqual(pyRecords(py3, file), want);
      },
    ),
    { numRuns: 40 },
  );
  t.pass('40 random files: every cell as written, header = metadata, $table, sorted keys (union or first row)');
});

t.test('pandas.read_csv: NaN and ±Infinity are floats, a late column is NaN in old rows', async (t) => {
  if (!needs(t, 'pandas') || pyPandas === undefined) return;
  const file = path.join(tmpdir(t), 'pandas.csv');
  const es = [
    entry({ loss: 0.5, nan: NaN, pinf: Infinity, ninf: -Infinity, ok: true, name: 'a,b' }),
    entry({ loss: 1 / 3, nan: 1, pinf: 2, ninf: 3, ok: false, name: 'say "hi"\nthere' }, { step: 1 }),
    entry({ loss: 0.1, nan: NaN, pinf: Infinity, ninf: -Infinity, ok: true, name: 'é', late: 7.25 }, { step: 2 }),
  ];
  t.equal(await writeAll({ path: file }, es), 1, 'one W_NEW_KEYS warning (late)');
  const script = [
    'import json, sys',
    'import pandas as pd',
    'df = pd.read_csv(sys.argv[1])',
    'exact = pd.read_csv(sys.argv[1], float_precision="round_trip")',
    'print(json.dumps({',
    '  "columns": list(df.columns),',
    '  "dtypes": {c: str(t) for c, t in df.dtypes.items()},',
    '  "cells": {c: [repr(v) for v in df[c].tolist()] for c in df.columns},',
    '  "loss": [float(v).hex() for v in exact["loss"]],',
    '}))',
  ].join('\n');
  const r = run(pyPandas, ['-c', script, file]);
  t.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as {
    columns: string[];
    dtypes: Record<string, string>;
    cells: Record<string, string[]>;
    loss: string[];
  };
  t.same(got.columns, [...META, 'late', 'loss', 'name', 'nan', 'ninf', 'ok', 'pinf']);
  t.same(got.dtypes, {
    $step: 'int64',
    $time: 'int64',
    $level: 'int64',
    late: 'float64',
    loss: 'float64',
    name: 'object',
    nan: 'float64',
    ninf: 'float64',
    ok: 'bool',
    pinf: 'float64',
  });
  t.same(got.cells.nan, ['nan', '1.0', 'nan'], 'NaN → float nan');
  t.same(got.cells.pinf, ['inf', '2.0', 'inf'], 'Infinity → float inf');
  t.same(got.cells.ninf, ['-inf', '3.0', '-inf'], '-Infinity → float -inf');
  t.same(got.cells.late, ['nan', 'nan', '7.25'], 'the late column is NaN in the rows written before it');
  t.same(got.cells.ok, ['True', 'False', 'True']);
  t.same(got.cells.name, ["'a,b'", `'say "hi"\\nthere'`, "'é'"]);
  const hex = (x: number) => run(pyPandas, ['-c', `print(float.hex(${x}))`]).stdout.trim();
  t.same(got.loss, es.map((e) => hex(e.data.loss as number)), 'with float_precision="round_trip" every double is exact');
});
