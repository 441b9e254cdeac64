/**
 * One run a Redis collector writes (docs/DESIGN.md §4, "The ack rule"; issue 14): the run folder
 * `<dir>/<run>` with a Logger on two file sinks, `<table>.jsonl.gz` and `<table>.csv` (not
 * TensorBoard: its last event cannot be read from the file's end, which the skip below needs),
 * and the rows of the run's stream entries written through it.
 *
 * The per-file skip: entries that were pending when this collector took the run may already be
 * in some files, a prefix of their rows, file by file (a killed collector flushed some, not
 * acked). {@link CollectedRun.replay} reads each file's last row (`$step`, `$time`, from its
 * end: lib/run/last-step.ts `lastRowInFile`) and has each sink leave out the pending rows up to
 * the last one equal to it: the sinks' `filter` (lib/log/routes.ts) compares the index of the row
 * being written with the index its file has already. So every row is once in every file.
 *
 * The folder's params, status and `run.json`'s `source` follow the run's meta hash
 * ({@link CollectedRun.meta}): rewritten only when the hash's text changed.
 */
import path from 'node:path';
import { lineToRow } from '../format/parse-lines.js';
import type { Row } from '../format/parse-lines.js';
import { parseBlock } from '../format/redis-stream.js';
import type { RowlogWarning } from '../core/warnings.js';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { lastRowInFile } from '../run/last-step.js';
import type { RowMark } from '../run/last-step.js';
import { userStatus } from '../run/run-dir.js';
import type { RunSource } from '../run/run-dir.js';
import { csvSink } from '../../sinks/csv.js';
import { jsonlSink } from '../../sinks/jsonl.js';
import type { FileSink } from '../../sinks/file-sink.js';

/** A stream entry as XREADGROUP and XAUTOCLAIM return it: its id and its flat field list. */
export type StreamEntry = [id: string, fields: string[]];

/** What the collector counts over all its runs. */
export interface RedisCollectCounts {
  /** Rows written (to both files; a row one file had already counts once). */
  rows: number;
  /** Stream entries written and acknowledged. */
  entries: number;
  /** Rows of pending entries left out of a file that held them already (the per-file skip), per file. */
  skipped: number;
  /** Entries that are not rowlog blocks (another writer's), acknowledged and skipped. */
  badEntries: number;
  /** Lines of a block that are not JSON objects, skipped. */
  badLines: number;
  /** Runs taken (a run lost and taken again counts again). */
  taken: number;
  /** Runs whose lease was lost to another collector or expired. */
  lost: number;
}

/** How the run reports: a warning (with the run name in it), once per cause by the caller. */
export type RunWarn = (w: RowlogWarning, detail?: string) => void;

/** The logger's warnings that mean rows flushed may not be in a file. */
const FAULTS = new Set(['W_FILE_ERROR', 'W_ROWS_DROPPED', 'W_SINK_ERROR']);

/** `maxOpenFiles` of each run's sinks: one collector writes many runs at once (as lib/net/collect-runs.ts). */
const RUN_OPEN_FILES = 8;

/** A run folder written from Redis. */
export class CollectedRun {
  readonly name: string;
  readonly log: Logger;
  /** The logger failed: nothing more is written (the caller drops the run). */
  broken = false;
  /**
   * A file refused rows (`W_FILE_ERROR`: they wait in memory, or `W_ROWS_DROPPED`, or a broken
   * sink): a flush resolves all the same, so what was written is not acknowledged and the caller
   * gives the run up; its entries stay pending for the next owner's per-file skip.
   */
  faulted = false;
  readonly #files: readonly FileSink[];
  /** The row being written (its index among the rows replayed) and, per sink, the last index its file holds already. */
  readonly #cursor = { index: 0, through: [-1, -1] };
  readonly #counts: RedisCollectCounts;
  readonly #warn: RunWarn;
  #params: string | undefined;
  #status: string | undefined;
  #source: string | undefined;

