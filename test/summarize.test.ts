/**
 * summarize (docs/DESIGN.md §3): `summarizeRow` flattening rules, numeric statistics, safety limits
 * and hostile values, `declareSummarizer`, the `summarize()` Transform (Entries, plain rows,
 * `$`-metadata, warnings once per problem per table, option errors). `TableSteps`: ingest.test.ts.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import t from 'tap';
import type { RowlogWarning } from '../lib/core/warnings.js';
import type { StatName } from '../transforms/stats.js';
import { declareSummarizer } from '../transforms/summarizers.js';
import { summarize, summarizeRow } from '../transforms/summarize.js';
import type { SummarizeOptions, SummarizeRowOptions } from '../transforms/summarize.js';
import { collector, flat } from './helpers.js';

/** Pipes `rows` through `summarize(opts)`; returns the Entries and the 'warning' events. */
async function through(rows: unknown[], opts: SummarizeOptions = {}) {
  const stage = summarize(opts);
  const warnings: RowlogWarning[] = [];
  stage.on('warning', (w: RowlogWarning) => warnings.push(w));
  const sink = collector();
  await pipeline(Readable.from(rows), stage, sink);
  return { entries: sink.entries, warnings };
}

const ALL_STATS: StatName[] = ['mean', 'min', 'max', 'std', 'norm', 'len', 'nonfinite'];

// ---------------------------------------------------------------------------------------
// Key paths

t.test('nested objects and Maps join keys with /; keys `_` are skipped', async (t) => {
  t.strictSame(summarizeRow({ a: { b: 1 } }), { 'a/b': 1 });
  t.strictSame(summarizeRow({ a: { b: { c: 'x' } }, d: true }), { 'a/b/c': 'x', d: true });
  t.strictSame(
    summarizeRow({ _: 1, a: { _: 2, b: 3 }, m: new Map<string, unknown>([['_', 4], ['k', 5], ['n', { _: 6, z: 7 }]]) }),
    { 'a/b': 3, 'm/k': 5, 'm/n/z': 7 },
  );
});

t.test('a key clash gives the later key _1, then _2', async (t) => {
  const row = summarizeRow({ a: { b: 1 }, 'a/b': 2 });
  t.strictSame(Object.keys(row), ['a/b', 'a/b_1']);
  t.strictSame(row, { 'a/b': 1, 'a/b_1': 2 });
  // Three Map keys that all print as "1".
  t.strictSame(summarizeRow(new Map<unknown, string>([[1, 'x'], ['1', 'y'], [1n, 'z']])), { 1: 'x', '1_1': 'y', '1_2': 'z' });
  // A statistic key clashes like any other.
  t.strictSame(summarizeRow({ w: [1, 3], 'w.mean': 'mine' }, { stats: ['mean'] }), { 'w.mean': 2, 'w.mean_1': 'mine' });
});

t.test('reserved metadata keys in data get a suffix', async (t) => {
  t.strictSame(summarizeRow({ $step: 1, $time: 2, $level: 3, $table: 'x', $seq: 4, $other: 5 }), {
    $step_1: 1,
    $time_1: 2,
    $level_1: 3,
    $table_1: 'x',
    $seq_1: 4,
    $other: 5,
  });
});

t.test('Map keys of any type become path segments', async (t) => {
  const keyed = new Map<unknown, number>([
    [true, 1],
    [null, 2],
    [Symbol('s'), 3],
    [{ toString: () => 'custom' }, 4],
    [Object.create(null) as object, 5], // no toString at all: must not throw
    [() => 0, 6],
  ]);
  t.strictSame(summarizeRow({ m: keyed }), {
    'm/true': 1,
    'm/null': 2,
    'm/Symbol(s)': 3,
    'm/custom': 4,
    'm/[object]': 5,
    'm/[function]': 6,
  });
});

t.test('an own __proto__ key is a normal key and pollutes nothing', async (t) => {
  const row = summarizeRow(JSON.parse('{"__proto__": 5, "nested": {"__proto__": {"polluted": 1}}}') as unknown);
  t.strictSame(Object.keys(row), ['__proto__', 'nested/__proto__/polluted']);
  t.equal(Object.getOwnPropertyDescriptor(row, '__proto__')?.value, 5);
  t.equal(Object.getPrototypeOf(row), Object.prototype);
  t.equal(JSON.stringify(row), '{"__proto__":5,"nested/__proto__/polluted":1}');
  t.equal((({}) as Record<string, unknown>).polluted, undefined);
  t.strictSame(Object.keys(summarizeRow(new Map([['__proto__', 1]]))), ['__proto__']);
});

// ---------------------------------------------------------------------------------------
// Scalars

