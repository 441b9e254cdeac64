import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import type { Test } from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import type { FileSink } from '../sinks/file-sink.js';
import { FileWriter } from '../lib/io/file-writer.js';
import { jsonlSink } from '../sinks/jsonl.js';
import type { JsonlSinkOptions } from '../sinks/jsonl.js';
import { run, tmpdir } from './helpers.js';
import { eventually, patient } from './wait.js';
import { needs } from './peers.js';

const T0 = 1_700_000_000_000;

/** An Entry of table `t` at step 0, INFO, time T0, overridden by `over`. */
function entry(data: FlatRow, over: Partial<Entry<FlatRow>> = {}): Entry<FlatRow> {
  return { table: 't', level: 20, step: 0, time: T0, data, ...over };
}

/** `n` Entries of `table` with steps 0… and a small payload. */
function entries(n: number, table = 't'): Array<Entry<FlatRow>> {
  return Array.from({ length: n }, (_, i) => entry({ i, loss: 1 / (i + 1) }, { table, step: i, time: T0 + i }));
}

/** The line the sink must write for an Entry of {@link entries} (no $table). */
function expectedLine(e: Entry<FlatRow>): string {
  return `{"$step":${e.step},"$time":${e.time},"$level":${e.level},"i":${e.data.i},"loss":${e.data.loss}}\n`;
}

/** a0 b0 a1 b1 … */
function interleave<T>(a: T[], b: T[]): T[] {
  const out: T[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i] as T);
    if (i < b.length) out.push(b[i] as T);
  }
  return out;
}

/** Writes `es`, ends the sink and waits for 'finish'. */
async function writeAll(sink: FileSink, es: Array<Entry<FlatRow>>): Promise<void> {
  for (const e of es) sink.write(e);
  sink.end();
  await finished(sink);
}

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

/** The text one sink writes for `es` into a fresh file. */
async function textOf(t: Test, es: Array<Entry<FlatRow>>, opts: Omit<JsonlSinkOptions, 'path' | 'dir'> = {}): Promise<string> {
  const file = path.join(tmpdir(t), 'out.jsonl');
  await writeAll(jsonlSink({ ...opts, path: file }), es);
  return read(file);
}

/** The codes of the sink's 'error' events until it closes. */
async function errorsUntilClose(sink: FileSink): Promise<Array<string | undefined>> {
  const errors: NodeJS.ErrnoException[] = [];
  sink.on('error', (err: NodeJS.ErrnoException) => errors.push(err));
  await new Promise((resolve) => sink.once('close', resolve)); // events.once would reject on 'error'
  return errors.map((e) => e.code);
}

t.test('line layout: $step, $time, $level first, then data keys sorted', async (t) => {
  const e = entry({ b: 2, a: 1.5, 'c/d': 'x', z: null, y: true, n: false, B: 0, 'a.mean': -0.25 }, { step: 3, level: 35 });
  t.equal(
    await textOf(t, [e]),
    '{"$step":3,"$time":1700000000000,"$level":35,"B":0,"a":1.5,"a.mean":-0.25,"b":2,"c/d":"x","n":false,"y":true,"z":null}\n',
  );
  t.equal(await textOf(t, [entry({})]), '{"$step":0,"$time":1700000000000,"$level":20}\n', 'an empty row has only metadata');
});

t.test('numbers: shortest round-trip form; NaN and ±Infinity as bare tokens', async (t) => {
  const e = entry({ nan: NaN, pinf: Infinity, ninf: -Infinity, negz: -0, big: 1e21, tiny: 5e-324, third: 1 / 3, int: 2 ** 53 });
  t.equal(
    await textOf(t, [e]),
    '{"$step":0,"$time":1700000000000,"$level":20,' +
      '"big":1e+21,"int":9007199254740992,"nan":NaN,"negz":0,"ninf":-Infinity,"pinf":Infinity,"third":0.3333333333333333,"tiny":5e-324}\n',
  );
});

