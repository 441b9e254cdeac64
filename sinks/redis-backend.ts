/**
 * The Redis sink's backend (docs/DESIGN.md §4, "Redis Streams"): what {@link BatchSink} hands
 * becomes blocks, and blocks reach Redis in order, exactly once, or are counted as lost.
 *
 * - **Blocks.** Each batch becomes, per table, one NDJSON block: the lines jsonlSink writes
 *   (lib/format/json-line.ts, one KeyOrder per sink), with its row count and first/last step
 *   (lib/format/redis-stream.ts `blockFields`). One XADD per block; the XADDs of a round go in one
 *   pipeline, one round on the wire at a time, so the streams get the blocks in the order handed.
 * - **Never waiting.** `write` only encodes and queues; the connection is ioredis without its
 *   offline queue (`offlineQueue: false`, `resend: false`), so nothing piles up out of sight: the
 *   blocks wait here, bounded by `maxBufferBytes` of NDJSON, the oldest dropped past it (one
 *   `W_REDIS_DROPPED`, the total at close). The socket and its redial timer are unref'd: a script
 *   that ends while Redis is away exits. A flush or close that waits holds the process alive.
 * - **Idempotent resends.** Each block gets an explicit entry id the first time it is sent, and
 *   keeps it: a block whose XADD got no reply (the connection dropped) is sent again with the same
 *   id, and if Redis had executed it, the resend is refused as "equal or smaller than the target
 *   stream top item", which counts as delivered. So no block is ever in a stream twice. Ids are
 *   `ms-seq` with `ms = max(now, last ms)`: the last id comes from the stream itself the first time
 *   this sink writes to it (`XINFO STREAM`'s `last-generated-id`, which also covers deleted
 *   entries; a reopened run folder continues after its own earlier blocks), then from this sink's
 *   own ids, so a clock that steps back never makes a new block look like a resend. Only this run
 *   writes its streams (the name claim below); a first send refused as "equal or smaller" means
 *   another writer did, and the block gets a new id after a fresh read of the top.
 * - **The run.** Before the first XADD the run claims its name: `HSETNX P:R:meta id <run id>`;
 *   a name held by another run id (not the earlier opening of this folder, `appendedTo`) makes
 *   this run write as `R.<id8>` with `W_REDIS_RUN_TAKEN`. After each (re)connect the run is added
 *   to `P:runs`, claims its name again (HSETNX: a restarted Redis may have lost it) and the meta hash gets `run`, `params`, `status` (their latest text) and
 *   `table:<t>` for each table as it first appears.
 * - **Faults.** Connection errors warn once per code (`W_REDIS_ERROR`, the password scrubbed), a
 *   refused password once (`W_REDIS_AUTH`); the blocks stay buffered. A reply Redis refuses for
 *   now (OOM, LOADING, NOAUTH, …) is retried with the doubling delay of lib/io/backoff.ts; a block
 *   Redis can never take (WRONGTYPE: the key is not a stream) is dropped and counted. The run's
 *   records (SADD, HSET) the same: refused for now, retried after the delay; for good, warned once
 *   and given up (never a round at once after a refusal: that would loop on Redis).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { jsonLine, KeyOrder } from '../lib/format/json-line.js';
import { blockFields, metaKey, runsKey, streamKey, TABLE_FIELD } from '../lib/format/redis-stream.js';
import { Backoff } from '../lib/io/backoff.js';
import { RETRY_MAX_MS, RETRY_MIN_MS } from '../lib/io/listen.js';
import { openRedis } from '../lib/io/redis-client.js';
import type { Redis, RedisTarget } from '../lib/io/redis-client.js';
import { defaultRunDir, jsonReplacer } from '../lib/run/run-dir.js';
import type { BatchBackend, BatchWarn } from './batch-sink.js';

/** The Redis sink's options checked, with defaults (sinks/redis.ts makes them). */
export interface ResolvedRedisOptions {
  readonly target: RedisTarget;
  readonly prefix: string;
  /** The `run` option, when given: it wins over the logger's run name. */
  readonly run: string | undefined;
  readonly maxLen: number | undefined;
  readonly maxBufferBytes: number;
  readonly closeTimeoutMs: number;
}