t.test('scalars: kept, normalized or converted', async (t) => {
  const cases: Array<[string, unknown, unknown]> = [
    ['number', 1.5, 1.5],
    ['string', 's', 's'],
    ['boolean', false, false],
    ['null', null, null],
    ['-0 becomes 0', -0, 0],
    ['NaN', NaN, NaN],
    ['Infinity', Infinity, Infinity],
    ['-Infinity', -Infinity, -Infinity],
    ['safe BigInt', 2n, 2],
    ['largest safe BigInt', BigInt(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
    ['smallest safe BigInt', BigInt(Number.MIN_SAFE_INTEGER), Number.MIN_SAFE_INTEGER],
    ['unsafe BigInt', BigInt(Number.MAX_SAFE_INTEGER) + 1n, '9007199254740992'],
    ['huge BigInt', 2n ** 64n, '18446744073709551616'],
    ['huge negative BigInt', -(2n ** 64n), '-18446744073709551616'],
    ['valid Date', new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)), '2024-01-02T03:04:05.006Z'],
    ['invalid Date', new Date(NaN), null],
    ['boxed Number', new Number(3), 3],
    ['boxed -0', new Number(-0), 0],
    ['boxed String', new String('s'), 's'],
    ['boxed Boolean', new Boolean(true), true],
    ['boxed BigInt', Object(5n) as object, 5],
  ];
  for (const [name, input, expected] of cases) {
    const row = summarizeRow({ v: input });
    t.strictSame(Object.keys(row), ['v'], name);
    t.ok(Object.is(row.v, expected), `${name}: ${String(row.v)}`);
  }
});

t.test('undefined, functions and symbols are skipped', async (t) => {
  t.strictSame(summarizeRow({ u: undefined, f() {}, s: Symbol('x'), k: 1, n: { g: () => 1 } }), { k: 1 });
});

t.test('a value that is not an object row is kept under `value`', async (t) => {
  const cases: Array<[string, unknown, Record<string, unknown>]> = [
    ['number', 5, { value: 5 }],
    ['string', 'x', { value: 'x' }],
    ['boolean', true, { value: true }],
    ['null', null, { value: null }],
    ['undefined', undefined, {}],
    ['numeric array', [1, 3], { 'value.mean': 2, 'value.min': 1, 'value.max': 3, 'value.std': 1 }],
    ['array of one number', [4], { value: 4 }],
    ['other array', [{ a: 1 }, 'b'], { 'value/0/a': 1, 'value/1': 'b' }],
    ['typed array', Float32Array.of(1, 3), { 'value.mean': 2, 'value.min': 1, 'value.max': 3, 'value.std': 1 }],
    ['Date', new Date(0), { value: '1970-01-01T00:00:00.000Z' }],
    ['boxed Number', new Number(7), { value: 7 }],
    ['tensor', { dataSync: () => Float32Array.of(2), shape: [1] }, { value: 2 }],
  ];
  for (const [name, input, expected] of cases) t.strictSame(summarizeRow(input), expected, name);
});

// ---------------------------------------------------------------------------------------
// Numeric arrays

t.test('numeric array statistics: mean, min, max, population std', async (t) => {
  const x = Float64Array.from({ length: 10 }, (_, i) => i);
  t.strictSame(summarizeRow({ x }), { 'x.mean': 4.5, 'x.min': 0, 'x.max': 9, 'x.std': 2.8722813232690143 });

  const expected = { 'x.mean': 1, 'x.min': -2, 'x.max': 4, 'x.std': Math.sqrt(5) };
  const kinds: Array<[string, unknown]> = [
    ['plain array', [-2, 0, 2, 4]],
    ['Float32Array', Float32Array.of(-2, 0, 2, 4)],
    ['Int8Array', Int8Array.of(-2, 0, 2, 4)],
    ['Uint8Array (shifted)', Uint8Array.of(0, 2, 4, 6)],
    ['Int32Array', Int32Array.of(-2, 0, 2, 4)],
    ['BigInt64Array', BigInt64Array.of(-2n, 0n, 2n, 4n)],
  ];
  for (const [name, arr] of kinds) {
    const want = name.startsWith('Uint8') ? { ...expected, 'x.mean': 3, 'x.min': 0, 'x.max': 6 } : expected;
    t.strictSame(summarizeRow({ x: arr }), want, name);
  }
});

t.test('length 1 is the value itself; empty writes nothing', async (t) => {
  t.strictSame(summarizeRow({ x: [7] }), { x: 7 });
  t.strictSame(summarizeRow({ x: Float32Array.of(7) }), { x: 7 });
  t.strictSame(summarizeRow({ x: BigInt64Array.of(7n) }), { x: 7 });
  t.ok(Object.is(summarizeRow({ x: [-0] }).x, 0), '[-0] → 0');
  t.strictSame(summarizeRow({ x: [], y: new Float64Array(0), k: 1 }), { k: 1 });
  t.strictSame(summarizeRow({ d: new DataView(new ArrayBuffer(8)), k: 1 }), { k: 1 }, 'a DataView has no numbers to summarize');
});

