/** web/smooth.ts and web/format.ts: the page's smoothing and how it writes numbers. */
import t from 'tap';
import { ago, fmt, fmtTick } from '../web/format.js';
import { ema } from '../web/smooth.js';

t.test('ema: debiased (the first point is itself), gaps left as they are, 0 is no smoothing', async (t) => {
  t.same(ema([1, 2, 3], 0), [1, 2, 3]);
  const s = ema([4, null, 4, 4], 0.9);
  t.equal(s[0], 4, 'debiased: not pulled towards 0');
  t.equal(s[1], null);
  t.ok(Math.abs((s[3] as number) - 4) < 1e-12, 'a constant stays constant');
  const step = ema([0, 0, 0, 10, 10, 10], 0.5) as number[];
  t.ok(step[3] as number > 0 && (step[3] as number) < 10 && (step[5] as number) > (step[3] as number), 'a step is approached smoothly');
});

t.test('fmt, fmtTick, ago', async (t) => {
  t.equal(fmt(null), '–');
  t.equal(fmt(0.123456), '0.1235');
  t.equal(fmt(1234567), '1.23e+6');
  t.equal(fmt(0.0001), '1.00e-4');
  t.equal(fmt(NaN), 'NaN');
  t.equal(fmtTick(undefined), '');
  t.equal(fmtTick(123456), '1.2e+5');
  t.equal(fmtTick(0.5), '0.5');
  t.equal(ago(0, 12_000), '12 s ago');
  t.equal(ago(0, 180_000), '3 min ago');
  t.equal(ago(0, 5 * 3_600_000), '5 h ago');
  t.equal(ago(0, 2 * 86_400_000), '2 d ago');
  t.equal(ago(1000, 0), '0 s ago', 'a clock behind is not negative');
});
