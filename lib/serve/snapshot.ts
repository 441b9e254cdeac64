/**
 * A table's `snapshot` for `/api/rows` and a page's event stream (docs/DESIGN.md §7): the M4 of
 * the table against the x-axis asked for, at most the buckets asked for. A file's table comes
 * from serve's {@link TableCache} (read once while the file is unchanged; a resumed run's table
 * with its ancestors' rows first), then coarsened to the page's width; a zoom (`range`) reads
 * the file again for the rows of that range alone, at full resolution when they are few. The
 * last rows of the read are kept as JSON so the tail that follows can be lined up with where
 * the snapshot ended ({@link alignTail}): the file is read while its writer appends, and the
 * rows both saw are sent once.
 */
import type { RowlogWarning } from '../core/warnings.js';
import type { M4Follower } from './decimate.js';
import { isCsvFormat } from '../run/layout.js';
import type { LiveRun } from './live.js';
import type { RedisRuns } from './redis-runs.js';
import type { Snapshot, View } from './protocol.js';
import type { Resolved } from './runs.js';
import type { TableCache } from './table-cache.js';
import { readTableIndex } from './table-index.js';

/** Where snapshots come from: the server's cache, its live run and its Redis. */
export interface SnapshotSources {
  cache: TableCache;
  live?: LiveRun | undefined;
  redis?: RedisRuns | undefined;
  onWarning?: (w: RowlogWarning) => void;
}

/**
 * The snapshot of a resolved table for `view` (a file's, the live run's rows in memory, or a
 * Redis stream's, with `since` its last entry, where the rows that follow start), and `origin`,
 * the index its buckets are counted from (the first row on the axis; a live table's axis asked
 * for late: the row it started at), for the {@link M4Follower} of its rows to count as it did.
 */
export async function snapshotOf(
  target: Resolved,
  view: View,
  src: SnapshotSources,
  signal?: AbortSignal,
): Promise<{ snap: Snapshot; lastKeys: string[]; since?: string; origin?: number | undefined }> {
  const { run, table, file } = target;
  if (run.source !== undefined && src.redis !== undefined) return { ...(await src.redis.snapshot(run, table, view, signal)), lastKeys: [] };
  if (run.live) {
    const live = src.live?.tables.get(table.name);
    const m4 = live?.view(view.x);
    const snap: Snapshot = { run: run.id, table: table.name, file: '', format: 'live', total: live?.total ?? 0, x: view.x, bucket: 1, maxBuckets: view.maxBuckets, followed: true, block: { columns: [], points: [] } };
    if (m4 !== undefined) Object.assign(snap, m4.coarsened(view.maxBuckets));
    if (live?.startTime !== undefined) snap.startTime = live.startTime;
    return { snap, lastKeys: [], origin: m4?.origin };
  }
  const base = { run: run.id, table: table.name, file: table.file, format: table.format, x: view.x, maxBuckets: view.maxBuckets };
  if (view.range !== undefined) {
    const idx = await readTableIndex(file, view.x, { maxBuckets: view.maxBuckets, range: view.range, ...(src.onWarning ? { onWarning: src.onWarning } : {}), ...(signal ? { signal } : {}) });
    const snap: Snapshot = { ...base, total: idx.total, bucket: idx.m4.bucket, range: { ...view.range, origin: idx.m4.origin ?? 0 }, followed: false, block: idx.m4.block() };
    if (idx.startTime !== undefined) snap.startTime = idx.startTime;
    return { snap, lastKeys: [] };
  }
  const idx = await src.cache.get(file, view.x);
  const { bucket, block } = idx.m4.coarsened(view.maxBuckets);
  const snap: Snapshot = { ...base, total: idx.total, bucket, followed: !isCsvFormat(table.format), block };
  if (idx.startTime !== undefined) snap.startTime = idx.startTime;
  return { snap, lastKeys: idx.lastKeys, origin: idx.m4.origin };
}

/**
 * Where the rows a tail first returned (the file's last rows when it started, after the
 * snapshot was read) go past the snapshot: the index of the first new one. The snapshot's last
 * row is looked for (then, in case the snapshot read a last line the writer had not ended yet,
 * the one before), checked against the rows before it. Exported for tests.
 */
export function alignTail(keys: string[], lastKeys: string[]): number {
  if (lastKeys.length === 0) return 0;
  for (let back = 1; back <= 2 && back <= lastKeys.length; back++) {
    const want = lastKeys.length - back;
    for (let p = keys.length - 1; p >= 0; p--) {
      let ok = true;
      for (let d = 0; d <= Math.min(p, want, 4); d++) {
        if (keys[p - d] !== lastKeys[want - d]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      let start = p + 1;
      if (back === 2 && keys[start] === lastKeys[lastKeys.length - 1]) start++;
      return start;
    }
  }
  return 0; // not found: the file was replaced, or grew past the tail's first read meanwhile; send them all
}
