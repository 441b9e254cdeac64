/**
 * jq-web loading and one synchronous jq run, shared by `query()` (inline) and its worker
 * threads. Loaded as a worker (`workerData.rowlogQuery`), it answers `{ id, input, filter,
 * flags }` messages with `{ id, out }` or `{ id, error }`, in order.
 */
import { createRequire } from 'node:module';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { JqWeb, JqWebError } from 'jq-web';

let jq: JqWeb | undefined;
let loading: Promise<JqWeb> | undefined;

/**
 * Loads jq-web in this thread, once. Not at import: its wasm instance costs ~16 ms and ~12 MB,
 * which a training process that only logs must not pay.
 */
export function loadJq(): Promise<JqWeb> {
  loading ??= Promise.resolve(createRequire(import.meta.url)('jq-web') as PromiseLike<JqWeb>).then((j) => (jq = j));
  return loading;
}

/** True once {@link loadJq} has finished in this thread. */
export function jqLoaded(): boolean {
  return jq !== undefined;
}

/** One jq job: input text, filter and flags, and what to run instead if that fails. */
export interface JqJob {
  input: string;
  filter: string;
  flags: string[];
  fallback?: { filter: string; flags: string[] };
}

/** A job's result: jq's stdout, or jq's failure (exit code and stderr). */
export type JqResult = { out: string } | { error: { message: string; exitCode: number; stderr: string } };

/** Runs one job synchronously (its fallback when it fails); never throws. */
export function runJq(job: JqJob): JqResult {
  const r = runOnce(job);
  return 'error' in r && job.fallback ? runOnce({ input: job.input, ...job.fallback }) : r;
}

function runOnce(job: JqJob): JqResult {
  if (jq === undefined) return { error: { message: 'jq-web is not loaded yet', exitCode: -1, stderr: 'jq-web is not loaded yet' } };
  // jq-web's emscripten runtime sets process.exitCode when jq fails: a bad filter must not
  // change how the caller's process exits.
  const exitCode = process.exitCode;
  try {
    // jq-web hands its input to emscripten's FS.writeFile, which takes bytes as well as text;
    // Node's UTF-8 encoder is several times faster than emscripten's per-character JS loop.
    return { out: jq.raw(Buffer.from(job.input) as unknown as string, job.filter, job.flags) ?? '' };
  } catch (err) {
    const e = err as JqWebError;
    return { error: { message: e.message, exitCode: e.exitCode ?? -1, stderr: e.stderr ?? e.message } };
  } finally {
    process.exitCode = exitCode;
  }
}

if (!isMainThread && parentPort && (workerData as { rowlogQuery?: boolean } | null)?.rowlogQuery) {
  const port = parentPort;
  const ready = loadJq();
  port.on('message', (msg: JqJob & { id: number }) => {
    // Callbacks on one promise run in the order they were added: answers keep their order.
    void ready.then(() => port.postMessage({ id: msg.id, ...runJq(msg) }));
  });
}
