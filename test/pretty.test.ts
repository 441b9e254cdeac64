import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { prettySink } from '../sinks/pretty.js';
import type { PrettySink, PrettySinkOptions } from '../sinks/pretty.js';
import { ROOT, run } from './helpers.js';
import { eventually, patient } from './wait.js';

const T0 = 1_700_000_000_000;

function entry(data: FlatRow, over: Partial<Entry<FlatRow>> = {}): Entry<FlatRow> {
  return { table: 'train', level: 20, step: 0, time: T0, data, ...over };
}

/** A text Writable standing in for the terminal, and a sink printing to it. */
function screen(opts: PrettySinkOptions = {}, isTTY = false) {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  if (isTTY) Object.assign(stream, { isTTY: true });
  const sink = prettySink({ stream, ...opts });
  return {
    sink,
    stream,
    text: () => text,
    /** `table@step` of each printed block, in order. */
    prints: () => [...text.matchAll(/^── (\S+) {2}step (\d+) /gm)].map((m) => `${m[1]}@${m[2]}`),
  };
}

/** The codes of the sink's 'error' events until it closes. */
async function errorsUntilClose(sink: PrettySink): Promise<Array<string | undefined>> {
  const errors: NodeJS.ErrnoException[] = [];
  sink.on('error', (err: NodeJS.ErrnoException) => errors.push(err));
  await new Promise((resolve) => sink.once('close', resolve));
  return errors.map((e) => e.code);
}

t.test('a row is shown as aligned key/value lines under a header', async (t) => {
  const s = screen();
  s.sink.write(
    entry(
      { loss: 0.0123, lr: 0.001, 'w.mean': -0.0021, third: 1 / 3, big: 123456789, tiny: 1.5e-7, nan: NaN, inf: -Infinity },
      { step: 1200 },
    ),
  );
  t.equal(
    s.text(),
    [
      '── train  step 1200  INFO ──────────────',
      'big     123456789',
      'inf     -Infinity',
      'loss    0.0123',
      'lr      0.001',
      'nan     NaN',
      'third   0.333333',
      'tiny    1.5e-7',
      'w.mean  -0.0021',
      '',
    ].join('\n'),
  );
});

t.test('strings, booleans, null; metadata keys are not repeated; control characters are quoted', async (t) => {
  const s = screen({ digits: 3 });
  s.sink.write(
    entry({ name: 'run-1 é', ok: true, none: null, $step: 7, esc: '\x1b[31mred', x: 2 / 3 }, { table: 'eval/a', level: 35, step: 3 }),
  );
  t.equal(
    s.text(),
    [
      '── eval/a  step 3  RESULTS ─────────────',
      'esc   "\\u001b[31mred"',
      'name  run-1 é',
      'none  null',
      'ok    true',
      'x     0.667',
      '',
    ].join('\n'),
  );
});

t.test('an unnamed level is shown as its number; a long table name keeps two dashes', async (t) => {
  const s = screen();
  const table = 'a_very_long_table_name_for_the_header';
  s.sink.write(entry({ x: 1 }, { table, level: 25 }));
  t.equal(s.text(), `── ${table}  step 0  25 ──\nx  1\n`);
});

t.test('maxKeys: the keys past it become one "… N more" line', async (t) => {
  const s = screen({ maxKeys: 3 });
  s.sink.write(entry({ e: 5, d: 4, c: 3, b: 2, a: 1 }));
  t.equal(s.text().split('\n').slice(1).join('\n'), 'a  1\nb  2\nc  3\n… 2 more\n');
  const all = screen({ maxKeys: 5 });
  all.sink.write(entry({ e: 5, d: 4, c: 3, b: 2, a: 1 }));
  t.notMatch(all.text(), /more/, 'no cut line when every key fits');
  const none = screen({ maxKeys: 0 });
  none.sink.write(entry({ a: 1 }));
  t.equal(none.text().split('\n').slice(1).join('\n'), '… 1 more\n');
});

t.test('throttling: a burst prints once at once, then the latest row when the interval ends', async (t) => {
  const s = screen({ intervalMs: 50 });
  for (let step = 0; step < 10; step++) s.sink.write(entry({ loss: 1 / (step + 1) }, { step }));
  t.same(s.prints(), ['train@0'], 'the first row is printed at once, the rest wait');
  t.ok(await eventually(() => s.prints().length === 2), 'a second print comes after the interval');
  t.same(s.prints(), ['train@0', 'train@9'], 'it is the latest row');
  t.match(s.text(), /step 9 {2}INFO ─+\nloss {2}0\.1\n$/);
  await sleep(200);
  t.same(s.prints(), ['train@0', 'train@9'], 'nothing more without new rows');
  s.sink.write(entry({ loss: 0.01 }, { step: 10 }));
  t.same(s.prints(), ['train@0', 'train@9', 'train@10'], 'after a quiet interval a row prints at once again');
  s.sink.destroy();
});

