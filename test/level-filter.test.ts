import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import t from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { Level } from '../lib/core/levels.js';
import { levelFilter } from '../transforms/level-filter.js';
import type { LevelFilterOptions } from '../transforms/level-filter.js';
import { collector } from './helpers.js';

const ALL_LEVELS = [0, 5, 10, 19, 20, 21, 30, 35, 40, 50, 1000];

function entries(levels: number[]): Array<Entry<FlatRow>> {
  return levels.map((level, step) => ({ table: 't', level, step, time: step, data: { step } }));
}

/** The Entries that `levelFilter(opts)` lets through, in order. */
async function filter(opts: LevelFilterOptions | undefined, input: Array<Entry<FlatRow>>): Promise<Array<Entry<FlatRow>>> {
  const out = collector();
  await pipeline(Readable.from(input), levelFilter(opts), out);
  return out.entries;
}

/** The levels of the Entries that `levelFilter(opts)` lets through, in order. */
async function passed(opts: LevelFilterOptions | undefined, levels = ALL_LEVELS): Promise<number[]> {
  return (await filter(opts, entries(levels))).map((e) => e.level);
}

t.test("min 'INFO' passes level >= 20 and drops the rest", async (t) => {
  t.same(await passed({ min: 'INFO' }), [20, 21, 30, 35, 40, 50, 1000]);
  const input = entries([5, 20, 40]);
  const out = await filter({ min: 'INFO' }, input);
  t.equal(out[0], input[1], 'Entries pass unchanged (the same objects)');
  t.equal(out[1], input[2]);
});

t.test('min takes names in any case, or a number', async (t) => {
  for (const min of ['info', 'Info', 'INFO', 20]) {
    t.same(await passed({ min }), [20, 21, 30, 35, 40, 50, 1000], `min: ${JSON.stringify(min)}`);
  }
  t.same(await passed({ min: 'results' }), [35, 40, 50, 1000]);
  t.same(await passed({ min: 21 }), [21, 30, 35, 40, 50, 1000]);
});

t.test('the default min is TRACE: every named level passes', async (t) => {
  const named = Object.values(Level);
  t.same(await passed(undefined, named), named);
  t.same(await passed({}, named), named);
  t.same(await passed(undefined, [4, 5]), [5], 'below TRACE is still dropped');
});

t.test('an unknown level throws at the factory, naming min', async (t) => {
  for (const min of ['LOUD', '', NaN, Infinity]) {
    t.throws(() => levelFilter({ min }), { name: 'RangeError', code: 'ERR_INVALID_OPTION', message: /^min: unknown level/ }, String(min));
  }
});
