/**
 * The rows of a table file for serve's one read of it (lib/serve/table-index.ts), the fast way
 * where the file is what rowlog writes: a BGZF `.jsonl.gz` (whole members, lib/format/bgzf.ts)
 * or a plain `.jsonl`. Whole members are inflated a batch at a time on zlib's thread pool (the
 * next batch inflating while this one's lines are parsed), and each line goes through the same
 * line → row rule as readLog ({@link lineToRow}), synchronously, to a callback: no stream and no
 * promise per row, which is most of readLog's cost on a 2M-row table, and one batch of text in
 * memory. Anything else gives up before or during the read (`'other'`): a plain gzip, a damaged
 * member, a line past {@link DEFAULT_MAX_LINE_BYTES}; the caller then reads the file with
 * readLog, whose rules (damage skipped and reported, any gzip) are the reference. A torn end (a
 * writer at work) ends the rows at the last whole member, its open line dropped, as readLog does.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { BGZF_HEADER, BGZF_MAX_MEMBER, isBgzfHeaderAt, isGzip, memberSize } from '../format/bgzf.js';
import { DEFAULT_MAX_LINE_BYTES } from '../format/line-split.js';
import { lineToRow } from '../format/parse-lines.js';
import type { RowlogWarning } from '../core/warnings.js';
import { formatOf, readLog } from '../read/read-log.js';
import { ancestorFiles } from '../run/ancestry.js';

const gunzip = promisify(zlib.gunzip) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;

/** Compressed bytes read and inflated per batch (~4 members: ~1 MB of text, some 10k rows). */
export const BATCH_BYTES = 256 * 1024;

/** zlib's output chunk: a batch's text in a few pieces (its default 16 KiB makes the main thread join ~60). */
const INFLATE_CHUNK = 256 * 1024;

/** Options of {@link fastRows}. */
export interface FastRowsOptions {
  /** Stops the read between batches. */
  signal?: AbortSignal | undefined;
  /** Asked between batches: a promise to wait for first (see readTableIndex's `pause`), or undefined. */
  pause?: (() => Promise<void> | undefined) | undefined;
}

/** Reads `n` bytes of `fd` at `pos` (fewer at the end). */
async function readAt(fd: fs.promises.FileHandle, pos: number, n: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(n);
  const { bytesRead } = await fd.read(buf, 0, n, pos);
  return bytesRead === n ? buf : buf.subarray(0, bytesRead);
}

/**
 * Hands each row of `file` to `onRow`, in order. Resolves `'done'` after the last, or `'other'`
 * (possibly after some rows: the caller starts over) when the file is not one this reads.
 */
