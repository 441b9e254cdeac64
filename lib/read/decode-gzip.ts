/**
 * Any gzip that is not blocked (one stream, `gzip`'s members), streamed through zlib: where it
 * stops early, at bad data or at bytes after a member that are not gzip, `onDamaged` hears where
 * (lib/read/decode.ts, docs/DESIGN.md §6).
 */
import zlib from 'node:zlib';
import type { ByteQueue } from './byte-queue.js';
import type { DecodeOptions } from './decode-options.js';

/** zlib's error for an input that ends inside a member. */
function isTruncation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'Z_BUF_ERROR';
}

/** Any other gzip, streamed through zlib . */
export async function* gzipText(q: ByteQueue, opts: DecodeOptions, torn: (tornEnd?: boolean) => void): AsyncGenerator<Buffer> {
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
    // A consumer that left early never awaits the feeding: a read error there must not be an unhandled rejection.
    feeding.catch(() => undefined);
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
