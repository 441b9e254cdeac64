/**
 * subsample: keeps some rows of each table so that one logger can write every step to one
 * sink and a readable summary to another (docs/DESIGN.md §5). Counting is per table, over the rows
 * that reach this stage.
 *
 * - `every: n` keeps the 1st, (n+1)th, (2n+1)th … row;
 * - `intervalMs: t` keeps a row when `t` ms of Entry time have passed since the last kept one
 *   (the first always);
 * - `log: true` keeps rows whose 0-based index is 0 or 1, 2 or 5 × 10^k (0, 1, 2, 5, 10, 20, …).
 */
import { Transform } from 'node:stream';
import type { Entry } from '../lib/core/entry.js';
import { numberOption, objectOption, optionError } from '../lib/core/options.js';

/** Exactly one of the three rates. */
export type SubsampleOptions =
  | { /** Keep one row in `every`, starting with the first. */ every: number; intervalMs?: undefined; log?: undefined }
  | { every?: undefined; /** Keep a row when this many ms passed since the last kept one. */ intervalMs: number; log?: undefined }
  | { every?: undefined; intervalMs?: undefined; /** Keep rows at indices 0, 1, 2, 5, 10, 20, 50, … */ log: true };

/** Decides, per table, whether an Entry is kept. */
export type Sampler = (entry: Entry<unknown>) => boolean;

/** True for 0 and for 1, 2 or 5 × 10^k. */
export function isLogIndex(i: number): boolean {
  if (i === 0) return true;
  let m = i;
  while (m % 10 === 0) m /= 10;
  return m === 1 || m === 2 || m === 5;
}

/** Builds the per-table keep/drop decision of `opts` (validated here, naming the option). */
export function createSampler(opts: SubsampleOptions): Sampler {
  objectOption(opts, 'subsample');
  const given = (['every', 'intervalMs', 'log'] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1) {
    throw optionError('type', 'subsample', `needs exactly one of every, intervalMs, log (got ${given.join(', ') || 'none'})`);
  }
  if (opts.every !== undefined) {
    const n = numberOption(opts.every, 'every', { min: 1, integer: true });
    const seen = new Map<string, number>();
    return (e) => {
      const i = seen.get(e.table) ?? 0;
      seen.set(e.table, i + 1);
      return i % n === 0;
    };
  }
  if (opts.intervalMs !== undefined) {
    const t = numberOption(opts.intervalMs, 'intervalMs', { min: 0 });
    const lastKept = new Map<string, number>();
    return (e) => {
      const last = lastKept.get(e.table);
      if (last !== undefined && e.time - last < t) return false;
      lastKept.set(e.table, e.time);
      return true;
    };
  }
  const log: unknown = (opts as { log?: unknown }).log;
  if (log !== true) throw optionError('type', 'log', `must be true (got ${String(log)})`);
  const seen = new Map<string, number>();
  return (e) => {
    const i = seen.get(e.table) ?? 0;
    seen.set(e.table, i + 1);
    return isLogIndex(i);
  };
}

/** An object-mode Transform that keeps the Entries {@link createSampler} keeps. */
export function subsample(opts: SubsampleOptions): Transform {
  const keep = createSampler(opts);
  return new Transform({
    objectMode: true,
    transform(entry: Entry, _enc, callback) {
      callback(null, keep(entry) ? entry : undefined);
    },
  });
}
