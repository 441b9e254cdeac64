/** web/group.ts: a group of runs as one mean line with a band, on common x bins. */
import t from 'tap';
import { binCentres, extent, groupLine, groupRuns, resample } from '../web/group.js';

t.test('extent and bin centres', async (t) => {
  t.same(extent([{ x: [2, 5], y: [0, 0] }, { x: [], y: [] }, { x: [0, 3], y: [0, 0] }]), { min: 0, max: 5 });
  t.equal(extent([{ x: [], y: [] }]), undefined);
  t.same(binCentres(0, 10, 5), [1, 3, 5, 7, 9]);
  t.same(binCentres(4, 4, 100), [4], 'one bin when min = max');
  t.same(binCentres(0, 1, 0.5), [0.5], 'at least one bin');
});

t.test('resample: the mean in a bin, the line between neighbours in an empty one, null outside the run', async (t) => {
  // bins of width 1 over 0..6: centres 0.5 … 5.5
  const r = { x: [0.2, 0.8, 3, 4.1], y: [1, 3, 10, 20] };
  t.same(resample(r, 0, 6, 6), [2, 3 + (7 * 0.7) / 2.2, 3 + (7 * 1.7) / 2.2, 10, 20, null]);
  t.same(resample({ x: [3], y: [7] }, 0, 6, 6), [null, null, null, 7, null, null], 'a single point: its bin only');
  t.same(resample({ x: [2, 2, 9], y: [1, 3, 5] }, 0, 4, 2), [null, 2], 'points outside the range are left out; the bin before the first is null');
  t.same(resample({ x: [1, 1], y: [4, 6] }, 1, 1, 10), [5], 'one bin');
  t.same(resample({ x: [0, 1, 1, 3], y: [0, 2, 4, 6] }, 0, 4, 4), [0, 3, 5.5, 6], 'an empty bin after repeated x: the line from the last of them');
});

t.test('groupLine: per bin the mean over the runs with a value, and a min-max or ±std band', async (t) => {
  const runs = [
    { x: [0, 1, 2, 3], y: [1, 1, 1, 1] },
    { x: [0, 1, 2, 3], y: [3, 3, 3, 3] },
    { x: [0, 1], y: [5, 5] },
  ];
  const mm = groupLine(runs, 2, 'minmax');
  t.same(mm?.x, [0.75, 2.25]);
  t.same(mm?.mean, [3, 2]);
  t.same(mm?.lo, [1, 1]);
  t.same(mm?.hi, [5, 3]);
  t.same(mm?.n, [3, 2], 'the third run stops before the second bin');
  const sd = groupLine(runs, 2, 'std');
  t.same(sd?.mean, [3, 2]);
  t.ok(Math.abs((sd?.hi[0] as number) - (3 + Math.sqrt(8 / 3))) < 1e-12, 'mean + population std');
  t.same(sd?.lo[1], 1);
  t.equal(groupLine([{ x: [], y: [] }], 10, 'std'), undefined, 'no points: no line');
  // A one-step spike in one seed: min–max reaches it (the bin's mean alone would dilute it to 3.25).
  const spike = groupLine([{ x: [0, 1, 2, 3], y: [1, 10, 1, 1] }, { x: [0, 1, 2, 3], y: [1, 1, 1, 1] }], 2, 'minmax');
  t.same(spike?.hi, [10, 1], 'the band’s top: the spike');
  t.same(spike?.mean, [3.25, 1], 'the mean: of the runs’ bin means');
  const gap = groupLine([{ x: [0, 1], y: [1, 1] }], 4, 'minmax', { min: 0, max: 4 });
  t.same(gap?.mean, [1, 1, null, null], 'bins no run reaches are null');
  t.same(gap?.n, [1, 1, 0, 0]);
});

t.test('groupRuns: by the value of one parameter, in the order checked; runs without it together', async (t) => {
  const params = new Map<string, Record<string, unknown>>([
    ['a', { lr: 0.1, seed: 1 }],
    ['b', { lr: 0.01, seed: 1 }],
    ['c', { lr: 0.1, seed: 2 }],
    ['d', { seed: 3 }],
    ['e', { lr: null }],
  ]);
  t.same(groupRuns(['a', 'b', 'c', 'd', 'e', 'f'], params, 'lr'), [
    { value: '0.1', ids: ['a', 'c'], label: 'lr=0.1 (2 runs)' },
    { value: '0.01', ids: ['b'], label: 'lr=0.01 (1 run)' },
    { value: '–', ids: ['d', 'e', 'f'], label: 'lr=– (3 runs)' },
  ]);
});
