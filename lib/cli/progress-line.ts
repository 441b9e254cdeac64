/**
 * A command's progress line on stderr (`query: 2% of 177 MB`, redrawn in place on a terminal)
 * and the rule that keeps it off the results (rowlog issue 11): when stdout and stderr are the
 * same terminal, the line is cleared before any result reaches it, and before any message.
 */
import fs from 'node:fs';

/** True when stdout and stderr are the same terminal (then the progress line shares it with results). */
function sameTerminal(): boolean {
  if (!process.stdout.isTTY || !process.stderr.isTTY) return false;
  try {
    const a = fs.fstatSync(1);
    const b = fs.fstatSync(2);
    return a.dev === b.dev && a.ino === b.ino && a.rdev === b.rdev;
  } catch {
    return false;
  }
}

/**
 * stderr's progress line (`query: 2% of 177 MB`, on a terminal, for big inputs) and everything
 * else written to the terminal: the line is cleared before any result or message reaches it.
 */
export class Terminal {
  #shown = false;
  readonly #shared = sameTerminal();
  timer: NodeJS.Timeout | undefined;

  /** Shows `<label>: N% of M MB` every 250 ms on a terminal, for inputs over 50 MB. */
  startProgress(total: number, progress: { bytes: number }, label = 'query'): void {
    if (!process.stderr.isTTY || total <= 50 * 1024 * 1024) return;
    this.timer = setInterval(() => {
      process.stderr.write(`\r\x1b[K${label}: ${Math.floor((100 * progress.bytes) / total)}% of ${Math.round(total / 1048576)} MB`);
      this.#shown = true;
    }, 250);
    this.timer.unref();
  }

  #clear(): void {
    if (!this.#shown) return;
    process.stderr.write('\r\x1b[K');
    this.#shown = false;
  }

  /** Before a result goes to stdout. */
  beforeOut(): void {
    if (this.#shared) this.#clear();
  }

  /** A message on stderr, on a line of its own. */
  say(text: string): void {
    this.#clear();
    process.stderr.write(text);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.#clear();
  }
}