/** One table's rows of one batch, as one stream entry. */
interface Block {
  /** Handed order (1, 2, …): flush() waits for the blocks up to a number. */
  readonly seq: number;
  readonly table: string;
  readonly rows: string;
  readonly n: number;
  readonly first: number;
  readonly last: number;
  readonly bytes: number;
  /** The entry id, fixed when first sent: a resend uses it again. */
  id: string | undefined;
  /** Sent without a reply at least once: Redis may hold it already. */
  maybeIn: boolean;
}

/** An entry id, `ms-seq`. */
interface StreamId {
  ms: number;
  seq: number;
}

/** What the sink knows of one table's stream. */
interface StreamState {
  /** The last id of the stream (undefined: not read yet). */
  last: StreamId | undefined;
  /** `table:<t>` written to the meta hash since the last (re)connect. */
  announced: boolean;
}

/** One round's pipeline holds at most this many blocks, or about this many bytes. */
const ROUND_BLOCKS = 256;
const ROUND_BYTES = 16 * 1024 * 1024;

/** A refusal that later blocks share and that passes (memory, loading, auth, a replica): retried. */
function refusedForNow(msg: string): boolean {
  return !/^(WRONGTYPE|ERR)\b/.test(msg);
}

function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

function isAuthError(msg: string): boolean {
  return /\b(NOAUTH|WRONGPASS)\b/.test(msg);
}

const TOO_SMALL = /equal or smaller than the target stream top item/;

/** `ms-seq` parsed; undefined for anything else. */
function parseId(id: unknown): StreamId | undefined {
  const m = typeof id === 'string' ? /^(\d+)-(\d+)$/.exec(id) : null;
  return m === null ? undefined : { ms: Number(m[1]), seq: Number(m[2]) };
}

export class RedisBackend implements BatchBackend {
  readonly #o: ResolvedRedisOptions;
  readonly #warn: BatchWarn;
  readonly #order = new KeyOrder();
  #client: Redis | undefined;
  /** Blocks not confirmed, in handed order; the first `#inflight` are on the wire. */
  #queue: Block[] = [];
  #inflight = 0;
  #bytes = 0;
  #seq = 0;
  readonly #streams = new Map<string, StreamState>();

  /** The run's name from the logger (run.json's name, one segment); the `run` option wins. */
  #name: string | undefined;
  readonly #defaultName = path.basename(defaultRunDir());
  /** The name the keys use, once claimed. */
  #run: string | undefined;
  #id: string = randomUUID();
  #appendedTo: string | undefined;
  /** The meta hash's fields (`run`, `params`, `status`) as text, and those not yet sent. */
  readonly #meta = new Map<string, string>();
  readonly #dirty = new Set<string>();
  #params: Record<string, unknown> = {};
  /** The last status recorded, without its time. */
  #lastStatus: string | undefined;
  #metaVersion = 0;
  #metaSent = 0;
  /** `P:runs` gets the run again (after each connect). */
  #announce = true;

  /** Redis does not answer or refuses for now: flush() does not wait for it. */
  #away = false;
  #busy = false;
  #closed = false;
  readonly #retry = new Backoff(RETRY_MIN_MS, RETRY_MAX_MS);
  #waiters: Array<{ rows: number; meta: number; giveUp: boolean; resolve: () => void }> = [];
  #holds = 0;
  #keepAlive: NodeJS.Timeout | undefined;
  #dropped = 0;
  /** Rejecters of the replies awaited on the current connection (see {@link RedisBackend.#race}). */
  readonly #aborts = new Set<() => void>();

  constructor(o: ResolvedRedisOptions, warn: BatchWarn) {
    this.#o = o;
    this.#warn = warn;
  }

  get shown(): string {
    return this.#o.target.shown;
  }

  get runName(): string {
    return this.#run ?? this.#o.run ?? this.#name ?? this.#defaultName;
  }

  /** Rows are bounded by `maxBufferBytes` here, not by the batch sink's row bound (nothing can be sent synchronously). */
  get pending(): number {
    return 0;
  }

