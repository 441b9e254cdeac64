import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import t from 'tap';
import type { Test } from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import type { FileSink } from '../sinks/file-sink.js';
import { csvSink } from '../sinks/csv.js';
import type { CsvSinkOptions } from '../sinks/csv.js';
import { tmpdir } from './helpers.js';

const T0 = 1_700_000_000_000;
const HEAD = '$step,$time,$level';

/** An Entry of table `t` at step 0, INFO, time T0, overridden by `over`. */
function entry(data: FlatRow, over: Partial<Entry<FlatRow>> = {}): Entry<FlatRow> {
  return { table: 't', level: 20, step: 0, time: T0, data, ...over };
}

/** The metadata cells of an Entry made by {@link entry}. */
const meta = (step: number, level = 20) => `${step},${T0},${level}`;

/** A sink on `file` whose warnings are collected. */
function open(file: string, opts: Omit<CsvSinkOptions, 'path' | 'dir'> = {}): { sink: FileSink; warnings: RowlogWarning[] } {
  const sink = csvSink({ ...opts, path: file });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  return { sink, warnings };
}

/** Writes `es`, ends the sink and waits for 'finish'. */
async function writeAll(sink: FileSink, es: Array<Entry<FlatRow>>): Promise<void> {
  for (const e of es) sink.write(e);
  sink.end();
  await finished(sink);
}

const read = (file: string) => fs.readFileSync(file, 'utf8');

/** The text one sink writes for `es` into a fresh file, and its warnings. */
async function write(t: Test, es: Array<Entry<FlatRow>>, opts: Omit<CsvSinkOptions, 'path' | 'dir'> = {}) {
  const file = path.join(tmpdir(t), 'out.csv');
  const { sink, warnings } = open(file, opts);
  await writeAll(sink, es);
  return { text: read(file), warnings, file };
}

const textOf = async (t: Test, es: Array<Entry<FlatRow>>, opts: Omit<CsvSinkOptions, 'path' | 'dir'> = {}) => (await write(t, es, opts)).text;

/** Lines of a file joined with `\n`, each ended. */
const lines = (...ls: string[]) => ls.map((l) => `${l}\n`).join('');

t.test('header: metadata columns, then data keys sorted; null is an empty cell; booleans', async (t) => {
  const es = [
    entry({ loss: 0.25, B: 0, acc: 1, 'a/b': -1.5e-7, ok: true, no: false, none: null }, { step: 3, level: 35 }),
    entry({ none: 1, loss: 0.125, B: 2, acc: 0.5, 'a/b': 3, ok: false, no: true }, { step: 4 }),
  ];
  t.equal(
    await textOf(t, es),
    lines(`${HEAD},B,a/b,acc,loss,no,none,ok`, `${meta(3, 35)},0,-1.5e-7,1,0.25,false,,true`, `${meta(4)},2,3,0.5,0.125,true,1,false`),
  );
  t.equal(await textOf(t, [entry({})]), lines(HEAD, meta(0)), 'an empty row has only metadata');
});

t.test('numbers: shortest round-trip form; NaN and ±Infinity as bare tokens', async (t) => {
  const e = entry({ nan: NaN, pinf: Infinity, ninf: -Infinity, negz: -0, big: 1e21, tiny: 5e-324, third: 1 / 3, int: 2 ** 53 });
  t.equal(
    await textOf(t, [e]),
    lines(`${HEAD},big,int,nan,negz,ninf,pinf,third,tiny`, `${meta(0)},1e+21,9007199254740992,NaN,0,-Infinity,Infinity,0.3333333333333333,5e-324`),
  );
});

t.test('RFC 4180 quoting of cells and header names', async (t) => {
  const data: FlatRow = {
    comma: 'a,b',
    quote: 'say "hi"',
    nl: 'line1\nline2',
    crlf: 'x\r\ny',
    lead: ' padded',
    trail: 'padded ',
    tab: '\tx',
    unicode: 'é漢😀',
    plain: 'a b',
    empty: '',
    nul: null,
    numstr: '1.5',
    truestr: 'true',
    nanstr: 'NaN',
    infstr: '-Infinity',
    inner: 'a"b',
    'k,ey': 1,
    'k"q': 2,
    'k\nnl': 3,
  };
  const text = await textOf(t, [entry(data)]);
  t.equal(
    text,
    `${HEAD},comma,crlf,empty,infstr,inner,"k\nnl","k""q","k,ey",lead,nanstr,nl,nul,numstr,plain,quote,tab,trail,truestr,unicode\n` +
      `${meta(0)},"a,b","x\r\ny","","-Infinity","a""b",3,2,1," padded","NaN","line1\nline2",,"1.5",a b,"say ""hi""","\tx","padded ","true",é漢😀\n`,
  );
  t.match(text, /,"",/, 'an empty string is "" …');
  t.match(text, /"line1\nline2",,"1\.5"/, '… and null an empty cell');
});