t.test('std is stable when |mean| ≫ std; over- and underflow are avoided', async (t) => {
  const row = summarizeRow({ x: [1e9, 1e9 + 1, 1e9 + 2] });
  t.equal(row['x.mean'], 1e9 + 1);
  const std = row['x.std'] as number;
  t.ok(Math.abs(std - 0.816496580927726) / 0.816496580927726 < 1e-9, `std ${std}`);

  // The sum or the squares of finite values overflow or underflow: rescaled.
  t.strictSame(summarizeRow({ x: [1e308, 1e308] }), { 'x.mean': 1e308, 'x.min': 1e308, 'x.max': 1e308, 'x.std': 0 });
  t.strictSame(summarizeRow({ x: [1.5e308, -1.5e308] }), { 'x.mean': 0, 'x.min': -1.5e308, 'x.max': 1.5e308, 'x.std': 1.5e308 });
  const tiny = summarizeRow({ x: [1e-200, 3e-200] });
  t.equal(tiny['x.mean'], 2e-200);
  t.ok(Math.abs((tiny['x.std'] as number) / 1e-200 - 1) < 1e-12, `tiny std ${String(tiny['x.std'])}`);
});

t.test('NaN and ±Infinity propagate through the statistics', async (t) => {
  const cases: Array<[string, number[], Record<string, number>]> = [
    ['NaN', [1, NaN, 3], { mean: NaN, min: NaN, max: NaN, std: NaN, norm: NaN, len: 3, nonfinite: 1 }],
    ['+Infinity', [1, Infinity], { mean: Infinity, min: 1, max: Infinity, std: NaN, norm: Infinity, len: 2, nonfinite: 1 }],
    ['-Infinity', [-Infinity, 1], { mean: -Infinity, min: -Infinity, max: 1, std: NaN, norm: Infinity, len: 2, nonfinite: 1 }],
    ['both', [Infinity, -Infinity], { mean: NaN, min: -Infinity, max: Infinity, std: NaN, norm: Infinity, len: 2, nonfinite: 2 }],
    ['NaN and Infinity', [NaN, Infinity, 0], { mean: NaN, min: NaN, max: NaN, std: NaN, norm: NaN, len: 3, nonfinite: 2 }],
  ];
  for (const [name, values, want] of cases) {
    for (const x of [values, Float64Array.from(values)]) {
      const row = summarizeRow({ x }, { stats: ALL_STATS });
      t.strictSame(Object.keys(row), ALL_STATS.map((s) => `x.${s}`), name);
      for (const s of ALL_STATS) t.ok(Object.is(row[`x.${s}`], want[s]), `${name} ${s}: ${String(row[`x.${s}`])}`);
    }
  }
});

t.test('the stats option chooses the statistics written', async (t) => {
  t.strictSame(summarizeRow({ x: [3, 4] }, { stats: ['norm', 'len', 'nonfinite'] }), { 'x.norm': 5, 'x.len': 2, 'x.nonfinite': 0 });
  t.strictSame(summarizeRow({ x: [3, -4] }, { stats: ['max'] }), { 'x.max': 3 });
  t.strictSame(summarizeRow({ x: [0, -0] }, { stats: ['norm', 'mean', 'min', 'max'] }), { 'x.norm': 0, 'x.mean': 0, 'x.min': 0, 'x.max': 0 });
  t.strictSame(summarizeRow({ x: [3, 4], y: 1 }, { stats: [] }), { y: 1 }, 'no stats: arrays write nothing');
  t.strictSame(summarizeRow({ x: [5] }, { stats: ['len'] }), { x: 5 }, 'length 1 is the value whatever the stats');
});

t.test('tensor-likes (dataSync() and shape) are read at call time', async (t) => {
  class FakeTensor {
    constructor(
      readonly values: number[],
      readonly shape: number[],
    ) {}
    dataSync(): Float32Array {
      return Float32Array.from(this.values);
    }
  }
  const plain = { shape: [2], dataSync: () => Float32Array.of(1, 3) };
  t.strictSame(summarizeRow({ w: new FakeTensor([1, 2, 3, 4], [2, 2]), p: plain, s: new FakeTensor([5], []) }), {
    'w.mean': 2.5,
    'w.min': 1,
    'w.max': 4,
    'w.std': Math.sqrt(1.25),
    'p.mean': 2,
    'p.min': 1,
    'p.max': 3,
    'p.std': 1,
    s: 5,
  });
  t.strictSame(summarizeRow({ t: { dataSync: () => [2, 4], shape: [2] } }, { stats: ['mean'] }), { 't.mean': 3 });
  t.strictSame(summarizeRow({ o: { dataSync() {}, n: 1 } }), { 'o/n': 1 }, 'without shape it is a plain object');
});

t.test('summarizing happens at call time: later mutation changes nothing', async (t) => {
  const src = Float32Array.of(1, 2);
  const tensorValues = [1, 2];
  const row = summarizeRow({ src, t: { shape: [2], dataSync: () => Float32Array.from(tensorValues) } });
  src[0] = 100;
  tensorValues[0] = 100;
  t.strictSame(row, { 'src.mean': 1.5, 'src.min': 1, 'src.max': 2, 'src.std': 0.5, 't.mean': 1.5, 't.min': 1, 't.max': 2, 't.std': 0.5 });
});