export async function fastRows(file: string, onRow: (row: Record<string, unknown>) => void, opts: FastRowsOptions = {}): Promise<'done' | 'other'> {
  const fd = await fs.promises.open(file, 'r');
  try {
    const size = (await fd.stat()).size;
    const head = await readAt(fd, 0, Math.min(size, BGZF_HEADER));
    const bgzf = head.length === BGZF_HEADER && isBgzfHeaderAt(head, 0);
    if (!bgzf && head.length > 0 && isGzip(head)) return 'other';
    // The text of the line not ended yet, and what turns complete text into rows.
    let carry: Buffer = Buffer.alloc(0);
    const rowsOf = (s: string): void => {
      for (let at = 0; at < s.length; ) {
        let end = s.indexOf('\n', at);
        if (end < 0) end = s.length;
        if (end > at) {
          const row = lineToRow(s.slice(at, end));
          if (row !== undefined) onRow(row);
        }
        at = end + 1;
      }
    };
    /** The rows of the lines `text` ends; false when a line grows past the bound. */
    const lines = (text: Buffer): boolean => {
      const nl = text.lastIndexOf(10);
      if (nl < 0) {
        carry = carry.length === 0 ? text : Buffer.concat([carry, text]);
        return carry.length <= DEFAULT_MAX_LINE_BYTES;
      }
      const whole = carry.length === 0 ? text.subarray(0, nl + 1) : Buffer.concat([carry, text.subarray(0, nl + 1)]);
      carry = text.subarray(nl + 1);
      rowsOf(whole.toString('utf8'));
      return true;
    };
    const between = async (): Promise<boolean> => {
      if (opts.signal?.aborted) return false;
      const wait = opts.pause?.();
      if (wait !== undefined) await wait;
      return !opts.signal?.aborted;
    };

    if (!bgzf) {
      for (let pos = 0; pos < size; pos += BATCH_BYTES) {
        if (!lines(await readAt(fd, pos, Math.min(BATCH_BYTES, size - pos)))) return 'other';
        if (!(await between())) return 'done';
      }
      rowsOf(carry.toString('utf8')); // a last line without its newline
      return 'done';
    }

    /** Where the whole members at the start of `buf` end (BATCH_BYTES' worth at most), or -1 for bytes that are not a member. */
    const wholeMembers = (buf: Buffer): number => {
      let end = 0;
      while (end + BGZF_HEADER <= buf.length && end < BATCH_BYTES) {
        if (!isBgzfHeaderAt(buf, end)) return -1;
        const n = memberSize(buf, end);
        if (end + n > buf.length) break;
        end += n;
      }
      return end;
    };
    let pos = 0;
    let pending: Buffer = Buffer.alloc(0);
    let inflating: Promise<Buffer> | undefined;
    for (;;) {
      // enough compressed bytes for a batch of whole members (a member is at most BGZF_MAX_MEMBER)
      while (pos < size && pending.length < BATCH_BYTES + BGZF_MAX_MEMBER) {
        const more = await readAt(fd, pos, Math.min(BATCH_BYTES, size - pos));
        if (more.length === 0) break;
        pos += more.length;
        pending = pending.length === 0 ? more : Buffer.concat([pending, more]);
      }
      const end = wholeMembers(pending);
      if (end < 0) return 'other';
      const next = end === 0 ? undefined : gunzip(pending.subarray(0, end), { chunkSize: INFLATE_CHUNK });
      next?.catch(() => undefined); // awaited below; a damaged batch is not an unhandled rejection meanwhile
      pending = pending.subarray(end);
      if (inflating !== undefined) {
        // the last batch's lines, parsed while the next batch inflates
        let text: Buffer;
        try {
          text = await inflating;
        } catch {
          return 'other'; // damage: readLog skips it and says where
        }
        if (!lines(text)) return 'other';
        if (!(await between())) return 'done';
      }
      inflating = next;
      if (next === undefined) break;
    }
    // Bytes left over are a torn last member (a writer at work): its rows are not there yet,
    // and the line it would end is dropped with it. A whole file's last line may lack its newline.
    if (pending.length === 0) rowsOf(carry.toString('utf8'));
    return 'done';
  } finally {
    await fd.close();
  }
}

/** Rows between two `pause` asks on readLog's way. */
export const PAUSE_ROWS = 4096;

/** Options of {@link tableRows}. */
export interface TableRowsOptions extends FastRowsOptions {
  /** Hears a broken ancestor chain (`W_ANCESTRY`) on readLog's way. */
  onWarning?: ((w: RowlogWarning) => void) | undefined;
}

/**
 * Every row of table file `file` as serve reads it, to `onRow`: rowlog's own JSONL of a run not
 * resumed the fast way ({@link fastRows}); anything else, or when that gives up, through readLog
 * (any gzip, damage skipped, a resumed run's ancestors first), after `restart()` (forget the
 * rows handed so far). Rejects as readLog does (a missing file: ENOENT).
 */
export async function tableRows(file: string, onRow: (row: Record<string, unknown>) => void, restart: () => void, opts: TableRowsOptions = {}): Promise<void> {
  const chain = ancestorFiles(file);
  const fast = formatOf(file) === 'jsonl' && fs.existsSync(file) && chain.files.length === 0 && chain.warnings.length === 0;
  if (fast && (await fastRows(file, onRow, opts)) === 'done') return;
  if (fast) restart();
  const pause = opts.pause;
  let n = 0;
  for await (const row of readLog(file, { ancestry: true, ...(opts.onWarning ? { onWarning: opts.onWarning } : {}) })) {
    if (opts.signal?.aborted) break;
    if (pause !== undefined && n++ % PAUSE_ROWS === PAUSE_ROWS - 1) {
      const wait = pause();
      if (wait !== undefined) await wait;
    }
    onRow(row);
  }
}