  write(batch: Array<Entry<FlatRow>>): void {
    const blocks = new Map<string, { rows: string; n: number; first: number; last: number }>();
    for (const e of batch) {
      const line = jsonLine(e, this.#order, false);
      const b = blocks.get(e.table);
      if (b === undefined) blocks.set(e.table, { rows: line, n: 1, first: e.step, last: e.step });
      else {
        b.rows += line;
        b.n++;
        b.last = e.step;
      }
    }
    for (const [table, b] of blocks) {
      const bytes = Buffer.byteLength(b.rows);
      this.#queue.push({ seq: ++this.#seq, table, ...b, bytes, id: undefined, maybeIn: false });
      this.#bytes += bytes;
    }
    this.#trim();
    this.#open();
    this.#pump();
  }

  /** Records run.json's content; before the name is claimed, its id and name are the run's. */
  setRun(run: Readonly<Record<string, unknown>>, name: string | undefined): void {
    if (this.#run === undefined) {
      if (typeof run.id === 'string' && run.id !== '') this.#id = run.id;
      if (typeof run.appendedTo === 'string') this.#appendedTo = run.appendedTo;
      if (name !== undefined) this.#name = name;
    }
    this.#record('run', run);
  }

  setParams(params: Readonly<Record<string, unknown>>): void {
    this.#params = { ...this.#params, ...params };
    this.#record('params', this.#params);
  }

  /**
   * A status that differs from the last only in `$updated` is not sent again: the logger saves
   * the status on every flush, also on each `beforeExit`, and a write each time would keep a
   * finished process alive (each flush waits for its writes, and holds the process meanwhile).
   */
  setStatus(status: Readonly<Record<string, unknown>>): void {
    const { $updated: _time, ...rest } = status;
    let same: string | undefined;
    try {
      same = JSON.stringify(rest, jsonReplacer);
    } catch {
      same = undefined; // #record warns
    }
    if (same !== undefined && same === this.#lastStatus) return;
    this.#lastStatus = same;
    this.#record('status', status);
  }

  #record(field: string, value: unknown): void {
    if (this.#closed) return;
    let text: string;
    try {
      text = JSON.stringify(value, jsonReplacer);
    } catch (err) {
      this.#warn({ code: 'W_STATUS', message: `${this.shown}: could not record the ${field}: ${(err as Error).message}` }, field);
      return;
    }
    this.#meta.set(field, text);
    this.#dirty.add(field);
    this.#metaVersion++;
    this.#open();
    this.#pump();
  }

  /** Past `maxBufferBytes`, the oldest blocks not on the wire go. */
  #trim(): void {
    let rows = 0;
    while (this.#bytes > this.#o.maxBufferBytes && this.#queue.length > this.#inflight) {
      const [b] = this.#queue.splice(this.#inflight, 1) as [Block];
      this.#bytes -= b.bytes;
      rows += b.n;
    }
    if (rows === 0) return;
    this.#warn(
      {
        code: 'W_REDIS_DROPPED',
        message: `${this.shown}: ${rows} rows dropped: more than maxBufferBytes (${this.#o.maxBufferBytes}) wait for Redis; the oldest go first, further drops are counted when the sink closes`,
      },
      'buffer',
    );
    this.#dropped += rows;
    this.#settle();
  }

  /** The connection, opened with the first row or record (a sink that gets none never dials). */
  #open(): void {
    if (this.#client !== undefined || this.#closed) return;
    const c = openRedis(this.#o.target, { offlineQueue: false, resend: false, unref: true, name: 'rowlog-sink' });
    this.#client = c;
    c.on('error', (err: Error) => this.#onError(err));
    c.on('close', () => {
      // ioredis without its resend drops the commands that were on the wire without settling them.
      for (const abort of this.#aborts) abort();
      this.#aborts.clear();
      this.#goneAway();
    });
    c.on('ready', () => {
      this.#away = false;
      this.#retry.cancel();
      this.#announce = true;
      for (const s of this.#streams.values()) s.announced = false;
      for (const f of this.#meta.keys()) this.#dirty.add(f);
      this.#pump();
    });
  }

  #onError(err: Error): void {
    const msg = this.#o.target.scrub(err.message);
    if (isAuthError(msg)) {
      this.#warn({ code: 'W_REDIS_AUTH', message: `${this.shown} refused the credentials (${msg}); rows are kept (up to maxBufferBytes) and sent once they are accepted` }, 'auth');
    } else {
      const code = (err as { code?: unknown }).code;
      this.#warn(
        { code: 'W_REDIS_ERROR', message: `${this.shown}: ${msg}; rows are kept (up to maxBufferBytes) and sent when Redis answers` },
        typeof code === 'string' ? code : (msg.split(' ')[0] ?? ''),
      );
    }
    this.#goneAway();
  }

  #goneAway(): void {
    this.#away = true;
    this.#settle();
  }

  #hasWork(): boolean {
    return this.#queue.length > 0 || this.#dirty.size > 0 || this.#announce;
  }

  /** Starts a round when Redis is ready and none is on the wire; rounds follow each other while there is work. */
  #pump(): void {
    const c = this.#client;
    if (this.#busy || this.#closed || c === undefined || c.status !== 'ready' || this.#retry.pending || !this.#hasWork()) {
      this.#settle();
      return;
    }
    this.#busy = true;
    // A Redis that does not answer (stopped, or a network cut that leaves the socket open: no
    // 'close' for minutes) counts as away after closeTimeoutMs, so flush() does not hang on it.
    const slow = setTimeout(() => {
      this.#away = true;
      this.#settle();
    }, this.#o.closeTimeoutMs).unref();
    this.#round(c).then(
      () => {
        clearTimeout(slow);
        this.#roundDone();
      },
      (err: unknown) => {
        clearTimeout(slow);
        // A connection-level failure before the blocks went out (the claim, the top reads): the
        // 'close'/'error' events say so and 'ready' pumps again. Anything else is retried later.
        if (isReplyError(err)) this.#refused(this.#o.target.scrub(err.message));
        this.#roundDone();
      },
    );
  }

