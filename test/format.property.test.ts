/**
 * The compiled row encoders (lib/format/json-line.ts, lib/format/csv-line.ts, issue 9) against the generic path
 * they shortcut: byte-identical JSONL and CSV lines for arbitrary keys and values (NaN,
 * ±Infinity, -0, strings needing JSON or CSV escapes, lone surrogates, booleans, null,
 * `__proto__` and integer-like keys), for metadata of any number, and through the sinks for
 * tables whose key set changes from row to row (so encoders are built, bypassed and rebuilt).
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import type { Entry, Scalar } from '../lib/core/entry.js';
import { compileCsvLine, csvLineGeneric } from '../lib/format/csv-line.js';
import type { CsvSource } from '../lib/format/csv-line.js';
import { COMPILE_AFTER, compileJsonLine, jsonLine, jsonLineGeneric, KeyOrder } from '../lib/format/json-line.js';
import { csvSink } from '../sinks/csv.js';
import { jsonlSink } from '../sinks/jsonl.js';

type Row = Record<string, Scalar>;

const number = fc.oneof(
  fc.double(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, 2 ** 53),
  fc.integer(),
);
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }), // lone surrogates
  fc.constantFrom('', ' a', 'a ', '"', 'a,b', 'x\ny', '\r', 'true', 'false', 'NaN', '-Infinity', '1e5', '.5', '\u2028', '\\', '\u0000'),
);
const scalar: fc.Arbitrary<Scalar> = fc.oneof(number, text, fc.boolean(), fc.constant(null));
const key = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', '0', '1', '01', '4294967295', 'a/b', 'x.mean', '$step', '"', "'", '\\', '\n', '${x}', '`'));

/** A data object with these members in this order, `__proto__` included as an own key. */
function data(pairs: ReadonlyArray<readonly [string, Scalar]>): Row {
  const d: Row = {};
  for (const [k, v] of pairs) Object.defineProperty(d, k, { value: v, enumerable: true, writable: true, configurable: true });
  return d;
}

const meta = fc.record({ step: number, time: number, level: number, table: fc.oneof(fc.string(), fc.constant('train')) });
const rowPairs = fc.uniqueArray(fc.tuple(key, scalar), { selector: (p) => p[0], maxLength: 40 });

function layoutOf(d: Row): { keys: string[]; quoted: string[] } {
  const keys = Object.keys(d).sort();
  return { keys, quoted: keys.map((k) => `${JSON.stringify(k)}:`) };
}

t.test('compiled JSONL line = generic line, for any keys, values and metadata', (t) => {
  fc.assert(
    fc.property(meta, rowPairs, fc.boolean(), fc.oneof(fc.constant(''), fc.string().map((s) => `,"$seq":${JSON.stringify(s)}`)), (m, pairs, withTable, extra) => {
      const entry: Entry<Row> = { ...m, data: data(pairs) };
      const layout = layoutOf(entry.data);
      const enc = compileJsonLine(layout.keys);
      if (enc === null) throw new Error('code generation unavailable');
      const want = jsonLineGeneric(entry, layout, withTable, extra);
      if (enc(entry, withTable, extra) !== want) return false;
      // …and the generic text is the JSON the key order promises (bare NaN/±Infinity aside).
      // (a data key named like a metadata one is renamed by summarize, so it cannot occur here)
      if (pairs.some(([k, v]) => k.startsWith('$') || (typeof v === 'number' && !Number.isFinite(v))) || ![m.step, m.time, m.level].every(Number.isFinite)) return true;
      const parsed = JSON.parse(want) as Record<string, unknown>;
      return pairs.every(([k, v]) => Object.is(parsed[k], v === 0 ? 0 : v));
    }),
    { numRuns: 400 },
  );
  t.pass('400 rows');
  t.end();
});

const source: fc.Arbitrary<CsvSource> = fc.oneof(
  key,
  fc.constant(null),
  fc.constantFrom(...(['step', 'time', 'level', 'table'] as const)).map((meta) => ({ meta })),
);