t.test('a row without some of the header keys gets empty cells; dropping keys never rewrites', async (t) => {
  const { text, warnings } = await write(t, [entry({ a: 1, b: 2, c: 3 }), entry({ b: 5 }, { step: 1 }), entry({ c: 6, a: 4 }, { step: 2 })]);
  t.equal(text, lines(`${HEAD},a,b,c`, `${meta(0)},1,2,3`, `${meta(1)},,5,`, `${meta(2)},4,,6`));
  t.same(warnings, []);
});

t.test('keys that exist only on Object.prototype are not read from it', async (t) => {
  const { text } = await write(t, [entry({ toString: 1, constructor: 2 }), entry({}, { step: 1 })]);
  t.equal(text, lines(`${HEAD},constructor,toString`, `${meta(0)},2,1`, `${meta(1)},,`));
});

t.test('values that are not Scalars (no summarize() upstream) are written as quoted JSON', async (t) => {
  const data = { obj: { a: 1 }, arr: [1, 'x'] } as unknown as FlatRow;
  t.equal(await textOf(t, [entry(data)]), lines(`${HEAD},arr,obj`, `${meta(0)},"[1,""x""]","{""a"":1}"`));
});

t.test('dir mode: <dir>/<table>.csv, each with its own header; ext is the file ending', async (t) => {
  const dir = path.join(tmpdir(t), 'run');
  const sink = csvSink({ dir });
  t.equal(sink.pathOf('a/b'), path.join(dir, 'a', 'b.csv'));
  await writeAll(sink, [entry({ x: 1 }, { table: 'train' }), entry({ y: 2 }, { table: 'a/b' }), entry({ x: 3 }, { table: 'train', step: 1 })]);
  t.equal(read(path.join(dir, 'train.csv')), lines(`${HEAD},x`, `${meta(0)},1`, `${meta(1)},3`));
  t.equal(read(path.join(dir, 'a', 'b.csv')), lines(`${HEAD},y`, `${meta(0)},2`));
  const other = tmpdir(t);
  await writeAll(csvSink({ dir: other, ext: '.txt' }), [entry({ x: 1 })]);
  t.same(fs.readdirSync(other), ['t.txt']);
});

t.test('one path file for several tables: one key space; withTable adds $table', async (t) => {
  const es = [entry({ loss: 1 }, { table: 'train' }), entry({ acc: 0.5 }, { table: 'eval' }), entry({ loss: 2 }, { table: 'train', step: 1 })];
  const { text, warnings } = await write(t, es, { withTable: true });
  t.equal(text, lines(`${HEAD},$table,acc,loss`, `${meta(0)},train,,1`, `${meta(0)},eval,0.5,`, `${meta(1)},train,,2`));
  t.same(
    warnings.map((w) => [w.code, w.message, w.table]),
    [['W_NEW_KEYS', "Adding new key 'acc' to table 'eval'", 'eval']],
  );
  t.notMatch(await textOf(t, es), /\$table/, 'no $table by default');
});

t.test("a late new key: the file is rewritten with the union header (onNewKeys: 'rewrite')", async (t) => {
  const file = path.join(tmpdir(t), 'late.csv');
  const { sink, warnings } = open(file, { flushIntervalMs: 60_000 });
  const multi = 'first "line", then\nsecond,\r\nthird';
  sink.write(entry({ x: 1, s: multi }));
  sink.write(entry({ x: 2, s: ' sp' }, { step: 1 }));
  await sink.flush();
  const before = fs.statSync(file).ino;
  sink.write(entry({ x: 3, z: 9 }, { step: 2 }));
  const after = fs.statSync(file).ino;
  t.not(after, before, 'the rewrite went through a rename (new inode), synchronously');
  t.same(fs.readdirSync(path.dirname(file)), ['late.csv'], 'no temp file is left behind');
  sink.write(entry({ z: 10, x: 4 }, { step: 3 }));
  sink.write(entry({ x: 5 }, { step: 4 }));
  sink.write(entry({ z: 11, x: 6, s: 'e' }, { step: 5 }));
  sink.end();
  await finished(sink);
  const quoted = `"${multi.replaceAll('"', '""')}"`;
  t.equal(
    read(file),
    lines(
      `${HEAD},s,x,z`,
      `${meta(0)},${quoted},1,`,
      `${meta(1)}," sp",2,`,
      `${meta(2)},,3,9`,
      `${meta(3)},,4,10`,
      `${meta(4)},,5,`,
      `${meta(5)},e,6,11`,
    ),
    'old rows have empty cells, the quoted multi-line field survives byte for byte, later rows follow the new header',
  );
  t.equal(fs.statSync(file).ino, after, 'rows with known keys do not rewrite again');
  t.same(
    warnings.map((w) => [w.code, w.message, w.table]),
    [['W_NEW_KEYS', "Adding new key 'z' to table 't'", 't']],
    'warned once',
  );
});

