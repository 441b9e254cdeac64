/**
 * Console capture (issue 13 §3, docs/DESIGN.md §4): with `createLogger({dir, console: {capture:
 * true}})` every byte the process writes to `process.stdout` and `process.stderr` also goes to
 * `console.log` in the run folder, as Skáld keeps what a program printed. That covers
 * `console.*`, direct `process.stdout.write()`/`process.stderr.write()`, the console of worker
 * threads (Node pipes a worker's stdout into the parent's `process.stdout`), and rowlog's own
 * prints (the pretty sink, warnings): what the user saw; and the stack of an uncaught exception,
 * which Node writes to fd 2 past the stream. Other writes to fd 1/2 that bypass the streams
 * (`fs.writeSync(1, …)`, a native addon, a child process sharing the fd) are not seen.
 *
 * The terminal sees exactly what it saw before: each stream's `write` is replaced by one that
 * calls the original with the same arguments first and returns its result (same bytes, same
 * order, the callback and the backpressure signal kept), then copies the bytes. The copy never
 * throws and never blocks: whole lines are batched and handed to a FileWriter (lib/io/
 * file-writer.ts, the sinks' never-blocking appender) every `flushIntervalMs` or 64 KiB.
 *
 * Layout of `console.log`: plain text, one line per line printed, stdout and stderr in the order
 * their lines were completed, unmarked (Skáld's plain text: what the terminal showed; colors kept
 * as their ANSI bytes, `less -R` shows them). A `\r` before `\n` (a pty's line end) is dropped. A
 * partial line is held until its newline; at close and at exit it is written with a `\n`. A held
 * line over 64 KiB (a progress bar redrawn with `\r` and never ended) is written as a line then.
 * Past `maxQueuedBytes` not yet on disk the lines are written synchronously (as the sinks do:
 * a loop that never yields is slowed down, nothing is lost); while the file fails (a full disk)
 * the oldest batches are dropped instead, with one `W_CONSOLE_DROPPED` warning.
 *
 * One tee per stream is installed when the first capture starts and shared by all; a capture
 * that stops leaves it; the last one puts the original `write` back (unless someone replaced ours
 * meanwhile: then ours stays, passing through).
 */
import { inspect } from 'node:util';
import { DEFAULT_MAX_QUEUED_BYTES, FileWriter } from '../io/file-writer.js';
import type { RowlogWarning } from '../core/warnings.js';

/** The file a capture writes, in the run folder. */
export const CONSOLE_FILE = 'console.log';

/** Options of {@link ConsoleCapture}. */
export interface ConsoleCaptureOptions {
  /** Whole lines wait at most this long before they are handed to the file. @default 250 */
  flushIntervalMs?: number;
  /** Bytes not yet on disk past which they are written synchronously (the oldest dropped while the file fails). @default 2097152 (2 MiB) */
  maxQueuedBytes?: number;
  /** Told about a failing file and dropped lines (asynchronously). */
  onWarning?: (w: RowlogWarning) => void;
}

type Which = 'stdout' | 'stderr';
type WriteFn = NodeJS.WriteStream['write'];

const BATCH_BYTES = 64 * 1024;
const MAX_HELD_LINE = 64 * 1024;
const NEWLINE = Buffer.from('\n');

/** One stream's tee: the original write and the captures it feeds. */
interface Tee {
  stream: NodeJS.WriteStream;
  original: WriteFn;
  ours: WriteFn;
  /** False once uninstalled while another wrapper held it: it only passes through from then on. */
  live: boolean;
}

const captures = new Set<ConsoleCapture>();
const tees = new Map<Which, Tee>();

/** The bytes of a `write()` call's chunk, as a buffer of our own (the caller may reuse theirs). */
function ownBytes(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk); // a copy
  return undefined;
}

/**
 * Node reports an uncaught exception (and an unhandled rejection) on fd 2 itself, past
 * `process.stderr`: its stack is copied here, as stderr, before Node prints it. Not when the
 * program handles it (an `uncaughtException` listener, a capture callback): Node prints nothing then.
 */
let monitoring = false;
function monitorCrashes(): void {
  if (monitoring) return;
  monitoring = true;
  process.on('uncaughtExceptionMonitor', (err: unknown) => {
    if (process.listenerCount('uncaughtException') > 0 || process.hasUncaughtExceptionCaptureCallback()) return;
    const text = Buffer.from(`${err instanceof Error && err.stack !== undefined ? err.stack : inspect(err)}\n`);
    for (const c of captures) c.take('stderr', text);
  });
}

function install(which: Which): void {
  const stream = process[which];
  if (tees.get(which)?.ours === stream.write) return;
  const original = stream.write;
  const ours = function (this: unknown, chunk: unknown, ...rest: unknown[]): boolean {
    const ended = stream.writableEnded || stream.destroyed;
    const ret = Reflect.apply(original, this, [chunk, ...rest]) as boolean;
    if (!ended && tee.live && captures.size > 0) {
      const bytes = ownBytes(chunk, rest[0]);
      if (bytes !== undefined && bytes.length > 0) for (const c of captures) c.take(which, bytes);
    }
    return ret;
  } as WriteFn;
  const tee: Tee = { stream, original, ours, live: true };
  stream.write = ours;
  tees.set(which, tee);
}

