/**
 * The Entry that flows between stages (docs/DESIGN.md §2), the Scalars a summarized row holds, and
 * the rule for table (and artifact) names, which become paths inside the run folder.
 */
import { RowlogError } from './errors.js';

/** What a summarized row holds under each key. */
export type Scalar = number | string | boolean | null;

/** A summarized row: flat keys (`a/b`, `w.mean`) to Scalars. */
export type FlatRow = Record<string, Scalar>;

/** One row on its way through the pipeline (object mode). */
export interface Entry<D = Record<string, unknown>> {
  /** Table name: `[A-Za-z0-9_.-]` segments joined by `/`. One file per table per sink. */
  table: string;
  /** Level number (see `Level`). */
  level: number;
  /** Step within the table. */
  step: number;
  /** Milliseconds since the epoch. */
  time: number;
  /** The row: raw before `summarize`, a {@link FlatRow} after it. */
  data: D;
}

/** Metadata column names, written first in every row (docs/DESIGN.md §4). */
export const META_KEYS = Object.freeze(['$step', '$time', '$level', '$table', '$seq'] as const);

/**
 * True for an Entry-shaped object: a string `table`, a numeric `level` and an object `data`.
 * Anything else reaching `summarize()` or the logger's writable side is a plain row.
 */
export function isEntry(x: unknown): x is Entry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Partial<Entry>;
  return typeof e.table === 'string' && typeof e.level === 'number' && typeof e.data === 'object' && e.data !== null;
}

const SEGMENT = /^[A-Za-z0-9_.-]+$/;
/** A character a name may not hold. */
const NOT_NAME_CHAR = /[^A-Za-z0-9_.-]/g;
const valid = new Set<string>();

/**
 * True for a valid table or artifact name: `[A-Za-z0-9_.-]` segments joined by `/`, at most 255
 * characters, no empty, `.` or `..` segment, so it can never leave the run folder. With
 * `oneSegment`, no `/` either: a run or `$source` name, one folder.
 */
export function isValidName(name: unknown, oneSegment = false): name is string {
  if (typeof name !== 'string') return false;
  if (valid.has(name)) return !oneSegment || !name.includes('/');
  if (name.length === 0 || name.length > 255 || (oneSegment && name.includes('/'))) return false;
  for (const seg of name.split('/')) if (!SEGMENT.test(seg) || seg === '.' || seg === '..') return false;
  if (valid.size < 10_000) valid.add(name);
  return true;
}

/** Checks a table or artifact name (see {@link isValidName}). Throws `ERR_INVALID_TABLE`. */
export function assertName(name: unknown, what = 'table'): asserts name is string {
  if (isValidName(name)) return;
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) {
    throw new RowlogError('ERR_INVALID_TABLE', `invalid ${what} name ${JSON.stringify(name)}: expected a non-empty string`);
  }
  throw new RowlogError(
    'ERR_INVALID_TABLE',
    `invalid ${what} name ${JSON.stringify(name)}: use [A-Za-z0-9_.-] segments joined by '/' (no empty, '.' or '..' segment)`,
  );
}

/**
 * `text` made one valid name segment ({@link isValidName} with `oneSegment`), for names taken
 * from elsewhere (a script's file name, a run name): each character outside `[A-Za-z0-9_.-]`
 * becomes `_`, at most 255 characters are kept, and an empty, `.` or `..` result gets a leading `_`.
 */
export function nameSegment(text: string): string {
  const s = text.replace(NOT_NAME_CHAR, '_').slice(0, 255);
  return s === '' || s === '.' || s === '..' ? `_${s}`.slice(0, 255) : s;
}
