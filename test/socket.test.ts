/**
 * socketSink (server and push mode) and connect(), with real TCP clients on 127.0.0.1:
 * backlog then live with no gap or duplicate, `$seq`, reconnect, slow clients, tokens,
 * insecure binds, churn of many clients, and the push side's buffering while a collector is away.
 */
import dc from 'node:diagnostics_channel';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import type { Test } from 'tap';
import { connect, createLogger, isRowlogError, socketSink, SocketSink } from '../lib/index.js';
import type { RowlogWarning } from '../lib/index.js';
import { checkListen } from '../lib/io/listen.js';
import { tmpdir } from './helpers.js';
import { freePort, listenLocal } from './ports.js';
import { patient, until as waitUntil } from './wait.js';

type Row = Record<string, unknown>;

/** Pushes every whole line `socket` receives onto `lines`. */
function keepLines(socket: net.Socket, lines: string[]): void {
  let rest = '';
  socket.setEncoding('utf8');
  socket.on('data', (s: string) => {
    const parts = (rest + s).split('\n');
    rest = parts.pop() as string;
    lines.push(...parts);
  });
}

/** A raw TCP client that keeps every line it gets. */
function rawClient(port: number, first?: string): { socket: net.Socket; lines: string[]; rows: () => Row[]; closed: Promise<void> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  if (first !== undefined) socket.write(`${first}\n`);
  const lines: string[] = [];
  keepLines(socket, lines);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, lines, rows: () => lines.map((l) => JSON.parse(l) as Row), closed };
}