t.test('strings are escaped: quotes, backslashes, control characters, unicode', async (t) => {
  const data = { q: 'say "hi"', nl: 'a\nb\r\n', tab: '\t', bs: 'C:\\x', ctl: '\u0001\u001f', u: 'é漢😀', lone: '\ud800', 'k"ey\n': 1 };
  const text = await textOf(t, [entry(data)]);
  t.equal(
    text,
    String.raw`{"$step":0,"$time":1700000000000,"$level":20,"bs":"C:\\x","ctl":"\u0001\u001f","k\"ey\n":1,"lone":"\ud800","nl":"a\nb\r\n","q":"say \"hi\"","tab":"\t","u":"é漢😀"}` +
      '\n',
  );
  t.equal(text.split('\n').length, 2, 'one line');
  t.same(JSON.parse(text), { $step: 0, $time: T0, $level: 20, ...data }, 'JSON.parse restores every string');
});

t.test('withTable: true adds "$table" after $level', async (t) => {
  const es = [entry({ x: 1 }, { table: 'a/b' }), entry({ x: 2 }, { table: 'c', step: 5 })];
  t.equal(
    await textOf(t, es, { withTable: true }),
    '{"$step":0,"$time":1700000000000,"$level":20,"$table":"a/b","x":1}\n' +
      '{"$step":5,"$time":1700000000000,"$level":20,"$table":"c","x":2}\n',
  );
  t.notMatch(await textOf(t, es), /\$table/, 'no $table by default');
});

t.test('rows whose key sets change are each sorted (no stale per-table layout)', async (t) => {
  const datas: FlatRow[] = [{ b: 1, a: 1 }, { a: 2, b: 2 }, { c: 3, a: 3, b: 3 }, { c: 4 }, { b: 5, a: 5 }, { b: 6, a: 6 }, { aa: 7, a: 7 }];
  // Two tables interleaved in one file: each table's layout is its own.
  const es = datas.flatMap((d, i) => [entry(d, { step: i }), entry({ z: i, y: i }, { table: 'u', step: i })]);
  const lines = (await textOf(t, es)).split('\n').filter((l) => l !== '');
  t.equal(lines.length, es.length);
  es.forEach((e, i) => {
    const keys = Object.keys(e.data).sort();
    const want = `{"$step":${e.step},"$time":${T0},"$level":20${keys.map((k) => `,"${k}":${e.data[k]}`).join('')}}`;
    t.equal(lines[i], want, `row ${i}`);
  });
});

t.test('dir mode: <dir>/<table>.jsonl, a "/" in a table makes a sub-folder', async (t) => {
  const dir = path.join(tmpdir(t), 'run');
  const sink = jsonlSink({ dir });
  t.equal(sink.pathOf('a/b'), path.join(dir, 'a', 'b.jsonl'));
  const train = entries(3, 'train');
  const ab = entries(2, 'a/b');
  await writeAll(sink, interleave(train, ab));
  t.equal(read(path.join(dir, 'train.jsonl')), train.map(expectedLine).join(''));
  t.equal(read(path.join(dir, 'a', 'b.jsonl')), ab.map(expectedLine).join(''));
  t.same(fs.readdirSync(dir).sort(), ['a', 'train.jsonl']);
});

t.test('dir mode: ext is the file ending', async (t) => {
  const dir = tmpdir(t);
  await writeAll(jsonlSink({ dir, ext: '.ndjson' }), entries(1, 'x'));
  t.equal(read(path.join(dir, 'x.ndjson')), expectedLine(entries(1, 'x')[0] as Entry<FlatRow>));
});

t.test('dir mode: a table that would leave dir is an error, and nothing is written outside', async (t) => {
  const root = tmpdir(t);
  const dir = path.join(root, 'run');
  for (const table of ['../escape', '/abs', 'a//b', 'sp ace']) {
    const sink = jsonlSink({ dir });
    const codes = errorsUntilClose(sink);
    sink.write(entry({ x: 1 }, { table }));
    sink.end();
    t.same(await codes, ['ERR_INVALID_TABLE'], table);
  }
  t.same(fs.readdirSync(root), [], 'no file or folder was created');
});

