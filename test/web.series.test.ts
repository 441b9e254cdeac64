/** web/series.ts: what the page holds of a run's table, and how snapshot and rows events change it. */
import t from 'tap';
import { M4Follower, TableM4, fromWire } from '../lib/serve/decimate.js';
import type { Snapshot } from '../lib/serve/protocol.js';
import { applyRows, fromSnapshot } from '../web/series.js';

const row = (i: number) => ({ $step: i * 2, loss: i === 3333 ? 50 : Math.cos(i / 50), ...(i >= 500 ? { acc: i % 3 } : {}) });

t.test('a page applying rows events holds what a fresh snapshot gives, a late column and a live spike included', async (t) => {
  const max = 32;
  const first = new TableM4(max);
  for (let i = 0; i < 100; i++) first.push(i, i * 2, row(i));
  const snap: Snapshot = { run: 'r', table: 't', file: 't.jsonl', format: 'jsonl', total: 100, x: '$step', bucket: first.bucket, maxBuckets: max, followed: true, block: first.block(), startTime: 5 };
  const d = fromSnapshot(snap);
  t.equal(d.startTime, 5);
  const fol = new M4Follower(snap);
  for (let i = 100; i < 6000; i += 37) {
    const rows = [];
    for (let k = i; k < Math.min(i + 37, 6000); k++) rows.push({ index: k, x: k * 2, row: row(k) });
    const ev = fol.append(rows, Math.min(i + 37, 6000));
    applyRows(d, { run: 'r', table: 't', total: fol.total, x: '$step', ...ev });
  }
  const whole = new TableM4(max);
  for (let i = 0; i < 6000; i++) whole.push(i, i * 2, row(i));
  t.equal(d.total, 6000);
  t.equal(d.bucket, whole.bucket);
  const want = whole.block();
  t.same([...d.cols.keys()].sort(), want.columns);
  for (const [k, c] of want.columns.entries()) {
    const held = d.cols.get(c);
    const w = fromWire(want.points[k] as never);
    // What is held may keep a few more points of a bucket the rows event split; every kept extreme is there.
    t.ok(w.i.every((i) => held?.i.includes(i)), `${c}: every point of the full read is held`);
    t.ok((held?.i.length ?? 0) <= w.i.length + 8 * want.columns.length, `${c}: and not many more (${held?.i.length} vs ${w.i.length})`);
  }
  t.ok(d.cols.get('loss')?.i.includes(3333), 'the spike logged live');
  t.equal(d.lastX, 5999 * 2, 'the last step');
});
