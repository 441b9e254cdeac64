/**
 * Warnings are reported once per distinct problem per table (docs/DESIGN.md §3), never once per row:
 * a training loop that logs the same cyclic object a million times gets one line.
 */
import type { EventEmitter } from 'node:events';

/** A non-fatal problem, reported once per distinct cause as a `'warning'` event. */
export interface RowlogWarning {
  /** Stable identifier, e.g. `W_CYCLE`, `W_LOW_LEVEL`, `W_SINK_ERROR`. */
  code: string;
  /** One human-readable line. */
  message: string;
  /** The table the problem was seen in, when there is one. */
  table?: string;
}

/** Emits `'warning'` on `emitter`, or prints one line to stderr when nobody listens. */
export function emitWarning(emitter: EventEmitter, w: RowlogWarning): void {
  if (emitter.listenerCount('warning') > 0) emitter.emit('warning', w);
  else printWarning(w);
}

/** The one line a warning nobody listens for is on stderr: `rowlog warning CODE: message`. */
export function printWarning(w: RowlogWarning): void {
  process.stderr.write(`rowlog warning ${w.code}: ${w.message}\n`);
}

/** Bound on remembered problems, so a row with ever-new bad keys cannot grow memory. */
const MAX_REMEMBERED = 10_000;

/** Lets each distinct (table, code, detail) through once. */
export class WarningGate {
  readonly #seen = new Set<string>();
  readonly #emitter: EventEmitter;

  constructor(emitter: EventEmitter) {
    this.#emitter = emitter;
  }

  /** Reports `w` unless the same table, code and `detail` were reported before. */
  warn(w: RowlogWarning, detail = ''): void {
    const id = `${w.table ?? ''}\0${w.code}\0${detail}`;
    if (this.#seen.has(id)) return;
    if (this.#seen.size < MAX_REMEMBERED) this.#seen.add(id);
    emitWarning(this.#emitter, w);
  }
}
