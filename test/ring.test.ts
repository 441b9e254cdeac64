/** Ring (lib/core/ring.ts): the one ring buffer, behind the memory sink and the socket backlog. */
import t from 'tap';
import { Ring } from '../lib/core/ring.js';

const items = <T>(r: Ring<T>) => Array.from({ length: r.length }, (_, i) => r.at(i));

t.test('keeps the last cap items, oldest first, across wrap-arounds', async (t) => {
  const r = new Ring<number>(3);
  t.strictSame(items(r), []);
  r.push(1);
  r.push(2);
  t.strictSame(items(r), [1, 2]);
  for (let i = 3; i <= 10; i++) r.push(i);
  t.strictSame(items(r), [8, 9, 10]);
  t.equal(r.length, 3);
});

t.test('cap 0 keeps nothing; Infinity keeps everything', async (t) => {
  const none = new Ring<number>(0);
  none.push(1);
  t.equal(none.length, 0);
  const all = new Ring<number>(Infinity);
  for (let i = 0; i < 1000; i++) all.push(i);
  t.equal(all.length, 1000);
  t.equal(all.at(0), 0);
  t.equal(all.at(999), 999);
});
