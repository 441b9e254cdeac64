/** The bytes of a reader's input as one sequence with offsets, joined only as far as asked (lib/read/decode.ts). */
/**
 * Reads an async iterator of chunks as one byte sequence, with the absolute offset of what is
 * held: `fill(n)` makes at least `n` bytes available (fewer only at the end), `take(n)` hands
 * them on. Chunks are joined only as far as a caller asks.
 */
export class ByteQueue {
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
