/**
 * The Logger: what a training loop talks to (docs/DESIGN.md §5).
 *
 *   log.row(table, data, {level, step, time})        sync; summarizes at call time
 *     → Entry → [user transforms] → fan-out → per sink: level ≥ min → subsample → sink.write
 *
 * The per-sink level filter and subsample are the same predicates as the `levelFilter` and
 * `subsample` Transforms, applied inline: a stream hop per sink per row would cost more than
 * the rest of `row()`. Sinks never make `row()` wait: rowlog's sinks call back synchronously
 * and batch; a sink that fails (ENOSPC, EACCES) is dropped from the fan-out with one warning
 * while the others keep every row. The Logger is itself a Writable of Entries or plain rows,
 * so it can end a `pipeline()`.
 *
 * Why one file of ~360 lines: the Logger is one object whose methods share its private state
 * (routes, tables, status, closing); `row()` keeps the fan-out inline for the hot path, and
 * what can live apart already does (defaults.ts, routes.ts, default-logger.ts, ingest).
 */
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Entry, FlatRow } from '../core/entry.js';
import { assertName } from '../core/entry.js';
import { RowlogError } from '../core/errors.js';
import { isRunRecorder } from '../core/sink.js';
import type { RunRecorder } from '../core/sink.js';
import { numberOption, objectOption, optionError, stringOption } from '../core/options.js';
import { badStepMessage, createEntryContext, isStep, toEntry } from '../core/ingest.js';
import type { EntryContext, FlattenData, TableSteps } from '../core/ingest.js';
import { Level, toLevel } from '../core/levels.js';
import type { LevelLike } from '../core/levels.js';
import { WarningGate } from '../core/warnings.js';
import { fanoutRow } from '../format/json-line.js';
import { defaultRunDir, RunDir, statusRecord } from '../run/run-dir.js';
import type { RunInfo, RunState } from '../run/run-dir.js';
import { gitCheckpointOption } from '../run/git-checkpoint.js';
import type { GitCheckpointOptions } from '../run/git-checkpoint.js';
import { FileSink } from '../../sinks/file-sink.js';
import { MemorySink } from '../../sinks/memory.js';
import type { TableView } from '../../sinks/memory.js';
import { entryFlattener, entryRowOptions, summarizeRow } from '../../transforms/summarize.js';
import type { SummarizeRowOptions } from '../../transforms/summarize.js';
import { ConsoleCapture, CONSOLE_FILE } from './console-capture.js';
import { consoleChoice, defaultSinks } from './defaults.js';
import type { DefaultSinkOptions } from './defaults.js';
import { hookExit } from './exit-hooks.js';
import type { ProcessEnd } from './exit-hooks.js';
import { createRoute, endRoute, flushRoutes, flushRoutesSync } from './routes.js';
import type { Route, SinkSpec } from './routes.js';

export type { SinkSpec } from './routes.js';

