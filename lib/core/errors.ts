/**
 * One error class for everything rowlog raises on purpose (DESIGN §8). Callers branch on
 * `code`, never on the message.
 */

/** The codes rowlog uses. Sink I/O failures keep the system code (`ENOSPC`, `EACCES`) in `cause`. */
export type RowlogErrorCode =
  | 'ERR_INVALID_TABLE'
  | 'ERR_INVALID_OPTION'
  | 'ERR_BAD_LINE'
  | 'ERR_JQ'
  | 'ERR_SINK_CLOSED'
  | 'ERR_INSECURE_BIND'
  | 'ERR_NO_RUN_DIR'
  | 'ERR_SINK_IO'
  | 'ERR_NO_MEMORY_SINK'
  | 'ERR_BAD_TOKEN'
  | 'ERR_RUN_LOCKED';

export class RowlogError extends Error {
  override readonly name = 'RowlogError';
  readonly code: RowlogErrorCode;

  constructor(code: RowlogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `err` is a {@link RowlogError} (works across copies of the module, by shape). */
export function isRowlogError(err: unknown): err is RowlogError {
  return (
    err instanceof RowlogError ||
    (err instanceof Error && err.name === 'RowlogError' && typeof (err as { code?: unknown }).code === 'string')
  );
}

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

/** A non-fatal problem, reported once per distinct cause as a `'warning'` event. */
export interface RowlogWarning {
  /** Stable identifier, e.g. `W_CYCLE`, `W_LOW_LEVEL`, `W_SINK_ERROR`. */
  code: string;
  /** One human-readable line. */
  message: string;
  /** The table the problem was seen in, when there is one. */
  table?: string;
}
