/** The name rule (lib/core/entry.ts, docs/DESIGN.md §2): isValidName, assertName, and nameSegment for names taken from elsewhere. */
import t from 'tap';
import { assertName, isValidName, nameSegment } from '../lib/core/entry.js';

t.test('isValidName: segments of [A-Za-z0-9_.-] joined by /, never leaving the folder', async (t) => {
  for (const ok of ['main', 'grad/layer1', 'a.b-c_d', '.hidden', 'x'.repeat(255)]) t.ok(isValidName(ok), ok);
  for (const bad of ['', '.', '..', 'a/../b', '/abs', 'a//b', 'a/', 'sp ace', 'nul\0', 'é', 'x'.repeat(256), 5, null]) {
    t.notOk(isValidName(bad), JSON.stringify(bad));
  }
  t.ok(isValidName('grad/layer1'), 'asked again (cached)');
  t.notOk(isValidName('grad/layer1', true), 'one segment only');
  t.throws(() => assertName('a/../b'), { code: 'ERR_INVALID_TABLE' });
});

t.test('nameSegment makes any text one valid segment', async (t) => {
  t.equal(nameSegment('train.py'), 'train.py');
  t.equal(nameSegment('my run: 2/3 (ü)'), 'my_run__2_3____');
  t.equal(nameSegment(''), '_');
  t.equal(nameSegment('.'), '_.');
  t.equal(nameSegment('..'), '_..');
  t.equal(nameSegment('x'.repeat(300)).length, 255);
  for (const s of ['', '.', '..', 'a/b', 'sp ace', '\0', 'x'.repeat(300), '../..']) t.ok(isValidName(nameSegment(s), true), JSON.stringify(s));
});
