/** lib/serve/decimate.ts: the M4 rule, used by the server and by the page. */
import t from 'tap';
import { ColumnM4, M4Follower, TableM4, bucketFor, fromWire, m4, xOf } from '../lib/serve/decimate.js';
import type { Points } from '../lib/serve/decimate.js';

/** A column of `n` rows: y = f(i), x = 10·i. */
function rows(n: number, f: (i: number) => number): Points {
  const p: Points = { i: [], x: [], y: [] };
  for (let i = 0; i < n; i++) {
    p.i.push(i);
    p.x.push(i * 10);
    p.y.push(f(i));
  }
  return p;
}

/** Per bucket of `b` rows: [first, last, min, max] of the finite values, by brute force. */
function brute(p: Points, b: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  p.i.forEach((i, k) => {
    const y = p.y[k] as number;
    if (!Number.isFinite(y)) return;
    const key = Math.floor(i / b);
    const e = out.get(key);
    if (!e) out.set(key, [y, y, y, y]);
    else {
      e[1] = y;
      e[2] = Math.min(e[2] as number, y);
      e[3] = Math.max(e[3] as number, y);
    }
  });
  return out;
}

function summary(p: Points, b: number): Map<number, number[]> {
  return brute(p, b);
}

t.test('bucketFor: the smallest power of 2 that puts the rows in at most max buckets', async (t) => {
  t.equal(bucketFor(0, 9, 10), 1);
  t.equal(bucketFor(0, 10, 10), 2);
  t.equal(bucketFor(0, 1_999_999, 2048), 1024);
  t.equal(bucketFor(0, 5, 10, 8), 8, 'never finer than the bucket it starts from');
  t.equal(bucketFor(1000, 1009, 10), 1, 'counted from the origin');
});

t.test('m4: per bucket the first, last, min and max rows, each once and in order; a spike is kept', async (t) => {
  const spike = 123_457;
  const p = rows(200_000, (i) => (i === spike ? 100 : Math.sin(i / 1000)));
  const k = m4(p, 1024);
  t.ok(k.i.length <= 4 * Math.ceil(200_000 / 1024), `at most 4 points per bucket (${k.i.length})`);
  t.ok(k.i.every((v, j) => j === 0 || v > (k.i[j - 1] as number)), 'indexes strictly ascending');
  t.ok(k.i.includes(spike), 'the spike row is kept');
  t.same(summary(k, 1024), brute(p, 1024), 'same first/last/min/max per bucket as the raw rows');
  t.same(k.x, k.i.map((i) => i * 10), 'each point keeps its own x');
});

t.test('m4 over kept points is m4 over the rows (doubling loses nothing)', async (t) => {
  const p = rows(50_000, (i) => Math.sin(i) * (i % 97) + (i % 5000 === 0 ? -50 : 0));
  for (const [fine, coarse] of [
    [1, 64],
    [16, 256],
    [128, 1024],
  ] as const) {
    t.same(m4(m4(p, fine), coarse), m4(p, coarse), `${fine} then ${coarse} = ${coarse}`);
  }
});

t.test('non-finite values: the first NaN, +Infinity and -Infinity of each bucket are kept, and never min or max', async (t) => {
  const c = new ColumnM4(8);
  const ys = [1, NaN, NaN, Infinity, 5, -Infinity, 0, Infinity, 2, NaN];
  ys.forEach((y, i) => c.add(i, i, y));
  const p = c.points();
  // Bucket 0 (rows 0-7): first 1, max 5, min and last 0, the first NaN, +Infinity (not row 7's) and -Infinity; bucket 1: 2 and NaN.
  t.same(p.i, [0, 1, 3, 4, 5, 6, 8, 9]);
  t.same(p.y, [1, NaN, Infinity, 5, -Infinity, 0, 2, NaN]);
  t.same(m4(rows(4, () => NaN), 4).i, [0], 'a column of NaN: its first NaN per bucket');
});

t.test('TableM4: buckets double past max; columns come and go; memory stays O(max × columns)', async (t) => {
  const tab = new TableM4(100);
  for (let i = 0; i < 100_000; i++) tab.push(i, i, i < 50_000 ? { loss: 1 / (i + 1), $time: i } : { loss: 1 / (i + 1), acc: i % 7 });
  t.equal(tab.bucket, 1024);
  t.equal(tab.total, 100_000);
  const b = tab.block();
  t.same(b.columns, ['acc', 'loss'], 'data columns sorted, $-columns left out');
  const loss = fromWire(b.points[1] as never);
  t.ok(loss.i.length <= 4 * 100, `bounded: ${loss.i.length} points`);
  t.equal(loss.i[0], 0);
  t.equal(loss.i[loss.i.length - 1], 99_999, 'the last row is kept');
  const acc = fromWire(b.points[0] as never);
  t.equal(acc.i[0], 50_000, 'a column that starts late starts at its first row');
});

t.test('xOf: $step else the index; $time and columns only where finite', async (t) => {
  t.equal(xOf({ $step: 7 }, 3, '$step'), 7);
  t.equal(xOf({}, 3, '$step'), 3);
  t.equal(xOf({ $time: 5 }, 3, '$time'), 5);
  t.equal(xOf({}, 3, '$time'), undefined);
  t.equal(xOf({ epoch: NaN }, 3, 'epoch'), undefined);
  t.equal(xOf({ epoch: 2 }, 3, 'epoch'), 2);
});

t.test('M4Follower: a page that applies its rows events holds exactly what a full read gives', async (t) => {
  const max = 64;
  const f = (i: number) => Math.sin(i / 37) + (i === 7777 ? 40 : 0) + (i === 12_345 ? NaN : 0);
  // The snapshot after 1000 rows.
  const first = new TableM4(max);
  for (let i = 0; i < 1000; i++) first.push(i, i, { y: f(i) });
  const snap = { total: 1000, bucket: first.bucket, maxBuckets: max, block: first.block() };
  const fol = new M4Follower(snap);
  // The page: what it holds, merged by the rule in protocol.ts's RowsEvent.
  let held = fromWire(snap.block.points[0] as never);
  let heldBucket = snap.bucket;
  let i = 1000;
  while (i < 20_000) {
    const n = 1 + ((i * 7919) % 900);
    const batch = [];
    for (let k = 0; k < n && i < 20_000; k++, i++) batch.push({ index: i, x: i, row: { y: f(i) } });
    const ev = fol.append(batch, i);
    const keep = held.i.findIndex((v) => v >= ev.from);
    const cut = keep === -1 ? held.i.length : keep;
    const add = fromWire(ev.block.points[0] as never);
    held = { i: [...held.i.slice(0, cut), ...add.i], x: [...held.x.slice(0, cut), ...add.x], y: [...held.y.slice(0, cut), ...add.y] };
    if (ev.bucket > heldBucket) held = m4(held, (heldBucket = ev.bucket));
  }
  const whole = new TableM4(max);
  for (let k = 0; k < 20_000; k++) whole.push(k, k, { y: f(k) });
  t.equal(heldBucket, whole.bucket, 'same bucket');
  const want = fromWire(whole.block().points[0] as never);
  t.same(m4(held, heldBucket), want, 'the page, rebucketed once more, holds the full read exactly');
  t.ok(held.i.includes(7777), 'the spike arrived live and is held');
  t.ok(held.i.includes(12_345), 'the NaN arrived live and is held');
});