t.test('a malformed Entry is an error event on the sink, not a throw from write()', async (t) => {
  const sink = jsonlSink({ path: path.join(tmpdir(t), 'bad.jsonl') });
  const codes = errorsUntilClose(sink);
  t.doesNotThrow(() => sink.write({ ...entry({}), data: null }));
  t.equal((await codes).length, 1);
});

t.test('appending to an existing file keeps its lines', async (t) => {
  const file = path.join(tmpdir(t), 'old.jsonl');
  const old = '{"$step":0,"$time":1,"$level":20,"x":1}\n{"$step":1,"$time":2,"$level":20,"x":2}\n';
  fs.writeFileSync(file, old);
  const es = entries(3);
  await writeAll(jsonlSink({ path: file }), es);
  t.equal(read(file), old + es.map(expectedLine).join(''));
  const more = entries(2).map((e) => ({ ...e, step: e.step + 3 }));
  await writeAll(jsonlSink({ path: file }), more);
  t.equal(read(file), old + [...es, ...more].map(expectedLine).join(''), 'and a second sink appends after both');
});

t.test('batching and flushing', async (t) => {
  const lazy = { flushBytes: 1e9, flushIntervalMs: 60_000 };
  const setup = (opts: Omit<JsonlSinkOptions, 'path'>) => {
    const file = path.join(tmpdir(t), 'b.jsonl');
    return { file, sink: jsonlSink({ ...opts, path: file }) };
  };

  t.test('nothing reaches the disk before flush(); everything after', async (t) => {
    const { file, sink } = setup(lazy);
    const es = entries(50);
    for (const e of es) sink.write(e);
    t.equal(read(file), '');
    t.ok(sink.queuedBytes > 0, 'queuedBytes counts the batch');
    await sink.flush();
    t.equal(read(file), es.map(expectedLine).join(''));
    t.equal(sink.queuedBytes, 0);
    sink.destroy();
  });

  t.test('a batch is handed to the disk before a row would take it past flushBytes; the rest waits', async (t) => {
    const es = entries(10);
    const lines = es.map(expectedLine);
    const flushBytes = lines[0]!.length * 5;
    const { file, sink } = setup({ ...lazy, flushBytes });
    for (const e of es) sink.write(e);
    // The documented rule, by hand: a batch never passes flushBytes (so with .gz it is one member).
    let handed = '';
    let pending = '';
    for (const line of lines) {
      // Lines are ASCII here, so a UTF-16 length is a byte length; 3 bytes a unit is the bound.
      if (line.length * 3 > flushBytes - pending.length) [handed, pending] = [handed + pending, ''];
      pending += line;
    }
    t.ok(handed.split('\n').length > 3 && pending !== '', 'the case has full batches and a partial one');
    t.ok(await eventually(() => read(file) === handed), 'the full batches are written without flush()');
    await sleep(50);
    t.equal(read(file), handed, 'the partial batch still waits');
    await sink.flush();
    t.equal(read(file), lines.join(''));
    sink.destroy();
  });

  t.test('with flushIntervalMs: 20 rows appear without flush()', async (t) => {
    const { file, sink } = setup({ flushIntervalMs: 20 });
    const es = entries(5);
    for (const e of es) sink.write(e);
    t.ok(await eventually(() => read(file) === es.map(expectedLine).join('')), 'on disk within a second');
    sink.write(entries(6)[5] as Entry<FlatRow>);
    t.ok(await eventually(() => read(file).split('\n').length === 7), 'and so is a later row');
    sink.destroy();
  });

  for (const [label, opts] of [
    ['batched rows', lazy],
    ['rows already handed to async writes', { flushBytes: 1 }],
  ] as const) {
    t.test(`flushSync() writes everything synchronously (${label})`, async (t) => {
      const { file, sink } = setup(opts);
      const es = entries(200);
      for (const e of es) sink.write(e);
      sink.flushSync();
      const want = es.map(expectedLine).join('');
      t.equal(read(file), want, 'on disk right after the call');
      t.equal(sink.queuedBytes, 0);
      await sink.flush();
      t.equal(read(file), want, 'async writes landing later change nothing');
      sink.destroy();
    });
  }

  t.test("end() then 'finish' leaves every row on disk", async (t) => {
    const { file, sink } = setup(lazy);
    const es = entries(100);
    await writeAll(sink, es);
    t.equal(read(file), es.map(expectedLine).join(''));
    t.doesNotThrow(() => sink.flushSync(), 'flushSync() after finish is a no-op');
  });
});

