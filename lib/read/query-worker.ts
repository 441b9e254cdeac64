/**
 * jq-web loading and one synchronous jq run, shared by `query()` (inline) and its worker
 * threads. Loaded as a worker (`workerData.rowlogQuery`), it answers `{ id, input, filter,
 * flags }` messages with `{ id, out }` or `{ id, error }`, in order.
 *
 * The wasm stack (docs/DESIGN.md §6): jq-web's C stack is ~64 KB, placed below jq's static data,
 * and overflows silently: measured on jq-web 0.6.2, `try fromjson catch "B"` on a value nested 60
 * deep ends in "null function or function signature mismatch" or "memory access out of bounds",
 * and damages the instance for every later run. So jq.js is loaded with two small patches that
 * hand rowlog its `stackSave`/`stackRestore` and wasm memory; the memory is grown to its 2 GB
 * maximum at load (address space only: pages cost RSS once touched) and every run's C stack
 * is the top 8 MB of it, as big as a native jq's. malloc's heap grows up towards it, and sbrk's
 * limit is the memory's size, so a run that needs the last 8 MB meets the stack instead of
 * failing to grow: jq then works on corrupted memory. Measured (rowlog issue 11 review, jq-web
 * 0.6.2, `-s length`): jq's heap takes ~140 bytes per input byte for `{}` rows, ~100 for `[]`,
 * ~85 for `[1]`, ~60 for `{"a":1}`, ~32 for a 50-byte row of mixed fields, ~28 for `1` per line;
 * so 14.6 MiB of `{}` rows ended 12 MiB below the stack, and 15 MiB ran into it (jq aborted on a
 * corrupted value), far under `maxInputBytes` (250 MiB). No input size bound with a margin
 * would leave slurp useful (14 MiB), and the heap's top is not exported, so it is checked by
 * what it touches: a guard band of {@link GUARD_BYTES} below the stack, untouched by anything
 * but the heap, is probed after every run (the first 64 bytes of each 4 KiB page: every
 * allocation made while malloc's top is in the band writes a header there, and jq fills its
 * arrays and strings from their start; ~0.1 ms). A touched band fails the run with `fault: true`
 * (`ERR_JQ`, "ran out of memory") whatever jq printed, and retires the instance.
 *
 * Faults: a wasm abort (a stack overflow even so, heap exhaustion, any trap) fails only that
 * run with `fault: true`, and retires the instance: the next run gets a fresh one (jq.js
 * compiled again from the patched text: ~20–45 ms, ~12 MB), from a spare loaded after the first
 * fault. jq's own failures (exit codes 2, 3, 5) leave the instance usable.
 */
import fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { JqWeb, JqWebError } from './jq-web-types.js';

const require = createRequire(import.meta.url);
let jq: JqWeb | undefined;
let loading: Promise<JqWeb> | undefined;
let spare: Promise<JqWeb> | undefined;

/** What the patched jq.js gives besides `raw` (see the header). */
interface StackAccess {
  stackSave(): number;
  stackRestore(sp: number): void;
  memory(): { buffer: ArrayBuffer; grow(pages: number): number };
  updateMemoryViews(): void;
}
type PatchedJq = JqWeb & { __rowlog?: StackAccess; __rowlogTop?: number };

let patchedSource: string | undefined;

/** jq.js with rowlog's two patches; the unpatched text if jq-web's changed (then the small stack stays). */
function jqSource(file: string): string {
  if (patchedSource !== undefined) return patchedSource;
  let src = fs.readFileSync(file, 'utf8');
  const a = /Object\.assign\(\s*Module,\s*\{ json, raw \},\s*\);/;
  const b = 'return { json: module.json, raw: module.raw };';
  if (a.test(src) && src.includes(b)) {
    src = src
      .replace(a, 'Object.assign(Module, { json, raw, __rowlog: { stackSave, stackRestore, memory: () => wasmMemory, updateMemoryViews } });')
      .replace(b, 'return { json: module.json, raw: module.raw, __rowlog: module.__rowlog };');
  }
  patchedSource = src;
  return src;
}

/** The guard band below the stack (see the header): larger than any one allocation of jq's that is not filled from its start. */
export const GUARD_BYTES = 64 * 1024 * 1024;
/** The C stack's size, at the top of the memory. */
const STACK_BYTES = 8 * 1024 * 1024;

/** True when the heap has written into the guard band below the stack (see the header). */
function heapNearStack(instance: PatchedJq): boolean {
  const s = instance.__rowlog;
  const top = instance.__rowlogTop;
  if (!s || top === undefined) return false;
  const end = top + 16 - STACK_BYTES;
  const band = new BigUint64Array(s.memory().buffer, end - GUARD_BYTES, GUARD_BYTES / 8);
  for (let page = 0; page < band.length; page += 512) {
    for (let i = page; i < page + 8; i++) if (band[i] !== 0n) return true;
  }
  return false;
}

const HEAP_MESSAGE =
  "jq-web ran out of memory: its heap reached the guard below its stack (the 2 GB wasm memory; slurp takes 30-140 bytes of it per input byte): use a per-row filter, or the jq command";

