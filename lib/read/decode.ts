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
import { pipeline, Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { isBgzfHeaderAt, isGzip, memberSize, nextMember, inflateMember } from '../format/bgzf.js';
import { DEFAULT_MAX_LINE_BYTES } from '../format/line-split.js';

/** A stretch of gzip input that could not be decoded, skipped by the reader. */
export interface Damage {
  /** Byte offset in the compressed input where the damage starts. */
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
}

/** zlib's error for an input that ends inside a member. */
function isTruncation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'Z_BUF_ERROR';
}

/** Bytes of a BGZF member header (through BSIZE). */
const BGZF_HEADER = 18;
/** Compressed bytes inflated per zlib call: ~16 members, a few hundred KB of text. */
const BATCH = 1 << 20;

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
}

/** The first bytes of `it` (at least `n` unless it ends sooner). */
async function peek(it: AsyncIterator<Buffer | string>, n: number): Promise<Buffer> {
  const q = new ByteQueue(it, Buffer.alloc(0));
  await q.fill(n);
  return q.bytes;
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

/** The text of a blocked-gzip input, member by member (see the module comment). */
async function* bgzfText(q: ByteQueue, opts: DecodeOptions, torn: (tornEnd?: boolean) => void): AsyncGenerator<Buffer> {
  let ahead: { members: Buffer; offset: number; text: Promise<Buffer> } | undefined; // inflating while the last batch is consumed
  /** Damaged bytes already dropped while searching for the next member: reported with the rest. */
  let dropped: { offset: number; length: number } | undefined;

  /** The text of the batch in flight; a batch that fails is gone through member by member. */
  async function* settle(): AsyncGenerator<Buffer> {
    if (ahead === undefined) return;
    const { members, offset } = ahead;
    const text = await ahead.text.catch(() => undefined);
    ahead = undefined;
    if (text !== undefined) {
      if (text.length > 0) yield text;
      return;
    }
    for (let p = 0; p < members.length; ) {
      const size = memberSize(members, p);
      const member = members.subarray(p, p + size);
      const t = inflateMember(member);
      if (t === undefined) report(offset + p, member);
      else if (t.length > 0) yield t;
      p += size;
    }
  }

  /** Reports damaged bytes at `offset` (plus any dropped before them). */
  function report(offset: number, bytes: Buffer): void {
    const start = dropped?.offset ?? offset;
    const length = (dropped?.length ?? 0) + bytes.length;
    const lost = dropped === undefined ? linesIn(bytes) : undefined;
    dropped = undefined;
    opts.onDamaged?.({ offset: start, length, ...(lost !== undefined && { rowsLost: lost }) });
  }

  for (;;) {
    await q.fill(BATCH + BGZF_HEADER);
    // Whole members, up to BATCH bytes: inflated in one zlib call on its thread pool.
    const buf = q.bytes;
    let end = 0;
    while (end < BATCH && end + BGZF_HEADER <= buf.length && isBgzfHeaderAt(buf, end)) {
      const size = memberSize(buf, end);
      if (end + size > buf.length) break;
      end += size;
    }
    if (end > 0) {
      const offset = q.offset;
      const members = q.take(end);
      yield* settle();
      ahead = { members, offset, text: gunzip(members) };
      continue;
    }
    yield* settle();
    if (q.length === 0) return;
    if (q.length < BGZF_HEADER && q.ended) return torn(); // a header cut short
    if (isBgzfHeaderAt(q.bytes, 0)) {
      // A member that runs past what the input holds: torn, unless a valid member starts
      // inside it (then its BSIZE was damaged).
      const next = nextMember(q.bytes, 1);
      if (next === -1) return torn();
      report(q.offset, q.take(next));
      continue;
    }
    // Bytes that are no member: damage up to the next valid member. Memory stays bounded while
    // searching: bytes with no member in them are dropped as the search goes on.
    let next = nextMember(q.bytes, 1);
    while (next === -1 && !q.ended) {
      if (q.length > 4 * BATCH) {
        const keep = 65536 + BGZF_HEADER; // a member straddling the cut is found after it
        const offset = q.offset;
        const n = q.take(q.length - keep).length;
        dropped = { offset: dropped?.offset ?? offset, length: (dropped?.length ?? 0) + n };
      }
      await q.fill(q.length + BATCH);
      next = nextMember(q.bytes, Math.max(1, q.length - BATCH - 65536 - BGZF_HEADER));
    }
    if (next === -1) {
      // No valid member after these bytes. Any other gzip (files concatenated) is read as such;
      // anything else is a torn end.
      if (dropped === undefined && isGzip(q.bytes.subarray(0, 3)) && ((q.bytes[3] ?? 0) & 4) === 0) {
        yield* gzipText(q, opts, torn);
        return;
      }
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
  pipeline(
    Readable.from(
      (async function* () {
        while (q.length > 0 || !q.ended) {
          await q.fill(1);
          if (q.length === 0) return;
          const b = q.take(q.length);
          fed += b.length;
          yield b;
        }
      })(),
      { objectMode: false },
    ),
    gz,
    () => {}, // errors reach the loop below through gz
  );
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    if (isTruncation(err)) return torn();
    // Bad data: decoding stops here; zlib tells how far its input was used.
    opts.onDamaged?.({ offset: start + gz.bytesWritten, length: Math.max(0, fed - gz.bytesWritten) });
    return torn(false);
  }
  // zlib ends quietly at bytes after a member that are not gzip: that is damage too.
  while (!q.ended) {
    await q.fill(q.length + 65536);
    fed += q.take(q.length).length;
  }
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
  const head = await peek(it, BGZF_HEADER);
  if (!isGzip(head)) {
    if (head.length > 0) yield head;
    yield* { [Symbol.asyncIterator]: () => it } as AsyncIterable<Buffer>;
    return;
  }
  const q = new ByteQueue(it, head);
  let cut = false;
  let truncated = false;
  /** The input ends early here; `tornEnd`: a member cut short (else damage said where). */
  const torn = (tornEnd = true): void => {
    cut = true;
    if (tornEnd) truncated = true;
  };
  const text = isBgzfHeaderAt(head, 0) ? bgzfText(q, opts, torn) : gzipText(q, opts, torn);
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
