/**
 * WorkerChannel: a sink's one worker thread for work that would stall the training loop (Parquet
 * encoding, SQLite transactions; docs/DESIGN.md §5), with a synchronous wait for the exit path.
 *
 * The main thread posts jobs in order; the worker runs them one at a time, in order
 * ({@link serveJobs}), and counts each finished job in a SharedArrayBuffer. So the main thread
 * can wait for the worker without its event loop: `waitSync()` blocks in `Atomics.wait` until the
 * count reaches what was posted (the memory bound of a sink; `process.on('exit')`, where no
 * promise can resolve), while the worker thread keeps running. A job that throws in the worker
 * is reported to `onError` (asynchronously, as a message) and still counted as finished, so
 * nothing waits for it forever; a worker that dies counts as finishing everything (it sets its
 * flag in the same buffer on its way out) and reports why.
 *
 * The worker is ref'd only while jobs are outstanding: an idle worker never keeps a finished
 * program alive, and a busy one keeps it until its jobs are answered (as a pending write
 * does). On `exit`, where no event comes any more, `waitSync()` waits (lib/log/exit-hooks.ts).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';

/** Slots of the shared counters. */
const DONE = 0;
const DEAD = 1;
/** Set by the worker once it serves jobs: a worker that never gets there (its script fails to load) is not waited for long. */
const STARTED = 2;
/** How long waitSync() waits for a worker that has not started. */
const START_WAIT_MS = 10_000;

/** A job's failure as the worker reports it. */
interface JobError {
  readonly failed: number;
  readonly message: string;
  readonly code?: string;
}

/** A flush() waiting for the jobs posted before it. */
interface Waiter {
  readonly upTo: number;
  readonly done: () => void;
}

/** Options of {@link WorkerChannel}. */
export interface WorkerChannelOptions {
  /** Data the worker gets as `workerData.init` (structured-cloned). */
  init?: unknown;
  /** A job failed in the worker, or the worker died (then `job` is undefined). Called asynchronously. */
  onError: (err: Error & { code?: string }, job: number | undefined) => void;
}

export class WorkerChannel<Job> {
  readonly #worker: Worker | undefined;
  readonly #counts = new Int32Array(new SharedArrayBuffer(12));
  #posted = 0;
  /** Jobs whose answer (ok or failed) this thread has received: flush() counts these, so a job's error is reported before its flush resolves. */
  #answered = 0;
  /** Resolvers of flush(): each waits for the job count at its call. */
  #waiters: Waiter[] = [];
  #dead = false;