const until = (cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> => waitUntil(cond, what, ms);

/**
 * Counts the connections this process's clients get refused on 127.0.0.1:`port` (sockets seen on
 * Node's 'net.client.socket' diagnostics channel), so a test can wait for a client to have been
 * refused and to have retried instead of sleeping.
 */
function refusals(t: Test, port: number): { count: number } {
  const seen = { count: 0 };
  const onSocket = (msg: unknown) => {
    (msg as { socket: net.Socket }).socket.once('error', (err: NodeJS.ErrnoException & { port?: number }) => {
      if (err.code === 'ECONNREFUSED' && err.port === port) seen.count++;
    });
  };
  dc.subscribe('net.client.socket', onSocket);
  t.teardown(() => void dc.unsubscribe('net.client.socket', onSocket));
  return seen;
}

async function server(t: Test, opts: Parameters<typeof socketSink>[0] = {}) {
  const sink = socketSink({ port: 0, ...opts });
  const { port } = await sink.address();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  t.teardown(() => log.close());
  return { sink, port, log };
}


t.test('a subscriber gets the last `backlog` rows, then live ones, each with $table and a $seq one more than the last', async (t) => {
  const { port, log } = await server(t, { backlog: 5 });
  for (let i = 0; i < 20; i++) log.row(i % 2 ? 'b' : 'a', { i, w: [1, 2, 3] }, { time: 1000 + i });
  const c = rawClient(port);
  await until(() => c.lines.length === 5, 5000, 'backlog');
  for (let i = 20; i < 30; i++) log.row('a', { i });
  await until(() => c.lines.length === 15, 5000, 'live rows');
  const rows = c.rows();
  t.same(
    rows.map((r) => r.$seq),
    Array.from({ length: 15 }, (_, k) => 16 + k),
  );
  t.same(
    rows.map((r) => r.i),
    Array.from({ length: 15 }, (_, k) => 15 + k),
  );
  t.same(c.lines[0], '{"$step":7,"$time":1015,"$level":20,"$table":"b","$seq":16,"i":15,"w.max":3,"w.mean":2,"w.min":1,"w.std":0.816496580927726}');
  t.same(Object.keys(rows[14] as Row).slice(0, 5), ['$step', '$time', '$level', '$table', '$seq'], 'metadata first');
  c.socket.destroy();
});

t.test('no gap and no duplicate at the switch-over while rows keep coming; several tables share one $seq', async (t) => {
  const { port, log, sink } = await server(t, { backlog: 50 });
  let logging = true;
  let n = 0;
  const loop = (async () => {
    while (logging) {
      for (let k = 0; k < 7; k++) log.row(k % 3 === 0 ? 'eval' : 'train', { n: n++ });
      await sleep(0);
    }
  })();
  const clients: Array<ReturnType<typeof rawClient>> = [];
  for (let i = 0; i < 8; i++) {
    await sleep(5 + Math.random() * 20);
    clients.push(rawClient(port));
  }
  await until(() => sink.clients === 8);
  const at = n;
  await until(() => n >= at + 350, 5000, 'rows logged while all 8 are connected'); // (was: 50 ms of logging)
  logging = false;
  await loop;
  await log.close();
  await Promise.all(clients.map((c) => c.closed));
  for (const [i, c] of clients.entries()) {
    const seqs = c.rows().map((r) => r.$seq as number);
    t.ok(seqs.length >= 50, `client ${i}: ${seqs.length} rows`);
    t.equal(seqs.at(-1), n, `client ${i} got up to the last row`);
    t.ok(
      seqs.every((s, k) => k === 0 || s === (seqs[k - 1] as number) + 1),
      `client ${i}: $seq ${seqs[0]}…${seqs.at(-1)} has no gap or duplicate`,
    );
    t.same(
      c.rows().map((r) => r.n),
      seqs.map((s) => s - 1),
      'rows in order',
    );
  }
});

t.test('connect(): rows as objects with NaN/Infinity restored; ends when the sink closes', async (t) => {
  const { port, log } = await server(t);
  log.row('t', { a: NaN, b: Infinity, c: -Infinity, s: 'x' });
  const rows: Row[] = [];
  for await (const row of connect({ port })) {
    rows.push(row as Row);
    if (rows.length === 1) {
      log.row('t', { a: 1 });
      void log.close();
    }
  }
  t.equal(rows.length, 2);
  t.ok(Number.isNaN(rows[0]?.a));
  t.equal(rows[0]?.b, Infinity);
  t.equal(rows[0]?.c, -Infinity);
  t.same(rows[1], { $step: 1, $time: rows[1]?.$time, $level: 20, $table: 't', $seq: 2, a: 1 });
});

t.test('connect({reconnect}) resumes after the last $seq it saw: no duplicates; since skips older rows', async (t) => {
  const { port, log } = await server(t, { backlog: 100 });
  // A proxy between client and sink whose connections the test can cut.
  const links = new Set<net.Socket>();
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect({ host: '127.0.0.1', port });
    inbound.pipe(outbound).pipe(inbound);
    const cut = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', cut).on('close', cut);
    outbound.on('error', cut).on('close', cut);
    links.add(inbound);
    inbound.once('close', () => links.delete(inbound));
  });
  t.teardown(() => proxy.close());
  const proxyPort = await listenLocal(proxy);

  for (let i = 0; i < 10; i++) log.row('t', { i });
  const c = connect({ port: proxyPort, reconnect: true, since: 3 });
  const seqs: number[] = [];
  c.on('data', (r: Row) => seqs.push(r.$seq as number));
  await until(() => seqs.length === 7);
  t.same(seqs, [4, 5, 6, 7, 8, 9, 10], 'since: 3 skips rows 1..3');
  for (let cut = 0; cut < 3; cut++) {
    for (const s of links) s.destroy(); // connection lost
    for (let i = 0; i < 5; i++) log.row('t', { i });
    await until(() => seqs.length === 12 + 5 * cut, 5000, `rows after cut ${cut}`);
  }
  t.same(
    seqs,
    Array.from({ length: 22 }, (_, k) => 4 + k),
    'every row exactly once across 3 reconnections',
  );
  t.equal(c.lastSeq, 25);
  c.destroy();
});

