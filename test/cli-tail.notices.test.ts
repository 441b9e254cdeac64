/**
 * What `rowlog tail` says on stderr when rows do not fit its look-back (lib/cli/tail.ts's
 * notices, issue 11 §1): the last line too long, only some lines fitting, a followed line skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { runTail } from '../lib/cli/tail.js';
import { tmpdir } from './helpers.js';
import { until } from './wait.js';

/** runTail into strings. */
function capture() {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = { out: '', err: '' };
  out.on('data', (b: Buffer) => (text.out += b));
  err.on('data', (b: Buffer) => (text.err += b));
  return { out, err, text };
}

const long = (n: number) => `{"$step":0,"blob":"${'x'.repeat(n)}"}`;

t.test('the last line longer than the look-back is said, not shown; so are lines before the ones that fit', async (t) => {
  const dir = tmpdir(t);
  const cases: Array<[string, string, RegExp]> = [
    ['one.jsonl', `${long(2000)}\n`, /^rowlog: tail: .*one\.jsonl: the last line is longer than 1000 bytes; not shown\n$/],
    ['two.jsonl', `${long(2000)}\n{"$step":1}\n`, /^rowlog: tail: .*two\.jsonl: only the last 1 line fits in 1000 bytes; the lines before are not shown\n$/],
    ['three.jsonl', `${long(2000)}\n{"$step":1}\n{"$step":2}\n`, /: only the last 2 lines fit in 1000 bytes; /],
  ];
  for (const [name, body, said] of cases) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    const c = capture();
    await runTail([file], { lines: 3, maxLookbackBytes: 1000, out: c.out, err: c.err });
    t.match(c.text.err, said, name);
    t.notMatch(c.text.out, /xxxx/, `${name}: the long line is not printed`);
  }
});

t.test('following: a line longer than the look-back is skipped with a line saying so, and the rows after it come', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'f.jsonl');
  fs.writeFileSync(file, '{"$step":0}\n');
  const c = capture();
  const stop = new AbortController();
  const done = runTail([file], { lines: 1, follow: true, pollMs: 10, maxLookbackBytes: 1000, out: c.out, err: c.err, signal: stop.signal });
  await until(() => c.text.out.includes('"$step":0'), 'the first row');
  fs.appendFileSync(file, `${long(5000)}\n{"$step":2}\n`);
  await until(() => c.text.out.includes('"$step":2'), 'the row after the long line');
  stop.abort();
  await done;
  t.match(c.text.err, /^rowlog: tail: .*f\.jsonl: a line longer than 1000 bytes was skipped\n$/);
  t.notMatch(c.text.out, /xxxx/);
});