// ---------------------------------------------------------------------------------------
// Other arrays, Sets

t.test('other arrays and Sets go per index', async (t) => {
  t.strictSame(summarizeRow({ l: [{ a: 1 }, { a: 2 }] }), { 'l/0/a': 1, 'l/1/a': 2 });
  t.strictSame(summarizeRow({ l: [1, 'a', null, undefined, [2, 4]] }), { 'l/0': 1, 'l/1': 'a', 'l/2': null, 'l/4.mean': 3, 'l/4.min': 2, 'l/4.max': 4, 'l/4.std': 1 });
  t.strictSame(summarizeRow({ s: new Set([{ a: 1 }, 'b']) }), { 's/0/a': 1, 's/1': 'b' });
  t.strictSame(summarizeRow({ s: new Set([1, 2]) }), { 's/0': 1, 's/1': 2 }, 'a Set of numbers is not a numeric array');
});

t.test('more than maxArrayItems items are cut, with one warning', async (t) => {
  const items = Array.from({ length: 17 }, (_, i) => `s${i}`);
  const first16 = Object.fromEntries(items.slice(0, 16).map((v, i) => [`l/${i}`, v]));
  for (const [name, l] of [['array', items], ['Set', new Set(items)]] as const) {
    const { row, warnings } = flat({ l, k: 1 });
    t.strictSame(row, { ...first16, k: 1 }, name);
    t.strictSame(warnings.map((w) => [w.code, w.key]), [['W_ARRAY_CUT', 'l']], name);
    t.match(warnings[0]?.message, /'l' has more than 16 items; only the first 16 are kept \(maxArrayItems\)/);
  }
  t.strictSame(flat({ l: items.slice(0, 16) }).warnings, [], 'exactly 16: no warning');
  t.strictSame(flat({ l: ['a', 'b', 'c'] }, { maxArrayItems: 2 }).row, { 'l/0': 'a', 'l/1': 'b' });
  const none = flat({ l: ['a'], k: 1 }, { maxArrayItems: 0 });
  t.strictSame(none.row, { k: 1 });
  t.strictSame(none.warnings.map((w) => w.code), ['W_ARRAY_CUT']);
});

// ---------------------------------------------------------------------------------------
// Safety: cycles, depth, key limit, throwing values

t.test('cycles are skipped with W_CYCLE; the rest of the row is kept', async (t) => {
  const o: Record<string, unknown> = { x: 1 };
  o.self = o;
  const arr: unknown[] = ['a'];
  arr.push(arr);
  const m = new Map<string, unknown>([['k', 2]]);
  m.set('me', m);
  const { row, warnings } = flat({ o, arr, m, after: 3 });
  t.strictSame(row, { 'o/x': 1, 'arr/0': 'a', 'm/k': 2, after: 3 });
  t.strictSame(warnings.map((w) => [w.code, w.key]), [
    ['W_CYCLE', 'o/self'],
    ['W_CYCLE', 'arr/1'],
    ['W_CYCLE', 'm/me'],
  ]);
  t.match(warnings[0]?.message, /'o\/self' refers back to an object that contains it/);
});

t.test('a shared object that is not a cycle is written at each place', async (t) => {
  const shared = { v: 1 };
  const { row, warnings } = flat({ p: shared, q: [shared, shared] });
  t.strictSame(row, { 'p/v': 1, 'q/0/v': 1, 'q/1/v': 1 });
  t.strictSame(warnings, []);
});

t.test('an array that contains itself many times stays cheap', async (t) => {
  const wide: unknown[] = [];
  for (let i = 0; i < 16; i++) wide.push(wide); // 16^8 visits if arrays were not cycle-checked
  const start = Date.now();
  const { row, warnings } = flat({ wide, k: 1 });
  t.ok(Date.now() - start < 1000, 'fast');
  t.strictSame(row, { k: 1 });
  t.equal(warnings.length, 16);
  t.ok(warnings.every((w) => w.code === 'W_CYCLE'));
});

t.test('containers nested deeper than maxDepth are skipped with W_DEPTH', async (t) => {
  let nested: Record<string, unknown> = { v: 9 };
  for (let i = 8; i >= 0; i--) nested = { v: i, a: nested };
  const { row, warnings } = flat(nested);
  const kept = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`${'a/'.repeat(i)}v`, i]));
  t.strictSame(row, kept, 'keys of up to 8 segments');
  t.strictSame(warnings.map((w) => [w.code, w.key]), [['W_DEPTH', 'a/a/a/a/a/a/a/a']]);
  t.match(warnings[0]?.message, /nested deeper than 8 levels/);

  // Leaves (numeric arrays, Dates) are not nesting: kept at the limit.
  const shallow = flat({ a: { d: new Date(0), f: [1, 3], o: { x: 1 }, l: [{ y: 1 }] }, top: 1 }, { maxDepth: 2 });
  t.strictSame(shallow.row, { 'a/d': '1970-01-01T00:00:00.000Z', 'a/f.mean': 2, 'a/f.min': 1, 'a/f.max': 3, 'a/f.std': 1, top: 1 });
  t.strictSame(shallow.warnings.map((w) => [w.code, w.key]), [['W_DEPTH', 'a/o'], ['W_DEPTH', 'a/l']]);
  t.strictSame(flat({ a: { b: 1 }, c: 2 }, { maxDepth: 1 }).row, { c: 2 });
});

