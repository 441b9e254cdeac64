import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { memorySink } from '../sinks/memory.js';
import type { MemorySink, MemorySinkOptions } from '../sinks/memory.js';

const T0 = 1_700_000_000_000;

/** `n` Entries of `table` with steps `from`…, payload `{i}`. */
function entries(n: number, table = 't', from = 0): Array<Entry<FlatRow>> {
  return Array.from({ length: n }, (_, k) => ({ table, level: 20, step: from + k, time: T0 + from + k, data: { i: from + k } }));
}

const steps = (es: Iterable<Entry<FlatRow>>) => [...es].map((e) => e.step);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/** Writes `es` through `pipeline(Readable.from(es), sink)`. */
async function feed(sink: MemorySink, es: Array<Entry<FlatRow>>): Promise<MemorySink> {
  await pipeline(Readable.from(es), sink);
  return sink;
}

t.test('keeps the last maxlen Entries per table, in order, across many wrap-arounds', async (t) => {
  const sink = memorySink({ maxlen: 7 });
  const a = entries(53, 'a'); // 7 does not divide 53: the ring ends mid-way through its slots
  const b = entries(5, 'b', 1000);
  for (let k = 0; k < a.length; k++) {
    sink.write(a[k] as Entry<FlatRow>);
    if (k < b.length) sink.write(b[k] as Entry<FlatRow>);
    const kept = steps(sink.table('a'));
    t.same(kept, range(Math.max(0, k - 6), k + 1), `after ${k + 1} rows`); // checks every phase of the ring
  }
  t.equal(sink.table('a').length, 7);
  t.same(steps(sink.table('b')), range(1000, 1005), 'the other table keeps its own (fewer) rows');
  t.same(sink.tables(), ['a', 'b'], 'tables in first-seen order');
  t.equal(sink.table('a').last(1)[0], a[52], 'the kept objects are the Entries written');
});

t.test('the default maxlen is 1000', async (t) => {
  const sink = await feed(memorySink(), entries(2500));
  t.same(steps(sink.table('t')), range(1500, 2500));
});

t.test('maxlen: 0 keeps nothing; Infinity keeps everything', async (t) => {
  const none = await feed(memorySink({ maxlen: 0 }), entries(10));
  t.equal(none.table('t').length, 0);
  t.same(none.table('t').last(), []);
  t.same(none.table('t').rows(), []);
  t.same(none.tables(), ['t'], 'the table was still seen');

  const all = await feed(memorySink({ maxlen: Infinity }), entries(5000));
  t.equal(all.table('t').length, 5000);
  t.same(steps(all.table('t')), range(0, 5000));
});

t.test('last(n): the newest n, oldest first, bounded by what is kept', async (t) => {
  const view = (await feed(memorySink({ maxlen: 4 }), entries(10))).table('t');
  t.same(steps(view.last(2)), [8, 9]);
  t.same(steps(view.last(4)), [6, 7, 8, 9]);
  t.same(steps(view.last(100)), [6, 7, 8, 9], 'more than kept: all kept');
  t.same(steps(view.last(Infinity)), [6, 7, 8, 9]);
  t.same(steps(view.last()), [6, 7, 8, 9], 'default: all kept');
  t.same(view.last(0), []);
  for (const [n, message] of [
    [-1, /^n: must be an integer ≥ 0/],
    [1.5, /^n: must be an integer ≥ 0/],
    [NaN, /^n: must be a number/],
    ['2', /^n: must be a number/],
  ] as const) {
    t.throws(() => view.last(n as number), { code: 'ERR_INVALID_OPTION', message }, `last(${String(n)})`);
  }
});

t.test('a view is live; an unknown table is an empty view and is not listed', async (t) => {
  const sink = memorySink({ maxlen: 3 });
  const view = sink.table('later');
  t.equal(view.length, 0);
  t.same([...view], []);
  t.same(sink.tables(), []);
  await feed(sink, entries(5, 'later'));
  t.equal(view.length, 3);
  t.same(steps(view), [2, 3, 4]);
});

t.test('iteration is oldest first and a snapshot (writing while iterating is safe)', async (t) => {
  const sink = memorySink({ maxlen: 3 });
  for (const e of entries(4)) sink.write(e);
  const seen: number[] = [];
  for (const e of sink.table('t')) {
    seen.push(e.step);
    sink.write(entries(1, 't', 100 + e.step)[0] as Entry<FlatRow>);
  }
  t.same(seen, [1, 2, 3]);
  t.same(steps(sink.table('t')), [101, 102, 103]);
});

t.test('rows(): $step, $time, $level first, then data keys sorted, like the files', async (t) => {
  const sink = memorySink();
  sink.write({ table: 'r', level: 35, step: 4, time: T0, data: { b: 2, a: 'x', nan: NaN, n: null } });
  sink.write({ table: 'r', level: 20, step: 5, time: T0 + 1, data: { z: true } });
  const rows = sink.table('r').rows();
  t.same(rows, [
    { $step: 4, $time: T0, $level: 35, a: 'x', b: 2, n: null, nan: NaN },
    { $step: 5, $time: T0 + 1, $level: 20, z: true },
  ]);
  t.same(rows.map((r) => Object.keys(r)), [
    ['$step', '$time', '$level', 'a', 'b', 'n', 'nan'],
    ['$step', '$time', '$level', 'z'],
  ]);
  rows[0]!.a = 'changed';
  t.equal(sink.table('r').last(2)[0]!.data.a, 'x', 'rows are new objects');
});

t.test('flush() and flushSync() are no-ops that resolve at once', async (t) => {
  const sink = memorySink();
  sink.write(entries(1)[0] as Entry<FlatRow>);
  t.equal(sink.flushSync(), undefined);
  await sink.flush();
  t.equal(sink.table('t').length, 1);
});

t.test('a malformed Entry is an error event on the sink, not a throw from write()', async (t) => {
  const sink = memorySink();
  const errors: Error[] = [];
  sink.on('error', (err) => errors.push(err));
  t.doesNotThrow(() => sink.write({ table: 't', level: 20, data: null }));
  await new Promise((resolve) => sink.once('close', resolve));
  t.equal(errors.length, 1);
  t.type(errors[0], TypeError);
});

t.test('bad options throw at the factory', async (t) => {
  const cases: Array<[string, unknown, RegExp, ErrorConstructor]> = [
    ['maxlen: -1', { maxlen: -1 }, /^maxlen: must be an integer ≥ 0 or Infinity/, RangeError],
    ['maxlen: 2.5', { maxlen: 2.5 }, /^maxlen: must be an integer ≥ 0 or Infinity/, RangeError],
    ['maxlen: -Infinity', { maxlen: -Infinity }, /^maxlen: /, RangeError],
    ['maxlen: NaN', { maxlen: NaN }, /^maxlen: must be a number/, TypeError],
    ['maxlen: "10"', { maxlen: '10' }, /^maxlen: must be a number/, TypeError],
    ['options not an object', 'big', /^options: must be an object/, TypeError],
  ];
  for (const [label, opts, message, type] of cases) {
    t.throws(() => memorySink(opts as MemorySinkOptions), { name: type.name, code: 'ERR_INVALID_OPTION', message }, label);
  }
});
