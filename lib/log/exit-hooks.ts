/**
 * What happens to open loggers when the process ends (issue 9 point 10, docs/DESIGN.md §5).
 *
 * - `beforeExit` (the event loop ran dry): every logger flushes asynchronously.
 * - `exit`, and SIGINT, SIGTERM and SIGHUP when the program has no handler of its own: every
 *   logger writes what it holds synchronously, records how the run ended in `status.json`
 *   (`exited` with the exit code, or `interrupted` with the signal) and gives its folder's
 *   lock up; a signal then ends the process as it would have (status 128 + n), which is what
 *   a shell, a job scheduler or a parent process expects to see after Ctrl-C.
 * `signal-exit` (the library npm, nyc and tap use for this) does the signal part: it re-raises
 * the signal once its handlers ran, and stays out of the way of a program that handles the
 * signal itself (its handler decides; a `process.exit()` there still reaches these hooks).
 */
import { onExit } from 'signal-exit';

/** How the process ends: a signal, or an exit code. */
export type ProcessEnd = { signal: string } | { exitCode: number };

/** What a logger does when the process ends. */
export interface ExitHooked {
  /** The event loop ran dry: flush asynchronously. */
  beforeExit(): void;
  /** The process ends now: write everything synchronously and record how. */
  exitSync(how: ProcessEnd): void;
}

const live = new Set<ExitHooked>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('beforeExit', () => {
    for (const log of live) log.beforeExit();
  });
  onExit((code, signal) => {
    const how: ProcessEnd = signal !== null ? { signal } : { exitCode: code ?? 0 };
    for (const log of [...live]) {
      try {
        log.exitSync(how);
      } catch {
        // one logger failing at exit must not keep the others from their rows
      }
    }
  });
}

/** Registers `log` for the process-end hooks (installed on first use); returns what takes it off. */
export function hookExit(log: ExitHooked): () => void {
  install();
  live.add(log);
  return () => live.delete(log);
}
