/**
 * The line splitter (lib/format/line-split.ts): for any bytes cut into any chunks, the lines
 * are exactly those of `split(/\r?\n/)` (bytes and text alike), a line over the bound is reported
 * with its number and never held, and a torn last line can be dropped.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import t from 'tap';
import { LineSplitter, lineTransform } from '../lib/format/line-split.js';

/** Splits `bytes` cut at `cuts` with a splitter of bound `max`: its lines (as text or bytes) and long lines. */
function split(bytes: Buffer, cuts: number[], max: number, text: boolean): { lines: Array<[number, string]>; long: Array<[number, number]>; held: number } {
  const lines: Array<[number, string]> = [];
  const long: Array<[number, number]> = [];
  let held = 0;
  const sink = {
    onLine: (l: Buffer | string, n: number) => lines.push([n, typeof l === 'string' ? l : l.toString('latin1')]),
    onLongLine: (n: number, b: number) => long.push([n, b]),
  };
  const s = text ? new LineSplitter<string>(sink, { maxLineBytes: max, text: true }) : new LineSplitter(sink, { maxLineBytes: max });
  let at = 0;
  for (const c of [...cuts.filter((c) => c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    s.write(bytes.subarray(at, Math.max(at, c)));
    held = Math.max(held, s.pendingBytes);
    at = Math.max(at, c);
  }
  s.end();
  return { lines, long, held };
}

/** What the lines should be: `split(/\r?\n/)`, minus a last empty piece, long ones reported instead. */
function expected(bytes: Buffer, max: number): { lines: Array<[number, string]>; long: Array<[number, number]> } {
  const pieces = bytes.toString('latin1').split('\n');
  if (pieces.at(-1) === '') pieces.pop();
  const lines: Array<[number, string]> = [];
  const long: Array<[number, number]> = [];
  pieces.forEach((p, i) => {
    if (p.length > max) long.push([i + 1, p.length]);
    else lines.push([i + 1, p.endsWith('\r') ? p.slice(0, -1) : p]);
  });
  return { lines, long };
}

const bytesArb = fc
  .array(fc.oneof(fc.constantFrom(10, 13, 0x61, 0x7b, 0xc3, 0xa9), fc.integer({ min: 0, max: 255 })), { maxLength: 300 })
  .map((a) => Buffer.from(a));

t.test('any bytes in any chunks give the lines of split(/\\r?\\n/), long ones reported by number', async (t) => {
  fc.assert(
    fc.property(bytesArb, fc.array(fc.nat({ max: 300 }), { maxLength: 20 }), fc.integer({ min: 1, max: 40 }), (bytes, cuts, max) => {
      const got = split(bytes, cuts, max, false);
      const want = expected(bytes, max);
      if (JSON.stringify(got.lines) !== JSON.stringify(want.lines)) return false;
      if (JSON.stringify(got.long) !== JSON.stringify(want.long)) return false;
      return got.held <= max; // never more than the bound held
    }),
    { numRuns: 2000 },
  );
  t.pass('bytes: 2000 random inputs and cuts');
});

t.test('text mode gives the same lines, decoded as UTF-8 (a character split across chunks too)', async (t) => {
  const input = Buffer.from('héllo\r\nwörld\n\n€ end');
  for (let cut = 0; cut <= input.length; cut++) {
    const lines: string[] = [];
    const s = new LineSplitter<string>({ onLine: (l) => lines.push(l), onLongLine: () => t.fail('no long line') }, { text: true });
    s.write(input.subarray(0, cut));
    s.write(input.subarray(cut));
    s.end();
    t.same(lines, ['héllo', 'wörld', '', '€ end'], `cut at ${cut}`);
  }
});

t.test('discard drops a torn last line; end keeps it', async (t) => {
  const lines: string[] = [];
  const s = new LineSplitter<string>({ onLine: (l) => lines.push(l), onLongLine: () => undefined }, { text: true });
  s.write(Buffer.from('a\nb'));
  t.equal(s.partial, true);
  t.equal(s.discard(), true);
  s.end();
  t.same(lines, ['a']);
  t.equal(s.discard(), false, 'nothing left');
});

t.test('lineTransform: a stream of rows out, strings in too, dropPartial at the end', async (t) => {
  const out: unknown[] = [];
  const long: number[] = [];
  await pipeline(
    Readable.from(['{"a":1}\n{"a"', ':2}\n', 'x'.repeat(50), '\n{"a":3}']),
    lineTransform((l, n) => ({ n, l }), { maxLineBytes: 20, onLongLine: (n) => long.push(n), dropPartial: () => true }),
    new Writable({ objectMode: true, write: (v, _e, cb) => (out.push(v), cb()) }),
  );
  t.same(out, [
    { n: 1, l: '{"a":1}' },
    { n: 2, l: '{"a":2}' },
  ]);
  t.same(long, [3]);
});
