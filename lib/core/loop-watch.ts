/**
 * Whether the event loop is turning, asked cheaply from a hot path (issue 9 point 8, docs/DESIGN.md §5).
 *
 * A sink that waits on a timer (a file sink's flush interval, the console's print interval) is
 * never woken in a training loop that never yields: the timer cannot fire. Such a sink marks the
 * start of each wait; an immediate scheduled then runs at the loop's next turn. Until it has run,
 * every row should read the clock (the loop is not turning, and rows may be seconds apart);
 * after it, one row in {@link CHECK_EVERY} is enough (the timer will fire).
 */

/** Rows between clock reads while the event loop turns. */
export const CHECK_EVERY = 64;

export class LoopWatch {
  #turned = false;
  #sinceCheck = 0;
  #immediate: NodeJS.Immediate | undefined;

  /** A wait starts now: watch for the loop's next turn (one immediate at a time, so none pile up). */
  mark(): void {
    this.#turned = false;
    this.#sinceCheck = 0;
    this.#immediate ??= setImmediate(() => {
      this.#immediate = undefined;
      this.#turned = true;
    }).unref();
  }

  /** True when this row should read the clock: every row until the loop turned, then one in 64. */
  due(): boolean {
    if (this.#turned && ++this.#sinceCheck < CHECK_EVERY) return false;
    this.#sinceCheck = 0;
    return true;
  }
}