/** A new jq-web instance: the (patched) jq.js compiled as a module of its own. */
function freshInstance(): Promise<JqWeb> {
  const file = require.resolve('jq-web');
  const m = new Module(file);
  m.filename = file;
  m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(file));
  (m as unknown as { _compile(src: string, file: string): void })._compile(jqSource(file), file);
  const p = Promise.resolve(m.exports as PromiseLike<PatchedJq>).then((j) => {
    const s = j.__rowlog;
    if (s) {
      const mem = s.memory();
      const max = 2 ** 31;
      try {
        if (mem.buffer.byteLength < max) mem.grow((max - mem.buffer.byteLength) / 65536);
        j.__rowlogTop = mem.buffer.byteLength - 16;
      } catch {
        // No address space for it (a `ulimit -v`): jq-web's own small stack stays.
      }
      s.updateMemoryViews();
    }
    return j as JqWeb;
  });
  p.catch(() => undefined);
  return p;
}

/**
 * Loads jq-web in this thread (once, or again after a failed run retired the instance). Not at
 * import: its wasm instance costs ~16 ms and ~12 MB, which a training process that only logs
 * must not pay.
 */
export function loadJq(): Promise<JqWeb> {
  if (jq !== undefined) return Promise.resolve(jq);
  if (loading === undefined) {
    const next = spare ?? freshInstance();
    spare = undefined;
    loading = next.then((j) => {
      loading = undefined;
      jq = j;
      return j;
    });
  }
  return loading;
}

/** True when a live jq-web instance is loaded in this thread. */
export function jqLoaded(): boolean {
  return jq !== undefined;
}

/** Retires the current instance (a wasm abort damaged it) and starts loading a spare. */
function retire(): void {
  jq = undefined;
  spare ??= freshInstance();
}

/** One jq job: input text, filter and flags, and what to run instead if that fails. */
export interface JqJob {
  /** Text, or its UTF-8 bytes (whole-input mode keeps the bytes it read: no decode and re-encode). */
  input: string | Uint8Array;
  filter: string;
  flags: string[];
  fallback?: { filter: string; flags: string[] };
}

/**
 * A job's result: jq's stdout, or jq's failure (exit code and stderr). `fault` marks a failure
 * inside jq-web itself (a wasm abort: stack, heap), not jq's verdict on the filter or input.
 */
export type JqResult = { out: string } | { error: { message: string; exitCode: number; stderr: string; fault?: boolean } };

/** Runs one job (its fallback when it fails) on a live instance; never rejects. */
export async function runJq(job: JqJob): Promise<JqResult> {
  const r = runJqSync(job.input, job.filter, job.flags, await loadJq());
  if (!('error' in r) || !job.fallback || r.error.fault) return r;
  return runJqSync(job.input, job.fallback.filter, job.fallback.flags, await loadJq());
}

/**
 * Runs jq once, synchronously, on `instance` (default: the loaded one); never throws. A fault
 * retires the instance (see the header).
 */
export function runJqSync(input: string | Uint8Array, filter: string, flags: string[], instance = jq): JqResult {
  if (instance === undefined || instance !== jq) {
    return { error: { message: 'jq-web is not loaded yet', exitCode: -1, stderr: 'jq-web is not loaded yet', fault: true } };
  }
  // jq-web's emscripten runtime sets process.exitCode when jq fails: a bad filter must not
  // change how the caller's process exits.
  const exitCode = process.exitCode;
  const { __rowlog: stack, __rowlogTop: top } = instance as PatchedJq;
  const saved = stack && top !== undefined ? stack.stackSave() : undefined;
  if (saved !== undefined) stack?.stackRestore(top as number);
  try {
    // jq-web hands its input to emscripten's FS.writeFile, which takes bytes as well as text;
    // Node's UTF-8 encoder is several times faster than emscripten's per-character JS loop.
    // jq-web rewrites `--argjson` in the flags array it is given: pass a copy.
    const out = instance.raw((typeof input === 'string' ? Buffer.from(input) : input) as unknown as string, filter, [...flags]) ?? '';
    return heapNearStack(instance) ? heapFault() : { out };
  } catch (err) {
    const e = err as JqWebError;
    if (heapNearStack(instance)) return heapFault();
    if (typeof e.exitCode === 'number') return { error: { message: e.message, exitCode: e.exitCode, stderr: e.stderr ?? e.message } };
    retire();
    return { error: { message: faultMessage(e), exitCode: -1, stderr: faultMessage(e), fault: true } };
  } finally {
    if (saved !== undefined) (instance as PatchedJq).__rowlog?.stackRestore(saved);
    process.exitCode = exitCode;
  }
}

/** The heap reached the guard band: whatever jq printed may come from corrupted memory. */
function heapFault(): JqResult {
  retire();
  return { error: { message: HEAP_MESSAGE, exitCode: -1, stderr: HEAP_MESSAGE, fault: true } };
}

/** What a wasm abort inside jq-web means for the user. */
function faultMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  if (/Cannot enlarge memory|out of memory|OOM|^Aborted\(\)/i.test(m)) return `jq-web ran out of memory (its wasm heap is limited to 2 GB) or aborted: ${m}`;
  if (/call stack|stack overflow|memory access out of bounds/i.test(m)) return `jq-web failed (too deep a value or recursion for its stack): ${m}`;
  return `jq-web failed: ${m}`;
}

if (!isMainThread && parentPort && (workerData as { rowlogQuery?: boolean } | null)?.rowlogQuery) {
  const port = parentPort;
  // One job at a time, in the order they came: answers keep their order.
  let queue: Promise<void> = loadJq().then(() => undefined);
  port.on('message', (msg: JqJob & { id: number }) => {
    queue = queue.then(
      async () => port.postMessage({ id: msg.id, ...(await runJq(msg)) }),
      async () => port.postMessage({ id: msg.id, ...(await runJq(msg)) }),
    );
  });
}
