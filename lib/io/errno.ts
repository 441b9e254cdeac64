/**
 * Which errors are the system's (an errno code: a fault of one file, retried) and which of
 * those only mean "out of file descriptors" (a reason to wait, not a failure). Every writer and
 * format of the file sinks sorts its errors with these two (issue 9, point 2).
 */
import { RowlogError } from '../core/errors.js';

/** An error of the system (it has an errno code), not of the program. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && !(err instanceof RowlogError);
}

/** Out of file descriptors (the process's or the system's): a reason to wait, not a failure. */
export function isEmfile(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}
