/** lib/serve/snapshot.ts: lining up a tail with the snapshot it follows. */
import t from 'tap';
import { alignTail } from '../lib/serve/snapshot.js';

t.test('alignTail: where the rows a tail starts with go past the snapshot', async (t) => {
  const k = (s: string) => s.split('');
  t.equal(alignTail(k('abcde'), k('abc')), 3, 'after the snapshot\'s last row');
  t.equal(alignTail(k('abc'), k('abc')), 3, 'nothing new');
  t.equal(alignTail(k('cde'), []), 0, 'an empty snapshot: all new');
  t.equal(alignTail(k('abcd'), k('abcX')), 3, 'the snapshot read a last line the writer had not ended: after the one before');
  t.equal(alignTail(k('abcXd'), k('abcX')), 4, 'and that line, ended since, is not sent twice');
  t.equal(alignTail(k('abababab'), k('abab')), 8, 'identical repeated rows: the last match (none sent twice)');
  t.equal(alignTail(k('zab'), k('xab')), 0, 'rows before the match differ: not the same place');
  t.equal(alignTail(k('pqr'), k('abc')), 0, 'replaced file: all of them');
});