  /**
   * Starts the worker running `script` (a module whose top level calls {@link serveJobs}). Never
   * throws: a worker that cannot be made (a Node flag workers refuse) is a dead channel, reported
   * to `onError` asynchronously, so a sink's timer or `log.row()` never meets the throw.
   */
  constructor(script: URL, opts: WorkerChannelOptions) {
    let worker: Worker | undefined;
    try {
      const execArgv = workerExecArgv();
      worker = new Worker(script, { workerData: { init: opts.init, counts: this.#counts }, ...(execArgv === undefined ? {} : { execArgv }) });
    } catch (err) {
      this.#dead = true;
      queueMicrotask(() => opts.onError(err as Error, undefined));
    }
    this.#worker = worker;
    if (worker === undefined) return;
    worker.unref();
    worker.on('message', (m: { ok: number } | JobError) => {
      this.#answered++;
      if (this.#answered >= this.#posted) worker.unref();
      if ('failed' in m) opts.onError(Object.assign(new Error(m.message), m.code === undefined ? {} : { code: m.code }), m.failed);
      this.#settle();
    });
    worker.on('error', (err) => {
      this.#dead = true;
      opts.onError(err, undefined);
      this.#settle();
    });
    worker.on('exit', (code) => {
      if (!this.#dead && code !== 0) opts.onError(new Error(`the worker thread exited (code ${code})`), undefined);
      this.#dead = true;
      this.#settle();
    });
  }

  /** Jobs posted and not finished. */
  get pending(): number {
    return this.#dead || Atomics.load(this.#counts, DEAD) !== 0 ? 0 : this.#posted - Atomics.load(this.#counts, DONE);
  }

  /** The worker is gone (it failed or was closed): posting does nothing. */
  get dead(): boolean {
    return this.#dead || Atomics.load(this.#counts, DEAD) !== 0;
  }

  /** Posts a job (its ArrayBuffers in `transfer` move to the worker); returns its number. */
  post(job: Job, transfer: readonly TransferListItem[] = []): number {
    const n = this.#posted++;
    if (this.dead || this.#worker === undefined) return n;
    this.#worker.ref();
    this.#worker.postMessage({ n, job }, transfer);
    return n;
  }

  /** Resolves when every job posted so far has finished (well or not). */
  flush(): Promise<void> {
    if (this.dead || this.#answered >= this.#posted) return Promise.resolve();
    return new Promise((done) => this.#waiters.push({ upTo: this.#posted, done }));
  }

  /**
   * Blocks this thread until every job posted so far has finished, or `timeoutMs` passed;
   * true when all finished. For the exit path and the memory bound only.
   */
  waitSync(timeoutMs = 30_000): boolean {
    const start = performance.now();
    const end = start + timeoutMs;
    for (;;) {
      if (this.pending === 0) return true;
      const now = performance.now();
      const left = end - now;
      if (left <= 0) return false;
      // A worker whose script failed to load never counts anything (its failure is an event, and none comes now).
      if (Atomics.load(this.#counts, STARTED) === 0 && now - start >= START_WAIT_MS) return false;
      const seen = Atomics.load(this.#counts, DONE);
      if (this.#posted - seen <= 0) return true;
      Atomics.wait(this.#counts, DONE, seen, Math.min(left, 1000));
    }
  }

  /** Waits for the jobs posted, then ends the worker. */
  async close(): Promise<void> {
    await this.flush();
    this.#dead = true;
    await this.#worker?.terminate();
  }

  /** Waits (bounded) for the jobs posted, then ends the worker, synchronously. */
  closeSync(timeoutMs?: number): void {
    this.waitSync(timeoutMs);
    this.#dead = true;
    void this.#worker?.terminate();
  }

  #settle(): void {
    const done = this.#dead ? Infinity : this.#answered;
    const still: Waiter[] = [];
    for (const w of this.#waiters) (w.upTo <= done ? w.done() : still.push(w));
    this.#waiters = still;
  }
}

/**
 * The URL of the worker script `name` (without extension) beside the module at `self`
 * (`import.meta.url`): the `.ts` file where tests run the sources, the `.js` file in dist/.
 */
export function besideModule(name: string, self: string): URL {
  return new URL(`./${name}${self.endsWith('.ts') ? '.ts' : '.js'}`, self);
}

/**
 * The Node options for a worker when the process's must be changed: less `--input-type`
 * (`node --input-type=module -e …`), which a worker refuses (ERR_INPUT_TYPE_NOT_ALLOWED), so it
 * would never start. Otherwise undefined: the worker inherits the process's options as Node
 * means it to (options given explicitly are checked, and process-wide ones such as
 * `--max-old-space-size` or `--expose-gc` would make `new Worker` throw).
 */
function workerExecArgv(): string[] | undefined {
  if (!process.execArgv.some((a) => a === '--input-type' || a.startsWith('--input-type='))) return undefined;
  const args: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const a = process.execArgv[i] as string;
    if (a === '--input-type') i++;
    else if (!a.startsWith('--input-type=')) args.push(a);
  }
  return args;
}

/**
 * The worker's side: runs each job with `run` in order, counts it finished, and reports a job
 * that throws (its message and code) without stopping. `run` may be async; the next job waits.
 * Returns the `init` the main thread gave.
 */
export function serveJobs<Job>(run: (job: Job) => void | Promise<void>): unknown {
  if (isMainThread || parentPort === null) throw new Error('serveJobs runs in a worker thread');
  const port = parentPort;
  const { init, counts } = workerData as { init: unknown; counts: Int32Array };
  const finish = (n: number, err?: unknown): void => {
    // Counted before the answer is sent: a thread that has the answer sees the count too.
    Atomics.add(counts, DONE, 1);
    Atomics.notify(counts, DONE);
    if (err === undefined) port.postMessage({ ok: n });
    else {
      const e = err as { message?: unknown; code?: unknown };
      port.postMessage({ failed: n, message: String(e?.message ?? err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) });
    }
  };
  process.on('exit', () => {
    Atomics.store(counts, DEAD, 1);
    Atomics.notify(counts, DONE);
  });
  Atomics.store(counts, STARTED, 1);
  let chain: Promise<void> = Promise.resolve();
  port.on('message', ({ n, job }: { n: number; job: Job }) => {
    chain = chain.then(async () => {
      try {
        await run(job);
        finish(n);
      } catch (err) {
        finish(n, err);
      }
    });
  });
  return init;
}
