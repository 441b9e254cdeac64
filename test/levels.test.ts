import t from 'tap';
import { Level, levelName, registerLevel, toLevel } from '../lib/core/levels.js';

t.test('built-in levels have noko numbers', async (t) => {
  t.same({ ...Level }, { TRACE: 5, DEBUG: 10, INFO: 20, WARNING: 30, RESULTS: 35, ERROR: 40, CRITICAL: 50 });
  t.throws(() => ((Level as Record<string, number>).INFO = 1));
});

t.test('names are case-insensitive; numbers pass through', async (t) => {
  t.equal(toLevel('info'), 20);
  t.equal(toLevel('Results'), 35);
  t.equal(toLevel(7), 7);
  t.equal(levelName(35), 'RESULTS');
  t.equal(levelName(36), '36');
});

t.test('unknown level names and non-numbers are option errors naming the option', async (t) => {
  t.throws(() => toLevel('LOUD', 'min'), { name: 'RangeError', code: 'ERR_INVALID_OPTION', message: /^min: unknown level "LOUD"/ });
  t.throws(() => toLevel(NaN), { code: 'ERR_INVALID_OPTION' });
});

t.test('registerLevel adds a name usable everywhere a level is', async (t) => {
  registerLevel('verbose', 7);
  t.equal(toLevel('VERBOSE'), 7);
  t.equal(toLevel('verbose'), 7);
  registerLevel('VERBOSE', 7); // same number again: fine
  t.throws(() => registerLevel('verbose', 8), { name: 'RangeError', message: /already 7/ });
  t.throws(() => registerLevel('no spaces', 1), { name: 'TypeError' });
  t.throws(() => registerLevel('LOUDER', Infinity), { name: 'RangeError' });
});