t.test('several new keys at once: one warning in the plural form; each new set warns', async (t) => {
  const { text, warnings } = await write(t, [
    entry({ m: 1 }),
    entry({ m: 2, b: 2, a: 1 }, { step: 1 }),
    entry({ m: 3, "it's": 0, 'q"': 1 }, { step: 2 }),
    entry({ m: 4, a: 5 }, { step: 3 }),
  ]);
  t.equal(
    text,
    lines(`${HEAD},a,b,it's,m,"q"""`, `${meta(0)},,,,1,`, `${meta(1)},1,2,,2,`, `${meta(2)},,,0,3,1`, `${meta(3)},5,,,4,`),
  );
  t.same(
    warnings.map((w) => w.message),
    ["Adding 2 new keys ['a', 'b'] to table 't'", `Adding 2 new keys ["it's", 'q"'] to table 't'`],
  );
});

t.test("key names in warnings are written as Python's repr writes them", async (t) => {
  const { warnings } = await write(t, [entry({}), entry({ 'a\\b\n\t\u0001\r\u007f é': 1, 'it\'s "q"': 2, 'x"y': 3 })]);
  t.same(
    warnings.map((w) => w.message),
    [String.raw`Adding 3 new keys ['a\\b\n\t\x01\r\x7f é', 'it\'s "q"', 'x"y'] to table 't'`],
  );
});

t.test("onNewKeys: 'error' warns once per new key set and writes the row without them", async (t) => {
  const file = path.join(tmpdir(t), 'fixed.csv');
  const { sink, warnings } = open(file, { onNewKeys: 'error', flushIntervalMs: 60_000 });
  sink.write(entry({ x: 1 }));
  await sink.flush();
  const ino = fs.statSync(file).ino;
  sink.write(entry({ x: 2, z: 1 }, { step: 1 }));
  sink.write(entry({ x: 3, z: 2 }, { step: 2 }));
  sink.write(entry({ z: 3 }, { step: 3 }));
  sink.write(entry({ x: 4, a: 0, b: 0 }, { step: 4 }));
  sink.end();
  await finished(sink);
  t.equal(read(file), lines(`${HEAD},x`, `${meta(0)},1`, `${meta(1)},2`, `${meta(2)},3`, `${meta(3)},`, `${meta(4)},4`));
  t.equal(fs.statSync(file).ino, ino, 'never rewritten');
  t.same(
    warnings.map((w) => [w.code, w.message]),
    [
      ['W_NEW_KEYS', `Dropping new key 'z' of table 't': onNewKeys is 'error', so the CSV header of ${file} stays as it is`],
      ['W_NEW_KEYS', `Dropping 2 new keys ['a', 'b'] of table 't': onNewKeys is 'error', so the CSV header of ${file} stays as it is`],
    ],
  );
});

t.test("onNewKeys: 'ignore' drops new keys silently", async (t) => {
  const { text, warnings } = await write(t, [entry({ x: 1 }), entry({ x: 2, z: 1 }, { step: 1 })], { onNewKeys: 'ignore' });
  t.equal(text, lines(`${HEAD},x`, `${meta(0)},1`, `${meta(1)},2`));
  t.same(warnings, []);
});

