/**
 * web/export-data.ts: what a chart's CSV/JSON export holds: the rows inside the x scale's
 * current range, of the shown series, rows with no value left out, CSV quoting, NaN and
 * ±Infinity by name, and the file names.
 */
import t from 'tap';
import { fileName, toCsv, toJson, visibleData } from '../web/export-data.js';
import type { Plotted } from '../web/export-data.js';

const chart = (min?: number, max?: number): Plotted =>
  ({
    data: [
      [0, 10, 20, 30, 40],
      [1, 0.5, null, Number.NaN, 0.1],
      [9, 9, 9, 9, 9],
      [null, 2, null, Infinity, 3],
    ],
    series: [{ label: 'step' }, { label: 'a, "raw"' }, { label: 'hidden', show: false }, { label: 'b' }],
    scales: { x: { min, max } },
  }) as unknown as Plotted;

t.test('the visible rows of the shown series', async (t) => {
  const v = visibleData(chart(10, 30));
  t.same(v, { xLabel: 'step', x: [10, 30], series: [{ label: 'a, "raw"', values: [0.5, Number.NaN] }, { label: 'b', values: [2, Infinity] }] }, 'step 20 has no value in either: left out');
  t.same(visibleData(chart()).x, [0, 10, 30, 40], 'no range: every row with a value');
  t.equal(toCsv(v), 'step,"a, ""raw""",b\n10,0.5,2\n30,NaN,Infinity\n');
  t.same(JSON.parse(toJson(v)), { xLabel: 'step', x: [10, 30], series: [{ label: 'a, "raw"', values: [0.5, 'NaN'] }, { label: 'b', values: [2, 'Infinity'] }] });
  t.equal(toCsv(visibleData(chart(0, 0))), 'step,"a, ""raw""",b\n0,1,\n', 'an empty value: an empty field');
  const bare = visibleData({ data: [[1], [2]], series: [{}, {}], scales: {} } as unknown as Plotted);
  t.same(bare, { xLabel: 'x', x: [1], series: [{ label: 'series 1', values: [2] }] });
});

t.test('the markers (NaN, ±Infinity: not on the lines, so not in u.data) as rows of their own, in x order', async (t) => {
  const u = { data: [[0, 10, 20], [1, 2, 3], [1, 1.5, 2]], series: [{ label: 'step' }, { label: 'a (raw)' }, { label: 'a' }], scales: { x: { min: 0, max: 15 } } } as unknown as Plotted;
  const v = visibleData(u, [
    { series: 1, x: 5, y: Number.NaN },
    { series: 1, x: 10, y: -Infinity },
    { series: 1, x: 17, y: Infinity }, // outside the range
    { series: 9, x: 3, y: Number.NaN }, // no such series shown
  ]);
  t.same(v.x, [0, 5, 10, 10]);
  t.equal(toCsv(v), 'step,a (raw),a\n0,1,1\n5,NaN,\n10,-Infinity,\n10,2,1.5\n');
  t.same(JSON.parse(toJson(v)).series[0].values, [1, 'NaN', '-Infinity', 2]);
});

t.test('file names', async (t) => {
  t.equal(fileName('train', 'loss', 'csv'), 'train-loss.csv');
  t.equal(fileName('grad/layer1', 'w norm', 'png'), 'grad_layer1-w_norm.png');
});
