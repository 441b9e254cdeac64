/**
 * web/series.ts: what the page holds of a run's table, as the server's snapshot and rows events
 * change it. The page is fed here with what lib/serve/decimate.ts makes of a growing table, so
 * page and server stride alike.
 */
import t from 'tap';
import { Decimator, numericRow, toBlock } from '../lib/serve/decimate.js';
import type { NumRow } from '../lib/serve/decimate.js';
import type { Block, RowsEvent, Snapshot } from '../lib/serve/protocol.js';
import { appendBlock, applyRows, fromSnapshot, restride } from '../web/series.js';

const snapshot = (block: Block, extra: Partial<Snapshot> = {}): Snapshot => ({
  run: 'r', table: 't', file: 't.jsonl', format: 'jsonl', total: block.index.length, stride: 1, maxPoints: 10, followed: true, block, ...extra,
});

t.test('a snapshot: steps from $step, one array per column', async (t) => {
  const d = fromSnapshot(snapshot({ columns: ['$step', 'loss'], index: [0, 1, 2], data: [[10, 20, 30], [1, 0.5, null]] }));
  t.same(d.index, [0, 1, 2]);
  t.same(d.steps, [10, 20, 30]);
  t.same([...d.cols], [['loss', [1, 0.5, null]]]);
  t.equal(d.tip, false);
  t.equal(d.maxPoints, 10);
});

t.test('appendBlock: a new column gets nulls before, a missing one nulls after; an off-grid tip is replaced', async (t) => {
  const d = fromSnapshot(snapshot({ columns: ['$step', 'a'], index: [0, 2, 3], data: [[0, 2, 3], [1, 2, 3]] }, { stride: 2, total: 4 }));
  t.equal(d.tip, true, 'index 3 is off the grid of 2');
  appendBlock(d, { columns: ['$step', 'b'], index: [4, 5], data: [[4, 5], [40, 50]] });
  t.same(d.index, [0, 2, 4, 5], 'the old tip went');
  t.same(d.steps, [0, 2, 4, 5]);
  t.same(d.cols.get('a'), [1, 2, null, null]);
  t.same(d.cols.get('b'), [null, null, 40, 50]);
  t.equal(d.tip, true);
});

t.test('a rows event with a coarser stride: the points off it go, old and new, but the last', async (t) => {
  const d = fromSnapshot(snapshot({ columns: ['$step'], index: [0, 2, 4, 6], data: [[0, 2, 4, 6]] }, { stride: 2, total: 7 }));
  applyRows(d, { run: 'r', table: 't', total: 11, stride: 4, block: { columns: ['$step'], index: [8, 10], data: [[8, 10]] } });
  t.same(d.index, [0, 4, 8, 10]);
  t.equal(d.tip, true);
  t.equal(d.total, 11);
});

t.test('restride: the points off the coarser grid go, the last one stays', async (t) => {
  const d = fromSnapshot(snapshot({ columns: ['$step', 'a'], index: [0, 1, 2, 3, 4, 5], data: [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]] }));
  restride(d, 4);
  t.same(d.index, [0, 4, 5]);
  t.same(d.cols.get('a'), [0, 4, 5]);
  t.equal(d.stride, 4);
});

t.test("fed with the server's events for a growing table, the page holds the server's grid, at most 2 × maxPoints", async (t) => {
  const max = 10;
  const row = (i: number) => numericRow({ $step: i * 10, x: i }, i);
  // The snapshot of the first 15 rows, as /api/events sends it.
  const snap = new Decimator(max);
  for (let i = 0; i < 15; i++) snap.push(row(i));
  const block = snap.block();
  const d = fromSnapshot(snapshot(block, { total: snap.total, stride: snap.stride, maxPoints: max }));
  // Then rows events in batches of 7, as lib/serve/events.ts makes them.
  const live = new Decimator(max, false);
  live.total = snap.total;
  live.stride = snap.stride;
  for (let start = 15; start < 200; start += 7) {
    const rows: NumRow[] = [];
    for (let i = start; i < Math.min(start + 7, 200); i++) rows.push(row(i));
    const onFinal = live.append(rows); // as lib/serve/events.ts sends them
    const msg: RowsEvent = { run: 'r', table: 't', total: live.total, stride: live.stride, block: toBlock(onFinal, ['$step', 'x']) };
    applyRows(d, msg);
    t.ok(d.index.length <= 2 * max + 1, `${d.index.length} points held after ${live.total} rows`);
    t.ok(
      d.index.slice(0, -1).every((ix) => ix % d.stride === 0),
      'every point but the last on the grid',
    );
  }
  t.equal(d.total, 200);
  t.equal(d.index[d.index.length - 1], 199, 'the last row is shown');
  t.same(d.steps, d.index.map((i) => i * 10), 'steps line up with indexes');
  t.same(d.cols.get('x'), d.index, 'values line up with indexes');
  const whole = new Decimator(max);
  for (let i = 0; i < 200; i++) whole.push(row(i));
  t.ok(d.stride <= whole.stride * 2 && d.stride >= whole.stride, `page stride ${d.stride}, a fresh snapshot's ${whole.stride}`);
});
