/**
 * The listing serve shares among its pages: the run folders under DIR as lib/run/layout.ts
 * finds them (the scanner `rowlog ls` uses), plus the live run of `connect` and the runs of a
 * Redis (lib/serve/redis-runs.ts, `redis:<run>`), read again at most every 500 ms. It is also the gate of every request that names a run and a table: only names
 * in the current listing are accepted (the scanner never follows a symbolic link), and the
 * resolved file is checked to lie inside DIR, so nothing a query string says reaches outside.
 */
import path from 'node:path';
import { isValidName } from '../core/entry.js';
import { scanRuns } from '../run/layout.js';
import type { RunFolder } from '../run/layout.js';
import { HttpError } from './http-error.js';
import type { LiveRun } from './live.js';
import { redisRunName } from './redis-runs.js';
import type { RedisRuns } from './redis-runs.js';
import type { RunsBody, ServedRun, ServedTable } from './protocol.js';

/** A run folder as the API lists it: each table with the file it is read from. */
export function servedRun(run: RunFolder): ServedRun {
  const served: ServedRun = {
    id: run.id,
    name: run.name ?? (run.id === '.' ? path.basename(run.dir) : run.id),
    live: false,
    tables: run.tables.map((t): ServedTable => {
      const f = t.files[0] as RunFolder['tables'][number]['files'][number]; // a listed table has a file
      return { name: t.name, file: f.file, format: f.format, size: f.size, mtime: f.mtime };
    }),
  };
  if (run.startTime !== undefined) served.startTime = run.startTime;
  return served;
}

/** A run and table a request named, and the file to read (`''` for a live run). */
export interface Resolved {
  run: ServedRun;
  table: ServedTable;
  file: string;
}

/** The runs under `root` (and the live run), cached for short ages. */
export class RunListing {
  private cached: { at: number; runs: ServedRun[]; json: string } | undefined;

  constructor(
    readonly root: string,
    readonly live: LiveRun | undefined,
    readonly redis?: RedisRuns,
  ) {}

  /** The runs, read again when the cached listing is older than `maxAgeMs`. */
  runs(maxAgeMs = 500): ServedRun[] {
    if (this.cached === undefined || Date.now() - this.cached.at > maxAgeMs) {
      const runs = scanRuns(this.root).map(servedRun);
      if (this.live !== undefined) runs.push(this.live.served());
      if (this.redis !== undefined) runs.push(...this.redis.runs());
      this.cached = { at: Date.now(), runs, json: JSON.stringify(runs) };
    }
    return this.cached.runs;
  }

  /** Reads the runs again; true when they changed since the last read. */
  changed(): boolean {
    const before = this.cached?.json;
    this.runs(0);
    return this.cached?.json !== before;
  }

  /** What `/api/runs` and the `runs` event carry. */
  body(maxAgeMs?: number): RunsBody {
    return { dir: this.root, now: Date.now(), runs: this.runs(maxAgeMs) };
  }

  /** The run and table a request names, or an HttpError (400: malformed, 404: not listed). */
  resolve(runId: string | null, table: string | null): Resolved {
    if (runId === null || table === null) throw new HttpError(400, 'run and table are required');
    if (!isValidName(table)) throw new HttpError(400, `invalid table name ${JSON.stringify(table)}`);
    if (runId !== this.live?.id && runId !== '.' && !isValidName(runId, true) && redisRunName(runId) === undefined) throw new HttpError(400, `invalid run ${JSON.stringify(runId)}`);
    const find = (maxAge: number) => {
      const run = this.runs(maxAge).find((r) => r.id === runId);
      return { run, t: run?.tables.find((x) => x.name === table) };
    };
    let { run, t } = find(500);
    if (t === undefined) ({ run, t } = find(0)); // just created?
    if (run === undefined) throw new HttpError(404, `no run ${JSON.stringify(runId)}`);
    if (t === undefined) throw new HttpError(404, `no table ${JSON.stringify(table)} in run ${JSON.stringify(runId)}`);
    if (run.live || run.source !== undefined) return { run, table: t, file: '' };
    const root = this.root;
    const runDir = path.resolve(root, run.id);
    const file = path.resolve(runDir, t.file);
    if ((runDir !== root && !runDir.startsWith(root + path.sep)) || !file.startsWith(runDir + path.sep)) throw new HttpError(404, 'not found');
    return { run, table: t, file };
  }
}
