/**
 * The acceptance example: rows piped through the public transforms into a JSONL file, built
 * only from what '../lib/index.js' exports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { jsonlSink, levelFilter, subsample, summarize } from '../lib/index.js';
import type { Entry } from '../lib/index.js';
import { tmpdir } from './helpers.js';

const T0 = 1_700_000_000_000;

/** The expected line of a row whose data `x` is the array [i, i+1, i+2] and `lr` a number. */
function line(step: number, time: number, level: number, i: number, lr: number): string {
  const xs = [i, i + 1, i + 2];
  const mean = i + 1;
  const std = Math.sqrt(xs.reduce((s, v) => s + (v - mean) ** 2, 0) / xs.length); // population std
  // Metadata first, then the data keys in sorted order: lr, x.max, x.mean, x.min, x.std.
  const row = { $step: step, $time: time, $level: level, lr, 'x.max': i + 2, 'x.mean': mean, 'x.min': i, 'x.std': std };
  return `${JSON.stringify(row)}\n`;
}

t.test('summarize → levelFilter → subsample → jsonlSink writes exactly the expected file', async (t) => {
  const file = path.join(tmpdir(t), 'run', 't.jsonl');
  // 100 plain rows; odd ones are TRACE, even ones INFO. No $step: summarize numbers them 0…99.
  const rows = Array.from({ length: 100 }, (_, i) => ({
    x: [i, i + 1, i + 2],
    lr: 0.5 / (i + 1),
    $level: i % 2 === 1 ? 'TRACE' : 'INFO',
    $time: T0 + i,
  }));
  await pipeline(Readable.from(rows), summarize({ table: 't' }), levelFilter({ min: 'INFO' }), subsample({ every: 10 }), jsonlSink({ path: file }));

  // INFO rows are steps 0, 2, 4, …; every 10th of those is kept: steps 0, 20, 40, 60, 80.
  const kept = [0, 20, 40, 60, 80];
  const expected = kept.map((i) => line(i, T0 + i, 20, i, 0.5 / (i + 1))).join('');
  t.equal(fs.readFileSync(file, 'utf8'), expected);
});

t.test('Entries of two tables: levels and subsampling count per table, one file per table', async (t) => {
  const dir = path.join(tmpdir(t), 'run');
  // Table a: 40 rows at DEBUG/INFO/WARNING in turn; table b: 20 rows all at RESULTS. Interleaved.
  const levels = [10, 20, 30];
  const entries: Entry[] = [];
  for (let i = 0; i < 40; i++) {
    entries.push({ table: 'a', level: levels[i % 3] as number, step: 100 + i, time: T0 + i, data: { x: [i, i + 1, i + 2], lr: i } });
    if (i < 20) entries.push({ table: 'sub/b', level: 35, step: i, time: T0 + 1000 + i, data: { x: [i, i + 1, i + 2], lr: -i } });
  }
  await pipeline(Readable.from(entries), summarize(), levelFilter({ min: 'info' }), subsample({ log: true }), jsonlSink({ dir }));

  // Table a keeps the rows at INFO or above (i % 3 !== 0), then the 0th, 1st, 2nd, 5th, 10th, 20th of those.
  const aPassed = Array.from({ length: 40 }, (_, i) => i).filter((i) => i % 3 !== 0);
  const aKept = [0, 1, 2, 5, 10, 20].map((k) => aPassed[k] as number);
  t.equal(
    fs.readFileSync(path.join(dir, 'a.jsonl'), 'utf8'),
    aKept.map((i) => line(100 + i, T0 + i, levels[i % 3] as number, i, i)).join(''),
  );
  // Table b counts on its own: all 20 pass the level, the log rate keeps 0, 1, 2, 5, 10.
  t.equal(
    fs.readFileSync(path.join(dir, 'sub', 'b.jsonl'), 'utf8'),
    [0, 1, 2, 5, 10].map((i) => line(i, T0 + 1000 + i, 35, i, -i)).join(''),
  );
});
