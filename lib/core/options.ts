/**
 * Option checks: the one vocabulary every factory validates its options with (docs/DESIGN.md §8).
 * Node's rule: a value of the wrong type is a `TypeError`, a value of the right type outside
 * what is allowed is a `RangeError`; both name the option first and carry `code:
 * 'ERR_INVALID_OPTION'`, so callers match on the code, never on the message.
 */

/**
 * An invalid option, Node-style: a real `TypeError` (wrong type) or `RangeError` (bad value)
 * whose message starts with the option's name and whose `code` is `ERR_INVALID_OPTION`.
 */
export function optionError(
  kind: 'type' | 'range',
  option: string,
  message: string,
): (TypeError | RangeError) & { code: 'ERR_INVALID_OPTION' } {
  const err = kind === 'type' ? new TypeError(`${option}: ${message}`) : new RangeError(`${option}: ${message}`);
  return Object.assign(err, { code: 'ERR_INVALID_OPTION' as const });
}

/** What {@link numberOption} accepts. */
export interface NumberRange {
  /** @default -Infinity */
  min?: number;
  /** @default Infinity (then only finite numbers) */
  max?: number;
  /** Whole numbers only. @default false */
  integer?: boolean;
  /** `Infinity` is also accepted (e.g. "keep all"). @default false */
  infinite?: boolean;
}

/**
 * `v` when it is a number in `range`, else an option error naming `option` (Node's rule: not a
 * number → TypeError; out of range or not whole → RangeError).
 */
export function numberOption(v: unknown, option: string, range: NumberRange = {}): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw optionError('type', option, `must be a number (got ${String(v)})`);
  const { min = -Infinity, max = Infinity, integer = false, infinite = false } = range;
  if (infinite && v === Infinity) return v;
  if (v < min || v > max || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    const what = integer ? 'an integer' : 'a finite number';
    const bounds = max !== Infinity ? ` from ${min} to ${max}` : min !== -Infinity ? ` ≥ ${min}` : '';
    throw optionError('range', option, `must be ${what}${bounds}${infinite ? ' or Infinity' : ''} (got ${v})`);
  }
  return v;
}

/** `v` when it is an object (arrays included, as before this check was shared), else a TypeError naming `option`. */
export function objectOption<T>(v: T, option = 'options'): T {
  if (typeof v !== 'object' || v === null) throw optionError('type', option, `must be an object (got ${describe(v)})`);
  return v;
}

/** `v` when it is a boolean, `dflt` when it is `undefined`, else a TypeError naming `option`. */
export function booleanOption(v: unknown, option: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw optionError('type', option, `must be a boolean (got ${describe(v)})`);
  return v;
}

/** `v` when it is a function or `undefined`, else a TypeError naming `option`. */
export function functionOption<F extends (...args: never[]) => unknown>(v: unknown, option: string): F | undefined {
  if (v !== undefined && typeof v !== 'function') throw optionError('type', option, `must be a function (got ${describe(v)})`);
  return v as F | undefined;
}

/** `v` when it is a non-empty string or `undefined`, else a TypeError naming `option`. */
export function stringOption(v: unknown, option: string): string | undefined {
  if (v !== undefined && (typeof v !== 'string' || v === '')) throw optionError('type', option, `must be a non-empty string (got ${v === '' ? 'an empty string' : describe(v)})`);
  return v;
}

/** `v` when it is an object of strings (`undefined` → `{}`), else a TypeError naming the bad key. */
export function stringRecordOption(v: unknown, option: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw optionError('type', option, `must be an object of strings (got ${describe(v)})`);
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw optionError('type', `${option}.${k}`, `must be a string (got ${describe(s)})`);
  }
  return v as Record<string, string>;
}

/** How an unexpected value is named in a message: its type, or `null`/`an array`. */
function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