t.test('maxKeys: further keys are dropped with one W_KEY_LIMIT', async (t) => {
  const { row, warnings } = flat({ a: 1, b: 2, c: { d: 3, e: 4 }, f: [5, 6], g: 7 }, { maxKeys: 3 });
  t.strictSame(row, { a: 1, b: 2, 'c/d': 3 });
  t.strictSame(warnings.map((w) => w.code), ['W_KEY_LIMIT']);
  t.match(warnings[0]?.message, /more than 3 keys/);
  t.strictSame(flat({ a: 1, b: 2, c: 3 }, { maxKeys: 3 }).warnings, [], 'exactly at the limit: no warning');
  const many = Object.fromEntries(Array.from({ length: 10_050 }, (_, i) => [`k${i}`, i]));
  const big = flat(many);
  t.equal(Object.keys(big.row).length, 10_000, 'default 10,000');
  t.equal(big.warnings.length, 1);
});

t.test('throwing getters and hostile objects skip only their key, with W_THREW', async (t) => {
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  const badMap = new Map([['a', 1]]);
  Object.defineProperty(badMap, Symbol.iterator, {
    value() {
      throw new Error('iteration failed');
    },
  });
  const hostile: Array<[string, unknown, RegExp]> = [
    ['getter', { get inner() { throw new Error('nope'); } }, /reading 'bad\/inner' threw \(nope\)/],
    ['Proxy whose ownKeys throws', new Proxy({}, { ownKeys() { throw new Error('no keys'); } }), /listing the keys of 'bad' threw \(no keys\)/],
    ['Proxy whose getPrototypeOf throws', new Proxy({}, { getPrototypeOf() { throw new Error('no proto'); } }), /'bad' threw \(no proto\)/],
    ['revoked Proxy', revocable.proxy, /'bad' threw/],
    ['Map whose iterator throws', badMap, /'bad' threw \(iteration failed\)/],
    ['tensor whose dataSync throws', { shape: [1], dataSync() { throw new Error('gpu lost'); } }, /dataSync\(\) of 'bad' threw \(gpu lost\)/],
    ['tensor whose shape getter throws', { dataSync: () => [1], get shape() { throw new Error('shape'); } }, /'bad' threw \(shape\)/],
    ['fake Date', Object.create(Date.prototype) as object, /'bad' threw/],
    ['error that cannot be printed', { get x() { throw Object.create(null); } }, /unprintable error/],
  ];
  for (const [name, bad, message] of hostile) {
    const { row, warnings } = flat({ before: 1, bad, after: 2 });
    t.strictSame(row, { before: 1, after: 2 }, name);
    t.strictSame(warnings.map((w) => w.code), ['W_THREW'], name);
    t.match(warnings[0]?.message, message, name);
  }
  // A throwing getter among good siblings of the same object.
  const obj = { a: 1, get b(): number { throw new Error('b'); }, c: 3 };
  t.strictSame(flat({ obj }).row, { 'obj/a': 1, 'obj/c': 3 });
  t.strictSame(flat(revocable.proxy).warnings.map((w) => [w.code, w.key]), [['W_THREW', 'value']], 'a revoked Proxy as the row');
});

// ---------------------------------------------------------------------------------------
// declareSummarizer

class Polar {
  constructor(
    readonly r: number,
    readonly meta: unknown,
  ) {}
}
class LabeledPolar extends Polar {
  readonly label = 'ignored: the base summarizer decides';
}
declareSummarizer(Polar, (value, prefix, dst, recurse) => {
  dst[`${prefix}.r`] = value.r;
  recurse(value.meta, `${prefix}/meta`);
});

t.test('declareSummarizer: matched through the prototype chain, may recurse', async (t) => {
  const meta = { steps: [1, 3], when: new Date(0), _: 'skipped' };
  t.strictSame(summarizeRow({ p: new LabeledPolar(2, meta), q: new Polar(-0, null) }), {
    'p/meta/steps.mean': 2,
    'p/meta/steps.min': 1,
    'p/meta/steps.max': 3,
    'p/meta/steps.std': 1,
    'p/meta/when': '1970-01-01T00:00:00.000Z',
    'p.r': 2,
    'q/meta': null,
    'q.r': 0,
  });
  t.strictSame(summarizeRow(new Polar(1, 'm')), { 'value/meta': 'm', 'value.r': 1 }, 'at the root the prefix is `value`');
  t.strictSame(summarizeRow({ plain: { r: 1, meta: 2 } }), { 'plain/r': 1, 'plain/meta': 2 }, 'plain objects are unaffected');
});