/** Options of {@link createLogger}. */
export interface LoggerOptions extends DefaultSinkOptions {
  /**
   * Run folder, created with parents; an existing one is appended to. Holds `run.json`,
   * `params.json`, `status.json`, `artifacts/` and, without `sinks`, the default sinks.
   * @default `ROWLOG_DIR`, else `runs/<script>_<time>`, when `sinks` is not given; none otherwise
   */
  dir?: string;
  /**
   * Resume the run in this folder as a new one (Blocks): `dir` becomes a new run folder whose
   * `run.json` links to the parent in `resumedFrom: {id, dir, absoluteDir}`, whose `status`
   * starts as the parent's and whose steps continue from the parent's last step per table;
   * readers show the chain as one run when asked (`readLog(file, {ancestry: true})`, README
   * "Resuming a run: ancestry"). A parent without a readable `run.json` is RowlogError
   * `ERR_RESUME_FROM`, before anything is created; so is a `dir` that holds another run (one
   * resumed from the same parent is reopened to append, as any folder). Without `dir`, the
   * default new folder (`runs/<script>_<time>`); with `sinks` and no `dir`, `ERR_INVALID_OPTION`.
   * @default none: an existing `dir` is appended to
   */
  resumeFrom?: string;
  /** Run name written to `run.json`. @default the folder's name */
  name?: string;
  /**
   * Sinks, each a Writable or a {@link SinkSpec}. @default in `dir`: `<table>.jsonl.gz` and
   * `<table>.csv` at TRACE, the console at INFO (one print per table per second, RESULTS and
   * above always), a TensorBoard events file at INFO (`tensorboard: false` for none), and a
   * memory ring of the last `memory` rows per table for `log.table()`
   */
  sinks?: ReadonlyArray<Writable | SinkSpec>;
  /** Object-mode Transforms applied to every summarized Entry before the fan-out, in order. */
  transforms?: readonly Duplex[];
  /** Level of rows logged without one. @default 'INFO' */
  level?: LevelLike;
  /** Table of plain rows written to the Logger as a stream without a `$table` key. @default 'main' */
  table?: string;
  /** How rows are flattened (see `summarizeRow`). @default the summarize defaults */
  summarize?: Omit<SummarizeRowOptions, 'onWarning'>;
  /**
   * Flush on `beforeExit`, and synchronously on `exit` and on SIGINT, SIGTERM and SIGHUP (when
   * the program has no handler of its own), recording `exited` or `interrupted` in
   * `status.json` (see README, "What survives"). The run folder's lock is given up at exit
   * either way. @default true
   */
  exitHooks?: boolean;
  /**
   * Commit the code as it is when the run starts (docs/DESIGN.md §4, lib/run/git-checkpoint.ts):
   * when the process's working directory is in a git work tree, the working tree (tracked
   * changes and untracked files, `.gitignore` honoured, without the run folder and untracked
   * files over `maxFileBytes`) becomes a commit on the branch `rowlog-checkpoints`, through a
   * temporary index (the user's index, HEAD, branch and stash stay untouched); `run.json`'s
   * `git.checkpoint` names it and `from_head.diff` holds the diff from HEAD. No git, not a
   * repository, or a failure: one `W_GIT_CHECKPOINT` warning, and the run goes on. Off by
   * default, because it writes into the user's repository (objects and a branch). Needs `dir`.
   * @default false
   */
  git?: boolean | GitCheckpointOptions;
}

/** Per-call options of {@link Logger.row}. */
export interface RowOptions {
  /** The row's level. @default the logger's `level` (INFO) */
  level?: LevelLike;
  /**
   * The row's step, a safe integer (another value warns `W_BAD_META` and the next step is used).
   * @default one more than the table's last step (0 first)
   */
  step?: number;
  /** The row's time in ms since the epoch. @default Date.now() */
  time?: number;
}

export class Logger extends Writable {
  /** The run folder (absolute), when there is one. */
  readonly dir: string | undefined;
  /** What `run.json` says, when there is a run folder. */
  readonly run: RunInfo | undefined;
  /** Training status (Blocks-style: `epochs_done`, …), saved to `status.json` on flush and close. */
  status: Record<string, unknown>;

  readonly #runDir: RunDir | undefined;
  readonly #routes: Route[] = [];
  readonly #memory: MemorySink | undefined;
  readonly #minLevel: number;
  readonly #level: number;
  readonly #steps: TableSteps;
  readonly #gate: WarningGate;
  readonly #ctx: EntryContext;
  readonly #rowOpts: SummarizeRowOptions;
  /** `#rowOpts` as the flattening of rows written to the logger as a stream (made once). */
  readonly #flattenData: FlattenData<FlatRow>;
  readonly #head: Writable | undefined;
  readonly #transformsDone: Promise<void> | undefined;
  readonly #transforms: readonly Duplex[];
  #transformsBroken = false;
  readonly #exitFlush: boolean;
  #unhook: () => void = () => undefined;
  /** `console: {capture: true}`: the process's stdout and stderr also go to `console.log` (lib/log/console-capture.ts). */
  #capture: ConsoleCapture | undefined;

