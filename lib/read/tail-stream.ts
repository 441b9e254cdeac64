/**
 * `tail` on what is not a regular file (a FIFO, a character device): read once as a stream
 * (lib/read/tail.ts, docs/DESIGN.md §6).
 */
import fs from 'node:fs';
import { decoded } from './decode.js';
import { damaged, LastLines, Lines } from './tail-lines.js';
import type { Ctx } from './tail-lines.js';

/**
 * A FIFO or device, read once as a stream: the last `n` lines when it ends, or (follow) a first
 * empty batch and then every line as it comes. Gzip is decoded (lib/read/decode.ts) when the
 * first byte says so; plain bytes pass on as they arrive.
 */
export async function* streamBatches(path: string, follow: boolean, ctx: Ctx): AsyncGenerator<string[]> {
  if (follow) yield [];
  const stream = fs.createReadStream(path, { highWaterMark: 1 << 20 });
  const stop = () => {
    if (stream.pending) {
      // Still in open(), which waits for a writer on a thread of libuv's pool and would keep the
      // process alive: open the FIFO for writing ourselves (non-blocking: a reader is waiting), so
      // that open returns, then let the stream close.
      try {
        fs.closeSync(fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
      } catch {
        // not a FIFO, or the open just finished
      }
    }
    stream.destroy();
  };
  ctx.signal?.addEventListener('abort', stop);
  const lines = new Lines(ctx);
  const last = new LastLines(ctx.n, ctx.limit);
  if (!follow) lines.onLong = () => last.clear();
  const chunks = async function* (): AsyncGenerator<Buffer> {
    const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await it.next();
    if (first.done === true) return;
    const rest = { [Symbol.asyncIterator]: () => it };
    if (first.value[0] !== 0x1f) {
      yield first.value;
      yield* rest;
      return;
    }
    yield* decoded(
      (async function* () {
        yield first.value;
        yield* rest;
      })(),
      { maxLineBytes: ctx.limit, onDamaged: (d) => damaged(ctx, d.offset, d.length) },
    );
  };
  try {
    for await (const chunk of chunks()) {
      lines.write(chunk);
      const got = lines.take();
      if (follow) {
        if (got.length > 0) yield got;
      } else last.push(got);
    }
    lines.end();
  } catch (err) {
    if (ctx.signal?.aborted !== true) throw err;
    return;
  } finally {
    ctx.signal?.removeEventListener('abort', stop);
    stream.destroy();
  }
  if (follow) {
    const got = lines.take();
    if (got.length > 0) yield got;
    return;
  }
  last.push(lines.take());
  const shown = last.lines;
  if (ctx.n > 0 && shown.length < ctx.n && last.cut) ctx.notify({ type: 'lookback', limit: ctx.limit, shown: shown.length });
  yield shown;
}