t.test('bad options throw at the factory', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'x.jsonl');
  const cases: Array<[string, unknown, RegExp]> = [
    ['path and dir', { path: file, dir }, /^path: give exactly one of path/],
    ['neither', {}, /^path: give exactly one of path/],
    ['no options', undefined, /^options: must be an object/],
    ['flushBytes: 0', { path: file, flushBytes: 0 }, /^flushBytes: must be a finite number ≥ 1/],
    ['flushBytes: NaN', { path: file, flushBytes: NaN }, /^flushBytes: must be a number/],
    ['flushIntervalMs: -1', { path: file, flushIntervalMs: -1 }, /^flushIntervalMs: /],
    ['gzipLevel: 10', { path: `${file}.gz`, gzipLevel: 10 }, /^gzipLevel: must be an integer from 0 to 9/],
    ['gzipLevel: 1.5', { path: `${file}.gz`, gzipLevel: 1.5 }, /^gzipLevel: must be an integer from 0 to 9/],
    ['durability: always', { path: file, durability: 'always' }, /^durability: must be 'none' or 'flush'/],
    ['path not a string', { path: 5 }, /^path: must be a non-empty string/],
    ['empty dir', { dir: '' }, /^dir: must be a non-empty string/],
  ];
  for (const [label, opts, message] of cases) {
    t.throws(() => jsonlSink(opts as JsonlSinkOptions), { code: 'ERR_INVALID_OPTION', message }, label);
  }
  t.same(fs.readdirSync(dir), [], 'no file was created');
});

t.test('real readers', async (t) => {
  const finite = [
    entry({ loss: 0.25, lr: 0.1, name: 'ré"s\n', ok: true, none: null, 'w.mean': -3.5e-7 }),
    entry({ big: 12345678901234, loss: 0.125 }, { step: 1, level: 5 }),
  ];
  const nonFinite = [entry({ nan: NaN, pinf: Infinity, ninf: -Infinity, s: 'a' }), entry({ nan: NaN, pinf: Infinity, ninf: -Infinity, s: 'b' })];

  const parseLines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as unknown);

  t.test('jq -c . re-emits the same rows, keys in the same order', async (t) => {
    if (!needs(t, 'jq')) return;
    const file = path.join(tmpdir(t), 'jq.jsonl');
    await writeAll(jsonlSink({ path: file }), finite);
    const r = run('jq', ['-c', '.', file]);
    t.equal(r.status, 0, r.stderr);
    t.same(parseLines(r.stdout), parseLines(read(file)));
    t.same(
      parseLines(r.stdout).map((o) => Object.keys(o as object)),
      parseLines(read(file)).map((o) => Object.keys(o as object)),
    );
  });

  t.test('jq accepts the NaN and Infinity tokens', async (t) => {
    if (!needs(t, 'jq')) return;
    const file = path.join(tmpdir(t), 'jq-nan.jsonl');
    await writeAll(jsonlSink({ path: file }), nonFinite);
    const r = run('jq', ['-c', '[.s, (.pinf > 1e308), (.ninf < -1e308)]', file]);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, '["a",true,true]\n["b",true,true]\n');
  });

  t.test("python3's json.loads reads every line and restores nan and inf", async (t) => {
    if (!needs(t, 'python3')) return;
    const file = path.join(tmpdir(t), 'py.jsonl');
    await writeAll(jsonlSink({ path: file }), [...finite, ...nonFinite]);
    const script = [
      'import json, math, sys',
      'rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]',
      'print(json.dumps([[r.get("name"), r.get("big"), r.get("w.mean")] for r in rows[:2]]))',
      'print(json.dumps([[math.isnan(r["nan"]), r["pinf"] == math.inf, r["ninf"] == -math.inf, r["s"]] for r in rows[2:]]))',
    ].join('\n');
    const r = run('python3', ['-c', script, file]);
    t.equal(r.status, 0, r.stderr);
    t.same(
      parseLines(r.stdout),
      [
        [['ré"s\n', null, -3.5e-7], [null, 12345678901234, null]],
        [[true, true, true, 'a'], [true, true, true, 'b']],
      ],
    );
  });
});

