/**
 * FdPool: at most `max` file descriptors open per file sink (issue 9, point 2).
 *
 * A sink with `dir` writes one file per table, and a run may have thousands of tables: one fd
 * each ran a process out of descriptors (EMFILE at table ~118 under `ulimit -n 256`), which
 * killed both file sinks and lost rows already queued. So the per-file state (queue, offset)
 * lives in a FileWriter that persists, while its fd is only a lease from this pool:
 *
 * - a writer asks for a slot before it opens its fd (`acquire`). With a slot free it gets one;
 *   else the least recently used writer that is idle (nothing in flight) is parked (its fd
 *   closed) and the slot handed over; else the writer waits in FIFO order, its bytes queued
 *   (they count in the sink's `queuedBytes`, so the memory bound still holds) and gets
 *   `grant()` when a slot frees. Nobody waits synchronously: `log.row()` never waits on an fd.
 * - a writer that finishes a chunk while others wait gives its slot up (`yieldSlot`), so a busy
 *   table cannot starve the rest.
 * - EMFILE (the process limit is lower than the pools of all sinks, or the user holds many
 *   fds) parks an idle writer and tries again; failing that, the pool shrinks to the slots it
 *   holds and the writer waits for one (no warning: nothing is wrong with the file). Only EMFILE
 *   while the pool holds no fd at all counts as a failure of that file. The limit creeps back
 *   by one per slot released while nobody waits.
 *
 * The pool only counts; writers open and close their own fds. `flushSync()` (exit hook, memory
 * bound) may open one file at a time beyond the pool and closes it right after.
 */

/** What the pool needs of a writer. */
export interface PoolMember {
  /** Closes the fd if nothing is in flight (then the writer calls `release`); true if it did. */
  park(): boolean;
  /** A slot was given to this waiting writer: it may open its fd now. */
  grant(): void;
}

export class FdPool {
  readonly max: number;
  /** The slots usable now: `max`, or fewer after the process ran out of fds (EMFILE). */
  #limit: number;
  /** Writers holding a slot, least recently used first (Map keeps insertion order). */
  readonly #holders = new Map<PoolMember, true>();
  readonly #waiting = new Set<PoolMember>();
  /** parkIdle() frees a slot for its caller: no hand-over to a waiter meanwhile. */
  #parking = false;

  constructor(max: number) {
    this.max = max;
    this.#limit = max;
  }

  /** Slots in use. */
  get open(): number {
    return this.#holders.size;
  }

  /** True when a writer waits for a slot. */
  get contended(): boolean {
    return this.#waiting.size > 0;
  }

  /** Takes a slot for `m` (true) or queues it for one (false; `grant()` follows). */
  acquire(m: PoolMember): boolean {
    if (this.#holders.has(m)) {
      this.touch(m);
      return true;
    }
    if (this.#holders.size >= this.#limit && !this.parkIdle()) {
      this.#waiting.add(m);
      return false;
    }
    this.#waiting.delete(m);
    this.#holders.set(m, true);
    return true;
  }

  /** Marks `m` as just used (moves it to the back of the LRU order). */
  touch(m: PoolMember): void {
    if (this.#holders.delete(m)) this.#holders.set(m, true);
  }

  /** Parks the least recently used idle holder; true when a slot was freed. */
  parkIdle(): boolean {
    this.#parking = true;
    try {
      for (const h of this.#holders.keys()) {
        if (h.park()) return true;
      }
      return false;
    } finally {
      this.#parking = false;
    }
  }

  /** `m` closed its fd (or gave up waiting): its slot goes to the oldest waiter. */
  release(m: PoolMember): void {
    this.#waiting.delete(m);
    if (!this.#holders.delete(m) || this.#parking) return;
    if (this.#waiting.size === 0 && this.#limit < this.max) this.#limit++; // creep back after EMFILE
    this.#handOver();
  }

  /**
   * The process is out of fds (EMFILE) while this pool holds some: use no more slots than are
   * held now and let `m` wait for one of them (true). False when the pool holds none, so
   * waiting would not help: then the open is a failure of that file.
   */
  waitAfterEmfile(m: PoolMember): boolean {
    this.release(m);
    if (this.#holders.size === 0) return false;
    this.#limit = Math.max(1, this.#holders.size);
    this.#waiting.add(m);
    return true;
  }

  /** Called by a holder between chunks: parks it when others wait, so slots rotate. */
  yieldSlot(m: PoolMember): void {
    if (this.#waiting.size > 0 && this.#holders.has(m)) m.park();
  }

  #handOver(): void {
    while (this.#holders.size < this.#limit) {
      const next = this.#waiting.values().next();
      if (next.done === true) return;
      this.#waiting.delete(next.value);
      this.#holders.set(next.value, true);
      next.value.grant();
    }
  }
}
