/**
 * The one rule every reader uses to decode its input (docs/DESIGN.md §6): gzip is recognised by
 * its magic bytes, never by the file's name, so a `.jsonl` that is gzip, a `.gz` that is plain
 * text and stdin all read right.
 *
 * - **Blocked gzip** (rowlog's `.gz`, `bgzip`'s) is decoded member by member: each member's
 *   header gives its size (BSIZE), whole members are inflated in batches on zlib's thread pool,
 *   and zlib checks each member's CRC-32 and length. A member that fails (bad header, bad data,
 *   bad CRC) is **damage**: it is skipped, the next valid member is found by its header (and
 *   proved by its CRC), every row of every intact member is still returned, and `onDamaged`
 *   hears where the damage was and, when what is left of it still inflates, how many lines it
 *   held. Bytes after the last member that hold no valid member are a torn end, not damage.
 * - **Any other gzip** (one stream, `gzip`'s members) is streamed through zlib. Where it stops
 *   early, at bad data or at bytes after a member that are not gzip (zlib stops there without a
 *   word), `onDamaged` hears where decoding stopped and the text ends there.
 * - Either way, gzip input that ends inside a member (torn by a crash, or still being written)
 *   ends at its last whole line, and `onTruncated` is told.
 *
 * The text is handed on as it decodes: the partial line at the end of a chunk is never joined
 * here, so the work is linear in the input. Only when gzip input ends early is the cut-short
 * last line dropped, and to know where it starts the bytes since the last `\n` are held, up to
 * `maxLineBytes` (beyond it the line is too long for any reader and is passed on, to be skipped
 * and counted there).
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { isBgzfHeaderAt, isGzip, memberPieces, memberSize, nextMember, inflateMember } from '../format/bgzf.js';
import { DEFAULT_MAX_LINE_BYTES } from '../format/line-split.js';

/** A stretch of gzip input that could not be decoded, skipped by the reader. */
export interface Damage {
  /**
   * Byte offset in the compressed input where the damage starts (for a plain gzip: where the
   * last piece zlib was given starts, at most 64 KiB before the bad byte).
   */
  offset: number;
  /** Compressed bytes skipped (for a plain gzip: every byte after `offset`). */
  length: number;
  /** Lines the damaged bytes held, when what is left of them still inflates far enough to count; else undefined. */
  rowsLost?: number;
}

/** Options of {@link decoded}. */
export interface DecodeOptions {
  /** Gzip input ended inside a member: the bytes after its last line end were dropped. */
  onTruncated?: () => void;
  /** A stretch of gzip input was damaged and skipped (blocked gzip) or ended the decoding (other gzip). */
  onDamaged?: (damage: Damage) => void;
  /** Bytes per inflated chunk of a plain gzip stream. @default 65536 */
  chunkSize?: number;
  /** The bytes after the last `\n` are held at most this long to drop them if the input is torn. @default 256 MiB */
  maxLineBytes?: number;
  /**
   * For a caller that splits lines itself (and so need not hold them twice): nothing is held
   * back, and when the text ends early (torn, or at damage that stops the decoding) `onCut` is
   * called before it ends, so the caller drops its last line if that has no `\n`. @default false
   */
  keepTornLine?: boolean;
  /** With `keepTornLine`: the text ends early; its last line, if it has no `\n`, is not whole. */
  onCut?: () => void;
}

/** zlib's error for an input that ends inside a member. */
function isTruncation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'Z_BUF_ERROR';
}

/** Bytes of a BGZF member header (through BSIZE). */
const BGZF_HEADER = 18;
/** Compressed bytes inflated per zlib call: ~16 members, a few hundred KB of text. */
const BATCH = 1 << 20;
/** Text per zlib call at most (but one member, whose text BGZF bounds at ~67 MB). */
const BATCH_TEXT = 8 << 20;

const gunzip = promisify(zlib.gunzip);