t.test('appending to an existing file', async (t) => {
  t.test('reuses its header, whatever its column order, and writes no second header', async (t) => {
    const file = path.join(tmpdir(t), 'old.csv');
    const old = lines(`${HEAD},"b, c",a`, `${meta(0)},"x",1`);
    fs.writeFileSync(file, old);
    const { sink, warnings } = open(file);
    await writeAll(sink, [entry({ a: 2, 'b, c': 'y' }, { step: 1 }), entry({ a: 3 }, { step: 2 })]);
    t.equal(read(file), old + lines(`${meta(1)},y,2`, `${meta(2)},,3`));
    t.same(warnings, []);
  });

  t.test('with a new key: rewrites with the union header and warns', async (t) => {
    const file = path.join(tmpdir(t), 'old.csv');
    fs.writeFileSync(file, lines(`${HEAD},a`, `${meta(0)},"multi\nline"`, `${meta(1)},2`));
    const ino = fs.statSync(file).ino;
    const { sink, warnings } = open(file);
    await writeAll(sink, [entry({ a: 3, z: 1 }, { step: 2 })]);
    t.equal(read(file), lines(`${HEAD},a,z`, `${meta(0)},"multi\nline",`, `${meta(1)},2,`, `${meta(2)},3,1`));
    t.not(fs.statSync(file).ino, ino);
    t.same(
      warnings.map((w) => w.message),
      ["Adding new key 'z' to table 't'"],
    );
  });

  t.test('a second sink appends after the first', async (t) => {
    const file = path.join(tmpdir(t), 'twice.csv');
    await writeAll(csvSink({ path: file }), [entry({ a: 1 })]);
    await writeAll(csvSink({ path: file }), [entry({ a: 2 }, { step: 1 })]);
    t.equal(read(file), lines(`${HEAD},a`, `${meta(0)},1`, `${meta(1)},2`));
  });

  t.test('withTable on a file written without $table: the column is added', async (t) => {
    const file = path.join(tmpdir(t), 'tables.csv');
    fs.writeFileSync(file, lines(`${HEAD},a`, `${meta(0)},1`));
    const { sink, warnings } = open(file, { withTable: true });
    await writeAll(sink, [entry({ a: 2 }, { step: 1 })]);
    t.equal(read(file), lines(`${HEAD},$table,a`, `${meta(0)},,1`, `${meta(1)},t,2`));
    t.same(
      warnings.map((w) => w.message),
      ["Adding new key '$table' to table 't'"],
    );
  });

  t.test('CRLF line ends, a BOM and blank lines are read; a rewrite normalizes them', async (t) => {
    const file = path.join(tmpdir(t), 'excel.csv');
    fs.writeFileSync(file, `\ufeff${HEAD},a\r\n${meta(0)},"x\r\ny"\r\n\r\n${meta(1)},2\r\n`);
    const { sink, warnings } = open(file);
    await writeAll(sink, [entry({ a: 3, b: 1 }, { step: 2 })]);
    t.equal(read(file), lines(`${HEAD},a,b`, `${meta(0)},"x\r\ny",`, `${meta(1)},2,`, `${meta(2)},3,1`));
    t.equal(warnings.length, 1);
  });

  t.test('a torn last row (a crash, a full disk) is removed on reopen, with a warning naming it', async (t) => {
    const dir = tmpdir(t);
    const cases: Array<[string, string]> = [
      ['no final line end', `${meta(0)},1,20,1,0.98765`],
      ['inside a quoted field', `${meta(0)},"tor`],
      ['after a quoted field', `${meta(0)},"x\ny"`],
      ['a quoted line end last', `${meta(0)},"x\n`],
    ];
    for (const [k, [label, torn]] of cases.entries()) {
      const file = path.join(dir, `${k}.csv`);
      const whole = `${HEAD},a\n${meta(9)},"whole\nrow"\n`;
      fs.writeFileSync(file, whole + torn);
      const { sink, warnings } = open(file);
      await writeAll(sink, [entry({ a: 2 }, { step: 1 })]);
      t.equal(read(file), `${whole}${meta(1)},2\n`, `${label}: the torn row is gone, the new one follows the whole ones`);
      t.same(
        warnings.map((w) => [w.code, w.message.includes(file), w.message.includes(`${Buffer.byteLength(torn)} bytes at offset ${whole.length}`)]),
        [['W_TORN_ROW', true, true]],
        `${label}: warned, naming the file and the bytes`,
      );
    }
    const header = path.join(dir, 'header.csv');
    fs.writeFileSync(header, '$step,$ti');
    await writeAll(open(header).sink, [entry({ a: 1 })]);
    t.equal(read(header), lines(`${HEAD},a`, meta(0) + ',1'), 'a torn header is replaced by a whole one');
  });

  t.test('an existing file of blank lines gets a header', async (t) => {
    const file = path.join(tmpdir(t), 'blank.csv');
    fs.writeFileSync(file, '\n');
    await writeAll(csvSink({ path: file }), [entry({ a: 1 })]);
    t.equal(read(file), `\n${HEAD},a\n${meta(0)},1\n`);
  });
});

