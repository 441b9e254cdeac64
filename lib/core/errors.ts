/**
 * One error class for everything rowlog raises on purpose (docs/DESIGN.md §8). Callers branch on
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
  | 'ERR_RUN_LOCKED'
  | 'ERR_MISSING_DEPENDENCY'
  | 'ERR_EXPORT_EXISTS'
  | 'ERR_RESUME_FROM'
  | 'ERR_COMMAND_NOT_FOUND'
  | 'ERR_REDIS';

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
