/** Entry building (lib/core/ingest.ts): per-table steps. Plain-row `$`-metadata is tested through `summarize()` (summarize.test.ts) and the logger. */
import t from 'tap';
import { TableSteps } from '../lib/core/ingest.js';

t.test('TableSteps counts per table, honours given steps, saves and restores', async (t) => {
  const steps = new TableSteps();
  t.strictSame([steps.next('a'), steps.next('a'), steps.next('b'), steps.next('a')], [0, 1, 0, 2]);
  t.equal(steps.next('b', 10), 10, 'a given step is used');
  t.equal(steps.next('b'), 11, 'and counting continues from it');
  for (const [i, ignored] of [NaN, Infinity, '5', undefined, null].entries()) t.equal(steps.next('c', ignored), i, `${String(ignored)} is ignored`);
  t.strictSame(steps.toJSON(), { a: 2, b: 11, c: 4 });
  t.equal(JSON.stringify(steps), '{"a":2,"b":11,"c":4}');

  const resumed = new TableSteps();
  resumed.restore({ a: 5, bad: 'x', inf: Infinity, __proto__x: 1 });
  t.equal(resumed.next('a'), 6);
  t.equal(resumed.next('bad'), 0, 'a non-number is ignored');
  t.equal(resumed.next('inf'), 0, 'a non-finite number is ignored');
  t.equal(resumed.next('__proto__x'), 2);
});
