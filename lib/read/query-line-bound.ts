/**
 * The query stream's line bound (docs/DESIGN.md §6: every reader is linear and bounded): passes
 * on the whole lines of each chunk, holds the unfinished last one, and drops a line longer than
 * `maxLineBytes` as its bytes come, standing an empty line in for it so line numbers stay right.
 */

export class LineBound {
  /** Bytes of the line being received (since the last newline). */
  #carry: Buffer[] = [];
  #carryBytes = 0;
  /** Newlines passed on so far (a too-long line's number is this + 1). */
  #newlines = 0;
  #skipping = false;
  readonly #maxLineBytes: number;
  readonly #onTooLong: (lineNumber: number) => void;

  /** `onTooLong` gets the 1-based number of each line dropped (it may throw, under `strict`). */
  constructor(maxLineBytes: number, onTooLong: (lineNumber: number) => void) {
    this.#maxLineBytes = maxLineBytes;
    this.#onTooLong = onTooLong;
  }

  /** The whole lines of `chunk` (with those held from before); holds the last, unfinished one. */
  take(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let runStart = 0; // the run of whole lines not yet passed on
    let from = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      const first = from === 0;
      const len = (first ? this.#carryBytes : 0) + nl - from;
      if ((first && this.#skipping) || len > this.#maxLineBytes) {
        if (from > runStart) out.push(chunk.subarray(runStart, from));
        this.#carry = [];
        this.#carryBytes = 0;
        out.push(this.#tooLong());
        runStart = nl + 1;
      } else {
        if (first && this.#carry.length > 0) out.push(...this.#carry);
        if (first) {
          this.#carry = [];
          this.#carryBytes = 0;
        }
        this.#newlines++;
      }
      from = nl + 1;
    }
    if (from > runStart) out.push(chunk.subarray(runStart, from));
    if (from < chunk.length && !this.#skipping) {
      this.#carry.push(from === 0 ? chunk : chunk.subarray(from));
      this.#carryBytes += chunk.length - from;
      if (this.#carryBytes > this.#maxLineBytes) {
        this.#carry = [];
        this.#carryBytes = 0;
        this.#skipping = true;
      }
    }
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** At the end of input: the last line's bytes (no newline), or a newline for a too-long one. */
  end(): Buffer {
    const last = this.#skipping ? this.#tooLong() : Buffer.concat(this.#carry);
    this.#carry = [];
    this.#carryBytes = 0;
    return last;
  }

  /** A too-long line ended: tell it and stand an empty line in for it. */
  #tooLong(): Buffer {
    this.#skipping = false;
    this.#newlines++;
    this.#onTooLong(this.#newlines);
    return Buffer.from('\n');
  }
}
