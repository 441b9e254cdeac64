/**
 * The process's default logger (docs/DESIGN.md §5): what `logRow()` writes to, created on first use in
 * `ROWLOG_DIR` or `runs/<script>_<time>` with the default sinks. Its exit hooks flush it on
 * `beforeExit` and, synchronously, on `exit`, so a script that never closes it loses nothing.
 */
import { createLogger } from './logger.js';
import type { Logger, RowOptions } from './logger.js';

let defaultLog: Logger | undefined;

/** The logger `logRow()` uses, created on first use in `ROWLOG_DIR` or `runs/<script>_<time>`. */
export function defaultLogger(): Logger {
  if (defaultLog === undefined || defaultLog.writableEnded) defaultLog = createLogger();
  return defaultLog;
}

/** Logs one row to the default logger (see {@link Logger.row}). */
export function logRow(table: string, data: unknown, opts?: RowOptions): void {
  defaultLogger().row(table, data, opts);
}
