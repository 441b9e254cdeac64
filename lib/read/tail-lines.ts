/**
 * What one `tail` keeps between reads (lib/read/tail.ts, docs/DESIGN.md §6): its notices, its
 * checked options, the partial line (bounded by `maxLookbackBytes`, over the LineSplitter) and
 * the last N lines of a first read (bounded the same way).
 */
import { LineSplitter } from '../format/line-split.js';

/** What tail tells its caller besides lines (the CLI prints each as one line on stderr). */
export type TailNotice =
  /** A damaged stretch of blocked gzip at byte `offset` (compressed) was skipped. */
  | { type: 'damaged'; offset: number; length: number }
  /** The first read found only `shown` of the lines asked for within `limit` bytes from the end. */
  | { type: 'lookback'; limit: number; shown: number }
  /** Following: a line longer than `limit` bytes was skipped. */
  | { type: 'long-line'; limit: number }
  /** `waitForFile`: the file does not exist yet; tail waits for it. */
  | { type: 'waiting' };

/** The checked options of one tail, shared by its readers. */
export interface Ctx {
  n: number;
  limit: number;
  notify: (notice: TailNotice) => void;
  /** Damage offsets already reported (a follower rescans and a gzip is decoded again). */
  reported: Set<number>;
  signal: AbortSignal | undefined;
}

/**
 * The partial line between reads, over a LineSplitter bounded by `maxLookbackBytes`. `fragment`:
 * what it holds is the end of a line that began before the look-back, so that line, when it
 * ends, is reported as too long rather than shown cut.
 */
export class Lines {
  fragment = false;
  /** While set (a first read keeping the last lines), a line too long is this call instead of a notice. */
  onLong: (() => void) | undefined;
  #out: string[] = [];
  readonly #split: LineSplitter<string>;

  constructor(ctx: Ctx) {
    const long = () => (this.onLong ? this.onLong() : ctx.notify({ type: 'long-line', limit: ctx.limit }));
    this.#split = new LineSplitter<string>(
      {
        onLine: (line) => {
          if (!this.fragment) this.#out.push(line);
          else {
            this.fragment = false;
            long();
          }
        },
        onLongLine: () => {
          this.fragment = false;
          long();
        },
      },
      { maxLineBytes: ctx.limit, text: true },
    );
  }

  write(buf: Buffer): void {
    if (buf.length > 0) this.#split.write(buf);
  }

  /** The input ended (a stream closed): its last line without `\n` is a line too. */
  end(): void {
    this.#split.end();
  }

  /**
   * Damage comes next: the partial line is dropped, so it is never joined to the text after
   * the damage (a foreign writer's members may cut lines: two pieces would read as one row).
   */
  breakLine(): void {
    this.#split.discard();
    this.fragment = false;
  }

  /** The whole lines split since the last take. */
  take(): string[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }
}

/** The last `n` lines pushed whose text fits in `limit` bytes; `cut` once one was dropped for the bound. */
export class LastLines {
  cut = false;
  #lines: string[] = [];
  #head = 0;
  #bytes = 0;

  constructor(
    readonly n: number,
    readonly limit: number,
  ) {}

  push(lines: string[]): void {
    for (const line of lines) {
      this.#lines.push(line);
      this.#bytes += line.length;
      while (this.#lines.length - this.#head > this.n || this.#bytes > this.limit) {
        if (this.#bytes > this.limit) this.cut = true;
        this.#bytes -= (this.#lines[this.#head++] as string).length;
      }
      if (this.#head > 4096 && this.#head * 2 > this.#lines.length) {
        this.#lines = this.#lines.slice(this.#head);
        this.#head = 0;
      }
    }
  }

  /** A line longer than the bound went by: nothing before it is within the look-back. */
  clear(): void {
    this.#lines = [];
    this.#head = 0;
    this.#bytes = 0;
    this.cut = true;
  }

  get lines(): string[] {
    return this.#lines.slice(this.#head);
  }
}

/** Notices damage once per offset (a follower rescans, and a gzip is decoded again). */
export function damaged(ctx: Ctx, offset: number, length: number): void {
  if (ctx.reported.has(offset)) return;
  ctx.reported.add(offset);
  ctx.notify({ type: 'damaged', offset, length });
}