t.test('connect({reconnect}) reports rows that left the backlog while it was away as dropped', async (t) => {
  const sink = socketSink({ port: 0, backlog: 3 });
  const { port } = await sink.address();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  log.row('t', { i: 0 });
  const c = connect({ port, reconnect: true });
  const seqs: number[] = [];
  let dropped = 0;
  c.on('data', (r: Row) => seqs.push(r.$seq as number));
  c.on('dropped', (n: number) => (dropped += n));
  await until(() => seqs.length === 1);
  await log.close(); // the sink goes away…
  const sink2 = socketSink({ port, backlog: 3 }); // …and a new one takes the port
  await sink2.address();
  const log2 = createLogger({ sinks: [sink2], exitHooks: false });
  t.teardown(() => log2.close());
  for (let i = 0; i < 10; i++) log2.row('t', { i });
  await until(() => seqs.length === 4, 8000, 'rows after reconnecting');
  t.same(seqs, [1, 8, 9, 10]);
  t.equal(dropped, 6, 'rows 2..7 were not in the backlog: reported');
  c.destroy();
});

t.test('connect({reconnect}) to a trainer restarted on the same port: its rows from $seq 1 are passed on, with a restart event', async (t) => {
  const sink = socketSink({ port: 0 });
  const { port } = await sink.address();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  for (let i = 0; i < 50; i++) log.row('t', { run: 1, i }, { time: 1000 + i });
  const c = connect({ port, reconnect: true });
  const rows: Row[] = [];
  const restarts: number[] = [];
  c.on('data', (r: Row) => rows.push(r));
  c.on('restart', (n: number) => restarts.push(n));
  await until(() => rows.length === 50);
  await log.close(); // the trainer ends…
  const sink2 = socketSink({ port }); // …and a new one starts on the same port
  await sink2.address();
  const log2 = createLogger({ sinks: [sink2], exitHooks: false });
  t.teardown(() => log2.close());
  for (let i = 0; i < 5; i++) log2.row('t', { run: 2, i }, { time: 5000 + i });
  await until(() => rows.length === 55, 8000, 'the new run');
  t.same(restarts, [50]);
  t.same(
    rows.slice(50).map((r) => [r.run, r.$seq]),
    [
      [2, 1],
      [2, 2],
      [2, 3],
      [2, 4],
      [2, 5],
    ],
  );
  t.equal(c.lastSeq, 5);
  c.destroy();
});

t.test('connect() without reconnect fails with the socket error; reconnect retries until the sink is there', async (t) => {
  const port = await freePort();
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => connect({ port }).on('error', resolve).resume());
  t.equal(err.code, 'ECONNREFUSED');

  const refused = refusals(t, port);
  const c = connect({ port, reconnect: true });
  const rows: Row[] = [];
  c.on('data', (r: Row) => rows.push(r));
  await until(() => refused.count >= 3, 5000, 'three refused dials'); // refused, retried, refused again
  const sink = socketSink({ port });
  await sink.address();
  sink.write({ table: 't', level: 20, step: 0, time: 1, data: { ok: true } });
  await until(() => rows.length === 1, 8000, 'the row after the sink appeared');
  t.equal(rows[0]?.ok, true);
  c.destroy();
  sink.destroy();
});

