/**
 * collectRedis(): `rowlog collect --redis` (docs/DESIGN.md §4, "The ack rule"; issue 14). Reads
 * every stream of every run in `P:runs` as consumer `<host>:<pid>` of the consumer group `name`,
 * and writes each run into `<dir>/<run>` (./collect-redis-run.ts), acknowledging an entry only
 * once its rows are flushed to the files. This file is the loop around it:
 *
 * - every `pollMs`: the runs (`SMEMBERS P:runs`) and their meta hashes (tables, params,
 *   status); a run nobody holds is taken (its lease, ./collect-redis-lease.ts), its folder
 *   opened, and for each of its streams, as they appear: the group created (`XGROUP CREATE … 0
 *   MKSTREAM`), every pending entry taken (`XAUTOCLAIM … 0-0`, whoever read it) and written in
 *   id order with the per-file skip, flushed, acked; only then is the stream read with `>`;
 * - every third of `leaseMs`: each lease renewed; one lost is a run given up (its logger closed);
 * - one loop of `XREADGROUP … BLOCK` over the ready streams of every run held, on a connection of
 *   its own (a blocking command holds its connection): the entries' rows written, then each
 *   touched run flushed and its entries acked, while the next read is already under way. A run
 *   is read only while its lease has more than half of `leaseMs` left, and written only while it
 *   has any: what the next owner claims was never written by a collector that lost the lease.
 *
 * Redis away: ioredis redials (lib/io/redis-client.ts); commands of the main connection wait for
 * it, the blocking one fails fast and the loop waits a poll. Warnings are once per cause; nothing
 * throws out of the loop.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isValidName } from '../core/entry.js';
import { isRowlogError } from '../core/errors.js';
import { numberOption, objectOption, optionError } from '../core/options.js';
import { WarningGate } from '../core/warnings.js';
import type { RowlogWarning } from '../core/warnings.js';
import { collectorsKey, DEFAULT_REDIS_PREFIX, isRedisPrefix, isRunName, metaKey, ownerKey, runsKey, streamKey, TABLE_FIELD } from '../format/redis-stream.js';
import { openRedis, redisTarget } from '../io/redis-client.js';
import type { Redis, RedisTarget } from '../io/redis-client.js';
import { fairShare, Leases } from './collect-redis-lease.js';
import { CollectedRun } from './collect-redis-run.js';
import type { RedisCollectCounts, StreamEntry } from './collect-redis-run.js';

export type { RedisCollectCounts } from './collect-redis-run.js';

/** Options of {@link collectRedis}. */
export interface CollectRedisOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…`; the password never shows in a message or file. */
  url: string;
  /** Folder of run folders: run `r` is written into `<dir>/r`. Created with parents. */
  dir: string;
  /** The consumer group: collectors with one name share the runs; another name reads everything again. @default 'rowlog-collect' */
  name?: string;
  /** Key prefix of the runs (the sinks' `prefix`). @default 'rowlog' */
  prefix?: string;
  /** How long a collector holds a run without renewing (renewed every third of it). @default 10000 */
  leaseMs?: number;
  /** How often runs, tables, params and status are looked for, in ms. @default 1000 */
  pollMs?: number;
  /**
   * Most entries read per stream and read. Their rows are written in one go, on the event loop
   * (an entry of a trainer holds up to 512 rows): kept small so lease renewals keep their pace.
   * @default 32
   */
  batchEntries?: number;
}

/** The default consumer group. */
export const DEFAULT_COLLECT_GROUP = 'rowlog-collect';

/** One run this collector holds the lease of. */
interface Held {
  name: string;
  key: string;
  validUntil: number;
  /** Opened once the folder could be had (another writer may still hold it: retried each poll). */
  run: CollectedRun | undefined;
  /** Stream key → table, for every stream whose pending entries are written: those are read with `>`. */
  ready: Map<string, string>;
  /** Tables being set up (group, pending entries). */
  starting: Set<string>;
  /** Everything done on the run (setup, flush and ack, close), in order. */
  chain: Promise<void>;
  lost: boolean;
  /** When the renewal under way was sent (0: none). */
  renewing: number;
}

/** What `'replay'` tells: pending entries of a stream written again when a run was taken, and the rows its files held already. */
export interface ReplayReport {
  run: string;
  table: string;
  /** Pending entries taken (XAUTOCLAIM) and written. */
  entries: number;
  /** Their rows left out of a file that held them (summed over the two files). */
  skipped: number;
}

/**
 * A Redis collector started by {@link collectRedis}. Emits `'warning'` ({@link RowlogWarning};
 * stderr when nobody listens), `'run'` (name) when it takes a run, `'lost'` (name) when it gives
 * one up, `'replay'` ({@link ReplayReport}) after writing a stream's pending entries, and
 * `'acked'` (run name, `[stream key, entry ids][]`) when entries read live are flushed to the
 * run's files and acknowledged (what the bench measures the latency to).
 */
export class RedisCollector extends EventEmitter {
  /** The folder of run folders (absolute). */
  readonly dir: string;
  /** The consumer group. */
  readonly group: string;
  /** This collector's consumer name, `<host>:<pid>`. */
  readonly consumer: string;
  readonly prefix: string;
  /** The Redis URL as shown (password as `***`). */
  readonly shown: string;
  readonly counts: RedisCollectCounts = { rows: 0, entries: 0, skipped: 0, badEntries: 0, badLines: 0, taken: 0, lost: 0 };

  readonly #target: RedisTarget;
  readonly #cmd: Redis;
  readonly #block: Redis;
  readonly #leases: Leases;
  /** This collector's field in `P:collectors`: `<group> <holder>`. */
  readonly #field: string;
  readonly #gate: WarningGate;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #count: number;
  readonly #held = new Map<string, Held>();
  readonly #timers: NodeJS.Timeout[] = [];
  /** When the poll under way started (0: none); one older than {@link #stuckMs} is given up on. */
  #polling = 0;
  #closing: Promise<void> | undefined;
  #loop: Promise<void> = Promise.resolve();
  /** Wakes the read loop early (a stream became ready, or close). */
  #wake: () => void = () => undefined;

  /** @internal Use {@link collectRedis}. */
  constructor(target: RedisTarget, o: { dir: string; group: string; prefix: string; leaseMs: number; pollMs: number; count: number }) {
    super();
    this.#target = target;
    this.shown = target.shown;
    this.dir = o.dir;
    this.group = o.group;
    this.prefix = o.prefix;
    this.consumer = `${os.hostname()}:${process.pid}`;
    this.#leaseMs = o.leaseMs;
    this.#pollMs = o.pollMs;
    this.#count = o.count;
    this.#gate = new WarningGate(this);
    this.#cmd = openRedis(target, { name: `rowlog-collect:${this.consumer}` });
    // Fails fast while away, and a read whose reply was lost fails too (see #resync).
    this.#block = openRedis(target, { name: `rowlog-collect:${this.consumer}:read`, offlineQueue: false, resend: false });
    for (const c of [this.#cmd, this.#block]) c.on('error', (err: Error) => this.#redisError(err));
    this.#block.on('close', () => this.#redisError(Object.assign(new Error('the connection was lost'), { code: 'ECONNLOST' })));
    this.#leases = new Leases(this.#cmd, this.consumer, o.leaseMs);
    this.#field = `${o.group} ${this.#leases.holder}`;
    this.#timers.push(setInterval(() => void this.#poll(), o.pollMs), setInterval(() => this.#renew(), Math.max(1, Math.floor(o.leaseMs / 3))));
    void this.#poll();
    this.#loop = this.#read();
  }

  /** How long a poll or a renewal may wait for Redis before the next one is sent anyway. */
  get #stuckMs(): number {
    return Math.max(this.#leaseMs, 10 * this.#pollMs);
  }

  /** The runs this collector holds now (their folders are `<dir>/<run>`). */
  runs(): string[] {
    return [...this.#held.values()].filter((h) => h.run !== undefined && !h.lost).map((h) => h.name);
  }

  #warn(w: RowlogWarning, detail = ''): void {
    this.#gate.warn({ ...w, message: this.#target.scrub(w.message) }, detail);
  }

  #redisError(err: Error): void {
    if (this.#closing !== undefined) return;
    const code = (err as NodeJS.ErrnoException).code ?? err.name;
    this.#warn({ code: 'W_COLLECT_REDIS', message: `collect: Redis at ${this.shown}: ${err.message}; retrying (rows wait in Redis)` }, code);
  }

  /** Looks for runs and tables; takes free runs up to this collector's fair share. Never two at once. */
  async #poll(): Promise<void> {
    // A command whose reply never comes (a connection lost at the wrong moment) must not stop the polls.
    if ((this.#polling !== 0 && Date.now() - this.#polling < this.#stuckMs) || this.#closing !== undefined) return;
    const started = Date.now();
    this.#polling = started;
    try {
      const names = await this.#cmd.smembers(runsKey(this.prefix));
      const valid = names.filter((n) => {
        if (isRunName(n)) return true;
        this.#warn({ code: 'W_COLLECT_BAD_RUN', message: `collect: skipped run ${JSON.stringify(n)} of ${runsKey(this.prefix)}: not one [A-Za-z0-9_.-] name segment` }, n);
        return false;
      });
      const key = collectorsKey(this.prefix);
      const { now, polls } = await this.#leases.heartbeat(key, this.#field);
      const gone: string[] = [];
      const share = fairShare(valid.length, now, polls, this.group, this.#field, this.#leaseMs, gone);
      if (gone.length > 0) void this.#cmd.hdel(key, ...gone).catch(() => undefined);
      const pipe = this.#cmd.pipeline();
      for (const n of valid) pipe.hgetall(metaKey(this.prefix, n));
      const metas = (await pipe.exec()) ?? [];
      for (const [i, name] of valid.entries()) {
        if (this.#closing !== undefined) return;
        const [err, meta] = metas[i] ?? [null, {}];
        if (err !== null) continue;
        if (!this.#held.has(name) && this.#held.size >= share) continue;
        await this.#visit(name, meta as Record<string, string>);
      }
      await this.#orphans();
    } catch (err) {
      if (this.#closing === undefined) this.#redisError(err as Error);
    } finally {
      if (this.#polling === started) this.#polling = 0;
    }
  }

  /** One run seen in Redis: taken when free, its folder opened, new tables started, meta followed. */
  async #visit(name: string, meta: Record<string, string>): Promise<void> {
    let h = this.#held.get(name);
    if (h === undefined) {
      const key = ownerKey(this.prefix, name, this.group);
      const start = Date.now();
      const got = await this.#leases.take(key);
      if (!got.taken || this.#closing !== undefined) {
        if (got.taken) await this.#leases.release(key);
        return;
      }
      if (got.staleHolder !== undefined) {
        this.#warn({ code: 'W_COLLECT_STALE_LEASE', message: `collect: ${name}: took over the lease of ${got.staleHolder.split(' ')[0] ?? ''}, a collector of this machine that is gone` });
      }
      h = { name, key, validUntil: start + this.#leaseMs, run: undefined, ready: new Map(), starting: new Set(), chain: Promise.resolve(), lost: false, renewing: 0 };
      this.#held.set(name, h);
      this.counts.taken++;
    }
    if (h.lost) return;
    if (h.run === undefined && !this.#open(h)) return;
    const run = h.run as CollectedRun;
    try {
      run.meta(meta, this.shown, this.prefix);
    } catch (err) {
      this.#warn({ code: 'W_COLLECT_RUN_DIR', message: `collect: ${name}: could not write its params or run.json (${(err as Error).message})` }, name);
    }
    for (const [field] of Object.entries(meta)) {
      if (!field.startsWith(TABLE_FIELD)) continue;
      const table = field.slice(TABLE_FIELD.length);
      if (!isValidName(table)) {
        this.#warn({ code: 'W_COLLECT_BAD_TABLE', message: `collect: ${name}: skipped table ${JSON.stringify(table)}: not a valid table name` }, `${name}\0${table}`);
        continue;
      }
      const stream = streamKey(this.prefix, name, table);
      if (h.ready.has(stream) || h.starting.has(stream)) continue;
      h.starting.add(stream);
      this.#then(h, () => this.#start(h, stream, table));
    }
  }

  /** Opens the run's folder; false (warned, retried next poll) when another writer holds it or it cannot be made. */
  #open(h: Held): boolean {
    try {
      h.run = new CollectedRun(this.dir, h.name, this.counts, (w, detail) => this.#warn(w, `${h.name}\0${detail ?? ''}`));
      this.emit('run', h.name);
      return true;
    } catch (err) {
      const locked = isRowlogError(err) && err.code === 'ERR_RUN_LOCKED';
      this.#warn(
        {
          code: locked ? 'W_COLLECT_RUN_LOCKED' : 'W_COLLECT_RUN_DIR',
          message: `collect: ${h.name}: cannot open its run folder (${(err as Error).message}); retried every poll, its rows wait in Redis`,
        },
        h.name,
      );
      return false;
    }
  }

  /** Runs `fn` after everything queued on the run; a failure is a warning. */
  #then(h: Held, fn: () => Promise<void>): Promise<void> {
    h.chain = h.chain.then(fn).catch((err: Error) => {
      if (this.#closing === undefined) this.#redisError(err);
    });
    return h.chain;
  }

  /** A stream of a held run: its group, its pending entries written (per-file skip) and acked, then ready for `>`. */
  async #start(h: Held, stream: string, table: string): Promise<void> {
    try {
      if (h.lost || h.run === undefined) return;
      await this.#cmd.call('XGROUP', 'CREATE', stream, this.group, '0', 'MKSTREAM').catch((err: Error) => {
        if (!/BUSYGROUP/.test(err.message)) throw err;
      });
      const pending: StreamEntry[] = [];
      for (let from = '0-0'; ; ) {
        const [next, entries] = (await this.#cmd.call('XAUTOCLAIM', stream, this.group, this.consumer, '0', from, 'COUNT', '1000')) as [string, Array<StreamEntry | null>];
        for (const e of entries) if (e !== null && Array.isArray(e[1])) pending.push(e);
        if (next === '0-0') break;
        from = next;
      }
      if (h.lost || Date.now() >= h.validUntil) return;
      if (pending.length > 0) {
        const before = this.counts.skipped;
        const ids = await h.run.replay(table, pending);
        await h.run.log.flush();
        if (this.#faulted(h)) return;
        await this.#cmd.call('XACK', stream, this.group, ...ids);
        const replay: ReplayReport = { run: h.name, table, entries: pending.length, skipped: this.counts.skipped - before };
        this.emit('replay', replay);
      }
      h.ready.set(stream, table);
      this.#wake();
    } finally {
      h.starting.delete(stream);
    }
  }

  /** Renews every lease not being renewed; a lease found gone is a run lost. */
  #renew(): void {
    for (const h of this.#held.values()) {
      if ((h.renewing !== 0 && Date.now() - h.renewing < this.#stuckMs) || h.lost) continue;
      const start = Date.now();
      h.renewing = start;
      this.#leases.renew(h.key).then(
        (ok) => {
          if (h.renewing === start) h.renewing = 0;
          if (ok) h.validUntil = start + this.#leaseMs;
          else this.#lose(h, 'its lease expired or another collector took it');
        },
        () => {
          if (h.renewing === start) h.renewing = 0; // Redis away: warned by the client; the lease runs out on its own
        },
      );
    }
  }

  /** Stops writing `h`: what is being flushed is acked, then its logger is closed and it may be taken again. */
  #lose(h: Held, why: string): void {
    if (h.lost) return;
    h.lost = true;
    this.counts.lost++;
    this.#warn({ code: 'W_COLLECT_LEASE_LOST', message: `collect: ${h.name}: stopped writing it: ${why}` }, `${h.name}\0${this.counts.lost}`);
    this.emit('lost', h.name);
    void this.#then(h, async () => {
      await h.run?.log.close();
    }).then(() => {
      if (this.#held.get(h.name) === h) this.#held.delete(h.name);
    });
  }

  /** The streams to read now: ready streams of held runs with more than half their lease left. */
  #readable(): Array<[string, Held]> {
    const now = Date.now();
    const out: Array<[string, Held]> = [];
    for (const h of this.#held.values()) {
      if (h.lost || h.run === undefined || h.run.broken || h.validUntil - now <= this.#leaseMs / 2) continue;
      for (const s of h.ready.keys()) out.push([s, h]);
    }
    return out;
  }

  /** Resolves after `ms`, or earlier on {@link #wake}. */
  #nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** The read loop: read, write, then flush and ack while the next read is under way. */
  async #read(): Promise<void> {
    let acking: Promise<void> = Promise.resolve();
    const blockMs = Math.max(1, Math.min(this.#pollMs, Math.floor(this.#leaseMs / 4)));
    while (this.#closing === undefined) {
      const streams = this.#readable();
      if (streams.length === 0) {
        await this.#nap(this.#pollMs);
        continue;
      }
      let reply: unknown;
      try {
        const keys = streams.map(([s]) => s);
        const read = this.#block.call('XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', String(this.#count), 'BLOCK', String(blockMs), 'STREAMS', ...keys, ...keys.map(() => '>'));
        reply = await this.#unlessClosed(read);
      } catch (err) {
        if (this.#closing !== undefined) break;
        if (!/enableOfflineQueue|Connection is closed/.test((err as Error).message)) this.#redisError(err as Error);
        this.#resync();
        await this.#nap(this.#pollMs);
        continue;
      }
      if (reply === null || !Array.isArray(reply)) continue;
      const held = new Map(streams);
      const touched = new Map<Held, Array<[string, string[]]>>();
      for (const [stream, entries] of streamsOf(reply)) {
        const h = held.get(stream);
        const table = h?.ready.get(stream);
        // Written only within the lease: entries of a run given up stay pending for its next owner.
        if (h === undefined || table === undefined || h.lost || h.run === undefined) continue;
        if (Date.now() >= h.validUntil) {
          // Pending to this consumer, never written: set up again (claimed, written) if the lease holds.
          this.#restart(h, stream, table);
          continue;
        }
        let ids: string[];
        try {
          ids = h.run.write(table, entries);
        } catch (err) {
          this.#warn({ code: 'W_COLLECT_FAILED', message: `collect: ${h.name}: could not write (${(err as Error).message}); its entries stay pending` }, h.name);
          this.#restart(h, stream, table);
          continue;
        }
        const list = touched.get(h) ?? [];
        list.push([stream, ids]);
        touched.set(h, list);
      }
      const done = Promise.all([...touched].map(([h, acks]) => this.#then(h, () => this.#flushAck(h, acks)))).then(() => undefined);
      await acking;
      acking = done;
    }
    await acking;
  }

  /**
   * `read`, or a rejection when the reading connection closes first: without resending, ioredis
   * drops the commands in flight on a lost connection and never settles them.
   */
  #unlessClosed(read: Promise<unknown>): Promise<unknown> {
    let onClose: () => void = () => undefined;
    const closed = new Promise<never>((_, reject) => {
      onClose = () => reject(new Error('Connection is closed.'));
      this.#block.once('close', onClose);
    });
    read.catch(() => undefined); // settled or not, it is not waited for past a close
    return Promise.race([read, closed]).finally(() => this.#block.off('close', onClose));
  }

  /**
   * A read failed, and may have been served with its reply lost: its entries are then pending to
   * this consumer, never seen. Every ready stream is set up again (its pending entries written
   * with the per-file skip, after what is being flushed), and read with `>` only after that.
   */
  #resync(): void {
    for (const h of this.#held.values()) for (const [stream, table] of h.ready) this.#restart(h, stream, table);
  }

  /** Reads `stream` with `>` again only after its pending entries are claimed and written (after what is queued on the run). */
  #restart(h: Held, stream: string, table: string): void {
    if (!h.ready.delete(stream)) return;
    h.starting.add(stream);
    void this.#then(h, () => this.#start(h, stream, table));
  }

  /**
   * Entries of a ready stream pending for longer than `leaseMs` are written by nobody: read by a
   * collector that lost the run after the read (or by this one, which let them be). Each poll looks
   * (`XPENDING … IDLE leaseMs`) and sets such a stream up again: claimed, written with the per-file
   * skip, acked.
   */
  async #orphans(): Promise<void> {
    const ready: Array<[Held, string, string]> = [];
    for (const h of this.#held.values()) if (!h.lost && h.run !== undefined) for (const [stream, table] of h.ready) ready.push([h, stream, table]);
    if (ready.length === 0) return;
    const pipe = this.#cmd.pipeline();
    for (const [, stream] of ready) pipe.call('XPENDING', stream, this.group, 'IDLE', String(this.#leaseMs), '-', '+', '1');
    const replies = (await pipe.exec()) ?? [];
    for (const [i, [h, stream, table]] of ready.entries()) {
      const [err, idle] = replies[i] ?? [null, []];
      if (err === null && Array.isArray(idle) && idle.length > 0) this.#restart(h, stream, table);
    }
  }

  /** After the run's files are flushed, acks what was written. */
  async #flushAck(h: Held, acks: Array<[string, string[]]>): Promise<void> {
    await h.run?.log.flush();
    if (this.#faulted(h)) return;
    await Promise.all(acks.map(([stream, ids]) => this.#cmd.call('XACK', stream, this.group, ...ids)));
    if (this.listenerCount('acked') > 0) this.emit('acked', h.name, acks);
  }

  /** True (and the run given up, nothing acked) when a file of `h` refused rows since it was opened. */
  #faulted(h: Held): boolean {
    if (h.run?.faulted !== true && h.run?.broken !== true) return false;
    this.#lose(h, 'a file of it could not be written; its entries stay pending in Redis for a later owner');
    return true;
  }

  /**
   * Stops reading, lets what was read be written, flushed and acked, closes every run (files
   * ended, `status.json` closed) and releases its lease, so another collector can take it at once.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#wake();
    this.#block.disconnect(); // an XREADGROUP under way fails at once
    await this.#loop;
    await Promise.all(
      [...this.#held.values()].map(async (h) => {
        await h.chain;
        await h.run?.log.close().catch(() => undefined);
        if (!h.lost) await this.#leases.release(h.key).catch(() => undefined);
      }),
    );
    this.#held.clear();
    await this.#cmd.hdel(collectorsKey(this.prefix), this.#field).catch(() => undefined);
    await this.#cmd.quit().catch(() => this.#cmd.disconnect());
  }
}

/**
 * XREADGROUP's reply as [stream, entries] pairs: RESP2 gives a list of pairs, RESP3 a map, which
 * ioredis hands over as one flat list (key, entries, key, entries…).
 */
function streamsOf(reply: unknown[]): Array<[string, StreamEntry[]]> {
  if (typeof reply[0] !== 'string') return reply as Array<[string, StreamEntry[]]>;
  const out: Array<[string, StreamEntry[]]> = [];
  for (let i = 0; i + 1 < reply.length; i += 2) out.push([reply[i] as string, reply[i + 1] as StreamEntry[]]);
  return out;
}

/**
 * Starts a Redis collector (`rowlog collect --redis`): every run in `<prefix>:runs` is written into
 * `<dir>/<run>` (`<table>.jsonl.gz`, `<table>.csv`, params, status, `run.json` with its
 * `source`), each stream entry acked only once its rows are flushed (docs/DESIGN.md §4).
 * Returns at once; Redis may be down (it is redialled).
 */
export function collectRedis(opts: CollectRedisOptions): RedisCollector {
  objectOption(opts);
  const target = redisTarget(opts.url, 'url');
  if (typeof opts.dir !== 'string' || opts.dir === '') throw optionError('type', 'dir', `must be a non-empty string (got ${String(opts.dir)})`);
  const group = opts.name ?? DEFAULT_COLLECT_GROUP;
  if (!isRedisPrefix(group)) throw optionError('type', 'name', `must be printable without spaces, 1 to 200 characters (got ${JSON.stringify(group)})`);
  const prefix = opts.prefix ?? DEFAULT_REDIS_PREFIX;
  if (!isRedisPrefix(prefix)) throw optionError('type', 'prefix', `must be printable without spaces, 1 to 200 characters (got ${JSON.stringify(prefix)})`);
  const leaseMs = numberOption(opts.leaseMs ?? 10_000, 'leaseMs', { min: 100, max: 2 ** 31 - 1, integer: true });
  const pollMs = numberOption(opts.pollMs ?? 1000, 'pollMs', { min: 10, max: 2 ** 31 - 1, integer: true });
  const count = numberOption(opts.batchEntries ?? 32, 'batchEntries', { min: 1, integer: true });
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  return new RedisCollector(target, { dir, group, prefix, leaseMs, pollMs, count });
}
