/**
 * collect()'s bounds on partial lines (issue 11): maxPendingBytes cuts the connection holding
 * the most, with one line saying why, and the others go on; a source that was cut is named in
 * its warning; bad values of the new options are rejected before binding.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { collect } from '../lib/net/collect.js';
import type { CollectWarning } from '../lib/net/collect.js';
import { readLog } from '../lib/read/read-log.js';
import { tmpdir } from './helpers.js';
import { until } from './wait.js';

/** A connection that remembers what came back and whether it closed. */
function open(port: number) {
  const s = net.connect({ host: '127.0.0.1', port });
  const c = { s, got: '', closed: false, connected: false };
  s.setEncoding('utf8');
  s.on('data', (d: string) => (c.got += d));
  s.on('error', () => undefined);
  s.once('connect', () => (c.connected = true));
  s.once('close', () => (c.closed = true));
  return c;
}

t.test('maxPendingBytes: the largest partial line is cut off with ERR_PENDING_FULL; a smaller one ends and is written', async (t) => {
  const dir = path.join(tmpdir(t), 'runs');
  const c = await collect({ port: 0, dir, maxPendingBytes: 256 * 1024, idleTimeoutMs: 60_000 });
  t.teardown(() => c.close());
  const warnings: CollectWarning[] = [];
  c.on('warning', (w: CollectWarning) => warnings.push(w));
  const small = open(c.port);
  const big = open(c.port);
  await until(() => small.connected && big.connected && c.connections === 2, 'two connections');
  // The big one names its source first, so its warning says which source lost a line.
  big.s.write('{"$source":"big","i":0}\n');
  small.s.write(`{"$source":"small","i":0,"pad":"${'s'.repeat(50_000)}`);
  await until(() => c.counts.rows === 1, 'the first row of big');
  big.s.write(`{"$source":"big","i":1,"pad":"${'b'.repeat(300_000)}`); // with small's 50 KB: past 256 KiB
  await until(() => big.closed, 'the big one to be cut off');
  t.match(JSON.parse(big.got) as object, { $error: 'ERR_PENDING_FULL', message: /closed the connection holding the longest partial line .*maxPendingBytes/ });
  t.notOk(small.closed, 'the small one goes on');
  small.s.end('"}\n');
  await until(() => small.closed && c.counts.rows === 2, "small's row");
  t.equal(c.counts.pendingFull, 1);
  t.same(warnings.map((w) => [w.code, w.source]), [['W_COLLECT_PENDING_FULL', 'big']], 'one warning, naming the source');
  await c.close();
  const rows = async (s: string) => {
    const out: Array<Record<string, unknown>> = [];
    for await (const r of readLog(path.join(dir, s, 'main.jsonl.gz'))) out.push(r);
    return out;
  };
  t.same((await rows('big')).map((r) => r.i), [0], 'big: the row before the cut');
  t.same((await rows('small')).map((r) => [r.i, String(r.pad).length]), [[0, 50_000]], 'small: its whole row');
});

t.test('maxPendingBytes and idleTimeoutMs are checked before binding', async (t) => {
  const dir = path.join(tmpdir(t), 'runs');
  await t.rejects(collect({ port: 0, dir, maxPendingBytes: 0 }), { name: 'RangeError', code: 'ERR_INVALID_OPTION', message: /^maxPendingBytes: / });
  await t.rejects(collect({ port: 0, dir, maxPendingBytes: '1' as unknown as number }), { name: 'TypeError', code: 'ERR_INVALID_OPTION' });
  await t.rejects(collect({ port: 0, dir, idleTimeoutMs: 1.5 }), { name: 'RangeError', code: 'ERR_INVALID_OPTION', message: /^idleTimeoutMs: / });
  await t.rejects(collect({ port: 0, dir, idleTimeoutMs: 2 ** 31 }), { name: 'RangeError', code: 'ERR_INVALID_OPTION' });
  t.notOk(fs.existsSync(dir), 'nothing created');
});
