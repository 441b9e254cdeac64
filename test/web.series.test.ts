/**
 * web/series.ts: what the page holds of a run's table, as the server's snapshot and rows events
 * change it. The page is fed with what lib/serve/decimate.ts's M4Follower makes of a growing
 * table (as lib/serve/events.ts sends it), and must hold what a fresh snapshot of the whole table holds.
 */
import t from 'tap';
import { M4Follower, TableM4, fromWire, m4 } from '../lib/serve/decimate.js';
import type { Block, Snapshot } from '../lib/serve/protocol.js';
import { applyRows, fromSnapshot, lastFinite, lastX } from '../web/series.js';

const snapshot = (block: Block, extra: Partial<Snapshot> = {}): Snapshot => ({
  run: 'r', table: 't', file: 't.jsonl', format: 'jsonl', total: 3, x: '$step', bucket: 1, maxBuckets: 10, followed: true, block, ...extra,
});

t.test('a snapshot: per column its points, non-finite values as numbers again', async (t) => {
  const d = fromSnapshot(
    snapshot({ columns: ['loss'], points: [{ i: [0, 1, 2], x: [10, 20, 30], y: [1, 'NaN', '-Infinity'] }] }, { startTime: 5, range: { from: 10, to: 30, origin: 0 } }),
  );
  t.same(d.cols.get('loss'), { i: [0, 1, 2], x: [10, 20, 30], y: [1, NaN, -Infinity] });
  t.equal(d.startTime, 5);
  t.same(d.range, { from: 10, to: 30 });
  t.equal(lastX(d), 30);
  t.equal(lastFinite(d.cols.get('loss')), 1);
  t.equal(lastFinite(undefined), undefined);
  t.equal(lastX(fromSnapshot(snapshot({ columns: [], points: [] }))), undefined);
});

t.test('a rows event: points from `from` on replaced, new columns added, another x-axis ignored', async (t) => {
  const d = fromSnapshot(snapshot({ columns: ['a'], points: [{ i: [0, 1, 2], x: [0, 1, 2], y: [1, 2, 3] }] }));
  applyRows(d, { run: 'r', table: 't', total: 5, x: '$step', bucket: 1, from: 2, block: { columns: ['a', 'b'], points: [{ i: [2, 3, 4], x: [2, 3, 4], y: [30, 4, 5] }, { i: [4], x: [4], y: ['Infinity'] }] } });
  t.same(d.cols.get('a'), { i: [0, 1, 2, 3, 4], x: [0, 1, 2, 3, 4], y: [1, 2, 30, 4, 5] });
  t.same(d.cols.get('b'), { i: [4], x: [4], y: [Infinity] });
  t.equal(d.total, 5);
  applyRows(d, { run: 'r', table: 't', total: 9, x: 'epoch', bucket: 1, from: 0, block: { columns: [], points: [] } });
  t.equal(d.total, 5, 'an event of another axis changes nothing');
});

t.test("fed with the server's events for a growing table, the page holds what a fresh snapshot holds", async (t) => {
  const max = 32;
  const f = (i: number) => Math.cos(i / 23) + (i === 4321 ? 99 : 0) + (i === 9001 ? NaN : 0) + (i === 777 ? -Infinity : 0);
  const row = (i: number): Record<string, unknown> => (i < 3000 ? { y: f(i) } : { y: f(i), late: i % 11 });
  const first = new TableM4(max);
  for (let i = 0; i < 500; i++) first.push(i, i * 2, row(i));
  const snap = { total: 500, bucket: first.bucket, maxBuckets: max, block: first.block() };
  const d = fromSnapshot(snapshot(snap.block, { total: 500, bucket: snap.bucket, maxBuckets: max }));
  const fol = new M4Follower(snap);
  let i = 500;
  while (i < 12_000) {
    const n = 1 + ((i * 104_729) % 700);
    const batch = [];
    for (let k = 0; k < n && i < 12_000; k++, i++) batch.push({ index: i, x: i * 2, row: row(i) });
    const ev = fol.append(batch, i);
    applyRows(d, { run: 'r', table: 't', total: i, x: '$step', ...ev });
    t.ok([...d.cols.values()].every((p) => p.i.length <= 8 * max), `bounded after ${i} rows`);
  }
  const whole = new TableM4(max);
  for (let k = 0; k < 12_000; k++) whole.push(k, k * 2, row(k));
  const fresh = fromSnapshot(snapshot(whole.block(), { total: 12_000, bucket: whole.bucket, maxBuckets: max }));
  t.equal(d.bucket, fresh.bucket, 'same bucket');
  t.equal(d.total, 12_000);
  t.same([...d.cols.keys()].sort(), ['late', 'y']);
  for (const [c, p] of fresh.cols) t.same(m4(d.cols.get(c) as never, d.bucket), p, `${c}: the same points (rebucketed once more)`);
  const y = d.cols.get('y');
  t.ok(y?.i.includes(4321) && y.i.includes(9001) && y.i.includes(777), 'the spike, the NaN and the -Infinity are held');
  t.same(fromWire(whole.block().points[1] as never).i.at(-1), 11_999);
  t.equal(lastX(d), 11_999 * 2);
});
