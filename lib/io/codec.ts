/**
 * Codec: how bytes reach a table file, plain or blocked gzip (docs/DESIGN.md §4). The file sinks
 * (sinks/file-sink.ts) hold one per sink; lib/io/gzip-writer.ts makes the blocked-gzip one.
 * It lives here, below both, so the writer does not import the sink (issue 10 §2: that import
 * was a cycle and pointed up the layers).
 */
import type { FdPool } from './fd-pool.js';
import { FileWriter } from './file-writer.js';

/** How bytes reach a file: plain here; blocked gzip plugs in the same way ({@link gzipCodec}). */
export interface Codec {
  /**
   * A writer appending to `path`. It opens nothing yet: the fd is leased from the sink's pool
   * when there is something to write, and a new file appears with its first whole chunk.
   * `onError` hears each failed attempt of this file (it is retried); replacing a writer
   * (flushSync, closeSync, open again on the same path) releases its pool slot cleanly.
   */
  open(path: string, onError: (err: Error) => void): FileWriter;
  /** The bytes of a whole file's text. */
  encode(text: string): Buffer;
}

/** The plain-text Codec: UTF-8 bytes as they are, `fsync` after each chunk when asked. */
export function plainCodec(fsync: boolean, pool: FdPool): Codec {
  return {
    open: (p, onError) => new FileWriter(p, onError, { fsync, pool }),
    encode: (text) => Buffer.from(text),
  };
}
