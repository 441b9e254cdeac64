/** lib/serve/decimate.ts: the one striding rule, used by the server and by the page. */
import t from 'tap';
import { Decimator, MAX_POINTS, numericRow, onGrid, strideFor, toBlock } from '../lib/serve/decimate.js';

t.test('strideFor: the smallest power of 2 that puts at most max rows on the grid', async (t) => {
  t.equal(strideFor(0, 10), 1);
  t.equal(strideFor(10, 10), 1);
  t.equal(strideFor(11, 10), 2);
  t.equal(strideFor(20, 10), 2);
  t.equal(strideFor(21, 10), 4);
  t.equal(strideFor(2_000_000, MAX_POINTS), 256);
  t.equal(strideFor(5, 10, 8), 8, 'never finer than the stride it starts from');
});

t.test('onGrid: positions on the grid of stride, and the last one when asked', async (t) => {
  t.same(onGrid([0, 1, 2, 3, 4, 5, 6], 2), [0, 2, 4, 6]);
  t.same(onGrid([0, 2, 4, 6, 7], 4), [0, 2]);
  t.same(onGrid([0, 2, 4, 6, 7], 4, true), [0, 2, 4], 'the tip (index 7) kept');
  t.same(onGrid([], 4, true), []);
});

t.test('numericRow: $step (else the index) and finite numbers; other $-columns and non-numbers left out', async (t) => {
  t.same([...numericRow({ $step: 7, $time: 1, loss: 0.5, name: 'x', bad: NaN, inf: -Infinity }, 3)], [
    ['$step', 7],
    ['loss', 0.5],
    ['bad', null],
    ['inf', null],
  ]);
  t.same([...numericRow({ a: 1 }, 3)], [
    ['$step', 3],
    ['a', 1],
  ]);
});

t.test('Decimator: every stride-th row, stride doubled past max, the last row apart', async (t) => {
  const dec = new Decimator(10);
  for (let i = 0; i < 25; i++) dec.push(numericRow({ $step: i * 10, x: i }, i));
  t.equal(dec.total, 25);
  t.equal(dec.stride, 4);
  t.same(
    dec.kept.map((k) => k.index),
    [0, 4, 8, 12, 16, 20, 24],
  );
  const b = dec.block();
  t.same(b.columns, ['$step', 'x']);
  t.same(b.index, [0, 4, 8, 12, 16, 20, 24]);
  t.same(b.data[1], [0, 4, 8, 12, 16, 20, 24]);
  dec.push(numericRow({ x: 25 }, 25));
  t.same(dec.block().index, [0, 4, 8, 12, 16, 20, 24, 25], 'an off-grid last row is sent too');

  const counting = new Decimator(10, false);
  t.ok(counting.push(numericRow({}, 0)), 'on the grid');
  t.ok(counting.push(numericRow({}, 1)), 'on the grid of 1 too');
  t.same(counting.kept, []);
});

t.test('Decimator.block: a wide table gets a coarser stride (at most max × 400 values)', async (t) => {
  const dec = new Decimator(10);
  const wide: Record<string, number> = {};
  for (let c = 0; c < 999; c++) wide[`c${c}`] = c;
  for (let i = 0; i < 10; i++) dec.push(numericRow(wide, i));
  const b = dec.block();
  t.ok(b.index.length * b.columns.length <= 10 * 400 + b.columns.length, `${b.index.length} rows × ${b.columns.length} columns`);
  t.equal(dec.stride, 4);
});

t.test('toBlock: rows in columns, missing cells null', async (t) => {
  const rows = [
    { index: 0, row: new Map([['$step', 0], ['a', 1]]) },
    { index: 2, row: new Map([['$step', 2]]) },
  ];
  t.same(toBlock(rows, ['$step', 'a']), { columns: ['$step', 'a'], index: [0, 2], data: [[0, 2], [1, null]] });
});

t.test('Decimator.append: the rows on the grid as it ends up (it may double meanwhile), and the last', async (t) => {
  const dec = new Decimator(10, false);
  for (let i = 0; i < 15; i++) dec.push(numericRow({}, i));
  t.equal(dec.stride, 2);
  const sent = dec.append([15, 16, 17, 18, 19, 20, 21].map((i) => numericRow({}, i)));
  t.equal(dec.stride, 4, 'doubled at row 20');
  t.same(sent.map((k) => k.index), [16, 20, 21], '18 was on the grid of 2 when it came, not on the final one');
  t.same(dec.append([]), [], 'nothing appended: nothing to send');
});
