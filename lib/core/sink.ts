/**
 * The sink contract (docs/DESIGN.md §5): a sink is an object-mode Writable of Entries whose `data` is
 * flat. rowlog's own sinks also implement `flush()` and `flushSync()`; the logger uses them
 * when present and treats any other Writable as a plain one.
 */
import type { Writable } from 'node:stream';

/** A Writable of Entries that can be flushed. */
export interface Sink extends Writable {
  /** Resolves when every Entry written so far has reached the operating system. */
  flush(): Promise<void>;
  /** Writes everything buffered, synchronously (used on process `exit`). */
  flushSync(): void;
}

/** True when `w` has rowlog's `flush()`/`flushSync()`. */
export function isFlushable(w: Writable): w is Sink {
  const s = w as Partial<Sink>;
  return typeof s.flush === 'function' && typeof s.flushSync === 'function';
}