/**
 * Reads an async iterator of chunks as one byte sequence, with the absolute offset of what is
 * held: `fill(n)` makes at least `n` bytes available (fewer only at the end), `take(n)` hands
 * them on. Chunks are joined only as far as a caller asks.
 */
class ByteQueue {
  #buf: Buffer = Buffer.alloc(0);
  /** Input offset of `#buf[0]`. */
  offset = 0;
  ended = false;
  readonly #it: AsyncIterator<Buffer | string>;

  constructor(it: AsyncIterator<Buffer | string>, head: Buffer) {
    this.#it = it;
    this.#buf = head;
  }

  get length(): number {
    return this.#buf.length;
  }

  get bytes(): Buffer {
    return this.#buf;
  }

  async fill(n: number): Promise<void> {
    if (this.#buf.length >= n || this.ended) return;
    const parts = [this.#buf];
    let size = this.#buf.length;
    while (size < n) {
      const r = await this.#it.next();
      if (r.done === true) {
        this.ended = true;
        break;
      }
      const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      parts.push(b);
      size += b.length;
    }
    this.#buf = Buffer.concat(parts, size);
  }

  take(n: number): Buffer {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** Puts bytes taken before back in front (they end where what is held starts). */
  untake(bytes: Buffer): void {
    this.#buf = this.#buf.length === 0 ? bytes : Buffer.concat([bytes, this.#buf]);
    this.offset -= bytes.length;
  }
}

/** Lines in what still inflates of damaged bytes that began as a BGZF member (header and all), if anything does. */
function linesIn(damaged: Buffer): number | undefined {
  if (damaged.length <= BGZF_HEADER) return undefined;
  try {
    const text = zlib.inflateRawSync(damaged.subarray(BGZF_HEADER), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    if (text.length === 0) return undefined;
    let n = 0;
    for (let i = text.indexOf(10); i !== -1; i = text.indexOf(10, i + 1)) n++;
    return n;
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

/** The text of a blocked-gzip input, member by member (see the module comment). */
async function* bgzfText(q: ByteQueue, opts: DecodeOptions, torn: (tornEnd?: boolean) => void): AsyncGenerator<Buffer> {
  /** The batch inflated last, whose text is handed on once the next batch is under way. */
  let ahead: { members: Buffer; text: Promise<Buffer> } | undefined;
  /** Damaged bytes already dropped while searching for the next member: reported with the rest. */
  let dropped: { offset: number; length: number } | undefined;
  /** The bytes at the queue's start are known not to be a valid member: resync first. */
  let bad = false;

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
      if (text.length > 0) yield text;
      return undefined;
    }
    for (let p = 0; p < members.length; p += memberSize(members, p)) {
      const t = inflateMember(members.subarray(p, p + memberSize(members, p)));
      if (t === undefined) return members.subarray(p);
      if (t.length > 0) yield t;
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
          for (let r = await pieces.next(); r.done !== true; r = await pieces.next()) yield r.value;
          continue;
        }
        const members = q.take(end);
        const next = { members, text: gunzip(members, { chunkSize: 1 << 18, maxOutputLength: Math.max(1, out) }) };
        const rest = yield* settle();
        if (rest !== undefined) {
          next.text.catch(() => undefined); // its text is not wanted: the bytes go back to the queue
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
  }
}

/** Any other gzip, streamed through zlib (see the module comment). */
async function* gzipText(q: ByteQueue, opts: DecodeOptions, torn: (tornEnd?: boolean) => void): AsyncGenerator<Buffer> {
  const start = q.offset;
  let fed = 0;
  const gz = zlib.createGunzip({ chunkSize: opts.chunkSize ?? 64 * 1024 });
  // Output is taken from 'data' events, not an async iterator: those see every chunk zlib
  // produced before an error, where an iterator would drop the ones still buffered.
  const out: Buffer[] = [];
  let failure: Error | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  gz.on('data', (b: Buffer) => {
    out.push(b);
    if (out.length >= 16) gz.pause(); // the consumer resumes it: memory stays a few chunks
    poke();
  });
  gz.on('error', (err) => {
    failure = err;
    poke();
  });
  gz.on('end', () => {
    ended = true;
    poke();
  });
  const feeding = (async () => {
    while (failure === undefined) {
      await q.fill(1);
      if (q.length === 0) break;
      // At most 64 KiB per write: zlib drops the output of a write that fails, so this bounds
      // what decodes but is not returned before damage in a plain gzip.
      const b = q.take(Math.min(q.length, 65536));
      fed += b.length;
      if (!gz.write(b)) await new Promise<void>((resolve) => {
        const done = () => {
          gz.off('drain', done);
          gz.off('error', done);
          gz.off('close', done);
          resolve();
        };
        gz.on('drain', done).on('error', done).on('close', done);
      });
    }
    if (failure === undefined) gz.end();
  })();
  try {
    for (;;) {
      const b = out.shift();
      if (b !== undefined) {
        if (out.length < 4) gz.resume();
        yield b;
        continue;
      }
      if (failure !== undefined || ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    await feeding;
  } finally {
    gz.destroy();
  }
  if (failure !== undefined) {
    if (isTruncation(failure)) return torn();
    // Bad data: decoding stops here; zlib tells how far its input was used.
    opts.onDamaged?.({ offset: start + gz.bytesWritten, length: Math.max(0, fed - gz.bytesWritten) });
    return torn(false);
  }
  // zlib ends quietly at bytes after a member that are not gzip: that is damage too.
  if (gz.bytesWritten < fed) {
    opts.onDamaged?.({ offset: start + gz.bytesWritten, length: fed - gz.bytesWritten });
    torn(false);
  }
}

/**
 * The decoded bytes of `input`: inflated when it is gzip (see the module comment), else as
 * they come. When gzip input ends early (torn, or at damage that ends the decoding), the bytes
 * after the last `\n` are dropped.
 */
export async function* decoded(input: AsyncIterable<Buffer | string>, opts: DecodeOptions = {}): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  // Gzip's magic is 2 bytes: other text goes on at once, without waiting for BGZF's 18-byte
  // header (a live pipe's first line can be shorter, and its reader waits for it).
  const q = new ByteQueue(it, Buffer.alloc(0));
  await q.fill(2);
  if (!isGzip(q.bytes)) {
    const head = q.bytes;
    if (head.length > 0) yield head;
    yield* { [Symbol.asyncIterator]: () => it } as AsyncIterable<Buffer>;
    return;
  }
  await q.fill(BGZF_HEADER);
  const head = q.bytes;
  if (!isGzip(head)) {
    yield head;
    yield* { [Symbol.asyncIterator]: () => it } as AsyncIterable<Buffer>;
    return;
  }
  let cut = false;
  let truncated = false;
  /** The input ends early here; `tornEnd`: a member cut short (else damage said where). */
  const torn = (tornEnd = true): void => {
    cut = true;
    if (tornEnd) truncated = true;
  };
  const text = isBgzfHeaderAt(head, 0) ? bgzfText(q, opts, torn) : gzipText(q, opts, torn);
  if (opts.keepTornLine === true) {
    yield* text;
    if (cut) opts.onCut?.();
    if (truncated) opts.onTruncated?.();
    return;
  }
  // Hold the bytes since the last `\n` (up to maxLineBytes) so a cut-short last line can be dropped.
  const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let held: Buffer[] = [];
  let heldBytes = 0;
  for await (const chunk of text) {
    const nl = chunk.lastIndexOf(10);
    if (nl === -1) {
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes > max) {
        // Too long for any reader: pass it on, to be skipped and counted there.
        yield* held;
        held = [];
        heldBytes = 0;
      }
      continue;
    }
    yield* held;
    held = [];
    yield chunk.subarray(0, nl + 1);
    heldBytes = chunk.length - nl - 1;
    if (heldBytes > 0) held.push(chunk.subarray(nl + 1));
  }
  if (!cut) yield* held;
  if (truncated) opts.onTruncated?.();
}