  /** Opens (creates or appends to) `<root>/<name>`; throws as createLogger does (`ERR_RUN_LOCKED`). */
  constructor(root: string, name: string, counts: RedisCollectCounts, warn: RunWarn) {
    this.name = name;
    this.#counts = counts;
    this.#warn = warn;
    const dir = path.join(root, name);
    const files = { dir, maxOpenFiles: RUN_OPEN_FILES };
    this.#files = [jsonlSink({ ...files, ext: '.jsonl.gz' }), csvSink(files)];
    this.log = createLogger({
      dir,
      name,
      sinks: this.#files.map((sink, i) => ({ sink, filter: () => this.#keep(i) })),
    });
    this.log.on('warning', (w: RowlogWarning) => {
      if (FAULTS.has(w.code)) this.faulted = true;
      warn({ ...w, message: `${name}: ${w.message}` }, `${w.table ?? ''}\0${w.message}`);
    });
    this.log.on('error', (err: Error) => {
      this.broken = true;
      warn({ code: 'W_COLLECT_FAILED', message: `${name}: its logger failed (${err.message}); the run is left to another collector` });
    });
  }

  #keep(sink: number): boolean {
    if (this.#cursor.index > (this.#cursor.through[sink] as number)) return true;
    this.#counts.skipped++;
    return false;
  }

  /** Writes the rows of `entries` (of `table`'s stream) in order; the ids to acknowledge once flushed. */
  write(table: string, entries: readonly StreamEntry[]): string[] {
    for (const rows of this.#rows(table, entries)) for (const row of rows) this.log.writeRow(row);
    this.#counts.entries += entries.length;
    return entries.map(([id]) => id);
  }

  /**
   * Writes pending `entries` of `table`, whichever collector read them first, leaving out of
   * each file the rows it holds already (see the header); the ids to acknowledge once flushed.
   */
  async replay(table: string, entries: readonly StreamEntry[]): Promise<string[]> {
    await this.log.flush(); // this logger's own rows of the table on disk first: the ends read below are the files'
    const rows = this.#rows(table, entries).flat();
    const marks = this.#files.map((f) => lastRowInFile(f.pathOf(table)));
    const c = this.#cursor;
    c.through = marks.map((m) => (m === undefined ? -1 : lastIndexOf(rows, m)));
    try {
      rows.forEach((row, i) => {
        c.index = i;
        this.log.writeRow(row);
      });
    } finally {
      c.index = 0;
      c.through = [-1, -1];
    }
    this.#counts.entries += entries.length;
    return entries.map(([id]) => id);
  }

  /** The rows of each entry, `$table` set; entries and lines that are not rowlog's are counted and warned. */
  #rows(table: string, entries: readonly StreamEntry[]): Row[][] {
    const out: Row[][] = [];
    for (const [id, fields] of entries) {
      const block = parseBlock(fields);
      if (block === undefined) {
        this.#counts.badEntries++;
        this.#warn({ code: 'W_COLLECT_BAD_ENTRY', message: `${this.name}: skipped stream entry ${id} of table '${table}': not a rowlog block (fields rows, n, first, last)`, table }, table);
        continue;
      }
      const rows: Row[] = [];
      for (const line of block.rows.split('\n')) {
        const row = lineToRow(line, () => {
          this.#counts.badLines++;
          this.#warn({ code: 'W_COLLECT_BAD_LINE', message: `${this.name}: skipped a line of table '${table}' that is not a JSON object (entry ${id})`, table }, table);
        });
        if (row === undefined) continue;
        row.$table = table;
        rows.push(row);
      }
      this.#counts.rows += rows.length;
      out.push(rows);
    }
    return out;
  }

  /** The meta hash's `params`, `status`, `id` and `run` into the folder, when their text changed. */
  meta(m: Record<string, string>, redis: string, prefix: string): void {
    if (m.params !== undefined && m.params !== this.#params) {
      this.#params = m.params;
      const p = parseObject(m.params);
      if (p !== undefined) this.log.params(p);
    }
    if (m.status !== undefined && m.status !== this.#status) {
      this.#status = m.status;
      const s = parseObject(m.status);
      if (s !== undefined) this.log.status = userStatus(s);
    }
    const key = `${m.id ?? ''}\0${m.run ?? ''}`;
    if (key !== this.#source) {
      this.#source = key;
      const info = m.run === undefined ? undefined : parseObject(m.run);
      const source: RunSource = { redis, prefix, run: this.name, ...(m.id === undefined ? {} : { id: m.id }), ...(info === undefined ? {} : { info }) };
      this.log.updateRun({ source });
    }
  }
}

/** The index of the last row of `rows` with `mark`'s `$step` and `$time`; -1 when none. */
function lastIndexOf(rows: readonly Row[], mark: RowMark): number {
  for (let i = rows.length - 1; i >= 0; i--) {
    const r = rows[i] as Row;
    if (r.$step === mark.step && r.$time === mark.time) return i;
  }
  return -1;
}

/** `text` as a JSON object, or undefined. */
function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
