/**
 * `/api/events` (docs/DESIGN.md §7): one server-sent event stream per open page, and what follows a
 * table on it. For each run of the stream: one `snapshot` (the table under the M4 rule against
 * the page's x-axis, see lib/serve/snapshot.ts), then `rows` as rows are appended: a JSONL file is followed with
 * `tailBatches`, a live table through its listeners (batched every `pollMs`), a Redis stream
 * from the snapshot's last entry (lib/serve/redis-runs.ts), and a CSV-only
 * table, which cannot be tailed (a new column rewrites the whole file), is sent again as a new
 * `snapshot` when it changes. A `rows` event carries the M4 of the rows from the start of the
 * page's last bucket on ({@link M4Follower}); the buckets only get coarser.
 *
 * A page that falls behind is dropped rather than buffered without end: once more than
 * MAX_SSE_BACKLOG is queued beyond its largest event it is closed, and the browser reconnects
 * and starts again with a fresh snapshot.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { lineToRow } from '../format/parse-lines.js';
import { tailBatches } from '../read/tail.js';
import type { Row } from '../format/parse-lines.js';
import { M4Follower, xOf } from './decimate.js';
import type { LiveRun } from './live.js';
import type { RedisRuns } from './redis-runs.js';
import type { ServerEvents, Snapshot, View } from './protocol.js';
import type { Resolved } from './runs.js';
import { alignTail } from './snapshot.js';

/** An event stream whose client lags this far behind is dropped (its page reconnects and re-reads). */
const MAX_SSE_BACKLOG = 16 << 20;
/** A comment line keeps idle event streams (and proxies) open. */
const HEARTBEAT_MS = 15_000;
/** Rows read back from the end of a followed file to line up with the snapshot just sent. */
const ALIGN_ROWS = 1000;

/** Server-sent events to one page. */
export class EventStream {
  readonly abort = new AbortController();
  /** Characters of the largest event sent. */
  private largest = 0;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(readonly res: http.ServerResponse) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.heartbeat = setInterval(() => this.comment('ping'), HEARTBEAT_MS);
    this.heartbeat.unref();
    res.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.abort.signal.aborted;
  }

  send<E extends keyof ServerEvents>(event: E, data: ServerEvents[E]): void {
    if (this.closed) return;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    this.largest = Math.max(this.largest, text.length);
    this.res.write(text);
    // A page that lets more than MAX_SSE_BACKLOG pile up beyond its largest event (a wide table's
    // snapshot may be bigger than that on its own) is not keeping up: it reconnects and re-reads.
    if (this.res.writableLength > MAX_SSE_BACKLOG + this.largest) this.close();
  }

  comment(text: string): void {
    if (!this.closed) this.res.write(`: ${text}\n\n`);
  }

  close(): void {
    if (this.closed) return;
    this.abort.abort();
    clearInterval(this.heartbeat);
    this.res.end();
  }
}

/** What {@link follow} needs of the server. */
export interface FollowContext {
  pollMs: number;
  live: LiveRun | undefined;
  redis?: RedisRuns | undefined;
  /** `signal`: the page went (a Redis stream's read stops). */
  snapshot(target: Resolved, view: View, signal?: AbortSignal): Promise<{ snap: Snapshot; lastKeys: string[]; since?: string; origin?: number | undefined }>;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/** Sends the table `target` names to `es`: a snapshot, then rows as they are appended, until the page goes. */
export async function follow(es: EventStream, target: Resolved, view: View, ctx: FollowContext): Promise<void> {
  const { run, table, file } = target;
  const signal = es.abort.signal;
  const { snap, lastKeys, since, origin } = await ctx.snapshot(target, view, signal);
  if (signal.aborted) return;
  es.send('snapshot', snap);
  // The page's last bucket, held here (the page holds the rest), so each batch sends only what changed.
  // Its buckets counted from where the snapshot's were (a live axis asked for late starts late).
  const fol = new M4Follower(origin === undefined ? snap : { ...snap, origin });
  const sendRows = (rows: readonly Row[], first: number) => {
    if (rows.length === 0) return;
    const batch = rows.map((row, k) => ({ index: first + k, x: xOf(row, first + k, view.x), row }));
    const { from, bucket, block } = fol.append(batch, first + rows.length);
    es.send('rows', { run: run.id, table: table.name, total: fol.total, x: view.x, bucket, from, block });
  };

  if (since !== undefined && ctx.redis !== undefined) {
    // A Redis stream: live from the snapshot's last entry (lib/serve/redis-runs.ts), one batch per read.
    await ctx.redis.follow(run, table, since, snap.total, signal, sendRows);
    return;
  }

  if (run.live) {
    const live = ctx.live?.tables.get(table.name);
    if (live === undefined) return;
    let pending: Row[] = [];
    let first = snap.total;
    let timer: NodeJS.Timeout | undefined;
    const listener = (row: Record<string, unknown>, index: number) => {
      if (index < first) return; // in the snapshot already
      if (pending.length === 0) first = index;
      pending.push(row);
      timer ??= setTimeout(() => {
        timer = undefined;
        const rows = pending;
        pending = [];
        sendRows(rows, first);
        first += rows.length;
      }, ctx.pollMs);
    };
    live.listeners.add(listener);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    live.listeners.delete(listener);
    clearTimeout(timer);
    return;
  }

  if (!snap.followed) {
    // CSV: read it again when it changes.
    let seen = fs.statSync(file, { throwIfNoEntry: false });
    while (!signal.aborted) {
      await pause(Math.max(ctx.pollMs, 1000), signal);
      const now = fs.statSync(file, { throwIfNoEntry: false });
      if (signal.aborted || now === undefined || (seen !== undefined && now.mtimeMs === seen.mtimeMs && now.size === seen.size && now.ino === seen.ino)) continue;
      seen = now;
      const again = await ctx.snapshot(target, view);
      es.send('snapshot', again.snap);
    }
    return;
  }

  let first = true;
  let index = snap.total;
  for await (const lines of tailBatches(file, { lines: ALIGN_ROWS, follow: true, pollMs: ctx.pollMs, signal })) {
    let parsed = lines.map((l) => lineToRow(l)).filter((r) => r !== undefined);
    if (first) {
      first = false;
      parsed = parsed.slice(alignTail(parsed.map((r) => JSON.stringify(r)), lastKeys));
    }
    if (parsed.length > 0) sendRows(parsed, index);
    index += parsed.length;
  }
}
