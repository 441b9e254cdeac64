/**
 * The collector's run registry (issue 5, 9): one run folder `<dir>/<source>` per source, written
 * by one Logger with the default file sinks, shared by every connection of that source
 * (reconnects, or several pushers under one name) and closed when the collector closes. At most
 * `maxSources` of them; a folder that cannot be opened (held by another writer, EACCES) is tried
 * again at most once a second.
 */
import path from 'node:path';
import { isRowlogError } from '../core/errors.js';
import type { RowlogWarning } from '../core/warnings.js';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import type { CollectReport, CollectWarning, Reporter } from './collect-report.js';

/**
 * `maxOpenFiles` of each source's file sinks: with up to `maxSources` runs in one process, a
 * sink per run cannot take the default 128 (the pool reopens files to append as they are used).
 */
const SOURCE_OPEN_FILES = 8;

/** One run folder and its logger (`undefined` when it could not be opened or failed). */
interface Run {
  log: Logger | undefined;
  /** When to try opening the folder again after a failure (ms epoch; Infinity: never). */
  retryAt: number;
}

export class SourceRuns {
  readonly #runs = new Map<string, Run>();
  readonly #dir: string;
  readonly #maxSources: number;
  readonly #report: CollectReport;

  constructor(dir: string, maxSources: number, report: CollectReport) {
    this.#dir = dir;
    this.#maxSources = maxSources;
    this.#report = report;
  }

  /** The sources written so far (their run folders are `<dir>/<source>`). */
  sources(): string[] {
    return [...this.#runs].filter(([, r]) => r.log !== undefined).map(([s]) => s);
  }

  /** The logger of `source` (seen on `by`), opened on first use; `undefined` (counted, reported) when it cannot be written. */
  open(source: string, by: Reporter): Logger | undefined {
    const report = this.#report;
    let run = this.#runs.get(source);
    if (run === undefined) {
      if (this.#runs.size >= this.#maxSources) {
        report.skip(by, 'unwritable', 'W_COLLECT_TOO_MANY_SOURCES', `skipped a row: already writing ${this.#maxSources} sources (maxSources)`);
        return undefined;
      }
      run = { log: undefined, retryAt: 0 };
      this.#runs.set(source, run);
    }
    if (run.log === undefined && run.retryAt <= Date.now()) {
      try {
        // Each source's sinks keep few files open: a collector writes many runs at once (issue 9).
        // redis: false: ROWLOG_REDIS in the collector's environment does not send the collected runs on.
        const log = createLogger({ dir: path.join(this.#dir, source), name: source, console: false, memory: 0, maxOpenFiles: SOURCE_OPEN_FILES, redis: false });
        log.on('warning', (w: RowlogWarning) => {
          const cw: CollectWarning = { ...w, source, message: `${source}: ${w.message}` };
          report.emit(cw);
        });
        const r = run;
        log.on('error', (err: Error) => {
          r.log = undefined;
          r.retryAt = Infinity;
          report.warn({ code: 'W_COLLECT_FAILED', message: `${source}: its logger failed (${err.message}); further rows are skipped`, source }, by);
        });
        run.log = log;
      } catch (err) {
        run.retryAt = Date.now() + 1000;
        const locked = isRowlogError(err) && err.code === 'ERR_RUN_LOCKED';
        report.warn(
          {
            code: locked ? 'W_COLLECT_RUN_LOCKED' : 'W_COLLECT_RUN_DIR',
            message: `${source}: cannot open its run folder (${(err as Error).message}); its rows are skipped until it can (retried every second)`,
            source,
          },
          by,
        );
      }
    }
    if (run.log === undefined) report.counts.unwritable++;
    return run.log;
  }

  /** Closes every run, so its files end cleanly and `status.json` says closed. */
  async close(): Promise<void> {
    await Promise.all([...this.#runs.values()].map((r) => r.log?.close().catch(() => undefined)));
  }
}
