/**
 * Rewrites running at once per sink. Each holds two fds outside the pool for its duration, and a
 * new key on many tables at once (a run of many small tables) started one per table: under a low
 * fd limit they took the fds the pool's files needed. More at once would not finish sooner either
 * (they share the disk and the event loop); the others wait for a turn, their rows keep extras.
 * That is this queue: at most {@link MAX_REWRITES} jobs run, the others start, oldest first, as
 * running ones settle.
 */
import type { CsvRewrite } from './csv-rewrite.js';

const MAX_REWRITES = 2;

export class RewriteTurns {
  #running = 0;
  readonly #waiting: CsvRewrite[] = [];

  /** Starts `job` when a turn is free, or at once when `now` (a small file: it holds no fds past its start). */
  run(job: CsvRewrite, now: boolean): void {
    if (this.#running < MAX_REWRITES || now) this.#begin(job);
    else this.#waiting.push(job); // its turn comes when a running one settles
  }

  #begin(job: CsvRewrite): void {
    this.#running++;
    void job.settled.then(() => {
      this.#running--;
      const next = this.#waiting.shift();
      if (next !== undefined) this.#begin(next);
    });
    job.start();
  }
}