function uninstall(): void {
  for (const [which, tee] of tees) {
    // Replaced after us: ours stays under the other wrapper, passing through only, so that a
    // later capture's new tee on top does not copy each line twice.
    if (tee.stream.write !== tee.ours) tee.live = false;
    else tee.stream.write = tee.original;
    tees.delete(which);
  }
}

/** A capture of this process's stdout and stderr into one file (see the header). */
export class ConsoleCapture {
  readonly path: string;
  readonly #writer: FileWriter;
  readonly #held: Record<Which, Buffer[]> = { stdout: [], stderr: [] };
  readonly #heldBytes: Record<Which, number> = { stdout: 0, stderr: 0 };
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #batchLines = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #warnedFile = false;
  #warnedDrop = false;
  readonly #intervalMs: number;
  readonly #maxQueuedBytes: number;
  readonly #warn: (w: RowlogWarning) => void;

  /** Starts capturing now into `file` (created with the first line; an existing one is appended to). */
  constructor(file: string, opts: ConsoleCaptureOptions = {}) {
    this.path = file;
    this.#intervalMs = opts.flushIntervalMs ?? 250;
    this.#maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.#warn = opts.onWarning ?? (() => undefined);
    this.#writer = new FileWriter(file, (err) => {
      if (this.#warnedFile) return;
      this.#warnedFile = true;
      this.#warn({ code: 'W_FILE_ERROR', message: `${file}: ${err.message}; the console's lines are kept and retried` });
    });
    install('stdout');
    install('stderr');
    monitorCrashes();
    captures.add(this);
  }

  /** Bytes `which` was given (by the tee). Never throws. */
  take(which: Which, bytes: Buffer): void {
    let start = 0;
    for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, start)) {
      this.#line(which, bytes.subarray(start, nl));
      start = nl + 1;
    }
    if (start < bytes.length) {
      this.#held[which].push(bytes.subarray(start));
      this.#heldBytes[which] += bytes.length - start;
      if (this.#heldBytes[which] > MAX_HELD_LINE) this.#line(which, Buffer.alloc(0));
    }
    if (this.#batchBytes >= BATCH_BYTES) this.#hand();
    else if (this.#batchBytes > 0 && this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#hand(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Ends `which`'s held line with `tail` (its newline not included) and batches it. */
  #line(which: Which, tail: Buffer): void {
    let line = tail;
    if (this.#held[which].length > 0) {
      line = Buffer.concat([...this.#held[which], tail]);
      this.#held[which] = [];
      this.#heldBytes[which] = 0;
    }
    if (line.length > 0 && line[line.length - 1] === 13) line = line.subarray(0, -1);
    this.#batch.push(line, NEWLINE);
    this.#batchBytes += line.length + 1;
    this.#batchLines++;
  }

  /** Hands the batch to the file, dropping the oldest batches when too much is not on disk yet. */
  #hand(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#batchBytes === 0) return;
    const buf = Buffer.concat(this.#batch, this.#batchBytes);
    const lines = this.#batchLines;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#batchLines = 0;
    this.#writer.write(buf, lines);
    // Past the bound, written synchronously as the sinks do (a loop that never yields: the
    // printer slows down, no line is lost); dropped only while the file fails.
    if (this.#writer.queuedBytes > this.#maxQueuedBytes && !this.#writer.failing) this.flushSync();
    const over = this.#writer.queuedBytes - this.#maxQueuedBytes;
    if (over > 0) {
      const dropped = this.#writer.dropOldest(over);
      if (dropped.rows > 0 && !this.#warnedDrop) {
        this.#warnedDrop = true;
        const w: RowlogWarning = { code: 'W_CONSOLE_DROPPED', message: `${this.path}: the file is not taking lines (${this.#writer.lastError?.message ?? 'slow'}); the oldest are dropped` };
        process.nextTick(() => this.#warn(w)); // its own print must not come back into this call
      }
    }
  }

  /** Ends the held partial lines (at close and exit: with a `\n`). */
  #endHeld(): void {
    for (const which of ['stdout', 'stderr'] as const) if (this.#heldBytes[which] > 0) this.#line(which, Buffer.alloc(0));
  }

  /** Resolves when every whole line so far is on disk (a failing file: when it was tried). */
  async flush(): Promise<void> {
    this.#hand();
    await this.#writer.flush().catch(() => undefined); // warned by onError
  }

  /** Writes every whole line so far synchronously. Never throws (a failure was warned). */
  flushSync(): void {
    this.#hand();
    try {
      this.#writer.flushSync();
    } catch {
      // warned by onError; the lines stay queued for a retry
    }
  }

  /** Stops capturing: the streams' original `write` is back once no capture is left. */
  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    captures.delete(this);
    if (captures.size === 0) uninstall();
  }

  /** Stops capturing, writes what is held (a partial line with a `\n`) and closes the file. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stop();
    this.#endHeld();
    await this.flush();
    this.exitSync();
  }

  /** The process ends: stops capturing, writes everything synchronously, closes the file. */
  exitSync(): void {
    this.#stop();
    this.#endHeld();
    this.flushSync();
    this.#writer.closeSync();
  }
}
