/**
 * Named levels (noko's numbers, docs/DESIGN.md §2). A level is a number; names are accepted anywhere
 * a level is, case-insensitively.
 */
import { optionError } from './options.js';

/** The built-in levels. */
export const Level = Object.freeze({
  TRACE: 5,
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  RESULTS: 35,
  ERROR: 40,
  CRITICAL: 50,
});

/** A level number, or a level name in any case (`'info'`, `'TRACE'`). */
export type LevelLike = number | string;

const byName = new Map<string, number>(Object.entries(Level));

/**
 * Adds a named level (e.g. `registerLevel('VERBOSE', 7)`), usable wherever a level name is.
 * Re-registering a name with the same number is a no-op; with another number it is an error.
 */
export function registerLevel(name: string, n: number): void {
  if (typeof name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) {
    throw optionError('type', 'registerLevel name', `must be a word of letters, digits and _ (got ${JSON.stringify(name)})`);
  }
  if (typeof n !== 'number' || !Number.isFinite(n)) {
    throw optionError('range', 'registerLevel level', `must be a finite number (got ${String(n)})`);
  }
  const key = name.toUpperCase();
  const old = byName.get(key);
  if (old !== undefined && old !== n) {
    throw optionError('range', 'registerLevel name', `level '${key}' is already ${old}`);
  }
  byName.set(key, n);
}

/** Turns a level name or number into its number; throws a RangeError naming `option` otherwise. */
export function toLevel(level: LevelLike, option = 'level'): number {
  if (typeof level === 'number' && Number.isFinite(level)) return level;
  if (typeof level === 'string') {
    const n = byName.get(level) ?? byName.get(level.toUpperCase()); // 'TRACE' needs no new string
    if (n !== undefined) return n;
  }
  throw optionError('range', option, `unknown level ${JSON.stringify(level)} (known: ${[...byName.keys()].join(', ')})`);
}

/** The name of a level number (the highest-registered alias wins ties), or the number as text. */
export function levelName(n: number): string {
  for (const [name, value] of byName) if (value === n) return name;
  return String(n);
}