  constructor(opts: LoggerOptions = {}) {
    super({ objectMode: true });
    objectOption(opts);
    if (opts.sinks !== undefined && !Array.isArray(opts.sinks)) throw optionError('type', 'sinks', 'must be an array');
    if (opts.transforms !== undefined && !Array.isArray(opts.transforms)) throw optionError('type', 'transforms', 'must be an array');
    if (opts.dir !== undefined && (typeof opts.dir !== 'string' || opts.dir === '')) {
      throw optionError('type', 'dir', `must be a non-empty string (got ${String(opts.dir)})`);
    }
    const resumeFrom = stringOption(opts.resumeFrom, 'resumeFrom');
    this.#gate = new WarningGate(this);
    this.#ctx = createEntryContext(opts.table ?? 'main', opts.level ?? Level.INFO, this.#gate);
    this.#rowOpts = entryRowOptions(opts.summarize, this.#ctx);
    this.#flattenData = entryFlattener(this.#rowOpts);
    this.#level = this.#ctx.level;
    this.#steps = this.#ctx.steps;

    // Every option is checked, and every sink built, before the run folder is created or locked:
    // a logger that fails on its options leaves nothing behind (sinks touch no file until a row
    // comes). If the folder cannot be had (ERR_RUN_LOCKED), the default sinks are destroyed.
    const dir = opts.dir ?? (opts.sinks === undefined ? defaultRunDir() : undefined);
    const git = gitCheckpointOption(opts.git);
    if (git !== undefined && dir === undefined) throw optionError('range', 'git', 'needs a run folder (dir): the checkpoint is recorded in run.json');
    if (resumeFrom !== undefined && dir === undefined) throw optionError('range', 'resumeFrom', 'needs a run folder: give dir (with sinks there is no default one)');
    const capture = consoleChoice(opts.console).capture;
    if (capture && dir === undefined) throw optionError('range', 'console.capture', 'needs a run folder (dir)');
    const absDir = dir === undefined ? undefined : path.resolve(dir);
    // The run name RunDir will write is the socket's default `$source`.
    const specs = opts.sinks ?? (absDir === undefined ? [] : defaultSinks(absDir, opts.name ?? path.basename(absDir), opts));
    try {
      this.#routes = specs.map((s, i) => createRoute(s, i, this.#gate, this));
      // Warned after createLogger returns, so a listener attached to it hears W_STALE_LOCK.
      this.#runDir =
        dir === undefined
          ? undefined
          : new RunDir(dir, {
              ...(opts.name === undefined ? {} : { name: opts.name }),
              onWarning: (w) => process.nextTick(() => this.#gate.warn(w)),
              ...(git === undefined ? {} : { git }),
              ...(resumeFrom === undefined ? {} : { resumeFrom }),
            });
    } catch (err) {
      if (opts.sinks === undefined) for (const s of specs) (s as SinkSpec).sink.destroy();
      throw err;
    }
    this.dir = this.#runDir?.dir;
    this.run = this.#runDir?.info;
    // Work a killed writer left on the folder's files (a CSV rewrite cut short) is taken up now,
    // for tables that get no row in this run too (docs/DESIGN.md §4).
    if (this.#runDir !== undefined) for (const r of this.#routes) if (r.sink instanceof FileSink) r.sink.resume();
    // A sink that records the run (SQLite's tables, Redis's meta hash) gets run.json, params.json and status.json.
    if (this.#runDir !== undefined) {
      for (const db of this.#recorders()) {
        db.setRun({ ...this.#runDir.info, dir: this.#runDir.dir });
        db.setParams(this.#runDir.paramsSoFar);
      }
    }
    this.status = { ...this.#runDir?.savedStatus };
    if (this.#runDir) this.#steps.restore(this.#runDir.savedSteps);
    this.#memory = this.#routes.find((r) => r.sink instanceof MemorySink)?.sink as MemorySink | undefined;
    this.#minLevel = Math.min(...this.#routes.map((r) => r.min));

    this.#transforms = opts.transforms ?? [];
    if (this.#transforms.length > 0) {
      const fanout = new Writable({
        objectMode: true,
        write: (entry: Entry<FlatRow>, _enc, cb) => {
          this.#fanout(entry);
          cb();
        },
      });
      this.#head = this.#transforms[0] as Duplex;
      this.#transformsDone = pipeline([...this.#transforms, fanout]).catch((err: Error) => {
        // A broken user transform must not lose rows: later rows bypass the chain.
        this.#transformsBroken = true;
        this.#gate.warn({
          code: 'W_TRANSFORM_ERROR',
          message: `a user transform failed (${err.message}); rows now go to the sinks untransformed`,
        });
      });
    }

    if (capture && this.#runDir !== undefined) {
      this.#capture = new ConsoleCapture(path.join(this.#runDir.dir, CONSOLE_FILE), {
        onWarning: (w) => this.#gate.warn(w),
        ...(opts.maxQueuedBytes === undefined ? {} : { maxQueuedBytes: numberOption(opts.maxQueuedBytes, 'maxQueuedBytes', { min: 0 }) }),
      });
    }
    this.#exitFlush = opts.exitHooks !== false;
    if (this.#runDir !== undefined || this.#exitFlush) {
      this.#unhook = hookExit({
        beforeExit: () => {
          if (this.#exitFlush) this.flush().catch(() => undefined);
        },
        exitSync: (how) => this.#exitSync(how),
      });
    }
  }

