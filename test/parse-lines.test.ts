/** parseJsonLine, lineToRow and parseLines: JSONL text in any chunking → row objects, NaN/Infinity restored, bad lines numbered. */
import { Readable } from 'node:stream';
import t from 'tap';
import { isRowlogError } from '../lib/core/errors.js';
import { lineToRow, parseJsonLine, parseLines } from '../lib/format/parse-lines.js';
import type { ParseLinesOptions } from '../lib/format/parse-lines.js';

async function rowsOf(chunks: Array<string | Buffer>, opts?: ParseLinesOptions): Promise<unknown[]> {
  const rows: unknown[] = [];
  for await (const row of Readable.from(chunks, { objectMode: false }).pipe(parseLines(opts))) rows.push(row);
  return rows;
}

t.test('parseJsonLine restores bare NaN and ±Infinity outside strings only', async (t) => {
  t.same(parseJsonLine('{"a":1,"b":"x"}'), { a: 1, b: 'x' });
  const v = parseJsonLine('{"nan":NaN,"pinf":Infinity,"ninf":-Infinity,"s":"NaN","t":"a \\"NaN\\" Infinity","arr":[NaN, -Infinity]}') as Record<string, unknown>;
  t.ok(Number.isNaN(v.nan));
  t.equal(v.pinf, Infinity);
  t.equal(v.ninf, -Infinity);
  t.equal(v.s, 'NaN', 'a string "NaN" stays a string');
  t.equal(v.t, 'a "NaN" Infinity', 'tokens inside strings (with escaped quotes) are untouched');
  t.ok(Number.isNaN((v.arr as number[])[0]));
  t.equal((v.arr as number[])[1], -Infinity);
  const esc = parseJsonLine('{"a":"\\u0000NaN","b":NaN}') as Record<string, unknown>;
  t.equal(esc.a, '\u0000NaN', 'a string that looks like the NaN sentinel stays a string');
  t.ok(Number.isNaN(esc.b));
  t.same(parseJsonLine('{"NaN":1}'), { NaN: 1 });
  for (const bad of ['{"a":}', '{"a":NaNx}', '{"a":-NaN}', '{"a":+Infinity}', '{"a":"NaN}', 'NaN NaN', '{"a": Infinit}']) {
    t.throws(() => parseJsonLine(bad), SyntaxError, bad);
  }
});

t.test('parseLines: any chunking, \\r\\n, blank lines skipped, the last line without a line end kept', async (t) => {
  const text = '{"a":1}\r\n\n{"a":NaN}\n   \n{"s":"é ü"}\n{"a":3}';
  const expected = [{ a: 1 }, { a: NaN }, { s: 'é ü' }, { a: 3 }];
  t.same(await rowsOf([text]), expected);
  const bytes = Buffer.from(text);
  t.same(await rowsOf([...bytes].map((b) => Buffer.from([b]))), expected, 'one byte at a time (split UTF-8)');
});

t.test('parseLines skips bad lines and reports their 1-based numbers; strict errors naming the line', async (t) => {
  const text = '{"a":1}\nnot json\n\n[1,2]\n{"a":2}\n"str"\n{"a":\n';
  const bad: Array<[number, string]> = [];
  const rows = await rowsOf([text], { onBadLine: (n, line, err) => (t.type(err, Error), bad.push([n, line])) });
  t.same(rows, [{ a: 1 }, { a: 2 }]);
  t.same(bad, [[2, 'not json'], [4, '[1,2]'], [6, '"str"'], [7, '{"a":']]);
  const err = await rowsOf([text], { strict: true }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isRowlogError(err), 'a RowlogError');
  t.match(err, { code: 'ERR_BAD_LINE', message: /^line 2\b/ });
});

t.test('lineToRow: a JSON object line is a row; blank lines are silently none; others are told why', async (t) => {
  const told: Array<[string, string]> = [];
  const onBad = (err: SyntaxError, why: string) => told.push([why, err.name]);
  t.same(lineToRow('{"a":1,"b":NaN}', onBad), { a: 1, b: NaN });
  t.same(lineToRow('  {"a":1}\r', onBad), { a: 1 }, 'surrounding whitespace is fine');
  for (const blank of ['', '   ', '\t\r']) t.equal(lineToRow(blank, onBad), undefined, JSON.stringify(blank));
  t.strictSame(told, [], 'blank lines are not reported');
  for (const other of ['plain text', '{"a":', '[1,2]', '3', 'null', '"s"', 'NaN']) t.equal(lineToRow(other, onBad), undefined, other);
  t.strictSame(told, [
    ['notJson', 'SyntaxError'], ['notJson', 'SyntaxError'],
    ['notObject', 'SyntaxError'], ['notObject', 'SyntaxError'], ['notObject', 'SyntaxError'], ['notObject', 'SyntaxError'], ['notObject', 'SyntaxError'],
  ]);
  t.equal(lineToRow('plain text'), undefined, 'without onBad nothing is told');
});
