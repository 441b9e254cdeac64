/**
 * A fixed-capacity ring of the most recent items: it grows by push until full, then overwrites
 * the oldest slot, so keeping the last N of an endless stream costs O(1) per item and never
 * shifts an array. Used by the memory sink (the last `maxlen` Entries per table) and the socket
 * sink's backlog (the last `backlog` lines, sent to each new subscriber).
 */
export class Ring<T> {
  /** Most items kept: an integer ≥ 0 (0 keeps none) or Infinity (keeps all). */
  readonly cap: number;
  readonly #buf: T[] = [];
  #head = 0; // index of the oldest item once full

  constructor(cap: number) {
    this.cap = cap;
  }

  /** How many items are kept. */
  get length(): number {
    return this.#buf.length;
  }

  /** Keeps `item`, dropping the oldest one when full. */
  push(item: T): void {
    if (this.#buf.length < this.cap) this.#buf.push(item);
    else if (this.cap > 0) {
      this.#buf[this.#head] = item;
      this.#head = (this.#head + 1) % this.cap;
    }
  }

  /** The i-th kept item, 0 = oldest (`0 ≤ i < length`). */
  at(i: number): T {
    return this.#buf[(this.#head + i) % this.#buf.length] as T;
  }
}
