/**
 * A table read whole for `/api/rows` and a page's `snapshot` event: every row through
 * {@link readLog} into a {@link Decimator}, and the last rows kept as JSON so the tail that
 * follows can be lined up with where the snapshot ended ({@link alignTail}). The file is read
 * while its writer appends; the tail starts after the snapshot, from the file's last rows, and
 * the rows both saw are sent once.
 */
import type { RowlogWarning } from '../core/warnings.js';
import { readLog } from '../read/read-log.js';
import { isCsvFormat } from '../run/layout.js';
import { Decimator, numericRow } from './decimate.js';
import type { LiveRun } from './live.js';
import type { RedisRuns } from './redis-runs.js';
import type { Snapshot } from './protocol.js';
import type { Resolved } from './runs.js';

/**
 * A table file read once: the strided rows, and the last rows (as JSON) to line up a tail with.
 * A resumed run's table is read with its ancestors' rows first (readLog's `ancestry`, issue 13
 * §1), so the page draws the chain as one curve; `onWarning` hears a broken chain.
 */
export async function readSnapshot(file: string, max: number, onWarning: (w: RowlogWarning) => void = () => undefined): Promise<{ dec: Decimator; lastKeys: string[] }> {
  const dec = new Decimator(max);
  const lastKeys: string[] = [];
  for await (const row of readLog(file, { ancestry: true, onWarning })) {
    dec.push(numericRow(row, dec.total));
    lastKeys.push(JSON.stringify(row));
    if (lastKeys.length > 16) lastKeys.splice(0, 8);
  }
  return { dec, lastKeys };
}

/**
 * The snapshot of a resolved table (a file's, the live run's rows in memory, or a Redis
 * stream's, with `since` its last entry, where the rows that follow start).
 */
export async function snapshotOf(
  { run, table, file }: Resolved,
  maxPoints: number,
  live: LiveRun | undefined,
  onWarning?: (w: RowlogWarning) => void,
  redis?: RedisRuns,
  signal?: AbortSignal,
): Promise<{ snap: Snapshot; lastKeys: string[]; since?: string }> {
  if (run.source !== undefined && redis !== undefined) return { ...(await redis.snapshot(run, table, maxPoints, signal)), lastKeys: [] };
  if (run.live) {
    const dec = (live?.tables.get(table.name) as { dec: Decimator }).dec;
    const block = dec.block();
    const snap: Snapshot = { run: run.id, table: table.name, file: '', format: 'live', total: dec.total, stride: dec.stride, maxPoints, followed: true, block };
    return { snap, lastKeys: [] };
  }
  const { dec, lastKeys } = await readSnapshot(file, maxPoints, onWarning);
  const block = dec.block(); // first: it may make the stride coarser
  const snap: Snapshot = { run: run.id, table: table.name, file: table.file, format: table.format, total: dec.total, stride: dec.stride, maxPoints, followed: !isCsvFormat(table.format), block };
  return { snap, lastKeys };
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
