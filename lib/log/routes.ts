/**
 * The Logger's routes (docs/DESIGN.md §5): one per sink, holding its minimum level, its sampler and
 * whether it broke. The fan-out loop itself stays in ./logger.ts, on `log.row()`'s hot path;
 * this file builds routes and flushes and ends their sinks.
 */
import type { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { RowlogWarning } from '../core/warnings.js';
import { Level, toLevel } from '../core/levels.js';
import type { LevelLike } from '../core/levels.js';
import type { Entry, FlatRow } from '../core/entry.js';
import { functionOption, optionError } from '../core/options.js';
import type { Sink } from '../core/sink.js';
import { isFlushable } from '../core/sink.js';
import { emitWarning } from '../core/warnings.js';
import type { WarningGate } from '../core/warnings.js';
import { createSampler } from '../../transforms/subsample.js';
import type { SubsampleOptions } from '../../transforms/subsample.js';

/** A sink with its own routing. */
export interface SinkSpec {
  /** An object-mode Writable of Entries (e.g. `jsonlSink(...)`). */
  sink: Writable;
  /** Lowest level this sink writes. @default 'TRACE' */
  level?: LevelLike;
  /** Keep only some rows of each table for this sink. @default every row */
  subsample?: SubsampleOptions;
  /**
   * Called with each Entry this sink would write (level reached), before `subsample`: `false`
   * leaves the row out of this sink only. Synchronous, on `log.row()`'s path: keep it cheap.
   * (The Redis collector skips, file by file, rows a killed collector had written already:
   * docs/DESIGN.md §4, "The ack rule".) @default every row
   */
  filter?: (entry: Entry<FlatRow>) => boolean;
}

/** One sink of the fan-out: where rows go, from which level, which of them, and whether it still works. */
export interface Route {
  sink: Writable;
  name: string;
  min: number;
  /** Its `filter` and sampler together: false leaves the row out of this sink. */
  keep: ((entry: Entry<FlatRow>) => boolean) | undefined;
  broken: boolean;
}

function sinkName(sink: Writable, i: number): string {
  const p = (sink as { pathOf?: (t: string) => string }).pathOf;
  if (typeof p === 'function') {
    try {
      return p.call(sink, '<table>');
    } catch {
      // fall through to the class name
    }
  }
  return `${sink.constructor.name} #${i}`;
}

/** The route's row predicate: its `filter`, then its sampler (either may be absent). */
function keeper(s: SinkSpec, i: number): Route['keep'] {
  const filter = functionOption<(e: Entry<FlatRow>) => boolean>(s.filter, `sinks[${i}].filter`);
  const sample = s.subsample === undefined ? undefined : createSampler(s.subsample);
  if (filter === undefined || sample === undefined) return filter ?? sample;
  return (e) => filter(e) && sample(e);
}

/**
 * The route of `spec`, the `i`-th sink: its level and sampler checked (`ERR_INVALID_OPTION`),
 * its errors turned into one `W_SINK_ERROR` through `gate` (the route is then broken and left
 * out of the fan-out), its warnings passed on to `logger`.
 */
export function createRoute(spec: Writable | SinkSpec, i: number, gate: WarningGate, logger: EventEmitter): Route {
  const s: SinkSpec = spec instanceof Writable ? { sink: spec } : spec;
  if (!(s?.sink instanceof Writable)) throw optionError('type', `sinks[${i}]`, 'must be a Writable or {sink, level, subsample}');
  const route: Route = {
    sink: s.sink,
    name: sinkName(s.sink, i),
    min: toLevel(s.level ?? Level.TRACE, `sinks[${i}].level`),
    keep: keeper(s, i),
    broken: false,
  };
  const onError = (err: NodeJS.ErrnoException) => {
    route.broken = true;
    gate.warn(
      {
        code: 'W_SINK_ERROR',
        message: `sink ${route.name} failed${err.code ? ` (${err.code})` : ''}: ${err.message}; the other sinks keep writing`,
      },
      route.name,
    );
  };
  s.sink.on('error', onError);
  s.sink.on('warning', (w: RowlogWarning) => emitWarning(logger, w)); // e.g. a CSV header grew
  s.sink.once('close', () => (route.broken = true));
  return route;
}

/** Resolves when every working route's sink has flushed (a failing one is reported by its route). */
export async function flushRoutes(routes: readonly Route[]): Promise<void> {
  await Promise.all(routes.filter((r) => !r.broken && isFlushable(r.sink)).map((r) => (r.sink as Sink).flush().catch(() => undefined)));
}

/** Every working route's sink flushed synchronously (on process exit). */
export function flushRoutesSync(routes: readonly Route[], gate: WarningGate): void {
  for (const r of routes) {
    if (r.broken || !isFlushable(r.sink)) continue;
    try {
      r.sink.flushSync();
    } catch (err) {
      // Failures are per file (a file sink warned W_FILE_ERROR and keeps that file's rows for a
      // retry; its other files were written): the sink stays in the fan-out.
      const code = (err as NodeJS.ErrnoException).code;
      gate.warn(
        { code: 'W_SINK_ERROR', message: `sink ${r.name}: a synchronous flush failed${code ? ` (${code})` : ''}: ${(err as Error).message}` },
        `${r.name}\0flushSync`,
      );
    }
  }
}

/** Ends the sink of a working route; resolves when it finished, closed or failed. */
export function endRoute(r: Route): Promise<void> {
  const s = r.sink;
  if (r.broken || s.destroyed || s.writableFinished) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => resolve();
    s.once('finish', done);
    s.once('close', done);
    s.once('error', done); // already reported as a warning
    s.end();
  });
}