  #roundDone(): void {
    this.#busy = false;
    this.#pump();
  }

  /** Redis refuses for now: warned once per code, retried after the doubling delay. */
  #refused(msg: string): void {
    if (isAuthError(msg)) {
      this.#warn({ code: 'W_REDIS_AUTH', message: `${this.shown} refused the credentials (${msg}); rows are kept (up to maxBufferBytes) and sent once they are accepted` }, 'auth');
    } else {
      this.#warn({ code: 'W_REDIS_ERROR', message: `${this.shown} refuses writes for now (${msg}); rows are kept (up to maxBufferBytes) and tried again` }, msg.split(' ')[0] ?? '');
    }
    this.#away = true;
    this.#retry.schedule(() => {
      if (this.#client?.status === 'ready') this.#away = false;
      this.#pump();
    });
    this.#settle();
  }

  /** One round: the claim and the stream tops when needed, then one pipeline of meta writes and XADDs. */
  async #round(c: Redis): Promise<void> {
    if (this.#run === undefined) this.#run = await this.#claim(c);
    const run = this.#run;
    const unknown = [...new Set(this.#queue.slice(0, ROUND_BLOCKS).map((b) => b.table))].filter((t) => this.#streams.get(t)?.last === undefined);
    if (unknown.length > 0) await this.#readTops(c, run, unknown);

    // From here to exec() nothing awaits: the round goes out synchronously (also from flushSync at exit).
    const p = c.pipeline();
    const meta = metaKey(this.#o.prefix, run);
    const announce = this.#announce;
    this.#announce = false; // set again when it fails for now, or by a reconnect meanwhile
    // After each (re)connect: the run in P:runs, and its claim again (HSETNX: a Redis restarted
    // without its data lost it; it never takes the name from a run that claimed it meanwhile).
    if (announce) p.sadd(runsKey(this.#o.prefix), run).hsetnx(meta, 'id', this.#id);
    const fields = [...this.#dirty];
    this.#dirty.clear();
    const version = this.#metaVersion;
    for (const f of fields) p.hset(meta, f, this.#meta.get(f) as string);
    const announced: string[] = [];
    const blocks: Block[] = [];
    let bytes = 0;
    for (const b of this.#queue) {
      const s = this.#streams.get(b.table);
      if (s?.last === undefined || blocks.length >= ROUND_BLOCKS || (blocks.length > 0 && bytes + b.bytes > ROUND_BYTES)) break;
      if (!s.announced) {
        s.announced = true;
        announced.push(b.table);
        p.hset(meta, `${TABLE_FIELD}${b.table}`, streamKey(this.#o.prefix, run, b.table));
      }
      if (b.id === undefined) {
        const ms = Math.max(Date.now(), s.last.ms);
        s.last = { ms, seq: ms === s.last.ms ? s.last.seq + 1 : 0 };
        b.id = `${s.last.ms}-${s.last.seq}`;
      }
      const cap = this.#o.maxLen === undefined ? [] : ['MAXLEN', '~', String(this.#o.maxLen)];
      p.call('XADD', [streamKey(this.#o.prefix, run, b.table), ...cap, b.id, ...blockFields(b)]);
      blocks.push(b);
      bytes += b.bytes;
    }
    this.#inflight = blocks.length;
    let results: Array<[Error | null, unknown]>;
    try {
      results = ((await this.#race(p.exec())) ?? []) as Array<[Error | null, unknown]>;
    } catch {
      results = []; // the connection closed: every block of the round is "sent without a reply"
    }
    this.#inflight = 0;
    if (results.length > 0) this.#away = false; // it answered (a refusal below sets it again)

    // The meta writes: done; sent again next round (no reply, or refused for now: after the
    // doubling delay, as blocks are); or given up with a warning when Redis can never take them
    // (WRONGTYPE: `P:runs` or the meta hash is another type), so no round follows at once.
    const lead = announce ? 2 : 0;
    const head = lead + fields.length;
    let refusal: string | undefined;
    for (let j = 0; j < head; j++) {
      const r = results[j];
      const err = r === undefined ? new Error('no reply') : r[0];
      if (err === null) continue;
      const key = announce && j === 0 ? runsKey(this.#o.prefix) : meta;
      const msg = this.#o.target.scrub(err.message);
      if (!isReplyError(err) || refusedForNow(msg)) {
        if (j < lead) this.#announce = true;
        else this.#dirty.add(fields[j - lead] as string);
        if (isReplyError(err)) refusal ??= msg;
      } else {
        this.#warn({ code: 'W_REDIS_ERROR', message: `${this.shown}: Redis refuses to record the run at ${key} (${msg}); its rows are still sent` }, `meta\0${key}\0${msg.split(' ')[0] ?? ''}`);
      }
    }
    if (this.#dirty.size === 0) this.#metaSent = version;
    // Results of the blocks (and of the table announcements, interleaved in order).
    let i = head;
    const done = new Set<Block>();
    const seenTables = new Set<string>();
    for (const b of blocks) {
      if (announced.includes(b.table) && !seenTables.has(b.table)) {
        seenTables.add(b.table);
        const r = results[i++];
        if (r === undefined || r[0] !== null) (this.#streams.get(b.table) as StreamState).announced = false;
      }
      const r = results[i++];
      const err = r === undefined ? new Error('no reply') : r[0];
      if (err === null) {
        done.add(b);
      } else if (!isReplyError(err)) {
        b.maybeIn = true; // the connection dropped: Redis may have it; the same id is sent again
      } else if (TOO_SMALL.test(err.message)) {
        if (b.maybeIn) done.add(b); // it was there already: the resend is refused, nothing twice
        else {
          // Another writer moved the stream's top: read it again and give the block a new id.
          (this.#streams.get(b.table) as StreamState).last = undefined;
          b.id = undefined;
          this.#warn({ code: 'W_REDIS_ERROR', message: `${this.shown}: another writer adds to ${streamKey(this.#o.prefix, run, b.table)}; rowlog's blocks follow its entries` }, `other\0${b.table}`);
        }
      } else {
        const msg = this.#o.target.scrub(err.message);
        if (refusedForNow(msg)) refusal ??= msg;
        else {
          done.add(b);
          this.#lose(b.n, `Redis refuses them (${msg})`, msg.split(' ')[0] ?? '');
        }
      }
    }
    if (done.size > 0) {
      this.#queue = this.#queue.filter((b) => !done.has(b));
      for (const b of done) this.#bytes -= b.bytes;
    }
    if (refusal !== undefined) this.#refused(refusal);
    this.#settle();
  }

  /**
   * `reply`, rejected when the connection closes first: without `autoResendUnfulfilledCommands`,
   * ioredis forgets the commands that were on the wire when it closed, and their promises never
   * settle. Their blocks then count as sent without a reply (maybe in), and are sent again.
   */
  #race<T>(reply: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const abort = (): void => reject(new Error('Connection is closed.'));
      this.#aborts.add(abort);
      reply.then(resolve, reject).finally(() => this.#aborts.delete(abort));
    });
  }

  /** Claims the run's name (module comment); returns the name the keys use. */
  async #claim(c: Redis): Promise<string> {
    let name = this.#o.run ?? this.#name ?? this.#defaultName;
    const key = metaKey(this.#o.prefix, name);
    if ((await this.#race(c.hsetnx(key, 'id', this.#id))) === 1) return name;
    const holder = await this.#race(c.hget(key, 'id'));
    if (holder === null || holder === this.#id) return name;
    if (holder === this.#appendedTo) {
      await this.#race(c.hset(key, 'id', this.#id));
      return name;
    }
    const renamed = `${name}.${this.#id.slice(0, 8)}`;
    this.#warn({
      code: 'W_REDIS_RUN_TAKEN',
      message: `${this.shown}: the run name '${name}' is held by another run (id ${holder}); this run writes as '${renamed}'`,
    });
    name = renamed;
    await this.#race(c.hset(metaKey(this.#o.prefix, name), 'id', this.#id));
    return name;
  }

  /** Each table's stream's last id (`last-generated-id`; 0-0 for a stream that does not exist). */
  async #readTops(c: Redis, run: string, tables: string[]): Promise<void> {
    const p = c.pipeline();
    for (const t of tables) p.call('XINFO', ['STREAM', streamKey(this.#o.prefix, run, t)]);
    const results = ((await this.#race(p.exec())) ?? []) as Array<[Error | null, unknown]>;
    tables.forEach((t, i) => {
      const [err, info] = results[i] ?? [new Error('no reply'), undefined];
      let last: StreamId | undefined;
      if (err === null && Array.isArray(info)) {
        const at = info.indexOf('last-generated-id');
        last = at >= 0 ? parseId(info[at + 1]) : undefined;
      } else if (isReplyError(err) && /no such key|^WRONGTYPE/i.test(err.message)) last = { ms: 0, seq: 0 }; // none yet; or not a stream: its XADDs are refused and counted
      else if (err !== null) throw err;
      const s = this.#streams.get(t);
      if (s === undefined) this.#streams.set(t, { last: last ?? { ms: 0, seq: 0 }, announced: false });
      else s.last = last ?? { ms: 0, seq: 0 };
    });
  }

  #lose(rows: number, why: string, detail: string): void {
    this.#warn({ code: 'W_REDIS_DROPPED', message: `${this.shown}: ${rows} rows dropped: ${why}; further drops are counted when the sink closes` }, `refused\0${detail}`);
    this.#dropped += rows;
  }

  /** Rows handed whose blocks are all confirmed or dropped, up to this seq. */
  #confirmed(): number {
    return this.#queue.length === 0 ? this.#seq : (this.#queue[0] as Block).seq - 1;
  }

  /** Resolves the waiters whose blocks are confirmed, and those that give up because Redis is away. */
  #settle(): void {
    if (this.#waiters.length === 0) return;
    const confirmed = this.#confirmed();
    const away = this.#away || this.#closed || this.#client === undefined;
    const left = [];
    for (const w of this.#waiters) {
      if ((confirmed >= w.rows && this.#metaSent >= w.meta) || this.#closed || (w.giveUp && away)) w.resolve();
      else left.push(w);
    }
    this.#waiters = left;
  }

  /** Resolves when what was handed is confirmed (or, with `giveUp`, Redis is away); holds the process alive meanwhile. */
  #wait(giveUp: boolean): Promise<void> {
    const rows = this.#seq;
    const meta = this.#metaVersion;
    return new Promise<void>((resolve) => {
      if (this.#holds++ === 0) this.#keepAlive = setInterval(() => undefined, 1 << 30);
      this.#waiters.push({
        rows,
        meta,
        giveUp,
        resolve: () => {
          if (--this.#holds === 0) clearInterval(this.#keepAlive);
          resolve();
        },
      });
      this.#pump();
    });
  }

  /** Resolves when every block handed so far is confirmed by Redis, or waits in the buffer because Redis is away. */
  async flush(): Promise<void> {
    await this.#wait(true);
  }

  /** Nothing can be sent synchronously: a round that can go out now is written to the socket (the exit path). */
  flushSync(): void {
    this.#pump();
  }

  /** Waits up to `closeTimeoutMs` for the buffer, then reports what was not delivered and disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#client !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#wait(false), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#o.closeTimeoutMs)))]);
      clearTimeout(timer);
    }
    this.closeSync();
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#retry.cancel();
    const undelivered = this.#queue.reduce((s, b) => s + b.n, 0);
    if (undelivered > 0 || this.#dropped > 0) {
      const parts = [
        ...(undelivered > 0 ? [`${undelivered} rows were not delivered when the sink closed (closeTimeoutMs ${this.#o.closeTimeoutMs})`] : []),
        ...(this.#dropped > 0 ? [`${this.#dropped} rows were dropped before`] : []),
      ];
      this.#warn({ code: 'W_REDIS_DROPPED', message: `${this.shown}: ${parts.join('; ')}` }, `total\0${undelivered}\0${this.#dropped}`);
    }
    this.#queue = [];
    this.#bytes = 0;
    this.#client?.disconnect();
    this.#settle();
  }
}
