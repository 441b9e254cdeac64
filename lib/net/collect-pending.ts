/**
 * The collector's bound on partial lines (issue 11, docs/DESIGN.md §6): every connection holds
 * the bytes of its unfinished line, and together they stay under `maxPendingBytes`. When a chunk
 * takes the sum past it, the connection holding the most is cut off (its partial line dropped,
 * the connection closed with one line saying why), then the next largest, until the sum is
 * under the bound again. A real source's lines are short and end quickly, so it is never the
 * largest: a flood of long partial lines costs the flooders their connections, not the
 * collector its memory nor a trainer its rows.
 */

/** A connection as the budget sees it: what its partial line holds, and how to drop it. */
export interface PendingHolder {
  /** Bytes of memory its partial line holds now. */
  readonly pendingBytes: number;
  /** Drops the partial line and closes the connection (the budget has already let go of its bytes). */
  cutForPending(): void;
}

/** The sum of every connection's partial-line bytes, kept under `max`. */
export class PendingBudget {
  /** Bytes held by all partial lines together. */
  total = 0;
  /** The most `total` has been. */
  peak = 0;
  readonly max: number;
  readonly #holders = new Set<PendingHolder>();

  constructor(max: number) {
    this.max = max;
  }

  add(h: PendingHolder): void {
    this.#holders.add(h);
  }

  /** `h` is gone (closed): what it held is free. */
  remove(h: PendingHolder): void {
    if (this.#holders.delete(h)) this.change(-h.pendingBytes);
  }

  /** One holder's partial line grew (or shrank) by `delta` bytes; cuts the largest while over the bound. */
  change(delta: number): void {
    this.total += delta;
    if (this.total > this.peak) this.peak = this.total;
    while (this.total > this.max) {
      let largest: PendingHolder | undefined;
      for (const h of this.#holders) if (h.pendingBytes > (largest?.pendingBytes ?? 0)) largest = h;
      if (largest === undefined) break; // cannot happen: the total is the holders' sum
      this.#holders.delete(largest);
      this.total -= largest.pendingBytes;
      largest.cutForPending();
    }
  }
}
