/**
 * levelFilter: passes Entries whose level is at least `min` (noko's rule: a sink writes a row
 * when `row.level >= sink.level`).
 */
import { Transform } from 'node:stream';
import type { Entry } from '../lib/core/entry.js';
import { toLevel } from '../lib/core/levels.js';
import type { LevelLike } from '../lib/core/levels.js';

/** Options of {@link levelFilter}. */
export interface LevelFilterOptions {
  /** Lowest level let through, as a number or a name (`'INFO'`). @default 'TRACE' */
  min?: LevelLike;
}

/** An object-mode Transform that drops Entries below `min`. */
export function levelFilter(opts: LevelFilterOptions = {}): Transform {
  const min = toLevel(opts.min ?? 'TRACE', 'min');
  return new Transform({
    objectMode: true,
    transform(entry: Entry, _enc, callback) {
      callback(null, entry.level >= min ? entry : undefined);
    },
  });
}