t.test('compiled CSV line = generic line, for any column plan, keys present or missing', (t) => {
  fc.assert(
    fc.property(meta, rowPairs, fc.array(source, { maxLength: 40 }), (m, pairs, extraSources) => {
      const entry: Entry<Row> = { ...m, data: data(pairs) };
      // Columns fed by the row's keys, by keys it lacks, by metadata and by nothing, shuffled.
      const sources: CsvSource[] = [...pairs.map(([k]) => k), ...extraSources];
      const enc = compileCsvLine(sources);
      if (enc === null) throw new Error('code generation unavailable');
      return enc(entry) === csvLineGeneric(entry, sources);
    }),
    { numRuns: 400 },
  );
  t.pass('400 column plans');
  t.end();
});

/** Rows of one table drawn from a few key sets, in runs long enough to compile and switch. */
const dataKey = key.filter((k) => !['$step', '$time', '$level', '$table'].includes(k)); // summarize renames those
const rowSequence = fc
  .tuple(fc.array(fc.uniqueArray(dataKey, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 2 * COMPILE_AFTER + 2 })), { minLength: 1, maxLength: 8 }))
  .chain(([keySets, runs]) => {
    const shapes = runs.flatMap(([which, len]) => Array.from({ length: len }, () => keySets[which % keySets.length] as string[]));
    return fc.tuple(...shapes.map((keys) => fc.tuple(...keys.map((k) => fc.tuple(fc.constant(k), scalar)))));
  });

t.test('jsonLine through a KeyOrder while the key set changes = generic line of each row', (t) => {
  fc.assert(
    fc.property(rowSequence, (rows) => {
      const order = new KeyOrder();
      return rows.every((pairs, i) => {
        const entry: Entry<Row> = { table: 't', level: 5, step: i, time: 1_700_000_000_000 + i, data: data(pairs) };
        return jsonLine(entry, order, false) === jsonLineGeneric(entry, layoutOf(entry.data), false);
      });
    }),
    { numRuns: 150 },
  );
  t.pass('150 sequences');
  t.end();
});

t.test('jsonlSink and csvSink files: every line as the generic path writes it, key sets changing', async (t) => {
  const samples = fc.sample(rowSequence, { numRuns: 30, seed: 9 });
  let n = 0;
  for (const rows of samples) {
    const dir = t.testdir({});
    // The first row holds every key, so the CSV header is fixed and each line can be checked alone.
    const all = new Map<string, Scalar>();
    for (const pairs of rows) for (const [k, v] of pairs) if (!all.has(k)) all.set(k, v);
    const entries: Array<Entry<Row>> = [[...all], ...rows].map((pairs, i) => ({ table: 't', level: 5, step: i, time: 1_700_000_000_000 + i, data: data(pairs) }));
    const jsonl = jsonlSink({ dir });
    const csv = csvSink({ dir });
    for (const e of entries) {
      jsonl.write(e);
      csv.write(e);
    }
    await Promise.all([jsonl, csv].map((s) => new Promise((resolve) => s.end(resolve))));
    const jsonLines = fs.readFileSync(path.join(dir, 't.jsonl'), 'utf8').split(/(?<=\n)/);
    t.same(jsonLines, entries.map((e) => jsonLineGeneric(e, layoutOf(e.data), false)), 'jsonl lines');
    const header = Object.keys(entries[0]?.data ?? {}).sort();
    const csvText = fs.readFileSync(path.join(dir, 't.csv'), 'utf8');
    const expected = entries.map((e) => {
      const sources: CsvSource[] = [{ meta: 'step' }, { meta: 'time' }, { meta: 'level' }, ...header.map((k) => (Object.hasOwn(e.data, k) ? k : null))];
      return `${csvLineGeneric(e, sources)}\n`;
    });
    t.ok(csvText.endsWith(expected.join('')), 'csv lines');
    n += entries.length;
  }
  t.ok(n > 100, `${n} rows checked`);
});
