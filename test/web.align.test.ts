/** web/align.ts (a run's line and markers; runs on one x array) and web/axis.ts (the x-axis choice). */
import t from 'tap';
import { align, toLine } from '../web/align.js';
import { RELATIVE, axisName, fmtDuration, fmtWall, serverAxis } from '../web/axis.js';

t.test('toLine: finite points on the line, NaN and ±Infinity as markers at their x', async (t) => {
  const l = toLine({ i: [0, 1, 2, 3, 4], x: [10, 11, 12, 13, 14], y: [1, NaN, Infinity, -Infinity, 2] });
  t.same(l, { x: [10, 14], y: [1, 2], marks: [{ x: 11, i: 1, kind: 'nan' }, { x: 12, i: 2, kind: 'inf' }, { x: 13, i: 3, kind: '-inf' }] });
  t.same(toLine(undefined), { x: [], y: [], marks: [] });
  t.same(toLine({ i: [0, 1, 2], x: [1000, 1500, 2000], y: [0, -1, 5] }, 1000, true), { x: [1000], y: [5], marks: [] }, 'relative, log: values ≤ 0 left out');
  t.strictSame(toLine({ i: [0, 1, 2, 3], x: [0, 1, 2, 3], y: [2, 0, -1, 5] }, 0, true, true), { x: [0, 1, 2, 3], y: [2, null, null, 5], marks: [] }, 'log with gaps: a null at their x (the line breaks)');
  t.same(toLine({ i: [0, 1, 2, 3], x: [2, 1, 1, 0], y: [7, 8, 9, 10] }), { x: [0, 1, 1, 2], y: [10, 8, 9, 7], marks: [] }, 'sorted by x (stable) when not monotonic');
});

t.test('align: one x array; repeated x kept; undefined where a table has no point, its own null kept', async (t) => {
  t.strictSame(
    align([
      { x: [1, 1, 2], ys: [[10, 11, 12], [20, 21, 22]] },
      { x: [1, 3], ys: [[5, 6]] },
    ]),
    [
      [1, 1, 2, 3],
      [10, 11, 12, undefined],
      [20, 21, 22, undefined],
      [5, undefined, undefined, 6],
    ],
  );
  t.same(align([]), [[]]);
  t.strictSame(align([{ x: [0, 1], ys: [[null, undefined]] }]), [[0, 1], [null, undefined]], 'null: a break uPlot keeps; undefined: joined over');
});

t.test('axis: what the server is asked, names, durations and dates', async (t) => {
  t.equal(serverAxis(RELATIVE), '$time');
  t.equal(serverAxis('epoch'), 'epoch');
  t.same(['$step', RELATIVE, '$time', 'epoch'].map(axisName), ['step', 'relative time', 'wall time', 'epoch']);
  t.same([850, 42_000, 200_000, 180_000, 7_500_000, 3 * 86_400_000 + 4 * 3_600_000, -5000].map(fmtDuration), ['850 ms', '42 s', '3 min 20 s', '3 min', '2 h 05 min', '3 d 4 h', '−5 s']);
  t.match(fmtWall(Date.UTC(2026, 11, 2, 3, 10, 5)), /^2026-12-0[12] \d\d:\d0:05$/);
});
