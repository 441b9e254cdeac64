/**
 * The Redis collector's run leases (lib/net/collect-redis-lease.ts, docs/DESIGN.md §4 "The ack
 * rule"): which holders are stale, the fair share, and take / renew / release against a real
 * redis-server (a stale holder of this machine taken over at once, a live one waited for).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import t from 'tap';
import { fairShare, isStaleHolder, Leases } from '../lib/net/collect-redis-lease.js';
import { openRedis, redisTarget } from '../lib/io/redis-client.js';
import { needs } from './peers.js';
import { removeRedis, startRedis } from './redis.js';

const BOOT = fs.existsSync('/proc/sys/kernel/random/boot_id') ? fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() : '';
const HOST = os.hostname();

/** The pid of a process that has ended (this machine, this boot). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.once('exit', r));
  return child.pid as number;
}

t.test('isStaleHolder: only a gone process of this machine and boot', async (t) => {
  const dead = await deadPid();
  t.notOk(isStaleHolder('not a holder', 'b', HOST), 'not the holder format');
  t.notOk(isStaleHolder(`${HOST}:${dead} b`, '', HOST), 'no boot id here: never early');
  t.notOk(isStaleHolder(`other-host:${dead} b`, 'b', HOST), 'another machine');
  t.notOk(isStaleHolder(`${HOST}:${dead} b1`, 'b2', HOST), 'another boot');
  t.notOk(isStaleHolder(`${HOST}:${process.pid} b`, 'b', HOST), 'a live process');
  t.ok(isStaleHolder(`${HOST}:${dead} b`, 'b', HOST), 'a gone process');
});

t.test('fairShare: runs over the live collectors of the group; the others are gone', async (t) => {
  const dead = await deadPid();
  const polls = {
    'g me:1 b': '1000',
    'g live:2 b': '990',
    'g old:3 b': '100',
    [`g ${HOST}:${dead} ${BOOT}`]: '1000',
    'h other:4 b': '1000',
  };
  const gone: string[] = [];
  const share = fairShare(5, 1000, polls, 'g', 'g me:1 b', 500, gone);
  const staleToo = BOOT !== '';
  t.equal(share, staleToo ? 3 : 2, 'live: me and live (and the gone pid when no boot id)');
  t.same(gone.sort(), staleToo ? ['g old:3 b', `g ${HOST}:${dead} ${BOOT}`].sort() : ['g old:3 b']);
  t.equal(fairShare(3, 0, {}, 'g', 'g me', 500, []), 3, 'alone (not yet recorded): every run');
});

t.test('Leases: take, take again (ours), renew, release; a stale holder taken over, a live one waited for', async (t) => {
  if (!needs(t, 'redis-server')) return;
  const server = await startRedis();
  t.teardown(() => removeRedis(server));
  const r = openRedis(redisTarget(server.url, 'url'));
  r.on('error', () => undefined);
  t.teardown(() => r.disconnect());
  const a = new Leases(r, 'a:1', 5000);
  const b = new Leases(r, `${HOST}:${process.pid}`, 5000);
  t.same(await a.take('k1'), { taken: true });
  t.same(await a.take('k1'), { taken: true }, 'a SET whose reply was lost, sent again');
  t.same(await b.take('k1'), { taken: false }, 'held by another');
  t.ok(await a.renew('k1'));
  t.notOk(await b.renew('k1'), 'not ours to renew');
  await b.release('k1');
  t.equal(await r.get('k1'), a.holder, 'not ours to release');
  await a.release('k1');
  t.equal(await r.get('k1'), null);
  t.notOk(await a.renew('k1'), 'gone: lost');
  if (BOOT !== '') {
    const stale = `${HOST}:${await deadPid()} ${BOOT}`;
    await r.set('k2', stale);
    t.same(await b.take('k2'), { taken: true, staleHolder: stale }, 'a gone collector of this machine: taken at once');
    t.equal(await r.get('k2'), b.holder);
    await r.set('k3', `${HOST}:${process.pid} ${BOOT}x`);
    t.same(await a.take('k3'), { taken: false }, 'a holder of another boot is waited for');
  }
  const hb = await a.heartbeat('hb', 'g a:1');
  t.ok(hb.now > 0);
  t.same(Object.keys(hb.polls), ['g a:1']);
});
