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

/**
 * A sink that keeps the run's records beside its rows (SQLite's tables, Redis's meta hash): the
 * logger hands it run.json's content, the params and the status as it saves them
 * (docs/DESIGN.md §5), knowing it by these methods, not by its class.
 */
export interface RunRecorder {
  /** run.json's content (and `dir`), at the start and when `updateRun` changes it. */
  setRun(run: Readonly<Record<string, unknown>>): void;
  /** Params to merge (the earlier ones first, then each `log.params()`). */
  setParams(params: Readonly<Record<string, unknown>>): void;
  /** What status.json holds, as it is saved. */
  setStatus(status: Readonly<Record<string, unknown>>): void;
}

/** True when `w` records the run ({@link RunRecorder}). */
export function isRunRecorder(w: Writable): w is Writable & RunRecorder {
  const r = w as Partial<RunRecorder>;
  return typeof r.setRun === 'function' && typeof r.setParams === 'function' && typeof r.setStatus === 'function';
}
