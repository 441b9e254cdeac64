/**
 * The chunks of one FileWriter (lib/io/file-writer.ts) not yet confirmed on disk, oldest first,
 * with barriers (`before()`) between them. A chunk gets its file offset when its first write
 * starts, not when it is queued, so a chunk dropped or retried never leaves a hole; a chunk
 * partly written, the one in flight and barriers are never dropped.
 */

/** One batch of bytes on its way to the file, or a barrier. */
export interface Chunk {
  buf: Buffer;
  /** Rows (lines) in `buf`, reported when the chunk has to be dropped. */
  rows: number;
  /** Offset of `buf[0]` in the file, fixed when its first write starts; -1 before. */
  pos: number;
  /** Bytes of `buf` confirmed on disk (a partial write); such a chunk is never dropped. */
  written: number;
  /** A barrier (`before()`, `buf` empty): runs before the chunks after it; never dropped. */
  run?: () => void;
}

export class ChunkQueue {
  readonly #chunks: Chunk[] = [];

  get length(): number {
    return this.#chunks.length;
  }

  /** The oldest chunk: the next to write (or the one being written). */
  get head(): Chunk | undefined {
    return this.#chunks[0];
  }

  /** Queues `buf` (`rows` lines), its offset not fixed yet. */
  push(buf: Buffer, rows: number): void {
    this.#chunks.push({ buf, rows, pos: -1, written: 0 });
  }

  /** Queues a barrier: `run` runs once every chunk before it is on disk. */
  pushBarrier(run: () => void): void {
    this.#chunks.push({ buf: Buffer.alloc(0), rows: 0, pos: -1, written: 0, run });
  }

  /** The head is done (written whole, or a barrier that ran). */
  shift(): void {
    this.#chunks.shift();
  }

  clear(): void {
    this.#chunks.length = 0;
  }

  /** Bytes not yet confirmed on disk. */
  get bytes(): number {
    let n = 0;
    for (const c of this.#chunks) n += c.buf.length - c.written;
    return n;
  }

  /** Rows in the chunks. */
  get rows(): number {
    let n = 0;
    for (const c of this.#chunks) n += c.rows;
    return n;
  }

  /**
   * Drops whole chunks, oldest first, until `bytes` are freed or none is left that can go (the
   * head while `headInFlight`, a chunk partly written and barriers stay). Returns the rows and
   * bytes dropped.
   */
  dropOldest(bytes: number, headInFlight: boolean): { rows: number; bytes: number } {
    let rows = 0;
    let freed = 0;
    let i = 0;
    while (freed < bytes && i < this.#chunks.length) {
      const c = this.#chunks[i] as Chunk;
      if (c.written > 0 || c.run !== undefined || (i === 0 && headInFlight)) {
        i++;
        continue;
      }
      this.#chunks.splice(i, 1);
      rows += c.rows;
      freed += c.buf.length;
    }
    return { rows, bytes: freed };
  }
}
