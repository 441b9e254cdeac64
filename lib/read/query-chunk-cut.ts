/**
 * Where a streaming chunk ends (lib/read/query.ts): after whole lines, at `chunkLines` lines or
 * about `chunkChars` characters (bytes, for JSONL passed as bytes), whichever comes first. One
 * rule for text and bytes, so the two paths cut alike.
 */

/** What {@link chunkCut} found in one pass. */
export interface Cut {
  /** The index of the last newline taken (from - 1: none). */
  at: number;
  /** How many lines were taken. */
  lines: number;
  /** True when the chunk is full: send it (up to `at`) and go on from `at + 1`. */
  full: boolean;
}

/**
 * Takes whole lines (`nextNewline(i)`: the first newline at or after i, or -1) from `from` onto a chunk that already holds `partLines` lines and
 * `partChars` characters, until it is full or `s` has no more newlines.
 */
export function chunkCut(
  nextNewline: (from: number) => number,
  from: number,
  partLines: number,
  partChars: number,
  chunkLines: number,
  chunkChars: number,
): Cut {
  let at = from - 1;
  let n = 0;
  for (;;) {
    if (partLines + n >= chunkLines || partChars + (at + 1 - from) >= chunkChars) return { at, lines: n, full: partLines + n > 0 };
    const j = nextNewline(at + 1);
    if (j === -1) return { at, lines: n, full: false };
    at = j;
    n++;
  }
}