t.test('a rewrite keeps every other field of a ragged or odd file', async (t) => {
  const file = path.join(tmpdir(t), 'odd.csv');
  // A duplicate column name and a row longer than the header: nothing is lost.
  fs.writeFileSync(file, lines(`${HEAD},a,a`, `${meta(0)},1,2,extra`, `${meta(1)}`));
  await writeAll(open(file).sink, [entry({ a: 3, b: 4 }, { step: 2 })]);
  t.equal(read(file), lines(`${HEAD},a,b`, `${meta(0)},1,,2,extra`, `${meta(1)},,`, `${meta(2)},3,4`));
});

t.test('batched rows are part of the rewrite (rows not yet on disk are not lost)', async (t) => {
  const file = path.join(tmpdir(t), 'batched.csv');
  const { sink } = open(file, { flushBytes: 1e9, flushIntervalMs: 60_000 });
  for (let i = 0; i < 100; i++) sink.write(entry({ x: i }, { step: i }));
  sink.write(entry({ x: 100, y: 1 }, { step: 100 }));
  sink.end();
  await finished(sink);
  const want = [`${HEAD},x,y`, ...Array.from({ length: 100 }, (_, i) => `${meta(i)},${i},`), `${meta(100)},100,1`];
  t.equal(read(file), lines(...want));
});

t.test('.csv.gz: blocked gzip, rewrites included', async (t) => {
  const file = path.join(tmpdir(t), 'g.csv.gz');
  const { sink } = open(file);
  await writeAll(sink, [entry({ x: 1 }), entry({ x: 2, y: 'a,b' }, { step: 1 })]);
  t.equal(zlib.gunzipSync(fs.readFileSync(file)).toString(), lines(`${HEAD},x,y`, `${meta(0)},1,`, `${meta(1)},2,"a,b"`));
});

t.test('warnings go to stderr when nobody listens', async (t) => {
  const file = path.join(tmpdir(t), 'stderr.csv');
  const printed: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => printed.push(String(chunk)) > 0) as typeof process.stderr.write;
  t.teardown(() => {
    process.stderr.write = write;
  });
  const sink = csvSink({ path: file });
  sink.write(entry({ x: 1 }));
  sink.write(entry({ x: 2, z: 1 }));
  process.stderr.write = write;
  sink.end();
  await finished(sink);
  t.same(printed, ["rowlog warning W_NEW_KEYS: Adding new key 'z' to table 't'\n"]);
});

t.test('many rows with the same keys: one header, cells in order', async (t) => {
  const n = 5000;
  const es = Array.from({ length: n }, (_, i) => entry({ loss: 1 / (i + 1), i, lr: 0.1, tag: i % 2 === 0 ? 'even' : 'odd,' }, { step: i }));
  const text = await textOf(t, es, { flushBytes: 4096 });
  const want = [`${HEAD},i,loss,lr,tag`, ...es.map((e, i) => `${meta(i)},${i},${1 / (i + 1)},0.1,${i % 2 === 0 ? 'even' : '"odd,"'}`)];
  t.equal(text, lines(...want));
});

t.test('bad options throw ERR_INVALID_OPTION at the factory', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'x.csv');
  const cases: Array<[string, unknown, RegExp, ErrorConstructor]> = [
    ['onNewKeys: "fail"', { path: file, onNewKeys: 'fail' }, /^onNewKeys: must be 'rewrite', 'error' or 'ignore' \(got fail\)/, RangeError],
    ['onNewKeys: true', { path: file, onNewKeys: true }, /^onNewKeys: must be/, TypeError],
    ['withTable: "yes"', { path: file, withTable: 'yes' }, /^withTable: must be a boolean/, TypeError],
    ['path and dir', { path: file, dir }, /^path: give exactly one of path/, TypeError],
    ['no options', undefined, /^options: must be an object/, TypeError],
    ['flushBytes: 0', { path: file, flushBytes: 0 }, /^flushBytes: /, RangeError],
    ['empty ext', { dir, ext: '' }, /^ext: must be a non-empty string/, TypeError],
  ];
  for (const [label, opts, message, type] of cases) {
    let err: unknown;
    try {
      csvSink(opts as CsvSinkOptions);
    } catch (e) {
      err = e;
    }
    t.type(err, type, `${label}: ${type.name}`);
    t.match(err, { code: 'ERR_INVALID_OPTION', message }, label);
  }
  for (const onNewKeys of ['rewrite', 'error', 'ignore', undefined] as const) {
    t.doesNotThrow(() => csvSink({ path: file, onNewKeys }).destroy(), `onNewKeys: ${onNewKeys}`);
  }
  t.same(fs.readdirSync(dir), [], 'no file was created');
});
