/**
 * What a collector reports (issue 5, 9): rows written, lines skipped by reason, connections
 * accepted and refused, in `counts`; and `'warning'` events once per (code, source), or once per
 * connection before a connection named a valid source, never once per line: a pusher sending
 * garbage a million times gets one line.
 */
import type { EventEmitter } from 'node:events';
import type { RowlogWarning } from '../core/warnings.js';
import { emitWarning, WarningGate } from '../core/warnings.js';

/** A warning of the collector: the source it concerns, when known. */
export interface CollectWarning extends RowlogWarning {
  /** The `$source` of the connection the problem was seen on. */
  source?: string;
}

/**
 * Why lines were not written: `badLine` not a JSON object; `badSource` no valid `$source`;
 * `badMeta` an invalid `$table`, `$level`, `$step` or `$time`; `duplicate` a `$seq` its
 * connection had sent already; `truncated` the partial last line of a connection that ended mid-line; `tooLong`
 * longer than `maxLineLength`; `unwritable` its run folder could not be opened (or `maxSources`);
 * `pendingFull` the partial line of a connection cut off because all partial lines together
 * passed `maxPendingBytes`; `idle` the partial line of a connection closed after `idleTimeoutMs`.
 */
export type SkipReason = 'badLine' | 'badSource' | 'badMeta' | 'duplicate' | 'truncated' | 'tooLong' | 'unwritable' | 'pendingFull' | 'idle';

/**
 * What the collector has seen so far: `connections` accepted, `refused` (bad token, HTTP, or
 * too many connections; `busy` counts the last alone).
 */
export type CollectCounts = Record<SkipReason | 'rows' | 'connections' | 'refused' | 'busy', number>;

/** Who a problem was seen on: a connection, and the last valid source it named. */
export interface Reporter {
  /** `address:port` of the peer. */
  readonly peer: string;
  readonly source: string | undefined;
  /** Codes already reported for this connection before it named a source. */
  readonly warned: Set<string>;
}

/** The counts and the de-duplicated warnings of one collector. */
export class CollectReport {
  readonly counts: CollectCounts = {
    rows: 0,
    connections: 0,
    refused: 0,
    busy: 0,
    badLine: 0,
    badSource: 0,
    badMeta: 0,
    duplicate: 0,
    truncated: 0,
    tooLong: 0,
    unwritable: 0,
    pendingFull: 0,
    idle: 0,
  };

  readonly #emitter: EventEmitter;
  readonly #gate: WarningGate;

  /** Warnings are emitted on `emitter` (the Collector), or printed to stderr when nobody listens. */
  constructor(emitter: EventEmitter) {
    this.#emitter = emitter;
    this.#gate = new WarningGate(emitter);
  }

  /** Counts a skipped line of `by` and warns (see {@link warn}). */
  skip(by: Reporter, reason: SkipReason, code: string, message: string, detail = ''): void {
    this.counts[reason]++;
    const source = by.source;
    this.warn(source === undefined ? { code, message: `${by.peer}: ${message}` } : { code, message: `${source}: ${message}`, source }, by, detail);
  }

  /** Once per (code, source, detail); before a connection named a source, once per (code, connection). */
  warn(w: CollectWarning, by: Reporter, detail = ''): void {
    if (w.source !== undefined) this.#gate.warn(w, `${w.source}\0${detail}`);
    else if (!by.warned.has(w.code)) {
      by.warned.add(w.code);
      emitWarning(this.#emitter, w);
    }
  }

  /** A problem of the collector itself (not of one connection): once per (code, detail). */
  warnOnce(w: CollectWarning, detail = ''): void {
    this.#gate.warn(w, detail);
  }

  /** Passes a warning on as it is (a source's logger already de-duplicates its own). */
  emit(w: CollectWarning): void {
    emitWarning(this.#emitter, w);
  }
}
