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
 *   Input that does not start like gzip but holds NUL bytes in its first 18 (where a header's
 *   zeros are) and a valid member within 256 KiB is blocked gzip whose first member is damaged.
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
import { BGZF_HEADER, isBgzfHeaderAt, isGzip, nextMember } from '../format/bgzf.js';
import { DEFAULT_MAX_LINE_BYTES } from '../format/line-split.js';
import { ByteQueue } from './byte-queue.js';
import { bgzfText } from './decode-bgzf.js';
import { gzipText } from './decode-gzip.js';
import type { DecodeOptions } from './decode-options.js';

export type { Damage, DecodeOptions } from './decode-options.js';

/**
 * How far into input that does not start like gzip (but holds NUL bytes) a valid BGZF member is
 * looked for: then it is blocked gzip whose first member is damaged (as bgzf.ts's
 * startsDamagedBgzf decides for tail and ls).
 */
const DAMAGED_START_SEARCH = 256 << 10;

/**
 * The decoded bytes of `input`: inflated when it is gzip (see the module comment), else as
 * they come. When gzip input ends early (torn, or at damage that ends the decoding), the bytes
 * after the last `\n` are dropped.
 */
export async function* decoded(input: AsyncIterable<Buffer | string>, opts: DecodeOptions = {}): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const q = new ByteQueue(it, Buffer.alloc(0));
  // Gzip's magic is 2 bytes: other text goes on at once, without waiting for BGZF's 18-byte
  // header (a live pipe's first line can be shorter, and its reader waits for it).
  await q.fill(2);
  let head = q.bytes;
  /** Blocked gzip whose first member's header is damaged (text never holds NUL bytes where a header's zeros are). */
  let startsDamaged = false;
  if (isGzip(head)) {
    await q.fill(BGZF_HEADER);
    head = q.bytes;
  } else if (head.subarray(0, BGZF_HEADER).includes(0)) {
    await q.fill(DAMAGED_START_SEARCH);
    head = q.bytes;
    startsDamaged = nextMember(head, 1) !== -1;
  }
  if (!isGzip(head) && !startsDamaged) {
    if (head.length > 0) yield head;
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
  const text = startsDamaged || isBgzfHeaderAt(head, 0) ? bgzfText(q, opts, torn, startsDamaged) : gzipText(q, opts, torn);
  try {
    yield* gzipLines(text, opts, () => cut, () => truncated);
  } finally {
    // The consumer left early (or decoding failed): the input is not read to its end, so it
    // is returned here (a file stream closes its descriptor), as `yield*` does for plain text.
    await it.return?.();
  }
}

/** The decoded text of gzip input, a cut-short last line dropped unless `keepTornLine` (see {@link decoded}). */
async function* gzipLines(text: AsyncGenerator<Buffer>, opts: DecodeOptions, cut: () => boolean, truncated: () => boolean): AsyncGenerator<Buffer> {
  if (opts.keepTornLine === true) {
    yield* text;
    if (cut()) opts.onCut?.();
    if (truncated()) opts.onTruncated?.();
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
  if (!cut()) yield* held;
  if (truncated()) opts.onTruncated?.();
}