/** Codes of the sink's warnings, collected from now on. */
function warningCodes(sink: FileSink): string[] {
  const codes: string[] = [];
  sink.on('warning', (w: { code: string; message: string }) => codes.push(w.code));
  return codes;
}

t.test('I/O failures fail that file only: one W_FILE_ERROR, rows kept for a retry; end() reports what was lost', async (t) => {
  t.test('ENOSPC (/dev/full), seen by flush()', async (t) => {
    const sink = jsonlSink({ path: '/dev/full' });
    const warned = warningCodes(sink);
    sink.write(entry({ x: 1 }));
    await t.rejects(sink.flush(), { code: 'ENOSPC' });
    await t.rejects(sink.flush(), { code: 'ENOSPC' }, 'still failing, still holding the row');
    await new Promise((resolve) => setImmediate(resolve)); // the warning is emitted asynchronously
    t.same(warned, ['W_FILE_ERROR'], 'warned once');
    t.notOk(sink.destroyed, 'the sink goes on');
    sink.destroy();
  });

  t.test('ENOSPC (/dev/full), seen by end(): the lost rows are counted', async (t) => {
    const sink = jsonlSink({ path: '/dev/full' });
    const warned = warningCodes(sink);
    const codes = errorsUntilClose(sink);
    sink.write(entry({ x: 1 }));
    sink.write(entry({ x: 2 }));
    sink.end();
    t.same(await codes, ['ENOSPC']);
    t.same(warned.sort(), ['W_FILE_ERROR', 'W_ROWS_DROPPED']);
  });

  t.test('ENOSPC (/dev/full), seen by flushSync(), which throws', async (t) => {
    const sink = jsonlSink({ path: '/dev/full' });
    sink.write(entry({ x: 1 }));
    t.throws(() => sink.flushSync(), { code: 'ENOSPC' });
    sink.destroy();
  });

  t.test('ENOTDIR: dir under a regular file fails that file; other tables keep writing', async (t) => {
    const tmp = tmpdir(t);
    fs.writeFileSync(path.join(tmp, 'file.txt'), 'x');
    const sink = jsonlSink({ dir: tmp });
    const warned: Array<{ code: string; message: string }> = [];
    sink.on('warning', (w: { code: string; message: string }) => warned.push(w));
    sink.write(entry({ x: 1 }, { table: 'file.txt/sub' }));
    sink.write(entry({ x: 2 }, { table: 'ok' }));
    await t.rejects(sink.flush(), { code: 'ENOTDIR' });
    await new Promise((resolve) => setImmediate(resolve)); // the warning is emitted asynchronously
    t.match(warned, [{ code: 'W_FILE_ERROR', message: /file\.txt\/sub\.jsonl cannot be written \(ENOTDIR\)/ }]);
    t.equal(sink.write(entry({ x: 3 }, { table: 'ok' })), true, 'later writes are taken');
    const codes = errorsUntilClose(sink);
    sink.end();
    t.same(await codes, ['ENOTDIR'], 'end() reports the file that could not be written');
    t.same(read(path.join(tmp, 'ok.jsonl')).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as FlatRow).x), [2, 3]);
  });
});

