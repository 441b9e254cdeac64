/**
 * The runs of `serve({redis})` (issue 14 point 3; docs/DESIGN.md §4 "Redis Streams", §9): the
 * runs a Redis holds (`SMEMBERS P:runs`, each run's meta hash: run.json's text and its
 * `table:<t>` fields), listed beside the folder's runs as `redis:<run>`, and their tables read
 * with lib/net/connect-redis.ts: a snapshot is the stream from its start under the M4 rule
 * ({@link TableM4}, against the page's x-axis; a zoom keeps the rows of its x range), and the rows after it come live from an XREAD BLOCK that starts at the
 * snapshot's last entry (`since: lastId`), so the page gets every row once.
 *
 * The listing is read again every `refreshMs` (one poll at a time: a Redis that is away does
 * not pile them up) and kept, so serve's listing stays synchronous. Nothing from Redis is
 * trusted: a run name must be a run name (isRunName) and a table a table name (isValidName)
 * before either is used, stream keys are made from them by lib/format/redis-stream.ts (never
 * taken from the hash), and at most MAX_RUNS runs and MAX_TABLES tables per run are listed.
 */
import { isValidName } from '../core/entry.js';
import { metaKey, runsKey, streamKey, TABLE_FIELD, isRunName } from '../format/redis-stream.js';
import { openRedis } from '../io/redis-client.js';
import type { Redis, RedisTarget } from '../io/redis-client.js';
import { connectRedis } from '../net/connect-redis.js';
import type { Row } from '../format/parse-lines.js';
import { TableM4, xOf } from './decimate.js';
import type { ServedRun, ServedTable, Snapshot, View } from './protocol.js';

/** What a Redis run's id starts with in the API (`run=redis:<name>`). */
export const REDIS_RUN = 'redis:';
/** Runs listed at most. */
const MAX_RUNS = 1000;
/** Tables listed per run at most. */
const MAX_TABLES = 1000;

/** The run name of a Redis run's API id, or undefined when `id` is none. */
export function redisRunName(id: string): string | undefined {
  const name = id.startsWith(REDIS_RUN) ? id.slice(REDIS_RUN.length) : undefined;
  return isRunName(name) ? name : undefined;
}

