/**
 * What serve's HTTP API sends (docs/DESIGN.md §7): the JSON of `/api/runs` and `/api/rows`, and the
 * server-sent events of `/api/events`. Types only, and no Node import: the page (web/*.ts,
 * compiled against the DOM lib) imports them too, with `import type` (erased), so the server
 * and the page cannot drift apart. The README's "serve's HTTP API" section documents them.
 */

/** A table file's format (a snapshot's `live`: rows not read from a file, of a `connect` subscription or a Redis stream). */
export type ServedFormat = 'jsonl.gz' | 'jsonl' | 'csv' | 'csv.gz';

/** One table of a run, as listed. */
export interface ServedTable {
  /** `train`, `grad/layer1`. */
  name: string;
  /** The file the table is read from, relative to its run folder (`''` for a live run). */
  file: string;
  format: ServedFormat;
  size: number;
  /** Last modification, ms since the epoch. */
  mtime: number;
}

/** One run, as listed. */
export interface ServedRun {
  /** What the API takes as `run=`: the folder relative to DIR (`.` for DIR itself), `live:host:port`, or `redis:<run>` (a run in `serve({redis})`'s Redis). */
  id: string;
  /** `run.json`'s name, else the folder's name (the address for a live run). */
  name: string;
  /** True for the rows of a `connect` subscription (held in memory, not in a file). */
  live: boolean;
  /** Where a run that is not under DIR lives, for its label (`redis://host:port rowlog:<run>:*`; no password). */
  source?: string;
  startTime?: string;
  tables: ServedTable[];
}

/** `GET /api/runs`, and the `runs` event. */
export interface RunsBody {
  /** DIR, absolute. */
  dir: string;
  /** The server's clock (ms since the epoch), to age `mtime`s by. */
  now: number;
  runs: ServedRun[];
}

/**
 * Rows in columns: `data[c][k]` is column `columns[c]` of the k-th row, whose index (0-based
 * position in the table) is `index[k]`. `columns` always has `$step` (the row's `$step`, else
 * its index); the others are the rows' numeric data columns. Non-finite and missing cells are null.
 */
export interface Block {
  columns: string[];
  index: number[];
  data: Array<Array<number | null>>;
}

/** `GET /api/rows`, and the `snapshot` event: a whole table, strided. */
export interface Snapshot {
  run: string;
  table: string;
  file: string;
  format: ServedFormat | 'live';
  /** Rows in the table. */
  total: number;
  /** Every `stride`-th row (by index) is in `block`, plus the last one. */
  stride: number;
  /** Most rows the server keeps per table before it doubles `stride` (its `maxPoints`). */
  maxPoints: number;
  /** Rows appended later are sent as `rows` events (false: a CSV table, sent again as a new `snapshot` when it changes). */
  followed: boolean;
  block: Block;
}

/** The `rows` event: rows appended to a followed table, on the grid of `stride`, plus the last one. */
export interface RowsEvent {
  run: string;
  table: string;
  /** Rows in the table now. */
  total: number;
  /** The grid now (it only grows: the page drops its points that are off it). */
  stride: number;
  block: Block;
}

/** The `problem` event: a table of the stream could not be read. */
export interface ProblemEvent {
  run: string;
  table: string;
  message: string;
}

/** Every event of `/api/events`, by name. */
export interface ServerEvents {
  runs: RunsBody;
  snapshot: Snapshot;
  rows: RowsEvent;
  problem: ProblemEvent;
}
