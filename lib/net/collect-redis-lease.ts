/**
 * The run lease of a Redis collector (docs/DESIGN.md §4, "The ack rule"; issue 14): the collectors
 * of one consumer group share the work by run, and a collector writes a run only while it holds
 * `P:R:owner:<group>` (lib/format/redis-stream.ts `ownerKey`).
 *
 * - Taken with `SET key holder NX PX leaseMs`; renewed (every third of `leaseMs`, by the caller)
 *   and released with a compare-and-set in Lua, so a collector never extends or deletes a lease
 *   another one took after its own ran out.
 * - The holder is `<host>:<pid> <boot id>`. A lease whose holder is a process of this very
 *   machine (same host name and boot id) that is gone is taken over at once, as a stale
 *   `rowlog.lock` is (lib/run/run-lock.ts): a collector SIGKILLed and restarted does not wait
 *   `leaseMs`. A holder on another machine, or one whose pid lives, is waited for.
 * - The collectors of a group share the runs out evenly: each records its polls in
 *   `P:collectors` (Redis's clock) and takes a free run only while it holds fewer than its
 *   {@link fairShare}; the share of one that stopped polling for `leaseMs` goes to the others.
 * - The caller keeps `validUntil` (the start of the last successful SET or renewal plus
 *   `leaseMs`, by this machine's clock: never later than Redis's expiry) and reads a run's
 *   streams only well within it.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Redis } from '../io/redis-client.js';

/** Extends the lease when it is still ours. */
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
/** Deletes the lease when it is still ours. */
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
/** Replaces a stale holder's lease, unless someone replaced it first. */
const TAKE_OVER = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";

/** Records this collector's poll at Redis's time; returns that time (ms) and every collector's last poll. */
const HEARTBEAT =
  "local t = redis.call('time') local ms = t[1] * 1000 + math.floor(t[2] / 1000) redis.call('hset', KEYS[1], ARGV[1], ms) return {ms, redis.call('hgetall', KEYS[1])}";

/** This boot of this machine (Linux); '' elsewhere, where no lease is ever taken over early. */
function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** True when `holder` is a process of this machine, this boot, that no longer exists. */
export function isStaleHolder(holder: string, boot = bootId(), host = os.hostname()): boolean {
  const m = /^(.*):(\d+) (\S+)$/.exec(holder);
  if (m === null || boot === '' || m[1] !== host || m[3] !== boot) return false;
  try {
    process.kill(Number(m[2]), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * How many runs each collector of a group should hold: the runs over the live collectors (those
 * that polled within `leaseMs` and are not gone processes of this machine), rounded up; `gone`
 * gets the fields of the others, to delete.
 */
export function fairShare(runs: number, now: number, polls: Record<string, string>, group: string, self: string, leaseMs: number, gone: string[]): number {
  let live = 0;
  for (const [field, at] of Object.entries(polls)) {
    if (!field.startsWith(`${group} `)) continue;
    if (field === self) live++;
    else if (now - Number(at) > leaseMs || isStaleHolder(field.slice(group.length + 1))) gone.push(field);
    else live++;
  }
  return Math.ceil(runs / Math.max(1, live));
}

/** The leases of one collector: take, renew, release. */
export class Leases {
  /** What this collector writes into its leases: `<consumer> <boot id>`. */
  readonly holder: string;
  readonly #redis: Redis;
  readonly #ms: number;

  constructor(redis: Redis, consumer: string, leaseMs: number) {
    this.#redis = redis;
    this.holder = `${consumer} ${bootId() || '-'}`;
    this.#ms = leaseMs;
  }

  /** Takes `key` when it is free or its holder is gone ({@link isStaleHolder}); the stale holder taken over, if any. */
  async take(key: string): Promise<{ taken: boolean; staleHolder?: string }> {
    if ((await this.#redis.set(key, this.holder, 'PX', this.#ms, 'NX')) === 'OK') return { taken: true };
    const now = await this.#redis.get(key);
    if (now === this.holder) return { taken: await this.renew(key) }; // ours: a SET whose reply was lost, sent again
    if (now === null || !isStaleHolder(now)) return { taken: false };
    const done = await this.#redis.eval(TAKE_OVER, 1, key, now, this.holder, this.#ms);
    return done === 1 ? { taken: true, staleHolder: now } : { taken: false };
  }

  /** Extends `key` by `leaseMs` when it is still ours; false when it is not (lost). */
  async renew(key: string): Promise<boolean> {
    return (await this.#redis.eval(RENEW, 1, key, this.holder, this.#ms)) === 1;
  }

  /** Records this collector's poll in the hash `key` as `field`; Redis's time and every field's last poll. */
  async heartbeat(key: string, field: string): Promise<{ now: number; polls: Record<string, string> }> {
    const [now, flat] = (await this.#redis.eval(HEARTBEAT, 1, key, field)) as [number, string[]];
    const polls: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) polls[flat[i] as string] = flat[i + 1] as string;
    return { now, polls };
  }

  /** Deletes `key` when it is still ours. */
  async release(key: string): Promise<void> {
    await this.#redis.eval(RELEASE, 1, key, this.holder);
  }
}
