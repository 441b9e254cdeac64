/**
 * Blocked gzip decoded member by member, damage skipped and reported (lib/read/decode.ts's
 * module comment has the rule; docs/DESIGN.md §6). Why one piece of ~200 lines: the batch in
 * flight, the resync after damage and the members given back to the queue are one state machine.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { BGZF_HEADER, isBgzfHeaderAt, isGzip, memberPieces, memberSize, nextMember, inflateMember } from '../format/bgzf.js';
import { countNewlines } from '../format/line-split.js';
import type { ByteQueue } from './byte-queue.js';
import { gzipText } from './decode-gzip.js';
import type { DecodeOptions } from './decode-options.js';

const NEWLINE = Buffer.from('\n');

/** Compressed bytes inflated per zlib call: ~16 members, a few hundred KB of text. */
const BATCH = 1 << 20;
/** Text per zlib call at most (but one member, whose text BGZF bounds at ~67 MB). */
const BATCH_TEXT = 8 << 20;

const gunzip = promisify(zlib.gunzip);

/**
 * Lines in what still inflates of damaged bytes that began as a BGZF member (header and all), if
 * anything does. Bounded: the damaged bytes may be megabytes of deflate data that no BSIZE
 * bounds (a bomb behind a wrong BSIZE inflates to GBs), so past BATCH_TEXT of text the count is
 * unknown (undefined) rather than held.
 */
function linesIn(damaged: Buffer): number | undefined {
  if (damaged.length <= BGZF_HEADER) return undefined;
  try {
    const text = zlib.inflateRawSync(damaged.subarray(BGZF_HEADER), { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: BATCH_TEXT });
    if (text.length === 0) return undefined;
    return countNewlines(text);
  } catch {
    return undefined;
  }
}

/** Whether a member inflates to its ISIZE with its CRC-32, its text not kept. */
async function intact(member: Buffer): Promise<boolean> {
  const pieces = memberPieces(member);
  for (;;) {
    const r = await pieces.next();
    if (r.done === true) return r.value;
  }
}

