import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import t from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { createSampler, isLogIndex, subsample } from '../transforms/subsample.js';
import type { SubsampleOptions } from '../transforms/subsample.js';
import { collector } from './helpers.js';

/** Entries of `table` numbered by `step` (their index in the table), at `times` or time = step. */
function rows(table: string, n: number, times?: number[]): Array<Entry<FlatRow>> {
  return Array.from({ length: n }, (_, i) => ({ table, level: 20, step: i, time: times?.[i] ?? i, data: { i } }));
}

/** a0 b0 a1 b1 … */
function interleave<T>(a: T[], b: T[]): T[] {
  return a.flatMap((x, i) => (i < b.length ? [x, b[i] as T] : [x]));
}

/** The two ways to subsample: the sync Sampler and the Transform. Each returns the kept Entries. */
const IMPLS = {
  createSampler: async (opts: SubsampleOptions, input: Array<Entry<FlatRow>>) => input.filter(createSampler(opts)),
  'subsample()': async (opts: SubsampleOptions, input: Array<Entry<FlatRow>>) => {
    const out = collector();
    await pipeline(Readable.from(input), subsample(opts), out);
    return out.entries;
  },
};

/** `table:step` of each kept Entry. */
const ids = (es: Array<Entry<FlatRow>>) => es.map((e) => `${e.table}:${e.step}`);
const idsOf = (table: string, steps: number[]) => steps.map((s) => `${table}:${s}`);

for (const [name, keep] of Object.entries(IMPLS)) {
  t.test(name, async (t) => {
    t.test('every: 3 keeps the 1st, 4th, 7th … row', async (t) => {
      t.same(ids(await keep({ every: 3 }, rows('a', 10))), idsOf('a', [0, 3, 6, 9]));
      t.same(ids(await keep({ every: 1 }, rows('a', 4))), idsOf('a', [0, 1, 2, 3]), 'every: 1 keeps all');
    });

    t.test('every: 3 counts per table', async (t) => {
      const kept = ids(await keep({ every: 3 }, interleave(rows('a', 10), rows('b', 7))));
      t.same(kept, ['a:0', 'b:0', 'a:3', 'b:3', 'a:6', 'b:6', 'a:9']);
    });

    t.test('intervalMs: 100 keeps a row when 100 ms of Entry time passed since the last kept one', async (t) => {
      t.same(ids(await keep({ intervalMs: 100 }, rows('a', 5, [0, 50, 100, 120, 250]))), idsOf('a', [0, 2, 4]));
      t.same(ids(await keep({ intervalMs: 0 }, rows('a', 3, [7, 7, 7]))), idsOf('a', [0, 1, 2]), 'intervalMs: 0 keeps all');
    });

    t.test('intervalMs counts time per table', async (t) => {
      // b's clock is offset so that a shared "last kept" time would drop b's first rows.
      const a = rows('a', 5, [0, 50, 100, 120, 250]);
      const b = rows('b', 4, [60, 130, 159, 160]);
      t.same(ids(await keep({ intervalMs: 100 }, interleave(a, b))), ['a:0', 'b:0', 'a:2', 'b:3', 'a:4']);
    });

    t.test('log: true keeps indices 0, 1, 2, 5, 10, 20, 50, … per table', async (t) => {
      const expected = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500];
      t.same(ids(await keep({ log: true }, rows('a', 1000))), idsOf('a', expected));
      const both = await keep({ log: true }, interleave(rows('a', 30), rows('b', 30)));
      t.same(ids(both.filter((e) => e.table === 'b')), idsOf('b', [0, 1, 2, 5, 10, 20]));
    });

    t.test('kept Entries are passed unchanged', async (t) => {
      const input = rows('a', 4);
      const out = await keep({ every: 2 }, input);
      t.equal(out[0], input[0]);
      t.equal(out[1], input[2]);
    });
  });
}

t.test('isLogIndex: 0 and 1, 2 or 5 × 10^k', async (t) => {
  const yes = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2e6, 5e9];
  const no = [3, 4, 6, 7, 8, 9, 11, 15, 25, 30, 40, 55, 99, 101, 250, 1001, 2500, 3e6, -1, 0.5];
  for (const i of yes) t.equal(isLogIndex(i), true, String(i));
  for (const i of no) t.equal(isLogIndex(i), false, String(i));
});

t.test('invalid options throw at the factory, naming the option', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['none given', {}, /^subsample: needs exactly one of every, intervalMs, log \(got none\)/],
    ['two given', { every: 2, intervalMs: 10 }, /^subsample: .*got every, intervalMs/],
    ['all three', { every: 2, intervalMs: 10, log: true }, /got every, intervalMs, log/],
    ['every: 0', { every: 0 }, /^every: must be an integer ≥ 1 \(got 0\)/],
    ['every: 1.5', { every: 1.5 }, /^every: .*1\.5/],
    ['every: -3', { every: -3 }, /^every: /],
    ["every: '3'", { every: '3' }, /^every: /],
    ['every: Infinity', { every: Infinity }, /^every: /],
    ['intervalMs: -1', { intervalMs: -1 }, /^intervalMs: must be a finite number ≥ 0 \(got -1\)/],
    ['intervalMs: NaN', { intervalMs: NaN }, /^intervalMs: /],
    ['intervalMs: Infinity', { intervalMs: Infinity }, /^intervalMs: /],
    ['log: false', { log: false }, /^log: must be true \(got false\)/],
    ['not an object', null, /^subsample: must be an object/],
  ];
  for (const [label, opts, message] of cases) {
    for (const make of [createSampler, subsample]) {
      t.throws(() => make(opts as SubsampleOptions), { code: 'ERR_INVALID_OPTION', message }, `${make.name}: ${label}`);
    }
  }
});
