/**
 * The memory bound of a file sink, `maxQueuedBytes` (docs/DESIGN.md §4, issue 9 point 2): past it the
 * sink writes synchronously, so a training loop that never yields slows down instead of filling
 * memory; only a FAILING file that still holds too much loses rows, its oldest batches first,
 * with a `W_ROWS_DROPPED` warning (sinks/sink-file.ts counts them). Files in their retry backoff
 * are not tried on every row (that would spin), except once when their backoff has run out.
 */
import type { SinkFile } from './sink-file.js';

/** Bytes waiting for the disk in `files`, batched or queued. */
export function queuedBytes(files: ReadonlyMap<string, SinkFile>): number {
  let n = 0;
  for (const f of files.values()) n += f.used + f.writer.queuedBytes;
  return n;
}

/**
 * Past `max`: write synchronously, and drop from failing files only what still does not fit.
 * `drop` is false on the close path, where every file gets its last try first.
 */
export function enforceBound(files: ReadonlyMap<string, SinkFile>, max: number, drop = true): void {
  if (queuedBytes(files) <= max) return;
  writeQueuedSync(files);
  if (!drop || queuedBytes(files) <= max) return;
  // A failing file whose backoff has run out (its timer cannot fire in a loop that never
  // yields) gets one more try before its rows are dropped: the disk may have room again.
  for (const f of files.values()) {
    if (!f.writer.retryDue || f.writer.queuedBytes === 0) continue;
    try {
      f.writer.flushSync();
    } catch {
      // still failing: its backoff grows (W_FILE_ERROR was warned once)
    }
  }
  const over = queuedBytes(files) - max;
  if (over > 0) dropFromFailing(files, over);
}

/**
 * Memory bound reached or batches overdue (the event loop is not getting a turn): write
 * everything now, except files in their retry backoff (trying them on every row would spin).
 */
export function writeQueuedSync(files: ReadonlyMap<string, SinkFile>): void {
  for (const f of files.values()) {
    if (f.writer.failing || f.writer.queuedBytes === 0) continue;
    try {
      f.writer.flushSync();
    } catch {
      // reported through onError (W_FILE_ERROR); the bytes stay queued for the retry
    }
  }
}

/** Past the memory bound with failing files holding the bytes: drop their oldest batches, loudly. */
function dropFromFailing(files: ReadonlyMap<string, SinkFile>, over: number): void {
  for (const f of files.values()) {
    if (over <= 0) return;
    if (!f.writer.failing) continue;
    const r = f.writer.dropOldest(over);
    over -= r.bytes;
    if (r.rows === 0 && r.bytes === 0) continue;
    f.dropRows(r.rows);
  }
}
