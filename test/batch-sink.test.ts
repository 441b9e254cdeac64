// sinks/batch-sink.ts: rows kept by _write and handed to the backend in batches (by count, by
// the interval from a timer, or from _write when the event loop does not turn), the memory bound,
// and the sink's end and destruction reaching the backend.
import t from 'tap';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { BatchSink } from '../sinks/batch-sink.js';
import type { BatchBackend, BatchSinkOptions, BatchWarn } from '../sinks/batch-sink.js';

class Recorder implements BatchBackend {
  batches: number[][] = [];
  pending = 0;
  calls: string[] = [];
  warn: BatchWarn;
  constructor(warn: BatchWarn) {
    this.warn = warn;
  }
  write(batch: Array<Entry<FlatRow>>): void {
    this.batches.push(batch.map((e) => e.step));
    this.pending += batch.length;
  }
  async flush(): Promise<void> {
    this.calls.push('flush');
    this.pending = 0;
  }
  flushSync(): void {
    this.calls.push('flushSync');
    this.pending = 0;
  }
  async close(): Promise<void> {
    this.calls.push('close');
    this.pending = 0;
  }
  closeSync(): void {
    this.calls.push('closeSync');
  }
}

const entry = (step: number): Entry<FlatRow> => ({ table: 't', level: 20, step, time: 1_700_000_000_000 + step, data: { x: step } });

function make(opts: BatchSinkOptions = {}): { sink: BatchSink; rec: Recorder } {
  let rec: Recorder | undefined;
  const sink = new BatchSink(opts, (warn) => (rec = new Recorder(warn)));
  return { sink, rec: rec as unknown as Recorder };
}

t.test('a batch goes when it holds maxBatchRows, or from the timer after flushIntervalMs', async (t) => {
  const { sink, rec } = make({ maxBatchRows: 3, flushIntervalMs: 20 });
  for (let i = 0; i < 7; i++) sink.write(entry(i));
  t.same(rec.batches, [[0, 1, 2], [3, 4, 5]], 'two full batches at once');
  t.equal(sink.queuedRows, 6 + 1, 'the backend holds 6, the sink 1');
  await new Promise<void>((done) => {
    const check = (): void => (rec.batches.length === 3 ? done() : void setImmediate(check));
    check();
  });
  t.same(rec.batches[2], [6], 'the last row came with the timer');
  await sink.flush();
  t.same(rec.calls, ['flush']);
  t.equal(sink.queuedRows, 0);
});

t.test('in a loop that never yields, an overdue batch is handed from write()', async (t) => {
  const { sink, rec } = make({ flushIntervalMs: 5 });
  const end = performance.now() + 2000;
  let i = 0;
  while (rec.batches.length === 0 && performance.now() < end) sink.write(entry(i++));
  t.equal(rec.batches.length, 1, 'handed without the timer firing');
  t.ok((rec.batches[0] ?? []).length > 1, 'with every row waiting');
  sink.destroy();
});

t.test('past maxQueuedRows the backend stores synchronously; nothing is dropped', async (t) => {
  const { sink, rec } = make({ maxBatchRows: 2, maxQueuedRows: 3 });
  for (let i = 0; i < 4; i++) sink.write(entry(i));
  t.same(rec.batches, [[0, 1], [2, 3]]);
  t.same(rec.calls, ['flushSync'], 'once the backend held 4 > 3');
  sink.flushSync();
  t.same(rec.calls, ['flushSync', 'flushSync']);
  sink.destroy();
  sink.flushSync(); // destroyed: nothing
  t.same(rec.calls, ['flushSync', 'flushSync', 'closeSync']);
});

t.test('end() hands the rest and closes the backend; warnings are the sink\'s, each once', async (t) => {
  const { sink, rec } = make();
  const warnings: string[] = [];
  sink.on('warning', (w: { code: string }) => warnings.push(w.code));
  sink.write(entry(0));
  rec.warn({ code: 'W_X', message: 'x' }, 'a');
  rec.warn({ code: 'W_X', message: 'x' }, 'a');
  rec.warn({ code: 'W_X', message: 'x' }, 'b');
  await new Promise<void>((done) => sink.end(done));
  t.same(rec.batches, [[0]]);
  t.same(rec.calls.slice(0, 1), ['close']);
  t.same(warnings, ['W_X', 'W_X']);
});

t.test('a backend whose close fails fails the sink; a non-Entry is an error', async (t) => {
  let rec: Recorder | undefined;
  const sink = new BatchSink({}, (warn) => {
    rec = new Recorder(warn);
    rec.close = async () => {
      throw new Error('disk gone');
    };
    return rec;
  });
  const err = await new Promise<Error>((done) => {
    sink.on('error', done);
    sink.end();
  });
  t.match(err.message, /disk gone/);
  const { sink: s2 } = make();
  const e2 = await new Promise<Error>((done) => {
    s2.on('error', done);
    s2.write({ nope: 1 });
  });
  t.match(e2.message, /Entries/);
});

t.test('options are checked with the one vocabulary', async (t) => {
  t.throws(() => make({ maxBatchRows: 0 }), { code: 'ERR_INVALID_OPTION', message: /^maxBatchRows/ });
  t.throws(() => make({ flushIntervalMs: -1 }), { code: 'ERR_INVALID_OPTION', message: /^flushIntervalMs/ });
  t.throws(() => make({ maxQueuedRows: 1.5 }), { code: 'ERR_INVALID_OPTION', message: /^maxQueuedRows/ });
  t.throws(() => new BatchSink(null as unknown as BatchSinkOptions, () => new Recorder(() => {})), { code: 'ERR_INVALID_OPTION' });
});

t.test('a backend that throws (a bug) fails the sink with the error; write() and the timer never throw', async (t) => {
  let rec: Recorder | undefined;
  const sink = new BatchSink({ maxBatchRows: 2 }, (warn) => {
    rec = new Recorder(warn);
    rec.write = () => {
      throw new Error('encoder bug');
    };
    return rec;
  });
  const err = new Promise<Error>((done) => sink.on('error', done));
  sink.write(entry(0));
  t.doesNotThrow(() => sink.write(entry(1)), 'the batch handed from write() threw inside the sink');
  t.match((await err).message, /encoder bug/);
});