/** A string field of a JSON object's text, or undefined. */
function jsonField(text: string | undefined, key: string): string | undefined {
  try {
    const v = (JSON.parse(text ?? '') as Record<string, unknown>)[key];
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A JSON object's text as the object, or undefined (not JSON, not an object). */
function jsonObject(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text ?? '');
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The runs in one Redis, for serve. */
export class RedisRuns {
  private listed: ServedRun[] = [];
  /** Each listed run's params, by run id (for the runs table, lib/serve/summary.ts). */
  private params = new Map<string, Record<string, unknown>>();
  private readonly client: Redis;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private offline = false;
  /** The readers of snapshots and followed tables open now: close() ends them (each redials while Redis is away). */
  private readonly readers = new Set<{ destroy(): void }>();

  constructor(
    readonly target: RedisTarget,
    readonly prefix: string,
    private readonly warn: (message: string) => void,
  ) {
    this.client = openRedis(target, { name: 'rowlog-serve' });
    this.client.on('error', (err: Error) => {
      if (this.offline) return;
      this.offline = true;
      warn(`${target.shown}: ${target.scrub(err.message)} (its runs are listed again when it answers)`);
    });
    this.client.on('ready', () => (this.offline = false));
  }

  /** The runs as last read. */
  runs(): ServedRun[] {
    return this.listed;
  }

  /** A listed run's params (its meta hash's `params`, params.json's text), as last read; undefined without. */
  paramsOf(id: string): Record<string, unknown> | undefined {
    return this.params.get(id);
  }

  /** Reads the runs every `refreshMs`, calling `onChange` after each read (the server pushes the listing when it changed). */
  start(refreshMs: number, onChange: () => void): void {
    const poll = () => {
      if (this.polling) return;
      this.polling = true;
      this.read()
        .then((runs) => {
          this.listed = runs;
          onChange();
        })
        .catch((err: unknown) => this.warn(`${this.target.shown}: ${this.target.scrub((err as Error).message)}`))
        .finally(() => (this.polling = false));
    };
    poll();
    this.timer = setInterval(poll, refreshMs);
    this.timer.unref();
  }

  /** The runs now: names checked, each table's last entry time as its `mtime`. */
  async read(): Promise<ServedRun[]> {
    const names = ((await this.client.call('SMEMBERS', runsKey(this.prefix))) as string[]).filter(isRunName).sort().slice(0, MAX_RUNS);
    const metas = await Promise.all(names.map((n) => this.client.call('HGETALL', metaKey(this.prefix, n)) as Promise<string[]>));
    const runs: ServedRun[] = [];
    const params = new Map<string, Record<string, unknown>>();
    for (const [i, name] of names.entries()) {
      const flat = metas[i] ?? [];
      const meta = new Map<string, string>();
      for (let k = 0; k + 1 < flat.length; k += 2) meta.set(flat[k] as string, flat[k + 1] as string);
      const tables = [...meta.keys()]
        .filter((k) => k.startsWith(TABLE_FIELD))
        .map((k) => k.slice(TABLE_FIELD.length))
        .filter((t) => isValidName(t))
        .sort()
        .slice(0, MAX_TABLES);
      const last = await Promise.all(tables.map((t) => this.client.call('XREVRANGE', streamKey(this.prefix, name, t), '+', '-', 'COUNT', '1') as Promise<Array<[string, string[]]>>));
      const served: ServedRun = {
        id: `${REDIS_RUN}${name}`,
        name: `${REDIS_RUN}${jsonField(meta.get('run'), 'name') ?? name}`,
        live: false,
        source: `${this.target.shown} ${streamKey(this.prefix, name, '*')}`,
        tables: tables.map((t, k): ServedTable => ({ name: t, file: '', format: 'jsonl', size: 0, mtime: Number((last[k]?.[0]?.[0] ?? '0').split('-')[0]) })),
      };
      const start = jsonField(meta.get('run'), 'startTime');
      if (start !== undefined) served.startTime = start;
      const p = jsonObject(meta.get('params'));
      if (p !== undefined) params.set(served.id, p);
      runs.push(served);
    }
    this.params = params;
    return runs;
  }

  /** The rows of `run`'s `table`: `since` (exclusive) to the end, or live (`follow`) until `signal` aborts; `onRows` gets them in batches. */
  private rows(run: string, table: string, opts: { since?: string; follow: boolean; signal?: AbortSignal }, onRows: (rows: Row[]) => void): Promise<string> {
    const s = connectRedis({ redis: this.target.url, run, table, prefix: this.prefix, follow: opts.follow, ...(opts.since === undefined ? {} : { since: opts.since }) });
    this.readers.add(s);
    return new Promise<string>((resolve, reject) => {
      const stop = () => s.destroy();
      if (opts.signal?.aborted === true) stop();
      opts.signal?.addEventListener('abort', stop, { once: true });
      s.on('readable', () => {
        const rows: Row[] = [];
        for (let r = s.read() as Row | null; r !== null; r = s.read() as Row | null) rows.push(r);
        if (rows.length > 0) onRows(rows);
      });
      s.once('error', reject);
      s.once('end', () => resolve(s.lastId));
      s.once('close', () => {
        this.readers.delete(s);
        opts.signal?.removeEventListener('abort', stop);
        resolve(s.lastId);
      });
    });
  }

  /** A table's snapshot (the stream from its start, under the M4 rule) and the last entry it read; `signal` (the page went) stops the read. */
  async snapshot(run: ServedRun, table: ServedTable, view: View, signal?: AbortSignal): Promise<{ snap: Snapshot; since: string; origin: number | undefined }> {
    const m4 = new TableM4(view.maxBuckets);
    const range = view.range;
    let total = 0;
    let startTime: number | undefined;
    const since = await this.rows(redisRunName(run.id) as string, table.name, { follow: false, ...(signal === undefined ? {} : { signal }) }, (rows) => {
      for (const r of rows) {
        const index = total++;
        if (startTime === undefined && typeof r.$time === 'number' && r.$time - r.$time === 0) startTime = r.$time;
        const x = xOf(r, index, view.x);
        if (x !== undefined && (range === undefined || (x >= range.from && x <= range.to))) m4.push(index, x, r);
      }
    });
    m4.total = total;
    const snap: Snapshot = { run: run.id, table: table.name, file: '', format: 'live', total, x: view.x, bucket: m4.bucket, maxBuckets: view.maxBuckets, followed: range === undefined, block: m4.block() };
    if (range !== undefined) snap.range = { ...range, origin: m4.origin ?? 0 };
    if (startTime !== undefined) snap.startTime = startTime;
    return { snap, since, origin: m4.origin };
  }

  /** The rows after `since`, live, numbered from `index`, until `signal` aborts. */
  async follow(run: ServedRun, table: ServedTable, since: string, index: number, signal: AbortSignal, onRows: (rows: Row[], first: number) => void): Promise<void> {
    let next = index;
    await this.rows(redisRunName(run.id) as string, table.name, { since, follow: true, signal }, (rows) => {
      onRows(rows, next);
      next += rows.length;
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.client.disconnect();
    for (const s of this.readers) s.destroy();
  }
}