t.test('throttling is per table', async (t) => {
  const s = screen({ intervalMs: 50 });
  for (let step = 0; step < 10; step++) {
    s.sink.write(entry({ a: step }, { table: 'a', step }));
    s.sink.write(entry({ b: step }, { table: 'b', step: 100 + step }));
  }
  t.same(s.prints(), ['a@0', 'b@100'], 'each table prints its first row at once');
  t.ok(await eventually(() => s.prints().length === 4));
  t.same(s.prints().slice(2).sort(), ['a@9', 'b@109'], 'then each its latest');
  s.sink.destroy();
});

t.test("a row at alwaysLevel first prints other tables' waiting rows, which are older", async (t) => {
  const s = screen({ intervalMs: 60_000 });
  for (let i = 0; i < 5; i++) s.sink.write(entry({ loss: 1 / (i + 1) }, { table: 'epoch', step: i }));
  s.sink.write(entry({ acc: 0.9 }, { table: 'eval', step: 0, level: 35 }));
  t.same(s.prints(), ['epoch@0', 'epoch@4', 'eval@0'], 'the last epoch row is shown before the result');
  s.sink.destroy();
});

t.test('rows at alwaysLevel or above print at once and replace the pending row', async (t) => {
  const s = screen({ intervalMs: 60_000 });
  s.sink.write(entry({ loss: 1 }, { step: 0 }));
  s.sink.write(entry({ loss: 2 }, { step: 1 }));
  s.sink.write(entry({ acc: 0.9 }, { step: 2, level: 35 }));
  s.sink.write(entry({ acc: 0.95 }, { step: 3, level: 50 }));
  t.same(s.prints(), ['train@0', 'train@2', 'train@3'], 'RESULTS and CRITICAL are not throttled');
  await s.sink.flush();
  t.same(s.prints(), ['train@0', 'train@2', 'train@3'], 'step 1, older than what was shown, is dropped');

  const w = screen({ intervalMs: 60_000, alwaysLevel: 'warning' });
  w.sink.write(entry({ x: 0 }, { step: 0, level: 20 }));
  for (let step = 1; step < 4; step++) w.sink.write(entry({ x: step }, { step, level: 30 }));
  w.sink.write(entry({ x: 9 }, { step: 9, level: 20 }));
  t.same(w.prints(), ['train@0', 'train@1', 'train@2', 'train@3'], 'alwaysLevel takes a level name');

  const fresh = screen({ intervalMs: 60_000 });
  fresh.sink.write(entry({ acc: 1 }, { step: 0, level: 35 }));
  fresh.sink.write(entry({ loss: 1 }, { step: 1 }));
  t.same(fresh.prints(), ['train@0', 'train@1'], 'a print at alwaysLevel does not start an interval');
  fresh.sink.destroy();
  s.sink.destroy();
  w.sink.destroy();
});

t.test('intervalMs: 0 prints every row', async (t) => {
  const s = screen({ intervalMs: 0 });
  for (let step = 0; step < 5; step++) s.sink.write(entry({ x: step }, { step }));
  t.same(s.prints(), ['train@0', 'train@1', 'train@2', 'train@3', 'train@4']);
});

t.test('pending rows are printed by flush(), flushSync() and end()', async (t) => {
  for (const how of ['flush', 'flushSync', 'end'] as const) {
    const s = screen({ intervalMs: 60_000 });
    for (let step = 0; step < 5; step++) {
      s.sink.write(entry({ a: step }, { table: 'a', step }));
      s.sink.write(entry({ b: step }, { table: 'b', step }));
    }
    if (how === 'flush') await s.sink.flush();
    else if (how === 'flushSync') s.sink.flushSync();
    else await pipeline(Readable.from([]), s.sink); // pipeline() ends the sink and waits for 'finish'
    t.same(s.prints(), ['a@0', 'b@0', 'a@4', 'b@4'], how);
    await s.sink.flush();
    t.equal(s.prints().length, 4, `${how}: a pending row is printed once`);
    s.sink.destroy();
  }
});

t.test('pipeline(Readable.from(entries), sink) prints and finishes; the stream is not ended', async (t) => {
  const s = screen({ intervalMs: 60_000 });
  const es = Array.from({ length: 100 }, (_, step) => entry({ x: step }, { table: step % 2 ? 'odd' : 'even', step }));
  await pipeline(Readable.from(es), s.sink);
  t.same(s.prints(), ['even@0', 'odd@1', 'even@98', 'odd@99']);
  t.equal(s.stream.writableEnded, false);
});

