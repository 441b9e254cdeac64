/**
 * A fixed pool of jq-web worker threads for the query stream's large inputs (lib/read/query.ts).
 * Each worker answers its jobs in the order they were sent, so a job's answer is matched to the
 * oldest job pending on that worker; a worker that fails or exits fails all its pending jobs.
 */
import { Worker } from 'node:worker_threads';
import { RowlogError } from '../core/errors.js';
import { besideModule } from '../io/worker-channel.js';
import type { JqJob, JqResult } from './query-worker.js';

/** A job sent to a worker, waiting for its answer. */
interface Pending {
  id: number;
  done: (r: JqResult) => void;
  fail: (e: Error) => void;
}

/** A fixed pool of jq-web worker threads; each answers its jobs in order. */
export class WorkerPool {
  readonly #workers: Array<{ w: Worker; pending: Pending[] }> = [];
  #nextId = 0;

  constructor(n: number) {
    const url = besideModule('query-worker', import.meta.url);
    for (let i = 0; i < n; i++) {
      const w = new Worker(url, { workerData: { rowlogQuery: true } });
      const slot = { w, pending: [] as Pending[] };
      w.on('message', (msg: JqResult & { id: number }) => {
        const p = slot.pending.shift();
        if (p) p.done(msg);
      });
      w.on('error', (err) => {
        for (const p of slot.pending.splice(0)) p.fail(err);
      });
      w.on('exit', (code) => {
        for (const p of slot.pending.splice(0)) p.fail(new RowlogError('ERR_JQ', `a jq worker thread exited (code ${code})`));
      });
      this.#workers.push(slot);
    }
  }

  run(job: JqJob): Promise<JqResult> {
    const slot = this.#workers.reduce((a, b) => (b.pending.length < a.pending.length ? b : a));
    const id = this.#nextId++;
    return new Promise((done, fail) => {
      slot.pending.push({ id, done, fail });
      slot.w.postMessage({ id, ...job });
    });
  }

  close(): void {
    for (const { w } of this.#workers) void w.terminate();
  }
}