t.test('declareSummarizer: values put in dst are summarized; it wins over Map rules', async (t) => {
  class Histogram extends Map<number, number> {}
  declareSummarizer(Histogram, (h, prefix, dst) => {
    dst[`${prefix}.counts`] = Float64Array.from(h.values());
    dst[`${prefix}.big`] = 2n ** 70n;
    dst[`${prefix}.fn`] = () => 1;
  });
  const h = new Histogram([[0, 1], [1, 3]]);
  t.strictSame(summarizeRow({ h }), { 'h.counts.mean': 2, 'h.counts.min': 1, 'h.counts.max': 3, 'h.counts.std': 1, 'h.big': '1180591620717411303424' });
});

t.test('declareSummarizer: a throwing summarizer or a cycle through recurse warns', async (t) => {
  class Fragile {
    n = 1;
  }
  class SelfRef {
    n = 2;
  }
  declareSummarizer(Fragile, () => {
    throw new Error('broken summarizer');
  });
  declareSummarizer(SelfRef, (v, prefix, dst, recurse) => {
    dst[`${prefix}.n`] = v.n;
    recurse(v, `${prefix}/again`);
  });
  const { row, warnings } = flat({ f: new Fragile(), s: new SelfRef(), k: 1 });
  t.strictSame(row, { 's.n': 2, k: 1 });
  t.strictSame(warnings.map((w) => [w.code, w.key]), [['W_THREW', 'f'], ['W_CYCLE', 's/again']]);
  t.match(warnings[0]?.message, /the summarizer of 'f' threw \(broken summarizer\)/);
});

t.test('declareSummarizer rejects what is not a class or a function', async (t) => {
  const fn = () => undefined;
  t.throws(() => declareSummarizer((() => 0) as unknown as typeof Polar, fn), { name: 'TypeError', code: 'ERR_INVALID_OPTION', message: /^declareSummarizer class:/ });
  t.throws(() => declareSummarizer(5 as unknown as typeof Polar, fn), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => declareSummarizer(Polar, 'x' as unknown as typeof fn), { name: 'TypeError', message: /^declareSummarizer summarizer:/ });
});

// ---------------------------------------------------------------------------------------
// Property: never throws, only Scalars

const anything = fc.anything({
  maxDepth: 4,
  maxKeys: 6,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withBigInt: true,
  withDate: true,
  withNullPrototype: true,
  withBoxedValues: true,
  withObjectString: true,
  withSparseArray: true,
  withUnicodeString: true,
});

/** Values built around `inner` that misbehave: cycles, throwing getters, Proxies, tensors. */
const hostile = fc.tuple(anything, fc.integer({ min: 0, max: 6 })).map(([inner, kind]): unknown => {
  switch (kind) {
    case 0: {
      const o: Record<string, unknown> = { inner };
      o.self = { back: o, list: [o, inner] };
      return o;
    }
    case 1:
      return { inner, get boom(): unknown { throw new Error('getter'); } };
    case 2:
      return new Proxy({ inner }, { ownKeys() { throw new Error('ownKeys'); } });
    case 3: {
      const { proxy, revoke } = Proxy.revocable({ inner }, {});
      revoke();
      return [proxy, inner];
    }
    case 4:
      return { shape: [1], dataSync: () => inner };
    case 5:
      return new Map<unknown, unknown>([[inner, inner], [Object.create(null) as object, { inner }]]);
    default:
      return new Polar(1, inner);
  }
});

const rowOptions = fc.record(
  {
    maxDepth: fc.integer({ min: 1, max: 10 }),
    maxArrayItems: fc.integer({ min: 0, max: 20 }),
    maxKeys: fc.integer({ min: 1, max: 500 }),
    stats: fc.subarray(ALL_STATS),
  },
  { requiredKeys: [] },
);

t.test('property: summarizeRow never throws and writes only Scalars under string keys', async (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.oneof(anything, hostile, fc.dictionary(fc.string(), fc.oneof(anything, hostile))), rowOptions, (value, opts) => {
      runs++;
      const row = summarizeRow(value, opts);
      const keys = Reflect.ownKeys(row);
      if (keys.length > (opts.maxKeys ?? 10_000)) return false;
      for (const k of keys) {
        if (typeof k !== 'string' || k === '$step' || k === '$time' || k === '$level' || k === '$table' || k === '$seq') return false;
        const v: unknown = row[k];
        if (!(v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')) return false;
        if (Object.is(v, -0)) return false;
      }
      return Object.getPrototypeOf(row) === Object.prototype;
    }),
    { numRuns: 600 },
  );
  t.equal(runs, 600);
  t.equal((({}) as Record<string, unknown>).polluted, undefined);
});

// ---------------------------------------------------------------------------------------
// The summarize() Transform

