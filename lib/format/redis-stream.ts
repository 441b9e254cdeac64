/**
 * The layout of a run in Redis (docs/DESIGN.md §4, "Redis Streams"; issue 14): the one place that
 * knows the key names and the fields of a stream entry, shared by the sink that writes them
 * (sinks/redis.ts), the collector that moves them to disk (lib/net/collect-redis.ts) and the
 * readers (`connect({redis})`, `rowlog tail -f redis://…`, `rowlog serve --redis`).
 *
 * Keys, for a prefix `P` (default `rowlog`) and a run name `R` (one name segment, so no `:`):
 * - `P:runs`: a set of the run names that have written to Redis.
 * - `P:R:meta`: a hash: `id` (the run's id, which claims the name), `run` (run.json's text),
 *   `params` (params.json's), `status` (status.json's), and per table `table:<name>` = its stream key.
 * - `P:R:<table>`: a stream per table. A table can hold `/` but never `:`, so only a table
 *   named `meta` could meet another key: its stream is `P:R:meta:rows`.
 * - `P:collectors`: a hash of the live collectors, field `<group> <holder>` (the group and its
 *   lease holder, below) → the ms time it last polled, by which the collectors of a group share
 *   the runs out evenly. One segment after the prefix, as `P:runs`: no run's key is that short.
 * - `P:R:owner:<group>`: the lease of the collector of consumer group `group` that writes the
 *   run (docs/DESIGN.md §4, "The ack rule"); a string key, never a stream (a table `owner` is
 *   `P:R:owner`, with no second `:`).
 *
 * A stream entry is one flushed batch of one table: `rows` is an NDJSON block of whole rows, each
 * line exactly as in the run's `<table>.jsonl` (`{"$step":…,"$time":…,"$level":…,data…}\n`,
 * non-finite numbers as bare NaN/Infinity, read back with lineToRow), `n` its row count and
 * `first`/`last` the `$step` of its first and last row. One XADD per batch: measured 251k rows/s
 * as blocks against 5–9k rows/s as one entry per row.
 */
import { isValidName } from '../core/entry.js';

/** The prefix of every key, when none is given. */
export const DEFAULT_REDIS_PREFIX = 'rowlog';

/** `P:runs`: the set of run names. */
export function runsKey(prefix: string): string {
  return `${prefix}:runs`;
}

/** `P:R:meta`: the run's hash (id, run, params, status, table:<name>). */
export function metaKey(prefix: string, run: string): string {
  return `${prefix}:${run}:meta`;
}

/** `P:R:owner:<group>`: the lease of the collector that writes run `run` for consumer group `group`. */
export function ownerKey(prefix: string, run: string, group: string): string {
  return `${prefix}:${run}:owner:${group}`;
}

/** `P:collectors`: the live collectors (`<group> <holder>` → last poll, ms epoch). */
export function collectorsKey(prefix: string): string {
  return `${prefix}:collectors`;
}

/** The hash field that names a table's stream. */
export const TABLE_FIELD = 'table:';

/** `P:R:<table>`: the table's stream (`P:R:meta:rows` for a table named `meta`). */
export function streamKey(prefix: string, run: string, table: string): string {
  return table === 'meta' ? `${prefix}:${run}:meta:rows` : `${prefix}:${run}:${table}`;
}

/** The fields of one stream entry, decoded. */
export interface StreamBlock {
  /** NDJSON: whole rows, each ending in `\n`, as in the table's `.jsonl` file. */
  rows: string;
  /** How many rows. */
  n: number;
  /** `$step` of the first row. */
  first: number;
  /** `$step` of the last row. */
  last: number;
}

/** An entry's field list for XADD: `rows`, `n`, `first`, `last`. */
export function blockFields(b: StreamBlock): string[] {
  return ['rows', b.rows, 'n', String(b.n), 'first', String(b.first), 'last', String(b.last)];
}

/**
 * A stream entry's flat field list (as XRANGE/XREAD return it) decoded; undefined when it is not
 * a rowlog block (another writer's entry on the stream): readers skip such entries.
 */
export function parseBlock(fields: readonly string[]): StreamBlock | undefined {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
  const rows = f.get('rows');
  const n = Number(f.get('n'));
  const first = Number(f.get('first'));
  const last = Number(f.get('last'));
  if (rows === undefined || !Number.isSafeInteger(n) || n < 0 || !Number.isFinite(first) || !Number.isFinite(last)) return undefined;
  return { rows, n, first, last };
}

/** True for a name that can be a run's key segment (one name segment: no `/`, no `:`). */
export function isRunName(name: unknown): name is string {
  return isValidName(name, true);
}

/** True for a prefix: non-empty, printable, without spaces. */
export function isRedisPrefix(prefix: unknown): prefix is string {
  return typeof prefix === 'string' && /^[!-~]{1,200}$/.test(prefix);
}