t.test('a stalled client is bounded by maxClientBytes: old lines dropped, then {"$dropped":n}; the others get everything', async (t) => {
  const { port, log, sink } = await server(t, { backlog: 0, maxClientBytes: 64 * 1024 });
  const stalled = rawClient(port);
  const fast = rawClient(port);
  await until(() => sink.clients === 2);
  stalled.socket.pause(); // reads nothing: the kernel buffers fill, then our bound applies
  const N = 100_000;
  for (let i = 0; i < N; i++) {
    log.row('t', { i, pad: 'x'.repeat(40) });
    if (i % 1000 === 999) await sleep(0);
  }
  await until(() => fast.lines.length === N, 20_000, 'the fast client');
  t.same(
    fast.rows().map((r) => r.$seq),
    Array.from({ length: N }, (_, k) => k + 1),
    'the fast client got every row, in order',
  );
  stalled.socket.resume();
  log.row('t', { i: N, last: true });
  await until(() => stalled.lines.at(-1)?.includes('"last":true') === true, 10_000, 'the stalled client catching up');
  const rows = stalled.rows();
  const dropped = rows.filter((r) => '$dropped' in r).reduce((n, r) => n + (r.$dropped as number), 0);
  const got = rows.filter((r) => '$seq' in r);
  t.ok(dropped > N / 2, `${dropped} lines dropped for the stalled client`);
  t.ok(got.length < N / 2, `it got ${got.length} rows`);
  t.equal(got.length + dropped, N + 1, 'every row is either received or counted as dropped');
  const seqs = got.map((r) => r.$seq as number);
  t.ok(
    seqs.every((s, k) => k === 0 || s > (seqs[k - 1] as number)),
    '$seq strictly increasing',
  );
  // Each $dropped marker explains the gap that follows it exactly.
  let expect = 1;
  let unexplained = 0;
  for (const r of rows) {
    if ('$dropped' in r) expect += r.$dropped as number;
    else if (r.$seq !== expect++) unexplained++;
  }
  t.equal(unexplained, 0, 'each {"$dropped":n} accounts exactly for the gap after it');
  stalled.socket.destroy();
  fast.socket.destroy();
});

t.test('a token is required as the first line; a wrong one gets {"$error":"ERR_BAD_TOKEN"} and is closed', async (t) => {
  const { port, log } = await server(t, { token: 's3cret' });
  log.row('t', { a: 1 });
  const right = rawClient(port, 's3cret');
  const wrong = rawClient(port, 'guess');
  const none = rawClient(port);
  await until(() => right.lines.length === 1);
  t.equal(right.rows()[0]?.a, 1);
  await wrong.closed;
  t.same(wrong.rows(), [{ $error: 'ERR_BAD_TOKEN', message: 'wrong token' }]);
  await sleep(100);
  t.same(none.lines, [], 'nothing before the token');
  none.socket.destroy();

  const rows: Row[] = [];
  const c = connect({ port, token: 's3cret' });
  c.on('data', (r: Row) => rows.push(r));
  await until(() => rows.length === 1);
  c.destroy();
  const err = await new Promise<Error>((resolve) => connect({ port, token: 'nope' }).on('error', resolve).resume());
  t.ok(isRowlogError(err) && err.code === 'ERR_BAD_TOKEN', err.message);
  right.socket.destroy();
});

t.test('close() does not wait for clients still sending their token, nor for one that authenticates during close', async (t) => {
  const { port, log, sink } = await server(t, { token: 'secret' });
  log.row('t', { a: 1 });
  const silent = rawClient(port); // connected, never sends the token
  const late = net.connect({ host: '127.0.0.1', port });
  late.pause(); // a stalled viewer that authenticates while the sink closes
  late.on('error', () => undefined);
  await new Promise((r) => late.once('connect', r));
  await sleep(20);
  const closing = log.close();
  late.write('secret\n');
  const outcome = await Promise.race([closing.then(() => 'closed'), sleep(patient(4000), undefined, { ref: false }).then(() => `still waiting after ${patient(4000)} ms`)]);
  t.equal(outcome, 'closed');
  t.equal(sink.clients, 0);
  await silent.closed;
  t.same(silent.lines, [], 'no row reached a client without the token');
  late.destroy();
});

