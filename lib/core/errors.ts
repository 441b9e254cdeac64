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

// The option checks live in ./options.ts; re-exported here until every importer names it.
export { numberOption, optionError } from './options.js';
export type { NumberRange } from './options.js';

/** A non-fatal problem, reported once per distinct cause as a `'warning'` event. */
export interface RowlogWarning {
  /** Stable identifier, e.g. `W_CYCLE`, `W_LOW_LEVEL`, `W_SINK_ERROR`. */
  code: string;
  /** One human-readable line. */
  message: string;
  /** The table the problem was seen in, when there is one. */
  table?: string;
}