/** The text of a blocked-gzip input, member by member . */
export async function* bgzfText(q: ByteQueue, opts: DecodeOptions, torn: (tornEnd?: boolean) => void, startsBad = false): AsyncGenerator<Buffer> {
  /** The batch inflated last, whose text is handed on once the next batch is under way. */
  let ahead: { members: Buffer; text: Promise<Buffer> } | undefined;
  /** Damaged bytes already dropped while searching for the next member: reported with the rest. */
  let dropped: { offset: number; length: number } | undefined;
  /** The bytes at the queue's start are known not to be a valid member: resync first. */
  let bad = startsBad;
  /** The text handed on so far ends inside a line (no `\n` last). */
  let lineOpen = false;
  /** Notes whether `text` leaves a line open, and hands it back. */
  const note = (text: Buffer): Buffer => {
    if (text.length > 0) lineOpen = text[text.length - 1] !== 10;
    return text;
  };

  /** Reports damaged bytes at `offset` (plus any dropped before them). */
  function report(offset: number, bytes: Buffer): void {
    const start = dropped?.offset ?? offset;
    const length = (dropped?.length ?? 0) + bytes.length;
    const lost = dropped === undefined ? linesIn(bytes) : undefined;
    dropped = undefined;
    opts.onDamaged?.({ offset: start, length, ...(lost !== undefined && { rowsLost: lost }) });
  }

  /**
   * The text of the batch in flight. When a member of it fails, its members are gone through
   * one by one; from the first bad one the rest goes back to the queue (a wrong BSIZE may have
   * swallowed members that are whole), and `bad` says to resync from there.
   */
  async function* settle(): AsyncGenerator<Buffer, Buffer | undefined> {
    if (ahead === undefined) return undefined;
    const { members } = ahead;
    const text = await ahead.text.catch(() => undefined);
    ahead = undefined;
    if (text !== undefined) {
      if (text.length > 0) yield note(text);
      return undefined;
    }
    for (let p = 0; p < members.length; p += memberSize(members, p)) {
      const t = inflateMember(members.subarray(p, p + memberSize(members, p)));
      if (t === undefined) return members.subarray(p);
      if (t.length > 0) yield note(t);
    }
    return undefined;
  }

  for (;;) {
    if (!bad) {
      await q.fill(BATCH + BGZF_HEADER);
      // Whole members, up to BATCH bytes: inflated in one zlib call on its thread pool.
      // Their text is bounded by what their ISIZE fields say (a member of a gzip bomb says
      // ~63 MB), and zlib may not produce more than that.
      const buf = q.bytes;
      let end = 0;
      let out = 0;
      while (end < BATCH && out < BATCH_TEXT && end + BGZF_HEADER <= buf.length && isBgzfHeaderAt(buf, end)) {
        const size = memberSize(buf, end);
        if (end + size > buf.length || size < BGZF_HEADER + 8) break;
        const isize = buf.readUInt32LE(end + size - 4);
        if (end > 0 && out + isize > BATCH_TEXT) break; // a member of a huge text goes alone
        end += size;
        out += isize;
      }
      if (end > 0) {
        // Start this batch before the last one's text is handed on: zlib works meanwhile. Not
        // a member of a huge text (a bomb's): then one at a time, to bound memory.
        if (out > BATCH_TEXT) {
          const rest = yield* settle();
          if (rest !== undefined) {
            q.untake(rest);
            bad = true;
            continue;
          }
          // Not a member rowlog or bgzip writes (their text is ≤ 64 KiB): a bomb's, or a foreign
          // writer's. It is proved by its CRC first, inflating without keeping the text, then
          // its text goes on in pieces as it inflates again: never held whole.
          const member = q.bytes.subarray(0, end);
          if (!(await intact(member))) {
            bad = true; // a wrong BSIZE or ISIZE: resync from here
            continue;
          }
          q.take(end);
          const pieces = memberPieces(member);
          for (let r = await pieces.next(); r.done !== true; r = await pieces.next()) yield note(r.value);
          continue;
        }
        const members = q.take(end);
        const next = { members, text: gunzip(members, { chunkSize: 1 << 18, maxOutputLength: Math.max(1, out) }) };
        // Handled from the start: a consumer that leaves while this batch inflates (at a yield
        // below) never awaits it, and a damaged batch's rejection must not crash the process.
        // settle() awaits it as before and sees the failure.
        next.text.catch(() => undefined);
        const rest = yield* settle();
        if (rest !== undefined) {
          // its text is not wanted: the bytes go back to the queue
          q.untake(members);
          q.untake(rest);
          bad = true;
          continue;
        }
        ahead = next;
        continue;
      }
      const rest = yield* settle();
      if (rest !== undefined) {
        q.untake(rest);
        bad = true;
        continue;
      }
      if (q.length === 0) return;
      if (q.length < BGZF_HEADER && q.ended) return torn(); // a header cut short
      if (!isBgzfHeaderAt(q.bytes, 0)) {
        if (isGzip(q.bytes.subarray(0, 3)) && ((q.bytes[3] ?? 0) & 4) === 0 && nextMember(q.bytes, 1) === -1) {
          // A plain gzip member after BGZF ones (files concatenated): the rest is read as any gzip.
          yield* gzipText(q, opts, torn);
          return;
        }
      } else if (nextMember(q.bytes, 1) === -1) {
        // A member that runs past the end of the input, with no valid member inside it: torn.
        return torn();
      }
      // Else a member that runs past the end but holds a valid one (its BSIZE was damaged).
    }
    // Bytes at the start that are no valid member: damage up to the next valid member. Memory
    // stays bounded while searching: bytes with no member in them are dropped as it goes on.
    bad = false;
    let next = nextMember(q.bytes, 1);
    while (next === -1 && !q.ended) {
      if (q.length > 4 * BATCH) {
        const keep = 65536 + BGZF_HEADER; // a member straddling the cut is found after it
        const offset = q.offset;
        const n = q.take(q.length - keep).length;
        dropped = { offset: dropped?.offset ?? offset, length: (dropped?.length ?? 0) + n };
      }
      const had = q.length;
      await q.fill(had + BATCH);
      next = nextMember(q.bytes, Math.max(1, had - 65536 - BGZF_HEADER));
    }
    if (next === -1) {
      // Nothing valid after these bytes: the end of the file is torn (a crash mid-write).
      dropped = undefined;
      return torn();
    }
    report(q.offset, q.take(next));
    // A member of a foreign writer (bgzip) may end inside a line, and the next intact one begin
    // inside another: the line left open before the damage is ended here, so that its piece and
    // the piece after the damage are two bad lines, never one row made of two (rowlog's members
    // hold whole lines, so its files never need this).
    if (lineOpen) yield note(NEWLINE);
  }
}
