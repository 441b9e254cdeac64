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

/** A y as JSON carries it: a number, or a non-finite value by name (JSON has no NaN). */
export type YValue = number | 'NaN' | 'Infinity' | '-Infinity';

/**
 * One column's kept points (lib/serve/decimate.ts's M4 rule), in row order: `i[k]` is the
 * row's index (0-based position in the table), `x[k]` its value on the x-axis asked for,
 * `y[k]` the column's value. Per bucket of rows: the first, last, smallest and largest finite
 * value, and the first NaN, +Infinity and −Infinity.
 */
export interface WirePoints {
  i: number[];
  x: number[];
  y: YValue[];
}

/** Every numeric data column of a table (not `$`-columns): `points[c]` is `columns[c]`'s. */
export interface Block {
  columns: string[];
  points: WirePoints[];
}

/**
 * The x-axes a table can be drawn against: `$step` (a row without one: its index), `$time`
 * (ms since the epoch; the page shows it as wall time or, minus `startTime`, relative time),
 * or any numeric data column (`epoch`). Rows without the axis' value are left out.
 */
export type XAxis = string;

/** What a page asks of a table (`x=`, `buckets=`, and for `/api/rows` a zoom's `from=`/`to=`). */
export interface View {
  x: XAxis;
  /** At most this many buckets (the server's `maxBuckets` at most). */
  maxBuckets: number;
  /** Only rows with from ≤ x ≤ to. */
  range?: { from: number; to: number } | undefined;
}

/** `GET /api/rows`, and the `snapshot` event: a table (or, zoomed, the rows of an x range) under the M4 rule. */
export interface Snapshot {
  run: string;
  table: string;
  file: string;
  format: ServedFormat | 'live';
  /** Rows in the table. */
  total: number;
  /** The x-axis of the points' `x`. */
  x: XAxis;
  /** Rows per bucket (a power of 2): at most `maxBuckets` buckets hold the rows sent. */
  bucket: number;
  /** The most buckets asked for (`buckets=`, twice the plot's width in pixels). */
  maxBuckets: number;
  /** A zoom (`from=`/`to=`): only rows with from ≤ x ≤ to, buckets counted from `origin`, the first of them. Never followed. */
  range?: { from: number; to: number; origin: number };
  /** `$time` of the table's first row that has one (ms), for relative time. */
  startTime?: number;
  /** Rows appended later are sent as `rows` events (false: a CSV table, sent again as a new `snapshot` when it changes; a range). */
  followed: boolean;
  block: Block;
}

/**
 * The `rows` event: rows appended to a followed table. The page drops its points at indexes
 * ≥ `from`, appends `block`'s (the M4 of rows `from`..`total` − 1), and rebuckets what it holds
 * when `bucket` is coarser than its own.
 */
export interface RowsEvent {
  run: string;
  table: string;
  /** Rows in the table now. */
  total: number;
  x: XAxis;
  bucket: number;
  from: number;
  block: Block;
}

/** One column's figures over a whole table (the runs table's last / min / max). */
export interface ColumnStats {
  /** Rows with a finite value. */
  n: number;
  /** Rows with NaN or ±Infinity. */
  nonFinite: number;
  /** The last row's value (of the rows that have the column), non-finite ones by name. */
  last: YValue | null;
  /** `$step` of that row (else its index). */
  lastStep: number | null;
  /** Smallest and largest finite value; null when there is none. */
  min: number | null;
  max: number | null;
}

/** One run of the runs table. */
export interface RunSummary {
  /** The run's id in `/api/runs`. */
  id: string;
  name: string;
  /** `params.json` flattened (`optim/lr`, as rows are); `{}` without one. Arrays are JSON text. */
  params: Record<string, string | number | boolean | null>;
  /** Rows of the table. */
  rows: number;
  /** Per numeric column. */
  stats: Record<string, ColumnStats>;
  /** Not read yet (serve reads every table once in the background, then keeps up with it): ask again. */
  pending: boolean;
}

/** `GET /api/summary?table=T`: every listed run that has the table. */
export interface SummaryBody {
  table: string;
  /** Every numeric column of the table in any run, sorted. */
  columns: string[];
  /** Every parameter key of any run, sorted. */
  params: string[];
  runs: RunSummary[];
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