t.test('Entries pass through with their data summarized', async (t) => {
  const before = Date.now();
  const { entries, warnings } = await through([
    { table: 'train', level: 30, step: 7, time: 1234, data: { a: { b: 1 }, w: [1, 3] } },
    { table: 'train', level: 20, data: { k: -0 } },
    { table: 'eval/final', level: 35, step: 2, time: NaN, data: { $step: 9 } },
  ]);
  t.strictSame(warnings, []);
  t.strictSame(entries[0], { table: 'train', level: 30, step: 7, time: 1234, data: { 'a/b': 1, 'w.mean': 2, 'w.min': 1, 'w.max': 3, 'w.std': 1 } });
  t.match(entries[1], { table: 'train', level: 20, step: 8, data: { k: 0 } });
  t.ok((entries[1]?.time ?? 0) >= before, 'a missing time is now');
  t.match(entries[2], { table: 'eval/final', step: 2, data: { $step_1: 9 } });
  t.ok(Number.isFinite(entries[2]?.time), 'a NaN time is replaced by now');
});

t.test('plain rows get the options table and level, steps 0, 1, 2 and the current time', async (t) => {
  const before = Date.now();
  const { entries } = await through([{ x: 0 }, { x: 1 }, { x: 2 }, 5], { table: 'train', level: 'debug' });
  const after = Date.now();
  t.strictSame(entries.map((e) => [e.table, e.level, e.step, e.data]), [
    ['train', 10, 0, { x: 0 }],
    ['train', 10, 1, { x: 1 }],
    ['train', 10, 2, { x: 2 }],
    ['train', 10, 3, { value: 5 }],
  ]);
  for (const e of entries) t.ok(e.time >= before && e.time <= after, `time ${e.time}`);
  const defaults = await through([{ x: 1 }]);
  t.match(defaults.entries[0], { table: 'main', level: 20, step: 0 });
});

t.test('plain rows may carry $table, $step, $time and $level (taken out of the data)', async (t) => {
  const row = { $table: 'evals', $step: 42, $time: 1_700_000_000_000, $level: 'results', acc: 0.9, nested: { $step: 1 } };
  const copy = structuredClone(row);
  const { entries, warnings } = await through([row, { $table: 'evals', acc: 0.8 }, { acc: 0.7 }, { $table: 'evals', $step: 3 }]);
  t.strictSame(warnings, []);
  t.strictSame(entries[0], { table: 'evals', level: 35, step: 42, time: 1_700_000_000_000, data: { acc: 0.9, 'nested/$step': 1 } });
  t.strictSame(entries.slice(1).map((e) => [e.table, e.level, e.step, e.data]), [
    ['evals', 20, 43, { acc: 0.8 }],
    ['main', 20, 0, { acc: 0.7 }],
    ['evals', 20, 3, {}],
  ]);
  t.strictSame(row, copy, 'the input row is not modified');
});

t.test('bad $-metadata in a plain row warns W_BAD_META and falls back; the row is kept', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp, { table: string; level: number; step: number }]> = [
    [{ $table: '../escape' }, /^\$table: invalid table name "\.\.\/escape".*the row went to table 'main'/, { table: 'main', level: 20, step: 0 }],
    [{ $table: 5 }, /^\$table: must be a string \(got 5\)/, { table: 'main', level: 20, step: 0 }],
    [{ $level: 'LOUD' }, /^\$level: unknown level "LOUD".*the row kept level 20/, { table: 'main', level: 20, step: 0 }],
    [{ $level: { n: 1 } }, /^\$level: unknown level \[object Object\]/, { table: 'main', level: 20, step: 0 }],
    [{ $step: '7' }, /^\$step: must be a safe integer \(got "7"\); the row got the next step/, { table: 'main', level: 20, step: 0 }],
    [{ $time: 'yesterday' }, /^\$time: must be a finite number/, { table: 'main', level: 20, step: 0 }],
    [{ $time: Object.create(null) as object }, /^\$time: .*\(got object\)/, { table: 'main', level: 20, step: 0 }],
    [{ $table: 'ok', $level: 'nope' }, /^\$level: /, { table: 'ok', level: 20, step: 0 }],
  ];
  for (const [meta, message, want] of cases) {
    const before = Date.now();
    const { entries, warnings } = await through([{ ...meta, x: 1 }]);
    const label = JSON.stringify(meta);
    t.match(entries[0], { ...want, data: { x: 1 } }, label);
    t.strictSame(Object.keys(entries[0]?.data ?? {}), ['x'], `${label}: the $-keys are not data`);
    t.ok((entries[0]?.time ?? 0) >= before, `${label}: time`);
    t.strictSame(warnings.map((w) => [w.code, w.table]), [['W_BAD_META', want.table]], label);
    t.match(warnings[0]?.message, message, label);
  }
  const repeated = await through(Array.from({ length: 5 }, (_, i) => ({ $step: `s${i}`, x: i })));
  t.equal(repeated.warnings.length, 1, 'one warning per bad key per table, not per row');
  t.strictSame(repeated.entries.map((e) => e.step), [0, 1, 2, 3, 4]);
});

