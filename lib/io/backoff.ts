/**
 * Backoff: one retry timer whose delay doubles up to a ceiling, for I/O that failed for now
 * (issue 9, point 2). A FileWriter retries a failing file with it (0.5 s doubling to 30 s), a
 * CSV rewrite a job postponed for lack of fds (0.1 s doubling to 2 s), a push-mode socket sink
 * and connect() a lost connection (0.1 s doubling to 2 s). The timer is unref'd
 * unless asked: a retry must not keep a process alive that is otherwise done.
 *
 * `due` reads the clock, not the timer: a training loop that never yields keeps the timer from
 * firing, and the caller may then try by itself (FileWriter.retryDue).
 */
export class Backoff {
  readonly #firstMs: number;
  readonly #maxMs: number;
  #ms: number;
  /** When the last scheduled retry is due (performance.now()). */
  #at = 0;
  #timer: NodeJS.Timeout | undefined;
  #run: (() => void) | undefined;

  constructor(firstMs: number, maxMs: number) {
    this.#firstMs = firstMs;
    this.#maxMs = maxMs;
    this.#ms = firstMs;
  }

  /**
   * Runs `fn` after the current delay (or `opts.ms`), replacing a retry still pending; the delay
   * then doubles, up to the ceiling. `ref` keeps the process alive for it.
   */
  schedule(fn: () => void, opts: { ms?: number; ref?: boolean } = {}): void {
    this.cancel();
    const ms = opts.ms ?? this.#ms;
    this.#ms = Math.min(this.#ms * 2, this.#maxMs);
    this.#at = performance.now() + ms;
    this.#run = fn;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run = undefined;
      fn();
    }, ms);
    if (opts.ref !== true) this.#timer.unref();
  }

  /** A retry is scheduled and has not run. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /** The last scheduled retry's time has come (whether or not its timer could fire). */
  get due(): boolean {
    return performance.now() >= this.#at;
  }

  /** Runs the pending retry now (nothing when none is pending). */
  runNow(): void {
    const fn = this.#run;
    this.cancel();
    fn?.();
  }

  /** Drops the pending retry. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#run = undefined;
  }

  /** It worked: no retry pending, and the next failure waits the first delay again. */
  reset(): void {
    this.cancel();
    this.#ms = this.#firstMs;
  }
}