t.test('path may be a FIFO (no file offsets): rows arrive in order', async (t) => {
  const fifo = path.join(tmpdir(t), 'rows.fifo');
  t.equal(run('mkfifo', [fifo]).status, 0);
  const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  reader.stdout.setEncoding('utf8').on('data', (s: string) => (got += s));
  const exited = once(reader, 'close');
  const sink = jsonlSink({ path: fifo, flushBytes: 200 });
  const es = entries(300);
  for (const e of es.slice(0, 100)) sink.write(e);
  sink.flushSync();
  await writeAll(sink, es.slice(100));
  await exited;
  t.equal(got, es.map(expectedLine).join(''));
});

t.test('FileWriter', async (t) => {
  /** `n` chunks of varied length, each naming its index. */
  const chunks = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`${i}:${'x'.repeat(i % 37)}\n`));

  t.test('positional appends land in order across many writes, after existing content', async (t) => {
    const file = path.join(tmpdir(t), 'w.txt');
    fs.writeFileSync(file, 'head\n');
    const w = new FileWriter(file, (err) => t.fail(err.message));
    const cs = chunks(500);
    for (const c of cs) w.write(c);
    t.ok(w.queuedBytes > 0);
    await w.flush();
    t.equal(w.queuedBytes, 0, 'queuedBytes is 0 after flush()');
    t.equal(read(file), 'head\n' + Buffer.concat(cs).toString());
    w.write(Buffer.from('tail\n'));
    await w.close();
    t.equal(read(file), 'head\n' + Buffer.concat(cs).toString() + 'tail\n');
  });

  t.test('flushSync() with an async write in flight still yields every byte once, in order', async (t) => {
    const file = path.join(tmpdir(t), 'w.txt');
    const w = new FileWriter(file, (err) => t.fail(err.message));
    const cs = chunks(200);
    for (const c of cs) w.write(c);
    w.flushSync();
    const want = Buffer.concat(cs).toString();
    t.equal(read(file), want, 'complete right after flushSync()');
    t.equal(w.queuedBytes, 0);
    w.write(Buffer.from('after\n'));
    await w.flush();
    await sleep(20);
    t.equal(read(file), want + 'after\n', 'the in-flight write landing later changes nothing');
    await w.close();
  });

  t.test('closeSync() with a write in flight: flush() waiters learn what was lost', async (t) => {
    const file = path.join(tmpdir(t), 'w.txt');
    const w = new FileWriter(file, (err) => t.fail(err.message));
    const cs = chunks(50);
    for (const c of cs) w.write(c);
    const flushed = w.flush();
    w.closeSync();
    w.write(Buffer.from('ignored\n'));
    await t.rejects(flushed, { code: 'ERR_SINK_CLOSED' });
    const text = read(file);
    t.ok(text.length > 0 && Buffer.concat(cs).toString().startsWith(text), 'the file holds a prefix of what was written');
    w.flushSync(); // closed: a no-op, not EBADF
    await w.flush();
  });

  t.test('an I/O error is reported asynchronously; a failed FIFO-like file writes nothing more', async (t) => {
    const errors: string[] = [];
    const w = new FileWriter('/dev/full', (err: NodeJS.ErrnoException) => errors.push(String(err.code)));
    w.write(Buffer.from('x\n'));
    t.same(errors, [], 'not inside write()');
    await t.rejects(w.flush(), { code: 'ENOSPC' });
    w.write(Buffer.from('y\n'));
    t.throws(() => w.flushSync(), { code: 'ENOSPC' }, 'a failed writer cannot flush');
    await sleep(10);
    t.same(errors, ['ENOSPC']);
    w.closeSync();
  });
});