t.test('rows with throwing getters never break the stream', async (t) => {
  const tricky = [
    { get table(): string { throw new Error('table getter'); }, level: 20, data: {}, x: 1 },
    { $step: 3, get boom(): number { throw new Error('boom'); }, x: 2 },
    { get $table(): string { throw new Error('meta getter'); }, x: 3 },
  ];
  const { entries, warnings } = await through(tricky);
  t.strictSame(entries.map((e) => [e.table, e.step, e.data]), [
    ['main', 0, { level: 20, x: 1 }],
    ['main', 3, { x: 2 }],
    ['main', 4, { x: 3 }],
  ]);
  t.strictSame(warnings.map((w) => w.code), ['W_THREW', 'W_THREW', 'W_BAD_META']);
});

t.test('an Entry with an invalid table errors the stream with ERR_INVALID_TABLE', async (t) => {
  for (const table of ['../x', '', 'a//b', 'sp ace']) {
    await t.rejects(
      pipeline(Readable.from([{ table, level: 20, data: { x: 1 } }]), summarize(), collector()),
      { code: 'ERR_INVALID_TABLE' },
      JSON.stringify(table),
    );
  }
});

t.test('bad options throw at factory time, naming the option', async (t) => {
  const cases: Array<[Record<string, unknown> | null, string, RegExp]> = [
    [{ stats: ['bogus'] }, 'RangeError', /^stats: unknown stat "bogus"/],
    [{ stats: 'mean' }, 'TypeError', /^stats: /],
    [{ maxDepth: 0 }, 'RangeError', /^maxDepth: must be an integer ≥ 1 \(got 0\)/],
    [{ maxDepth: 1.5 }, 'RangeError', /^maxDepth: must be an integer ≥ 1 \(got 1.5\)/],
    [{ maxArrayItems: -1 }, 'RangeError', /^maxArrayItems: must be an integer ≥ 0/],
    [{ maxKeys: 0 }, 'RangeError', /^maxKeys: /],
    [{ maxKeys: '10' }, 'TypeError', /^maxKeys: /],
    [{ level: 'LOUD' }, 'RangeError', /^level: unknown level/],
    [null, 'TypeError', /^options: must be an object/],
  ];
  for (const [opts, name, message] of cases) {
    t.throws(() => summarize(opts as SummarizeOptions), { name, code: 'ERR_INVALID_OPTION', message }, JSON.stringify(opts));
    if (opts !== null && !('level' in opts)) {
      t.throws(() => summarizeRow({}, opts as SummarizeRowOptions), { code: 'ERR_INVALID_OPTION', message }, `summarizeRow ${JSON.stringify(opts)}`);
    }
  }
  t.throws(() => summarize({ table: '../x' }), { code: 'ERR_INVALID_TABLE' });
});

// ---------------------------------------------------------------------------------------
// Warnings: once per distinct problem per table

t.test('the Transform warns once per problem per table, never once per row', async (t) => {
  const cyclic: Record<string, unknown> = { x: 1 };
  cyclic.self = cyclic;
  const long = Array.from({ length: 20 }, (_, i) => `item${i}`);
  const rows: unknown[] = [];
  for (let i = 0; i < 100; i++) rows.push({ cyclic, long, growing: long.concat(Array(i).fill('more')) });
  for (let i = 0; i < 100; i++) rows.push({ table: 'other', level: 20, data: { cyclic, long } });
  const { entries, warnings } = await through(rows);
  t.equal(entries.length, 200);
  t.strictSame(entries[0]?.data['cyclic/x'], 1);
  for (const w of warnings) t.strictSame(Object.keys(w).sort(), ['code', 'message', 'table']);
  t.strictSame(
    warnings.map((w) => [w.table, w.code]),
    [
      ['main', 'W_CYCLE'],
      ['main', 'W_ARRAY_CUT'],
      ['main', 'W_ARRAY_CUT'],
      ['other', 'W_CYCLE'],
      ['other', 'W_ARRAY_CUT'],
    ],
  );
  t.match(warnings[0]?.message, /^'cyclic\/self' refers back to an object that contains it \(a cycle\) and was skipped in table 'main'$/);
  t.match(warnings[1]?.message, /^'long' has more than 16 items.* in table 'main'$/);
  t.match(warnings[2]?.message, /^'growing' has more than 16 items/);
  t.match(warnings[4]?.message, /in table 'other'$/);
});

t.test('with no listener a warning is one line on stderr', async (t) => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  const sink = collector();
  try {
    await pipeline(Readable.from([{ cyclic }, { cyclic }, { cyclic }]), summarize({ table: 'quiet' }), sink);
  } finally {
    process.stderr.write = write;
  }
  t.strictSame(lines, ["rowlog warning W_CYCLE: 'cyclic/self' refers back to an object that contains it (a cycle) and was skipped in table 'quiet'\n"]);
  t.equal(sink.entries.length, 3);
});
