/**
 * The one rule every reader uses to decode its input (docs/DESIGN.md §6): gzip is recognised by
 * its magic bytes, never by the file's name, so a `.jsonl` that is gzip, a `.gz` that is plain
 * text and stdin all read right. Gzip input may be any gzip (one stream, many members, BGZF);
 * one that ends inside a member (torn by a crash, or still being written) ends at its last whole
 * line, and the caller is told.
 */
import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { isGzip } from '../format/bgzf.js';

/** zlib's error for an input that ends inside a member. */
function isTruncation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'Z_BUF_ERROR';
}

/** The first bytes of `it` (at least 3 unless it ends sooner), and the iterator to read the rest from. */
async function peek(it: AsyncIterator<Buffer | string>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  while (size < 3) {
    const r = await it.next();
    if (r.done === true) break;
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    parts.push(b);
    size += b.length;
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/**
 * The decoded bytes of `input`: inflated when it is gzip, else as they come. `onTruncated` is
 * called when gzip input ends inside a member; then the bytes after the last line end are
 * dropped (a line cut short), and the text ends there.
 */
export async function* decoded(input: AsyncIterable<Buffer | string>, onTruncated: () => void, chunkSize = 16 * 1024): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const head = await peek(it);
  const rest: AsyncIterable<Buffer | string> = { [Symbol.asyncIterator]: () => it };
  if (!isGzip(head)) {
    if (head.length > 0) yield head;
    yield* rest as AsyncIterable<Buffer>;
    return;
  }
  const gunzip = zlib.createGunzip({ chunkSize });
  pipeline(
    Readable.from((async function* () {
      yield head;
      yield* rest;
    })(), { objectMode: false }),
    gunzip,
    () => {}, // errors reach the loop below through gunzip
  );
  let carry: Buffer | undefined; // text after the last line end so far
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      const nl = chunk.lastIndexOf(10);
      if (nl < 0) {
        carry = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
        continue;
      }
      if (carry !== undefined) yield carry;
      yield chunk.subarray(0, nl + 1);
      carry = nl + 1 < chunk.length ? chunk.subarray(nl + 1) : undefined;
    }
  } catch (err) {
    if (!isTruncation(err)) throw err;
    onTruncated();
    return;
  }
  if (carry !== undefined) yield carry;
}