t.test('binding beyond loopback needs a token or allowInsecure: ERR_INSECURE_BIND', async (t) => {
  for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
    t.throws(() => socketSink({ port: 0, host }), { code: 'ERR_INSECURE_BIND' }, host);
  }
  const err = (() => {
    try {
      socketSink({ port: 0, host: '0.0.0.0' });
    } catch (e) {
      return e as Error;
    }
  })();
  t.ok(isRowlogError(err));
  t.match(err?.message, /token/);
  // The rule itself (without opening a port beyond loopback in a test):
  t.same(checkListen({ host: '0.0.0.0', token: 't' }, 'x').host, '0.0.0.0');
  t.equal(checkListen({ host: '0.0.0.0', allowInsecure: true }, 'x').allowInsecure, true);
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) t.doesNotThrow(() => checkListen({ host }, 'x'), host);
});

t.test('options are checked in the factory', async (t) => {
  t.throws(() => socketSink({}), { code: 'ERR_INVALID_OPTION', name: 'TypeError' });
  t.throws(() => socketSink({ port: 1, connect: '127.0.0.1:1' }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => socketSink({ port: 70000 }), { code: 'ERR_INVALID_OPTION', name: 'RangeError' });
  t.throws(() => socketSink({ port: 0, backlog: -1 }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => socketSink({ port: 0, maxClientBytes: 10 }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => socketSink({ port: 0, token: 'a\nb' }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => socketSink({ connect: 'nowhere' }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => socketSink({ connect: '127.0.0.1:1', source: '../x' }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => connect({ port: 0 }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => connect({ port: 1, since: -1 }), { code: 'ERR_INVALID_OPTION' });
  const push = socketSink({ connect: '127.0.0.1:1', source: 'x' });
  await t.rejects(push.address(), { code: 'ERR_INVALID_OPTION' });
  push.destroy();
});

t.test('a port in use: the sink fails with EADDRINUSE, the logger warns once and the other sinks keep every row', async (t) => {
  const taken = net.createServer();
  const port = await listenLocal(taken);
  t.teardown(() => taken.close());
  const dir = tmpdir(t);
  const warnings: RowlogWarning[] = [];
  const log = createLogger({ dir, console: false, exitHooks: false, socket: { port } });
  log.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 100; i++) {
    log.row('t', { i });
    await sleep(0);
  }
  await log.close();
  t.same(
    warnings.map((w) => w.code),
    ['W_SINK_ERROR'],
  );
  t.match(warnings[0]?.message, /EADDRINUSE/);
  t.equal(log.table('t').length, 100);
});

t.test('clients that die mid-stream cost nothing: the logger goes on', async (t) => {
  const { port, log, sink } = await server(t);
  const clients = Array.from({ length: 5 }, () => rawClient(port));
  await until(() => sink.clients === 5);
  for (let i = 0; i < 1000; i++) {
    log.row('t', { i });
    if (i === 500) for (const c of clients) c.socket.resetAndDestroy();
    if (i % 100 === 0) await sleep(1);
  }
  await until(() => sink.clients === 0);
  const late = rawClient(port);
  await until(() => late.lines.length === 1000, 5000, 'the backlog');
  t.equal(late.rows().at(-1)?.i, 999);
  late.socket.destroy();
});

t.test('50 clients joining and leaving at random while 100,000 rows are logged: no crash, no leaked handle', async (t) => {
  const before = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
  const sink = socketSink({ port: 0, backlog: 200, maxClientBytes: 256 * 1024 });
  const { port } = await sink.address();
  const log = createLogger({ sinks: [sink], exitHooks: false });
  const errors: Error[] = [];
  sink.on('error', (e: Error) => errors.push(e));
  const checks: Array<Promise<string | undefined>> = [];
  let joined = 0;
  let received = 0;
  const spawnClient = () => {
    joined++;
    const c = connect({ port });
    let last = 0;
    let bad: string | undefined;
    c.on('dropped', (n: number) => (last += n));
    c.on('data', (r: Row) => {
      received++;
      const s = r.$seq as number;
      if (last !== 0 && s !== last + 1) bad ??= `row ${s} after ${last}`;
      last = s;
    });
    // Its life is counted in rows received, not in ms: on a loaded machine fewer rows are
    // logged per ms, and a life in ms made the rows received in all a measure of speed.
    const life = 5 + Math.floor(Math.random() * 6000);
    let got = 0;
    c.on('data', () => {
      if (++got === life) c.destroy();
    });
    checks.push(
      new Promise((resolve) => {
        c.once('close', () => resolve(bad));
        c.on('error', () => undefined);
      }),
    );
  };
  for (let i = 0; i < 100_000; i++) {
    log.row(i % 10 === 0 ? 'eval' : 'train', { i, loss: 1 / (i + 1) });
    if (i % 2000 === 0 && joined < 50) for (let k = 0; k < 1 + Math.floor(Math.random() * 3) && joined < 50; k++) spawnClient();
    if (i % 500 === 0) await sleep(0);
  }
  while (joined < 50) spawnClient();
  await log.close();
  const problems = (await Promise.all(checks)).filter((p) => p !== undefined);
  t.same(problems, [], 'every client saw contiguous $seq (gaps only where $dropped said so)');
  t.same(errors, []);
  t.equal(joined, 50);
  const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
  await until(() => tcpHandles() <= before, 2000, 'the TCP handles to close').catch(() => undefined); // asserted just below
  const after = tcpHandles();
  t.ok(after <= before, `TCP handles after close: ${after} (before the test: ${before})`);
  t.ok(received > 100_000, `the clients received ${received} rows in all`);
});

t.test('push mode: lines carry $source and $seq; rows logged while the collector is away arrive when it is back', async (t) => {
  const received: string[] = [];
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const collector = () =>
    net.createServer((s) => {
      conns++;
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      keepLines(s, received);
    });
  let srv = collector();
  const port = await listenLocal(srv);
  const sink = socketSink({ connect: `127.0.0.1:${port}`, source: 'run-1' });
  const log = createLogger({ sinks: [sink], exitHooks: false });
  for (let i = 0; i < 10; i++) log.row('t', { i });
  await until(() => received.length === 10);
  t.same(JSON.parse(received[0] as string), { $step: 0, $time: JSON.parse(received[0] as string).$time, $level: 20, $table: 't', $seq: 1, $source: 'run-1', i: 0 });

  const refused = refusals(t, port);
  for (const s of sockets) s.destroy(); // the collector dies
  await new Promise((r) => srv.close(r));
  await until(() => refused.count >= 1, 5000, 'the sink to find the collector gone');
  for (let i = 10; i < 20; i++) log.row('t', { i }); // logged while it is away
  await until(() => refused.count >= 2, 5000, 'the sink to be refused with rows waiting');
  srv = collector();
  await listenLocal(srv, port);
  t.teardown(() => srv.close());
  await until(() => received.length === 20, 8000, 'the buffered rows');
  t.same(
    received.map((l) => (JSON.parse(l) as Row).i),
    Array.from({ length: 20 }, (_, k) => k),
  );
  t.ok(conns >= 2, 'reconnected');
  await log.close();
});

t.test('push mode: the buffer while the collector is away is bounded; one warning says rows were dropped', async (t) => {
  const port = await freePort();
  const sink = socketSink({ connect: `127.0.0.1:${port}`, source: 'x', maxClientBytes: 16 * 1024 });
  const warnings: RowlogWarning[] = [];
  const log = createLogger({ sinks: [sink], exitHooks: false });
  log.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 5000; i++) log.row('t', { i, pad: 'y'.repeat(50) });
  await sleep(10);
  await log.close();
  t.same(
    warnings.map((w) => w.message.replace(/.* is away (and|at close).*/, '$1')),
    ['and', 'at close'],
    'one warning when rows are first dropped, one for those still buffered at close',
  );
  t.same(
    warnings.map((w) => w.code),
    ['W_SOCKET_DROPPED', 'W_SOCKET_DROPPED'],
  );
});

t.test('push mode: a collector that refuses the token is reported once; the sink keeps retrying', async (t) => {
  let refused = 0;
  const srv = net.createServer((s) => {
    refused++;
    s.end('{"$error":"ERR_BAD_TOKEN","message":"wrong token"}\n');
  });
  const srvPort = await listenLocal(srv);
  t.teardown(() => srv.close());
  const sink = socketSink({ connect: `127.0.0.1:${srvPort}`, source: 'x', token: 'bad' });
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  await until(() => refused >= 3, 5000, 'three attempts');
  sink.destroy();
  t.same(
    warnings.map((w) => w.code),
    ['W_SOCKET_REFUSED'],
  );
  t.match(warnings[0]?.message, /wrong token/);
});

t.test('createLogger({dir, socket}) adds the sink to the defaults; push mode names the source after the run', async (t) => {
  const dir = tmpdir(t);
  const sink = socketSink({ port: 0 });
  const { port } = await sink.address();
  const log = createLogger({ dir, console: false, exitHooks: false, socket: sink });
  t.ok(sink instanceof SocketSink);
  const c = rawClient(port);
  await until(() => sink.clients === 1);
  log.row('train', { loss: 1 });
  await until(() => c.lines.length === 1);
  t.equal(c.rows()[0]?.loss, 1);
  await log.close();

  const lines: string[] = [];
  const srv = net.createServer((s) => keepLines(s, lines));
  const srvPort = await listenLocal(srv);
  t.teardown(() => srv.close());
  const runDir = `${tmpdir(t)}/my-run`;
  const pushLog = createLogger({ dir: runDir, console: false, exitHooks: false, socket: { connect: `127.0.0.1:${srvPort}` } });
  pushLog.row('t', { a: 1 });
  await until(() => lines.length === 1);
  t.equal((JSON.parse(lines[0] as string) as Row).$source, 'my-run');
  await pushLog.close();
});

t.test('push mode: a bare sink ended right after writing delivers every row and warns nothing; rows really lost are counted', async (t) => {
  const received: string[] = [];
  const peers = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    peers.add(s);
    keepLines(s, received);
  });
  const port = await listenLocal(srv);
  t.teardown(() => {
    peers.forEach((s) => s.destroy());
    srv.close();
  });
  const sink = socketSink({ connect: `127.0.0.1:${port}`, source: 'quick' });
  t.teardown(() => sink.destroy());
  const warnings: RowlogWarning[] = [];
  sink.on('warning', (w: RowlogWarning) => warnings.push(w));
  for (let i = 0; i < 5; i++) sink.write({ table: 't', level: 20, step: i, time: 1_700_000_000_000 + i, data: { i } });
  sink.end(); // still connecting
  await new Promise((r) => sink.once('finish', r));
  await until(() => received.length === 5, 5000, 'the five rows');
  t.same(received.map((l) => (JSON.parse(l) as Row).i), [0, 1, 2, 3, 4], 'the collector got every row');
  t.same(warnings, [], 'no W_SOCKET_DROPPED');

  // Nobody listening: the rows are lost, and the warning says how many.
  const goneAddress = `127.0.0.1:${await freePort()}`;
  const lost = socketSink({ connect: goneAddress, source: 'lost' });
  t.teardown(() => lost.destroy());
  const lostWarnings: RowlogWarning[] = [];
  lost.on('warning', (w: RowlogWarning) => lostWarnings.push(w));
  for (let i = 0; i < 3; i++) lost.write({ table: 't', level: 20, step: i, time: 1, data: { i } });
  lost.end();
  await new Promise((r) => lost.once('finish', r));
  t.same(lostWarnings.map((w) => w.code), ['W_SOCKET_DROPPED']);
  t.match(lostWarnings[0]?.message, /is away at close; 3 rows buffered for it are lost/);
});