  /**
   * Logs one row of `table`, now: the data is summarized before this returns, so mutating a
   * tensor afterwards does not change what was logged. Never waits on I/O. Throws only on a
   * programming error: an invalid table name (`ERR_INVALID_TABLE`), an unknown level, or a
   * closed logger (`ERR_SINK_CLOSED`).
   */
  row(table: string, data: unknown, opts?: RowOptions): void {
    if (this.writableEnded) throw new RowlogError('ERR_SINK_CLOSED', `log.row('${table}'): the logger is closed`);
    assertName(table);
    const level = opts?.level === undefined ? this.#level : toLevel(opts.level, 'level');
    const given = opts?.step;
    if (given !== undefined && !isStep(given)) this.#gate.warn({ code: 'W_BAD_META', message: badStepMessage('step', given), table }, 'step');
    const step = this.#steps.next(table, given);
    if (level < this.#minLevel && this.#head === undefined) {
      this.#tooLow(table);
      return; // no sink would write it: skip the summary too
    }
    this.#ctx.current = table;
    this.#dispatch({
      table,
      level,
      step,
      time: opts?.time ?? Date.now(),
      data: summarizeRow(data, this.#rowOpts),
    });
  }

  #tooLow(table: string): void {
    this.#gate.warn({ code: 'W_LOW_LEVEL', message: `Log to table '${table}' was too low level for any sink`, table });
  }

  #dispatch(entry: Entry<FlatRow>): void {
    if (this.#head !== undefined && !this.#transformsBroken) this.#head.write(entry);
    else this.#fanout(entry);
  }

  #fanout(entry: Entry<FlatRow>): void {
    if (entry.level < this.#minLevel) return this.#tooLow(entry.table);
    // The sinks' key orders share one read of the row's keys (lib/format/json-line.ts, issue 9).
    fanoutRow(entry.data, () => {
      for (const r of this.#routes) {
        if (r.broken || entry.level < r.min) continue;
        if (r.keep !== undefined && !r.keep(entry)) continue;
        r.sink.write(entry);
      }
    });
  }

  override _write(chunk: unknown, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    let entry: Entry<FlatRow>;
    try {
      entry = toEntry(chunk, this.#ctx, this.#flattenData);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.#dispatch(entry);
    callback();
  }

  /**
   * Logs a plain row the way `rowlog pipe` reads them: its `$table`, `$step`, `$time` and
   * `$level` keys are honoured (a bad one warns `W_BAD_META` and the default is used), every
   * other key is data. Unlike `write()`, an object shaped like an Entry (`{table, level, data}`)
   * is still a plain row, so rows from another process are never mistaken for one. Never throws
   * on row content; throws `ERR_SINK_CLOSED` on a closed logger.
   */
  writeRow(row: unknown): void {
    if (this.writableEnded) throw new RowlogError('ERR_SINK_CLOSED', 'log.writeRow(): the logger is closed');
    this.#dispatch(toEntry(row, this.#ctx, this.#flattenData, true));
  }

  /**
   * The rows of `table` kept in memory (the last `memory` rows with the default sinks, or those
   * of the first `memorySink` given): `last(n)`, `rows()`, iteration. `ERR_NO_MEMORY_SINK`
   * when there is none.
   */
  table(name: string): TableView {
    if (this.#memory === undefined) {
      throw new RowlogError('ERR_NO_MEMORY_SINK', `log.table('${name}') needs a memory sink: the default sinks or memorySink()`);
    }
    return this.#memory.table(name);
  }

  /** Merges `params` into `params.json` in the run folder. */
  params(params: Record<string, unknown>): void {
    objectOption(params, 'params');
    if (this.writableEnded) throw new RowlogError('ERR_SINK_CLOSED', 'log.params(): the logger is closed');
    this.#requireDir('params').params(params);
    for (const db of this.#recorders()) db.setParams(params);
  }

  /** The routes' sinks that record the run, its params and its status (lib/core/sink.ts RunRecorder). */
  #recorders(): RunRecorder[] {
    return this.#routes.flatMap((r) => (isRunRecorder(r.sink) && !r.broken ? [r.sink] : []));
  }

  /** The status as status.json holds it, into the recording sinks (before they are flushed or ended). */
  #recordStatus(state: RunState): void {
    if (this.#runDir === undefined) return;
    const dbs = this.#recorders();
    if (dbs.length > 0) {
      const record = statusRecord(this.status, this.#steps.toJSON(), state);
      for (const db of dbs) db.setStatus(record);
    }
  }

  /**
   * Records in `run.json` (atomically) what a wrapper learns as its program runs: `rowlog run`'s
   * `command`, `rowlog collect --redis`'s `source`. A file that cannot be written (ENOSPC) is a warning (`W_FILE_ERROR`), never a throw:
   * the wrapper must still end as its program did.
   */
  updateRun(fields: Pick<RunInfo, 'command' | 'source'>): void {
    const runDir = this.#requireDir('updateRun');
    try {
      runDir.updateInfo(fields);
    } catch (err) {
      this.#gate.warn({ code: 'W_FILE_ERROR', message: `could not update run.json: ${(err as Error).message}` });
    }
    for (const db of this.#recorders()) db.setRun({ ...runDir.info, dir: runDir.dir }); // an upsert of its `runs` row
  }

  /** Writes `artifacts/<name>` in the run folder (strings and bytes as is, else JSON); returns its path. */
  artifact(name: string, data: unknown): string {
    if (this.writableEnded) throw new RowlogError('ERR_SINK_CLOSED', `log.artifact('${name}'): the logger is closed`);
    return this.#requireDir('artifact').artifact(name, data);
  }

  #requireDir(what: string): RunDir {
    if (this.#runDir === undefined) {
      throw new RowlogError('ERR_NO_RUN_DIR', `log.${what}() needs a run folder: createLogger({dir})`);
    }
    return this.#runDir;
  }

  /** Resolves when every row logged so far has reached the operating system; saves the status. */
  async flush(): Promise<void> {
    await this.#drainTransforms();
    this.#saveStatus({ state: 'running' });
    this.#recordStatus({ state: 'running' });
    await flushRoutes(this.#routes);
    await this.#capture?.flush();
  }

  /** Writes everything buffered synchronously. */
  flushSync(): void {
    this.#saveStatus({ state: this.writableFinished ? 'closed' : 'running' });
    if (!this.writableFinished) this.#recordStatus({ state: 'running' });
    flushRoutesSync(this.#routes, this.#gate);
    this.#capture?.flushSync();
  }

  /**
   * The process is ending (lib/log/exit-hooks.ts): writes everything synchronously, records how the
   * run ended unless it was closed, and gives the folder's lock up.
   */
  #exitSync(how: ProcessEnd): void {
    this.#unhook();
    if (!this.writableFinished && this.#exitFlush) {
      const end: RunState = 'signal' in how ? { state: 'interrupted', signal: how.signal } : { state: 'exited', exitCode: how.exitCode };
      this.#recordStatus(end); // posted before the synchronous flush, which waits for it
      flushRoutesSync(this.#routes, this.#gate);
      this.#saveStatus(end);
    }
    this.#capture?.exitSync(); // last: what the exit path printed is in console.log too
    this.#runDir?.releaseLock();
  }

  /** Flushes, ends every sink, waits for them, and saves `status.json` as closed. */
  async close(): Promise<void> {
    if (!this.writableFinished) {
      await new Promise<void>((resolve, reject) => {
        this.once('finish', resolve);
        this.once('error', reject);
        this.end();
      });
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#finish().then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  async #finish(): Promise<void> {
    if (this.#head !== undefined) {
      this.#head.end();
      await this.#transformsDone;
    }
    this.#recordStatus({ state: 'closed' }); // before the sinks end: an ended sink takes nothing
    await Promise.all(this.#routes.map((r) => endRoute(r)));
    this.#unhook();
    this.#saveStatus({ state: 'closed' });
    await this.#capture?.close();
    this.#runDir?.releaseLock();
  }

  async #drainTransforms(): Promise<void> {
    // User transforms may be async; wait (bounded) until none holds an Entry.
    for (let i = 0; i < 1000 && this.#head !== undefined && !this.#transformsBroken; i++) {
      if (this.#transforms.every((t) => t.writableLength === 0 && t.readableLength === 0)) return;
      await new Promise((r) => setImmediate(r));
    }
  }

  #saveStatus(state: RunState): void {
    try {
      this.#runDir?.saveStatus(this.status, this.#steps.toJSON(), state);
    } catch (err) {
      this.#gate.warn({ code: 'W_STATUS', message: `could not save status.json: ${(err as Error).message}` });
    }
  }
}

/** Creates a Logger (see {@link LoggerOptions}). */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return new Logger(opts);
}