t.test('colors: on for a TTY unless NO_COLOR is set, off for other streams, or as color says', async (t) => {
  const ESC = '\x1b[';
  const saved = process.env.NO_COLOR;
  t.teardown(() => {
    if (saved === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = saved;
  });
  delete process.env.NO_COLOR;
  const shown = (opts: PrettySinkOptions, isTTY: boolean) => {
    const s = screen(opts, isTTY);
    s.sink.write(entry({ a: 1, b: 2 }));
    return s.text();
  };
  t.equal(
    shown({ maxKeys: 1 }, true),
    `${ESC}1;36m── train  step 0  INFO ─────────────────${ESC}0m\n${ESC}2ma${ESC}0m  1\n${ESC}2m… 1 more${ESC}0m\n`,
    'a TTY: bold cyan header, dim keys and cut line, plain values',
  );
  t.notMatch(shown({}, false), ESC, 'not a TTY: plain text');
  t.notMatch(shown({ color: false }, true), ESC, 'color: false on a TTY');
  t.match(shown({ color: true }, false), ESC, 'color: true on a plain stream');
  process.env.NO_COLOR = '1';
  t.notMatch(shown({}, true), ESC, 'NO_COLOR on a TTY');
});

t.test('EPIPE on the stream silences the sink: no error event, later rows ignored', async (t) => {
  const s = screen({ intervalMs: 0 });
  let errors = 0;
  s.sink.on('error', () => errors++);
  s.sink.write(entry({ x: 1 }));
  s.stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  s.sink.write(entry({ x: 2 }, { step: 1 }));
  await s.sink.flush();
  s.sink.end();
  await new Promise((resolve) => s.sink.once('finish', resolve));
  t.same(s.prints(), ['train@0']);
  t.equal(errors, 0);
});

t.test('a real broken pipe (`node fixture | head -n 3`): the child exits 0 with no error output', async (t) => {
  const built = path.join(ROOT, 'dist', 'sinks', 'pretty.js');
  t.ok(fs.existsSync(built), 'dist/sinks/pretty.js exists (run `npm run build`)');
  const fixture = path.join(ROOT, 'test', 'fixtures', 'pretty-epipe.mjs');
  const r = run('sh', ['-c', '{ node "$0"; echo "exit=$?" >&2; } | head -n 3', fixture]);
  t.equal(r.stdout, '── train  step 0  INFO ─────────────────\nloss  0.5\nlr    0.001\n', 'head got the first block');
  t.equal(r.stderr, 'later write: EPIPE\nexit=0\n', 'the pipe broke, nothing else was printed on stderr, exit code 0');
});

t.test('other stream errors become one error event on the sink, with the code', async (t) => {
  const stream = new Writable({
    write(_chunk, _enc, cb) {
      cb(Object.assign(new Error('i/o error'), { code: 'EIO' }));
    },
  });
  const sink = prettySink({ stream, intervalMs: 0 });
  const codes = errorsUntilClose(sink);
  sink.write(entry({ x: 1 }));
  t.same(await codes, ['EIO']);
  t.equal(stream.listenerCount('error'), 1, 'the sink keeps listening to the failed stream so it cannot crash the process');
});

t.test('an ended sink stops listening to a healthy stream', async (t) => {
  const s = screen();
  const before = s.stream.listenerCount('error');
  s.sink.end();
  await new Promise((resolve) => s.sink.once('close', resolve));
  t.equal(s.stream.listenerCount('error'), before - 1);
});

t.test('a malformed Entry is an error event on the sink, not a throw from write()', async (t) => {
  const { sink } = screen();
  const codes = errorsUntilClose(sink);
  t.doesNotThrow(() => sink.write({ ...entry({}), data: null }));
  t.equal((await codes).length, 1);
});

t.test('bad options throw at the factory', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['options not an object', 5, /^options: must be an object/],
    ['stream without write', { stream: {} }, /^stream: must be a Writable/],
    ['intervalMs: -1', { intervalMs: -1 }, /^intervalMs: must be a finite number from 0/],
    ['intervalMs: NaN', { intervalMs: NaN }, /^intervalMs: must be a number/],
    ['intervalMs: Infinity', { intervalMs: Infinity }, /^intervalMs: /],
    ['maxKeys: 1.5', { maxKeys: 1.5 }, /^maxKeys: must be an integer/],
    ['maxKeys: "3"', { maxKeys: '3' }, /^maxKeys: must be a number/],
    ['digits: 0', { digits: 0 }, /^digits: must be an integer from 1 to 21/],
    ['digits: 22', { digits: 22 }, /^digits: /],
    ['alwaysLevel: nope', { alwaysLevel: 'nope' }, /^alwaysLevel: unknown level/],
    ['color: "yes"', { color: 'yes' }, /^color: must be a boolean/],
  ];
  for (const [label, opts, message] of cases) {
    t.throws(() => prettySink(opts as PrettySinkOptions), { code: 'ERR_INVALID_OPTION', message }, label);
  }
  t.doesNotThrow(() => prettySink({ maxKeys: Infinity, stream: new Writable() }).destroy(), 'maxKeys: Infinity');
});

t.test('the default stream is process.stdout', async (t) => {
  const before = process.stdout.listenerCount('error');
  const sink = prettySink();
  t.equal(process.stdout.listenerCount('error'), before + 1, 'the sink listens for EPIPE on stdout');
  sink.destroy();
  t.equal(process.stdout.listenerCount('error'), before, 'and stops when destroyed');
});
